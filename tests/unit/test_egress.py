"""The egress walk over hand-made describe answers: the designed topology passes, every broken route is reported."""

from __future__ import annotations

import copy
import ipaddress
from typing import Any

import pytest

from provisioner.egress import (
    DELIVERED,
    DROPPED,
    FIREWALL_ENDPOINT,
    INTERNET,
    INTERNET_GATEWAY,
    LOOP,
    NAT_GATEWAY,
    ROUTE_TABLE,
    SUBNET,
    TGW_ATTACHMENT,
    TGW_ROUTE_TABLE,
    TRANSIT_GATEWAY,
    EgressCheck,
    NetworkData,
    Source,
    follow,
    isolation_problems,
    longest_match,
    trace_egress,
)

AZS = ("a", "b")
HUB_CIDR = "10.10.0.0/16"
HUB_SUBNETS = {  # az -> (tgw, nat, firewall)
    "a": ("10.10.0.0/20", "10.10.16.0/20", "10.10.32.0/20"),
    "b": ("10.10.48.0/20", "10.10.64.0/20", "10.10.80.0/20"),
    "c": ("10.10.96.0/20", "10.10.112.0/20", "10.10.128.0/20"),
}
SPOKES = {"main": "10.1.0.0/16", "other": "10.2.0.0/16"}

# How the hub routes (DESIGN.md, "Routing").
FIREWALL_FIRST = "firewall before NAT"   # the design
NAT_FIRST = "NAT before firewall"        # the layout before it
NO_FIREWALL = "no firewall routes yet"   # the network steps' routes only, before the firewall family's

EGRESS = [SUBNET, ROUTE_TABLE, TRANSIT_GATEWAY, TGW_ROUTE_TABLE, TGW_ATTACHMENT, SUBNET, ROUTE_TABLE, FIREWALL_ENDPOINT,
          ROUTE_TABLE, NAT_GATEWAY, ROUTE_TABLE, INTERNET_GATEWAY]


def _route(cidr: str, **target: str) -> dict[str, Any]:
    return {"DestinationCidrBlock": cidr, "Origin": "CreateRoute", "State": "active", **target}


def _local(cidr: str) -> dict[str, Any]:
    return {"DestinationCidrBlock": cidr, "GatewayId": "local", "Origin": "CreateRouteTable", "State": "active"}


def _table(table_id: str, vpc: str, routes: list[dict[str, Any]], subnets=(), gateway=None, main=False):
    associations = [{"SubnetId": s, "AssociationState": {"State": "associated"}} for s in subnets]
    if gateway:
        associations.append({"GatewayId": gateway, "AssociationState": {"State": "associated"}})
    if main:
        associations.append({"Main": True, "AssociationState": {"State": "associated"}})
    return {"RouteTableId": table_id, "VpcId": vpc, "Routes": routes, "Associations": associations}


def _subnet(subnet_id: str, vpc: str, az: str, cidr: str) -> dict[str, Any]:
    return {"SubnetId": subnet_id, "VpcId": vpc, "AvailabilityZone": az, "CidrBlock": cidr}


def _spoke_subnets(cidr: str) -> tuple[dict[str, str], dict[str, str]]:
    """A spoke's workspace and TGW subnets by AZ: the first two quarters and the last two of its CIDR."""
    quarters = [str(n) for n in ipaddress.IPv4Network(cidr).subnets(prefixlen_diff=2)]
    return dict(zip(AZS, quarters[:2], strict=True)), dict(zip(AZS, quarters[2:], strict=True))


def _tgw_route(cidr: str, attachment: str | None, kind: str = "static") -> dict[str, Any]:
    """A route as search_transit_gateway_routes returns it; a blackhole names no attachment."""
    if attachment is None:
        return {"DestinationCidrBlock": cidr, "Type": kind, "State": "blackhole"}
    return {"DestinationCidrBlock": cidr, "Type": kind, "State": "active",
            "TransitGatewayAttachments": [{"TransitGatewayAttachmentId": attachment}]}


