"""Stateful rules as AWS Network Firewall sees them: the Suricata rules a rule group is (or is translated to),
the capacity they take, and what a real Suricata rule parser says of them.

AWS passes every stateful rule group to Suricata (7.0) and refuses one Suricata cannot load. moto checks nothing, so
a rule AWS would refuse passed the sandbox; here each group's rules are loaded by the `suricata` binary in test mode
(`suricata -T -c <generated config> -S <rules file>`: it parses every rule, reports each one it cannot load with its
line and the reason, and exits non-zero; no traffic, no engine start, about 0.1 s). Answers are cached per distinct
rules and variables, so a test suite that creates the same groups many times pays once.

Where `suricata` is not installed (`apt-get install suricata`; Debian 12 has it in bookworm-backports), `check` says
so and the sandbox skips the parse: everything else still works.

Capacity (https://docs.aws.amazon.com/network-firewall/latest/developerguide/nwfw-rule-group-capacity.html): a
stateful group takes one unit per rule. Rules strings and standard (5-tuple) rules count one per rule; a domain list
counts the rules AWS generates for it: one per domain and target type, plus, for an allowlist, one "drop the rest"
rule per target type (https://docs.aws.amazon.com/network-firewall/latest/developerguide/stateful-rule-groups-domain-names.html;
observed: 99 HTTP domains fill a capacity of 100).
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from provisioner.design.aws_rules import numbered_rules, rule_lines, rules_of

__all__ = [
    "RuleProblem",
    "available",
    "capacity_needed",
    "check",
    "numbered_rules",
    "problems_text",
    "rule_lines",
    "rules_of",
    "unavailable_reason",
]

# Stateful rule actions AWS Network Firewall accepts (Suricata itself knows more, e.g. rejectsrc).
AWS_ACTIONS = ("pass", "drop", "reject", "alert")
# A rule variable's name, as AWS's RuleVariables and Suricata's config both allow it.
_VARIABLE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,31}$")
# Where the rule group names no HOME_NET, AWS uses the firewall VPC's CIDR; any valid network does for parsing.
_DEFAULT_HOME_NET = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
_SIGNATURE_ERROR = re.compile(r'error parsing signature "(?P<rule>.*)" from file .* at line (?P<line>\d+)\s*$')
# A log line: "E: detect-parse: ..." (the short format the generated config asks for) or "Error: detect-parse: ...".
_LOG_LINE = re.compile(r"^(?P<level>[A-Za-z]+): (?P<module>[\w-]+): (?P<text>.*)$")
_TIMEOUT_SECONDS = 60


@dataclass(frozen=True)
class RuleProblem:
    """One rule Suricata could not load: its line in the rules (1-based), the rule, and Suricata's reasons."""

    line: int
    rule: str
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason} ({self.rule})"


# -- the rules a group is -----------------------------------------------------------------------------------------


def capacity_needed(rule_type: str, rule_group: Mapping[str, Any]) -> int:
    """The capacity a group's content takes. Stateful: one per rule (see the module docstring). Stateless: per
    rule, the product of its match settings' sizes (an empty or "any" setting counts 1)."""
    if rule_type != "STATELESS":
        return len(rules_of(rule_group))
    source = (rule_group.get("RulesSource") or {}).get("StatelessRulesAndCustomActions") or {}
    total = 0
    for rule in source.get("StatelessRules") or []:
        match = (rule.get("RuleDefinition") or {}).get("MatchAttributes") or {}
        units = 1
        for setting in ("Sources", "Destinations", "SourcePorts", "DestinationPorts", "Protocols", "TCPFlags"):
            units *= max(1, len(match.get(setting) or []))
        total += units
    return total


# -- what Suricata says of them ----------------------------------------------------------------------------------


def _binary() -> str | None:
    return shutil.which(os.environ.get("PROVISION_SURICATA", "suricata"))


def available() -> bool:
    return _binary() is not None


def unavailable_reason() -> str:
    return ("the `suricata` binary is not installed (Debian: `apt-get install suricata`, from bookworm-backports on "
            "Debian 12), so rule groups are not checked by a real Suricata rule parser")


def _variable_values(definition: Any, kind: str, name: str) -> list[str]:
    values = definition.get("Definition") if isinstance(definition, Mapping) else None
    if not isinstance(values, list) or not values or not all(isinstance(v, str) and v for v in values):
        raise ValueError(f"{kind} {name} needs a non-empty Definition list")
    return values


def _check_address(value: str, name: str) -> None:
    plain = value.lstrip("!")
    if plain.startswith("$") or plain.startswith("["):
        return  # a reference to another variable or a group: Suricata checks it
    try:
        ipaddress.ip_network(plain, strict=False)
    except ValueError:
        raise ValueError(f"IP set {name}: {value!r} is not a CIDR block") from None


