"""What decides a flow from a spoke, read back from AWS, and the decision (`provision egress check`).

`read` asks AWS, not the config: the firewall (by its deterministic name, checked for this deployment's tags),
its policy and every rule group the policy references (DescribeFirewallPolicy, DescribeRuleGroup), each spoke's
DNS Firewall rules as associated with its VPC (the associations, their rule groups' rules, the domain lists'
domains), and the network the route walker needs (`egress.read_network`). IDs come from the state file, as for
`status`. `check` is pure: from what was read, per spoke, the DNS verdict, every path from the spoke's workspace
subnets (`egress.follow`), and the firewall's verdict on each path that reaches it (`design.evaluate`), with the
source address the firewall sees there (the cluster's own; a NAT gateway's, on a path that meets the NAT first).

`read_log_events` reads CloudWatch Logs (`egress blocked`).
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from provisioner import egress
from provisioner.aws.errors import CloudError, none_if_missing, translate
from provisioner.aws.paging import next_token_pages
from provisioner.design import evaluate as ev
from provisioner.design import firewall as fw_design
from provisioner.design.naming import is_owned, tag_map
from provisioner.steps import keys

if TYPE_CHECKING:
    from provisioner.context import Context

NOT_FOUND = ("ResourceNotFoundException",)
# AWS keeps the first four addresses of a subnet (network, router, DNS, future): the first a host can have is +4.
FIRST_HOST_OFFSET = 4


# -- what was read ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Subnet:
    id: str
    az: str
    cidr: str

    @property
    def first_host(self) -> str:
        return str(ipaddress.IPv4Network(self.cidr).network_address + FIRST_HOST_OFFSET)


@dataclass(frozen=True)
class SpokeNet:
    name: str
    vpc_id: str
    cidrs: tuple[str, ...]
    workspace_subnets: tuple[Subnet, ...]


@dataclass(frozen=True)
class FirewallInfo:
    name: str
    arn: str
    vpc_id: str
    endpoints: Mapping[str, str]  # AZ -> endpoint ID
    policy: ev.Policy


@dataclass
class Live:
    deployment: str
    firewall: FirewallInfo
    spokes: dict[str, SpokeNet]
    dns: dict[str, list[ev.DnsRule]]  # by spoke
    network: egress.NetworkData


def _recorded(ctx: Context, key: str, what: str) -> str:
    value = ctx.state.resource_id(key)
    if not value:
        raise CloudError(f"{what} of deployment {ctx.deployment} is not in the state file: nothing to check yet "
                         "(`provision up` builds it)")
    return str(value)


def read_firewall(ctx: Context) -> FirewallInfo:
    """The deployment's firewall, its policy and every rule group the policy references, as AWS has them."""
    nfw = ctx.aws.network_firewall
    name = fw_design.firewall_name(ctx.deployment)
    with translate(f"read network firewall {name}"):
        got = none_if_missing(NOT_FOUND, nfw.describe_firewall, FirewallName=name)
        if got is None:
            raise CloudError(f"network firewall {name} does not exist: nothing decides egress yet (`provision up` "
                             "builds it)")
        firewall = got["Firewall"]
        if not is_owned(tag_map(firewall.get("Tags")), ctx.deployment):
            raise CloudError(f"network firewall {name} is not tagged as part of deployment {ctx.deployment}; "
                             "provision does not read it")
        policy = nfw.describe_firewall_policy(FirewallPolicyArn=firewall["FirewallPolicyArn"])
        document = policy.get("FirewallPolicy") or {}

        def groups(member: str) -> tuple[ev.RuleGroup, ...]:
            found = []
            for ref in document.get(member) or []:
                group = nfw.describe_rule_group(RuleGroupArn=ref["ResourceArn"])
                found.append(ev.RuleGroup(group["RuleGroupResponse"]["RuleGroupName"], ref.get("Priority"),
                                          group.get("RuleGroup") or {}))
            return tuple(found)

        vpcs = ctx.aws.ec2.describe_vpcs(VpcIds=[firewall["VpcId"]])["Vpcs"]
    vpc_cidrs = tuple(a["CidrBlock"] for v in vpcs for a in v.get("CidrBlockAssociationSet") or
                      [{"CidrBlock": v["CidrBlock"]}])
    from provisioner.steps.firewall import endpoints_by_az

    return FirewallInfo(name, firewall["FirewallArn"], firewall["VpcId"], endpoints_by_az(got),
                        ev.Policy(policy["FirewallPolicyResponse"]["FirewallPolicyName"], document,
                                  groups("StatefulRuleGroupReferences"), groups("StatelessRuleGroupReferences"),
                                  vpc_cidrs))


