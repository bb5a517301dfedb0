"""What the DNS Firewall and the egress firewall would do with one flow, with AWS's semantics; pure.

`provision egress check` gives this module what it read back from AWS (the firewall policy, its rule groups, the
DNS Firewall rules of a spoke's VPC) and a flow (protocol, source address, destination port, the name a client sends
and, when known, the destination address); the sandbox's traffic generator decides its flows with the same code.

**DNS Firewall** (`evaluate_dns`): the rule groups associated with the VPC in association priority order, and in
each the rules in priority order; the first rule whose domain list holds the name decides: ALLOW and ALERT let the
query be answered (ALERT logs it), BLOCK answers with the rule's block response. A list entry `*` matches every
name, `*.example.com` every name under example.com but not example.com itself, anything else exactly (no case, no
trailing dot). No rule matching: the query is answered as usual.

**Network Firewall** (`evaluate_flow`):

- Stateless first: the policy's stateless rule groups by priority, then its stateless default action;
  `aws:forward_to_sfe` hands the packet to the stateful engine (provision writes no stateless rules).
- Stateful, STRICT_ORDER: the groups by their priority in the policy, in each the rules in order; the first pass,
  drop or reject rule that matches decides for the packet; alert rules log and evaluation goes on. When nothing
  decides: `aws:drop_established` drops packets of an established flow (`aws:drop_strict` every packet), and
  `aws:alert_established` / `aws:alert_strict` log them. A TCP handshake is not established, so it passes; the
  TLS SNI and HTTP Host are seen only on the first data packet, when the flow is established. DEFAULT_ACTION_ORDER
  (AWS's default, which provision does not use) takes pass rules first, then drop, reject, alert.
- A flow is a few packets: for TCP (tls, http, tcp) the SYN, the SYN-ACK, the first data to the server and the
  server's reply; for UDP the first datagram, the reply (Suricata calls the flow established once it has seen
  one) and later datagrams; for ICMP the request and the reply. A pass on a TCP packet passes the whole flow (as
  Suricata does); on UDP and ICMP each packet is decided on its own. The flow passes when every packet does.
- `tcp` and `udp` flows carry no application protocol Suricata recognises: rules on `tls`, `http` or any other
  application protocol (ssh, ftp, dns...) do not match them. `tls` flows send the host as SNI (none for an
  address), `http` flows as the Host header.
- Domain lists (RulesSourceList) are the rules AWS generates for them: per target type (TLS_SNI on `tls.sni`,
  HTTP_HOST on `http.host`) one rule per domain, `.example.com` matching example.com and its subdomains
  (`dotprefix`), anything else the name exactly, from `$HOME_NET` to `$EXTERNAL_NET` on established flows to
  the server; with GeneratedRulesType ALLOWLIST also a drop for every other TLS or HTTP flow from `$HOME_NET`.
  Standard (5-tuple) rules are their Suricata equivalent.
- Variables: a group's own `HOME_NET`, else the policy's (policy variables apply to the groups that define none),
  else the firewall VPC's CIDRs; `EXTERNAL_NET` is the group's own or else the negation of `HOME_NET`.
- Suricata rules as provision writes them and a little more: actions pass, drop, reject, alert; protocols
  ip, tcp, udp, icmp and application protocols; addresses `any`, `$VAR`, CIDRs, `[lists]` and `!negation`; ports
  `any`, `443`, `8443:8451`, `1024:`, `[lists]`, `!`, `$VAR`; `->` and `<>`; the options `flow` (to_server,
  to_client, established, not_established, stateless), the sticky buffers `tls.sni` and `http.host` with
  `content` (negated or not), `nocase`, `startswith`, `endswith`, `dotprefix`, and `noalert`; `msg`, `sid`, `rev`
  and the like do not change what matches. A rule with anything else (pcre, byte tests, IP set references...) is
  not guessed: if it could decide the flow, the verdict is "unknown" and names it; an alert rule that might match
  is listed as such.

**A name without an address.** Which address a name resolves to is not known here (nothing is resolved). The flow
is decided for an address outside every CIDR the rules name and outside `HOME_NET` (a public name, the usual
case): that is the verdict. Then, for every CIDR some rule names as an address (the control plane, the metastore's
pinned addresses...), the flow is decided again for an address inside it; where that differs, it is given as an
alternative ("if the name resolves into 18.159.44.32/28: pass by ..."). With `address`, the flow is decided for
that address alone.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from provisioner.design.aws_rules import (
    DOMAIN_TARGETS,
    GENERATED_ACTIONS,
    domain_list_problem,
    domain_rules,
    rules_of,
)

PROTOCOLS = ("tls", "http", "tcp", "udp", "icmp")
PASS, DROP, UNKNOWN = "pass", "drop", "unknown"
# DNS Firewall actions, and what `evaluate_dns` says when no rule matched.
ALLOW, BLOCK, ALERT, NO_MATCH = "ALLOW", "BLOCK", "ALERT", "NONE"

# A client's own port is unknown: Linux picks it from its ephemeral range (net.ipv4.ip_local_port_range).
EPHEMERAL_PORTS = (32768, 60999)
ALL_PORTS = (0, 65535)

# Options that say something about a rule, not about what it matches.
_INFORMATIONAL = frozenset({"msg", "sid", "rev", "gid", "classtype", "metadata", "reference", "priority", "target"})
_TRANSPORT = {"tls": "tcp", "http": "tcp", "tcp": "tcp", "udp": "udp", "icmp": "icmp"}
_APP_LAYER = {"tls": "tls", "http": "http"}
# Application protocols Suricata recognises that a flow here never carries (`tcp`/`udp` flows are unrecognised).
_OTHER_APP_PROTOCOLS = frozenset({
    "ssh", "ftp", "ftp-data", "smtp", "dns", "smb", "dcerpc", "imap", "pop3", "nfs", "tftp", "ntp", "dhcp", "snmp",
    "sip", "rdp", "rfb", "mqtt", "krb5", "ikev2", "ike", "dnp3", "modbus", "enip", "http2", "quic", "bittorrent-dht",
    "pgsql", "telnet", "websocket", "ldap", "doh2", "template", "tls-sni", "ssl"})
_STATEFUL_ACTIONS = ("pass", "drop", "reject", "alert")
# Under DEFAULT_ACTION_ORDER AWS evaluates by action, in this order.
_ACTION_ORDER = {"pass": 0, "drop": 1, "reject": 2, "alert": 3}
_STATELESS_PROTOCOLS = {"tcp": 6, "udp": 17, "icmp": 1}


# -- DNS Firewall -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DnsRule:
    """One DNS Firewall rule as it applies to a VPC: where its group sits among the VPC's associations, where the
    rule sits in its group, and the domains of its list."""

    group: str
    group_id: str
    association_priority: int
    priority: int
    name: str
    action: str  # ALLOW | BLOCK | ALERT
    domain_list: str
    domain_list_id: str
    domains: tuple[str, ...]
    block_response: str | None = None


@dataclass(frozen=True)
class DnsVerdict:
    name: str
    action: str  # ALLOW | BLOCK | ALERT | NONE
    rule: DnsRule | None = None
    entry: str | None = None  # the list entry that matched

    @property
    def resolves(self) -> bool:
        """The client gets an answer (ALLOW, ALERT, or no rule): BLOCK answers NXDOMAIN, NODATA or an override."""
        return self.action != BLOCK

    @property
    def rcode(self) -> str:
        if self.action == BLOCK and (self.rule is None or self.rule.block_response in (None, "NXDOMAIN")):
            return "NXDOMAIN"
        return "NOERROR"

    def describe(self) -> str:
        if self.rule is None:
            return f"no DNS Firewall rule matches {self.name}: answered as usual"
        what = {ALLOW: "answered", ALERT: "answered and logged as an alert",
                BLOCK: f"answered {self.rule.block_response or 'NODATA'}"}.get(self.action, self.action)
        return (f"{self.action} by rule {self.rule.name} (priority {self.rule.priority}) of {self.rule.group}: "
                f"{self.entry} is on {self.rule.domain_list}; {what}")


def dns_name_matches(entry: str, name: str) -> bool:
    """DNS Firewall's domain matching: `*` anything, `*.example.com` names under example.com, else exactly."""
    entry, name = entry.lower().rstrip("."), name.lower().rstrip(".")
    if entry == "*":
        return True
    if entry.startswith("*."):
        return name.endswith(entry[1:])
    return name == entry


