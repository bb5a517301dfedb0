"""The Transit Gateway joining the spokes to the hub, its VPC attachments and its two route tables.

Owns: the TGW (default route table association and propagation off, so nothing is connected that is not
meant to be); one VPC attachment per VPC in that VPC's TGW subnets (the hub's with appliance mode on, so a
flow and its return stay in one hub AZ); the "spokes" route table (spoke attachments associated, a static
`0/0 -> hub attachment`, a blackhole for every spoke CIDR and no propagation, so spokes cannot reach each other
through the TGW) and the "hub"
route table (hub attachment associated, every spoke attachment propagating its CIDR). design/routes.py has
both tables as data.

Found by recorded ID, then by tags (live states only). Each TGW and attachment is waited for until
`available` before anything routes to it: AWS accepts no attachment on a pending TGW and no association of a
pending attachment. Deleted in reverse: route tables (associations removed and waited out first: AWS refuses to
delete a table that has any), attachments (waited until deleted), then the TGW.
"""

from __future__ import annotations

from typing import Any

from provisioner.aws import waiters
from provisioner.aws.errors import CloudError, applied, gone_if_missing
from provisioner.context import Context
from provisioner.design import routes as rt
from provisioner.design.config import Config
from provisioner.design.layout import layout
from provisioner.design.naming import resource_name
from provisioner.steps import keys
from provisioner.steps.base import Resource, Step, aspect, cannot_fix
from provisioner.steps.ec2_common import (
    TGW_ANY_ATTACHMENT,
    TGW_ATTACHMENT,
    TGW_ROUTE_TABLE,
    TRANSIT_GATEWAY,
    Ec2Step,
    create_once,
    retry_while,
    within_deployment,
)

# A TGW whose attachments were just deleted can answer IncorrectState for a short while.
TGW_DELETE_DEADLINE = 300.0
NO_ASSOCIATION = ("InvalidAssociation.NotFound",)
NO_PROPAGATION = ("InvalidPropagation.NotFound",)
OPTIONS = {"DefaultRouteTableAssociation": "disable", "DefaultRouteTablePropagation": "disable",
           "AutoAcceptSharedAttachments": "disable", "DnsSupport": "enable", "VpnEcmpSupport": "enable"}


class TransitGateway(Ec2Step):
    kind = "Transit Gateway"
    resource = TRANSIT_GATEWAY
    available_waiter = "TransitGatewayAvailable"
    deleted_waiter = "TransitGatewayDeleted"

    def __init__(self, config: Config) -> None:
        super().__init__(keys.hub("transit-gateway"), resource_name(config.deployment, "tgw"))

    def details(self) -> dict[str, Any]:
        return {"default_association": "off", "default_propagation": "off"}

    def create(self, ctx: Context) -> Resource:
        tgw = create_once(ctx, self, TRANSIT_GATEWAY, lambda ec2: ec2.create_transit_gateway(
            Description=f"provision deployment {ctx.deployment}: spokes to hub", Options=OPTIONS,
            TagSpecifications=self.tag_specifications(ctx))["TransitGateway"])
        return self.created(ctx, tgw)

    def ensure_aspects(self, ctx: Context, res: Resource, apply: bool, changes: list[str]) -> None:
        options = res.live.get("Options", {})
        wrong = {k: "disable" for k in ("DefaultRouteTableAssociation", "DefaultRouteTablePropagation")
                 if options.get(k) != "disable"}
        if aspect(changes, apply, f"{', '.join(wrong)} on", bool(wrong)):
            ctx.aws.ec2.modify_transit_gateway(TransitGatewayId=res.id, Options=wrong)
            waiters.wait(ctx, ctx.aws.ec2, "TransitGatewayAvailable", f"Transit Gateway {res.id} after modifying",
                         TransitGatewayIds=[res.id])

    def delete_owned(self, ctx: Context, res: Resource) -> None:
        retry_while(ctx, ("IncorrectState",), TGW_DELETE_DEADLINE, self.gone_if_missing,
                    ctx.aws.ec2.delete_transit_gateway, TransitGatewayId=res.id)


