"""Where a workspace's internet traffic really goes: a walk over the route tables as EC2 reports them.

`trace_egress` is pure (no I/O): given what `provisioner.egress.read_network` read from EC2 (VPC route tables,
subnets, NAT gateways, VPC endpoints, internet gateways, Transit Gateway attachments and route tables), it follows
`0.0.0.0/0` from every spoke workspace subnet hop by hop, the way AWS forwards a packet:

    subnet -> its route table (explicit association, else the VPC's main table) -> longest-prefix route ->
    Transit Gateway -> the TGW route table associated with the VPC's attachment -> the next attachment ->
    a subnet of that attachment (the source's AZ when the attachment has one there and no appliance mode;
    otherwise any of its AZs: one path per AZ) -> that subnet's route table -> firewall endpoint (a `vpce-`
    route target) -> the endpoint subnet's table -> NAT gateway -> the NAT subnet's table -> IGW

and then the return path: from the internet gateway to the NAT's address (through an IGW edge route table
when there is one), and from the NAT back to the workspace subnet. It reads only what EC2 says, not what the
config planned, so it finds what a hand-edited route broke.

`EgressReport.problems()` lists every violated invariant: each path must reach an internet gateway, only
through a firewall endpoint and through it before any NAT (so the firewall sees the spoke's address), with the
NAT and the endpoint in the AZ where the traffic entered the hub; the return path must pass the endpoint of
that same AZ and reach the subnet it came from; a spoke route table must not send anything around the Transit
Gateway. `isolation_problems` checks that no spoke reaches another.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from provisioner.design.routes import route_target

ANYWHERE = "0.0.0.0/0"
MAX_HOPS = 40

# Hop kinds.
SUBNET = "subnet"
ROUTE_TABLE = "route-table"
TRANSIT_GATEWAY = "transit-gateway"
TGW_ROUTE_TABLE = "tgw-route-table"
TGW_ATTACHMENT = "tgw-attachment"
NAT_GATEWAY = "nat-gateway"
FIREWALL_ENDPOINT = "firewall-endpoint"
INTERNET_GATEWAY = "internet-gateway"

# How a path ends.
INTERNET = "internet"    # left through an internet gateway
DELIVERED = "delivered"  # reached a `local` route: the destination is inside the VPC it got to
DROPPED = "dropped"      # no route, a blackhole, or a target that is gone
LOOP = "loop"


# -- what EC2 says ------------------------------------------------------------------------------------------------


@dataclass
class NetworkData:
    """The raw describe answers the walk needs (items as boto3 returns them)."""

    route_tables: list[dict[str, Any]] = field(default_factory=list)
    subnets: list[dict[str, Any]] = field(default_factory=list)
    nat_gateways: list[dict[str, Any]] = field(default_factory=list)
    vpc_endpoints: list[dict[str, Any]] = field(default_factory=list)
    internet_gateways: list[dict[str, Any]] = field(default_factory=list)
    # describe_transit_gateway_vpc_attachments items
    tgw_attachments: list[dict[str, Any]] = field(default_factory=list)
    # per TGW route table: {"TransitGatewayRouteTableId", "Associations": [attachment IDs], "Routes": [...]} with
    # routes as search_transit_gateway_routes returns them (static and propagated)
    tgw_route_tables: list[dict[str, Any]] = field(default_factory=list)


# -- the result ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hop:
    kind: str
    id: str
    az: str | None = None

    def __str__(self) -> str:
        return f"{self.kind} {self.id}" + (f" ({self.az})" if self.az else "")


@dataclass
class Path:
    hops: list[Hop]
    end: str
    reason: str = ""
    # the VPC a DELIVERED path ended in
    vpc: str | None = None

    def of(self, kind: str) -> list[Hop]:
        return [h for h in self.hops if h.kind == kind]

    @property
    def kinds(self) -> list[str]:
        return [h.kind for h in self.hops]

    def __str__(self) -> str:
        tail = {INTERNET: "internet", DELIVERED: f"delivered in {self.vpc}"}.get(self.end, f"{self.end}: {self.reason}")
        return " -> ".join([*map(str, self.hops), tail])


@dataclass(frozen=True)
class Source:
    """A subnet whose egress is traced (a spoke's workspace subnet), with a label for messages."""

    label: str
    subnet_id: str


@dataclass
class Trace:
    """One way out of one source subnet: through the hub AZ `hub_az` (None when it never reached the hub)."""

    source: Source
    az: str | None
    hub_az: str | None
    egress: Path
    returns: list[Path] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.source.label} via hub {self.hub_az}" if self.hub_az else self.source.label

    def problems(self) -> list[str]:
        found: list[str] = []
        egress = self.egress
        if egress.end != INTERNET:
            last = egress.hops[-1] if egress.hops else None
            found.append(f"{self.label}: egress stops at {last}: {egress.reason}")
        elif not egress.of(FIREWALL_ENDPOINT):
            hint = ("; the hub TGW subnet's route table must send 0.0.0.0/0 to the firewall endpoint of its AZ, not "
                    "to the NAT gateway" if egress.of(NAT_GATEWAY) else "")
            found.append(f"{self.label}: reaches the internet without passing a firewall endpoint ({egress}){hint}")
        elif egress.of(NAT_GATEWAY) and egress.hops.index(egress.of(NAT_GATEWAY)[0]) < egress.hops.index(
                egress.of(FIREWALL_ENDPOINT)[0]):
            found.append(f"{self.label}: passes the NAT gateway before the firewall, which then sees only the NAT's "
                         f"address ({egress}); the hub TGW subnet's route table must send 0.0.0.0/0 to the "
                         "firewall endpoint of its AZ")
        found += _cross_az(self.label, "egress", egress, self.hub_az)
        if egress.end == INTERNET:
            for path in self.returns:
                if path.end == INTERNET:
                    found.append(f"{self.label}: the reply leaves through {path.hops[-1]} instead of reaching the "
                                 f"spoke ({path}): the NAT subnet's route table has no route back to it")
                elif path.end != DELIVERED:
                    found.append(f"{self.label}: return path stops at {path.hops[-1]}: {path.reason}")
                elif egress.of(FIREWALL_ENDPOINT) and not path.of(FIREWALL_ENDPOINT):
                    found.append(f"{self.label}: return traffic skips the firewall ({path}); the NAT subnet's route "
                                 "table needs the spoke CIDRs to go to the firewall endpoint of its AZ")
                found += _cross_az(self.label, "return", path, self.hub_az)
        return found


