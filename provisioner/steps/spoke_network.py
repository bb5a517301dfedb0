"""A spoke VPC (one per configured spoke): where the Databricks workspace's clusters run.

Owns, per spoke: the VPC (DNS support and hostnames on, as Databricks and private DNS need); two workspace
subnets and two TGW-attachment subnets across the layout's two spoke AZs; one private route table, made the
VPC's main table and associated with the workspace subnets, whose only way out is `0/0 -> TGW`; the
Databricks security group; an S3 gateway endpoint whose policy allows only the root bucket and the region's
Databricks buckets (without one it is an unfiltered path to every bucket in the region, around the
firewall); STS and Kinesis interface endpoints with private DNS and the same kind of policies.

Found by recorded ID, then by tags. Endpoints are created with an idempotency token. Deleted in reverse:
endpoints (waited out), the security group, the route table (its main role handed back first), subnets, VPC.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from provisioner.aws.errors import CloudError, applied
from provisioner.context import Context
from provisioner.design import routes as rt
from provisioner.design.config import Config
from provisioner.design.layout import Layout, SpokeLayout, layout
from provisioner.design.naming import resource_name, root_bucket_name
from provisioner.design.policies import kinesis_endpoint_policy, s3_endpoint_policy, sts_endpoint_policy, to_json
from provisioner.design.security_group import (
    EGRESS,
    INGRESS,
    Rule,
    rules_from_permissions,
    to_permission,
    workspace_rules,
)
from provisioner.poll import Pending
from provisioner.steps import keys
from provisioner.steps.base import Resource, Step, aspect, cannot_fix
from provisioner.steps.ec2_common import (
    SECURITY_GROUP,
    VPC_ENDPOINT,
    Ec2Step,
    client_token,
    create_once,
    policy_differs,
    retry_while,
)
from provisioner.steps.vpc import DEPENDENCY_RELEASE_DEADLINE, RouteTable, Subnet, Vpc


class WorkspaceSecurityGroup(Ec2Step):
    """Databricks' rules (design/security_group.py) and nothing else: AWS's default allow-all egress goes."""

    kind = "security group"
    resource = SECURITY_GROUP
    exists_waiter = "SecurityGroupExists"
    description = "Databricks workspace"  # the group's description, before the deployment and spoke

    def __init__(self, config: Config, spoke: str) -> None:
        self.spoke = spoke
        self.rules = workspace_rules(config.legacy_hive_metastore)
        super().__init__(keys.spoke(spoke, "security-group"), resource_name(config.deployment, spoke, "workspace-sg"),
                         (keys.spoke(spoke, "vpc"),))

    def details(self) -> dict[str, Any]:
        return {"rules": "; ".join(r.describe() for r in sorted(self.rules))}

    def create(self, ctx: Context) -> Resource:
        got = create_once(ctx, self, SECURITY_GROUP, lambda ec2: ec2.create_security_group(
            GroupName=self.name, VpcId=ctx.output(keys.spoke(self.spoke, "vpc")),
            Description=f"{self.description} {ctx.deployment}-{self.spoke}",
            TagSpecifications=self.tag_specifications(ctx)))
        return self.created(ctx, {"GroupId": got["GroupId"]})

    def poll(self, ctx: Context, res: Resource) -> Resource | Pending:
        # The create call returns only the ID; the rules (AWS's default egress rule) come from a describe, once
        # AWS lists the new group.
        got = super().poll(ctx, res)
        return got if isinstance(got, Pending) or "IpPermissionsEgress" in got.live else self.reread(ctx, got)

    def wanted_rules(self, ctx: Context) -> frozenset[Rule]:
        return self.rules

    def ensure_aspects(self, ctx: Context, res: Resource, apply: bool, changes: list[str]) -> None:
        ec2 = ctx.aws.ec2
        wanted = self.wanted_rules(ctx)
        have = (rules_from_permissions(INGRESS, res.live.get("IpPermissions", []), res.id)
                | rules_from_permissions(EGRESS, res.live.get("IpPermissionsEgress", []), res.id))
        calls: dict[tuple[str, str], Callable[..., Any]] = {
            (INGRESS, "add"): ec2.authorize_security_group_ingress,
            (EGRESS, "add"): ec2.authorize_security_group_egress,
            (INGRESS, "remove"): ec2.revoke_security_group_ingress,
            (EGRESS, "remove"): ec2.revoke_security_group_egress,
        }
        for verb, rules in (("remove", have - wanted), ("add", wanted - have)):
            for direction in (INGRESS, EGRESS):
                chosen = sorted(r for r in rules if r.direction == direction)
                what = "missing" if verb == "add" else "unexpected"
                if aspect(changes, apply, f"{what}: {', '.join(r.describe() for r in chosen)}", bool(chosen)):
                    self._change(ctx, res, calls[(direction, verb)], verb, direction, chosen)

    def _change(self, ctx: Context, res: Resource, call: Callable[..., Any], verb: str, direction: str,
                rules: list[Rule]) -> None:
        """Authorize or revoke rules; when AWS answers that some already are so (our own attempt whose reply was
        lost), the group is read again and only what still differs is sent."""
        code = "InvalidPermission.Duplicate" if verb == "add" else "InvalidPermission.NotFound"
        if applied((code,), call, GroupId=res.id, IpPermissions=_permissions(rules, res.id)):
            return
        live = self.reread(ctx, res).live
        have = (rules_from_permissions(INGRESS, live.get("IpPermissions", []), res.id)
                | rules_from_permissions(EGRESS, live.get("IpPermissionsEgress", []), res.id))
        rest = [r for r in rules if (r in have) != (verb == "add")]
        if rest:
            call(GroupId=res.id, IpPermissions=_permissions(rest, res.id))

    def delete_owned(self, ctx: Context, res: Resource) -> None:
        retry_while(ctx, ("DependencyViolation",), DEPENDENCY_RELEASE_DEADLINE, self.gone_if_missing,
                    ctx.aws.ec2.delete_security_group, GroupId=res.id)


def _permissions(rules: list[Rule], group_id: str) -> list[dict[str, Any]]:
    return [to_permission(r, group_id) for r in rules]


class VpcEndpoint(Ec2Step):
    """A VPC endpoint with a restrictive policy; gateway or interface, as subclasses say."""

    kind = "VPC endpoint"
    resource = VPC_ENDPOINT
    deleted_waiter = "VpcEndpointDeleted"
    endpoint_type = ""

    def __init__(self, config: Config, spoke: str, what: str, service: str, needs: tuple[str, ...]) -> None:
        self.config = config
        self.spoke = spoke
        self.service = service
        super().__init__(keys.spoke(spoke, what), resource_name(config.deployment, spoke, what),
                         (keys.spoke(spoke, "vpc"), *needs))

    def service_name(self) -> str:
        return f"com.amazonaws.{self.config.region}.{self.service}"

    def details(self) -> dict[str, Any]:
        return {"service": self.service_name(), "type": self.endpoint_type}

    def policy(self, ctx: Context) -> dict[str, Any] | None:
        """The endpoint policy; None for a service that takes none (AWS then attaches full access)."""
        raise NotImplementedError

    def create_params(self, ctx: Context) -> dict[str, Any]:
        raise NotImplementedError

    def create(self, ctx: Context) -> Resource:
        vpc_id = ctx.output(keys.spoke(self.spoke, "vpc"))
        policy = self.policy(ctx)
        endpoint = ctx.aws.ec2.create_vpc_endpoint(
            VpcEndpointType=self.endpoint_type, VpcId=vpc_id, ServiceName=self.service_name(),
            **({} if policy is None else {"PolicyDocument": to_json(policy)}),
            ClientToken=client_token(ctx, self, vpc_id), TagSpecifications=self.tag_specifications(ctx),
            **self.create_params(ctx))["VpcEndpoint"]
        return self.created(ctx, endpoint)

    def ensure_aspects(self, ctx: Context, res: Resource, apply: bool, changes: list[str]) -> None:
        live = res.live
        if live.get("ServiceName") != self.service_name() or live.get("VpcId") != ctx.output(
                keys.spoke(self.spoke, "vpc")):
            cannot_fix(changes, apply, self.name,
                       f"is for {live.get('ServiceName')} in {live.get('VpcId')} (delete it, then `up`)")
            return
        modify: dict[str, Any] = {}
        policy = self.policy(ctx)
        if policy is not None and aspect(changes, apply, "endpoint policy",
                                         policy_differs(live.get("PolicyDocument"), policy)):
            modify["PolicyDocument"] = to_json(policy)
        self.ensure_placement(ctx, res, apply, changes, modify)
        if modify:
            ctx.aws.ec2.modify_vpc_endpoint(VpcEndpointId=res.id, **modify)

    def ensure_placement(self, ctx: Context, res: Resource, apply: bool, changes: list[str],
                         modify: dict[str, Any]) -> None:
        return None

    def delete_owned(self, ctx: Context, res: Resource) -> None:
        # DeleteVpcEndpoints reports per-endpoint failures in the answer instead of raising.
        failed = ctx.aws.ec2.delete_vpc_endpoints(VpcEndpointIds=[res.id]).get("Unsuccessful", [])
        errors = [f.get("Error", {}) for f in failed if f.get("Error", {}).get("Code") not in self.resource.missing]
        if errors:
            raise CloudError(f"deleting VPC endpoint {res.id} failed: {errors[0].get('Code')}: "
                             f"{errors[0].get('Message')}")


def _set_diff(changes: list[str], apply: bool, what: str, have: list[str], wanted: list[str], add_key: str,
              remove_key: str, modify: dict[str, Any]) -> None:
    add, remove = sorted(set(wanted) - set(have)), sorted(set(have) - set(wanted))
    if aspect(changes, apply, f"{what} {sorted(have)}, not {sorted(wanted)}", bool(add or remove)):
        modify.update({k: v for k, v in ((add_key, add), (remove_key, remove)) if v})


class S3GatewayEndpoint(VpcEndpoint):
    endpoint_type = "Gateway"

    def __init__(self, config: Config, spoke: str) -> None:
        super().__init__(config, spoke, "s3-endpoint", "s3", (keys.spoke(spoke, "route-table"),))

    def details(self) -> dict[str, Any]:
        return {**super().details(), "route_table": keys.spoke(self.spoke, "route-table"),
                "buckets": ", ".join(self._buckets())}

    def _buckets(self) -> tuple[str, ...]:
        return (root_bucket_name(self.config.deployment, self.spoke), *layout(self.config).region.databricks_buckets)

    def policy(self, ctx: Context) -> dict[str, Any]:
        region = ctx.layout.region
        return s3_endpoint_policy(root_bucket_name(ctx.deployment, self.spoke),
                                  (*region.artifact_buckets, region.system_tables_bucket, region.datasets_bucket),
                                  region.log_bucket)

    def create_params(self, ctx: Context) -> dict[str, Any]:
        return {"RouteTableIds": [ctx.output(keys.spoke(self.spoke, "route-table"))]}

    def ensure_placement(self, ctx: Context, res: Resource, apply: bool, changes: list[str],
                         modify: dict[str, Any]) -> None:
        _set_diff(changes, apply, "route tables", res.live.get("RouteTableIds", []),
                  [ctx.output(keys.spoke(self.spoke, "route-table"))], "AddRouteTableIds", "RemoveRouteTableIds",
                  modify)


class InterfaceEndpoint(VpcEndpoint):
    """An interface endpoint in both workspace subnets, behind the workspace security group, with private DNS
    (so the service's usual hostname resolves to it inside the VPC)."""

    endpoint_type = "Interface"
    available_waiter = "VpcEndpointAvailable"

    def __init__(self, config: Config, spoke: SpokeLayout, what: str, service: str,
                 policy: Callable[[Context], dict[str, Any]]) -> None:
        self.azs = spoke.azs
        self._policy = policy
        super().__init__(config, spoke.name, what, service,
                         (*(keys.spoke(spoke.name, "workspace-subnet", az) for az in spoke.azs),
                          keys.spoke(spoke.name, "security-group")))

    def policy(self, ctx: Context) -> dict[str, Any] | None:
        return self._policy(ctx)

    def _subnets(self, ctx: Context) -> list[str]:
        return [ctx.output(keys.spoke(self.spoke, "workspace-subnet", az)) for az in self.azs]

    def _groups(self, ctx: Context) -> list[str]:
        return [ctx.output(keys.spoke(self.spoke, "security-group"))]

    def create_params(self, ctx: Context) -> dict[str, Any]:
        # Private DNS needs the VPC's enableDnsSupport and enableDnsHostnames (the VPC step sets both).
        return {"SubnetIds": self._subnets(ctx), "PrivateDnsEnabled": True, "SecurityGroupIds": self._groups(ctx)}

    def ensure_placement(self, ctx: Context, res: Resource, apply: bool, changes: list[str],
                         modify: dict[str, Any]) -> None:
        live = res.live
        _set_diff(changes, apply, "subnets", live.get("SubnetIds", []), self._subnets(ctx), "AddSubnetIds",
                  "RemoveSubnetIds", modify)
        _set_diff(changes, apply, "security groups", [g["GroupId"] for g in live.get("Groups", [])],
                  self._groups(ctx), "AddSecurityGroupIds", "RemoveSecurityGroupIds", modify)
        if aspect(changes, apply, "private DNS off", not live.get("PrivateDnsEnabled")):
            modify["PrivateDnsEnabled"] = True


def _interface_endpoints(config: Config, plan: Layout, spoke: SpokeLayout) -> list[Step]:
    region = plan.region
    found: list[Step] = [InterfaceEndpoint(config, spoke, "sts-endpoint", "sts",
                                           lambda ctx: sts_endpoint_policy(ctx.aws.account_id()))]
    # Where Databricks uses Kinesis in another region (us-west-1 -> us-west-2), an endpoint here would never be
    # used: that traffic goes through the firewall to kinesis.<other region>.amazonaws.com instead.
    if region.kinesis_region == region.name:
        found.append(InterfaceEndpoint(config, spoke, "kinesis-endpoint", "kinesis-streams",
                                       lambda ctx: kinesis_endpoint_policy(region.kinesis_region)))
    return found


def spoke_steps(config: Config, plan: Layout, spoke: SpokeLayout) -> list[Step]:
    s, d = spoke.name, config.deployment
    vpc = keys.spoke(s, "vpc")
    found: list[Step] = [Vpc(vpc, resource_name(d, s), spoke.cidrs.vpc)]
    for az, cidr in zip(spoke.azs, spoke.cidrs.workspace_subnets, strict=True):
        found.append(Subnet(keys.spoke(s, "workspace-subnet", az), resource_name(d, s, "workspace", az), vpc, cidr,
                            az, "Databricks workspace"))
    for az, cidr in zip(spoke.azs, spoke.cidrs.tgw_subnets, strict=True):
        found.append(Subnet(keys.spoke(s, "tgw-subnet", az), resource_name(d, s, "tgw", az), vpc, cidr, az,
                            "Transit Gateway attachment"))
    found += [
        RouteTable(rt.spoke_route_table(plan, spoke), resource_name(d, s, "rt")),
        WorkspaceSecurityGroup(config, s),
        S3GatewayEndpoint(config, s),
        *_interface_endpoints(config, plan, spoke),
    ]
    return found


def steps(config: Config) -> list[Step]:
    plan = layout(config)
    return [step for spoke in plan.spokes for step in spoke_steps(config, plan, spoke)]