def topology(routing: str = FIREWALL_FIRST, appliance: bool = True, hub_azs=AZS, spokes=("main",),
             blackholes: bool = True) -> NetworkData:
    """The network for `spokes` (AZs a, b) and a hub in `hub_azs`, as EC2 would describe it."""
    cidrs = [SPOKES[s] for s in spokes]
    subnets, tables, attachments = [], [], []
    for name in spokes:
        workspace, tgw = _spoke_subnets(SPOKES[name])
        vpc = f"vpc-{name}"
        for az in AZS:
            subnets += [_subnet(f"subnet-ws-{name}-{az}", vpc, az, workspace[az]),
                        _subnet(f"subnet-stgw-{name}-{az}", vpc, az, tgw[az])]
        tables.append(_table(f"rtb-{name}", vpc, [
            _local(SPOKES[name]), _route("0.0.0.0/0", TransitGatewayId="tgw-1"),
            {"DestinationPrefixListId": "pl-s3", "GatewayId": "vpce-s3", "Origin": "CreateRoute", "State": "active"},
        ], subnets=[f"subnet-ws-{name}-{az}" for az in AZS], main=True))
        attachments.append({"TransitGatewayAttachmentId": f"tgw-attach-{name}", "TransitGatewayId": "tgw-1",
                            "VpcId": vpc, "SubnetIds": [f"subnet-stgw-{name}-{az}" for az in AZS],
                            "State": "available", "Options": {"ApplianceModeSupport": "disable"}})

    nats, endpoints, edge_routes = [], [], [_local(HUB_CIDR)]
    for az in hub_azs:
        tgw_cidr, nat_cidr, fw_cidr = HUB_SUBNETS[az]
        subnets += [_subnet(f"subnet-{kind}-{az}", "vpc-hub", az, cidr)
                    for kind, cidr in (("htgw", tgw_cidr), ("nat", nat_cidr), ("fw", fw_cidr))]
        nats.append({"NatGatewayId": f"nat-{az}", "SubnetId": f"subnet-nat-{az}", "VpcId": "vpc-hub",
                     "State": "available", "NatGatewayAddresses": [{"PrivateIp": nat_cidr.replace(".0/20", ".9")}]})
        endpoints.append({"VpcEndpointId": f"vpce-fw-{az}", "VpcEndpointType": "GatewayLoadBalancer",
                          "SubnetIds": [f"subnet-fw-{az}"], "State": "available", "VpcId": "vpc-hub"})
        to_tgw = [_route(c, TransitGatewayId="tgw-1") for c in cidrs]
        to_endpoint = [_route(c, GatewayId=f"vpce-fw-{az}") for c in cidrs]
        if routing == NAT_FIRST:
            htgw = [_route("0.0.0.0/0", NatGatewayId=f"nat-{az}"), *to_tgw]
            nat = [_route("0.0.0.0/0", GatewayId=f"vpce-fw-{az}"), *to_tgw]
            edge_routes.append(_route(nat_cidr, GatewayId=f"vpce-fw-{az}"))
        elif routing == FIREWALL_FIRST:
            htgw = [_route("0.0.0.0/0", GatewayId=f"vpce-fw-{az}")]
            nat = [_route("0.0.0.0/0", GatewayId="igw-1"), *to_endpoint]
        else:
            htgw, nat = [], []
        tables.append(_table(f"rtb-htgw-{az}", "vpc-hub", [_local(HUB_CIDR), *htgw], subnets=[f"subnet-htgw-{az}"]))
        tables.append(_table(f"rtb-nat-{az}", "vpc-hub", [_local(HUB_CIDR), *nat], subnets=[f"subnet-nat-{az}"]))
        if routing != NAT_FIRST:
            tables.append(_table(f"rtb-fw-{az}", "vpc-hub", [
                _local(HUB_CIDR), _route("0.0.0.0/0", NatGatewayId=f"nat-{az}"), *to_tgw], subnets=[f"subnet-fw-{az}"]))
    if routing == NAT_FIRST:
        # One firewall subnet table for every AZ, and an IGW edge table sending replies to the NATs through the
        # endpoint of their AZ.
        tables.append(_table("rtb-fw", "vpc-hub", [_local(HUB_CIDR), _route("0.0.0.0/0", GatewayId="igw-1")],
                             subnets=[f"subnet-fw-{az}" for az in hub_azs]))
        tables.append(_table("rtb-edge", "vpc-hub", edge_routes, gateway="igw-1"))
    tables.append(_table("rtb-hub-main", "vpc-hub", [_local(HUB_CIDR)], main=True))
    attachments.append({"TransitGatewayAttachmentId": "tgw-attach-hub", "TransitGatewayId": "tgw-1",
                        "VpcId": "vpc-hub", "SubnetIds": [f"subnet-htgw-{az}" for az in hub_azs], "State": "available",
                        "Options": {"ApplianceModeSupport": "enable" if appliance else "disable"}})

    return NetworkData(
        route_tables=tables, subnets=subnets, nat_gateways=nats, vpc_endpoints=endpoints,
        internet_gateways=[{"InternetGatewayId": "igw-1", "Attachments": [{"VpcId": "vpc-hub", "State": "available"}]}],
        tgw_attachments=attachments,
        tgw_route_tables=[
            {"TransitGatewayRouteTableId": "tgw-rtb-spokes", "Associations": [f"tgw-attach-{s}" for s in spokes],
             "Routes": [_tgw_route("0.0.0.0/0", "tgw-attach-hub"),
                        *(_tgw_route(c, None) for c in cidrs if blackholes)]},
            {"TransitGatewayRouteTableId": "tgw-rtb-hub", "Associations": ["tgw-attach-hub"],
             "Routes": [_tgw_route(SPOKES[s], f"tgw-attach-{s}", "propagated") for s in spokes]},
        ],
    )