def read_dns_rules(r53: Any, vpc_id: str) -> list[ev.DnsRule]:
    """Every DNS Firewall rule that applies to a VPC, with its domains (each list read once)."""
    names: dict[str, str] = {}
    domains: dict[str, tuple[str, ...]] = {}
    found = []
    for association in next_token_pages(r53.list_firewall_rule_group_associations,
                                        "FirewallRuleGroupAssociations", VpcId=vpc_id):
        if association.get("Status") == "DELETING":
            continue
        group_id = association["FirewallRuleGroupId"]
        group = r53.get_firewall_rule_group(FirewallRuleGroupId=group_id)["FirewallRuleGroup"]
        for rule in next_token_pages(r53.list_firewall_rules, "FirewallRules", FirewallRuleGroupId=group_id):
            list_id = rule["FirewallDomainListId"]
            if list_id not in domains:
                names[list_id] = r53.get_firewall_domain_list(FirewallDomainListId=list_id)["FirewallDomainList"][
                    "Name"]
                domains[list_id] = tuple(next_token_pages(r53.list_firewall_domains, "Domains",
                                                          FirewallDomainListId=list_id))
            found.append(ev.DnsRule(group.get("Name", group_id), group_id, int(association.get("Priority") or 0),
                                    int(rule.get("Priority") or 0), rule.get("Name", ""), rule["Action"],
                                    names[list_id], list_id, domains[list_id], rule.get("BlockResponse")))
    return found


def read_spoke(ctx: Context, name: str) -> SpokeNet:
    spoke = next(s for s in ctx.layout.spokes if s.name == name)
    vpc_id = _recorded(ctx, keys.spoke(name, "vpc"), f"the VPC of spoke {name}")
    subnet_ids = [_recorded(ctx, keys.spoke(name, "workspace-subnet", az), f"spoke {name}'s workspace subnet in {az}")
                  for az in spoke.azs]
    with translate(f"read spoke {name}'s VPC and workspace subnets"):
        vpcs = ctx.aws.ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"]
        subnets = ctx.aws.ec2.describe_subnets(SubnetIds=subnet_ids)["Subnets"]
    cidrs = tuple(a["CidrBlock"] for v in vpcs for a in v.get("CidrBlockAssociationSet") or
                  [{"CidrBlock": v["CidrBlock"]}])
    by_id = {s["SubnetId"]: Subnet(s["SubnetId"], s["AvailabilityZone"], s["CidrBlock"]) for s in subnets}
    return SpokeNet(name, vpc_id, cidrs, tuple(by_id[i] for i in subnet_ids if i in by_id))


def read(ctx: Context, spokes: Sequence[str], dns: bool = True) -> Live:
    """Everything `check` needs for these spokes; the network for every spoke (routes may lead anywhere)."""
    firewall = read_firewall(ctx)
    nets = {name: read_spoke(ctx, name) for name in spokes}
    rules: dict[str, list[ev.DnsRule]] = {}
    if dns:
        with translate("read the DNS Firewall rules of the spokes"):
            rules = {name: read_dns_rules(ctx.aws.route53resolver, net.vpc_id) for name, net in nets.items()}
    vpcs = [_recorded(ctx, keys.hub("vpc"), "the hub VPC")]
    vpcs += [v for s in ctx.layout.spokes if (v := ctx.state.resource_id(keys.spoke(s.name, "vpc")))]
    with translate("read the network to follow the flow"):
        network = egress.read_network(ctx.aws.ec2, vpcs, ctx.state.resource_id(keys.hub("transit-gateway")))
    return Live(ctx.deployment, firewall, nets, rules, network)