def config_variables(rule_group: Mapping[str, Any]) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]:
    """The group's RuleVariables as Suricata address and port groups: ((name, "[v1,v2]"), ...) each, sorted.

    Raises ValueError for what AWS refuses before Suricata sees it (bad names, empty definitions, non-CIDRs)."""
    variables = rule_group.get("RuleVariables") or {}
    addresses: dict[str, str] = {}
    ports: dict[str, str] = {}
    for kind, store, check in (("IP set", addresses, True), ("port set", ports, False)):
        member = "IPSets" if check else "PortSets"
        for name, definition in (variables.get(member) or {}).items():
            if not _VARIABLE_NAME.match(str(name)):
                raise ValueError(f"{kind} name {name!r} must match ^[A-Za-z][A-Za-z0-9_]*$")
            values = _variable_values(definition, kind, name)
            if check:
                for value in values:
                    _check_address(value, name)
            store[str(name)] = "[" + ",".join(values) + "]"
    addresses.setdefault("HOME_NET", "[" + ",".join(_DEFAULT_HOME_NET) + "]")
    addresses.setdefault("EXTERNAL_NET", "!$HOME_NET")
    return tuple(sorted(addresses.items())), tuple(sorted(ports.items()))


def _config_text(addresses: Sequence[tuple[str, str]], ports: Sequence[tuple[str, str]]) -> str:
    # JSON strings are YAML double-quoted scalars; the names were checked against the variable name pattern.
    lines = ["%YAML 1.1", "---", "vars:", "  address-groups:"]
    lines += [f"    {name}: {json.dumps(value)}" for name, value in addresses]
    lines += ["  port-groups:" if ports else "  port-groups: {}"]
    lines += [f"    {name}: {json.dumps(value)}" for name, value in ports]
    lines += ["stats:", "  enabled: no", "logging:", "  outputs:", "    - console:", "        enabled: yes", ""]
    return "\n".join(lines)


def _parse_output(output: str, rules: Sequence[str]) -> list[RuleProblem]:
    """Suricata logs the reasons (warnings and errors) for a rule just before "error parsing signature ... at line
    N" (N: the rule's line in the file, one rule a line); a duplicate sid is reported the same way."""
    problems: list[RuleProblem] = []
    reasons: list[str] = []
    for raw in output.splitlines():
        signature = _SIGNATURE_ERROR.search(raw)
        if signature:
            line = int(signature["line"])
            rule = rules[line - 1] if 0 < line <= len(rules) else signature["rule"]
            problems.append(RuleProblem(line, rule, "; ".join(reasons) or "Suricata cannot parse this rule"))
            reasons = []
            continue
        logged = _LOG_LINE.match(raw.strip())
        if logged and logged["level"][0] in "EW" and logged["module"] != "suricata":
            reasons.append(logged["text"].rstrip("."))
    return problems


@lru_cache(maxsize=4096)
def _check_cached(binary: str, rules: tuple[str, ...], addresses: tuple[tuple[str, str], ...],
                  ports: tuple[tuple[str, str], ...]) -> tuple[RuleProblem, ...]:
    if not rules:
        return ()
    with tempfile.TemporaryDirectory(prefix="sandbox-suricata-") as work:
        config = os.path.join(work, "suricata.yaml")
        rules_file = os.path.join(work, "group.rules")
        with open(config, "w") as f:
            f.write(_config_text(addresses, ports))
        with open(rules_file, "w") as f:
            f.write("\n".join(rules) + "\n")
        done = subprocess.run(
            [binary, "-T", "-c", config, "-S", rules_file, "-l", work],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=_TIMEOUT_SECONDS, check=False,
        )
    problems = _parse_output(done.stdout, rules)
    if done.returncode != 0 and not problems:
        raise RuntimeError(f"suricata -T failed without naming a rule (exit {done.returncode}): {done.stdout.strip()}")
    return tuple(problems)


def check(rule_group: Mapping[str, Any]) -> list[RuleProblem]:
    """What stops AWS from loading this stateful group's rules: actions AWS does not take, then every rule a real
    Suricata parser refuses (none checked when Suricata is not installed: see `available`). Each problem names
    the rule's line in a rules string, or its place in the rules AWS generates from a domain list.

    Raises ValueError for rule variables AWS refuses."""
    numbered = numbered_rules(rule_group)
    addresses, ports = config_variables(rule_group)
    problems = [RuleProblem(where, rule, f"action {rule.split()[0]!r} is not one of {', '.join(AWS_ACTIONS)}")
                for where, rule in numbered if rule.split()[0] not in AWS_ACTIONS]
    binary = _binary()
    if problems or binary is None:
        return problems
    found = _check_cached(binary, tuple(rule for _, rule in numbered), addresses, ports)
    return [RuleProblem(numbered[p.line - 1][0] if 0 < p.line <= len(numbered) else p.line, p.rule, p.reason)
            for p in found]


def problems_text(problems: Sequence[RuleProblem], limit: int = 5) -> str:
    shown = "; ".join(str(p) for p in problems[:limit])
    more = f"; and {len(problems) - limit} more" if len(problems) > limit else ""
    return shown + more
