"""Route tables as data: what each VPC and Transit Gateway route table of a layout holds, and who makes it."""

import pytest

from provisioner.design import routes as rt
from provisioner.design.config import build_config
from provisioner.design.layout import layout
from provisioner.steps import keys

ACCOUNT = "0d4f7b3a-1c2e-4b5a-9f8e-7d6c5b4a3f2e"
A, B, C = "eu-central-1a", "eu-central-1b", "eu-central-1c"


def _layout(spokes=(("main", "10.173.0.0/16"),), azs=2):
    return layout(build_config({"deployment": "rt", "databricks_account_id": ACCOUNT, "hub_availability_zones": azs,
                                "spokes": [{"name": n, "cidr": c} for n, c in spokes]}))


def _routes(table, owner=None):
    return [(r.destination, r.target_kind, r.target) for r in table.routes if owner is None or r.owner == owner]


LAYOUT = _layout()
TGW = ("transit-gateway", "hub/transit-gateway")


@pytest.mark.parametrize(("key", "network", "firewall", "subnets", "gateway"), [
    ("spoke/main/route-table", [("0.0.0.0/0", *TGW)], [],
     ["spoke/main/workspace-subnet/" + A, "spoke/main/workspace-subnet/" + B], None),
    (f"hub/tgw-subnet-route-table/{A}", [("0.0.0.0/0", "nat-gateway", f"hub/nat/{A}"), ("10.173.0.0/16", *TGW)], [],
     [f"hub/tgw-subnet/{A}"], None),
    (f"hub/tgw-subnet-route-table/{B}", [("0.0.0.0/0", "nat-gateway", f"hub/nat/{B}"), ("10.173.0.0/16", *TGW)], [],
     [f"hub/tgw-subnet/{B}"], None),
    (f"hub/nat-subnet-route-table/{A}", [("10.173.0.0/16", *TGW)],
     [("0.0.0.0/0", "firewall-endpoint", f"firewall-endpoint/{A}")], [f"hub/nat-subnet/{A}"], None),
    (f"hub/nat-subnet-route-table/{B}", [("10.173.0.0/16", *TGW)],
     [("0.0.0.0/0", "firewall-endpoint", f"firewall-endpoint/{B}")], [f"hub/nat-subnet/{B}"], None),
    ("hub/firewall-subnet-route-table", [("0.0.0.0/0", "internet-gateway", "hub/igw")], [],
     [f"hub/firewall-subnet/{A}", f"hub/firewall-subnet/{B}"], None),
    ("hub/igw-route-table", [],
     [("10.10.32.0/19", "firewall-endpoint", f"firewall-endpoint/{A}"),
      ("10.10.128.0/19", "firewall-endpoint", f"firewall-endpoint/{B}")], [], "hub/igw"),
])
def test_each_route_table_of_the_default_layout(key, network, firewall, subnets, gateway):
    table = rt.route_table(LAYOUT, key)
    assert _routes(table, rt.NETWORK) == network
    assert _routes(table, rt.FIREWALL) == firewall
    assert list(table.subnets) == subnets
    assert table.gateway == gateway


def test_the_spoke_table_is_main_and_its_s3_route_is_the_endpoints():
    table = rt.route_table(LAYOUT, "spoke/main/route-table")
    assert table.main and table.vpc == "spoke/main/vpc"
    assert _routes(table, rt.AWS) == [
        ("pl:com.amazonaws.eu-central-1.s3", "gateway-endpoint", "spoke/main/s3-endpoint")]
    # A route to the TGW needs the VPC attached first (AWS refuses it otherwise).
    assert set(table.needs) == {"spoke/main/vpc", f"spoke/main/workspace-subnet/{A}",
                                f"spoke/main/workspace-subnet/{B}", "hub/transit-gateway", "spoke/main/tgw-attachment"}


