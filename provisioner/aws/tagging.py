"""The tags of the deployment's resources, read once per command with the Resource Groups Tagging API.

One paginated `GetResources` (TagFilters: the deployment tag; ResourceTypeFilters: the types below) answers the
tags of every resource of those types that carries this deployment's tag, by ARN, instead of one
`ListTagsForResource` per resource. It is shared by every step of the command through `ctx.reads`.

The Tagging API is eventually consistent: it lags behind creates and tag changes (seconds, at times minutes). So
an ARN missing from the answer proves nothing: a step reads such a resource's tags on its own, as before (which
is also how a resource found by name without our tag is refused). Only for an ARN it does list does its answer
replace `ListTagsForResource`; a tag changed outside moments before may show as it was, and `status` sees the
change on a later run.
"""

from __future__ import annotations

from collections.abc import Callable

from botocore.exceptions import ClientError

from provisioner.aws.errors import error_code
from provisioner.context import Context
from provisioner.design.naming import DEPLOYMENT_TAG, tag_map

# `service:resource-type`, as the type appears in the resource's ARN (GetResources, ResourceTypeFilters):
#   arn:aws:logs:<region>:<account>:log-group:<name>
#   arn:aws:route53resolver:<region>:<account>:firewall-domain-list/<id>   (also firewall-rule-group/<id>,
#   resolver-query-log-config/<id>)
#   arn:aws:network-firewall:<region>:<account>:stateful-rulegroup/<name>   (also firewall-policy/<name>)
#   arn:aws:ec2:<region>:<account>:elastic-ip/<allocation id>   (also internet-gateway/<id>)
RESOURCE_TYPES = (
    "ec2:elastic-ip",
    "ec2:internet-gateway",
    "logs:log-group",
    "network-firewall:firewall-policy",
    "network-firewall:stateful-rulegroup",
    "route53resolver:firewall-domain-list",
    "route53resolver:firewall-rule-group",
    "route53resolver:resolver-query-log-config",
)
# Without tag:GetResources (an operator policy from before it was needed) every resource is read on its own.
NOT_ALLOWED = ("AccessDeniedException", "AccessDenied")


def _arn(arn: str) -> str:
    # Some answers name a log group with a trailing `:*` (DescribeLogGroups' `arn`); the key is the ARN without it.
    return arn.removesuffix(":*")


def tags_by_arn(ctx: Context) -> dict[str, dict[str, str]]:
    """The tags of each resource of RESOURCE_TYPES tagged with this deployment, by ARN, as the Tagging API
    answered at the first call of this command. Absence proves nothing (see the module's docstring)."""

    def load() -> dict[str, dict[str, str]]:
        found: dict[str, dict[str, str]] = {}
        pages = ctx.aws.tagging.get_paginator("get_resources").paginate(
            TagFilters=[{"Key": DEPLOYMENT_TAG, "Values": [ctx.deployment]}], ResourceTypeFilters=list(RESOURCE_TYPES))
        try:
            for page in pages:
                found.update({_arn(r["ResourceARN"]): tag_map(r.get("Tags")) for r in page["ResourceTagMappingList"]})
        except ClientError as e:
            if error_code(e) not in NOT_ALLOWED:
                raise
            return {}
        return found

    answer: dict[str, dict[str, str]] = ctx.reads.get("tags", load)
    return answer


def tags_of(ctx: Context, arn: str, read: Callable[[], dict[str, str]]) -> dict[str, str]:
    """The tags of one resource: from the shared answer when it lists `arn`, else `read()` (the service's own
    ListTagsForResource) now."""
    listed = tags_by_arn(ctx).get(_arn(arn))
    return dict(listed) if listed is not None else dict(read())
