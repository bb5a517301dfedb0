"""The evaluator: DNS Firewall and Network Firewall semantics, on provision's own rule groups and on hand-written
rules, without any cloud."""

from __future__ import annotations

from typing import Any

import pytest

from provisioner.design import evaluate as ev
from provisioner.design import firewall as fw
from provisioner.design.config import build_config, parse_toml
from provisioner.design.layout import layout

ACCOUNT = "0d4f7b3a-1c2e-4b5a-9f8e-7d6c5b4a3f2e"
MAIN, RESEARCH = "10.173.0.4", "10.20.0.4"
METASTORE = ("203.0.113.10", "203.0.113.11")
CONTROL_PLANE = "18.159.44.32/28"  # eu-central-1
WORKSPACE = "acme-main.cloud.databricks.com"  # spoke main's; research's workspace does not exist yet


def _config(legacy: bool = True) -> Any:
    return build_config(parse_toml(f"""
deployment = "acme"
databricks_account_id = "{ACCOUNT}"
[firewall]
legacy_hive_metastore = {"true" if legacy else "false"}
[[spokes]]
name = "main"
cidr = "10.173.0.0/16"
[[spokes]]
name = "research"
cidr = "10.20.0.0/16"
extra_allowed_fqdns = ["repo1.maven.org", ".example.org"]
""", "test"))


def provision_policy(legacy: bool = True, **document: Any) -> ev.Policy:
    """The policy and rule groups `provision up` writes, as DescribeFirewallPolicy / DescribeRuleGroup return them."""
    config = _config(legacy)
    lay = layout(config)
    groups = []
    for role in fw.rule_group_roles(config):
        group = fw.rule_group(config, lay, role, METASTORE, {"main": WORKSPACE})
        groups.append(ev.RuleGroup(fw.rule_group_name("acme", role, group.capacity), group.priority,
                                   group.rule_group))
    policy = fw.firewall_policy(lay, {role: f"arn:{role}" for role in fw.rule_group_roles(config)})
    return ev.Policy("acme-egress-policy", {**policy, **document}, tuple(groups), vpc_cidrs=("10.10.0.0/16",))


POLICY = provision_policy()


def _rule_group(rules: str, home: tuple[str, ...] | None = ("10.0.0.0/8",), **variables: Any) -> dict[str, Any]:
    group: dict[str, Any] = {"RulesSource": {"RulesString": rules},
                             "StatefulRuleOptions": {"RuleOrder": "STRICT_ORDER"}}
    ip_sets = {"HOME_NET": {"Definition": list(home)}} if home else {}
    ip_sets.update({k: {"Definition": list(v)} for k, v in variables.pop("ip_sets", {}).items()})
    group["RuleVariables"] = {"IPSets": ip_sets, "PortSets": {k: {"Definition": list(v)} for k, v in
                                                              variables.pop("port_sets", {}).items()}}
    return group


def policy_of(*groups: dict[str, Any], defaults: tuple[str, ...] = fw.STATEFUL_DEFAULT_ACTIONS,
              order: str = "STRICT_ORDER", stateless: tuple[str, ...] = ("aws:forward_to_sfe",),
              home: tuple[str, ...] | None = None) -> ev.Policy:
    document: dict[str, Any] = {"StatelessDefaultActions": list(stateless), "StatefulDefaultActions": list(defaults),
                                "StatefulEngineOptions": {"RuleOrder": order}}
    if home:
        document["PolicyVariables"] = {"RuleVariables": {"HOME_NET": {"Definition": list(home)}}}
    return ev.Policy("p", document, tuple(ev.RuleGroup(f"g{i}", 100 * (i + 1), g) for i, g in enumerate(groups)),
                     vpc_cidrs=("10.10.0.0/16",))


