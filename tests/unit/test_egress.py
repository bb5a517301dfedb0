"""The egress walk over hand-made describe answers: the designed topology passes, every broken route is reported."""

from __future__ import annotations

import copy
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
    longest_match,
    trace_egress,
)

AZS = ("a", "b")
HUB_CIDR = "10.10.0.0/16"
SPOKE_CIDR = "10.1.0.0/16"
HUB_SUBNETS = {  # az -> (tgw, nat, firewall)
    "a": ("10.10.0.0/19", "10.10.32.0/19", "10.10.64.0/19"),
    "b": ("10.10.96.0/19", "10.10.128.0/19", "10.10.160.0/19"),
}
WORKSPACE = {"a": "10.1.0.0/19", "b": "10.1.32.0/19"}
SPOKE_TGW = {"a": "10.1.64.0/19", "b": "10.1.96.0/19"}
EGRESS = [SUBNET, ROUTE_TABLE, TRANSIT_GATEWAY, TGW_ROUTE_TABLE, TGW_ATTACHMENT, SUBNET, ROUTE_TABLE, NAT_GATEWAY,
          ROUTE_TABLE, FIREWALL_ENDPOINT, ROUTE_TABLE, INTERNET_GATEWAY]


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


def topology(firewall: bool = True, appliance: bool = True, hub_azs=AZS) -> NetworkData:
    """The designed network for one spoke (AZs a, b) and a hub in `hub_azs`, as EC2 would describe it."""
    subnets = []
    tables = [_table("rtb-spoke", "vpc-spoke", [_local(SPOKE_CIDR), _route("0.0.0.0/0", TransitGatewayId="tgw-1"),
                                                 {"DestinationPrefixListId": "pl-s3", "GatewayId": "vpce-s3",
                                                  "Origin": "CreateRoute", "State": "active"}],
                     subnets=[f"subnet-ws-{az}" for az in AZS], main=True)]
    for az in AZS:
        subnets += [{"SubnetId": f"subnet-ws-{az}", "VpcId": "vpc-spoke", "AvailabilityZone": az,
                     "CidrBlock": WORKSPACE[az]},
                    {"SubnetId": f"subnet-stgw-{az}", "VpcId": "vpc-spoke", "AvailabilityZone": az,
                     "CidrBlock": SPOKE_TGW[az]}]
    nats, endpoints, edge_routes = [], [], [_local(HUB_CIDR)]
    for az in hub_azs:
        tgw_cidr, nat_cidr, fw_cidr = HUB_SUBNETS[az]
        subnets += [{"SubnetId": f"subnet-{kind}-{az}", "VpcId": "vpc-hub", "AvailabilityZone": az, "CidrBlock": cidr}
                    for kind, cidr in (("htgw", tgw_cidr), ("nat", nat_cidr), ("fw", fw_cidr))]
        nats.append({"NatGatewayId": f"nat-{az}", "SubnetId": f"subnet-nat-{az}", "VpcId": "vpc-hub",
                     "State": "available", "NatGatewayAddresses": [{"PrivateIp": nat_cidr.replace(".0/19", ".9")}]})
        endpoints.append({"VpcEndpointId": f"vpce-fw-{az}", "VpcEndpointType": "GatewayLoadBalancer",
                          "SubnetIds": [f"subnet-fw-{az}"], "State": "available", "VpcId": "vpc-hub"})
        tables.append(_table(f"rtb-htgw-{az}", "vpc-hub", [
            _local(HUB_CIDR), _route("0.0.0.0/0", NatGatewayId=f"nat-{az}"),
            _route(SPOKE_CIDR, TransitGatewayId="tgw-1")], subnets=[f"subnet-htgw-{az}"]))
        nat_routes = [_local(HUB_CIDR), _route(SPOKE_CIDR, TransitGatewayId="tgw-1")]
        if firewall:
            nat_routes.append(_route("0.0.0.0/0", GatewayId=f"vpce-fw-{az}"))
            edge_routes.append(_route(nat_cidr, GatewayId=f"vpce-fw-{az}"))
        tables.append(_table(f"rtb-nat-{az}", "vpc-hub", nat_routes, subnets=[f"subnet-nat-{az}"]))
    tables.append(_table("rtb-fw", "vpc-hub", [_local(HUB_CIDR), _route("0.0.0.0/0", GatewayId="igw-1")],
                         subnets=[f"subnet-fw-{az}" for az in hub_azs]))
    tables.append(_table("rtb-edge", "vpc-hub", edge_routes, gateway="igw-1"))
    tables.append(_table("rtb-hub-main", "vpc-hub", [_local(HUB_CIDR)], main=True))

    def tgw_route(cidr: str, attachment: str, kind: str = "static") -> dict[str, Any]:
        return {"DestinationCidrBlock": cidr, "Type": kind, "State": "active",
                "TransitGatewayAttachments": [{"TransitGatewayAttachmentId": attachment}]}

    return NetworkData(
        route_tables=tables, subnets=subnets, nat_gateways=nats, vpc_endpoints=endpoints,
        internet_gateways=[{"InternetGatewayId": "igw-1", "Attachments": [{"VpcId": "vpc-hub", "State": "available"}]}],
        tgw_attachments=[
            {"TransitGatewayAttachmentId": "tgw-attach-hub", "TransitGatewayId": "tgw-1", "VpcId": "vpc-hub",
             "SubnetIds": [f"subnet-htgw-{az}" for az in hub_azs], "State": "available",
             "Options": {"ApplianceModeSupport": "enable" if appliance else "disable"}},
            {"TransitGatewayAttachmentId": "tgw-attach-spoke", "TransitGatewayId": "tgw-1", "VpcId": "vpc-spoke",
             "SubnetIds": [f"subnet-stgw-{az}" for az in AZS], "State": "available",
             "Options": {"ApplianceModeSupport": "disable"}},
        ],
        tgw_route_tables=[
            {"TransitGatewayRouteTableId": "tgw-rtb-spokes", "Associations": ["tgw-attach-spoke"],
             "Routes": [tgw_route("0.0.0.0/0", "tgw-attach-hub")]},
            {"TransitGatewayRouteTableId": "tgw-rtb-hub", "Associations": ["tgw-attach-hub"],
             "Routes": [tgw_route(SPOKE_CIDR, "tgw-attach-spoke", "propagated")]},
        ],
    )


