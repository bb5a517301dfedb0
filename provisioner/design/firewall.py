"""The egress firewall as data: rule groups, policy, logging and endpoint routes, from config + layout + region.

Pure: no I/O. The steps in `provisioner.steps.firewall` send exactly these documents to AWS Network Firewall and
compare what they read back with them (`differences`).

The policy is default-deny (DESIGN.md, "Firewall policy"): STRICT_ORDER with the stateful default actions
`aws:drop_established` + `aws:alert_established`, which let TCP handshakes through (so the TLS SNI and HTTP Host
can be seen) and then drop, and log, every established flow no rule passed. Rule groups, in evaluation order:

1. deny: DROP ICMP, FTP and SSH (as the Terraform guide does), UDP from HOME_NET (one-way UDP never becomes an
   "established" flow, so the default action alone would let it out), and every flow from one spoke to another
   (the TGW blackholes them first; this is the second layer). With back-end PrivateLink also every flow to the
   region's control-plane CIDR, before any group that passes by name could let one through.
2. control-plane (not with PrivateLink): PASS TLS to the region's control-plane CIDR on 443 and 8443-8451 whose SNI
   is the regional web application or the SCC relay (from every spoke), or a spoke's own workspace host (from that
   spoke's CIDR alone).
3. metastore (only with the legacy Hive metastore): PASS TCP 3306 to the metastore host's resolved addresses,
   then DROP every other 3306 flow.
4. spoke-allowlist (only when a spoke has its own domains): PASS TLS and HTTP to those domains from that spoke's
   CIDR alone, as Suricata rules written the way AWS writes a domain list's.
5. allowlist: the deployment-wide FQDN allowlist on TLS_SNI and HTTP_HOST (AWS generates a drop for every other
   TLS/HTTP flow, which is why the per-spoke group comes first).

HOME_NET is the spoke CIDRs: the firewall sits before the NAT gateways, so it sees each cluster's own address.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from provisioner.design import routes
from provisioner.design.aws_rules import rules_of
from provisioner.design.config import Config
from provisioner.design.layout import Layout
from provisioner.design.naming import resource_name, root_bucket_name
from provisioner.design.regions import Region

RULE_ORDER = "STRICT_ORDER"
STATEFUL_DEFAULT_ACTIONS = ("aws:drop_established", "aws:alert_established")
STATELESS_DEFAULT_ACTION = "aws:forward_to_sfe"
# A flow the stream engine cannot follow (asymmetric routing, missed packets) is refused with a TCP reset, so a
# client fails fast instead of hanging; AWS's default is a silent drop.
STREAM_EXCEPTION_POLICY = "REJECT"
TARGET_TYPES = ("TLS_SNI", "HTTP_HOST")
CONTROL_PLANE_PORTS = ("443", "8443:8451")
METASTORE_PORT = 3306
CONTROL_PLANE_SID_BASE = 2101
LOG_TYPES = ("ALERT", "FLOW")

DENY, CONTROL_PLANE, METASTORE, ALLOWLIST = "deny", "control-plane", "metastore", "allowlist"
SPOKE_ALLOWLIST = "spoke-allowlist"
# Evaluation order under STRICT_ORDER: lower runs first. Gaps leave room for groups added later.
PRIORITIES = {DENY: 100, CONTROL_PLANE: 200, METASTORE: 300, SPOKE_ALLOWLIST: 350, ALLOWLIST: 400}

# Capacity is fixed when a rule group is created (https://docs.aws.amazon.com/network-firewall/latest/
# developerguide/nwfw-rule-group-capacity.html), so a group is made with twice what its content needs, rounded
# up to one of these; content that outgrows it gets a new, larger group. 30,000 is the per-group maximum.
CAPACITY_TIERS = (10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 30000)
CAPACITY_HEADROOM = 2
# The metastore group is sized for this many addresses whatever the host resolves to today, so an RDS failover
# that changes the address count does not change the group's capacity (nor its name).
METASTORE_ADDRESS_SLOTS = 4
# Stands in for the resolved addresses where only the group's shape matters (`plan` names it without DNS).
NOMINAL_METASTORE_ADDRESSES = ("192.0.2.1",)


@dataclass(frozen=True)
class RuleGroupDesign:
    """One stateful rule group: what it is for, where it runs, and the `RuleGroup` document AWS takes."""

    role: str
    priority: int
    description: str
    rule_group: Mapping[str, Any]
    needed_capacity: int

    @property
    def capacity(self) -> int:
        return capacity_for(self.needed_capacity)


def capacity_for(needed: int) -> int:
    """The capacity to create a group with: room for the content to double before it must be replaced."""
    if needed > CAPACITY_TIERS[-1]:
        raise ValueError(f"a rule group needs capacity {needed}; AWS allows at most {CAPACITY_TIERS[-1]}")
    return next(t for t in CAPACITY_TIERS if t >= min(needed * CAPACITY_HEADROOM, CAPACITY_TIERS[-1]))


# -- names ------------------------------------------------------------------------------------------------------
# Network Firewall names match ^[a-zA-Z0-9-]+$ and are unique per account and region; deployment names are
# lowercase letters, digits and hyphens, so `<deployment>-...` always fits.


def rule_group_name(deployment: str, role: str, capacity: int) -> str:
    """The capacity is in the name: AWS cannot change it, so a bigger group is a new group beside the old."""
    return resource_name(deployment, role, f"cap{capacity}")


def rule_group_name_prefix(deployment: str, role: str) -> str:
    return resource_name(deployment, role, "cap")


def policy_name(deployment: str) -> str:
    return resource_name(deployment, "egress-policy")


def firewall_name(deployment: str) -> str:
    return resource_name(deployment, "firewall")


def log_group_name(deployment: str, log_type: str) -> str:
    # Under /aws/vendedlogs/ CloudWatch Logs grants the log delivery service by one wildcard resource policy
    # instead of one statement per group, which otherwise hits the 5,120-character policy limit
    # (https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/AWS-logs-and-resource-policy.html).
    return f"/aws/vendedlogs/network-firewall/{deployment}/{log_type.lower()}"


# -- what the rules talk about ----------------------------------------------------------------------------------


def home_net(layout: Layout) -> tuple[str, ...]:
    """The spoke CIDRs: the addresses the firewall sees as sources (it sits before the NAT gateways)."""
    return layout.spoke_cidrs


def root_bucket_hosts(bucket: str, region: str) -> tuple[str, str]:
    """The two host names a client uses for a bucket: the global virtual-hosted form and the regional one."""
    return f"{bucket}.s3.amazonaws.com", f"{bucket}.s3.{region}.amazonaws.com"


def cross_region_fqdns(reg: Region) -> tuple[str, ...]:
    """Where Databricks serves a region from another one (us-west-1 uses us-west-2's Kinesis and buckets), the
    spoke's regional S3 gateway and Kinesis endpoints cannot carry that traffic: it crosses the firewall."""
    if reg.kinesis_region == reg.name:
        return ()
    names = [f"kinesis.{reg.kinesis_region}.amazonaws.com"]
    for bucket in reg.databricks_buckets:
        if reg.name not in bucket:  # named for the region itself (system tables): regional, through the gateway
            names += root_bucket_hosts(bucket, reg.kinesis_region)
    return tuple(names)


def spoke_fqdns(config: Config) -> dict[str, tuple[str, ...]]:
    """Each spoke's own domains (only those not already allowed deployment-wide), by spoke name."""
    from provisioner.design.layout import layout

    shared = set(allowed_fqdns(config, layout(config)))
    return {s.name: tuple(sorted(set(s.extra_allowed_fqdns) - shared)) for s in config.spokes}


def spoke_allowed_fqdns(config: Config, layout: Layout, spoke: str) -> tuple[str, ...]:
    """Every domain one spoke may reach through the firewall: the deployment's allowlist and its own."""
    return tuple(sorted({*firewall_fqdns(config, layout), *spoke_fqdns(config).get(spoke, ())}))


def firewall_fqdns(config: Config, layout: Layout) -> tuple[str, ...]:
    """The deployment-wide allowlist as the firewall passes it: with back-end PrivateLink the relay is the spoke's
    endpoint, off the firewall's list (its name still resolves: the DNS Firewall keeps `allowed_fqdns`)."""
    targets = allowed_fqdns(config, layout)
    return tuple(t for t in targets if t != layout.region.scc_relay) if config.private_link else targets


def allowed_fqdns(config: Config, layout: Layout) -> tuple[str, ...]:
    """Every domain the deployment-wide allowlist passes, sorted and without duplicates."""
    reg = layout.region
    names = {reg.webapp, reg.scc_relay, *config.extra_allowed_fqdns, *cross_region_fqdns(reg)}
    for spoke in config.spokes:
        names.update(root_bucket_hosts(root_bucket_name(config.deployment, spoke.name), reg.name))
    if config.legacy_hive_metastore:
        names.add(reg.legacy_metastore_host)
    return tuple(sorted(names))


def metastore_addresses(addresses: Sequence[str]) -> tuple[str, ...]:
    """Resolved metastore addresses, checked and sorted; an empty answer is an error, never "allow nothing"."""
    checked = sorted({str(ipaddress.IPv4Address(a)) for a in addresses}, key=ipaddress.IPv4Address)
    if not checked:
        raise ValueError("the legacy Hive metastore host resolved to no IPv4 address")
    return tuple(checked)


# -- rule groups ------------------------------------------------------------------------------------------------


def _variables(layout: Layout) -> dict[str, Any]:
    return {"IPSets": {"HOME_NET": {"Definition": list(home_net(layout))}}}


def _group(layout: Layout, source: dict[str, Any]) -> dict[str, Any]:
    return {
        "RuleVariables": _variables(layout),
        "RulesSource": source,
        # Groups referenced by a STRICT_ORDER policy must be STRICT_ORDER too; the order is fixed at creation.
        "StatefulRuleOptions": {"RuleOrder": RULE_ORDER},
    }


def suricata_rule(action: str, header: str, msg: str, sid: int, *options: str) -> str:
    """One Suricata rule line: `action header (msg:"..."; options; sid:N; rev:1;)`."""
    body = "; ".join((f'msg:"{msg}"', *options, f"sid:{sid}", "rev:1"))
    return f"{action} {header} ({body};)"


def _rules_group(layout: Layout, role: str, description: str, rules: Sequence[str]) -> RuleGroupDesign:
    return RuleGroupDesign(
        role=role,
        priority=PRIORITIES[role],
        description=description,
        rule_group=_group(layout, {"RulesString": "\n".join(rules) + "\n"}),
        # Each Suricata rule line takes one unit of capacity.
        needed_capacity=len(rules),
    )


def deny_group(layout: Layout, private_link: bool = False) -> RuleGroupDesign:
    rules = [
        suricata_rule("drop", "icmp any any <> any any", "ICMP is blocked", 1001),
        suricata_rule("drop", "ftp any any <> any any", "FTP is blocked", 1002),
        suricata_rule("drop", "ssh any any <> any any", "SSH is blocked", 1003),
        # Suricata calls a UDP flow established only once it has seen a reply, so a one-way UDP stream would
        # pass `aws:drop_established`; nothing in a workspace needs UDP to the internet (DNS and NTP stay in
        # the VPC).
        suricata_rule("drop", "udp $HOME_NET any -> any any", "UDP to the internet is blocked", 1004),
        # The TGW blackholes spoke-to-spoke flows; should a route ever change, the firewall still drops them.
        suricata_rule("drop", "ip $HOME_NET any -> $HOME_NET any", "Spoke to spoke is blocked", 1005),
    ]
    if private_link:
        # The workspace API and the relay are the spoke's interface endpoints: nothing of the spokes' needs the
        # public control-plane range. Dropped here, first, so that no later pass by name (the allowlist passes its
        # names to any address) can reach the shared front door there.
        rules.append(suricata_rule("drop", f"ip $HOME_NET any -> {layout.region.control_plane_cidr} any",
                                   "The Databricks control plane is reached through PrivateLink only", 1006))
        return _rules_group(layout, DENY, "Drops ICMP, FTP, SSH, outbound UDP, spoke-to-spoke flows and flows to "
                                          "the public Databricks control plane", rules)
    return _rules_group(layout, DENY, "Drops ICMP, FTP, SSH, outbound UDP and spoke-to-spoke flows", rules)


def workspace_host(url: str) -> str:
    """The host of a recorded workspace URL (`https://<deployment-name>.cloud.databricks.com`)."""
    return url.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0].lower()