# -- DNS Firewall -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("entry", "name", "matches"), [
    ("*", "anything.example", True),
    ("pypi.org", "pypi.org", True),
    ("pypi.org", "PyPI.org.", True),
    ("pypi.org", "upload.pypi.org", False),
    ("*.example.org", "a.example.org", True),
    ("*.example.org", "a.b.example.org", True),
    ("*.example.org", "example.org", False),
    ("*.example.org", "badexample.org", False),
    ("example.org.", "example.org", True),
])
def test_dns_firewall_domain_matching(entry, name, matches):
    assert ev.dns_name_matches(entry, name) is matches


def _dns_rule(priority: int, action: str, domains: tuple[str, ...], association: int = 1000,
              block: str | None = None) -> ev.DnsRule:
    return ev.DnsRule("acme-dns-firewall", "rslvr-frg-1", association, priority, f"rule-{priority}", action,
                      f"list-{priority}", f"rslvr-fdl-{priority}", domains, block)


DNS_RULES = [_dns_rule(100, "ALLOW", ("pypi.org", "example.org", "*.example.org")),
             _dns_rule(200, "BLOCK", ("*",), block="NXDOMAIN")]


@pytest.mark.parametrize(("rules", "name", "action", "rcode", "priority"), [
    (DNS_RULES, "pypi.org", "ALLOW", "NOERROR", 100),
    (DNS_RULES, "files.example.org", "ALLOW", "NOERROR", 100),
    (DNS_RULES, "upload.pypi.org", "BLOCK", "NXDOMAIN", 200),
    # rules are taken in priority order, whatever order they come in
    (list(reversed(DNS_RULES)), "pypi.org", "ALLOW", "NOERROR", 100),
    # alert mode: the rest is answered and logged
    ([DNS_RULES[0], _dns_rule(200, "ALERT", ("*",))], "x.attacker.example", "ALERT", "NOERROR", 200),
    # NODATA block response
    ([_dns_rule(200, "BLOCK", ("*",), block="NODATA")], "x.example", "BLOCK", "NOERROR", 200),
    # no rule: answered as usual (DNS Firewall off)
    ([], "x.example", "NONE", "NOERROR", None),
    # another rule group associated with a higher priority (a lower number) is evaluated first
    ([*DNS_RULES, _dns_rule(300, "BLOCK", ("pypi.org",), association=500, block="NXDOMAIN")], "pypi.org",
     "BLOCK", "NXDOMAIN", 300),
])
def test_dns_verdict(rules, name, action, rcode, priority):
    verdict = ev.evaluate_dns(rules, name)
    assert (verdict.action, verdict.rcode) == (action, rcode)
    assert (verdict.rule.priority if verdict.rule else None) == priority
    assert verdict.resolves is (action != "BLOCK")


# -- provision's own policy ---------------------------------------------------------------------------------------


def _decide(policy: ev.Policy, protocol: str, host: str | None, port: int | None, address: str | None = None,
            source: str = MAIN) -> ev.FirewallVerdict:
    return ev.evaluate_flow(policy, ev.Flow(protocol, source, port, host, address))


