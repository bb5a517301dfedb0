"""The firewall as data: rule groups, policy, logging changes and endpoint routes, without any cloud."""

import pytest

from provisioner.design import firewall as fw
from provisioner.design import routes
from provisioner.design.config import build_config
from provisioner.design.layout import layout
from tests.conftest import ACCOUNT_ID


def config(region="eu-central-1", legacy=True, extra=(".pypi.org",), spokes=(("bu1", "10.1.0.0/16"),), azs=2):
    """`spokes`: (name, cidr) or (name, cidr, the spoke's own extra_allowed_fqdns)."""
    raw = {
        "deployment": "acme", "databricks_account_id": ACCOUNT_ID, "region": region,
        "hub_availability_zones": azs,
        "spokes": [{"name": s[0], "cidr": s[1], **({"extra_allowed_fqdns": list(s[2])} if len(s) > 2 else {})}
                   for s in spokes],
        "firewall": {"legacy_hive_metastore": legacy, "extra_allowed_fqdns": list(extra)},
    }
    return build_config(raw)


def _rules(group):
    return group.rule_group["RulesSource"]["RulesString"].splitlines()


def _sid(rule):
    return int(rule.split("sid:")[1].split(";")[0])


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
    assert group.needed_capacity == (6 + 1) * 2  # a rule per domain and type, and the generated drop per type

    rules = fw.control_plane_group(layout(cfg), {}).rule_group["RulesSource"]["RulesString"].splitlines()
    assert rules == [
        f'pass tls $HOME_NET any -> {cidr} 443 (msg:"Databricks control plane, web application, port 443"; '
        f'tls.sni; content:"{webapp}"; startswith; nocase; endswith; flow:to_server; sid:2101; rev:1;)',
        f'pass tls $HOME_NET any -> {cidr} 443 (msg:"Databricks control plane, SCC relay, port 443"; '
        f'tls.sni; content:"{relay}"; startswith; nocase; endswith; flow:to_server; sid:2103; rev:1;)',
        f'pass tls $HOME_NET any -> {cidr} 8443:8451 (msg:"Databricks control plane, web application, port '
        f'8443:8451"; tls.sni; content:"{webapp}"; startswith; nocase; endswith; flow:to_server; sid:2102; rev:1;)',
        f'pass tls $HOME_NET any -> {cidr} 8443:8451 (msg:"Databricks control plane, SCC relay, port 8443:8451"; '
        f'tls.sni; content:"{relay}"; startswith; nocase; endswith; flow:to_server; sid:2104; rev:1;)',
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
    ((("a", "10.1.0.0/16"),), 1, ("10.1.0.0/16",)),
    ((("a", "10.1.0.0/16"), ("b", "10.2.0.0/20")), 2, ("10.1.0.0/16", "10.2.0.0/20")),
    ((("a", "10.1.0.0/16"),), 3, ("10.1.0.0/16",)),
    ((("a", "10.1.0.0/16", ["example.com"]), ("b", "10.2.0.0/20"), ("c", "10.3.0.0/16")), 3,
     ("10.1.0.0/16", "10.2.0.0/20", "10.3.0.0/16")),
])
def test_home_net_is_the_spoke_cidrs_only(spokes, azs, home_net):
    """The firewall sits before the NAT gateways: it sees the clusters' own addresses, never the NAT's."""
    cfg = config(spokes=spokes, azs=azs)
    lay = layout(cfg)
    assert fw.home_net(lay) == home_net
    assert not set(lay.hub_nat_subnet_cidrs) & set(home_net)
    for role in fw.rule_group_roles(cfg):
        group = fw.rule_group(cfg, lay, role, ["192.0.2.10"])
        assert group.rule_group["RuleVariables"]["IPSets"]["HOME_NET"]["Definition"] == list(home_net)
        assert group.rule_group["StatefulRuleOptions"] == {"RuleOrder": "STRICT_ORDER"}
    policy = fw.firewall_policy(lay, {})
    assert policy["PolicyVariables"]["RuleVariables"]["HOME_NET"]["Definition"] == list(home_net)