def control_plane_group(layout: Layout, workspace_hosts: Mapping[str, str]) -> RuleGroupDesign:
    """TLS to the region's control-plane range, by name: only flows whose SNI is the regional web application or
    the SCC relay (from every spoke), or a spoke's own workspace host (from that spoke's CIDR alone), on 443 and
    on each of 8443-8451. `workspace_hosts`: spoke name -> the host of its recorded workspace URL; a spoke whose
    workspace does not exist yet is absent, and has no rule.

    Every one of those ports carries TLS with the host name in the SNI (the workspace's REST API and the relay on
    443, the compute plane's internal API calls on 8443, Unity Catalog lineage and logging on 8444; 8445-8451 are
    reserved by Databricks), so every flow names its host. A flow naming anything else (another customer's
    workspace on the same range), a flow without SNI and any non-TLS flow match nothing here and meet the
    default drop. A spoke's slots are counted before its workspace exists, so learning a host never outgrows the
    group (and the group's capacity, so its name, depends on the spokes, not on the hosts).
    """
    cidr = layout.region.control_plane_cidr
    # (slot, source, host, what): slots 0 and 1 for the web app and the relay, 2 + i for spoke i.
    named: list[tuple[int, str, str, str]] = [(0, "$HOME_NET", layout.region.webapp, "web application"),
                                              (1, "$HOME_NET", layout.region.scc_relay, "SCC relay")]
    named += [(2 + i, spoke.cidrs.vpc, workspace_hosts[spoke.name], f"workspace of spoke {spoke.name}")
              for i, spoke in enumerate(layout.spokes) if workspace_hosts.get(spoke.name)]
    ports = len(CONTROL_PLANE_PORTS)
    rules = [suricata_rule("pass", f"tls {source} any -> {cidr} {port}",
                           f"Databricks control plane, {what}, port {port}", CONTROL_PLANE_SID_BASE + slot * ports + p,
                           *domain_match("tls.sni", host), "flow:to_server")
             for p, port in enumerate(CONTROL_PLANE_PORTS) for slot, source, host, what in named]
    group = _rules_group(layout, CONTROL_PLANE, f"Passes TLS to the Databricks control plane {cidr}, by SNI", rules)
    slots = ports * (2 + len(layout.spokes))
    return RuleGroupDesign(group.role, group.priority, group.description, group.rule_group, slots)