@pytest.mark.parametrize(("protocol", "host", "port", "address", "source", "verdict", "group", "deciding"), [
    # the deployment-wide allowlist, by SNI and by Host
    ("tls", "pypi.org", 443, None, MAIN, "pass", "allowlist", "pypi.org on its domain list (TLS_SNI)"),
    ("http", "pypi.org", 80, None, MAIN, "pass", "allowlist", "pypi.org on its domain list (HTTP_HOST)"),
    ("tls", "PyPI.org", 443, None, MAIN, "pass", "allowlist", "pypi.org on its domain list (TLS_SNI)"),
    # exact names only: upload.pypi.org is not pypi.org
    ("tls", "upload.pypi.org", 443, None, MAIN, "drop", "allowlist", "generated drop for TLS"),
    ("tls", "example.com", 443, None, MAIN, "drop", "allowlist", "generated drop for TLS"),
    ("http", "example.com", 80, None, MAIN, "drop", "allowlist", "generated drop for HTTP"),
    # a spoke's own domains, from that spoke only (leading dot: the domain and its subdomains)
    ("tls", "repo1.maven.org", 443, None, RESEARCH, "pass", "spoke-allowlist", "may reach repo1.maven.org"),
    ("tls", "repo1.maven.org", 443, None, MAIN, "drop", "allowlist", "generated drop for TLS"),
    ("tls", "example.org", 443, None, RESEARCH, "pass", "spoke-allowlist", "spoke research may reach .example.org"),
    ("tls", "a.b.example.org", 443, None, RESEARCH, "pass", "spoke-allowlist", ".example.org"),
    ("tls", "notexample.org", 443, None, RESEARCH, "drop", "allowlist", "generated drop for TLS"),
    ("http", "files.example.org", 80, None, RESEARCH, "pass", "spoke-allowlist", ".example.org"),
    # UDP, ICMP, SSH from the spokes: the deny group
    ("udp", None, 53, "8.8.8.8", MAIN, "drop", "deny", "UDP to the internet is blocked"),
    ("icmp", None, None, "1.1.1.1", MAIN, "drop", "deny", "ICMP is blocked"),
    # raw TCP to any address: the handshake passes, the established flow meets the default drop
    ("tcp", None, 22, "1.1.1.1", MAIN, "drop", None, "aws:drop_established"),
    ("tcp", None, 443, "1.1.1.1", MAIN, "drop", None, "aws:drop_established"),
    # TLS to an address sends no SNI: the allowlist's generated drop
    ("tls", None, 443, "1.1.1.1", MAIN, "drop", "allowlist", "generated drop for TLS"),
    # the control plane: TLS naming the web app, the relay or the spoke's own workspace, on 443 and 8443-8451
    ("tls", WORKSPACE, 443, "18.159.44.33", MAIN, "pass", "control-plane", "workspace of spoke main, port 443"),
    ("tls", WORKSPACE.upper(), 8449, "18.159.44.40", MAIN, "pass", "control-plane", "port 8443:8451"),
    ("tls", "frankfurt.cloud.databricks.com", 8443, "18.159.44.33", RESEARCH, "pass", "control-plane",
     "web application, port 8443:8451"),
    ("tls", WORKSPACE, 8452, "18.159.44.40", MAIN, "drop", "allowlist", "generated drop for TLS"),
    # another spoke's workspace, another customer's, no SNI, not TLS: nothing passes by address alone
    ("tls", WORKSPACE, 443, "18.159.44.33", RESEARCH, "drop", "allowlist", "generated drop for TLS"),
    ("tls", "dbc-0a1b2c3d-4e5f.cloud.databricks.com", 443, "18.159.44.33", MAIN, "drop", "allowlist",
     "generated drop for TLS"),
    ("tls", None, 443, "18.159.44.33", MAIN, "drop", "allowlist", "generated drop for TLS"),
    ("tcp", None, 443, "18.159.44.33", MAIN, "drop", None, "aws:drop_established"),
    ("http", WORKSPACE, 8443, "18.159.44.33", MAIN, "drop", "allowlist", "generated drop for HTTP"),
    # the metastore: its pinned addresses only
    ("tcp", None, 3306, "203.0.113.11", MAIN, "pass", "metastore", "sid 3002"),
    ("tcp", None, 3306, "192.0.2.99", MAIN, "drop", "metastore", "sid 3999"),
    # spoke to spoke
    ("tls", "pypi.org", 443, "10.20.1.1", MAIN, "drop", "deny", "Spoke to spoke is blocked"),
])
def test_provision_policy(protocol, host, port, address, source, verdict, group, deciding):
    decision = _decide(POLICY, protocol, host, port, address, source).decision
    assert decision.verdict == verdict, decision.describe()
    assert deciding in decision.describe()
    if group is None:
        assert decision.rule is None
    else:
        assert decision.rule is not None and decision.rule.group.startswith(f"acme-{group}-cap")
    # what is dropped is logged (the deny rules and the default action's aws:alert_established)
    assert decision.logged is (verdict == "drop")


