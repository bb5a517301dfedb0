"""What the firewall's steps share: state keys, deadlines, and the helpers every resource of the family uses
(finding by the recorded ARN, ownership, polling, creating by name, UpdateTokens)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from botocore.exceptions import ClientError

from provisioner.aws.errors import CloudError, error_code, gone_if_missing, none_if_missing, translate
from provisioner.context import Context
from provisioner.design.naming import is_owned, tag_map
from provisioner.poll import Read, block, poll_once
from provisioner.steps import keys
from provisioner.steps.base import Resource, Step
from provisioner.steps.ec2_common import retry_while

T = TypeVar("T")

NOT_FOUND = ("ResourceNotFoundException",)
ROUTE_NOT_FOUND = ("InvalidRoute.NotFound",)
OBSERVATIONS = "observations"
METASTORE_OBSERVATION = "metastore-addresses"
# Creating or deleting a firewall takes several minutes (often 5-10); AWS documents no upper bound.
FIREWALL_POLL_SECONDS = 15
FIREWALL_DEADLINE_SECONDS = 30 * 60
POLICY_POLL_SECONDS = 5
# Each protection the firewall keeps on, and how `status` names it when off.
PROTECTIONS = {"DeleteProtection": "delete protection off",
               "SubnetChangeProtection": "subnet change protection off",
               "FirewallPolicyChangeProtection": "policy change protection off"}
POLICY_DEADLINE_SECONDS = 10 * 60
# DeleteFirewallPolicy and DeleteRuleGroup answer InvalidOperationException ("still in use") for a while after the
# firewall or policy that used them is gone: AWS frees them a little later.
IN_USE = ("InvalidOperationException",)
IN_USE_DEADLINE_SECONDS = 5 * 60
# Firewall states that waiting does not end (botocore's network-firewall model): a firewall or endpoint
# (attachment) FAILED cannot recover; an endpoint in ERROR has an issue its owner must fix (the StatusMessage says
# which); a configuration CAPACITY_CONSTRAINED does not fit the firewall.
FAILED_FIREWALL_STATUSES = ("FAILED",)
FAILED_ATTACHMENT_STATUSES = ("FAILED", "ERROR")
CAPACITY_CONSTRAINED = "CAPACITY_CONSTRAINED"


def rule_group_key(role: str) -> str:
    return keys.hub("firewall/rule-group", role)


POLICY_KEY = keys.hub("firewall/policy")
FIREWALL_KEY = keys.hub("firewall")
FIREWALL_SUBNET_PREFIX = keys.hub("firewall-subnet") + "/"


def dropped_az_subnets(ctx: Context, azs: tuple[str, ...]) -> set[str]:
    """The firewall subnets of hub AZs the state file still records but `azs` (the config's) no longer has: the
    firewall keeps them mapped until `up --prune` removes them (`subnets.DroppedAzEndpoint`)."""
    return {str(entry["id"]) for key, entry in ctx.state.resources().items()
            if key.startswith(FIREWALL_SUBNET_PREFIX) and key[len(FIREWALL_SUBNET_PREFIX):] not in azs
            and entry.get("id")}


LOGGING_KEY = keys.hub("firewall/logging")


def log_group_key(log_type: str) -> str:
    return keys.hub("firewall/log-group", log_type.lower())


def routes_key(az: str) -> str:
    return keys.hub("firewall/routes", az)


# -- shared helpers ---------------------------------------------------------------------------------------------


def _wait_gone(ctx: Context, key: str, what: str, describe: Callable[[], Any],
               status: Callable[[Any], str] = lambda got: "DELETING", poll: float = POLICY_POLL_SECONDS,
               deadline: float = POLICY_DEADLINE_SECONDS,
               failed: Callable[[Any], str | None] = lambda got: None) -> None:
    """Poll `describe` until it finds nothing (deletes in Network Firewall are asynchronous)."""
    with translate(f"wait for {what} to go"):
        _poll(ctx, key, f"{what} to go", describe, lambda got: got is None, status, poll, deadline, failed)


def _describe_recorded(ctx: Context, key: str, describe: Callable[..., Any], arn_param: str) -> Any:
    """Describe the resource by the ARN the state file recorded; None when none is recorded or it is gone."""
    arn = ctx.state.resource_id(key)
    return none_if_missing(NOT_FOUND, describe, **{arn_param: arn}) if arn else None


def _described_firewall(ctx: Context, arn: str | None, keep: bool = True) -> Any:
    """The recorded firewall described, once per command for the steps that find it (None: none recorded, or
    gone). Its waits read it again. Not `keep`: a read the caller's changes would leave stale (logging changes
    the firewall's update token) is not kept for the firewall's own step."""
    if not arn:
        return None
    nfw = ctx.aws.network_firewall
    key = f"describe_firewall {arn}"

    def load() -> Any:
        return none_if_missing(NOT_FOUND, nfw.describe_firewall, FirewallArn=arn)

    return ctx.reads.get(key, load) if keep else ctx.reads.peek(key, load)


def _require_owned(ctx: Context, what: str, tags: dict[str, str]) -> None:
    if not is_owned(tags, ctx.deployment):
        raise CloudError(f"{what} exists but is not tagged as part of deployment {ctx.deployment}; provision will "
                         "not adopt it: delete it or choose another deployment name")


def _missing_tags(ctx: Context, step: Step, have: dict[str, str], name: str | None = None) -> dict[str, str]:
    return {k: v for k, v in ctx.tags(step, name).items() if have.get(k) != v}


def _recorded(ctx: Context, key: str, what: str, output: str = "id") -> Any:
    """Another step's recorded ID or output; a CloudError (which `status` reports) when there is none."""
    entry = ctx.state.resource(key)
    value = None if entry is None else (entry.get("id") if output == "id" else entry.get("outputs", {}).get(output))
    if not value:
        raise CloudError(f"{what} ({key}) is not in the state file; run `provision up`")
    return value


def _poll(ctx: Context, key: str, what: str, read: Callable[[], T], done: Callable[[T], bool],
          describe: Callable[[T], str], delay: float, deadline: float,
          failed: Callable[[T], str | None] = lambda value: None) -> T:
    """Read until `done`; at most `deadline / delay` reads, each `delay` apart (scaled by the poll scale). A read
    for which `failed` gives a reason ends the wait at once with that reason: waiting would not change it."""
    last: list[T] = []

    def once() -> Read:
        last[:] = [read()]
        ready = done(last[0])
        return Read(ready, note=describe(last[0]), failed=None if ready else failed(last[0]))

    reads = Resource("")  # counts the reads towards the deadline
    block(ctx, key, lambda: poll_once(reads, what, once, every=delay, deadline=deadline))
    return last[0]


def _create_or_adopt(ctx: Context, what: str, create: Callable[[], dict[str, Any]],
                     describe: Callable[[], dict[str, Any]], member: str) -> dict[str, Any]:
    """Create a named Network Firewall resource; when the name is taken (botocore retried a create whose reply
    was lost, and the first attempt made it), adopt what is there if it carries this deployment's tags."""
    try:
        return create()
    except ClientError as e:
        if error_code(e) != "InvalidRequestException" or "already exist" not in str(e):
            raise
    got = describe()
    _require_owned(ctx, what, tag_map(got[member].get("Tags")))
    return got


def _token(token: str | None) -> dict[str, str]:
    """The UpdateToken argument: optional in the firewall's update calls, and botocore refuses None."""
    return {"UpdateToken": token} if token else {}


def _delete_once_released(ctx: Context, delete: Callable[..., Any], **params: Any) -> bool:
    """Delete a policy or rule group whose user (firewall, policy) has just gone: AWS still answers "in use" for
    a while, so that answer is retried within IN_USE_DEADLINE_SECONDS. False when it was already gone."""
    return bool(retry_while(ctx, IN_USE, IN_USE_DEADLINE_SECONDS, gone_if_missing, NOT_FOUND, delete, **params))


def _utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

