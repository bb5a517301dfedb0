"""The Databricks workspace security group's rules, as data, and their translation to and from EC2's shapes.

Current Databricks requirements (customer-managed VPC, anchors.md 1.9): all TCP and UDP within the group both
ways; egress TCP 443 (REST, infrastructure, libraries), 2443 (FIPS / compliance security profile), 6666 (secure
cluster connectivity over PrivateLink), 8443-8451 (control-plane API, Unity Catalog logging and lineage,
reserved) to anywhere, and 3306 only for the legacy Hive metastore. Nothing else: AWS's default allow-all
egress rule is revoked. The firewall decides which of these destinations are reachable.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

ANYWHERE = "0.0.0.0/0"
SELF = "self"
INGRESS = "ingress"
EGRESS = "egress"
ALL_PORTS = (0, 65535)
EGRESS_TCP_PORTS: tuple[tuple[int, int], ...] = ((443, 443), (2443, 2443), (6666, 6666), (8443, 8451))
LEGACY_METASTORE_PORT = 3306


@dataclass(frozen=True, order=True)
class Rule:
    """One permission: direction, protocol ("tcp", "udp", "-1" for all), port range and peer.

    `peer` is "self" (the group itself), a CIDR, "sg:<id>" (another group) or "pl:<id>" (a prefix list).
    """

    direction: str
    protocol: str
    from_port: int
    to_port: int
    peer: str

    def describe(self) -> str:
        ports = "all" if self.protocol == "-1" else (
            str(self.from_port) if self.from_port == self.to_port else f"{self.from_port}-{self.to_port}")
        proto = "all traffic" if self.protocol == "-1" else f"{self.protocol} {ports}"
        way = "from" if self.direction == INGRESS else "to"
        return f"{self.direction} {proto} {way} {self.peer}"


def workspace_rules(legacy_hive_metastore: bool) -> frozenset[Rule]:
    rules = {Rule(direction, proto, *ALL_PORTS, SELF) for direction in (INGRESS, EGRESS) for proto in ("tcp", "udp")}
    ports = list(EGRESS_TCP_PORTS)
    if legacy_hive_metastore:
        ports.append((LEGACY_METASTORE_PORT, LEGACY_METASTORE_PORT))
    rules |= {Rule(EGRESS, "tcp", lo, hi, ANYWHERE) for lo, hi in ports}
    return frozenset(rules)


def privatelink_endpoint_rules(workspace_group_id: str) -> frozenset[Rule]:
    """The back-end PrivateLink endpoints' group: in, from the workspace group only, on the ports the workspace
    group may send to (REST API 443, relay 6666, FIPS relay 2443, control-plane calls 8443-8451); nothing out
    (an endpoint answers, it never starts a connection: security groups are stateful)."""
    return frozenset(Rule(INGRESS, "tcp", lo, hi, f"sg:{workspace_group_id}") for lo, hi in EGRESS_TCP_PORTS)


def rules_from_permissions(direction: str, permissions: Iterable[Mapping[str, Any]], group_id: str) -> set[Rule]:
    """Flatten EC2's IpPermissions (grouped by protocol and ports, with lists of peers) into single rules."""
    rules: set[Rule] = set()
    for perm in permissions:
        proto = str(perm.get("IpProtocol", "-1"))
        proto = {"6": "tcp", "17": "udp"}.get(proto, proto)
        lo, hi = (-1, -1) if proto == "-1" else (int(perm.get("FromPort", -1)), int(perm.get("ToPort", -1)))
        peers = [r["CidrIp"] for r in perm.get("IpRanges", [])]
        peers += [r["CidrIpv6"] for r in perm.get("Ipv6Ranges", [])]
        peers += [f"pl:{r['PrefixListId']}" for r in perm.get("PrefixListIds", [])]
        peers += [SELF if p.get("GroupId") == group_id else f"sg:{p.get('GroupId')}"
                  for p in perm.get("UserIdGroupPairs", [])]
        rules |= {Rule(direction, proto, lo, hi, peer) for peer in peers}
    return rules


def to_permission(rule: Rule, group_id: str) -> dict[str, Any]:
    """One rule as an IpPermissions entry for Authorize/RevokeSecurityGroup*."""
    perm: dict[str, Any] = {"IpProtocol": rule.protocol}
    if rule.protocol != "-1":
        perm["FromPort"], perm["ToPort"] = rule.from_port, rule.to_port
    if rule.peer == SELF:
        perm["UserIdGroupPairs"] = [{"GroupId": group_id}]
    elif rule.peer.startswith("sg:"):
        perm["UserIdGroupPairs"] = [{"GroupId": rule.peer[3:]}]
    elif rule.peer.startswith("pl:"):
        perm["PrefixListIds"] = [{"PrefixListId": rule.peer[3:]}]
    elif ":" in rule.peer:
        perm["Ipv6Ranges"] = [{"CidrIpv6": rule.peer}]
    else:
        perm["IpRanges"] = [{"CidrIp": rule.peer}]
    return perm