def test_the_handshake_passes_and_the_established_flow_is_dropped():
    decision = _decide(POLICY, "tls", "example.com", 443).decision
    assert decision.packet == "first data to the server (TLS)"
    raw = _decide(POLICY, "tcp", None, 5432, "1.1.1.1").decision
    assert (raw.packet, raw.default_action) == ("first data to the server", "aws:drop_established")


def test_every_rule_provision_writes_can_be_evaluated():
    assert ev.unevaluable(POLICY) == []
    assert ev.unevaluable(provision_policy(legacy=False)) == []


def test_a_name_without_an_address_is_decided_for_a_public_address_and_the_named_networks_are_alternatives():
    assert [str(n) for n in ev.named_networks(POLICY)] == [CONTROL_PLANE, "203.0.113.10/32", "203.0.113.11/32"]
    found = _decide(POLICY, "tls", WORKSPACE, 443)
    assert found.verdict == "drop"
    (condition, other), = found.alternatives
    assert condition == f"if {WORKSPACE} resolves into {CONTROL_PLANE}"
    assert other.verdict == "pass" and other.rule is not None and "control-plane" in other.rule.group
    # a name the control-plane group does not pass: dropped wherever it resolves
    assert _decide(POLICY, "tls", "example.com", 443).alternatives == ()
    # same verdict either way: no alternative
    assert _decide(POLICY, "tls", "pypi.org", 443).alternatives == ()
    # 3306 to a name: dropped, unless it resolves to a pinned metastore address
    mysql = _decide(POLICY, "tcp", "db.example.com", 3306)
    assert mysql.verdict == "drop"
    assert [c for c, _ in mysql.alternatives] == ["if db.example.com resolves to 203.0.113.10",
                                                  "if db.example.com resolves to 203.0.113.11"]
    # an address given: that address alone
    assert _decide(POLICY, "tcp", "db.example.com", 3306, "203.0.113.10").alternatives == ()


def test_without_the_legacy_metastore_3306_meets_the_default_drop():
    decision = _decide(provision_policy(legacy=False), "tcp", None, 3306, "203.0.113.10").decision
    assert (decision.verdict, decision.default_action) == ("drop", "aws:drop_established")


def test_a_policy_without_the_default_drop_lets_raw_tcp_out():
    """The guide's policy (no default action): any flow that is neither TLS nor HTTP passes."""
    guide = provision_policy(StatefulDefaultActions=[])
    assert _decide(guide, "tcp", None, 3306, "192.0.2.1").verdict == "drop"  # still the metastore group's drop
    decision = _decide(guide, "tcp", None, 5432, "192.0.2.1").decision
    assert (decision.verdict, decision.rule, decision.default_action) == ("pass", None, None)


# -- Suricata rules, by hand --------------------------------------------------------------------------------------

DEFAULTS = ("aws:drop_established", "aws:alert_established")