# -- the decision -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """What the flow is to: a name (`host`) or an address, the protocol and the port; `address` is given with a
    name when the user knows what it resolves to."""

    host: str | None
    address: str | None
    protocol: str
    port: int | None

    @property
    def label(self) -> str:
        where = self.host or self.address or "?"
        return where if self.port is None else f"{where}:{self.port}"

    def flow(self, source: str) -> ev.Flow:
        # A client names the host it connects to as SNI and Host; to an address it sends no SNI, and the
        # address as Host.
        sent = self.host if self.host else (self.address if self.protocol == "http" else None)
        return ev.Flow(self.protocol, source, self.port, sent, self.address)


@dataclass
class PathCheck:
    subnet: Subnet
    path: egress.Path
    firewall_source: str | None = None
    firewall: ev.FirewallVerdict | None = None

    @property
    def leaves(self) -> bool:
        return self.path.end == egress.INTERNET

    @property
    def inspected(self) -> bool:
        return bool(self.path.of(egress.FIREWALL_ENDPOINT))

    @property
    def hub_az(self) -> str | None:
        endpoints = self.path.of(egress.FIREWALL_ENDPOINT) or self.path.of(egress.NAT_GATEWAY)
        return endpoints[0].az if endpoints else None

    @property
    def verdict(self) -> str:
        if not self.leaves:
            return ev.DROP
        if self.firewall is None:
            return ev.PASS  # reaches the internet gateway without meeting the firewall
        return self.firewall.verdict

    def summary(self) -> str:
        endpoints = self.path.of(egress.FIREWALL_ENDPOINT)
        nats = self.path.of(egress.NAT_GATEWAY)
        hops = []
        for hop in self.path.hops:
            if hop.kind == egress.FIREWALL_ENDPOINT:
                hops.append(f"firewall endpoint {hop.id} ({hop.az})")
            elif hop.kind == egress.NAT_GATEWAY:
                hops.append(f"NAT {hop.id}")
            elif hop.kind == egress.INTERNET_GATEWAY:
                hops.append(hop.id)
            elif hop.kind == egress.TRANSIT_GATEWAY:
                hops.append("TGW")
        line = " -> ".join([f"workspace subnet ({self.subnet.az})", *hops])
        if not self.leaves:
            return f"{line}: stops ({self.path.reason})"
        if not endpoints:
            return f"{line} -> internet, WITHOUT passing the firewall"
        if nats and self.path.hops.index(nats[0]) < self.path.hops.index(endpoints[0]):
            return f"{line} -> internet (the firewall sees the NAT's address {self.firewall_source})"
        return f"{line} -> internet"

    def as_dict(self) -> dict[str, Any]:
        return {"subnet": self.subnet.id, "az": self.subnet.az, "hub_az": self.hub_az, "leaves": self.leaves,
                "inspected": self.inspected, "firewall_source": self.firewall_source, "route": self.summary(),
                "hops": [str(h) for h in self.path.hops], "end": self.path.end, "reason": self.path.reason,
                "firewall": self.firewall.as_dict() if self.firewall else None}


@dataclass
class SpokeCheck:
    spoke: str
    target: Target
    source: str
    dns: ev.DnsVerdict | None
    paths: list[PathCheck] = field(default_factory=list)

    @property
    def firewall(self) -> ev.FirewallVerdict | None:
        """The firewall's verdict on the first path that meets it (every path meets the same policy)."""
        return next((p.firewall for p in self.paths if p.firewall is not None), None)

    @property
    def verdict(self) -> str:
        leaving = [p for p in self.paths if p.leaves]
        if self.dns is not None and not self.dns.resolves:
            return ev.DROP
        if not leaving:
            return ev.DROP
        verdicts = {p.verdict for p in leaving}
        if ev.PASS in verdicts:
            return ev.PASS
        return ev.UNKNOWN if ev.UNKNOWN in verdicts else ev.DROP

    def reasons(self) -> list[str]:
        """Why, in a few words each."""
        found = []
        if self.dns is not None and not self.dns.resolves:
            found.append(f"DNS answers {self.dns.rcode} for {self.dns.name}")
        leaving = [p for p in self.paths if p.leaves]
        if not leaving:
            found.append("no route reaches the internet")
        if any(not p.inspected for p in leaving):
            found.append("a route reaches the internet without the firewall")
        firewall = self.firewall
        if firewall is not None:
            found.append(f"the firewall: {firewall.decision.describe()}")
        verdicts = {p.verdict for p in leaving}
        if len(verdicts) > 1:
            found.append("the verdict depends on the hub AZ the Transit Gateway picks: "
                         + "; ".join(f"{p.hub_az}: {p.verdict}" for p in leaving))
        return found

    def as_dict(self) -> dict[str, Any]:
        dns = None
        if self.dns is not None:
            rule = self.dns.rule
            dns = {"name": self.dns.name, "action": self.dns.action, "rcode": self.dns.rcode, "entry": self.dns.entry,
                   "rule": None if rule is None else {
                       "name": rule.name, "priority": rule.priority, "group": rule.group, "group_id": rule.group_id,
                       "association_priority": rule.association_priority, "domain_list": rule.domain_list,
                       "domain_list_id": rule.domain_list_id, "block_response": rule.block_response},
                   "summary": self.dns.describe()}
        firewall = self.firewall
        return {"spoke": self.spoke, "source": self.source, "verdict": self.verdict, "reasons": self.reasons(),
                "dns": dns, "routes": [p.as_dict() for p in self.paths],
                "firewall": firewall.as_dict() if firewall else None}


