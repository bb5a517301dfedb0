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
    from provisioner.context import Context, Reads
    from provisioner.design.config import Config

__all__ = [
    "ANYWHERE", "DELIVERED", "DROPPED", "FIREWALL_ENDPOINT", "INTERNET", "INTERNET_GATEWAY", "LOOP", "MAX_HOPS",
    "NAT_GATEWAY", "ROUTE_TABLE", "SUBNET", "TGW_ATTACHMENT", "TGW_ROUTE_TABLE", "TRANSIT_GATEWAY", "EgressCheck",
    "EgressReport", "Hop", "NetworkData", "Path", "Source", "Trace", "follow", "isolation_problems", "longest_match",
    "read_network", "trace_egress"
]


def read_network(ec2: Any, vpc_ids: Sequence[str], transit_gateway_id: str | None,
                 reads: Reads | None = None) -> NetworkData:
    """Read what the walk needs for these VPCs and this Transit Gateway (about ten describe calls). With `reads`
    (a command's shared answers), each TGW route table's associations and routes are those its step read."""
    in_vpcs = [{"Name": "vpc-id", "Values": list(vpc_ids)}]

    def pages(operation: str, result: str, **params: Any) -> list[dict[str, Any]]:
        return [item for page in ec2.get_paginator(operation).paginate(**params) for item in page[result]]

    data = NetworkData(
        route_tables=pages("describe_route_tables", "RouteTables", Filters=in_vpcs),
        subnets=pages("describe_subnets", "Subnets", Filters=in_vpcs),
        nat_gateways=pages("describe_nat_gateways", "NatGateways", Filter=in_vpcs),
        vpc_endpoints=pages("describe_vpc_endpoints", "VpcEndpoints", Filters=in_vpcs),
        internet_gateways=pages("describe_internet_gateways", "InternetGateways",
                                Filters=[{"Name": "attachment.vpc-id", "Values": list(vpc_ids)}]),
    )
    if transit_gateway_id:
        on_tgw = [{"Name": "transit-gateway-id", "Values": [transit_gateway_id]}]
        data.tgw_attachments = pages("describe_transit_gateway_vpc_attachments", "TransitGatewayVpcAttachments",
                                     Filters=on_tgw)
        for table in pages("describe_transit_gateway_route_tables", "TransitGatewayRouteTables", Filters=on_tgw):
            if table.get("State") not in ("available", "pending"):
                continue
            table_id = table["TransitGatewayRouteTableId"]
            def load_associations(table_id: str = table_id) -> list[dict[str, Any]]:
                return pages("get_transit_gateway_route_table_associations", "Associations",
                             TransitGatewayRouteTableId=table_id)

            def load_routes(table_id: str = table_id) -> list[dict[str, Any]]:
                return list(ec2.search_transit_gateway_routes(
                    TransitGatewayRouteTableId=table_id,
                    Filters=[{"Name": "type", "Values": ["static", "propagated"]}])["Routes"])

            if reads is None:
                associations, routes = load_associations(), load_routes()
            else:  # the same keys as the TGW route table steps' (steps/transit_gateway.py)
                associations = reads.get(f"tgw associations {table_id}", load_associations)
                routes = reads.get(f"tgw routes {table_id}", load_routes)
            data.tgw_route_tables.append({
                "TransitGatewayRouteTableId": table_id,
                "Associations": [a["TransitGatewayAttachmentId"] for a in associations
                                 if a.get("State") in ("associated", "associating")],
                "Routes": routes,
            })
    return data


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
            return read_network(ctx.aws.ec2, vpcs, tgw, ctx.reads), sources

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