def _cross_az(label: str, which: str, path: Path, hub_az: str | None) -> list[str]:
    """Inside the hub, NAT gateways and firewall endpoints must be in the AZ where the traffic entered."""
    if hub_az is None:
        return []
    return [f"{label}: {which} path uses {hop}, in another AZ than {hub_az}"
            for hop in path.hops if hop.kind in (NAT_GATEWAY, FIREWALL_ENDPOINT) and hop.az and hop.az != hub_az]


@dataclass
class EgressReport:
    traces: list[Trace]
    bypasses: list[str] = field(default_factory=list)

    def paths(self, source_label: str) -> dict[str | None, Trace]:
        """The traces of one source, by the hub AZ they went through."""
        return {t.hub_az: t for t in self.traces if t.source.label == source_label}

    def problems(self) -> list[str]:
        found = list(self.bypasses)
        for trace in self.traces:
            found += [p for p in trace.problems() if p not in found]
        return found

    @property
    def forced_through_firewall(self) -> bool:
        return not self.problems()


# -- the walk -----------------------------------------------------------------------------------------------------


def _network(cidr: str) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(cidr, strict=False)


def longest_match(routes: Iterable[Mapping[str, Any]], destination: str) -> Mapping[str, Any] | None:
    """The most specific route whose destination holds all of `destination` (a CIDR)."""
    dest = _network(destination)
    best: Mapping[str, Any] | None = None
    for route in routes:
        cidr = route.get("DestinationCidrBlock")
        if not cidr:
            continue
        net = _network(cidr)
        if dest.subnet_of(net) and (best is None or net.prefixlen > _network(best["DestinationCidrBlock"]).prefixlen):
            best = route
    return best