def _sources(*spokes: str) -> list[Source]:
    return [Source(f"spoke {name} {az}", f"subnet-ws-{name}-{az}") for name in spokes for az in AZS]


SOURCES = _sources("main")


def _table_of(data: NetworkData, table_id: str) -> dict[str, Any]:
    return next(t for t in data.route_tables if t["RouteTableId"] == table_id)


def _set_route(data: NetworkData, table_id: str, cidr: str, **target: str) -> None:
    routes = _table_of(data, table_id)["Routes"]
    routes[:] = [r for r in routes if r.get("DestinationCidrBlock") != cidr]
    if target:
        routes.append(_route(cidr, **target))


# -- the designed network -----------------------------------------------------------------------------------------


def test_designed_network_passes_the_endpoint_of_its_az_before_the_nat_both_ways():
    report = trace_egress(topology(), SOURCES)
    assert report.problems() == [] and report.forced_through_firewall
    assert len(report.traces) == 4  # appliance mode: each spoke AZ may be handed to either hub AZ
    for source in SOURCES:
        paths = report.paths(source.label)
        assert sorted(paths) == ["a", "b"]
        for x, trace in paths.items():
            assert trace.egress.kinds == EGRESS
            assert [h.id for h in trace.egress.hops] == [
                source.subnet_id, "rtb-main", "tgw-1", "tgw-rtb-spokes", "tgw-attach-hub", f"subnet-htgw-{x}",
                f"rtb-htgw-{x}", f"vpce-fw-{x}", f"rtb-fw-{x}", f"nat-{x}", f"rtb-nat-{x}", "igw-1"]
            assert trace.egress.end == INTERNET
            # No IGW edge table: the reply reaches the NAT, whose subnet sends it back through the endpoint.
            (back,) = trace.returns
            assert back.end == DELIVERED and back.vpc == "vpc-main"
            assert [h.id for h in back.hops] == [
                "igw-1", f"nat-{x}", f"rtb-nat-{x}", f"vpce-fw-{x}", f"rtb-fw-{x}", "tgw-1", "tgw-rtb-hub",
                "tgw-attach-main", f"subnet-stgw-main-{x}", "rtb-main"]


@pytest.mark.parametrize(("hub_azs", "appliance", "pairs"), [
    (AZS, True, {("a", "a"), ("a", "b"), ("b", "a"), ("b", "b")}),
    # Without appliance mode a flow stays in its AZ.
    (AZS, False, {("a", "a"), ("b", "b")}),
    # One hub AZ takes both spoke AZs.
    (("a",), True, {("a", "a"), ("b", "a")}),
    (("a",), False, {("a", "a"), ("b", "a")}),
    (("a", "b", "c"), True, {(s, h) for s in AZS for h in "abc"}),
    (("a", "b", "c"), False, {("a", "a"), ("b", "b")}),
], ids=["2-azs", "2-azs-no-appliance", "1-az", "1-az-no-appliance", "3-azs", "3-azs-no-appliance"])
def test_designed_network_passes_for_any_hub_azs(hub_azs, appliance, pairs):
    report = trace_egress(topology(hub_azs=hub_azs, appliance=appliance), SOURCES)
    assert report.problems() == []
    assert {(t.az, t.hub_az) for t in report.traces} == pairs
    for trace in report.traces:
        x = trace.hub_az
        assert {h.id for h in trace.egress.of(FIREWALL_ENDPOINT) + trace.egress.of(NAT_GATEWAY)} == {
            f"vpce-fw-{x}", f"nat-{x}"}
        assert trace.returns and all(back.end == DELIVERED and back.of(FIREWALL_ENDPOINT)[0].id == f"vpce-fw-{x}"
                                     for back in trace.returns)