@pytest.mark.parametrize(("legacy", "spokes", "roles"), [
    (True, (("bu1", "10.1.0.0/16"),), ("deny", "control-plane", "metastore", "allowlist")),
    (False, (("bu1", "10.1.0.0/16"),), ("deny", "control-plane", "allowlist")),
    # A spoke's own domains get their own group, before the deployment-wide allowlist.
    (True, (("bu1", "10.1.0.0/16", ["example.com"]),),
     ("deny", "control-plane", "metastore", "spoke-allowlist", "allowlist")),
    (False, (("bu1", "10.1.0.0/16"), ("bu2", "10.2.0.0/16", [".example.org"])),
     ("deny", "control-plane", "spoke-allowlist", "allowlist")),
    # Domains already allowed deployment-wide need no group of their own.
    (False, (("bu1", "10.1.0.0/16", [".pypi.org"]),), ("deny", "control-plane", "allowlist")),
    (False, (("bu1", "10.1.0.0/16", []),), ("deny", "control-plane", "allowlist")),
])
def test_which_groups_a_deployment_has(legacy, spokes, roles):
    assert fw.rule_group_roles(config(legacy=legacy, spokes=spokes)) == roles


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


def test_deny_group_drops_icmp_ftp_ssh_udp_and_spoke_to_spoke():
    rules = _rules(fw.deny_group(layout(config())))
    assert [r.split(" (")[0] for r in rules] == [
        "drop icmp any any <> any any",
        "drop ftp any any <> any any",
        "drop ssh any any <> any any",
        "drop udp $HOME_NET any -> any any",
        # The second layer behind the TGW blackholes: HOME_NET is the spoke CIDRs, so this is spoke to spoke.
        "drop ip $HOME_NET any -> $HOME_NET any",
    ]
    assert len({_sid(r) for r in rules}) == len(rules)


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
    refs = {"allowlist": "arn:a", "deny": "arn:d", "spoke-allowlist": "arn:s", "control-plane": "arn:c",
            "metastore": "arn:m"}
    policy = fw.firewall_policy(layout(cfg), refs)
    assert policy["StatefulEngineOptions"]["RuleOrder"] == "STRICT_ORDER"
    assert policy["StatefulDefaultActions"] == ["aws:drop_established", "aws:alert_established"]
    assert policy["StatelessDefaultActions"] == policy["StatelessFragmentDefaultActions"] == ["aws:forward_to_sfe"]
    assert [(r["ResourceArn"], r["Priority"]) for r in policy["StatefulRuleGroupReferences"]] == [
        ("arn:d", 100), ("arn:c", 200), ("arn:m", 300), ("arn:s", 350), ("arn:a", 400)]


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


TWO_SPOKES = (("bu1", "10.1.0.0/16"), ("bu2", "10.2.0.0/16"))


@pytest.mark.parametrize("azs", [1, 2, 3])
def test_firewall_routes_are_made_in_an_order_that_never_bypasses_the_firewall(azs):
    """First the TGW subnet to the endpoint, then the replies through it, and only then the NAT's way out."""
    lay = layout(config(azs=azs, spokes=TWO_SPOKES))
    made = []
    for hub in lay.hub_azs:
        az = hub.az
        found = fw.firewall_routes(lay, az)
        assert [(r.table, r.destination, r.target_kind) for r in found] == [
            (f"hub/tgw-subnet-route-table/{az}", "0.0.0.0/0", "firewall-endpoint"),
            (f"hub/nat-subnet-route-table/{az}", "10.1.0.0/16", "firewall-endpoint"),
            (f"hub/nat-subnet-route-table/{az}", "10.2.0.0/16", "firewall-endpoint"),
            (f"hub/nat-subnet-route-table/{az}", "0.0.0.0/0", "internet-gateway"),
        ]
        assert [r.to_endpoint for r in found] == [True, True, True, False]
        assert {r.az for r in found} == {az}
        made += [(r.table, r.destination, r.target_kind) for r in found]
    # Together the AZs make exactly the routes the hub tables leave to the firewall family, nothing else.
    owned = [(t.key, r.destination, r.target_kind) for t in routes.hub_route_tables(lay)
             for r in t.routes_of(routes.FIREWALL)]
    assert sorted(made) == sorted(owned)