def evaluate_dns(rules: Iterable[DnsRule], name: str) -> DnsVerdict:
    """The first rule (by association priority, then rule priority) whose list holds `name` decides."""
    for rule in sorted(rules, key=lambda r: (r.association_priority, r.priority)):
        entry = next((d for d in rule.domains if dns_name_matches(d, name)), None)
        if entry is not None:
            return DnsVerdict(name.lower().rstrip("."), rule.action, rule, entry)
    return DnsVerdict(name.lower().rstrip("."), NO_MATCH)


# -- Network Firewall: inputs -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleGroup:
    """A rule group as the policy references it: its name, its priority there (None under default order) and the
    `RuleGroup` document DescribeRuleGroup returns."""

    name: str
    priority: int | None
    document: Mapping[str, Any]


@dataclass(frozen=True)
class Policy:
    """A firewall policy read back: the `FirewallPolicy` document, its groups, and the firewall VPC's CIDRs
    (HOME_NET when neither the policy nor a group sets one)."""

    name: str
    document: Mapping[str, Any]
    stateful: tuple[RuleGroup, ...]
    stateless: tuple[RuleGroup, ...] = ()
    vpc_cidrs: tuple[str, ...] = ()

    @property
    def rule_order(self) -> str:
        return str((self.document.get("StatefulEngineOptions") or {}).get("RuleOrder") or "DEFAULT_ACTION_ORDER")

    @property
    def home_net(self) -> tuple[str, ...]:
        variables = (self.document.get("PolicyVariables") or {}).get("RuleVariables") or {}
        definition = (variables.get("HOME_NET") or {}).get("Definition")
        return tuple(definition) if definition else self.vpc_cidrs


@dataclass(frozen=True)
class Flow:
    """One flow from a spoke: `host` is the name the client sends (TLS SNI, HTTP Host), `address` the destination
    when known. A flow to an address sends no SNI; over HTTP its Host is the address."""

    protocol: str
    source: str
    port: int | None
    host: str | None = None
    address: str | None = None

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"protocol {self.protocol!r} is not one of {', '.join(PROTOCOLS)}")
        if self.protocol != "icmp" and self.port is None:
            raise ValueError(f"a {self.protocol} flow needs a port")

    @property
    def target(self) -> str:
        where = self.host or self.address or "?"
        return where if self.port is None else f"{where}:{self.port}"