def test_before_the_firewall_routes_nothing_leaves_the_hub():
    """The network steps alone give the TGW subnets no default route: no way out until the endpoint is in it."""
    report = trace_egress(topology(NO_FIREWALL), SOURCES)
    for trace in report.traces:
        assert trace.egress.end == DROPPED
        assert trace.egress.kinds == EGRESS[:7]
        assert trace.egress.reason == f"no route to 0.0.0.0/0 in rtb-htgw-{trace.hub_az}"
    assert len(report.problems()) == 4 and not report.forced_through_firewall


def test_the_nat_before_the_firewall_is_reported():
    """The old layout reaches the internet through the endpoint both ways, but the firewall sees only the NAT."""
    report = trace_egress(topology(NAT_FIRST), SOURCES)
    problems = report.problems()
    assert len(problems) == 4 and not report.forced_through_firewall
    for trace in report.traces:
        assert trace.egress.end == INTERNET and trace.egress.of(FIREWALL_ENDPOINT)
        assert all(back.end == DELIVERED and back.of(FIREWALL_ENDPOINT) for back in trace.returns)
        (problem,) = trace.problems()
        assert problem.startswith(f"{trace.label}: passes the NAT gateway before the firewall"), problem
        assert "TGW subnet's route table must send 0.0.0.0/0 to the firewall endpoint" in problem


# -- broken routes ------------------------------------------------------------------------------------------------


def _tgw_subnet_a_straight_to_nat(d):
    _set_route(d, "rtb-htgw-a", "0.0.0.0/0", NatGatewayId="nat-a")


def _tgw_subnet_a_to_endpoint_b(d):
    _set_route(d, "rtb-htgw-a", "0.0.0.0/0", GatewayId="vpce-fw-b")


def _firewall_subnet_a_to_nat_b(d):
    _set_route(d, "rtb-fw-a", "0.0.0.0/0", NatGatewayId="nat-b")


def _return_a_skips_endpoint(d):
    _set_route(d, "rtb-nat-a", SPOKES["main"], TransitGatewayId="tgw-1")


def _return_a_to_endpoint_b(d):
    _set_route(d, "rtb-nat-a", SPOKES["main"], GatewayId="vpce-fw-b")


def _return_a_missing(d):
    _set_route(d, "rtb-nat-a", SPOKES["main"])


def _nat_subnet_a_still_to_endpoint(d):
    # Half converted: the NAT subnet's old default route to the endpoint, with the new TGW subnet route.
    _set_route(d, "rtb-nat-a", "0.0.0.0/0", GatewayId="vpce-fw-a")


def _spoke_default_missing(d):
    _set_route(d, "rtb-main", "0.0.0.0/0")


def _spoke_bypass(d):
    _set_route(d, "rtb-main", "52.0.0.0/8", GatewayId="igw-1")


def _nat_a_deleted(d):
    d.nat_gateways[0]["State"] = "deleted"


def _blackhole(d):
    next(r for r in _table_of(d, "rtb-fw-b")["Routes"] if r.get("NatGatewayId"))["State"] = "blackhole"


def _spokes_table_empty(d):
    d.tgw_route_tables[0]["Routes"] = []


def _spoke_unassociated(d):
    d.tgw_route_tables[0]["Associations"] = []


def _igw_detached(d):
    d.internet_gateways[0]["Attachments"] = []


def _no_return_propagation(d):
    d.tgw_route_tables[1]["Routes"] = []


def _firewall_subnet_loops(d):
    _set_route(d, "rtb-fw-a", "0.0.0.0/0", GatewayId="vpce-fw-a")