class _Index:
    """The describe answers, keyed for the walk."""

    def __init__(self, data: NetworkData) -> None:
        self.subnets = {s["SubnetId"]: s for s in data.subnets}
        self.tables = {t["RouteTableId"]: t for t in data.route_tables}
        self.nats = {n["NatGatewayId"]: n for n in data.nat_gateways}
        self.endpoints = {e["VpcEndpointId"]: e for e in data.vpc_endpoints}
        self.igws = {g["InternetGatewayId"]: g for g in data.internet_gateways}
        self.attachments = {a["TransitGatewayAttachmentId"]: a for a in data.tgw_attachments
                            if a.get("State") in ("available", "modifying", "pending")}
        self.tgw_tables = {t["TransitGatewayRouteTableId"]: t for t in data.tgw_route_tables}
        self.explicit: dict[str, str] = {}
        self.main: dict[str, str] = {}
        self.edge: dict[str, str] = {}
        for table in data.route_tables:
            for assoc in table.get("Associations", []):
                if assoc.get("AssociationState", {}).get("State", "associated") != "associated":
                    continue
                if assoc.get("SubnetId"):
                    self.explicit[assoc["SubnetId"]] = table["RouteTableId"]
                elif assoc.get("GatewayId"):
                    self.edge[assoc["GatewayId"]] = table["RouteTableId"]
                if assoc.get("Main"):
                    self.main[table["VpcId"]] = table["RouteTableId"]

    def az(self, subnet_id: str | None) -> str | None:
        return self.subnets.get(subnet_id or "", {}).get("AvailabilityZone")

    def vpc(self, subnet_id: str) -> str | None:
        return self.subnets.get(subnet_id, {}).get("VpcId")

    def table_of(self, subnet_id: str) -> str | None:
        vpc = self.vpc(subnet_id)
        return self.explicit.get(subnet_id) or (self.main.get(vpc) if vpc else None)

    def attachment_of(self, vpc_id: str, tgw_id: str) -> dict[str, Any] | None:
        for attachment in self.attachments.values():
            if attachment.get("VpcId") == vpc_id and attachment.get("TransitGatewayId") == tgw_id:
                return attachment
        return None

    def tgw_table_of(self, attachment_id: str) -> dict[str, Any] | None:
        for table in self.tgw_tables.values():
            if attachment_id in table.get("Associations", []):
                return table
        return None


def _stop(hops: list[Hop], end: str, reason: str) -> list[Path]:
    return [Path(hops, end, reason)]


def _follow(net: _Index, subnet_id: str, destination: str, hops: list[Hop]) -> list[Path]:
    """Route `destination` from `subnet_id` (by that subnet's route table); one path per way it can go."""
    table_id = net.table_of(subnet_id)
    if table_id is None or table_id not in net.tables:
        return _stop(hops, DROPPED, f"subnet {subnet_id} has no route table")
    return _route(net, net.tables[table_id], net.vpc(subnet_id), subnet_id, destination, hops)


def _route(net: _Index, table: Mapping[str, Any], vpc_id: str | None, subnet_id: str | None, destination: str,
           hops: list[Hop]) -> list[Path]:
    table_id = table["RouteTableId"]
    if len(hops) > MAX_HOPS:
        return _stop(hops, LOOP, f"more than {MAX_HOPS} hops: a routing loop")
    hops = [*hops, Hop(ROUTE_TABLE, table_id)]
    route = longest_match(table.get("Routes", []), destination)
    if route is None:
        return _stop(hops, DROPPED, f"no route to {destination} in {table_id}")
    target = route_target(route)
    if route.get("State") == "blackhole":
        return _stop(hops, DROPPED, f"route {route['DestinationCidrBlock']} -> {target} in {table_id} is a "
                                    "blackhole (its target is gone)")
    if target == "local":
        return [Path(hops, DELIVERED, vpc=vpc_id)]
    if target.startswith("igw-"):
        igw = net.igws.get(target)
        attached = igw is not None and any(a.get("VpcId") == vpc_id for a in igw.get("Attachments", []))
        if not attached:
            return _stop([*hops, Hop(INTERNET_GATEWAY, target)], DROPPED, f"{target} is not attached to {vpc_id}")
        return [Path([*hops, Hop(INTERNET_GATEWAY, target)], INTERNET)]
    if target.startswith("nat-"):
        nat = net.nats.get(target)
        if nat is None or nat.get("State") != "available":
            state = nat.get("State") if nat else "not found"
            az = net.az(nat.get("SubnetId")) if nat else None
            return _stop([*hops, Hop(NAT_GATEWAY, target, az)], DROPPED, f"NAT gateway {target} is {state}")
        hops = [*hops, Hop(NAT_GATEWAY, target, net.az(nat.get("SubnetId")))]
        return _follow(net, nat["SubnetId"], destination, hops)
    if target.startswith("vpce-"):
        # A route to a `vpce-` target is to a Gateway Load Balancer endpoint: a firewall endpoint.
        endpoint = net.endpoints.get(target)
        subnets = (endpoint or {}).get("SubnetIds") or []
        if endpoint is None or not subnets:
            return _stop([*hops, Hop(FIREWALL_ENDPOINT, target)], DROPPED, f"endpoint {target} not found")
        if str(endpoint.get("State", "")).lower() != "available":
            return _stop([*hops, Hop(FIREWALL_ENDPOINT, target, net.az(subnets[0]))], DROPPED,
                         f"endpoint {target} is {endpoint.get('State')}")
        return _follow(net, subnets[0], destination, [*hops, Hop(FIREWALL_ENDPOINT, target, net.az(subnets[0]))])
    if target.startswith("tgw-"):
        return _through_tgw(net, target, vpc_id, net.az(subnet_id), destination, hops)
    return _stop(hops, DROPPED, f"route {route['DestinationCidrBlock']} -> {target} is not followed")