def workspace_hosts(layout: Layout, urls: Mapping[str, str | None]) -> dict[str, str]:
    """Spoke name -> workspace host, from each spoke's recorded workspace URL (spokes of the layout only)."""
    return {s.name: workspace_host(str(urls[s.name])) for s in layout.spokes if urls.get(s.name)}


def missing_workspace_hosts(wanted: Mapping[str, Any], live: Mapping[str, Any] | None,
                            hosts: Mapping[str, str]) -> dict[str, str]:
    """The spokes (-> host) whose workspace rules in the `wanted` control-plane group are not all in `live`."""
    have = set(rules_of(live))
    return {spoke: host for spoke, host in hosts.items()
            if any(rule not in have for rule in rules_of(wanted) if f'msg:"{_workspace_rule_msg(spoke)}' in rule)}


def _workspace_rule_msg(spoke: str) -> str:
    """How a spoke's workspace rules begin their message (followed by the port)."""
    return f"Databricks control plane, workspace of spoke {spoke}, "


def metastore_group(layout: Layout, addresses: Sequence[str]) -> RuleGroupDesign:
    host = layout.region.legacy_metastore_host
    rules = [
        suricata_rule("pass", f"tcp $HOME_NET any -> {address}/32 {METASTORE_PORT}",
                      f"Legacy Hive metastore {host}", 3001 + i, "flow:to_server")
        for i, address in enumerate(metastore_addresses(addresses))
    ]
    rules.append(suricata_rule("drop", f"tcp $HOME_NET any -> any {METASTORE_PORT}",
                               "MySQL to anything but the legacy Hive metastore", 3999, "flow:to_server"))
    group = _rules_group(layout, METASTORE, f"Passes TCP {METASTORE_PORT} to {host} only", rules)
    slots = max(len(rules) - 1, METASTORE_ADDRESS_SLOTS) + 1
    return RuleGroupDesign(group.role, group.priority, group.description, group.rule_group, slots)