class VpcAttachment(Ec2Step):
    kind = "TGW attachment"
    resource = TGW_ATTACHMENT
    available_waiter = "TransitGatewayAttachmentAvailable"
    deleted_waiter = "TransitGatewayAttachmentDeleted"

    def __init__(self, key: str, name: str, vpc_key: str, subnet_keys: tuple[str, ...], appliance_mode: bool) -> None:
        self.vpc_key = vpc_key
        self.subnet_keys = subnet_keys
        self.appliance_mode = appliance_mode
        super().__init__(key, name, (keys.hub("transit-gateway"), vpc_key, *subnet_keys))

    def details(self) -> dict[str, Any]:
        return {"subnets": ", ".join(self.subnet_keys), "appliance_mode": self.appliance_mode}

    def _appliance_mode(self) -> str:
        return "enable" if self.appliance_mode else "disable"

    def create(self, ctx: Context) -> Resource:
        attachment = create_once(ctx, self, TGW_ATTACHMENT, lambda ec2: ec2.create_transit_gateway_vpc_attachment(
            TransitGatewayId=ctx.output(keys.hub("transit-gateway")), VpcId=ctx.output(self.vpc_key),
            SubnetIds=[ctx.output(k) for k in self.subnet_keys],
            Options={"DnsSupport": "enable", "ApplianceModeSupport": self._appliance_mode()},
            TagSpecifications=self.tag_specifications(ctx))["TransitGatewayVpcAttachment"])
        return self.created(ctx, attachment)

    def ensure_aspects(self, ctx: Context, res: Resource, apply: bool, changes: list[str]) -> None:
        ec2 = ctx.aws.ec2
        if res.live.get("VpcId") != ctx.output(self.vpc_key) or (
                res.live.get("TransitGatewayId") != ctx.output(keys.hub("transit-gateway"))):
            cannot_fix(changes, apply, self.name, "attaches another VPC or Transit Gateway (delete it, then `up`)")
            return
        wanted = [ctx.output(k) for k in self.subnet_keys]
        have = res.live.get("SubnetIds", [])
        add, remove = sorted(set(wanted) - set(have)), sorted(set(have) - set(wanted))
        mode = res.live.get("Options", {}).get("ApplianceModeSupport")
        modify: dict[str, Any] = {}
        if aspect(changes, apply, f"subnets {have}, not {wanted}", bool(add or remove)):
            modify.update({k: v for k, v in (("AddSubnetIds", add), ("RemoveSubnetIds", remove)) if v})
        if aspect(changes, apply, f"appliance mode {mode}", mode != self._appliance_mode()):
            modify["Options"] = {"ApplianceModeSupport": self._appliance_mode()}
        if modify:
            ec2.modify_transit_gateway_vpc_attachment(TransitGatewayAttachmentId=res.id, **modify)
            waiters.wait(ctx, ec2, "TransitGatewayAttachmentAvailable", f"TGW attachment {res.id} after modifying",
                         TransitGatewayAttachmentIds=[res.id])

    def delete_owned(self, ctx: Context, res: Resource) -> None:
        if str(res.live.get("State")) not in ("deleting", "deleted"):
            self.gone_if_missing(ctx.aws.ec2.delete_transit_gateway_vpc_attachment,
                                 TransitGatewayAttachmentId=res.id)


