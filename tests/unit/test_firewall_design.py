"""The firewall as data: rule groups, policy, logging changes and endpoint routes, without any cloud."""

import pytest

from provisioner.design import firewall as fw
from provisioner.design.config import build_config
from provisioner.design.layout import layout
from tests.conftest import ACCOUNT_ID


def config(region="eu-central-1", legacy=True, extra=(".pypi.org",), spokes=(("bu1", "10.1.0.0/16"),), azs=2):
    raw = {
        "deployment": "acme", "databricks_account_id": ACCOUNT_ID, "region": region,
        "hub_availability_zones": azs, "spokes": [{"name": n, "cidr": c} for n, c in spokes],
        "firewall": {"legacy_hive_metastore": legacy, "extra_allowed_fqdns": list(extra)},
    }
    return build_config(raw)


REGIONS = [
    # region, web app, SCC relay, control-plane CIDR, legacy metastore host
    ("eu-central-1", "frankfurt.cloud.databricks.com", "tunnel.eu-central-1.cloud.databricks.com", "18.159.44.32/28",
     "mdv2llxgl8lou0.ceptxxgorjrc.eu-central-1.rds.amazonaws.com"),
    ("us-west-2", "oregon.cloud.databricks.com", "tunnel.cloud.databricks.com", "44.234.192.32/28",
     "mdpartyyphlhsp.caj77bnxuhme.us-west-2.rds.amazonaws.com"),
]


@pytest.mark.parametrize(("region", "webapp", "relay", "cidr", "metastore"), REGIONS)
def test_allowlist_per_region(region, webapp, relay, cidr, metastore):
    cfg = config(region=region)
    assert fw.allowed_fqdns(cfg, layout(cfg)) == tuple(sorted([
        webapp, relay, metastore, ".pypi.org",
        "acme-bu1-rootbucket.s3.amazonaws.com", f"acme-bu1-rootbucket.s3.{region}.amazonaws.com"]))
    group = fw.allowlist_group(cfg, layout(cfg))
    source = group.rule_group["RulesSource"]["RulesSourceList"]
    assert source["GeneratedRulesType"] == "ALLOWLIST"
    assert source["TargetTypes"] == ["TLS_SNI", "HTTP_HOST"]
    assert group.needed_capacity == 6 * 2

    rules = fw.control_plane_group(layout(cfg)).rule_group["RulesSource"]["RulesString"].splitlines()
    assert rules == [
        f'pass tcp $HOME_NET any -> {cidr} 443 (msg:"Databricks control plane, port 443"; flow:to_server; '
        "sid:2001; rev:1;)",
        f'pass tcp $HOME_NET any -> {cidr} 8443:8451 (msg:"Databricks control plane, port 8443:8451"; '
        "flow:to_server; sid:2002; rev:1;)",
    ]


def test_allowlist_has_every_spokes_bucket_and_no_metastore_when_off():
    cfg = config(legacy=False, extra=(), spokes=(("a", "10.1.0.0/16"), ("b", "10.2.0.0/16")))
    names = fw.allowed_fqdns(cfg, layout(cfg))
    assert "acme-a-rootbucket.s3.eu-central-1.amazonaws.com" in names
    assert "acme-b-rootbucket.s3.amazonaws.com" in names
    assert not any("rds.amazonaws.com" in n for n in names)
    assert len(names) == 2 + 4


def test_a_region_served_from_another_allows_that_regions_kinesis_and_buckets():
    cfg = config(region="us-west-1", legacy=False, extra=())
    names = fw.allowed_fqdns(cfg, layout(cfg))
    assert "kinesis.us-west-2.amazonaws.com" in names
    for bucket in ("databricks-prod-artifacts-us-west-2", "databricks-prod-storage-oregon",
                   "databricks-datasets-oregon"):
        assert {f"{bucket}.s3.amazonaws.com", f"{bucket}.s3.us-west-2.amazonaws.com"} <= set(names)
    assert not any("system-tables" in n for n in names)  # a regional bucket: through the S3 gateway endpoint
    assert fw.cross_region_fqdns(layout(config(region="us-west-2")).region) == ()