# -- Network Firewall: rules --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """One stateful rule: where it is (group, priority in the policy, position in the group) and its Suricata
    text; for a domain list, what AWS generated it for. `problem` says why it cannot be evaluated."""

    group: str
    priority: int | None
    index: int
    text: str
    action: str
    generated: str | None = None
    problem: str | None = None

    @property
    def sid(self) -> int | None:
        found = re.search(r"\bsid\s*:\s*(\d+)", self.text)
        return int(found.group(1)) if found else None

    @property
    def msg(self) -> str:
        found = re.search(r'\bmsg\s*:\s*"((?:[^"\\]|\\.)*)"', self.text)
        return found.group(1) if found else ""

    def describe(self) -> str:
        where = f"rule group {self.group}" + (f" (priority {self.priority})" if self.priority is not None else "")
        if self.generated:
            return f"{where}: {self.generated}"
        sid = f"sid {self.sid}" if self.sid is not None else f"rule {self.index}"
        return f"{where}, {sid}" + (f" \"{self.msg}\"" if self.msg else "")

    def as_dict(self) -> dict[str, Any]:
        return {"group": self.group, "priority": self.priority, "index": self.index, "sid": self.sid,
                "action": self.action, "msg": self.msg, "generated": self.generated, "text": self.text,
                "problem": self.problem}


@dataclass(frozen=True)
class Decision:
    """What the firewall does with the flow: `verdict` pass, drop or unknown; `rule` the deciding rule (None when
    a default action or nothing decided); `logged` whether an ALERT record is written for it."""

    verdict: str
    packet: str
    rule: Rule | None = None
    default_action: str | None = None
    logged: bool = False
    alerts: tuple[Rule, ...] = ()
    uncertain: tuple[Rule, ...] = ()
    notes: tuple[str, ...] = ()

    def describe(self) -> str:
        if self.verdict == UNKNOWN and self.rule is not None:
            return (f"unknown: {self.rule.describe()} cannot be evaluated ({self.rule.problem}) and could decide "
                    f"the {self.packet}")
        if self.verdict == UNKNOWN:
            return f"unknown: {self.notes[0] if self.notes else 'cannot be evaluated'}"
        by = (self.rule.describe() if self.rule is not None else
              f"the default action {self.default_action}" if self.default_action else "no rule (nothing drops it)")
        return f"{self.verdict} by {by}, at the {self.packet}"

    def as_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "packet": self.packet, "rule": self.rule.as_dict() if self.rule else None,
                "default_action": self.default_action, "logged": self.logged,
                "alerts": [a.as_dict() for a in self.alerts], "uncertain": [u.as_dict() for u in self.uncertain],
                "notes": list(self.notes), "summary": self.describe()}


@dataclass(frozen=True)
class FirewallVerdict:
    flow: Flow
    decision: Decision
    # (condition, decision) for destination addresses inside a CIDR some rule names, where the decision differs
    alternatives: tuple[tuple[str, Decision], ...] = ()

    @property
    def verdict(self) -> str:
        return self.decision.verdict

    def as_dict(self) -> dict[str, Any]:
        return {**self.decision.as_dict(),
                "alternatives": [{"if": c, **d.as_dict()} for c, d in self.alternatives]}


# -- tri-state logic: True, False, or None (cannot tell) ----------------------------------------------------------

Tri = bool | None


def _all(values: Iterable[Tri]) -> Tri:
    found: Tri = True
    for value in values:
        if value is False:
            return False
        if value is None:
            found = None
    return found


def _any(values: Iterable[Tri]) -> Tri:
    found: Tri = False
    for value in values:
        if value is True:
            return True
        if value is None:
            found = None
    return found


def _not(value: Tri) -> Tri:
    return None if value is None else not value


# -- addresses and ports ------------------------------------------------------------------------------------------


class _Unsupported(ValueError):
    """Part of a rule this module does not evaluate."""


def _split_list(text: str) -> list[str]:
    """Split a Suricata list body on commas outside brackets."""
    items, depth, current = [], 0, ""
    for char in text:
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
        if char == "," and depth == 0:
            items.append(current.strip())
            current = ""
        else:
            current += char
    if current.strip():
        items.append(current.strip())
    return items


@dataclass(frozen=True)
class _Variables:
    addresses: Mapping[str, tuple[str, ...]]
    ports: Mapping[str, tuple[str, ...]]


@dataclass(frozen=True)
class _AddressSpec:
    """An address spec: inside `any_`, one of `networks` or one of `parts`, and in none of `negated`."""

    any_: bool = False
    networks: tuple[ipaddress.IPv4Network, ...] = ()
    parts: tuple[_AddressSpec, ...] = ()
    negated: tuple[_AddressSpec, ...] = ()

    @property
    def only_negation(self) -> bool:
        return bool(self.negated) and not (self.any_ or self.networks or self.parts)

    def matches(self, address: str | None) -> Tri:
        """Whether `address` is in the spec; None stands for an address outside every network a rule names."""
        if self.any_:
            inside: Tri = True
        else:
            positive: list[Tri] = [p.matches(address) for p in self.parts]
            if self.networks:
                positive.append(False if address is None else
                                any(ipaddress.IPv4Address(address) in n for n in self.networks))
            inside = _any(positive) if positive else bool(self.negated)
        return _all([inside, *(_not(n.matches(address)) for n in self.negated)])

    def networks_named(self) -> list[ipaddress.IPv4Network]:
        found = list(self.networks)
        for part in (*self.parts, *self.negated):
            found += part.networks_named()
        return found


def _parse_address(text: str, variables: _Variables, depth: int = 0) -> _AddressSpec:
    text = text.strip()
    if depth > 16:
        raise _Unsupported("address variables nest too deeply")
    if text.startswith("!"):
        return _AddressSpec(negated=(_parse_address(text[1:], variables, depth + 1),))
    if text.startswith("[") and text.endswith("]"):
        items = [_parse_address(item, variables, depth + 1) for item in _split_list(text[1:-1])]
        if not items:
            raise _Unsupported("an empty address list")
        return _AddressSpec(parts=tuple(i for i in items if not i.only_negation),
                            negated=tuple(n for i in items if i.only_negation for n in i.negated))
    if text.lower() == "any":
        return _AddressSpec(any_=True)
    if text.startswith("$"):
        name = text[1:]
        if name in variables.addresses:
            return _parse_address("[" + ",".join(variables.addresses[name]) + "]", variables, depth + 1)
        raise _Unsupported(f"address variable ${name} is not defined")
    if text.startswith("@"):
        raise _Unsupported(f"IP set reference {text} is not evaluated")
    try:
        network = ipaddress.IPv4Network(text, strict=False)
    except ValueError:
        raise _Unsupported(f"address {text!r} is not an IPv4 address or CIDR") from None
    if network.prefixlen == 0:
        return _AddressSpec(any_=True)
    return _AddressSpec(networks=(network,))


Intervals = tuple[tuple[int, int], ...]


def _normalise(intervals: Iterable[tuple[int, int]]) -> Intervals:
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(intervals):
        if merged and lo <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return tuple(merged)


def _complement(intervals: Intervals) -> Intervals:
    found, start = [], ALL_PORTS[0]
    for lo, hi in intervals:
        if lo > start:
            found.append((start, lo - 1))
        start = hi + 1
    if start <= ALL_PORTS[1]:
        found.append((start, ALL_PORTS[1]))
    return tuple(found)


def _port(text: str) -> int:
    value = int(text)
    if not ALL_PORTS[0] <= value <= ALL_PORTS[1]:
        raise _Unsupported(f"port {value} is out of range")
    return value


def _parse_ports(text: str, variables: _Variables, depth: int = 0) -> Intervals:
    text = text.strip()
    if depth > 16:
        raise _Unsupported("port variables nest too deeply")
    try:
        if text.startswith("!"):
            return _complement(_parse_ports(text[1:], variables, depth + 1))
        if text.startswith("[") and text.endswith("]"):
            items = _split_list(text[1:-1])
            positive = [_parse_ports(i, variables, depth + 1) for i in items if not i.startswith("!")]
            negative = [_parse_ports(i[1:], variables, depth + 1) for i in items if i.startswith("!")]
            base = _normalise(x for p in positive for x in p) if positive else (ALL_PORTS,)
            excluded = _normalise(x for n in negative for x in n)
            return _intersect(base, _complement(excluded))
        if text.lower() == "any":
            return (ALL_PORTS,)
        if text.startswith("$"):
            name = text[1:]
            if name not in variables.ports:
                raise _Unsupported(f"port variable ${name} is not defined")
            return _parse_ports("[" + ",".join(variables.ports[name]) + "]", variables, depth + 1)
        if ":" in text:
            lo, _, hi = text.partition(":")
            return ((_port(lo) if lo else ALL_PORTS[0], _port(hi) if hi else ALL_PORTS[1]),)
        return ((_port(text), _port(text)),)
    except ValueError as e:
        if isinstance(e, _Unsupported):
            raise
        raise _Unsupported(f"port {text!r} is not a port, a range or a list") from None


def _intersect(a: Intervals, b: Intervals) -> Intervals:
    found = []
    for lo1, hi1 in a:
        for lo2, hi2 in b:
            lo, hi = max(lo1, lo2), min(hi1, hi2)
            if lo <= hi:
                found.append((lo, hi))
    return _normalise(found)


def _ports_match(spec: Intervals, port: int | tuple[int, int] | None) -> Tri:
    """A known port, an unknown one in a range (the client's), or none (ICMP: only `any` matches)."""
    if port is None:
        return spec == (ALL_PORTS,)
    if isinstance(port, int):
        return any(lo <= port <= hi for lo, hi in spec)
    covered = _intersect(spec, (port,))
    if covered == (port,):
        return True
    return False if not covered else None


# -- Suricata rule text -------------------------------------------------------------------------------------------


def _split_options(body: str) -> list[tuple[str, str | None]]:
    """`key: value; key; ...` split on semicolons outside quotes (a backslash escapes the next character)."""
    options: list[tuple[str, str | None]] = []
    current, quoted, escaped = "", False, False
    for char in body:
        if escaped:
            current += char
            escaped = False
            continue
        if char == "\\":
            current += char
            escaped = True
            continue
        if char == '"':
            quoted = not quoted
        if char == ";" and not quoted:
            if current.strip():
                key, sep, value = current.strip().partition(":")
                options.append((key.strip().lower(), value.strip() if sep else None))
            current = ""
            continue
        current += char
    if quoted:
        raise _Unsupported("an option's quotes are not closed")
    if current.strip():
        raise _Unsupported(f"option {current.strip()!r} does not end with a semicolon")
    return options


def _content_value(raw: str) -> tuple[str, bool]:
    """A content option's pattern (hex `|2e|` and escapes decoded) and whether it is negated."""
    negated = raw.startswith("!")
    raw = raw[1:].strip() if negated else raw
    if not (len(raw) >= 2 and raw.startswith('"') and raw.endswith('"')):
        raise _Unsupported(f"content {raw!r} is not a quoted pattern")
    text, out, i = raw[1:-1], "", 0
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text):
            out += text[i + 1]
            i += 2
        elif char == "|":
            end = text.index("|", i + 1)
            out += bytes.fromhex(text[i + 1:end].replace(" ", "")).decode("latin-1")
            i = end + 1
        else:
            out += char
            i += 1
    return out, negated