class TgwRouteTable(Ec2Step):
    """A Transit Gateway route table as design/routes.py has it: associations, propagations, static routes."""

    kind = "TGW route table"
    resource = TGW_ROUTE_TABLE
    available_waiter = "TransitGatewayRouteTableAvailable"
    deleted_waiter = "TransitGatewayRouteTableDeleted"

    def __init__(self, config: Config, table: rt.TgwRouteTable) -> None:
        self.table = table
        super().__init__(table.key, resource_name(config.deployment, "tgw-rt", table.key.rsplit("/", 1)[1]),
                         table.needs)

    def details(self) -> dict[str, Any]:
        return {"associated": ", ".join(self.table.associations),
                "propagating": ", ".join(self.table.propagations) or "none",
                "routes": ", ".join(f"{r.destination} -> blackhole" if r.target_kind == rt.BLACKHOLE
                                    else r.describe() for r in self.table.routes) or "none"}

    def create(self, ctx: Context) -> Resource:
        table = create_once(ctx, self, TGW_ROUTE_TABLE, lambda ec2: ec2.create_transit_gateway_route_table(
            TransitGatewayId=ctx.output(keys.hub("transit-gateway")),
            TagSpecifications=self.tag_specifications(ctx))["TransitGatewayRouteTable"])
        return self.created(ctx, table)

    def ensure_aspects(self, ctx: Context, res: Resource, apply: bool, changes: list[str]) -> None:
        self._ensure_associations(ctx, res.id, apply, changes)
        self._ensure_propagations(ctx, res.id, apply, changes)
        self._ensure_static_routes(ctx, res.id, apply, changes)

    def _ensure_associations(self, ctx: Context, table_id: str, apply: bool, changes: list[str]) -> None:
        ec2 = ctx.aws.ec2
        wanted = {ctx.output(k): k for k in self.table.associations}
        have = set(table_associations(ctx, table_id))
        for attachment_id, key in wanted.items():
            if attachment_id in have or not aspect(changes, apply, f"{key} not associated", True):
                continue
            # An attachment is associated with one TGW route table at most: take it from wherever it is.
            current = ec2.describe_transit_gateway_attachments(
                TransitGatewayAttachmentIds=[attachment_id])["TransitGatewayAttachments"][0].get("Association")
            if current and current.get("TransitGatewayRouteTableId") == table_id:
                continue  # associated since the command's read
            if current and current.get("State") in ("associated", "associating"):
                # The other table's step may be removing the same association at the same time.
                gone_if_missing(NO_ASSOCIATION, ec2.disassociate_transit_gateway_route_table,
                                TransitGatewayRouteTableId=current["TransitGatewayRouteTableId"],
                                TransitGatewayAttachmentId=attachment_id)
                waiters.wait(ctx, ec2, "TransitGatewayRouteTableUnassociated",
                             f"{key} to leave TGW route table {current['TransitGatewayRouteTableId']}",
                             TransitGatewayRouteTableId=current["TransitGatewayRouteTableId"],
                             Filters=[{"Name": "transit-gateway-attachment-id", "Values": [attachment_id]}])
            if not applied(("Resource.AlreadyAssociated",), ec2.associate_transit_gateway_route_table,
                           TransitGatewayRouteTableId=table_id, TransitGatewayAttachmentId=attachment_id):
                now = ec2.describe_transit_gateway_attachments(
                    TransitGatewayAttachmentIds=[attachment_id])["TransitGatewayAttachments"][0].get("Association")
                if (now or {}).get("TransitGatewayRouteTableId") != table_id:
                    raise CloudError(f"{key} ({attachment_id}) is associated with {now}, not {table_id}; rerun `up`")
        for attachment_id in sorted(have - set(wanted)):
            if aspect(changes, apply, f"unexpected attachment {attachment_id} associated", True):
                gone_if_missing(NO_ASSOCIATION, ec2.disassociate_transit_gateway_route_table,
                                TransitGatewayRouteTableId=table_id, TransitGatewayAttachmentId=attachment_id)

    def _ensure_propagations(self, ctx: Context, table_id: str, apply: bool, changes: list[str]) -> None:
        ec2 = ctx.aws.ec2
        wanted = {ctx.output(k): k for k in self.table.propagations}
        # A propagated route names the attachment whose propagation made it: when the routes (read anyway) show
        # exactly the wanted attachments, every wanted propagation is there and no other made a route. Otherwise
        # (one missing, one unwanted, or hidden by a static route to the same CIDR) the propagations are read.
        if propagated_from(table_routes(ctx, table_id)) == set(wanted):
            return
        have = {p["TransitGatewayAttachmentId"] for p in _propagations(ec2, table_id)}
        for attachment_id, key in wanted.items():
            if attachment_id not in have and aspect(changes, apply, f"{key} not propagating", True):
                applied(("TransitGatewayRouteTablePropagation.Duplicate",),
                        ec2.enable_transit_gateway_route_table_propagation, TransitGatewayRouteTableId=table_id,
                        TransitGatewayAttachmentId=attachment_id)
        for attachment_id in sorted(have - set(wanted)):
            # A spoke propagating into the spokes table would let spokes reach each other.
            if aspect(changes, apply, f"unexpected propagation from {attachment_id}", True):
                gone_if_missing(NO_PROPAGATION, ec2.disable_transit_gateway_route_table_propagation,
                                TransitGatewayRouteTableId=table_id, TransitGatewayAttachmentId=attachment_id)

    def _ensure_static_routes(self, ctx: Context, table_id: str, apply: bool, changes: list[str]) -> None:
        ec2 = ctx.aws.ec2
        # destination -> the attachment it goes to, or None for a blackhole (dropped by the TGW)
        wanted = {r.destination: None if r.target_kind == rt.BLACKHOLE else ctx.output(r.target)
                  for r in self.table.routes}
        have = {r["DestinationCidrBlock"]: r for r in table_routes(ctx, table_id)
                if r.get("DestinationCidrBlock") and r.get("Type") == "static"}
        for destination, attachment_id in wanted.items():
            route = have.get(destination)
            target = {"TransitGatewayAttachmentId": attachment_id} if attachment_id else {"Blackhole": True}
            shown = attachment_id or "a blackhole"
            targets = [a.get("TransitGatewayAttachmentId") for a in (route or {}).get("TransitGatewayAttachments", [])]
            if route is None:
                if aspect(changes, apply, f"route {destination} -> {shown} missing", True) and not applied(
                        ("RouteAlreadyExists",), ec2.create_transit_gateway_route, TransitGatewayRouteTableId=table_id,
                        DestinationCidrBlock=destination, **target):
                    ec2.replace_transit_gateway_route(TransitGatewayRouteTableId=table_id,
                                                      DestinationCidrBlock=destination, **target)
                continue
            if attachment_id is None:
                right = route.get("State") == "blackhole" and not targets
            else:
                right = targets == [attachment_id] and route.get("State") != "blackhole"
            if aspect(changes, apply, f"route {destination} goes to {targets or 'a blackhole'}, not {shown}",
                      not right):
                ec2.replace_transit_gateway_route(TransitGatewayRouteTableId=table_id,
                                                  DestinationCidrBlock=destination, **target)
        for destination in sorted(set(have) - set(wanted)):
            if aspect(changes, apply, f"unexpected static route {destination}", True):
                gone_if_missing(("InvalidRoute.NotFound",), ec2.delete_transit_gateway_route,
                                TransitGatewayRouteTableId=table_id, DestinationCidrBlock=destination)

    def delete_owned(self, ctx: Context, res: Resource) -> None:
        ec2 = ctx.aws.ec2
        associated = _associations(ec2, res.id)
        for assoc in associated:
            if assoc.get("State") in ("associated", "associating"):
                gone_if_missing(NO_ASSOCIATION, ec2.disassociate_transit_gateway_route_table,
                                TransitGatewayRouteTableId=res.id,
                                TransitGatewayAttachmentId=assoc["TransitGatewayAttachmentId"])
        if associated:
            waiters.wait(ctx, ec2, "TransitGatewayRouteTableUnassociated",
                         f"TGW route table {res.id} to lose its associations", TransitGatewayRouteTableId=res.id)
        for propagation in _propagations(ec2, res.id):
            gone_if_missing(NO_PROPAGATION, ec2.disable_transit_gateway_route_table_propagation,
                            TransitGatewayRouteTableId=res.id,
                            TransitGatewayAttachmentId=propagation["TransitGatewayAttachmentId"])
        self.gone_if_missing(ec2.delete_transit_gateway_route_table, TransitGatewayRouteTableId=res.id)


