"""Where a workspace's internet traffic really goes, read from EC2: `read_network` gathers what the route walker
(`provisioner.design.walk`, pure) needs, and `EgressCheck` is the check `status` runs with it.

The walker's names are re-exported here for the commands and tests that use them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from provisioner.aws.errors import CloudError, translate
from provisioner.design.walk import (
    ANYWHERE,
    DELIVERED,
    DROPPED,
    FIREWALL_ENDPOINT,
    INTERNET,
    INTERNET_GATEWAY,
    LOOP,
    MAX_HOPS,
    NAT_GATEWAY,
    ROUTE_TABLE,
    SUBNET,
    TGW_ATTACHMENT,
    TGW_ROUTE_TABLE,
    TRANSIT_GATEWAY,
    EgressReport,
    Hop,
    NetworkData,
    Path,
    Source,
    Trace,
    follow,
    isolation_problems,
    longest_match,
    trace_egress,
)
from provisioner.steps.base import Check

if TYPE_CHECKING:
    from provisioner.context import Context
    from provisioner.design.config import Config

__all__ = [
    "ANYWHERE", "DELIVERED", "DROPPED", "FIREWALL_ENDPOINT", "INTERNET", "INTERNET_GATEWAY", "LOOP", "MAX_HOPS",
    "NAT_GATEWAY", "ROUTE_TABLE", "SUBNET", "TGW_ATTACHMENT", "TGW_ROUTE_TABLE", "TRANSIT_GATEWAY", "EgressCheck",
    "EgressReport", "Hop", "NetworkData", "Path", "Source", "Trace", "follow", "isolation_problems", "longest_match",
    "read_network", "trace_egress"
]


def read_network(ec2: Any, vpc_ids: Sequence[str], transit_gateway_id: str | None,
                 ctx: Context | None = None) -> NetworkData:
    """Read what the walk needs for these VPCs and this Transit Gateway: everything in them, whoever made it.

    With `ctx` (a command's), each kind is the command's one read of it (`ec2_common.within_deployment`), shared
    with the steps: `status` reads each kind once. Without, read now (about eight describe calls).
    """
    from provisioner.steps import ec2_common as ec
    from provisioner.steps.transit_gateway import associated_with, search_routes, table_routes

    vpcs = sorted(set(vpc_ids))
    tgws = [transit_gateway_id] if transit_gateway_id else []

    def within(kind: ec.Ec2Kind, parents: list[str]) -> list[dict[str, Any]]:
        if ctx is not None:
            return ec.within_deployment(ctx, kind, covering=parents)
        _, _, filter_name = ec.PARENTS[kind.within]
        return ec.describe(ec2, kind, **{kind.filters_param: [{"Name": filter_name, "Values": parents}]})

    def in_vpcs(kind: ec.Ec2Kind) -> list[dict[str, Any]]:
        return [item for item in within(kind, vpcs) if item.get("VpcId") in vpcs]

    data = NetworkData(route_tables=in_vpcs(ec.ROUTE_TABLE), subnets=in_vpcs(ec.SUBNET),
                       nat_gateways=in_vpcs(ec.NAT_GATEWAY), vpc_endpoints=in_vpcs(ec.VPC_ENDPOINT))
    data.internet_gateways = _internet_gateways(ec2, vpcs, data.route_tables, ctx)
    if transit_gateway_id:
        def on_tgw(kind: ec.Ec2Kind) -> list[dict[str, Any]]:
            return [item for item in within(kind, tgws) if item.get("TransitGatewayId") == transit_gateway_id]

        data.tgw_attachments = on_tgw(ec.TGW_ATTACHMENT)
        attachments = on_tgw(ec.TGW_ANY_ATTACHMENT)
        for table in on_tgw(ec.TGW_ROUTE_TABLE):
            if table.get("State") not in ("available", "pending"):
                continue
            table_id = table["TransitGatewayRouteTableId"]
            data.tgw_route_tables.append({
                "TransitGatewayRouteTableId": table_id,
                "Associations": associated_with(attachments, table_id, ("associated", "associating")),
                "Routes": search_routes(ec2, table_id) if ctx is None else table_routes(ctx, table_id),
            })
    return data


def _internet_gateways(ec2: Any, vpcs: list[str], route_tables: list[dict[str, Any]],
                       ctx: Context | None) -> list[dict[str, Any]]:
    """The internet gateways the walk may meet: those attached to these VPCs. With `ctx`, the deployment's (the
    steps' read) and any other that a route sends to, read by ID: the walk only meets a gateway through a route,
    and an internet gateway made but not yet attached must stay visible to its step (by its tags)."""
    from provisioner.design.routes import route_target
    from provisioner.steps import ec2_common as ec

    if ctx is None:
        return ec.describe(ec2, ec.INTERNET_GATEWAY, Filters=[{"Name": "attachment.vpc-id", "Values": vpcs}])
    ours = ec.deployment_items(ctx, ec.INTERNET_GATEWAY)
    known = {g["InternetGatewayId"] for g in ours}
    others = sorted({route_target(r) for t in route_tables for r in t.get("Routes", [])
                     if route_target(r).startswith("igw-")} - known)
    return ours + (ec.describe(ec2, ec.INTERNET_GATEWAY, Filters=[{"Name": "internet-gateway-id", "Values": others}])
                   if others else [])


# -- the status check ---------------------------------------------------------------------------------------------


class EgressCheck(Check):
    """`status`: egress from every spoke workspace subnet is forced through the firewall of its hub AZ, before
    the NAT, both ways; and no spoke reaches another (the Transit Gateway blackholes it)."""

    def __init__(self, config: Config) -> None:
        super().__init__("network/egress", "egress forced through the firewall; spokes isolated")
        self.config = config

    def sources(self, ctx: Context) -> list[Source]:
        from provisioner.steps import keys

        return [Source(f"spoke {s.name} {az}", ctx.output(keys.spoke(s.name, "workspace-subnet", az)))
                for s in ctx.layout.spokes for az in s.azs]

    def network(self, ctx: Context) -> tuple[NetworkData, list[Source]]:
        """What EC2 says of the deployment's VPCs and Transit Gateway, and the subnets to walk from."""
        from provisioner.steps import keys

        try:
            sources = self.sources(ctx)
            vpcs = [ctx.output(keys.hub("vpc")), *(ctx.output(keys.spoke(s.name, "vpc")) for s in ctx.layout.spokes)]
            tgw = ctx.output(keys.hub("transit-gateway"))
        except RuntimeError as e:
            raise CloudError(f"cannot trace egress: {e}") from e
        with translate("read the network to trace egress"):
            return read_network(ctx.aws.ec2, vpcs, tgw, ctx), sources

    def report(self, ctx: Context) -> EgressReport:
        return trace_egress(*self.network(ctx))

    def run(self, ctx: Context) -> list[str]:
        data, sources = self.network(ctx)
        report = trace_egress(data, sources)
        problems = report.problems()
        if len(ctx.layout.spokes) > 1:
            cidrs = {s.name: s.cidrs.vpc for s in ctx.layout.spokes}
            problems += isolation_problems(data, sources, cidrs)
        if any(not t.egress.of(FIREWALL_ENDPOINT) for t in report.traces):
            problems.insert(0, "egress is not forced through the firewall: no path passes a firewall endpoint"
                            if all(not t.egress.of(FIREWALL_ENDPOINT) for t in report.traces)
                            else "egress is not forced through a firewall on every path")
        return problems