def test_firewall_routes_of_an_az_the_hub_does_not_have():
    with pytest.raises(KeyError):
        fw.firewall_routes(layout(config(azs=1)), "eu-central-1b")


# -- one spoke's own domains --------------------------------------------------------------------------------------

SPOKE_DOMAINS = (
    ("bu1", "10.1.0.0/16", ["example.com", ".example.org", ".pypi.org"]),  # .pypi.org is deployment-wide already
    ("bu2", "10.2.0.0/16", ["example.com"]),
    ("bu3", "10.3.0.0/16"),
)


@pytest.mark.parametrize(("keyword", "domain", "options"), [
    ("tls.sni", "example.com", ("tls.sni", 'content:"example.com"', "startswith", "nocase", "endswith")),
    ("http.host", "files.example.com", ("http.host", 'content:"files.example.com"', "startswith", "endswith")),
    ("tls.sni", ".example.org", ("tls.sni", "dotprefix", 'content:".example.org"', "nocase", "endswith")),
    ("http.host", ".example.org", ("http.host", "dotprefix", 'content:".example.org"', "endswith")),
])
def test_domain_match_is_written_as_aws_writes_a_domain_list(keyword, domain, options):
    """Exact names match the whole buffer; a leading dot matches the name and every subdomain."""
    assert fw.domain_match(keyword, domain) == options


def test_spoke_allowlist_passes_each_spokes_domains_from_its_cidr_only():
    cfg = config(legacy=False, spokes=SPOKE_DOMAINS)
    group = fw.rule_group(cfg, layout(cfg), "spoke-allowlist")
    flow = "flow:to_server, established"
    assert _rules(group) == [
        'pass tls 10.1.0.0/16 any -> any any (msg:"spoke bu1 may reach .example.org"; tls.sni; dotprefix; '
        f'content:".example.org"; nocase; endswith; {flow}; sid:5001; rev:1;)',
        'pass http 10.1.0.0/16 any -> any any (msg:"spoke bu1 may reach .example.org"; http.host; dotprefix; '
        f'content:".example.org"; endswith; {flow}; sid:5002; rev:1;)',
        'pass tls 10.1.0.0/16 any -> any any (msg:"spoke bu1 may reach example.com"; tls.sni; '
        f'content:"example.com"; startswith; nocase; endswith; {flow}; sid:5003; rev:1;)',
        'pass http 10.1.0.0/16 any -> any any (msg:"spoke bu1 may reach example.com"; http.host; '
        f'content:"example.com"; startswith; endswith; {flow}; sid:5004; rev:1;)',
        'pass tls 10.2.0.0/16 any -> any any (msg:"spoke bu2 may reach example.com"; tls.sni; '
        f'content:"example.com"; startswith; nocase; endswith; {flow}; sid:5005; rev:1;)',
        'pass http 10.2.0.0/16 any -> any any (msg:"spoke bu2 may reach example.com"; http.host; '
        f'content:"example.com"; startswith; endswith; {flow}; sid:5006; rev:1;)',
    ]
    assert group.role == "spoke-allowlist" and group.needed_capacity == 6
    assert group.rule_group["StatefulRuleOptions"] == {"RuleOrder": "STRICT_ORDER"}