def _associations(ec2: Any, table_id: str) -> list[dict[str, Any]]:
    pages = ec2.get_paginator("get_transit_gateway_route_table_associations").paginate(
        TransitGatewayRouteTableId=table_id)
    return [a for page in pages for a in page["Associations"] if a.get("State") != "disassociated"]


def _propagations(ec2: Any, table_id: str) -> list[dict[str, Any]]:
    pages = ec2.get_paginator("get_transit_gateway_route_table_propagations").paginate(
        TransitGatewayRouteTableId=table_id)
    return [p for page in pages for p in page["TransitGatewayRouteTablePropagations"] if p.get("State") != "disabled"]


def associated_with(attachments: list[dict[str, Any]], table_id: str,
                    states: tuple[str, ...] = ("associating", "associated", "disassociating")) -> list[str]:
    """The attachments (as DescribeTransitGatewayAttachments lists them, each with its `Association`) associated
    with this TGW route table."""
    return [a["TransitGatewayAttachmentId"] for a in attachments
            if (a.get("Association") or {}).get("TransitGatewayRouteTableId") == table_id
            and a["Association"].get("State") in states and a.get("State") != "deleted"]


def table_associations(ctx: Context, table_id: str) -> list[str]:
    """The attachments associated with a TGW route table, from the command's one read of the Transit Gateway's
    attachments (one describe for every table), shared with `status`'s egress check."""
    return associated_with(within_deployment(ctx, TGW_ANY_ATTACHMENT), table_id)