@dataclass
class _Content:
    pattern: str
    negated: bool
    nocase: bool = False
    startswith: bool = False
    endswith: bool = False

    def matches(self, buffer: str) -> bool:
        pattern, value = (self.pattern.lower(), buffer.lower()) if self.nocase else (self.pattern, buffer)
        if self.startswith and self.endswith:
            found = value == pattern
        elif self.startswith:
            found = value.startswith(pattern)
        elif self.endswith:
            found = value.endswith(pattern)
        else:
            found = pattern in value
        return found != self.negated


@dataclass
class _Buffer:
    name: str  # tls.sni | http.host
    dotprefix: bool = False
    contents: list[_Content] = field(default_factory=list)


@dataclass(frozen=True)
class _Packet:
    """One packet of the flow: its direction, whether the flow is established, what the engine knows of it."""

    name: str
    to_server: bool
    established: bool
    app: str | None  # the application protocol detected so far (tls, http) or None


@dataclass
class _Compiled:
    rule: Rule
    protocol: str
    source: _AddressSpec
    source_ports: Intervals
    bidirectional: bool
    destination: _AddressSpec
    destination_ports: Intervals
    flow: tuple[str, ...] = ()
    buffers: list[_Buffer] = field(default_factory=list)
    noalert: bool = False
    problem: str | None = None  # an option not evaluated: the header may still rule the rule out

    def matches(self, flow: Flow, packet: _Packet) -> Tri:
        header = self._header(flow, packet)
        if header is False:
            return False
        if self.problem is not None:
            return None
        return _all([header, self._flow_option(packet), self._buffers(flow, packet)])

    def _header(self, flow: Flow, packet: _Packet) -> Tri:
        transport = _TRANSPORT[flow.protocol]
        if self.protocol in ("ip", "pkthdr"):
            proto: Tri = True
        elif self.protocol in ("tcp", "udp", "icmp"):
            proto = self.protocol == transport
        elif self.protocol in ("tls", "http"):
            proto = packet.app == self.protocol
        elif self.protocol == "icmpv4":
            proto = transport == "icmp"
        elif self.protocol in _OTHER_APP_PROTOCOLS or self.protocol in ("icmpv6", "sctp"):
            proto = False
        else:
            return None  # compile_rule names the protocol as the rule's problem
        if proto is False:
            return False
        client, server = (flow.source, EPHEMERAL_PORTS), (flow.address, flow.port)
        src, dst = (client, server) if packet.to_server else (server, client)
        ways = [self._way(src, dst)]
        if self.bidirectional:
            ways.append(self._way(dst, src))
        return _all([proto, _any(ways)])

    def _way(self, src: tuple[str | None, Any], dst: tuple[str | None, Any]) -> Tri:
        return _all([self.source.matches(src[0]), _ports_match(self.source_ports, src[1]),
                     self.destination.matches(dst[0]), _ports_match(self.destination_ports, dst[1])])

    def _flow_option(self, packet: _Packet) -> Tri:
        checks: list[Tri] = []
        for value in self.flow:
            if value in ("to_server", "from_client"):
                checks.append(packet.to_server)
            elif value in ("to_client", "from_server"):
                checks.append(not packet.to_server)
            elif value == "established":
                checks.append(packet.established)
            elif value == "not_established":
                checks.append(not packet.established)
            elif value == "stateless":
                checks.append(True)
            else:
                checks.append(None)
        return _all(checks)

    def _buffers(self, flow: Flow, packet: _Packet) -> Tri:
        checks: list[Tri] = []
        for buffer in self.buffers:
            value = _buffer_value(buffer.name, flow, packet)
            if value is None:
                checks.append(False)  # the buffer is not there: the rule cannot match this packet
                continue
            if buffer.dotprefix:
                value = "." + value
            checks.append(all(c.matches(value) for c in buffer.contents))
        return _all(checks)


