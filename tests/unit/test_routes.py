"""Route tables as data: what each VPC and Transit Gateway route table of a layout holds, and who makes it."""

import pytest

from provisioner.design import routes as rt
from provisioner.design.config import build_config
from provisioner.design.layout import layout
from provisioner.steps import keys

ACCOUNT = "0d4f7b3a-1c2e-4b5a-9f8e-7d6c5b4a3f2e"
A, B, C = "eu-central-1a", "eu-central-1b", "eu-central-1c"
SPOKES = [("a", "10.1.0.0/16"), ("b", "10.2.0.0/16"), ("c", "10.3.0.0/16")]


def _layout(spokes=(("main", "10.173.0.0/16"),), azs=2):
    return layout(build_config({"deployment": "rt", "databricks_account_id": ACCOUNT, "hub_availability_zones": azs,
                                "spokes": [{"name": n, "cidr": c} for n, c in spokes]}))


def _routes(table, owner=None):
    return [(r.destination, r.target_kind, r.target) for r in table.routes if owner is None or r.owner == owner]


LAYOUT = _layout()
TGW = ("transit-gateway", "hub/transit-gateway")
HUB_ATTACHMENT = "hub/tgw-attachment"


def _endpoint(az):
    return ("firewall-endpoint", f"firewall-endpoint/{az}")


@pytest.mark.parametrize(("key", "network", "firewall", "subnets", "attachment"), [
    ("spoke/main/route-table", [("0.0.0.0/0", *TGW)], [],
     ["spoke/main/workspace-subnet/" + A, "spoke/main/workspace-subnet/" + B], "spoke/main/tgw-attachment"),
    # TGW subnet: everything from the spokes goes to the firewall endpoint of its AZ first.
    (f"hub/tgw-subnet-route-table/{A}", [], [("0.0.0.0/0", *_endpoint(A))], [f"hub/tgw-subnet/{A}"], None),
    (f"hub/tgw-subnet-route-table/{B}", [], [("0.0.0.0/0", *_endpoint(B))], [f"hub/tgw-subnet/{B}"], None),
    # Firewall subnet: inspected traffic to the NAT of its AZ, replies back to the spokes through the TGW.
    (f"hub/firewall-subnet-route-table/{A}", [("0.0.0.0/0", "nat-gateway", f"hub/nat/{A}"), ("10.173.0.0/16", *TGW)],
     [], [f"hub/firewall-subnet/{A}"], HUB_ATTACHMENT),
    (f"hub/firewall-subnet-route-table/{B}", [("0.0.0.0/0", "nat-gateway", f"hub/nat/{B}"), ("10.173.0.0/16", *TGW)],
     [], [f"hub/firewall-subnet/{B}"], HUB_ATTACHMENT),
    # NAT subnet: out through the IGW, replies to the spokes back through the endpoint of its AZ.
    (f"hub/nat-subnet-route-table/{A}", [],
     [("0.0.0.0/0", "internet-gateway", "hub/igw"), ("10.173.0.0/16", *_endpoint(A))], [f"hub/nat-subnet/{A}"], None),
    (f"hub/nat-subnet-route-table/{B}", [],
     [("0.0.0.0/0", "internet-gateway", "hub/igw"), ("10.173.0.0/16", *_endpoint(B))], [f"hub/nat-subnet/{B}"], None),
])
def test_each_route_table_of_the_default_layout(key, network, firewall, subnets, attachment):
    table = rt.route_table(LAYOUT, key)
    assert _routes(table, rt.NETWORK) == network
    assert _routes(table, rt.FIREWALL) == firewall
    assert list(table.subnets) == subnets
    assert table.gateway is None
    assert table.attachment == attachment


def _designed_hub_tables(azs, cidrs):
    """DESIGN.md's hub rows per AZ: (key, network routes, firewall routes, subnets, attachment)."""
    for az in azs:
        yield (f"hub/tgw-subnet-route-table/{az}", [], [("0.0.0.0/0", *_endpoint(az))], [f"hub/tgw-subnet/{az}"],
               None)
        yield (f"hub/firewall-subnet-route-table/{az}",
               [("0.0.0.0/0", "nat-gateway", f"hub/nat/{az}"), *((c, *TGW) for c in cidrs)], [],
               [f"hub/firewall-subnet/{az}"], HUB_ATTACHMENT)
        yield (f"hub/nat-subnet-route-table/{az}", [],
               [("0.0.0.0/0", "internet-gateway", "hub/igw"), *((c, *_endpoint(az)) for c in cidrs)],
               [f"hub/nat-subnet/{az}"], None)


@pytest.mark.parametrize(("spokes", "azs"), [(1, 1), (2, 1), (1, 2), (2, 2), (1, 3), (3, 3)])
def test_every_hub_table_for_one_to_three_azs(spokes, azs):
    names = SPOKES[:spokes]
    lay = _layout(names, azs)
    expected = list(_designed_hub_tables([A, B, C][:azs], [c for _, c in names]))
    hub = rt.hub_route_tables(lay)
    assert [t.key for t in hub] == [key for key, *_ in expected]
    for table, (key, network, firewall, subnets, attachment) in zip(hub, expected, strict=True):
        assert _routes(table, rt.NETWORK) == network, key
        assert _routes(table, rt.FIREWALL) == firewall, key
        assert _routes(table, rt.AWS) == [], key
        assert list(table.subnets) == subnets, key
        assert table.attachment == attachment, key
        assert table.vpc == "hub/vpc" and not table.main and table.az == key.rsplit("/", 1)[1]
    assert len(rt.vpc_route_tables(lay)) == spokes + 3 * azs