def propagated_from(routes: list[dict[str, Any]]) -> set[str]:
    """The attachments named by a TGW route table's propagated routes."""
    return {str(a.get("TransitGatewayAttachmentId")) for r in routes if r.get("Type") == "propagated"
            for a in r.get("TransitGatewayAttachments") or []}


def search_routes(ec2: Any, table_id: str) -> list[dict[str, Any]]:
    """A TGW route table's static and propagated routes."""
    return list(ec2.search_transit_gateway_routes(
        TransitGatewayRouteTableId=table_id, Filters=[{"Name": "type", "Values": ["static", "propagated"]}])["Routes"])


def table_routes(ctx: Context, table_id: str) -> list[dict[str, Any]]:
    """A TGW route table's static and propagated routes, read once per command for this step and `status`'s
    egress check."""
    return list(ctx.reads.get(f"tgw routes {table_id}", lambda: search_routes(ctx.aws.ec2, table_id)))


def steps(config: Config) -> list[Step]:
    plan = layout(config)
    d = config.deployment
    found: list[Step] = [
        TransitGateway(config),
        VpcAttachment(keys.hub("tgw-attachment"), resource_name(d, "hub-tgw-attachment"), keys.hub("vpc"),
                      tuple(keys.hub("tgw-subnet", h.az) for h in plan.hub_azs), appliance_mode=True),
    ]
    for spoke in plan.spokes:
        found.append(VpcAttachment(
            keys.spoke(spoke.name, "tgw-attachment"), resource_name(d, spoke.name, "tgw-attachment"),
            keys.spoke(spoke.name, "vpc"), tuple(keys.spoke(spoke.name, "tgw-subnet", az) for az in spoke.azs),
            appliance_mode=False))
    found += [TgwRouteTable(config, table) for table in rt.tgw_route_tables(plan)]
    return found
