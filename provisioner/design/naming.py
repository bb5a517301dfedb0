"""Names and tags of everything a deployment owns.

Every AWS resource carries `Name`, `provisioner:deployment`, `provisioner:component` (the step that made
it) and `ManagedBy=provisioner`, plus the user's tags. The ownership tag is how `find` adopts what a
crashed run left, and how `down` knows what it may delete.
"""

from __future__ import annotations

from collections.abc import Mapping

DEPLOYMENT_TAG = "provisioner:deployment"
COMPONENT_TAG = "provisioner:component"
MANAGED_BY_TAG = "ManagedBy"
MANAGED_BY = "provisioner"


def tags(deployment: str, component: str, name: str, user_tags: Mapping[str, str] | None = None) -> dict[str, str]:
    """The full tag set of one resource; ours win over the user's (validation forbids the clash anyway)."""
    return {
        **(user_tags or {}),
        "Name": name,
        DEPLOYMENT_TAG: deployment,
        COMPONENT_TAG: component,
        MANAGED_BY_TAG: MANAGED_BY,
    }


def tag_list(tag_map: Mapping[str, str]) -> list[dict[str, str]]:
    """EC2/IAM/S3 style: [{"Key": k, "Value": v}, ...]."""
    return [{"Key": k, "Value": v} for k, v in tag_map.items()]


def tag_map(tag_list_: list[dict[str, str]] | None) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in tag_list_ or []}


def is_owned(tag_map_: Mapping[str, str], deployment: str) -> bool:
    return tag_map_.get(DEPLOYMENT_TAG) == deployment and tag_map_.get(MANAGED_BY_TAG) == MANAGED_BY


def resource_name(deployment: str, *parts: str) -> str:
    """`<deployment>-<part>-<part>`: the Name tag, and the name of named resources."""
    return "-".join((deployment, *parts))


def role_name(deployment: str, spoke: str) -> str:
    return resource_name(deployment, spoke, "crossaccount")


def root_bucket_name(deployment: str, spoke: str) -> str:
    return resource_name(deployment, spoke, "rootbucket")


def workspace_deployment_name(deployment: str, spoke: str) -> str:
    """The workspace's DNS label: `https://<this>.cloud.databricks.com`."""
    return resource_name(deployment, spoke)