def _buffer_value(name: str, flow: Flow, packet: _Packet) -> str | None:
    """What a sticky buffer holds for this packet: the client sends SNI and Host, on its first data packet."""
    if not packet.to_server or flow.host is None:
        return None
    if name == "tls.sni" and packet.app == "tls":
        return flow.host
    if name == "http.host" and packet.app == "http":
        return flow.host.lower()  # Suricata normalises the Host header to lowercase
    return None


def _tokens(header: str) -> list[str]:
    tokens, depth, current = [], 0, ""
    for char in header:
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
        if char.isspace() and depth == 0:
            if current:
                tokens.append(current)
            current = ""
        else:
            current += char
    if current:
        tokens.append(current)
    return tokens


def compile_rule(rule: Rule, variables: _Variables) -> _Compiled:
    """Parse a rule's text; raises _Unsupported when even its header cannot be read."""
    text = rule.text.strip()
    open_at, close_at = text.find("("), text.rfind(")")
    if open_at < 0 or close_at < open_at:
        raise _Unsupported("no option list in parentheses")
    tokens = _tokens(text[:open_at])
    if len(tokens) != 7:
        raise _Unsupported("the header is not `action protocol source port direction destination port`")
    action, protocol, source, source_ports, direction, destination, destination_ports = tokens
    if action.lower() not in _STATEFUL_ACTIONS:
        raise _Unsupported(f"action {action!r} is not one of {', '.join(_STATEFUL_ACTIONS)}")
    if direction not in ("->", "<>"):
        raise _Unsupported(f"direction {direction!r} is not -> or <>")
    compiled = _Compiled(rule=rule, protocol=protocol.lower(), source=_parse_address(source, variables),
                         source_ports=_parse_ports(source_ports, variables), bidirectional=direction == "<>",
                         destination=_parse_address(destination, variables),
                         destination_ports=_parse_ports(destination_ports, variables))
    known_protocol = compiled.protocol in ("ip", "pkthdr", "tcp", "udp", "icmp", "icmpv4", "icmpv6", "sctp",
                                           "tls", "http") or compiled.protocol in _OTHER_APP_PROTOCOLS
    try:
        if not known_protocol:
            raise _Unsupported(f"protocol {protocol!r} is not evaluated")
        _compile_options(compiled, _split_options(text[open_at + 1:close_at]))
    except _Unsupported as e:
        compiled.problem = str(e)
    except ValueError as e:
        compiled.problem = f"an option cannot be read ({e})"
    return compiled