def _endpoint_gone(d):
    d.vpc_endpoints[:] = [e for e in d.vpc_endpoints if e["VpcEndpointId"] != "vpce-fw-b"]


def _tgw_subnet_a_specific_route_to_nat(d):
    _set_route(d, "rtb-htgw-a", "52.0.0.0/8", NatGatewayId="nat-a")


def _endpoint_pending(d):
    d.vpc_endpoints[0]["State"] = "pending"


@pytest.mark.parametrize(("breakage", "expected"), [
    (_tgw_subnet_a_straight_to_nat, "via hub a: reaches the internet without passing a firewall endpoint"),
    (_tgw_subnet_a_to_endpoint_b, "via hub a: egress path uses firewall-endpoint vpce-fw-b (b), in another AZ than a"),
    (_firewall_subnet_a_to_nat_b, "via hub a: egress path uses nat-gateway nat-b (b), in another AZ than a"),
    (_return_a_skips_endpoint, "via hub a: return traffic skips the firewall"),
    (_return_a_to_endpoint_b, "via hub a: return path uses firewall-endpoint vpce-fw-b (b), in another AZ than a"),
    (_return_a_missing, "via hub a: the reply leaves through internet-gateway igw-1 instead of reaching the spoke"),
    (_nat_subnet_a_still_to_endpoint, "a routing loop"),
    (_spoke_default_missing, "spoke main a: egress stops at route-table rtb-main: no route to 0.0.0.0/0 in rtb-main"),
    (_spoke_bypass, "route table rtb-main sends 52.0.0.0/8 to igw-1, around the Transit Gateway"),
    (_nat_a_deleted, "via hub a: egress stops at nat-gateway nat-a (a): NAT gateway nat-a is deleted"),
    (_blackhole, "via hub b: egress stops at route-table rtb-fw-b: route 0.0.0.0/0 -> nat-b in rtb-fw-b is a "
                 "blackhole"),
    (_spokes_table_empty, "egress stops at tgw-route-table tgw-rtb-spokes: route to 0.0.0.0/0 in tgw-rtb-spokes does "
                          "not exist"),
    (_spoke_unassociated, "attachment tgw-attach-main is associated with no TGW route table"),
    (_igw_detached, "egress stops at internet-gateway igw-1: igw-1 is not attached to vpc-hub"),
    (_no_return_propagation, "return path stops at tgw-route-table tgw-rtb-hub: route to 10.1.0.0/18 in tgw-rtb-hub "
                             "does not exist"),
    (_firewall_subnet_loops, "a routing loop"),
    (_endpoint_gone, "via hub b: egress stops at firewall-endpoint vpce-fw-b: endpoint vpce-fw-b not found"),
    (_endpoint_pending, "via hub a: egress stops at firewall-endpoint vpce-fw-a (a): endpoint vpce-fw-a is pending"),
    # A more specific public route around the endpoint is walked on its own and reported.
    (_tgw_subnet_a_specific_route_to_nat, "52.0.0.0/8"),
])
def test_every_broken_route_is_reported(breakage, expected):
    data = copy.deepcopy(topology())
    breakage(data)
    report = trace_egress(data, SOURCES)
    problems = report.problems()
    assert any(expected in p for p in problems), problems
    assert not report.forced_through_firewall


@pytest.mark.parametrize("breakage", [_firewall_subnet_loops, _nat_subnet_a_still_to_endpoint])
def test_a_loop_ends_as_a_loop_in_its_az_only(breakage):
    data = topology()
    breakage(data)
    report = trace_egress(data, SOURCES[:1])
    assert {t.hub_az: t.egress.end for t in report.traces} == {"a": LOOP, "b": INTERNET}


@pytest.mark.parametrize(("destination", "expected"), [
    ("0.0.0.0/0", "0.0.0.0/0"),
    ("10.1.0.0/19", "10.1.0.0/16"),
    ("10.1.5.5/32", "10.1.0.0/16"),
    ("10.2.0.0/16", "0.0.0.0/0"),
    ("10.0.0.0/8", "0.0.0.0/0"),
])
def test_longest_match(destination, expected):
    routes = [_route("0.0.0.0/0", GatewayId="igw-1"), _local("10.1.0.0/16"), {"DestinationPrefixListId": "pl-1"}]
    assert longest_match(routes, destination)["DestinationCidrBlock"] == expected