SOURCES = [Source(f"spoke main {az}", f"subnet-ws-{az}") for az in AZS]


def _table_of(data: NetworkData, table_id: str) -> dict[str, Any]:
    return next(t for t in data.route_tables if t["RouteTableId"] == table_id)


def _set_route(data: NetworkData, table_id: str, cidr: str, **target: str) -> None:
    routes = _table_of(data, table_id)["Routes"]
    routes[:] = [r for r in routes if r.get("DestinationCidrBlock") != cidr]
    if target:
        routes.append(_route(cidr, **target))


# -- the designed network -----------------------------------------------------------------------------------------


def test_designed_network_forces_every_path_through_the_endpoint_of_its_az():
    report = trace_egress(topology(), SOURCES)
    assert report.problems() == [] and report.forced_through_firewall
    assert len(report.traces) == 4  # appliance mode: each spoke AZ may be handed to either hub AZ
    for source in SOURCES:
        paths = report.paths(source.label)
        assert sorted(paths) == ["a", "b"]
        for hub_az, trace in paths.items():
            assert trace.egress.kinds == EGRESS
            assert [h.id for h in trace.egress.hops] == [
                source.subnet_id, "rtb-spoke", "tgw-1", "tgw-rtb-spokes", "tgw-attach-hub", f"subnet-htgw-{hub_az}",
                f"rtb-htgw-{hub_az}", f"nat-{hub_az}", f"rtb-nat-{hub_az}", f"vpce-fw-{hub_az}", "rtb-fw", "igw-1"]
            assert trace.egress.end == INTERNET
            (back,) = trace.returns
            assert back.end == DELIVERED and back.vpc == "vpc-spoke"
            assert [h.id for h in back.hops][:6] == ["igw-1", "rtb-edge", f"vpce-fw-{hub_az}", "rtb-fw",
                                                     f"nat-{hub_az}", f"rtb-nat-{hub_az}"]
            assert back.of(TGW_ROUTE_TABLE)[0].id == "tgw-rtb-hub"


def test_without_appliance_mode_a_flow_stays_in_its_az():
    report = trace_egress(topology(appliance=False), SOURCES)
    assert report.problems() == []
    assert {(t.az, t.hub_az) for t in report.traces} == {("a", "a"), ("b", "b")}


def test_one_hub_az_takes_both_spoke_azs():
    report = trace_egress(topology(hub_azs=("a",), appliance=False), SOURCES)
    assert report.problems() == []
    assert {(t.az, t.hub_az) for t in report.traces} == {("a", "a"), ("b", "a")}


def test_before_the_firewall_egress_stops_after_the_nat():
    report = trace_egress(topology(firewall=False), SOURCES)
    for trace in report.traces:
        assert trace.egress.end == DROPPED
        assert trace.egress.kinds == EGRESS[:9]
        assert trace.egress.reason == f"no route to 0.0.0.0/0 in rtb-nat-{trace.hub_az}"
    assert len(report.problems()) == 4 and not report.forced_through_firewall


# -- broken routes ------------------------------------------------------------------------------------------------


def _no_firewall_on_nat_a(d):
    _set_route(d, "rtb-nat-a", "0.0.0.0/0", GatewayId="igw-1")


def _edge_route_a_missing(d):
    _set_route(d, "rtb-edge", HUB_SUBNETS["a"][1])


def _edge_route_a_to_b(d):
    _set_route(d, "rtb-edge", HUB_SUBNETS["a"][1], GatewayId="vpce-fw-b")