@pytest.mark.parametrize("azs", [1, 2, 3])
def test_no_igw_edge_table_and_the_old_tables_are_retired(azs):
    lay = _layout(azs=azs)
    tables = rt.vpc_route_tables(lay)
    assert all(t.gateway is None for t in tables)
    assert all(t.az for t in rt.hub_route_tables(lay))  # no table shared by the hub's AZs
    retired = (keys.hub("firewall-subnet-route-table"), keys.hub("igw-route-table"))
    assert retired == rt.RETIRED_HUB_ROUTE_TABLES
    assert not {t.key for t in tables} & set(rt.RETIRED_HUB_ROUTE_TABLES)
    for key in rt.RETIRED_HUB_ROUTE_TABLES:
        with pytest.raises(KeyError):
            rt.route_table(lay, key)


def test_the_spoke_table_is_main_and_its_s3_route_is_the_endpoints():
    table = rt.route_table(LAYOUT, "spoke/main/route-table")
    assert table.main and table.vpc == "spoke/main/vpc"
    assert _routes(table, rt.AWS) == [
        ("pl:com.amazonaws.eu-central-1.s3", "gateway-endpoint", "spoke/main/s3-endpoint")]
    # A route to the TGW needs the VPC attached first (AWS refuses it otherwise).
    assert set(table.needs) == {"spoke/main/vpc", f"spoke/main/workspace-subnet/{A}",
                                f"spoke/main/workspace-subnet/{B}", "hub/transit-gateway", "spoke/main/tgw-attachment"}


@pytest.mark.parametrize(("key", "needs"), [
    # The firewall family makes the endpoint and IGW routes, so a table never waits for the firewall.
    (f"hub/tgw-subnet-route-table/{A}", {"hub/vpc", f"hub/tgw-subnet/{A}"}),
    (f"hub/firewall-subnet-route-table/{A}",
     {"hub/vpc", f"hub/firewall-subnet/{A}", f"hub/nat/{A}", "hub/transit-gateway", "hub/tgw-attachment"}),
    (f"hub/nat-subnet-route-table/{B}", {"hub/vpc", f"hub/nat-subnet/{B}"}),
])
def test_hub_tables_need_their_targets_and_never_the_firewall(key, needs):
    assert set(rt.route_table(LAYOUT, key).needs) == needs


@pytest.mark.parametrize(("spokes", "azs"), [(1, 1), (2, 2), (3, 3)])
def test_routes_never_leave_their_az_and_reach_every_spoke(spokes, azs):
    names = SPOKES[:spokes]
    lay = _layout(names, azs)
    per_az = rt.hub_route_tables(lay)
    assert sorted({t.az for t in per_az}) == [A, B, C][:azs]
    for table in per_az:
        for route in table.routes:
            if route.target_kind in ("nat-gateway", "firewall-endpoint"):
                assert route.target.endswith("/" + table.az), (table.key, route)
    by_kind = {t.key.split("/")[1]: t for t in per_az if t.az == lay.hub_azs[-1].az}
    # Replies to every spoke: the firewall subnet hands them to the TGW, the NAT subnet to the endpoint.
    for kind, target_kind in (("firewall-subnet-route-table", "transit-gateway"),
                              ("nat-subnet-route-table", "firewall-endpoint")):
        got = {r.destination for r in by_kind[kind].routes
               if r.target_kind == target_kind and r.destination != rt.ANYWHERE}
        assert got == {c for _, c in names}, kind


@pytest.mark.parametrize("spokes", [1, 3])
def test_tgw_tables_isolate_spokes_and_return_to_each(spokes):
    names = SPOKES[:spokes]
    spoke_table, hub_table = rt.tgw_route_tables(_layout(names))
    attachments = tuple(f"spoke/{n}/tgw-attachment" for n, _ in names)
    assert spoke_table.key == "hub/tgw-route-table/spokes"
    assert spoke_table.associations == attachments and spoke_table.propagations == ()
    # 0/0 to the hub; every spoke CIDR (the spoke's own included) dropped by the TGW itself.
    assert _routes(spoke_table) == [("0.0.0.0/0", "tgw-attachment", "hub/tgw-attachment"),
                                    *((c, "blackhole", "blackhole") for _, c in names)]
    assert hub_table.key == "hub/tgw-route-table/hub"
    assert hub_table.associations == ("hub/tgw-attachment",) and hub_table.propagations == attachments
    assert hub_table.routes == ()
    # A blackhole is not a resource to wait for.
    assert set(spoke_table.needs) == {"hub/transit-gateway", "hub/tgw-attachment", *attachments}
    assert "blackhole" not in spoke_table.needs and "blackhole" not in hub_table.needs


def test_keys_are_the_step_key_contract():
    assert rt.hub_key("nat", A) == keys.hub("nat", A)
    assert rt.spoke_key("main", "workspace-subnet", A) == keys.spoke("main", "workspace-subnet", A)
    all_keys = {t.key for t in rt.vpc_route_tables(LAYOUT)} | {t.key for t in rt.tgw_route_tables(LAYOUT)}
    assert all_keys == {
        keys.spoke("main", "route-table"),
        keys.hub("tgw-subnet-route-table", A), keys.hub("tgw-subnet-route-table", B),
        keys.hub("firewall-subnet-route-table", A), keys.hub("firewall-subnet-route-table", B),
        keys.hub("nat-subnet-route-table", A), keys.hub("nat-subnet-route-table", B),
        keys.hub("tgw-route-table", "spokes"), keys.hub("tgw-route-table", "hub")}


def test_unknown_route_table():
    with pytest.raises(KeyError):
        rt.route_table(LAYOUT, "hub/nope")