def _compile_options(compiled: _Compiled, options: Sequence[tuple[str, str | None]]) -> None:
    buffer: _Buffer | None = None
    for key, value in options:
        if key in _INFORMATIONAL:
            continue
        if key == "flow":
            compiled.flow = tuple(v.strip().lower() for v in (value or "").split(",") if v.strip())
            unknown = [v for v in compiled.flow if v not in ("to_server", "from_client", "to_client", "from_server",
                                                             "established", "not_established", "stateless")]
            if unknown:
                raise _Unsupported(f"flow:{unknown[0]} is not evaluated")
        elif key in ("tls.sni", "http.host"):
            buffer = _Buffer(key)
            compiled.buffers.append(buffer)
        elif key == "dotprefix":
            if buffer is None or buffer.contents:
                raise _Unsupported("dotprefix outside a tls.sni or http.host buffer")
            buffer.dotprefix = True
        elif key == "content":
            if buffer is None:
                raise _Unsupported("content outside a tls.sni or http.host buffer (the payload is not evaluated)")
            pattern, negated = _content_value(value or "")
            buffer.contents.append(_Content(pattern, negated))
        elif key in ("nocase", "startswith", "endswith"):
            if buffer is None or not buffer.contents:
                raise _Unsupported(f"{key} without a content before it")
            setattr(buffer.contents[-1], key, True)
        elif key == "noalert":
            compiled.noalert = True
        else:
            raise _Unsupported(f"keyword {key} is not evaluated")


# -- rule groups as rules -----------------------------------------------------------------------------------------


def _group_variables(group: RuleGroup, policy: Policy) -> _Variables:
    variables = group.document.get("RuleVariables") or {}
    addresses = {str(k): tuple(v.get("Definition") or ()) for k, v in (variables.get("IPSets") or {}).items()}
    ports = {str(k): tuple(v.get("Definition") or ()) for k, v in (variables.get("PortSets") or {}).items()}
    if not addresses.get("HOME_NET"):
        addresses["HOME_NET"] = policy.home_net
    addresses.setdefault("EXTERNAL_NET", ("!$HOME_NET",))
    return _Variables(addresses, ports)


def _generated_by(source: Mapping[str, Any], target_type: str, domain: str | None) -> str:
    """What a rule AWS generated for a domain list was generated for, as the verdict says it."""
    action = GENERATED_ACTIONS[str(source.get("GeneratedRulesType"))]
    label = DOMAIN_TARGETS[target_type][2]
    if domain is None:
        return f"AWS's generated drop for {label} to names not on its domain list ({target_type})"
    return f"{domain} on its domain list ({target_type}), AWS's generated {action} rule"


def group_rules(group: RuleGroup, policy: Policy) -> list[_Compiled]:
    """The stateful rules of a group, in order, compiled; a rule that cannot be read is kept with its problem."""
    variables = _group_variables(group, policy)
    source = group.document.get("RulesSource") or {}
    texts: list[tuple[str, str | None]]
    if source.get("RulesSourceList"):
        domains = source["RulesSourceList"]
        problem = domain_list_problem(domains)
        if problem is not None:
            rule = Rule(group.name, group.priority, 1, "(the group's domain list)", "unknown",
                        problem=f"{problem} here, so not evaluated")
            return [_unreadable(rule)]
        texts = [(text, _generated_by(domains, target, domain)) for text, target, domain in domain_rules(domains)]
    else:
        texts = [(text, None) for text in rules_of(group.document)]
    compiled = []
    for index, (text, generated) in enumerate(texts, start=1):
        action = text.split(None, 1)[0].lower() if text.split() else "?"
        rule = Rule(group.name, group.priority, index, text, action, generated)
        try:
            compiled.append(compile_rule(rule, variables))
        except _Unsupported as e:
            compiled.append(_unreadable(replace(rule, problem=str(e))))
    return compiled