@pytest.mark.parametrize("spokes", [
    SPOKE_DOMAINS,
    tuple((f"s{i}", f"10.{i}.0.0/16", [f"host{j}.example{i}.com" for j in range(30)] + [f".wild{i}.net"])
          for i in range(1, 5)),
])
def test_spoke_allowlist_sids_are_unique_and_sources_are_spoke_cidrs(spokes):
    cfg = config(legacy=False, spokes=spokes)
    lay = layout(cfg)
    rules = _rules(fw.spoke_allowlist_group(cfg, lay))
    assert len({_sid(r) for r in rules}) == len(rules)
    cidrs = {s.name: s.cidrs.vpc for s in lay.spokes}
    for rule in rules:
        action, proto, source = rule.split(" ")[:3]
        spoke = rule.split('msg:"spoke ')[1].split(" ")[0]
        assert (action, source) == ("pass", cidrs[spoke]), rule
        assert proto in ("tls", "http") and "$HOME_NET" not in rule
    own = sum(len(set(s[2]) - set(cfg.extra_allowed_fqdns)) for s in spokes if len(s) > 2)
    assert len(rules) == 2 * own


def test_spoke_allowlist_runs_after_the_metastore_and_before_the_deployment_wide_allowlist():
    """The deployment-wide allowlist ends in AWS's generated drop of every other TLS and HTTP flow, so a spoke's
    own pass rules must be evaluated first, yet after the groups that drop or pin by address."""
    cfg = config(spokes=SPOKE_DOMAINS)
    lay = layout(cfg)
    groups = [fw.rule_group(cfg, lay, role, ["192.0.2.10"]) for role in fw.rule_group_roles(cfg)]
    assert [g.role for g in groups] == ["deny", "control-plane", "metastore", "spoke-allowlist", "allowlist"]
    priorities = [g.priority for g in groups]
    assert priorities == sorted(priorities) and len(set(priorities)) == len(priorities)
    assert fw.PRIORITIES["metastore"] < fw.PRIORITIES["spoke-allowlist"] < fw.PRIORITIES["allowlist"]
    policy = fw.firewall_policy(lay, {g.role: f"arn:{g.role}" for g in groups})
    assert [r["ResourceArn"] for r in policy["StatefulRuleGroupReferences"]] == [f"arn:{g.role}" for g in groups]


def test_spoke_domains_are_that_spokes_alone():
    cfg = config(legacy=False, spokes=SPOKE_DOMAINS)
    lay = layout(cfg)
    assert fw.spoke_fqdns(cfg) == {"bu1": (".example.org", "example.com"), "bu2": ("example.com",), "bu3": ()}
    shared = fw.allowed_fqdns(cfg, lay)
    assert "example.com" not in shared and ".example.org" not in shared  # not through the deployment-wide group
    assert fw.spoke_allowed_fqdns(cfg, lay, "bu1") == tuple(sorted({*shared, ".example.org", "example.com"}))
    assert fw.spoke_allowed_fqdns(cfg, lay, "bu2") == tuple(sorted({*shared, "example.com"}))
    assert fw.spoke_allowed_fqdns(cfg, lay, "bu3") == shared
    for spoke in ("bu1", "bu2", "bu3"):
        names = fw.spoke_allowed_fqdns(cfg, lay, spoke)
        assert list(names) == sorted(set(names))


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


