"""`egress check`'s decision over hand-made describe answers: DNS, every path, the firewall on each path."""

from __future__ import annotations

from typing import Any

import pytest

from provisioner import egress_live
from provisioner.design import evaluate as ev
from provisioner.design import firewall as fw
from provisioner.design.config import build_config, parse_toml
from provisioner.design.layout import layout
from tests.unit.test_egress import AZS, NAT_FIRST, SPOKES, _set_route, _spoke_subnets, topology

DNS = [ev.DnsRule("g", "rslvr-frg-1", 1000, 100, "allow", "ALLOW", "allowed", "fdl-1", ("pypi.org", "repo.example")),
       ev.DnsRule("g", "rslvr-frg-1", 1000, 200, "block", "BLOCK", "blocked", "fdl-2", ("*",), "NXDOMAIN")]


def _policy() -> ev.Policy:
    config = build_config(parse_toml(f"""
deployment = "t"
[[spokes]]
name = "main"
cidr = "{SPOKES['main']}"
[[spokes]]
name = "other"
cidr = "{SPOKES['other']}"
extra_allowed_fqdns = ["repo.example"]
""", "test"))
    lay = layout(config)
    groups = tuple(ev.RuleGroup(role, g.priority, g.rule_group)
                   for role in fw.rule_group_roles(config)
                   for g in [fw.rule_group(config, lay, role, ("203.0.113.10",))])
    return ev.Policy("t-egress-policy", fw.firewall_policy(lay, {r: r for r in fw.rule_group_roles(config)}), groups)


def live(routing: Any = None, network: Any = None) -> egress_live.Live:
    data = network or (topology(routing, spokes=("main", "other")) if routing else
                       topology(spokes=("main", "other")))
    spokes = {}
    for name in ("main", "other"):
        workspace, _ = _spoke_subnets(SPOKES[name])
        spokes[name] = egress_live.SpokeNet(name, f"vpc-{name}", (SPOKES[name],), tuple(
            egress_live.Subnet(f"subnet-ws-{name}-{az}", az, workspace[az]) for az in AZS))
    return egress_live.Live("t", egress_live.FirewallInfo("t-firewall", "arn:fw", "vpc-hub", {}, _policy()),
                            spokes, {"main": DNS, "other": DNS}, data)


def target(host: str | None, address: str | None = None, protocol: str = "tls", port: int | None = 443):
    return egress_live.Target(host, address, protocol, port)


@pytest.mark.parametrize(("host", "address", "protocol", "port", "spoke", "verdict", "dns"), [
    ("pypi.org", None, "tls", 443, "main", "pass", "ALLOW"),
    ("example.com", None, "tls", 443, "main", "drop", "BLOCK"),
    ("repo.example", None, "tls", 443, "other", "pass", "ALLOW"),
    ("repo.example", None, "tls", 443, "main", "drop", "ALLOW"),
    (None, "8.8.8.8", "udp", 53, "main", "drop", None),
])
def test_verdicts(host, address, protocol, port, spoke, verdict, dns):
    (result,) = egress_live.check(live(), target(host, address, protocol, port), [spoke])
    assert result.verdict == verdict, result.reasons()
    assert (result.dns.action if result.dns else None) == dns
    # appliance mode: each workspace subnet may leave through either hub AZ, each through its own endpoint
    assert len(result.paths) == 4 and all(p.leaves and p.inspected for p in result.paths)
    assert {p.hub_az for p in result.paths} == {"a", "b"}
    assert result.source == "10.1.0.4" if spoke == "main" else "10.2.0.4"
    doc = result.as_dict()
    assert doc["verdict"] == verdict and len(doc["routes"]) == 4


def test_a_broken_route_means_no_way_out():
    network = topology(spokes=("main", "other"))
    for az in AZS:
        _set_route(network, f"rtb-htgw-{az}", "0.0.0.0/0")
    (result,) = egress_live.check(live(network=network), target("pypi.org"), ["main"])
    assert result.verdict == "drop" and "no route reaches the internet" in result.reasons()
    assert all("stops" in p.summary() for p in result.paths)


def test_a_path_around_the_firewall_passes_uninspected():
    network = topology(spokes=("main", "other"))
    _set_route(network, "rtb-htgw-a", "0.0.0.0/0", NatGatewayId="nat-a")
    (result,) = egress_live.check(live(network=network), target(None, "192.0.2.1"), ["main"])
    around = [p for p in result.paths if p.hub_az == "a"]
    assert around and all(not p.inspected and p.verdict == "pass" for p in around)
    assert "WITHOUT passing the firewall" in around[0].summary()
    assert {p.verdict for p in result.paths if p.hub_az == "b"} == {"drop"}
    assert result.verdict == "pass"  # a way out lets it through
    assert "a route reaches the internet without the firewall" in result.reasons()
    assert any(r.startswith("the verdict depends on the hub AZ") for r in result.reasons())
    # a name still needs DNS: the DNS Firewall blocks it whatever the routes
    (named,) = egress_live.check(live(network=network), target("example.com", "192.0.2.1"), ["main"])
    assert named.verdict == "drop" and named.reasons()[0] == "DNS answers NXDOMAIN for example.com"


def test_nat_before_the_firewall_shows_the_firewall_the_nats_address():
    """The old layout: the firewall sees the NAT gateway's address, which is not in HOME_NET (the spoke CIDRs), so
    no rule written for the spokes applies, the allowlist included: the default action drops even pypi.org."""
    (result,) = egress_live.check(live(NAT_FIRST), target("pypi.org"), ["main"])
    assert {p.firewall_source for p in result.paths} == {"10.10.16.9", "10.10.64.9"}
    assert "the firewall sees the NAT's address" in result.paths[0].summary()
    assert result.verdict == "drop"
    assert result.firewall is not None and result.firewall.decision.default_action == "aws:drop_established"