def _unreadable(rule: Rule) -> _Compiled:
    """A rule whose header cannot be read: it may match anything."""
    everything = _AddressSpec(any_=True)
    compiled = _Compiled(rule, "ip", everything, (ALL_PORTS,), True, everything, (ALL_PORTS,))
    compiled.problem = rule.problem or "cannot be read"
    return compiled


# -- stateless rules ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _StatelessRule:
    rule: Rule
    match: Mapping[str, Any]
    actions: tuple[str, ...]


def _stateless_rules(policy: Policy) -> list[_StatelessRule]:
    found: list[tuple[int, int, _StatelessRule]] = []
    for group in policy.stateless:
        source = (group.document.get("RulesSource") or {}).get("StatelessRulesAndCustomActions") or {}
        for rule in source.get("StatelessRules") or []:
            definition = rule.get("RuleDefinition") or {}
            text = f"stateless rule priority {rule.get('Priority')}: {definition.get('Actions')}"
            entry = _StatelessRule(Rule(group.name, group.priority, int(rule.get("Priority") or 0), text,
                                        "stateless", f"stateless rule {rule.get('Priority')}"),
                                   definition.get("MatchAttributes") or {}, tuple(definition.get("Actions") or ()))
            found.append((group.priority or 0, int(rule.get("Priority") or 0), entry))
    return [entry for _, _, entry in sorted(found, key=lambda item: (item[0], item[1]))]


def _stateless_matches(rule: _StatelessRule, flow: Flow, packet: _Packet) -> Tri:
    match = rule.match
    if match.get("TCPFlags") and _TRANSPORT[flow.protocol] == "tcp":
        return None
    protocols = match.get("Protocols") or []
    if protocols and _STATELESS_PROTOCOLS[_TRANSPORT[flow.protocol]] not in protocols:
        return False
    client, server = (flow.source, EPHEMERAL_PORTS), (flow.address, flow.port)
    src, dst = (client, server) if packet.to_server else (server, client)

    def addresses(key: str, address: str | None) -> Tri:
        defined = [d.get("AddressDefinition") for d in match.get(key) or []]
        if not defined:
            return True
        spec = _parse_address("[" + ",".join(str(d) for d in defined) + "]", _Variables({}, {}))
        return spec.matches(address)

    def ports(key: str, port: Any) -> Tri:
        ranges = tuple((int(p["FromPort"]), int(p["ToPort"])) for p in match.get(key) or [])
        if not ranges:
            return True
        if _TRANSPORT[flow.protocol] == "icmp":
            return False
        return _ports_match(_normalise(ranges), port)

    return _all([addresses("Sources", src[0]), addresses("Destinations", dst[0]), ports("SourcePorts", src[1]),
                 ports("DestinationPorts", dst[1])])


# -- deciding -----------------------------------------------------------------------------------------------------


def _packets(protocol: str) -> list[_Packet]:
    app = _APP_LAYER.get(protocol)
    if _TRANSPORT[protocol] == "tcp":
        return [_Packet("handshake (SYN)", True, False, None), _Packet("handshake (SYN-ACK)", False, False, None),
                _Packet("first data to the server" + (f" ({protocol.upper()})" if app else ""), True, True, app),
                _Packet("server's reply", False, True, app)]
    if protocol == "udp":
        return [_Packet("first datagram", True, False, None), _Packet("reply", False, True, None),
                _Packet("later datagrams", True, True, None)]
    return [_Packet("request", True, False, None), _Packet("reply", False, True, None)]


@dataclass
class _PacketOutcome:
    verdict: str  # pass | drop | unknown | none (nothing decided; the default actions then)
    rule: Rule | None = None
    default_action: str | None = None
    logged: bool = False
    alerts: list[Rule] = field(default_factory=list)
    uncertain: list[Rule] = field(default_factory=list)
    flow_pass: bool = False  # a pass rule on a TCP packet passes the rest of the flow
    note: str | None = None


def _stateless(policy: Policy, rules: Sequence[_StatelessRule], flow: Flow, packet: _Packet) -> _PacketOutcome | None:
    """The stateless engine: None when the packet goes on to the stateful engine."""
    for rule in rules:
        matched = _stateless_matches(rule, flow, packet)
        if matched is False:
            continue
        if matched is None:
            return _PacketOutcome(UNKNOWN, replace(rule.rule, problem="TCP flags are not evaluated"))
        standard = next((a for a in rule.actions if a in ("aws:pass", "aws:drop", "aws:forward_to_sfe")), None)
        if standard == "aws:forward_to_sfe":
            return None
        return _PacketOutcome(PASS if standard == "aws:pass" else DROP, rule.rule)
    defaults = list(policy.document.get("StatelessDefaultActions") or ["aws:forward_to_sfe"])
    if "aws:forward_to_sfe" in defaults:
        return None
    if "aws:pass" in defaults:
        return _PacketOutcome(PASS, default_action="aws:pass", note="the stateless default action passes it "
                                                                    "uninspected")
    return _PacketOutcome(DROP, default_action="aws:drop")


def _ordered(policy: Policy, compiled: Sequence[_Compiled]) -> list[_Compiled]:
    if policy.rule_order == "STRICT_ORDER":
        return list(compiled)
    return sorted(compiled, key=lambda c: _ACTION_ORDER.get(c.rule.action, 4))


