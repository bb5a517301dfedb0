"""What the firewall and the DNS Firewall refused, per spoke, and the settings that would allow it; pure.

`provision egress blocked` reads the firewall's ALERT log and the Resolver query log and hands their records here:

- an ALERT record whose `alert.action` is `blocked` is a refused flow: to the TLS SNI or HTTP Host it named, else
  to its address and port; it belongs to the spoke whose CIDR holds its source address (or, for a reply, its
  destination); records of one flow (`flow_id`) count once;
- a query log record whose `firewall_rule_action` is BLOCK (or ALERT, which `alert` mode logs for what `block`
  mode would refuse) is a refused name; it belongs to the spoke of its `vpc_id`.

`allow_settings` then says what `provision.toml` needs so that these names pass: a name every spoke was refused
goes to `[firewall] extra_allowed_fqdns`, any other to that spoke's `[[spokes]] extra_allowed_fqdns`; each line is
the whole new list (the setting replaces, it does not add). Addresses cannot be allowed by a setting.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from provisioner.design.config import FQDN_RE

FIREWALL, DNS_BLOCK, DNS_ALERT = "firewall drop", "DNS block", "DNS alert"


@dataclass(frozen=True)
class SpokeInfo:
    name: str
    cidrs: tuple[str, ...]
    vpc_id: str | None
    # Its own domains now, and every domain it may reach now (deployment-wide and its own).
    own_fqdns: tuple[str, ...] = ()
    allowed_fqdns: tuple[str, ...] = ()
    cidr: str = ""


@dataclass
class Refusal:
    spoke: str | None
    target: str
    kind: str
    host: str | None  # the name refused, when there is one
    count: int = 0
    first_ms: int = 0
    last_ms: int = 0
    reasons: set[str] = field(default_factory=set)
    _flows: set[str] = field(default_factory=set)

    def add(self, timestamp_ms: int, flow: str | None, reason: str | None) -> None:
        if flow is None or flow not in self._flows:
            self.count += 1
            if flow is not None:
                self._flows.add(flow)
        self.first_ms = min(self.first_ms, timestamp_ms) if self.first_ms else timestamp_ms
        self.last_ms = max(self.last_ms, timestamp_ms)
        if reason:
            self.reasons.add(reason)

    def as_dict(self) -> dict[str, Any]:
        return {"spoke": self.spoke, "target": self.target, "kind": self.kind, "host": self.host,
                "count": self.count, "first_seen_ms": self.first_ms, "last_seen_ms": self.last_ms,
                "reasons": sorted(self.reasons)}


def _in(address: Any, cidrs: Iterable[str]) -> bool:
    try:
        ip = ipaddress.IPv4Address(str(address))
    except ValueError:
        return False
    return any(ip in ipaddress.IPv4Network(c, strict=False) for c in cidrs)


def _spoke_of_address(spokes: Sequence[SpokeInfo], *addresses: Any) -> str | None:
    for address in addresses:
        for spoke in spokes:
            if _in(address, spoke.cidrs):
                return spoke.name
    return None


def summarize(alerts: Iterable[tuple[int, Mapping[str, Any]]], queries: Iterable[tuple[int, Mapping[str, Any]]],
              spokes: Sequence[SpokeInfo]) -> list[Refusal]:
    """Refusals from (timestamp ms, record) pairs of the ALERT and query logs, most frequent first."""
    found: dict[tuple[str | None, str, str], Refusal] = {}

    def refusal(spoke: str | None, target: str, kind: str, host: str | None) -> Refusal:
        key = (spoke, target, kind)
        if key not in found:
            found[key] = Refusal(spoke, target, kind, host)
        return found[key]

    for timestamp, record in alerts:
        event = record.get("event") or {}
        alert = event.get("alert") or {}
        if str(alert.get("action", "")).lower() != "blocked":
            continue
        host = ((event.get("tls") or {}).get("sni") or (event.get("http") or {}).get("hostname") or None)
        host = str(host).lower().rstrip(".") if host else None
        port = event.get("dest_port")
        address = f"{event.get('dest_ip')}:{port}" if port not in (None, "") else str(event.get("dest_ip"))
        target = host or address
        spoke = _spoke_of_address(spokes, event.get("src_ip"), event.get("dest_ip"))
        flow = event.get("flow_id")
        refusal(spoke, target, FIREWALL, host).add(
            timestamp, None if flow is None else str(flow),
            f"{alert.get('signature') or 'sid ' + str(alert.get('signature_id'))} ({event.get('proto')}"
            f"{'/' + str(event.get('app_proto')) if event.get('app_proto') else ''})")
    by_vpc = {s.vpc_id: s.name for s in spokes if s.vpc_id}
    for timestamp, record in queries:
        action = str(record.get("firewall_rule_action") or "").upper()
        if action not in ("BLOCK", "ALERT"):
            continue
        name = str(record.get("query_name") or "").lower().rstrip(".")
        if not name:
            continue
        spoke = by_vpc.get(str(record.get("vpc_id"))) or _spoke_of_address(spokes, record.get("srcaddr"))
        kind = DNS_BLOCK if action == "BLOCK" else DNS_ALERT
        refusal(spoke, name, kind, name).add(timestamp, None, f"{record.get('query_type', 'A')} query, "
                                                               f"{record.get('rcode', '')}".rstrip(", "))
    return sorted(found.values(), key=lambda r: (-r.count, r.spoke or "~", r.target, r.kind))


def fqdn_allowed(name: str, allowlist: Iterable[str]) -> bool:
    """Whether the firewall's allowlist passes `name`: an exact entry, or a leading-dot entry for it or a domain
    above it."""
    name = name.lower().rstrip(".")
    for entry in allowlist:
        entry = entry.lower()
        if entry == name or (entry.startswith(".") and (name == entry[1:] or name.endswith(entry))):
            return True
    return False


REVERSE_ZONES = (".in-addr.arpa", ".ip6.arpa")


def allowable(name: str | None) -> bool:
    """A name a setting can hold (the config's own check for extra_allowed_fqdns), and a host one could connect to:
    not a reverse lookup (`...in-addr.arpa`), which no allowlist entry would make useful."""
    return (bool(name) and bool(FQDN_RE.match(str(name))) and not str(name).startswith(".")
            and not str(name).endswith(REVERSE_ZONES))


@dataclass
class AllowSettings:
    """What to add: names for the whole deployment, names per spoke; what is already allowed; what cannot be."""

    deployment_wide: list[str] = field(default_factory=list)
    per_spoke: dict[str, list[str]] = field(default_factory=dict)
    already_allowed: list[tuple[str, str]] = field(default_factory=list)  # (spoke, name)
    not_names: list[str] = field(default_factory=list)

    def lines(self, current_firewall: Sequence[str], spokes: Sequence[SpokeInfo]) -> list[str]:
        """The provision.toml lines that would allow them: each setting as a whole new list."""
        found: list[str] = []
        if self.deployment_wide:
            names = [*current_firewall, *(n for n in self.deployment_wide if n not in current_firewall)]
            found += ["[firewall]", f"extra_allowed_fqdns = {_toml_list(names)}"]
        for spoke in spokes:
            new = self.per_spoke.get(spoke.name)
            if not new:
                continue
            names = [*spoke.own_fqdns, *(n for n in new if n not in spoke.own_fqdns)]
            if found:
                found.append("")
            found += ["[[spokes]]", f"name = {json.dumps(spoke.name)}"]
            if spoke.cidr:
                found.append(f"cidr = {json.dumps(spoke.cidr)}")
            found.append(f"extra_allowed_fqdns = {_toml_list(names)}")
        return found


def _toml_list(names: Sequence[str]) -> str:
    return "[" + ", ".join(json.dumps(n) for n in names) + "]"


def allow_settings(refusals: Sequence[Refusal], spokes: Sequence[SpokeInfo], every_spoke: bool) -> AllowSettings:
    """Which names to allow, and where: deployment-wide when `every_spoke` is known (all spokes were read) and
    every spoke was refused the name; else for each spoke refused it."""
    settings = AllowSettings()
    refused: dict[str, set[str]] = {}
    allowed_now = {s.name: s.allowed_fqdns for s in spokes}
    for r in refusals:
        if r.spoke is None:
            continue
        if not allowable(r.host):
            if r.target not in settings.not_names:
                settings.not_names.append(r.target)
            continue
        assert r.host is not None
        if fqdn_allowed(r.host, allowed_now.get(r.spoke, ())):
            if (r.spoke, r.host) not in settings.already_allowed:
                settings.already_allowed.append((r.spoke, r.host))
            continue
        refused.setdefault(r.host, set()).add(r.spoke)
    names = {s.name for s in spokes}
    for host in sorted(refused):
        if every_spoke and len(names) > 0 and refused[host] >= names:
            settings.deployment_wide.append(host)
        else:
            for spoke in sorted(refused[host]):
                settings.per_spoke.setdefault(spoke, []).append(host)
    return settings
