"""The parts every VPC of the deployment is built from: the VPC itself, its subnets and its route tables.

The hub and spoke families compose these; what is special about each lives in those families.
"""

from __future__ import annotations

from typing import Any

from provisioner.aws.errors import CloudError, gone_if_missing
from provisioner.context import Context
from provisioner.design import routes as rt
from provisioner.design.naming import is_owned, tag_list, tag_map
from provisioner.design.naming import tags as naming_tags
from provisioner.steps.base import Resource, aspect, cannot_fix
from provisioner.steps.ec2_common import (
    ROUTE_TABLE,
    SUBNET,
    VPC,
    Ec2Step,
    client_token,
    create_once,
    default_security_groups,
    describe,
    ensure_gateway_association,
    ensure_main,
    ensure_routes,
    ensure_subnet_associations,
    replace_association,
    retry_while,
)

# After a NAT gateway, endpoint or TGW attachment is deleted, AWS takes a few minutes to release its network
# interfaces; until then deleting the subnet, security group or VPC fails with DependencyViolation.
DEPENDENCY_RELEASE_DEADLINE = 600.0
# Disassociating a route table is asynchronous (an association passes through `disassociating`, a gateway
# association for a while); until it is done AWS refuses to delete the table with DependencyViolation.
ASSOCIATION_RELEASE_DEADLINE = 300.0


class Vpc(Ec2Step):
    kind = "VPC"
    resource = VPC
    replace_on = ("cidr",)
    available_waiter = "VpcAvailable"

    def __init__(self, key: str, name: str, cidr: str, dns: bool = True) -> None:
        self.cidr = cidr
        # DNS support and hostnames, which a spoke needs (Databricks, and private DNS on its interface endpoints).
        # The hub runs nothing that resolves a name: its VPC keeps what it has, unread (docs/network.md).
        self.dns = dns
        super().__init__(key, name)

    def details(self) -> dict[str, Any]:
        return {"cidr": self.cidr}

    def outputs(self, item: Any) -> dict[str, Any]:
        return {"cidr": item.get("CidrBlock")}

    def create(self, ctx: Context) -> Resource:
        vpc = create_once(ctx, self, VPC, lambda ec2: ec2.create_vpc(
            CidrBlock=self.cidr, TagSpecifications=self.tag_specifications(ctx))["Vpc"])
        return self.created(ctx, vpc)

    def ensure_aspects(self, ctx: Context, res: Resource, apply: bool, changes: list[str]) -> None:
        if res.live.get("CidrBlock") != self.cidr:
            cannot_fix(changes, apply, self.name, f"CIDR is {res.live.get('CidrBlock')}, config says {self.cidr} "
                       "(needs `down`, then `up`)")
        if self.dns:
            self._dns_on(ctx, res.id, changes, apply)
        self._empty_default_group(ctx, res.id, changes, apply)

    @staticmethod
    def _dns_on(ctx: Context, vpc_id: str, changes: list[str], apply: bool) -> None:
        """Databricks needs both (and private DNS on interface endpoints needs both); AWS takes one attribute per
        call, and hostnames only once DNS support is on."""
        ec2 = ctx.aws.ec2
        for attribute, field in (("enableDnsSupport", "EnableDnsSupport"),
                                 ("enableDnsHostnames", "EnableDnsHostnames")):
            value = ec2.describe_vpc_attribute(VpcId=vpc_id, Attribute=attribute)[field]["Value"]
            if aspect(changes, apply, f"{attribute} off", not value):
                ec2.modify_vpc_attribute(VpcId=vpc_id, **{field: {"Value": True}})

    @staticmethod
    def _empty_default_group(ctx: Context, vpc_id: str, changes: list[str], apply: bool) -> None:
        """The VPC's default security group keeps no rule (CIS AWS 5.4): anything launched into it by mistake
        can talk to nothing. AWS makes it with an allow-all egress rule and an allow-from-itself ingress rule."""
        ec2 = ctx.aws.ec2
        for group in default_security_groups(ctx, vpc_id):
            for direction, revoke in (("IpPermissions", ec2.revoke_security_group_ingress),
                                      ("IpPermissionsEgress", ec2.revoke_security_group_egress)):
                rules = group.get(direction) or []
                label = "ingress" if direction == "IpPermissions" else "egress"
                if aspect(changes, apply, f"default security group {group['GroupId']} has {len(rules)} {label} "
                          f"rule{'s' if len(rules) != 1 else ''}", bool(rules)):
                    gone_if_missing(("InvalidPermission.NotFound",), revoke, GroupId=group["GroupId"],
                                    IpPermissions=rules)

    def delete_owned(self, ctx: Context, res: Resource) -> None:
        retry_while(ctx, ("DependencyViolation",), DEPENDENCY_RELEASE_DEADLINE, self.gone_if_missing,
                    ctx.aws.ec2.delete_vpc, VpcId=res.id)