@pytest.mark.parametrize(("rules", "flow", "verdict", "sid"), [
    # ports: single, range, open range, list, negation
    ("pass tcp $HOME_NET any -> any 8443:8451 (flow:to_server; sid:1;)", ("tcp", None, 8445, "1.1.1.1"), "pass", 1),
    ("pass tcp $HOME_NET any -> any [80,443,8000:] (sid:1;)", ("tcp", None, 9000, "1.1.1.1"), "pass", 1),
    ("pass tcp $HOME_NET any -> any [80,443] (sid:1;)", ("tcp", None, 8080, "1.1.1.1"), "drop", None),
    ("drop tcp $HOME_NET any -> any !443 (sid:1;)", ("tcp", None, 22, "1.1.1.1"), "drop", 1),
    ("drop tcp $HOME_NET any -> any [!443,!80] (sid:1;)", ("tcp", None, 80, "1.1.1.1"), "drop", None),
    ("pass tcp $HOME_NET any -> any $WEB (sid:1;)", ("tcp", None, 8080, "1.1.1.1"), "pass", 1),
    # addresses: CIDR, list, negation, variables
    ("pass tcp $HOME_NET any -> [1.1.1.0/24, !1.1.1.1] any (sid:1;)", ("tcp", None, 1, "1.1.1.2"), "pass", 1),
    ("pass tcp $HOME_NET any -> [1.1.1.0/24, !1.1.1.1] any (sid:1;)", ("tcp", None, 1, "1.1.1.1"), "drop", None),
    ("pass tcp $HOME_NET any -> $PARTNERS any (sid:1;)", ("tcp", None, 1, "192.0.2.7"), "pass", 1),
    ("pass tcp $EXTERNAL_NET any -> $EXTERNAL_NET any (sid:1;)", ("tcp", None, 1, "1.1.1.1"), "drop", None),
    # ...but a rule's header is matched against each packet: the server's reply comes from outside
    ("pass tcp !$HOME_NET any -> $HOME_NET any (sid:1;)", ("tcp", None, 1, "1.1.1.1"), "pass", 1),
    ("drop ip any any -> $EXTERNAL_NET any (sid:1;)", ("tcp", None, 1, "1.1.1.1"), "drop", 1),
    ("drop ip any any -> $EXTERNAL_NET any (sid:1;)", ("tcp", None, 1, "10.9.9.9"), "drop", None),  # HOME_NET
    # direction: a rule written from the server's side matches the reply only with <>
    ("drop tcp any 443 -> $HOME_NET any (sid:1;)", ("tcp", None, 443, "1.1.1.1"), "drop", 1),
    ("pass tcp any any <> 1.1.1.1 any (sid:1;)", ("tcp", None, 443, "1.1.1.1"), "pass", 1),
    # flow keywords
    ("drop tcp $HOME_NET any -> any any (flow:to_client; sid:1;)", ("tcp", None, 1, "1.1.1.1"), "drop", None),
    ("drop tcp any any -> $HOME_NET any (flow:to_client; sid:1;)", ("tcp", None, 1, "1.1.1.1"), "drop", 1),
    ("pass tcp $HOME_NET any -> any any (flow:not_established; sid:1;)", ("tcp", None, 1, "1.1.1.1"), "pass", 1),
    ("pass tcp $HOME_NET any -> any any (flow:established, to_client; sid:1;)", ("tcp", None, 1, "1.1.1.1"), "drop",
     None),
    # sticky buffers: exact (startswith + endswith), suffix, substring, negated, dotprefix, nocase
    ('pass tls $HOME_NET any -> any any (tls.sni; content:"pypi.org"; startswith; endswith; sid:1;)',
     ("tls", "pypi.org", 443, None), "pass", 1),
    ('pass tls $HOME_NET any -> any any (tls.sni; content:"pypi.org"; startswith; endswith; sid:1;)',
     ("tls", "PYPI.org", 443, None), "drop", None),
    ('pass tls $HOME_NET any -> any any (tls.sni; content:"pypi.org"; nocase; startswith; endswith; sid:1;)',
     ("tls", "PYPI.org", 443, None), "pass", 1),
    ('pass tls $HOME_NET any -> any any (tls.sni; content:".org"; endswith; sid:1;)',
     ("tls", "pypi.org", 443, None), "pass", 1),
    ('pass tls $HOME_NET any -> any any (tls.sni; content:"py"; sid:1;)', ("tls", "pypi.org", 443, None), "pass", 1),
    ('pass tls $HOME_NET any -> any any (tls.sni; content:!"evil"; sid:1;)', ("tls", "pypi.org", 443, None), "pass",
     1),
    ('pass tls $HOME_NET any -> any any (tls.sni; dotprefix; content:".pypi.org"; endswith; sid:1;)',
     ("tls", "pypi.org", 443, None), "pass", 1),
    ('pass tls $HOME_NET any -> any any (tls.sni; dotprefix; content:".pypi.org"; endswith; sid:1;)',
     ("tls", "notpypi.org", 443, None), "drop", None),
    ('pass tls $HOME_NET any -> any any (tls.sni; content:"|70|ypi.org"; startswith; endswith; sid:1;)',
     ("tls", "pypi.org", 443, None), "pass", 1),
    # the Host buffer is lowercase
    ('pass http $HOME_NET any -> any any (http.host; content:"pypi.org"; startswith; endswith; sid:1;)',
     ("http", "PyPI.org", 80, None), "pass", 1),
    # an application protocol rule never matches another protocol, nor raw TCP
    ('pass http $HOME_NET any -> any any (http.host; content:"pypi.org"; sid:1;)', ("tls", "pypi.org", 443, None),
     "drop", None),
    ("drop ssh $HOME_NET any -> any any (sid:1;)", ("tcp", None, 22, "1.1.1.1"), "drop", None),
    ("drop tls $HOME_NET any -> any any (sid:1;)", ("tcp", None, 443, "1.1.1.1"), "drop", None),
    # a TCP rule matches TLS and HTTP flows (they are TCP); ip matches everything
    ("pass tcp $HOME_NET any -> any 443 (sid:1;)", ("tls", "x.example", 443, None), "pass", 1),
    ("drop ip $HOME_NET any -> any any (sid:1;)", ("icmp", None, None, "1.1.1.1"), "drop", 1),
    # ICMP has no ports: a rule with ports does not match it
    ("drop ip $HOME_NET any -> any 80 (sid:1;)", ("icmp", None, None, "1.1.1.1"), "drop", None),
    # a client's port is one of the ephemeral ones: `any` and the whole range match, a low port never
    ("pass tcp $HOME_NET 1024:65535 -> any any (sid:1;)", ("tcp", None, 1, "1.1.1.1"), "pass", 1),
    ("pass tcp $HOME_NET 1:1023 -> any any (sid:1;)", ("tcp", None, 1, "1.1.1.1"), "drop", None),
    # rules run in order under STRICT_ORDER: the first pass or drop decides; alert goes on
    ("alert tcp $HOME_NET any -> any any (sid:1;)\ndrop tcp $HOME_NET any -> any any (sid:2;)\n"
     "pass tcp $HOME_NET any -> any any (sid:3;)", ("tcp", None, 1, "1.1.1.1"), "drop", 2),
    ("# a comment\n\npass tcp $HOME_NET any -> \\\n any any (sid:7;)", ("tcp", None, 1, "1.1.1.1"), "pass", 7),
    # reject is a drop (with a reset)
    ("reject tcp $HOME_NET any -> any any (sid:1;)", ("tcp", None, 1, "1.1.1.1"), "drop", 1),
])
def test_rules(rules, flow, verdict, sid):
    group = _rule_group(rules, ip_sets={"PARTNERS": ["192.0.2.0/24"]}, port_sets={"WEB": ["80", "8080"]})
    protocol, host, port, address = flow
    decision = ev.decide(policy_of(group, defaults=DEFAULTS), ev.Flow(protocol, "10.1.2.3", port, host, address))
    assert decision.verdict == verdict, decision.describe()
    assert (decision.rule.sid if decision.rule else None) == sid