def test_hub_tables_need_their_targets_and_never_the_firewall():
    needs = set(rt.route_table(LAYOUT, f"hub/tgw-subnet-route-table/{A}").needs)
    assert needs == {"hub/vpc", f"hub/tgw-subnet/{A}", f"hub/nat/{A}", "hub/transit-gateway", "hub/tgw-attachment"}
    nat_needs = set(rt.route_table(LAYOUT, f"hub/nat-subnet-route-table/{A}").needs)
    assert nat_needs == {"hub/vpc", f"hub/nat-subnet/{A}", "hub/transit-gateway", "hub/tgw-attachment"}
    assert set(rt.route_table(LAYOUT, "hub/igw-route-table").needs) == {"hub/vpc", "hub/igw"}


@pytest.mark.parametrize(("spokes", "azs"), [(1, 1), (2, 2), (3, 3)])
def test_routes_never_leave_their_az_and_reach_every_spoke(spokes, azs):
    names = [("a", "10.1.0.0/16"), ("b", "10.2.0.0/16"), ("c", "10.3.0.0/16")][:spokes]
    lay = _layout(names, azs)
    hub = rt.hub_route_tables(lay)
    assert len(hub) == 2 * azs + 2
    per_az = [t for t in hub if t.az]
    assert sorted({t.az for t in per_az}) == [A, B, C][:azs]
    for table in per_az:
        for route in table.routes:
            if route.target_kind in ("nat-gateway", "firewall-endpoint"):
                assert route.target.endswith("/" + table.az), (table.key, route)
        # Return traffic to every spoke goes back through the Transit Gateway.
        assert {r.destination for r in table.routes if r.target_kind == "transit-gateway"} == {c for _, c in names}
    edge = rt.route_table(lay, "hub/igw-route-table")
    assert [(r.destination, r.target) for r in edge.routes] == [
        (h.cidrs.nat_subnet, rt.firewall_endpoint(h.az)) for h in lay.hub_azs]
    assert len(rt.vpc_route_tables(lay)) == spokes + 2 * azs + 2


@pytest.mark.parametrize("spokes", [1, 3])
def test_tgw_tables_isolate_spokes_and_return_to_each(spokes):
    names = [("a", "10.1.0.0/16"), ("b", "10.2.0.0/16"), ("c", "10.3.0.0/16")][:spokes]
    spoke_table, hub_table = rt.tgw_route_tables(_layout(names))
    attachments = tuple(f"spoke/{n}/tgw-attachment" for n, _ in names)
    assert spoke_table.key == "hub/tgw-route-table/spokes"
    assert spoke_table.associations == attachments and spoke_table.propagations == ()
    assert _routes(spoke_table) == [("0.0.0.0/0", "tgw-attachment", "hub/tgw-attachment")]
    assert hub_table.key == "hub/tgw-route-table/hub"
    assert hub_table.associations == ("hub/tgw-attachment",) and hub_table.propagations == attachments
    assert hub_table.routes == ()
    assert set(spoke_table.needs) == {"hub/transit-gateway", "hub/tgw-attachment", *attachments}


def test_keys_are_the_step_key_contract():
    assert rt.hub_key("nat", A) == keys.hub("nat", A)
    assert rt.spoke_key("main", "workspace-subnet", A) == keys.spoke("main", "workspace-subnet", A)
    all_keys = {t.key for t in rt.vpc_route_tables(LAYOUT)} | {t.key for t in rt.tgw_route_tables(LAYOUT)}
    assert all_keys == {
        keys.spoke("main", "route-table"), keys.hub("tgw-subnet-route-table", A), keys.hub("tgw-subnet-route-table", B),
        keys.hub("nat-subnet-route-table", A), keys.hub("nat-subnet-route-table", B),
        keys.hub("firewall-subnet-route-table"), keys.hub("igw-route-table"), keys.hub("tgw-route-table", "spokes"),
        keys.hub("tgw-route-table", "hub")}


def test_unknown_route_table():
    with pytest.raises(KeyError):
        rt.route_table(LAYOUT, "hub/nope")