class Subnet(Ec2Step):
    kind = "subnet"
    resource = SUBNET
    replace_on = ("cidr", "az")
    available_waiter = "SubnetAvailable"

    def __init__(self, key: str, name: str, vpc_key: str, cidr: str, az: str, role: str) -> None:
        self.vpc_key = vpc_key
        self.cidr = cidr
        self.az = az
        self.role = role
        super().__init__(key, name, (vpc_key,))

    def details(self) -> dict[str, Any]:
        return {"cidr": self.cidr, "az": self.az, "role": self.role}

    def outputs(self, item: Any) -> dict[str, Any]:
        return {"cidr": item.get("CidrBlock"), "az": item.get("AvailabilityZone"), "vpc": item.get("VpcId")}

    def create(self, ctx: Context) -> Resource:
        subnet = create_once(ctx, self, SUBNET, lambda ec2: ec2.create_subnet(
            VpcId=ctx.output(self.vpc_key), CidrBlock=self.cidr, AvailabilityZone=self.az,
            TagSpecifications=self.tag_specifications(ctx))["Subnet"])
        return self.created(ctx, subnet)

    def ensure_aspects(self, ctx: Context, res: Resource, apply: bool, changes: list[str]) -> None:
        live = (res.live.get("CidrBlock"), res.live.get("AvailabilityZone"), res.live.get("VpcId"))
        if live != (self.cidr, self.az, ctx.output(self.vpc_key)):
            cannot_fix(changes, apply, self.name, f"is {live[0]} in {live[1]} of {live[2]}, config says "
                       f"{self.cidr} in {self.az} (needs `down`, then `up`)")

    def delete_owned(self, ctx: Context, res: Resource) -> None:
        retry_while(ctx, ("DependencyViolation",), DEPENDENCY_RELEASE_DEADLINE, self.gone_if_missing,
                    ctx.aws.ec2.delete_subnet, SubnetId=res.id)