def test_unknown_source_subnet_is_reported():
    report = trace_egress(topology(), [Source("spoke x a", "subnet-nope")])
    assert report.problems() == ["spoke x a: egress stops at None: subnet subnet-nope not found"]


# -- spokes never reach each other --------------------------------------------------------------------------------

BOTH = _sources("main", "other")


def test_two_spokes_egress_through_the_firewall_and_are_blackholed_from_each_other():
    data = topology(spokes=("main", "other"))
    assert trace_egress(data, BOTH).problems() == []
    assert isolation_problems(data, BOTH, SPOKES) == []
    (path,) = follow(data, "subnet-ws-main-a", SPOKES["other"])
    assert path.end == DROPPED and path.hops[-1].kind == TGW_ROUTE_TABLE and path.hops[-1].id == "tgw-rtb-spokes"
    assert "blackhole" in path.reason


def test_a_spokes_own_cidr_is_not_checked():
    assert isolation_problems(topology(blackholes=False), SOURCES, {"main": SPOKES["main"]}) == []


def _no_blackholes(d):
    d.tgw_route_tables[0]["Routes"] = [r for r in d.tgw_route_tables[0]["Routes"] if r["State"] != "blackhole"]


def _no_blackhole_for_other(d):
    d.tgw_route_tables[0]["Routes"] = [r for r in d.tgw_route_tables[0]["Routes"]
                                       if r["DestinationCidrBlock"] != SPOKES["other"]]


def _direct_route_to_other(d):
    _no_blackhole_for_other(d)
    d.tgw_route_tables[0]["Routes"].append(_tgw_route(SPOKES["other"], "tgw-attach-other", "propagated"))


def _specific_route_to_other(d):
    d.tgw_route_tables[0]["Routes"].append(_tgw_route("10.2.0.0/18", "tgw-attach-other"))


def _peering_to_other(d):
    _set_route(d, "rtb-main", SPOKES["other"], VpcPeeringConnectionId="pcx-1")


@pytest.mark.parametrize(("breakage", "reported", "through_hub"), [
    # 0/0 takes the flow to the hub, which hands it to the other spoke: the firewall alone stands in the way.
    (_no_blackholes, {"spoke main a reaches spoke other", "spoke main b reaches spoke other",
                      "spoke other a reaches spoke main", "spoke other b reaches spoke main"}, True),
    (_no_blackhole_for_other, {"spoke main a reaches spoke other", "spoke main b reaches spoke other"}, True),
    (_direct_route_to_other, {"spoke main a reaches spoke other", "spoke main b reaches spoke other"}, False),
    (_peering_to_other, {"spoke main a to spoke other", "spoke main b to spoke other"}, False),
    # A route for part of the other spoke beside its blackhole wins by longest prefix: walked and reported.
    (_specific_route_to_other, {"spoke main a reaches spoke other", "spoke main b reaches spoke other"}, False),
])
def test_spokes_that_are_not_blackholed_from_each_other_are_reported(breakage, reported, through_hub):
    data = copy.deepcopy(topology(spokes=("main", "other")))
    breakage(data)
    problems = isolation_problems(data, BOTH, SPOKES)
    assert {p.split(" (")[0] for p in problems} == reported, problems
    for problem in problems:
        assert ("reaches spoke" in problem) or "is not blackholed by the Transit Gateway" in problem
        assert ("tgw-attach-hub" in problem and "firewall-endpoint" in problem) == through_hub, problem


def test_check_without_a_network_says_what_is_missing(tmp_path):
    from provisioner import engine
    from provisioner.context import Context
    from provisioner.design.config import build_config
    from provisioner.state import load

    config = build_config({"deployment": "nonet", "databricks_account_id": "0d4f7b3a-1c2e-4b5a-9f8e-7d6c5b4a3f2e"})
    ctx = Context(config=config, state=load(tmp_path, "nonet"))
    (item,) = engine.run_checks(ctx, [EgressCheck(config)])
    assert item.status == "failed" and item.name == "egress forced through the firewall; spokes isolated"
    assert item.drift == ["cannot check: cannot trace egress: spoke/main/workspace-subnet/eu-central-1a has not been "
                          "created yet"]