def _through_tgw(net: _Index, tgw_id: str, vpc_id: str | None, source_az: str | None, destination: str,
                 hops: list[Hop]) -> list[Path]:
    hops = [*hops, Hop(TRANSIT_GATEWAY, tgw_id)]
    attachment = net.attachment_of(vpc_id or "", tgw_id)
    if attachment is None:
        return _stop(hops, DROPPED, f"{vpc_id} has no available attachment to {tgw_id}")
    table = net.tgw_table_of(attachment["TransitGatewayAttachmentId"])
    if table is None:
        return _stop(hops, DROPPED, f"attachment {attachment['TransitGatewayAttachmentId']} is associated with no "
                                    "TGW route table")
    hops = [*hops, Hop(TGW_ROUTE_TABLE, table["TransitGatewayRouteTableId"])]
    route = longest_match(table.get("Routes", []), destination)
    targets = [t.get("TransitGatewayAttachmentId") for t in (route or {}).get("TransitGatewayAttachments", [])]
    if route is None or route.get("State") == "blackhole" or not targets:
        why = "is a blackhole" if route else "does not exist"
        return _stop(hops, DROPPED, f"route to {destination} in {table['TransitGatewayRouteTableId']} {why}")
    next_id = str(targets[0])
    hops = [*hops, Hop(TGW_ATTACHMENT, next_id)]
    nxt = net.attachments.get(next_id)
    if nxt is None:
        return _stop(hops, DROPPED, f"attachment {next_id} is not an available VPC attachment")
    entries = [s for s in nxt.get("SubnetIds", []) if s in net.subnets]
    # Without appliance mode a TGW keeps a flow in the source's AZ when the attachment has a subnet there; with
    # it (or without a subnet there) it may pick any of the attachment's AZs: follow each of them.
    same_az = [s for s in entries if net.az(s) == source_az]
    if same_az and nxt.get("Options", {}).get("ApplianceModeSupport") != "enable":
        entries = same_az
    if not entries:
        return _stop(hops, DROPPED, f"attachment {next_id} has no subnets")
    paths: list[Path] = []
    for subnet in sorted(entries, key=lambda s: (net.az(s) or "", s)):
        paths += _follow(net, subnet, destination, [*hops, Hop(SUBNET, subnet, net.az(subnet))])
    return paths


def _hub_az(path: Path) -> str | None:
    """The AZ where the path entered the hub: the subnet right after its last TGW attachment hop."""
    for before, hop in zip(path.hops, path.hops[1:], strict=False):
        if before.kind == TGW_ATTACHMENT and hop.kind == SUBNET:
            return hop.az
    return None


def _return_paths(net: _Index, egress: Path, source_subnet: str) -> list[Path]:
    """From the internet gateway back to the source: to the NAT's address (or the source's own), then on."""
    igw_id = egress.hops[-1].id
    nats = egress.of(NAT_GATEWAY)
    source_cidr = net.subnets.get(source_subnet, {}).get("CidrBlock", "")
    hops = [Hop(INTERNET_GATEWAY, igw_id)]
    vpc_id = next((a.get("VpcId") for a in net.igws.get(igw_id, {}).get("Attachments", [])), None)
    # The NAT's address is in its subnet; a gateway (edge) route table routes by subnet anyway: its routes can
    # only name whole subnets.
    nat_subnet = net.nats[nats[-1].id]["SubnetId"] if nats else None
    arrival = net.subnets.get(nat_subnet, {}).get("CidrBlock", "") if nat_subnet else source_cidr
    edge = net.edge.get(igw_id)
    if edge is not None and edge in net.tables:
        first = _route(net, net.tables[edge], vpc_id, None, arrival, hops)
    else:
        # No edge route table: AWS delivers straight to the address inside the VPC.
        first = [Path(hops, DELIVERED, vpc=vpc_id)]
    if not nats:
        return first
    paths: list[Path] = []
    for leg in first:
        if leg.end != DELIVERED:
            paths.append(leg)
            continue
        nat_hop = Hop(NAT_GATEWAY, nats[-1].id, nats[-1].az)
        paths += _follow(net, net.nats[nats[-1].id]["SubnetId"], source_cidr, [*leg.hops, nat_hop])
    source_vpc = net.vpc(source_subnet)
    return [p if p.end != DELIVERED or p.vpc == source_vpc else
            Path(p.hops, DROPPED, f"delivered in {p.vpc}, not the source VPC {source_vpc}") for p in paths]