def test_control_plane_by_sni_passes_the_web_app_the_relay_and_each_spokes_own_workspace():
    from provisioner.sandbox import suricata

    cfg = config(spokes=(("bu1", "10.1.0.0/16"), ("bu2", "10.2.0.0/16")))
    lay = layout(cfg)
    hosts = fw.workspace_hosts(lay, {"bu1": "https://acme-bu1.cloud.databricks.com",
                                     "bu2": "https://DBC-1a2b3c4d-5e6f.cloud.databricks.com/", "gone": "https://x"})
    assert hosts == {"bu1": "acme-bu1.cloud.databricks.com", "bu2": "dbc-1a2b3c4d-5e6f.cloud.databricks.com"}
    before = fw.rule_group(cfg, lay, fw.CONTROL_PLANE)  # no workspace yet: the step's first version
    after = fw.rule_group(cfg, lay, fw.CONTROL_PLANE, workspace_hosts=hosts)
    # Before any workspace exists: the web app and the relay only, on every control-plane port.
    assert len(_rules(before)) == 2 * len(fw.CONTROL_PLANE_PORTS)
    rules = _rules(after)
    assert len(rules) == 4 * len(fw.CONTROL_PLANE_PORTS)
    for port in fw.CONTROL_PLANE_PORTS:
        # A spoke's workspace host from that spoke's CIDR only.
        assert any(r.startswith(f"pass tls 10.1.0.0/16 any -> 18.159.44.32/28 {port} ")
                   and 'content:"acme-bu1.cloud.databricks.com"' in r for r in rules)
        assert any(r.startswith(f"pass tls 10.2.0.0/16 any -> 18.159.44.32/28 {port} ")
                   and 'content:"dbc-1a2b3c4d-5e6f.cloud.databricks.com"' in r for r in rules)
    assert all(r.startswith("pass tls ") and "tls.sni;" in r for r in rules)  # nothing passes by address alone
    assert len({_sid(r) for r in rules}) == len(rules)
    assert set(_rules(before)) <= set(rules)  # learning a host adds rules, changes none
    assert fw.missing_workspace_hosts(after.rule_group, before.rule_group, hosts) == hosts
    assert fw.missing_workspace_hosts(after.rule_group, after.rule_group, hosts) == {}
    # Learning the hosts never outgrows the group made before them.
    assert before.needed_capacity == after.needed_capacity == len(fw.CONTROL_PLANE_PORTS) * 4
    assert before.capacity == after.capacity
    if suricata.available():
        assert suricata.check(before.rule_group) == suricata.check(after.rule_group) == []


def test_sids_stay_unique_however_many_spokes():
    spokes = tuple((f"s{i}", f"172.{16 + i // 64}.{i % 64 * 4}.0/22") for i in range(120))
    lay = layout(config(spokes=spokes))
    rules = _rules(fw.control_plane_group(lay, {f"s{i}": f"h{i}.cloud.databricks.com" for i in range(120)}))
    assert len({_sid(r) for r in rules}) == len(rules) == 2 * 122


def test_a_control_plane_rule_wider_than_the_design_is_named():
    cfg = config()
    lay = layout(cfg)
    wanted = fw.rule_group(cfg, lay, fw.CONTROL_PLANE, workspace_hosts={"bu1": "acme-bu1.cloud.databricks.com"})
    widened = {**wanted.rule_group, "RulesSource": {"RulesString": wanted.rule_group["RulesSource"]["RulesString"]
               + 'pass tcp $HOME_NET any -> 18.159.44.32/28 443 (msg:"x"; sid:9; rev:1;)\n'}}
    assert fw.extra_passes(wanted.rule_group, widened) == [
        'pass tcp $HOME_NET any -> 18.159.44.32/28 443 (msg:"x"; sid:9; rev:1;)']
    assert fw.extra_passes(wanted.rule_group, wanted.rule_group) == []
    assert fw.differences(wanted.rule_group, widened) == ["RulesSource.RulesString"]