def test_alert_rules_are_logged_and_evaluation_goes_on():
    group = _rule_group("alert tls $HOME_NET any -> any any (msg:\"watch\"; sid:1;)\n"
                        "pass tls $HOME_NET any -> any any (sid:2;)")
    decision = ev.decide(policy_of(group), ev.Flow("tls", "10.1.2.3", 443, "x.example"))
    assert decision.verdict == "pass" and [a.sid for a in decision.alerts] == [1]


def test_a_pass_on_a_tcp_handshake_passes_the_whole_flow_but_each_udp_datagram_is_decided_alone():
    tcp = _rule_group("pass tcp $HOME_NET any -> any 443 (flow:to_server; sid:1;)")
    decision = ev.decide(policy_of(tcp), ev.Flow("tcp", "10.1.2.3", 443, None, "1.1.1.1"))
    assert (decision.verdict, decision.packet) == ("pass", "handshake (SYN)")
    udp = _rule_group("pass udp $HOME_NET any -> any 123 (flow:to_server; sid:1;)")
    decision = ev.decide(policy_of(udp), ev.Flow("udp", "10.1.2.3", 123, None, "1.1.1.1"))
    # the reply is established and matches no rule: the default drop; the first datagram had left
    assert (decision.verdict, decision.packet, decision.default_action) == ("drop", "reply", "aws:drop_established")
    assert decision.notes == ("the first datagram leaves before the reply is dropped",)


