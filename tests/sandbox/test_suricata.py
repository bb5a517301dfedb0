"""Every rule `provision` writes loads in a real Suricata, as AWS Network Firewall requires; and the sandbox's
reading of rules (lines, capacity, Suricata's error output) without Suricata.

The parser tests run the `suricata` binary (Debian's package; `.ci/run` installs it) and skip, saying why, where it
is not installed.
"""

from __future__ import annotations

from typing import Any

import pytest

from provisioner.design import firewall as fw
from provisioner.design.config import build_config
from provisioner.design.layout import layout
from provisioner.design.regions import all_regions
from provisioner.sandbox import suricata
from tests.conftest import ACCOUNT_ID

needs_suricata = pytest.mark.skipif(not suricata.available(), reason=suricata.unavailable_reason())

SPOKE_DOMAINS = (
    ("bu1", "10.1.0.0/16", [".example.org", "example.com", "files.pythonhosted.org"]),
    ("bu2", "10.2.0.0/16", ["example.com", ".internal-mirror.example.net"]),
    ("bu3", "10.3.0.0/16", []),
)
METASTORE_ADDRESSES = ("203.0.113.10", "203.0.113.11")


def _config(region: str = "eu-central-1", legacy: bool = True, extra: tuple[str, ...] = (".pypi.org",),
            spokes: Any = SPOKE_DOMAINS, azs: int = 2) -> Any:
    return build_config({
        "deployment": "acme", "databricks_account_id": ACCOUNT_ID, "region": region, "hub_availability_zones": azs,
        "spokes": [{"name": s[0], "cidr": s[1], "extra_allowed_fqdns": list(s[2])} for s in spokes],
        "firewall": {"legacy_hive_metastore": legacy, "extra_allowed_fqdns": list(extra)},
    })


def _groups(config: Any) -> list[fw.RuleGroupDesign]:
    lay = layout(config)
    return [fw.rule_group(config, lay, role, METASTORE_ADDRESSES) for role in fw.rule_group_roles(config)]


CONFIGS = {
    # every region, legacy metastore on, per-spoke domains with and without a leading dot
    **{f"{region}, all groups": {"region": region} for region in sorted(all_regions())},
    "no legacy metastore": {"legacy": False},
    "no extra domains anywhere": {"extra": (), "spokes": (("bu1", "10.1.0.0/16", []),)},
    "one hub AZ, many spokes": {"azs": 1, "spokes": tuple(
        (f"s{i}", f"10.{i}.0.0/16", [f"host{i}.example.com", f".wild{i}.example.net"]) for i in range(1, 9))},
    "wildcard deployment-wide domains": {"extra": (".pypi.org", ".pythonhosted.org", "cran.r-project.org")},
}


@needs_suricata
@pytest.mark.parametrize("settings", list(CONFIGS.values()), ids=list(CONFIGS))
def test_every_rule_provision_writes_loads_in_suricata(settings: dict[str, Any]) -> None:
    config = _config(**settings)
    groups = _groups(config)
    assert {g.role for g in groups} >= {fw.DENY, fw.CONTROL_PLANE, fw.ALLOWLIST}
    for group in groups:
        rules = suricata.rules_of(group.rule_group)
        assert rules, group.role
        assert suricata.check(group.rule_group) == [], group.role


def test_every_group_provision_writes_fits_the_capacity_it_is_created_with_as_aws_counts_it() -> None:
    for settings in CONFIGS.values():
        for group in _groups(_config(**settings)):
            # AWS counts a domain list's generated "drop the rest" rules too: the headroom must cover them.
            assert suricata.capacity_needed("STATEFUL", group.rule_group) <= group.capacity, group.role


@needs_suricata
def test_the_spoke_allowlist_domains_with_a_leading_dot_match_subdomains_in_both_buffers() -> None:
    group = fw.rule_group(_config(), layout(_config()), fw.SPOKE_ALLOWLIST)
    dotted = [r for r in suricata.rules_of(group.rule_group) if 'content:".example.org"' in r]
    assert {r.split(" ")[1] for r in dotted} == {"tls", "http"}
    assert all("dotprefix" in r for r in dotted)
    assert suricata.check(group.rule_group) == []


