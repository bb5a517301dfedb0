"""What was refused, from ALERT and query log records, and the settings that would allow it."""

from __future__ import annotations

from typing import Any

import pytest

from provisioner.design import blocked

SPOKES = [
    blocked.SpokeInfo("main", ("10.173.0.0/16",), "vpc-main", (), ("pypi.org", ".example.org"), "10.173.0.0/16"),
    blocked.SpokeInfo("research", ("10.20.0.0/16",), "vpc-research", ("repo1.maven.org",),
                      ("pypi.org", "repo1.maven.org"), "10.20.0.0/16"),
]


def alert(src: str, dest: str, port: int | None = 443, sni: str | None = None, host: str | None = None,
          action: str = "blocked", flow: int = 1, signature: str = "not matching any TLS allowlisted FQDNs") -> dict:
    event: dict[str, Any] = {"event_type": "alert", "src_ip": src, "dest_ip": dest, "proto": "TCP", "flow_id": flow,
                             "alert": {"action": action, "signature_id": 3, "signature": signature}}
    if port is not None:
        event["dest_port"] = port
    if sni:
        event.update(app_proto="tls", tls={"sni": sni})
    if host:
        event.update(app_proto="http", http={"hostname": host})
    return {"firewall_name": "acme-firewall", "event": event}


def query(vpc: str, name: str, action: str | None = "BLOCK", src: str = "10.173.0.9") -> dict:
    record: dict[str, Any] = {"vpc_id": vpc, "query_name": name + ".", "query_type": "A", "rcode": "NXDOMAIN",
                              "srcaddr": src}
    if action:
        record["firewall_rule_action"] = action
    return record


def test_refusals_per_spoke_by_address_or_vpc():
    alerts = [(1000, alert("10.173.1.1", "198.51.100.9", sni="repo1.maven.org", flow=7)),
              (2000, alert("10.173.1.1", "198.51.100.9", sni="repo1.maven.org", flow=7)),  # the same flow again
              (3000, alert("10.173.1.2", "198.51.100.9", sni="REPO1.maven.org", flow=8)),
              (3500, alert("10.20.1.2", "1.1.1.1", port=22, flow=9, signature="aws:alert_established action")),
              (3600, alert("10.20.1.2", "198.51.100.1", host="x.example.net", flow=10)),
              (3700, alert("10.173.1.3", "198.51.100.9", sni="ok.example", action="allowed", flow=11)),
              (3800, alert("192.168.1.1", "198.51.100.9", sni="elsewhere.example", flow=12))]
    queries = [(500, query("vpc-main", "example.com")), (600, query("vpc-research", "example.com")),
               (700, query("vpc-research", "trial.example", action="ALERT")),
               (800, query("vpc-main", "pypi.org", action="ALLOW")), (900, query("vpc-main", "plain.example", None)),
               (950, query("vpc-unknown", "x.example", src="10.20.3.3"))]
    found = {(r.spoke, r.target, r.kind): r for r in blocked.summarize(alerts, queries, SPOKES)}
    assert set(found) == {
        ("main", "repo1.maven.org", blocked.FIREWALL), ("research", "1.1.1.1:22", blocked.FIREWALL),
        ("research", "x.example.net", blocked.FIREWALL), (None, "elsewhere.example", blocked.FIREWALL),
        ("main", "example.com", blocked.DNS_BLOCK), ("research", "example.com", blocked.DNS_BLOCK),
        ("research", "trial.example", blocked.DNS_ALERT), ("research", "x.example", blocked.DNS_BLOCK)}
    repo = found[("main", "repo1.maven.org", blocked.FIREWALL)]
    assert (repo.count, repo.first_ms, repo.last_ms, repo.host) == (2, 1000, 3000, "repo1.maven.org")
    assert repo.reasons == {"not matching any TLS allowlisted FQDNs (TCP/tls)"}
    assert found[("research", "1.1.1.1:22", blocked.FIREWALL)].host is None


def _refusal(spoke: str | None, target: str, host: str | None = None) -> blocked.Refusal:
    return blocked.Refusal(spoke, target, blocked.FIREWALL, host if host is not None else target, 1, 1, 1)


@pytest.mark.parametrize(("refusals", "every_spoke", "wide", "per_spoke", "already", "not_names"), [
    # refused in every spoke: deployment-wide
    ([_refusal("main", "a.example.com"), _refusal("research", "a.example.com")], True, ["a.example.com"], {}, [], []),
    # ...unless only some spokes were read
    ([_refusal("main", "a.example.com"), _refusal("research", "a.example.com")], False, [],
     {"main": ["a.example.com"], "research": ["a.example.com"]}, [], []),
    # one spoke: that spoke's list
    ([_refusal("research", "b.example.com")], True, [], {"research": ["b.example.com"]}, [], []),
    # already allowed now (a leading-dot entry covers it), an address, no spoke
    ([_refusal("main", "x.example.org"), _refusal("main", "1.1.1.1:22", host=""),
      _refusal(None, "c.example.com")], True, [], {}, [("main", "x.example.org")], ["1.1.1.1:22"]),
    # not a name a setting can hold
    ([_refusal("main", "15.3.4.32.in-addr.arpa")], True, [], {}, [], ["15.3.4.32.in-addr.arpa"]),
])
def test_allow_settings(refusals, every_spoke, wide, per_spoke, already, not_names):
    settings = blocked.allow_settings(refusals, SPOKES, every_spoke)
    assert settings.deployment_wide == wide
    assert settings.per_spoke == per_spoke
    assert settings.already_allowed == already
    assert settings.not_names == not_names


def test_the_lines_are_whole_lists_with_what_is_there_now():
    settings = blocked.AllowSettings(["a.example.com"], {"research": ["b.example.com"]})
    assert settings.lines(("pypi.org", "files.pythonhosted.org"), SPOKES) == [
        "[firewall]",
        'extra_allowed_fqdns = ["pypi.org", "files.pythonhosted.org", "a.example.com"]',
        "",
        "[[spokes]]",
        'name = "research"',
        'cidr = "10.20.0.0/16"',
        'extra_allowed_fqdns = ["repo1.maven.org", "b.example.com"]',
    ]
    assert blocked.AllowSettings().lines(("pypi.org",), SPOKES) == []


@pytest.mark.parametrize(("name", "allowlist", "allowed"), [
    ("pypi.org", ["pypi.org"], True),
    ("upload.pypi.org", ["pypi.org"], False),
    ("a.example.org", [".example.org"], True),
    ("example.org", [".example.org"], True),
    ("badexample.org", [".example.org"], False),
])
def test_fqdn_allowed(name, allowlist, allowed):
    assert blocked.fqdn_allowed(name, allowlist) is allowed