def _bypasses(net: _Index, sources: Sequence[Source]) -> list[str]:
    """Routes in a source's route table that leave other than through the Transit Gateway."""
    found = []
    for table_id in sorted({t for s in sources if (t := net.table_of(s.subnet_id))}):
        for route in net.tables.get(table_id, {}).get("Routes", []):
            target = route_target(route)
            cidr = route.get("DestinationCidrBlock")
            if cidr and target != "local" and not target.startswith("tgw-"):
                found.append(f"route table {table_id} sends {cidr} to {target}, around the Transit Gateway")
    return found


def isolation_problems(data: NetworkData, sources: Sequence[Source], spoke_cidrs: Mapping[str, str]) -> list[str]:
    """Spokes never reach each other: from every source subnet, the CIDR of every other spoke must be dropped by
    the Transit Gateway (a blackhole route), not delivered and not merely left to the firewall; pure.
    `spoke_cidrs` maps a source label's spoke name (the label's second word) to its CIDR."""
    net = _Index(data)
    found = []
    for source in sources:
        own = source.label.split()[1] if len(source.label.split()) > 1 else ""
        for spoke, cidr in spoke_cidrs.items():
            if spoke == own or source.subnet_id not in net.subnets:
                continue
            start = [Hop(SUBNET, source.subnet_id, net.az(source.subnet_id))]
            # The whole CIDR, and every more specific route into it anywhere (a route to part of a spoke wins
            # over the blackhole for the whole, by longest prefix).
            for destination in (cidr, *_more_specific(net, cidr)):
                for path in _follow(net, source.subnet_id, destination, start):
                    if path.end == DELIVERED:
                        found.append(f"{source.label} reaches spoke {spoke} ({destination}): {path}")
                    elif path.end != DROPPED or not (path.hops and path.hops[-1].kind == TGW_ROUTE_TABLE
                                                      and "blackhole" in path.reason):
                        found.append(f"{source.label} to spoke {spoke} ({destination}) is not blackholed by the "
                                     f"Transit Gateway ({path})")
    return found


def _destinations(net: _Index) -> set[str]:
    """Every CIDR any VPC or TGW route table of the data routes."""
    found = {str(r["DestinationCidrBlock"]) for t in net.tables.values() for r in t.get("Routes", [])
             if r.get("DestinationCidrBlock")}
    found |= {str(r["DestinationCidrBlock"]) for t in net.tgw_tables.values() for r in t.get("Routes", [])
              if r.get("DestinationCidrBlock")}
    return found


def _more_specific(net: _Index, cidr: str) -> list[str]:
    outer = _network(cidr)
    return sorted(d for d in _destinations(net) if _network(d) != outer and _network(d).subnet_of(outer))


def _internet_destinations(net: _Index) -> list[str]:
    """`0.0.0.0/0` and every other public destination some route table routes: a route for part of the internet
    wins over the default route, so each is walked on its own."""
    found = [d for d in _destinations(net) if d != ANYWHERE and not _network(d).is_private]
    return [ANYWHERE, *sorted(found)]


def follow(data: NetworkData, subnet_id: str, destination: str) -> list[Path]:
    """Every way a packet from `subnet_id` to `destination` (a CIDR) can go, hop by hop; pure."""
    net = _Index(data)
    return _follow(net, subnet_id, destination, [Hop(SUBNET, subnet_id, net.az(subnet_id))])


def trace_egress(data: NetworkData, sources: Sequence[Source], destination: str | None = None) -> EgressReport:
    """Follow `destination` (by default `0.0.0.0/0` and every more specific public destination some route table
    has) from every source subnet, and each path's return; pure."""
    net = _Index(data)
    destinations = [destination] if destination else _internet_destinations(net)
    traces = []
    for source in sources:
        if source.subnet_id not in net.subnets:
            traces.append(Trace(source, None, None, Path([], DROPPED, f"subnet {source.subnet_id} not found")))
            continue
        az = net.az(source.subnet_id)
        start = [Hop(SUBNET, source.subnet_id, az)]
        for dest in destinations:
            labelled = source if dest == ANYWHERE else Source(f"{source.label} to {dest}", source.subnet_id)
            for path in _follow(net, source.subnet_id, dest, start):
                returns = _return_paths(net, path, source.subnet_id) if path.end == INTERNET else []
                traces.append(Trace(labelled, az, _hub_az(path), path, returns))
    return EgressReport(traces, _bypasses(net, sources))