def _nat_a_to_endpoint_b(d):
    _set_route(d, "rtb-nat-a", "0.0.0.0/0", GatewayId="vpce-fw-b")


def _tgw_subnet_a_to_nat_b(d):
    _set_route(d, "rtb-htgw-a", "0.0.0.0/0", NatGatewayId="nat-b")


def _spoke_default_missing(d):
    _set_route(d, "rtb-spoke", "0.0.0.0/0")


def _spoke_bypass(d):
    _set_route(d, "rtb-spoke", "52.0.0.0/8", GatewayId="igw-1")


def _nat_a_deleted(d):
    d.nat_gateways[0]["State"] = "deleted"


def _blackhole(d):
    _table_of(d, "rtb-htgw-b")["Routes"][1]["State"] = "blackhole"


def _spokes_table_empty(d):
    d.tgw_route_tables[0]["Routes"] = []


def _spoke_unassociated(d):
    d.tgw_route_tables[0]["Associations"] = []


def _igw_detached(d):
    d.internet_gateways[0]["Attachments"] = []


def _no_return_propagation(d):
    d.tgw_route_tables[1]["Routes"] = []


def _firewall_subnet_loops(d):
    _set_route(d, "rtb-fw", "0.0.0.0/0", GatewayId="vpce-fw-a")


def _endpoint_gone(d):
    d.vpc_endpoints[:] = [e for e in d.vpc_endpoints if e["VpcEndpointId"] != "vpce-fw-b"]


def _no_edge_table(d):
    d.route_tables[:] = [t for t in d.route_tables if t["RouteTableId"] != "rtb-edge"]


@pytest.mark.parametrize(("breakage", "expected"), [
    (_no_firewall_on_nat_a, "via hub a: reaches the internet without passing a firewall endpoint"),
    (_edge_route_a_missing, "via hub a: return traffic skips the firewall"),
    (_edge_route_a_to_b, "via hub a: return path uses firewall-endpoint vpce-fw-b (b), in another AZ than a"),
    (_nat_a_to_endpoint_b, "via hub a: egress path uses firewall-endpoint vpce-fw-b (b), in another AZ than a"),
    (_tgw_subnet_a_to_nat_b, "via hub a: egress path uses nat-gateway nat-b (b), in another AZ than a"),
    (_spoke_default_missing, "spoke main a: egress stops at route-table rtb-spoke: no route to 0.0.0.0/0 in rtb-spoke"),
    (_spoke_bypass, "route table rtb-spoke sends 52.0.0.0/8 to igw-1, around the Transit Gateway"),
    (_nat_a_deleted, "via hub a: egress stops at nat-gateway nat-a (a): NAT gateway nat-a is deleted"),
    (_blackhole, "via hub b: egress stops at route-table rtb-htgw-b: route 0.0.0.0/0 -> nat-b in rtb-htgw-b is a "
                 "blackhole"),
    (_spokes_table_empty, "egress stops at tgw-route-table tgw-rtb-spokes: route to 0.0.0.0/0 in tgw-rtb-spokes does "
                          "not exist"),
    (_spoke_unassociated, "attachment tgw-attach-spoke is associated with no TGW route table"),
    (_igw_detached, "egress stops at internet-gateway igw-1: igw-1 is not attached to vpc-hub"),
    (_no_return_propagation, "return path stops at tgw-route-table tgw-rtb-hub: route to 10.1.0.0/19 in tgw-rtb-hub "
                             "does not exist"),
    (_firewall_subnet_loops, "a routing loop"),
    (_endpoint_gone, "via hub b: egress stops at firewall-endpoint vpce-fw-b: endpoint vpce-fw-b not found"),
    (_no_edge_table, "return traffic skips the firewall"),
])
def test_every_broken_route_is_reported(breakage, expected):
    data = copy.deepcopy(topology())
    breakage(data)
    report = trace_egress(data, SOURCES)
    problems = report.problems()
    assert any(expected in p for p in problems), problems
    assert not report.forced_through_firewall


def test_a_loop_ends_as_a_loop():
    data = topology()
    _firewall_subnet_loops(data)
    report = trace_egress(data, SOURCES[:1])
    assert {t.egress.end for t in report.traces} == {LOOP}


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


def test_check_without_a_network_says_what_is_missing(tmp_path):
    from provisioner import engine
    from provisioner.context import Context
    from provisioner.design.config import build_config
    from provisioner.state import load

    config = build_config({"deployment": "nonet", "databricks_account_id": "0d4f7b3a-1c2e-4b5a-9f8e-7d6c5b4a3f2e"})
    ctx = Context(config=config, state=load(tmp_path, "nonet"))
    (item,) = engine.run_checks(ctx, [EgressCheck(config)])
    assert item.status == "failed" and item.name == "egress forced through the firewall"
    assert item.drift == ["cannot check: cannot trace egress: spoke/main/workspace-subnet/eu-central-1a has not been "
                          "created yet"]