class RouteTable(Ec2Step):
    """A VPC route table as `design.routes` describes it: the routes this family makes, its subnet (or
    gateway) associations, and whether it is the VPC's main table. Routes others make in it are left alone."""

    kind = "route table"
    resource = ROUTE_TABLE
    exists_waiter = "RouteTableExists"

    def __init__(self, table: rt.RouteTable, name: str) -> None:
        self.table = table
        super().__init__(table.key, name, table.needs)

    def details(self) -> dict[str, Any]:
        found: dict[str, Any] = {"routes": ", ".join(r.describe() for r in self.table.routes_of(rt.NETWORK))}
        if self.table.routes_of(rt.FIREWALL):
            found["firewall_routes"] = ", ".join(r.describe() for r in self.table.routes_of(rt.FIREWALL))
        if self.table.subnets:
            found["subnets"] = ", ".join(self.table.subnets)
        if self.table.gateway:
            found["edge"] = self.table.gateway
        if self.table.main:
            found["main"] = True
        return found

    def create(self, ctx: Context) -> Resource:
        vpc_id = ctx.output(self.table.vpc)
        table = ctx.aws.ec2.create_route_table(VpcId=vpc_id, TagSpecifications=self.tag_specifications(ctx),
                                               ClientToken=client_token(ctx, self, vpc_id))["RouteTable"]
        return self.created(ctx, table)

    def wanted_routes(self, ctx: Context) -> dict[str, tuple[str, str]]:
        return {r.destination: (rt.CREATE_ROUTE_PARAM[r.target_kind], ctx.output(r.target))
                for r in self.table.routes_of(rt.NETWORK)}

    def ensure_aspects(self, ctx: Context, res: Resource, apply: bool, changes: list[str]) -> None:
        ec2 = ctx.aws.ec2
        vpc_id = ctx.output(self.table.vpc)
        if res.live.get("VpcId") != vpc_id:
            cannot_fix(changes, apply, self.name, f"belongs to {res.live.get('VpcId')}, not {vpc_id} "
                       "(needs `down`, then `up`)")
            return
        ensure_subnet_associations(ec2, res.id, res.live, [ctx.output(s) for s in self.table.subnets], changes, apply)
        if self.table.main:
            ensure_main(ec2, res.id, vpc_id, res.live, changes, apply)
        if self.table.gateway:
            ensure_gateway_association(ec2, res.id, res.live, ctx.output(self.table.gateway), changes, apply)
        ensure_routes(ec2, res.id, res.live.get("Routes", []), self.wanted_routes(ctx), changes, apply,
                      others=[r.destination for r in self.table.routes if r.owner != rt.NETWORK])

    def delete_owned(self, ctx: Context, res: Resource) -> None:
        ec2 = ctx.aws.ec2
        for assoc in res.live.get("Associations", []):
            if assoc.get("Main"):
                self._give_back_main(ctx, res, assoc["RouteTableAssociationId"])
            elif assoc.get("AssociationState", {}).get("State", "associated") in ("associated", "associating"):
                gone_if_missing(("InvalidAssociationID.NotFound",), ec2.disassociate_route_table,
                                AssociationId=assoc["RouteTableAssociationId"])
        retry_while(ctx, ("DependencyViolation",), ASSOCIATION_RELEASE_DEADLINE, self.gone_if_missing,
                    ec2.delete_route_table, RouteTableId=res.id)

    def _give_back_main(self, ctx: Context, res: Resource, association_id: str) -> None:
        """AWS refuses to delete a VPC's main route table: hand the role back to the table the VPC came with
        (the one not made by this step), or to a fresh one if that was deleted."""
        ec2 = ctx.aws.ec2
        vpc_id = str(res.live["VpcId"])
        others = [t for t in describe(ec2, ROUTE_TABLE, Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])
                  if t["RouteTableId"] != res.id]
        # Prefer the VPC's own table; then any table of ours; never one another deployment tagged.
        others.sort(key=lambda t: (bool(tag_map(t.get("Tags"))), t["RouteTableId"]))
        others = [t for t in others if not tag_map(t.get("Tags")) or is_owned(tag_map(t.get("Tags")), ctx.deployment)]
        if others:
            replacement = others[0]["RouteTableId"]
        else:
            # Not tagged as this step's component: it is the VPC's, and goes when the VPC goes.
            tags = naming_tags(ctx.deployment, f"{self.key}/vpc-default", f"{self.name}-default", ctx.config.tags)
            replacement = ec2.create_route_table(
                VpcId=vpc_id, TagSpecifications=[{"ResourceType": "route-table", "Tags": tag_list(tags)}],
                ClientToken=client_token(ctx, self, vpc_id, "default"))["RouteTable"]["RouteTableId"]
        if replacement == res.id:
            raise CloudError(f"cannot hand the main route table role of {vpc_id} away from {res.id}")
        replace_association(ec2, association_id, replacement, [{"Name": "vpc-id", "Values": [vpc_id]},
                                                               {"Name": "association.main", "Values": ["true"]}])