def allowlist_group(config: Config, layout: Layout) -> RuleGroupDesign:
    targets = firewall_fqdns(config, layout)
    source = {"RulesSourceList": {"Targets": list(targets), "TargetTypes": list(TARGET_TYPES),
                                  "GeneratedRulesType": "ALLOWLIST"}}
    return RuleGroupDesign(
        role=ALLOWLIST,
        priority=PRIORITIES[ALLOWLIST],
        description="Passes TLS and HTTP to the Databricks control plane, the root buckets and allowed domains",
        rule_group=_group(layout, source),
        # AWS generates one rule per domain and target type, and for an allowlist one more per target type: the
        # drop of every other TLS (or HTTP) flow.
        needed_capacity=(len(targets) + 1) * len(TARGET_TYPES),
    )


def domain_match(keyword: str, domain: str) -> tuple[str, ...]:
    """The Suricata options matching `domain` in a sticky buffer (`tls.sni`, `http.host`) as AWS's generated
    domain-list rules do: `.example.com` matches example.com and every subdomain (dotprefix), anything else
    matches exactly. The TLS SNI is matched without case; Suricata keeps `http.host` lowercase and refuses a rule
    that adds `nocase` to it (so AWS refuses the rule group), as AWS's own HTTP_HOST rules leave it out."""
    case = () if keyword == "http.host" else ("nocase",)
    if domain.startswith("."):
        return (keyword, "dotprefix", f'content:"{domain}"', *case, "endswith")
    return (keyword, f'content:"{domain}"', "startswith", *case, "endswith")