@pytest.mark.parametrize(("spokes", "azs", "home_net"), [
    ((("a", "10.1.0.0/16"),), 1, ("10.1.0.0/16", "10.10.32.0/19")),
    ((("a", "10.1.0.0/16"), ("b", "10.2.0.0/20")), 2,
     ("10.1.0.0/16", "10.2.0.0/20", "10.10.32.0/19", "10.10.128.0/19")),
    ((("a", "10.1.0.0/16"),), 3, ("10.1.0.0/16", "10.10.16.0/20", "10.10.64.0/20", "10.10.112.0/20")),
])
def test_home_net_is_spokes_plus_nat_subnets(spokes, azs, home_net):
    cfg = config(spokes=spokes, azs=azs)
    lay = layout(cfg)
    assert fw.home_net(lay) == home_net
    assert set(lay.hub_nat_subnet_cidrs) <= set(home_net)
    for role in fw.rule_group_roles(cfg):
        group = fw.rule_group(cfg, lay, role, ["192.0.2.10"])
        assert group.rule_group["RuleVariables"]["IPSets"]["HOME_NET"]["Definition"] == list(home_net)
        assert group.rule_group["StatefulRuleOptions"] == {"RuleOrder": "STRICT_ORDER"}
    policy = fw.firewall_policy(lay, {})
    assert policy["PolicyVariables"]["RuleVariables"]["HOME_NET"]["Definition"] == list(home_net)


@pytest.mark.parametrize(("legacy", "roles"), [
    (True, ("deny", "control-plane", "metastore", "allowlist")),
    (False, ("deny", "control-plane", "allowlist")),
])
def test_metastore_group_only_with_legacy_metastore(legacy, roles):
    assert fw.rule_group_roles(config(legacy=legacy)) == roles


def test_metastore_rules_pin_resolved_addresses_and_drop_other_3306():
    cfg = config()
    group = fw.metastore_group(layout(cfg), ["198.51.100.7", "192.0.2.10", "198.51.100.7"])
    rules = group.rule_group["RulesSource"]["RulesString"].splitlines()
    assert [r.split(" (")[0] for r in rules] == [
        "pass tcp $HOME_NET any -> 192.0.2.10/32 3306",
        "pass tcp $HOME_NET any -> 198.51.100.7/32 3306",
        "drop tcp $HOME_NET any -> any 3306",
    ]
    assert group.needed_capacity == 5  # sized for 4 addresses and the drop, whatever resolves today
    assert group.capacity == fw.metastore_group(layout(cfg), [f"192.0.2.{i}" for i in range(1, 5)]).capacity
    assert len({r.split("sid:")[1] for r in rules}) == 3  # sids unique


@pytest.mark.parametrize("bad", [[], ["not-an-ip"], ["2001:db8::1"]])
def test_metastore_refuses_no_or_bad_addresses(bad):
    with pytest.raises(ValueError):
        fw.metastore_group(layout(config()), bad)


def test_deny_group_drops_icmp_ftp_ssh_and_udp():
    rules = fw.deny_group(layout(config())).rule_group["RulesSource"]["RulesString"].splitlines()
    assert [r.split(" ")[:2] for r in rules] == [["drop", "icmp"], ["drop", "ftp"], ["drop", "ssh"], ["drop", "udp"]]


@pytest.mark.parametrize(("needed", "capacity"), [(1, 10), (5, 10), (6, 20), (12, 50), (60, 200), (15000, 30000)])
def test_capacity_leaves_room_to_grow(needed, capacity):
    assert fw.capacity_for(needed) == capacity


def test_capacity_over_the_aws_maximum_is_refused():
    with pytest.raises(ValueError, match="at most 30000"):
        fw.capacity_for(30001)


def test_names_fit_network_firewall_rules():
    import re

    for name in (fw.rule_group_name("acme-1", "control-plane", 20), fw.policy_name("acme-1"),
                 fw.firewall_name("acme-1")):
        assert re.fullmatch(r"[a-zA-Z0-9-]+", name), name
    assert fw.rule_group_name("acme", "allowlist", 50).startswith(fw.rule_group_name_prefix("acme", "allowlist"))


