"""The cross-account IAM role (one per spoke) that the Databricks control plane assumes.

Trust: the Databricks AWS account, with our Databricks account ID as external ID. Permissions: the
provider's `customer` (or `restricted`) cross-account policy, inline, byte-identical to Terraform's.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from provisioner.aws.errors import CloudError, error_code, gone_if_missing, none_if_missing, translate
from provisioner.context import Context
from provisioner.design.config import Config
from provisioner.design.naming import is_owned, role_name, tag_list, tag_map
from provisioner.design.policies import assume_role_policy, crossaccount_policy, to_json
from provisioner.steps import keys
from provisioner.steps.base import Resource, Step, aspect
from provisioner.steps.ec2_common import retry_while

POLICY_NAME = "databricks-crossaccount"
IAM_PROPAGATION_DEADLINE = 60.0
PLACEHOLDER_ACCOUNT = "<databricks_account_id>"


class Role(Step):
    """An IAM role with one inline policy, tagged as this deployment's. Subclasses say who may assume it
    (`trust_policy`), what it may do (`permissions_policy`) and what it is for (`description`)."""

    kind = "IAM role"
    policy_name: str = POLICY_NAME

    def trust_policy(self, ctx: Context) -> dict[str, Any]:
        raise NotImplementedError

    def permissions_policy(self, ctx: Context) -> dict[str, Any]:
        raise NotImplementedError

    def description(self, ctx: Context) -> str:
        raise NotImplementedError

    # -- lifecycle -----------------------------------------------------------------------------
    def find(self, ctx: Context) -> Resource | None:
        with translate(f"read IAM role {self.name}"):
            got = none_if_missing(("NoSuchEntity",), ctx.aws.iam.get_role, RoleName=self.name)
        if got is None:
            return None
        role = got["Role"]
        if not is_owned(tag_map(role.get("Tags")), ctx.deployment):
            raise CloudError(f"IAM role {self.name} exists but is not tagged as part of deployment {ctx.deployment}; "
                             "provision will not adopt it: delete it or choose another deployment name")
        return Resource(role["Arn"], outputs={"arn": role["Arn"], "name": self.name}, live=role)

    def create(self, ctx: Context) -> Resource:
        with translate(f"create IAM role {self.name}"):
            try:
                role = ctx.aws.iam.create_role(
                    RoleName=self.name,
                    AssumeRolePolicyDocument=to_json(self.trust_policy(ctx)),
                    Description=self.description(ctx),
                    Tags=tag_list(ctx.tags(self)),
                )["Role"]
            except ClientError as e:
                # Made by our own attempt whose reply was lost (botocore retried it): adopt it if it is ours.
                found = self.find(ctx) if error_code(e) == "EntityAlreadyExists" else None
                if found is None:
                    raise
                return found
        return Resource(role["Arn"], outputs={"arn": role["Arn"], "name": self.name}, live=role)

    def ensure(self, ctx: Context, res: Resource, apply: bool) -> list[str]:
        changes: list[str] = []
        iam = ctx.aws.iam
        with translate(f"update IAM role {self.name}"):
            trust = self.trust_policy(ctx)
            if aspect(changes, apply, "trust policy", res.live.get("AssumeRolePolicyDocument") != trust):
                iam.update_assume_role_policy(RoleName=self.name, PolicyDocument=to_json(trust))
            wanted = self.permissions_policy(ctx)
            got = none_if_missing(("NoSuchEntity",), iam.get_role_policy, RoleName=self.name,
                                  PolicyName=self.policy_name)
            current = got["PolicyDocument"] if got else None
            if aspect(changes, apply, f"inline policy {self.policy_name}", current != wanted):
                # IAM is eventually consistent: right after CreateRole, PutRolePolicy can answer NoSuchEntity.
                retry_while(ctx, ("NoSuchEntity",), IAM_PROPAGATION_DEADLINE, iam.put_role_policy,
                            RoleName=self.name, PolicyName=self.policy_name, PolicyDocument=to_json(wanted))
            have = tag_map(res.live.get("Tags"))
            missing = {k: v for k, v in ctx.tags(self).items() if have.get(k) != v}
            if aspect(changes, apply, "tags", bool(missing)):
                iam.tag_role(RoleName=self.name, Tags=tag_list(missing))
        return changes

    def delete(self, ctx: Context, res: Resource) -> None:
        iam = ctx.aws.iam
        with translate(f"delete IAM role {self.name}"):
            for name in iam.list_role_policies(RoleName=self.name)["PolicyNames"]:
                gone_if_missing(("NoSuchEntity",), iam.delete_role_policy, RoleName=self.name, PolicyName=name)
            for attached in iam.list_attached_role_policies(RoleName=self.name)["AttachedPolicies"]:
                gone_if_missing(("NoSuchEntity",), iam.detach_role_policy, RoleName=self.name,
                                PolicyArn=attached["PolicyArn"])
            gone_if_missing(("NoSuchEntity",), iam.delete_role, RoleName=self.name)


class CrossAccountRole(Role):
    def __init__(self, config: Config, spoke: str) -> None:
        self.config = config
        self.spoke = spoke
        restricted = config.crossaccount_policy_type == "restricted"
        needs = (keys.spoke(spoke, "vpc"), keys.spoke(spoke, "security-group")) if restricted else ()
        super().__init__(keys.spoke(spoke, "role"), role_name(config.deployment, spoke), needs)

    def details(self) -> dict[str, Any]:
        return {"policy": self.config.crossaccount_policy_type,
                "external_id": self.config.databricks_account_id or PLACEHOLDER_ACCOUNT}

    # -- what it should be ---------------------------------------------------------------------
    def trust_policy(self, ctx: Context) -> dict[str, Any]:
        if not self.config.databricks_account_id:
            raise CloudError("databricks_account_id is not set; set it in provision.toml or DATABRICKS_ACCOUNT_ID")
        return assume_role_policy(self.config.databricks_account_id)

    def permissions_policy(self, ctx: Context) -> dict[str, Any]:
        if self.config.crossaccount_policy_type == "customer":
            return crossaccount_policy("customer")
        return crossaccount_policy(
            "restricted", aws_account_id=ctx.aws.account_id(), region=self.config.region,
            vpc_id=ctx.output(keys.spoke(self.spoke, "vpc")),
            security_group_id=ctx.output(keys.spoke(self.spoke, "security-group")))

    def description(self, ctx: Context) -> str:
        return f"Databricks cross-account role for workspace {ctx.deployment}-{self.spoke}"


def steps(config: Config) -> list[Step]:
    return [CrossAccountRole(config, spoke.name) for spoke in config.spokes]