@pytest.mark.parametrize(("rules", "problem"), [
    ('pass tls $HOME_NET any -> any any (tls.sni; pcre:"/pypi/"; sid:1;)', "keyword pcre is not evaluated"),
    ('pass tcp $HOME_NET any -> any any (content:"GET"; sid:1;)', "the payload is not evaluated"),
    ("pass tcp $HOME_NET any -> @partners any (sid:1;)", "IP set reference @partners"),
    ("pass tcp $HOME_NET any -> any any (flow:only_stream; sid:1;)", "flow:only_stream"),
    ("pass gopher $HOME_NET any -> any any (sid:1;)", "protocol 'gopher'"),
    ("this is not a rule", "no option list"),
])
def test_a_rule_that_cannot_be_evaluated_is_named_not_guessed(rules, problem):
    policy = policy_of(_rule_group(rules))
    decision = ev.decide(policy, ev.Flow("tls", "10.1.2.3", 443, "pypi.org"))
    assert decision.verdict == "unknown" and decision.rule is not None
    assert problem in (decision.rule.problem or "") and "cannot be evaluated" in decision.describe()
    assert [r.text for r in ev.unevaluable(policy)] == [rules]


def test_an_unevaluable_rule_that_cannot_match_is_skipped_and_an_alert_one_is_only_uncertain():
    group = _rule_group('pass udp $HOME_NET any -> any any (pcre:"/x/"; sid:1;)\n'
                        'alert tls $HOME_NET any -> any any (pcre:"/x/"; sid:2;)\n'
                        "pass tls $HOME_NET any -> any any (sid:3;)")
    decision = ev.decide(policy_of(group), ev.Flow("tls", "10.1.2.3", 443, "pypi.org"))
    assert decision.verdict == "pass" and decision.rule is not None and decision.rule.sid == 3
    assert [u.sid for u in decision.uncertain] == [2]


def test_home_net_comes_from_the_group_then_the_policy_then_the_firewall_vpc():
    rule = "drop tcp $HOME_NET any -> any any (sid:1;)"
    flow = ev.Flow("tcp", "10.20.0.4", 1, None, "1.1.1.1")
    assert ev.decide(policy_of(_rule_group(rule, home=("10.20.0.0/16",))), flow).rule is not None
    # no HOME_NET in the group: the policy's
    assert ev.decide(policy_of(_rule_group(rule, home=None), home=("10.20.0.0/16",)), flow).rule is not None
    # neither: the firewall VPC's CIDR, which the spoke is not in
    assert ev.decide(policy_of(_rule_group(rule, home=None)), flow).rule is None


def test_default_action_order_takes_pass_rules_first():
    group = _rule_group("drop tcp $HOME_NET any -> any any (sid:1;)\npass tcp $HOME_NET any -> any any (sid:2;)")
    decision = ev.decide(policy_of(group, defaults=(), order="DEFAULT_ACTION_ORDER"),
                         ev.Flow("tcp", "10.1.2.3", 1, None, "1.1.1.1"))
    assert decision.verdict == "pass" and decision.rule is not None and decision.rule.sid == 2


def test_drop_strict_drops_the_handshake_too():
    decision = ev.decide(policy_of(_rule_group("alert tcp any any -> any 1 (sid:1;)"), defaults=("aws:drop_strict",)),
                         ev.Flow("tcp", "10.1.2.3", 443, None, "1.1.1.1"))
    assert (decision.verdict, decision.packet, decision.default_action) == ("drop", "handshake (SYN)",
                                                                            "aws:drop_strict")