def test_policy_is_strict_order_default_deny():
    cfg = config()
    refs = {"allowlist": "arn:a", "deny": "arn:d", "control-plane": "arn:c", "metastore": "arn:m"}
    policy = fw.firewall_policy(layout(cfg), refs)
    assert policy["StatefulEngineOptions"]["RuleOrder"] == "STRICT_ORDER"
    assert policy["StatefulDefaultActions"] == ["aws:drop_established", "aws:alert_established"]
    assert policy["StatelessDefaultActions"] == policy["StatelessFragmentDefaultActions"] == ["aws:forward_to_sfe"]
    assert [(r["ResourceArn"], r["Priority"]) for r in policy["StatefulRuleGroupReferences"]] == [
        ("arn:d", 100), ("arn:c", 200), ("arn:m", 300), ("arn:a", 400)]


A = {"LogType": "ALERT", "LogDestinationType": "CloudWatchLogs", "LogDestination": {"logGroup": "a"}}
F = {"LogType": "FLOW", "LogDestinationType": "CloudWatchLogs", "LogDestination": {"logGroup": "f"}}
F2 = {**F, "LogDestination": {"logGroup": "f2"}}
F_S3 = {"LogType": "FLOW", "LogDestinationType": "S3", "LogDestination": {"bucketName": "b"}}
T = {"LogType": "TLS", "LogDestinationType": "CloudWatchLogs", "LogDestination": {"logGroup": "t"}}


@pytest.mark.parametrize(("live", "wanted", "calls"), [
    ([], [A, F], [[A], [A, F]]),                      # enable: two calls, never both at once
    ([A, F], [A, F], []),                             # nothing to do
    ([A, F], [], [[F], []]),                          # disable, one destination per call
    ([A, F2], [A, F], [[A, F]]),                      # a changed group is one change
    ([A, F_S3], [A, F], [[A], [A, F]]),               # a changed destination type is a removal and an addition
    ([T, A], [A, F], [[A], [A, F]]),                  # foreign destinations go, one at a time
])
def test_logging_changes_one_destination_per_call(live, wanted, calls):
    got = fw.logging_changes(live, wanted)
    assert got == calls
    before = live
    for after in got:
        old = {c["LogType"]: c for c in before}
        new = {c["LogType"]: c for c in after}
        changed = {t for t in old.keys() | new.keys() if old.get(t) != new.get(t)}
        assert len(changed) == 1
        before = after


def test_log_destinations_alert_then_flow():
    assert fw.log_destinations({"FLOW": "f", "ALERT": "a"}) == [A, F]
    assert fw.log_group_name("acme", "ALERT") == "/aws/vendedlogs/network-firewall/acme/alert"


@pytest.mark.parametrize("azs", [1, 2, 3])
def test_endpoint_routes_stay_in_their_az(azs):
    lay = layout(config(azs=azs))
    for hub in lay.hub_azs:
        out, back = fw.endpoint_routes(lay, hub.az)
        assert (out.table, out.destination) == (f"hub/nat-subnet-route-table/{hub.az}", "0.0.0.0/0")
        assert (back.table, back.destination) == ("hub/igw-route-table", hub.cidrs.nat_subnet)


@pytest.mark.parametrize(("wanted", "live", "diff"), [
    ({"a": 1}, {"a": 1, "extra": 2}, []),                         # AWS's defaults are not drift
    ({"a": {"b": [2, 1]}}, {"a": {"b": [1, 2]}}, []),              # lists are sets
    ({"a": {"b": [1]}}, {"a": {"b": [1, 2]}}, ["a.b"]),
    ({"a": {"b": "x"}}, {"a": {}}, ["a.b"]),
    ({"a": [{"k": 1, "p": 2}]}, {"a": [{"k": 1, "p": 3}]}, ["a"]),
    ({"a": 1}, None, ["."]),
])
def test_differences(wanted, live, diff):
    assert fw.differences(wanted, live) == diff
