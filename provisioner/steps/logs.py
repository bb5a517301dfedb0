"""CloudWatch log groups: where the firewall, the DNS Firewall's query logging and the VPC flow logs write.

They are the record of what left (or tried to leave) the deployment, so `down` keeps them, with their events and
retention, unless told `--delete-logs`; a later `up` of the same deployment adopts them again (they keep its tags).
"""

from __future__ import annotations

from typing import Any

from provisioner.aws.errors import CloudError, applied, gone_if_missing, translate
from provisioner.aws.tagging import tags_of
from provisioner.context import Context
from provisioner.design.naming import is_owned
from provisioner.design.policies import PARTITION
from provisioner.steps.base import Kept, Resource, Step, aspect

NOT_FOUND = ("ResourceNotFoundException",)


# DescribeLogGroups names at most this many groups a call.
GROUPS_PER_CALL = 50


def deployment_log_groups(ctx: Context) -> dict[str, dict[str, Any]]:
    """Every log group of the deployment (the config's LogGroup steps), by name: one DescribeLogGroups naming
    them all by ARN, per command, shared by their steps."""
    from provisioner.steps import all_steps

    def load() -> dict[str, dict[str, Any]]:
        names = sorted({s.name for s in all_steps(ctx.config) if isinstance(s, LogGroup)})
        prefix = f"arn:{PARTITION}:logs:{ctx.aws.region}:{ctx.aws.account_id()}:log-group:"
        found: dict[str, dict[str, Any]] = {}
        paginator = ctx.aws.logs.get_paginator("describe_log_groups")
        for i in range(0, len(names), GROUPS_PER_CALL):
            chunk = names[i:i + GROUPS_PER_CALL]
            for page in paginator.paginate(logGroupIdentifiers=[prefix + n for n in chunk]):
                found.update({g["logGroupName"]: g for g in page.get("logGroups", []) if g["logGroupName"] in chunk})
        return found

    return dict(ctx.reads.get("log groups", load))


class LogGroup(Step):
    """One log group with a retention period, found by its name and adopted only with this deployment's tags."""

    kind = "CloudWatch log group"

    def __init__(self, key: str, name: str, retention_days: int) -> None:
        self.retention_days = retention_days
        super().__init__(key, name)

    def details(self) -> dict[str, Any]:
        return {"retention_days": self.retention_days}

    def find(self, ctx: Context, fresh: bool = False) -> Resource | None:
        logs = ctx.aws.logs
        with translate(f"read log group {self.name}"):
            group = None if fresh else deployment_log_groups(ctx).get(self.name)
            if group is None:  # not there when the command started (or `fresh`): asked for by name now
                pages = logs.get_paginator("describe_log_groups").paginate(logGroupNamePrefix=self.name)
                group = next((g for page in pages for g in page.get("logGroups", [])
                              if g["logGroupName"] == self.name), None)
            if group is None:
                return None
            arn = group.get("logGroupArn") or group["arn"].removesuffix(":*")
            tags = self._tags(ctx, arn, fresh)
        if not is_owned(tags, ctx.deployment):
            raise CloudError(f"log group {self.name} exists but is not tagged as part of deployment {ctx.deployment};"
                             " provision will not adopt it: delete it or choose another deployment name")
        return Resource(self.name, outputs={"name": self.name, "arn": arn},
                        live={"retention": group.get("retentionInDays"), "tags": tags})

    @staticmethod
    def _tags(ctx: Context, arn: str, fresh: bool) -> dict[str, str]:
        """Its tags: from the deployment's one tag read when that lists it (not for a `fresh` find: that answer
        is from the command's start), else its own ListTagsForResource."""
        def read() -> dict[str, str]:
            return dict(ctx.aws.logs.list_tags_for_resource(resourceArn=arn).get("tags", {}))

        return read() if fresh else tags_of(ctx, arn, read)

    def create(self, ctx: Context) -> Resource:
        with translate(f"create log group {self.name}"):
            if not applied(("ResourceAlreadyExistsException",), ctx.aws.logs.create_log_group,
                           logGroupName=self.name, tags=ctx.tags(self)):
                # Made by our own attempt whose reply was lost (botocore retried it): adopt it if it is ours.
                found = self.find(ctx, fresh=True)
                if found is not None:
                    return found
            # CreateLogGroup answers nothing, and DescribeLogGroups may not list the new group yet: its ARN is
            # built instead, and a new group keeps its logs forever (no retention) until `ensure` sets one.
            arn = f"arn:{PARTITION}:logs:{ctx.aws.region}:{ctx.aws.account_id()}:log-group:{self.name}"
        return Resource(self.name, outputs={"name": self.name, "arn": arn},
                        live={"retention": None, "tags": ctx.tags(self)})

    def ensure(self, ctx: Context, res: Resource, apply: bool) -> list[str]:
        changes: list[str] = []
        logs = ctx.aws.logs
        days = self.retention_days
        with translate(f"configure log group {self.name}"):
            if aspect(changes, apply, f"retention ({days} days)", res.live.get("retention") != days):
                logs.put_retention_policy(logGroupName=self.name, retentionInDays=days)
            have = res.live.get("tags", {})
            missing = {k: v for k, v in ctx.tags(self).items() if have.get(k) != v}
            if aspect(changes, apply, "tags", bool(missing)):
                logs.tag_resource(resourceArn=res.outputs["arn"], tags=missing)
        return changes

    def delete(self, ctx: Context, res: Resource) -> None:
        if not ctx.delete_logs:
            retention = res.live.get("retention")
            kept_for = f"events kept {retention} days" if retention else "events kept forever"
            raise Kept(f"log group {self.name} in {ctx.aws.region} ({kept_for}); kept it: it records what left the "
                       "deployment (`provision down --delete-logs` deletes it)")
        with translate(f"delete log group {self.name}"):
            gone_if_missing(NOT_FOUND, ctx.aws.logs.delete_log_group, logGroupName=self.name)