SPOKE_SID_BASE = 5000


def spoke_allowlist_group(config: Config, layout: Layout) -> RuleGroupDesign:
    """PASS TLS (by SNI) and HTTP (by Host) to each spoke's own domains, from that spoke's CIDR only."""
    cidrs = {s.name: s.cidrs.vpc for s in layout.spokes}
    rules: list[str] = []
    for spoke, domains in spoke_fqdns(config).items():
        for domain in domains:
            for proto, keyword in (("tls", "tls.sni"), ("http", "http.host")):
                sid = SPOKE_SID_BASE + len(rules) + 1
                rules.append(suricata_rule("pass", f"{proto} {cidrs[spoke]} any -> any any",
                                           f"spoke {spoke} may reach {domain}", sid,
                                           *domain_match(keyword, domain), "flow:to_server, established"))
    return _rules_group(layout, SPOKE_ALLOWLIST, "Passes TLS and HTTP to domains allowed for one spoke only", rules)


def extra_passes(wanted: Mapping[str, Any], live: Mapping[str, Any] | None) -> list[str]:
    """The pass rules `live` has and `wanted` does not: what a changed group lets through beyond the design."""
    designed = {" ".join(rule.split()) for rule in rules_of(wanted)}
    return [rule for rule in rules_of(live) if rule.split(None, 1)[0] == "pass" and " ".join(rule.split()) not in
            designed]


# Options that say something about a rule, not about what it matches.
_INFORMATIONAL_OPTIONS = ("msg", "sid", "rev", "classtype", "metadata", "reference", "priority", "gid")


def _reaches(destination: str, rng: ipaddress.IPv4Network, variables: Mapping[str, Any]) -> bool:
    """Whether a rule's destination may include an address of `rng`: `any`, `$EXTERNAL_NET`, a negation or an
    unknown variable may; `$HOME_NET` (the spokes) does not; CIDRs and defined variables by overlap."""
    for item in destination.strip("[]").split(","):
        item = item.strip()
        if item == "$HOME_NET":
            continue
        if item.startswith("$"):
            definition = (variables.get(item[1:]) or {}).get("Definition")
            if definition is None or _reaches(",".join(definition), rng, {}):
                return True
            continue
        try:
            if item == "any" or item.startswith("!") or ipaddress.ip_network(item, strict=False).overlaps(rng):
                return True
        except ValueError:
            return True  # not an address we can read: it may
    return False


def _closes(parts: list[str], rng: ipaddress.IPv4Network) -> bool:
    """An unconditional drop (or reject) of every IP flow from the spokes to the whole of `rng`."""
    action, proto, source, source_port, _, destination, port = parts[:7]
    try:
        covers = destination == "any" or ipaddress.IPv4Network(destination, strict=False).supernet_of(rng)
    except ValueError:
        covers = False
    options = [o.strip().split(":", 1)[0] for o in re.sub(r'"(?:[^"\\]|\\.)*"', '""', " ".join(parts[7:]))
               .strip("() ").split(";") if o.strip()]
    return (action in ("drop", "reject") and proto == "ip" and source in ("$HOME_NET", "any")
            and source_port == port == "any" and covers and all(o in _INFORMATIONAL_OPTIONS for o in options))


