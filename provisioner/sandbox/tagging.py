"""The Resource Groups Tagging API for the sandbox: where moto 5.2.5's GetResources differs from AWS's.

moto reports a CloudWatch Logs log group as the resource type `logs:loggroup`; AWS names a type as the resource's
ARN writes it (`arn:aws:logs:<region>:<account>:log-group:<name>`), so its ResourceTypeFilters take
`logs:log-group`, which moto matched with nothing. `install()` makes moto's log groups answer AWS's type, and
adds the Elastic IP addresses (`ec2:elastic-ip`, `arn:aws:ec2:<region>:<account>:elastic-ip/<allocation id>`),
which AWS lists and moto's EC2 leaves out.
(Route 53 Resolver's part in GetResources is dns_firewall.py's.)
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

from moto.core.resource_tagging import TaggedResource
from moto.ec2.models import EC2Backend
from moto.logs import models as _logs_models
from moto.logs.models import LogsBackend

from provisioner.sandbox.moto_source import class_members

LOG_GROUP_TYPE = "logs:log-group"
ELASTIC_IP_TYPE = "ec2:elastic-ip"

_install_lock = threading.Lock()
_INSTALLED_MARKER = "_provisioner_sandbox_tagging"


def _log_groups(self: LogsBackend) -> Iterator[TaggedResource]:
    for group in self.groups.values():
        yield TaggedResource(arn=group.arn, tags=self.tagger.get_tag_dict_for_resource(group.arn),
                             resource_type=LOG_GROUP_TYPE)


_ec2_tagged_resources = EC2Backend.iter_tagged_resources


def _ec2_with_addresses(self: EC2Backend) -> Iterator[TaggedResource]:
    yield from _ec2_tagged_resources(self)
    for address in self.addresses:
        if address.allocation_id:
            yield TaggedResource(
                arn=f"arn:{self.partition}:ec2:{self.region_name}:{self.account_id}:elastic-ip/{address.allocation_id}",
                tags=dict(self.tags.get(address.allocation_id, {})), resource_type=ELASTIC_IP_TYPE)


def compatibility_problems() -> list[str]:
    """Why this module may no longer fit the installed moto; empty when it does."""
    problems = []
    methods, attributes = class_members(_logs_models, "LogsBackend")
    if "iter_tagged_resources" not in methods:
        problems.append("moto's LogsBackend no longer takes part in the Resource Groups Tagging API")
    problems += [f"moto's LogsBackend no longer sets self.{name}" for name in ("groups", "tagger")
                 if name not in attributes]
    if "iter_tagged_resources" not in dir(EC2Backend):
        problems.append("moto's EC2Backend no longer takes part in the Resource Groups Tagging API")
    if "arn" not in class_members(_logs_models, "LogGroup")[1]:
        problems.append("moto's LogGroup no longer sets self.arn")
    return problems


def install() -> None:
    """Patch moto's logs backend in this process; safe to call more than once."""
    with _install_lock:
        if getattr(LogsBackend, _INSTALLED_MARKER, False):
            return
        problems = compatibility_problems()
        if problems:
            raise RuntimeError("cannot correct moto's Resource Groups Tagging API: " + "; ".join(problems))
        LogsBackend.iter_tagged_resources = _log_groups  # type: ignore[method-assign]
        EC2Backend.iter_tagged_resources = _ec2_with_addresses  # type: ignore[method-assign]
        setattr(LogsBackend, _INSTALLED_MARKER, True)
