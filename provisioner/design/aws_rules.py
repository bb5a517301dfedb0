"""A stateful rule group as the Suricata rules AWS Network Firewall runs: a rules string's rules, and the rules AWS
generates for a domain list (`RulesSourceList`) and for standard 5-tuple rules (`StatefulRules`), in the form AWS
documents. Pure: the sandbox's Suricata check, the egress evaluator and the design's comparisons read the same
translation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

GENERATED_ACTIONS = {"ALLOWLIST": "pass", "DENYLIST": "drop", "ALERTLIST": "alert", "REJECTLIST": "reject"}
# target type -> (protocol, sticky buffer, label in AWS's messages)
DOMAIN_TARGETS = {"TLS_SNI": ("tls", "tls.sni", "TLS"), "HTTP_HOST": ("http", "http.host", "HTTP")}
DIRECTIONS = {"FORWARD": "->", "ANY": "<>"}


def rule_lines(rules: str) -> list[tuple[int, str]]:
    """(line number, rule) for each rule in a Suricata rules string: blank lines and comments are not rules; a
    line ending in a backslash continues on the next."""
    found: list[tuple[int, str]] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(rules.splitlines(), start=1):
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if not pending:
            start = number
        if line.endswith("\\"):
            pending.append(line[:-1].strip())
            continue
        found.append((start, " ".join([*pending, line]).strip()))
        pending = []
    if pending:
        found.append((start, " ".join(pending).strip()))
    return found


def domain_list_problem(source: Mapping[str, Any]) -> str | None:
    """Why a domain list's rules cannot be written here (a rules type or target type AWS has added since), or None."""
    generated = str(source.get("GeneratedRulesType"))
    if generated not in GENERATED_ACTIONS:
        return f"GeneratedRulesType {generated} is not known"
    unknown = [t for t in source.get("TargetTypes") or [] if t not in DOMAIN_TARGETS]
    return f"target type {unknown[0]} is not known" if unknown else None


def domain_rules(source: Mapping[str, Any]) -> list[tuple[str, str, str | None]]:
    """(rule, target type, domain) for each rule AWS generates for a domain list; the domain is None for the drop
    an allowlist ends with. Target types not known here are left out (`domain_list_problem` names them)."""
    generated = str(source.get("GeneratedRulesType"))
    action = GENERATED_ACTIONS.get(generated, "pass")
    listed = generated.lower().removesuffix("list") + "listed"
    rules: list[tuple[str, str, str | None]] = []
    for target_type in source.get("TargetTypes") or []:
        if target_type not in DOMAIN_TARGETS:
            continue
        proto, buffer, label = DOMAIN_TARGETS[target_type]
        for domain in source.get("Targets") or []:
            # The host buffer is lowercase in Suricata, which refuses `nocase` and uppercase patterns there.
            text = str(domain).lower() if buffer == "http.host" else str(domain)
            case = "" if buffer == "http.host" else " nocase;"
            match = (f'dotprefix; content:"{text}";{case} endswith;' if text.startswith(".")
                     else f'content:"{text}"; startswith;{case} endswith;')
            rules.append((f"{action} {proto} $HOME_NET any -> $EXTERNAL_NET any ({buffer}; {match} "
                          f'msg:"matching {label} {listed} FQDNs"; flow:to_server, established; '
                          f"sid:{len(rules) + 1}; rev:1;)", target_type, str(domain)))
        if generated == "ALLOWLIST":
            rules.append((f"drop {proto} $HOME_NET any -> $EXTERNAL_NET any "
                          f'(msg:"not matching any {label} allowlisted FQDNs"; flow:to_server, established; '
                          f"sid:{len(rules) + 1}; rev:1;)", target_type, None))
    return rules


def standard_rules(stateful_rules: Sequence[Mapping[str, Any]]) -> list[str]:
    """The rules AWS writes for standard stateful (5-tuple) rules."""
    rules = []
    for rule in stateful_rules:
        header = rule.get("Header") or {}
        options = " ".join(
            f"{o.get('Keyword')}:{','.join(o['Settings'])};" if o.get("Settings") else f"{o.get('Keyword')};"
            for o in rule.get("RuleOptions") or [])
        rules.append(" ".join((
            str(rule.get("Action", "")).lower(), str(header.get("Protocol", "")).lower(), str(header.get("Source")),
            str(header.get("SourcePort")).lower(), DIRECTIONS.get(str(header.get("Direction")), "->"),
            str(header.get("Destination")), str(header.get("DestinationPort")).lower(), f"({options})")))
    return rules


def numbered_rules(rule_group: Mapping[str, Any] | None) -> list[tuple[int, str]]:
    """(where, rule) for each Suricata rule of a stateful rule group: a rules string's rules with their line
    numbers; a domain list's or standard rules' translation, as AWS makes it, numbered from 1."""
    source = (rule_group or {}).get("RulesSource") or {}
    if source.get("RulesString"):
        return rule_lines(str(source["RulesString"]))
    if source.get("RulesSourceList"):
        return list(enumerate((rule for rule, _, _ in domain_rules(source["RulesSourceList"])), start=1))
    if source.get("StatefulRules"):
        return list(enumerate(standard_rules(source["StatefulRules"]), start=1))
    return []


def rules_of(rule_group: Mapping[str, Any] | None) -> list[str]:
    """The Suricata rules of a stateful rule group (see `numbered_rules`)."""
    return [rule for _, rule in numbered_rules(rule_group)]