def passes_to_range(rule_groups: Sequence[Mapping[str, Any]], cidr: str) -> list[str]:
    """What could pass a flow from the spokes to `cidr`, the groups given in evaluation order (as the STRICT_ORDER
    policy runs them): each pass rule whose destination may lie in it (`any`, `$EXTERNAL_NET`, a negation or an
    overlapping CIDR) and each domain allowlist, whose generated pass rules go to any address, up to the first
    unconditional drop of the whole range (`drop ip $HOME_NET any -> <range> any`): nothing after it can reach
    the range. What `status` reports when the firewall should pass nothing there (back-end PrivateLink)."""
    rng = ipaddress.IPv4Network(cidr)
    found = []
    for group in rule_groups:
        source = group.get("RulesSource") or {}
        domains = source.get("RulesSourceList") or {}
        if domains.get("GeneratedRulesType") == "ALLOWLIST":
            found.append(f"the domain allowlist ({', '.join(domains.get('TargetTypes') or [])}) passes "
                         f"{len(domains.get('Targets') or [])} names to any address")
            continue
        variables = (group.get("RuleVariables") or {}).get("IPSets") or {}
        for line in rules_of(group):
            parts = line.split()
            if len(parts) < 7:
                continue
            if _closes(parts, rng):
                return found
            if parts[0] == "pass" and _reaches(parts[5], rng, variables):
                found.append(line)
    return found


def rule_group_roles(config: Config) -> tuple[str, ...]:
    """The groups a deployment has, in evaluation order."""
    roles = (DENY, CONTROL_PLANE, METASTORE, SPOKE_ALLOWLIST, ALLOWLIST)
    has_spoke_domains = any(spoke_fqdns(config).values())
    # With back-end PrivateLink the workspace API and the relay are reached through the spoke's interface
    # endpoints: nothing passes to the control-plane range.
    return tuple(r for r in roles if (r != METASTORE or config.legacy_hive_metastore)
                 and (r != SPOKE_ALLOWLIST or has_spoke_domains) and (r != CONTROL_PLANE or not config.private_link))


def rule_group(config: Config, layout: Layout, role: str, addresses: Sequence[str] = (),
               workspace_hosts: Mapping[str, str] | None = None) -> RuleGroupDesign:
    """One group by role; `addresses` are the metastore's resolved addresses (metastore group only);
    `workspace_hosts` the spokes' workspace hosts known so far (control-plane group only: `control_plane_group`)."""
    if role == DENY:
        return deny_group(layout, config.private_link)
    if role == CONTROL_PLANE:
        return control_plane_group(layout, workspace_hosts or {})
    if role == METASTORE:
        return metastore_group(layout, addresses)
    if role == ALLOWLIST:
        return allowlist_group(config, layout)
    if role == SPOKE_ALLOWLIST:
        return spoke_allowlist_group(config, layout)
    raise ValueError(f"unknown rule group role {role!r}")


# -- policy -----------------------------------------------------------------------------------------------------


def firewall_policy(layout: Layout, references: Mapping[str, str]) -> dict[str, Any]:
    """The `FirewallPolicy` document; `references` maps each group's role to its ARN."""
    return {
        "StatelessDefaultActions": [STATELESS_DEFAULT_ACTION],
        "StatelessFragmentDefaultActions": [STATELESS_DEFAULT_ACTION],
        "StatefulRuleGroupReferences": [
            {"ResourceArn": arn, "Priority": PRIORITIES[role]}
            for role, arn in sorted(references.items(), key=lambda item: PRIORITIES[item[0]])
        ],
        "StatefulDefaultActions": list(STATEFUL_DEFAULT_ACTIONS),
        "StatefulEngineOptions": {"RuleOrder": RULE_ORDER, "StreamExceptionPolicy": STREAM_EXCEPTION_POLICY},
        # The policy-wide HOME_NET; each group also carries its own copy, so a group read alone says what it means.
        "PolicyVariables": {"RuleVariables": {"HOME_NET": {"Definition": list(home_net(layout))}}},
    }


# -- logging ----------------------------------------------------------------------------------------------------