@pytest.mark.parametrize(("stateless", "verdict", "default"), [
    (("aws:forward_to_sfe",), "drop", "aws:drop_established"),
    (("aws:pass",), "pass", "aws:pass"),
    (("aws:drop",), "drop", "aws:drop"),
])
def test_stateless_default_actions(stateless, verdict, default):
    decision = ev.decide(policy_of(_rule_group("alert ip any any -> any 1 (sid:1;)"), stateless=stateless),
                         ev.Flow("tcp", "10.1.2.3", 5432, None, "1.1.1.1"))
    assert (decision.verdict, decision.default_action) == (verdict, default)


def test_stateless_rules_run_before_the_stateful_engine():
    rule = {"Priority": 10, "RuleDefinition": {"Actions": ["aws:drop"], "MatchAttributes": {
        "Destinations": [{"AddressDefinition": "1.1.1.0/24"}], "DestinationPorts": [{"FromPort": 443, "ToPort": 443}],
        "Protocols": [6]}}}
    stateless = ev.RuleGroup("sl", 10, {"RulesSource": {"StatelessRulesAndCustomActions": {"StatelessRules": [rule]}}})
    base = policy_of(_rule_group("pass tcp any any -> any any (sid:1;)"))
    policy = ev.Policy(base.name, base.document, base.stateful, (stateless,), base.vpc_cidrs)
    assert ev.decide(policy, ev.Flow("tcp", "10.1.2.3", 443, None, "1.1.1.9")).rule.group == "sl"  # type: ignore[union-attr]
    assert ev.decide(policy, ev.Flow("tcp", "10.1.2.3", 80, None, "1.1.1.9")).verdict == "pass"


@pytest.mark.parametrize(("generated", "targets", "host", "verdict", "described"), [
    ("ALLOWLIST", [".example.com"], "a.example.com", "pass", "AWS's generated pass rule"),
    ("ALLOWLIST", [".example.com"], "example.com", "pass", "AWS's generated pass rule"),
    ("ALLOWLIST", ["example.com"], "a.example.com", "drop", "generated drop for TLS"),
    ("DENYLIST", ["evil.example"], "evil.example", "drop", "AWS's generated drop rule"),
    ("DENYLIST", ["evil.example"], "good.example", "drop", "aws:drop_established"),  # nothing passes it either
])
def test_domain_lists(generated, targets, host, verdict, described):
    group = {"RuleVariables": {"IPSets": {"HOME_NET": {"Definition": ["10.0.0.0/8"]}}},
             "RulesSource": {"RulesSourceList": {"Targets": targets, "TargetTypes": ["TLS_SNI", "HTTP_HOST"],
                                                 "GeneratedRulesType": generated}}}
    decision = ev.decide(policy_of(group), ev.Flow("tls", "10.1.2.3", 443, host))
    assert decision.verdict == verdict and described in decision.describe()


def test_standard_stateful_rules():
    group = {"RuleVariables": {"IPSets": {"HOME_NET": {"Definition": ["10.0.0.0/8"]}}},
             "RulesSource": {"StatefulRules": [{
                 "Action": "PASS", "Header": {"Protocol": "TCP", "Source": "$HOME_NET", "SourcePort": "ANY",
                                              "Direction": "FORWARD", "Destination": "1.1.1.1/32",
                                              "DestinationPort": "5432"},
                 "RuleOptions": [{"Keyword": "sid", "Settings": ["9"]}]}]}}
    decision = ev.decide(policy_of(group), ev.Flow("tcp", "10.1.2.3", 5432, None, "1.1.1.1"))
    assert decision.verdict == "pass" and decision.rule is not None and decision.rule.sid == 9


def test_flows_need_a_known_protocol_and_a_port():
    with pytest.raises(ValueError, match="protocol"):
        ev.Flow("sctp", "10.1.2.3", 1)
    with pytest.raises(ValueError, match="needs a port"):
        ev.Flow("tcp", "10.1.2.3", None)
