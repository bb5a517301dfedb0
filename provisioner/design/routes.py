"""Route tables as data: for every VPC and Transit Gateway route table of a layout, what it should hold.

Targets are symbolic: the step key of what a route points at (`hub/nat/<az>`, `hub/transit-gateway`...),
resolved to an AWS ID only when the route is made. Each route says who makes it:

- `network`: the network steps (they create, fix and report these);
- `firewall`: the firewall family (TGW subnet `0/0 -> endpoint[az]`, NAT subnet `spokes -> endpoint[az]` and
  `0/0 -> IGW`), made in a safe order once the endpoints exist;
- `aws`: AWS itself (the S3 gateway endpoint's prefix-list route, added when the endpoint names the table).

The routing is DESIGN.md's firewall-before-NAT design, per AZ: a packet never changes AZ inside the hub, and the
firewall sees the spoke addresses (HOME_NET is the spoke CIDRs).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from provisioner.design.layout import Layout, SpokeLayout

ANYWHERE = "0.0.0.0/0"

NETWORK = "network"
FIREWALL = "firewall"
AWS = "aws"

# Route target kinds, and the CreateRoute parameter each one takes.
TRANSIT_GATEWAY = "transit-gateway"
NAT_GATEWAY = "nat-gateway"
INTERNET_GATEWAY = "internet-gateway"
FIREWALL_ENDPOINT = "firewall-endpoint"
GATEWAY_ENDPOINT = "gateway-endpoint"
TGW_ATTACHMENT = "tgw-attachment"
BLACKHOLE = "blackhole"  # a TGW route that drops what matches it
CREATE_ROUTE_PARAM = {
    TRANSIT_GATEWAY: "TransitGatewayId",
    NAT_GATEWAY: "NatGatewayId",
    INTERNET_GATEWAY: "GatewayId",
    FIREWALL_ENDPOINT: "VpcEndpointId",
}

TRANSIT_GATEWAY_KEY = "hub/transit-gateway"
HUB_VPC_KEY = "hub/vpc"
HUB_ATTACHMENT_KEY = "hub/tgw-attachment"
IGW_KEY = "hub/igw"


def hub_key(what: str, az: str | None = None) -> str:
    return f"hub/{what}/{az}" if az else f"hub/{what}"


def spoke_key(spoke: str, what: str, az: str | None = None) -> str:
    return f"spoke/{spoke}/{what}/{az}" if az else f"spoke/{spoke}/{what}"


def firewall_endpoint(az: str) -> str:
    """The symbolic target of a firewall endpoint: the firewall family resolves it per AZ."""
    return f"firewall-endpoint/{az}"


def s3_prefix_list(region: str) -> str:
    """The destination of the S3 gateway endpoint's route: the region's S3 prefix list, by service name."""
    return f"pl:com.amazonaws.{region}.s3"


@dataclass(frozen=True)
class Route:
    destination: str
    target_kind: str
    target: str
    owner: str = NETWORK

    def describe(self) -> str:
        return f"{self.destination} -> {self.target}"


@dataclass(frozen=True)
class RouteTable:
    """One VPC route table: its routes, the subnets (or gateway) associated with it, and whether it is main."""

    key: str
    vpc: str
    routes: tuple[Route, ...]
    subnets: tuple[str, ...] = ()
    gateway: str | None = None
    main: bool = False
    az: str | None = None
    # The VPC's Transit Gateway attachment: AWS refuses a route to a TGW the VPC is not attached to.
    attachment: str | None = None

    def routes_of(self, owner: str) -> tuple[Route, ...]:
        return tuple(r for r in self.routes if r.owner == owner)

    @property
    def needs(self) -> tuple[str, ...]:
        """What must exist before this table and the routes the network steps make in it."""
        found = [self.vpc, *self.subnets, *([self.gateway] if self.gateway else [])]
        for route in self.routes_of(NETWORK):
            found.append(route.target)
            if route.target_kind == TRANSIT_GATEWAY and self.attachment:
                found.append(self.attachment)
        return tuple(dict.fromkeys(found))


@dataclass(frozen=True)
class TgwRouteTable:
    """One Transit Gateway route table: associated attachments, propagating attachments, static routes."""

    key: str
    associations: tuple[str, ...]
    propagations: tuple[str, ...]
    routes: tuple[Route, ...]

    @property
    def needs(self) -> tuple[str, ...]:
        found = [TRANSIT_GATEWAY_KEY, *self.associations, *self.propagations,
                 *(r.target for r in self.routes if r.target_kind != BLACKHOLE)]
        return tuple(dict.fromkeys(found))


def spoke_route_table(layout: Layout, spoke: SpokeLayout) -> RouteTable:
    """Workspace subnets (and, as the VPC's main table, the TGW subnets): everything leaves through the TGW."""
    s = spoke.name
    return RouteTable(
        key=spoke_key(s, "route-table"),
        vpc=spoke_key(s, "vpc"),
        routes=(
            Route(ANYWHERE, TRANSIT_GATEWAY, TRANSIT_GATEWAY_KEY),
            Route(s3_prefix_list(layout.region.name), GATEWAY_ENDPOINT, spoke_key(s, "s3-endpoint"), AWS),
        ),
        subnets=tuple(spoke_key(s, "workspace-subnet", az) for az in spoke.azs),
        main=True,
        attachment=spoke_key(s, "tgw-attachment"),
    )


def privatelink_route_table(spoke: SpokeLayout) -> RouteTable:
    """The back-end PrivateLink endpoints' subnets: a table of their own with only the VPC's local route, so
    nothing placed there has a way out of the spoke (the endpoints only answer the workspace subnets)."""
    s = spoke.name
    return RouteTable(
        key=spoke_key(s, "privatelink-route-table"),
        vpc=spoke_key(s, "vpc"),
        routes=(),
        subnets=tuple(spoke_key(s, "privatelink-subnet", az) for az in spoke.azs),
    )


def hub_route_tables(layout: Layout) -> tuple[RouteTable, ...]:
    """Per AZ, firewall before NAT: TGW subnet -> firewall endpoint; firewall subnet -> NAT (and back to the
    spokes through the TGW); NAT subnet -> IGW, and replies to the spokes back through the endpoint.

    The routes through a firewall endpoint, and the NAT subnet's default route to the IGW, are the firewall
    family's: it makes them in an order in which no spoke flow can reach the IGW uninspected (the IGW route
    comes only once the TGW subnet sends everything to the endpoint)."""
    to_spokes = tuple(Route(cidr, TRANSIT_GATEWAY, TRANSIT_GATEWAY_KEY) for cidr in layout.spoke_cidrs)
    tables: list[RouteTable] = []
    for hub_az in layout.hub_azs:
        az = hub_az.az
        endpoint = firewall_endpoint(az)
        tables.append(RouteTable(
            key=hub_key("tgw-subnet-route-table", az), vpc=HUB_VPC_KEY,
            routes=(Route(ANYWHERE, FIREWALL_ENDPOINT, endpoint, FIREWALL),),
            subnets=(hub_key("tgw-subnet", az),), az=az))
        tables.append(RouteTable(
            key=hub_key("firewall-subnet-route-table", az), vpc=HUB_VPC_KEY,
            routes=(Route(ANYWHERE, NAT_GATEWAY, hub_key("nat", az)), *to_spokes),
            subnets=(hub_key("firewall-subnet", az),), az=az, attachment=HUB_ATTACHMENT_KEY))
        tables.append(RouteTable(
            key=hub_key("nat-subnet-route-table", az), vpc=HUB_VPC_KEY,
            routes=(Route(ANYWHERE, INTERNET_GATEWAY, IGW_KEY, FIREWALL),
                    *(Route(cidr, FIREWALL_ENDPOINT, endpoint, FIREWALL) for cidr in layout.spoke_cidrs)),
            subnets=(hub_key("nat-subnet", az),), az=az))
    return tuple(tables)


# Route tables of the NAT-before-firewall layout (before firewall-before-NAT): `up` deletes them once every AZ's
# routes are converted (the firewall subnets then belong to their AZ's table, and no edge table is needed).
RETIRED_HUB_ROUTE_TABLES = (hub_key("firewall-subnet-route-table"), hub_key("igw-route-table"))


def vpc_route_tables(layout: Layout) -> tuple[RouteTable, ...]:
    return (*(spoke_route_table(layout, s) for s in layout.spokes), *hub_route_tables(layout))


def tgw_route_tables(layout: Layout) -> tuple[TgwRouteTable, TgwRouteTable]:
    """Spokes reach only the hub: no propagation between them, and a blackhole for every spoke CIDR, so a flow to
    another spoke is dropped by the TGW itself instead of following `0/0` to the hub; the hub reaches every spoke."""
    spoke_attachments = tuple(spoke_key(s.name, "tgw-attachment") for s in layout.spokes)
    spokes = TgwRouteTable(
        key=hub_key("tgw-route-table", "spokes"),
        associations=spoke_attachments,
        propagations=(),
        routes=(Route(ANYWHERE, TGW_ATTACHMENT, HUB_ATTACHMENT_KEY),
                *(Route(cidr, BLACKHOLE, BLACKHOLE) for cidr in layout.spoke_cidrs)),
    )
    hub = TgwRouteTable(
        key=hub_key("tgw-route-table", "hub"),
        associations=(HUB_ATTACHMENT_KEY,),
        propagations=spoke_attachments,
        routes=(),
    )
    return spokes, hub


def route_table(layout: Layout, key: str) -> RouteTable:
    for table in vpc_route_tables(layout):
        if table.key == key:
            return table
    raise KeyError(key)


# describe_route_tables names a route's target in one of these fields; a Gateway Load Balancer endpoint (how
# Network Firewall endpoints appear) is reported in GatewayId as `vpce-...`.
ROUTE_TARGET_FIELDS = ("GatewayId", "NatGatewayId", "TransitGatewayId", "VpcPeeringConnectionId", "NetworkInterfaceId",
                       "InstanceId", "LocalGatewayId", "CarrierGatewayId", "EgressOnlyInternetGatewayId",
                       "CoreNetworkArn")


def route_target(route: Mapping[str, Any]) -> str:
    """The target of a route as describe_route_tables reports it ("?" when it names none)."""
    for name in ROUTE_TARGET_FIELDS:
        if route.get(name):
            return str(route[name])
    return "?"