def _nat_address(data: egress.NetworkData, nat_id: str) -> str | None:
    for nat in data.nat_gateways:
        if nat.get("NatGatewayId") == nat_id:
            for address in nat.get("NatGatewayAddresses") or []:
                if address.get("PrivateIp"):
                    return str(address["PrivateIp"])
    return None


def check(live: Live, target: Target, spokes: Sequence[str]) -> list[SpokeCheck]:
    """Per spoke: the DNS verdict (for a name), each path out of its workspace subnets, and the firewall's verdict
    on each path that meets it; pure."""
    destination = f"{target.address}/32" if target.address else egress.ANYWHERE
    verdicts: dict[str, ev.FirewallVerdict] = {}
    found = []
    for name in spokes:
        net = live.spokes[name]
        dns = ev.evaluate_dns(live.dns.get(name, []), target.host) if target.host else None
        result = SpokeCheck(name, target, net.workspace_subnets[0].first_host if net.workspace_subnets else "", dns)
        for subnet in net.workspace_subnets:
            for path in egress.follow(live.network, subnet.id, destination):
                checked = PathCheck(subnet, path)
                if checked.leaves and checked.inspected:
                    endpoint = path.hops.index(path.of(egress.FIREWALL_ENDPOINT)[0])
                    nats = [h for h in path.hops[:endpoint] if h.kind == egress.NAT_GATEWAY]
                    source = (_nat_address(live.network, nats[0].id) if nats else None) or subnet.first_host
                    if source not in verdicts:
                        verdicts[source] = ev.evaluate_flow(live.firewall.policy, target.flow(source))
                    checked.firewall_source, checked.firewall = source, verdicts[source]
                result.paths.append(checked)
        found.append(result)
    return found


# -- CloudWatch Logs ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LogEvent:
    group: str
    timestamp_ms: int
    message: Mapping[str, Any]


def read_log_events(logs: Any, group: str, start_ms: int, end_ms: int | None = None,
                    progress: Callable[[int, int], None] | None = None) -> list[LogEvent]:
    """Every event of a log group since `start_ms` (FilterLogEvents, page by page; `progress(pages, events)`
    after each page). A group that does not exist has no events; a message that is not JSON is skipped."""
    found: list[LogEvent] = []
    params: dict[str, Any] = {"logGroupName": group, "startTime": start_ms}
    if end_ms is not None:
        params["endTime"] = end_ms
    pages = 0
    token = None
    with translate(f"read the log group {group}"):
        while True:
            page = none_if_missing(NOT_FOUND, logs.filter_log_events, **params, **({"nextToken": token} if token
                                                                                  else {}))
            if page is None:
                return found
            pages += 1
            for event in page.get("events") or []:
                try:
                    message = json.loads(event.get("message") or "")
                except ValueError:
                    continue
                if isinstance(message, dict):
                    found.append(LogEvent(group, int(event.get("timestamp") or 0), message))
            if progress is not None:
                progress(pages, len(found))
            next_token = page.get("nextToken")
            if not next_token or next_token == token:
                return found
            token = next_token