def test_with_privatelink_nothing_passes_to_the_control_plane_and_the_relay_leaves_the_allowlist():
    import dataclasses

    from provisioner.sandbox import suricata

    base = config(spokes=(("bu1", "10.1.0.0/16", ["example.com"]),))
    private = dataclasses.replace(base, private_link=True)
    lay = layout(private)
    assert fw.CONTROL_PLANE in fw.rule_group_roles(base)
    assert fw.CONTROL_PLANE not in fw.rule_group_roles(private)
    relay = lay.region.scc_relay
    targets = fw.rule_group(private, lay, fw.ALLOWLIST).rule_group["RulesSource"]["RulesSourceList"]["Targets"]
    assert relay not in targets and lay.region.webapp in targets
    assert relay in fw.allowed_fqdns(private, lay)  # still resolvable: the DNS Firewall keeps it
    cidr = lay.region.control_plane_cidr
    # The deny group, first in the policy, drops every flow to the range: no name on the allowlists gets there.
    deny = fw.rule_group(private, lay, fw.DENY)
    assert _rules(deny)[-1].startswith(f"drop ip $HOME_NET any -> {cidr} any (")
    assert f"-> {cidr}" not in "".join(_rules(fw.rule_group(base, lay, fw.DENY)))
    groups = [fw.rule_group(private, lay, r, ("192.0.2.1",)).rule_group for r in fw.rule_group_roles(private)]
    assert fw.passes_to_range(groups, cidr) == []
    if suricata.available():
        assert suricata.check(deny.rule_group) == []
    # Without it: the control-plane group's rules, the spoke's own domains (to any address) and the allowlist.
    default = [fw.rule_group(base, lay, r, ("192.0.2.1",)).rule_group for r in fw.rule_group_roles(base)]
    found = fw.passes_to_range(default, cidr)
    assert len([f for f in found if "-> 18.159.44.32/28" in f]) == 2 * len(fw.CONTROL_PLANE_PORTS)
    assert len([f for f in found if f.startswith("pass tls 10.1.0.0/16 any -> any any")]) == 1
    assert found[-1].startswith("the domain allowlist (TLS_SNI, HTTP_HOST) passes")
    # A pass put before the drop is found; one after it cannot reach the range.
    sneaky = {"RulesSource": {"RulesString": f'pass tcp $HOME_NET any -> {cidr} 443 (msg:"x"; sid:9; rev:1;)\n'}}
    assert fw.passes_to_range([sneaky, *groups], cidr) != []
    assert fw.passes_to_range([*groups, sneaky], cidr) == []
    for destination in ("any", "$EXTERNAL_NET", "!10.0.0.0/8", "18.159.44.40/29", "[192.0.2.0/24,18.159.44.33]"):
        rule = {"RulesSource": {"RulesString": f"pass tcp $HOME_NET any -> {destination} 443 (sid:9;)"}}
        assert fw.passes_to_range([rule], cidr) != [], destination
    for destination in ("$HOME_NET", "192.0.2.0/24"):
        rule = {"RulesSource": {"RulesString": f"pass tcp $HOME_NET any -> {destination} 443 (sid:9;)"}}
        assert fw.passes_to_range([rule], cidr) == [], destination
    # A drop with a condition (a port, an option) does not close the range.
    for drop in (f"drop ip $HOME_NET any -> {cidr} 443 (sid:8;)", f"drop tcp $HOME_NET any -> {cidr} any (sid:8;)",
                 f'drop ip $HOME_NET any -> {cidr} any (flow:established; msg:"a; b"; sid:8;)'):
        first = {"RulesSource": {"RulesString": drop + "\n"}}
        assert fw.passes_to_range([first, sneaky], cidr) != [], drop


def test_a_five_tuple_pass_to_the_control_plane_range_added_by_hand_is_found() -> None:
    """A standard stateful rule (StatefulRules, not a rules string) counts as what AWS makes of it."""
    cidr = "18.159.44.32/28"
    hand_made = {"RulesSource": {"StatefulRules": [{
        "Action": "PASS", "Header": {"Protocol": "TCP", "Source": "ANY", "SourcePort": "ANY", "Direction": "FORWARD",
                                     "Destination": cidr, "DestinationPort": "443"},
        "RuleOptions": [{"Keyword": "sid", "Settings": ["1"]}]}]}}
    assert fw.passes_to_range([hand_made], cidr) == [f"pass tcp ANY any -> {cidr} 443 (sid:1;)"]