def _stateful(policy: Policy, rules: Sequence[_Compiled], flow: Flow, packet: _Packet) -> _PacketOutcome:
    outcome = _PacketOutcome("none")
    for compiled in rules:
        matched = compiled.matches(flow, packet)
        if matched is False:
            continue
        rule = compiled.rule if compiled.problem is None else replace(compiled.rule, problem=compiled.problem)
        if matched is None:
            if rule.action == "alert":
                outcome.uncertain.append(rule)
                continue
            outcome.verdict, outcome.rule = UNKNOWN, rule
            return outcome
        if rule.action == "alert":
            outcome.alerts.append(rule)
            continue
        outcome.rule = rule
        if rule.action == "pass":
            outcome.verdict = PASS
            outcome.flow_pass = _TRANSPORT[flow.protocol] == "tcp"
        else:
            outcome.verdict, outcome.logged = DROP, not compiled.noalert
        return outcome
    if policy.rule_order != "STRICT_ORDER":
        outcome.verdict = PASS
        return outcome
    defaults = [str(a) for a in policy.document.get("StatefulDefaultActions") or []]
    known = {"aws:drop_strict", "aws:drop_established", "aws:alert_strict", "aws:alert_established"}
    if any(a not in known for a in defaults):
        outcome.verdict = UNKNOWN
        outcome.note = f"the default action {next(a for a in defaults if a not in known)} is not evaluated"
        return outcome
    drops = "aws:drop_strict" in defaults or ("aws:drop_established" in defaults and packet.established)
    alerts = "aws:alert_strict" in defaults or ("aws:alert_established" in defaults and packet.established)
    if drops:
        outcome.verdict = DROP
        outcome.default_action = "aws:drop_strict" if "aws:drop_strict" in defaults else "aws:drop_established"
        outcome.logged = alerts
    else:
        outcome.verdict = PASS
        if alerts:
            outcome.default_action = "aws:alert_strict" if "aws:alert_strict" in defaults else "aws:alert_established"
    return outcome


def decide(policy: Policy, flow: Flow) -> Decision:
    """The firewall's decision on every packet of the flow, and so on the flow (see the module docstring)."""
    stateless = _stateless_rules(policy)
    stateful: list[_Compiled] = []
    for group in sorted(policy.stateful, key=lambda g: (g.priority is None, g.priority or 0)):
        stateful += group_rules(group, policy)
    stateful = _ordered(policy, stateful)
    alerts: list[Rule] = []
    uncertain: list[Rule] = []
    notes: list[str] = []
    left: list[str] = []  # packets to the server that passed so far
    passed: _PacketOutcome | None = None
    passed_at = ""
    for packet in _packets(flow.protocol):
        outcome = _stateless(policy, stateless, flow, packet) or _stateful(policy, stateful, flow, packet)
        alerts += [a for a in outcome.alerts if a not in alerts]
        uncertain += [u for u in outcome.uncertain if u not in uncertain]
        if outcome.note:
            notes.append(outcome.note)
        if outcome.verdict == UNKNOWN:
            return Decision(UNKNOWN, packet.name, outcome.rule, alerts=tuple(alerts), uncertain=tuple(uncertain),
                            notes=tuple(notes))
        if outcome.verdict == DROP:
            if left and flow.protocol in ("udp", "icmp"):
                notes.append(f"the {left[0]} leaves before the {packet.name} is dropped")
            return Decision(DROP, packet.name, outcome.rule, outcome.default_action, outcome.logged, tuple(alerts),
                            tuple(uncertain), tuple(notes))
        if packet.to_server:
            left.append(packet.name)
        if passed is None or (passed.rule is None and outcome.rule is not None):
            passed, passed_at = outcome, packet.name
        if outcome.flow_pass:
            break
    assert passed is not None
    return Decision(PASS, passed_at, passed.rule, passed.default_action, bool(passed.default_action),
                    tuple(alerts), tuple(uncertain), tuple(notes))


def named_networks(policy: Policy) -> list[ipaddress.IPv4Network]:
    """Every network some stateful rule names as an address (outside HOME_NET), sorted: where a destination's
    address could change the decision."""
    home = [ipaddress.IPv4Network(c, strict=False) for c in policy.home_net]
    found: set[ipaddress.IPv4Network] = set()
    for group in policy.stateful:
        for compiled in group_rules(group, policy):
            for spec in (compiled.source, compiled.destination):
                found.update(n for n in spec.networks_named()
                             if not any(n.subnet_of(h) for h in home if n.version == h.version))
    return sorted(found, key=lambda n: (int(n.network_address), n.prefixlen))


def evaluate_flow(policy: Policy, flow: Flow) -> FirewallVerdict:
    """The decision for the flow; for a name without an address, also where an address inside a network some
    rule names would get another verdict."""
    decision = decide(policy, flow)
    if flow.address is not None:
        return FirewallVerdict(flow, decision)
    alternatives: list[tuple[str, Decision]] = []
    for network in named_networks(policy):
        address = str(network.network_address)
        other = decide(policy, replace(flow, address=address))
        if other.verdict != decision.verdict:
            where = f"resolves to {address}" if network.prefixlen == 32 else f"resolves into {network}"
            alternatives.append((f"if {flow.host or 'the name'} {where}", other))
    return FirewallVerdict(flow, decision, tuple(alternatives))


# -- which rules a policy has that cannot be evaluated ------------------------------------------------------------


def unevaluable(policy: Policy) -> list[Rule]:
    """Every stateful rule of the policy this module cannot evaluate, with why."""
    found = []
    for group in policy.stateful:
        for compiled in group_rules(group, policy):
            if compiled.problem:
                found.append(replace(compiled.rule, problem=compiled.problem))
    return found