@needs_suricata
def test_a_broken_rule_is_reported_with_its_line_and_suricatas_reason() -> None:
    rules = ('drop icmp any any <> any any (msg:"ok"; sid:1;)\n'
             "\n"
             'pass tcp any any -> any any (msg:"no sid";)\n'
             'pass tcp any any -> any any (msg:"dup"; sid:1;)\n')
    problems = suricata.check({"RulesSource": {"RulesString": rules}})
    assert [(p.line, p.reason) for p in problems] == [
        (3, 'Signature missing required value "sid"'),
        (4, 'Duplicate signature "pass tcp any any -> any any (msg:"dup"; sid:1;)"'),
    ]


def test_without_suricata_rules_are_not_parsed_but_still_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROVISION_SURICATA", "/nonexistent/suricata")
    assert not suricata.available()
    assert "not installed" in suricata.unavailable_reason()
    group = {"RulesSource": {"RulesString": "pass tcp any any -> any any (this is not a rule\n"}}
    assert suricata.check(group) == []
    assert suricata.capacity_needed("STATEFUL", group) == 1


def test_rule_lines_skip_comments_and_blanks_and_join_continued_lines() -> None:
    text = "# header\n\npass tcp any any -> any any \\\n  (sid:1;)\n  drop ssh any any -> any any (sid:2;)\n"
    assert suricata.rule_lines(text) == [
        (3, "pass tcp any any -> any any (sid:1;)"),
        (5, "drop ssh any any -> any any (sid:2;)"),
    ]


TWO_RULES = "pass ip any any -> any any (sid:1;)\n# a comment\n\ndrop ip any any -> any any (sid:2;)\n"


@pytest.mark.parametrize(("group", "rule_type", "needed"), [
    ({"RulesSource": {"RulesString": TWO_RULES}}, "STATEFUL", 2),
    ({"RulesSource": {"RulesSourceList": {"Targets": ["a.com", "b.com"], "TargetTypes": ["HTTP_HOST"],
                                          "GeneratedRulesType": "ALLOWLIST"}}}, "STATEFUL", 3),
    ({"RulesSource": {"RulesSourceList": {"Targets": ["a.com", "b.com"], "TargetTypes": ["HTTP_HOST", "TLS_SNI"],
                                          "GeneratedRulesType": "REJECTLIST"}}}, "STATEFUL", 4),
    ({"RulesSource": {"StatefulRules": [{"Action": "PASS", "Header": {}, "RuleOptions": []}] * 3}}, "STATEFUL", 3),
    # Stateless: per rule, the product of its match settings' sizes (2 sources x 3 ports, then 1).
    ({"RulesSource": {"StatelessRulesAndCustomActions": {"StatelessRules": [
        {"RuleDefinition": {"MatchAttributes": {"Sources": [{}, {}], "DestinationPorts": [{}, {}, {}]}}},
        {"RuleDefinition": {"MatchAttributes": {}}}]}}}, "STATELESS", 7),
])
def test_capacity_is_counted_as_aws_documents_it(group: dict[str, Any], rule_type: str, needed: int) -> None:
    assert suricata.capacity_needed(rule_type, group) == needed


def test_suricatas_output_is_read_rule_by_rule() -> None:
    output = "\n".join((
        "i: suricata: This is Suricata version 7.0.10 RELEASE running in SYSTEM mode",
        "W: detect-http-host: rule 8: A pattern with uppercase characters detected for http.host.",
        'E: detect: error parsing signature "pass http any any -> any any (sid:8;)" from file /tmp/x.rules at line 2',
        "Error: detect-parse: no terminating \";\" found",
        'Error: detect: error parsing signature "pass tcp x" from file /tmp/x.rules at line 3',
        "E: suricata: Loading signatures failed.",
    ))
    problems = suricata._parse_output(output, ["a", "b", "c"])
    assert [(p.line, p.rule, p.reason) for p in problems] == [
        (2, "b", "rule 8: A pattern with uppercase characters detected for http.host"),
        (3, "c", 'no terminating ";" found'),
    ]