def log_destinations(log_groups: Mapping[str, str]) -> list[dict[str, Any]]:
    """`LogDestinationConfigs` sending each log type (ALERT, FLOW) to its CloudWatch log group."""
    return [
        {"LogType": log_type, "LogDestinationType": "CloudWatchLogs", "LogDestination": {"logGroup": group}}
        for log_type, group in sorted(log_groups.items(), key=lambda item: LOG_TYPES.index(item[0]))
    ]


def logging_changes(
    live: Sequence[Mapping[str, Any]], wanted: Sequence[Mapping[str, Any]]
) -> list[list[dict[str, Any]]]:
    """The successive `LogDestinationConfigs` that take `live` to `wanted`, one destination change per call.

    AWS refuses an UpdateLoggingConfiguration that adds, removes or changes more than one destination
    (https://docs.aws.amazon.com/network-firewall/latest/APIReference/API_UpdateLoggingConfiguration.html),
    and a destination's type cannot change in place: that is a removal, then an addition.
    """
    current = [dict(c) for c in live]
    calls: list[list[dict[str, Any]]] = []

    def step(new: list[dict[str, Any]]) -> None:
        nonlocal current
        current = new
        calls.append([dict(c) for c in new])

    wanted_by_type = {c["LogType"]: dict(c) for c in wanted}
    for config in list(current):
        want = wanted_by_type.get(config["LogType"])
        if want is None or want["LogDestinationType"] != config["LogDestinationType"]:
            step([c for c in current if c["LogType"] != config["LogType"]])
    for log_type, want in wanted_by_type.items():
        have = next((c for c in current if c["LogType"] == log_type), None)
        if have is None:
            step([*current, want])
        elif have != want:
            step([want if c["LogType"] == log_type else c for c in current])
    return calls


# -- routes -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FirewallRoute:
    """A route the firewall family makes in a hub route table (step key `table`): to the firewall endpoint of
    `az`, or (`target_kind` internet-gateway) the NAT subnet's way out, which must wait for the endpoint."""

    az: str
    table: str
    destination: str
    target_kind: str

    @property
    def to_endpoint(self) -> bool:
        return self.target_kind == routes.FIREWALL_ENDPOINT


def firewall_routes(layout: Layout, az: str) -> tuple[FirewallRoute, ...]:
    """The firewall's routes for one AZ, in the order they are made (and the reverse, removed):

    1. TGW subnet `0/0 -> endpoint`: from here on every spoke flow is inspected before it reaches the NAT;
    2. NAT subnet `spoke CIDRs -> endpoint`: replies pass the same endpoint on their way back;
    3. NAT subnet `0/0 -> IGW`: only now may the NAT reach the internet.

    Converting a NAT-before-firewall deployment in this order never opens a way around the firewall: the NAT
    subnet's default route leaves the endpoint for the IGW only after the TGW subnet sends nothing to the NAT."""
    tables = (routes.route_table(layout, routes.hub_key("tgw-subnet-route-table", az)),
              routes.route_table(layout, routes.hub_key("nat-subnet-route-table", az)))
    found = [FirewallRoute(az, table.key, route.destination, route.target_kind)
             for table in tables for route in table.routes_of(routes.FIREWALL)]
    return tuple(sorted(found, key=lambda r: (not r.to_endpoint, r.table != tables[0].key)))


# -- comparing with what AWS returns ----------------------------------------------------------------------------


def _canonical(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        # Every list in these documents is a set (domains, CIDRs, actions, references keyed by ARN/priority).
        return sorted((_canonical(v) for v in value), key=lambda v: json.dumps(v, sort_keys=True, default=str))
    return value


def differences(wanted: Any, live: Any, path: str = "") -> list[str]:
    """Where `live` differs from `wanted`, as dotted paths. Keys only `live` has are ignored: AWS fills in
    defaults (flow timeouts, encryption...) that the documents here leave out."""
    if isinstance(wanted, Mapping):
        if not isinstance(live, Mapping):
            return [path or "."]
        found: list[str] = []
        for key, value in wanted.items():
            found += differences(value, live.get(key), f"{path}.{key}" if path else str(key))
        return found
    if isinstance(wanted, list | tuple):
        if not isinstance(live, list | tuple) or _canonical(list(wanted)) != _canonical(list(live)):
            return [path or "."]
        return []
    return [] if wanted == live else [path or "."]
