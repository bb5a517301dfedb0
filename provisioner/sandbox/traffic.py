"""Simulated flows through the sandbox's firewall (`provision sandbox traffic`), logged as AWS logs them.

The sandbox moves no packets. This plays the data plane the sandbox lacks, from what its control plane holds: for
each flow from a spoke it reads back, through the sandbox's AWS APIs, what `provision egress check` reads (the
firewall policy and rule groups, the spoke's DNS Firewall rules, the routes) and decides the flow with the same
code (`egress_live.check`, `design.evaluate`). Then it writes what AWS would log, with PutLogEvents, into the log
groups the firewall's logging configuration and the spoke's Resolver query logging name:

- for a name, the DNS query: a Route 53 Resolver query log record (the answer is an address of 198.51.100.0/24,
  TEST-NET-2, derived from the name; NXDOMAIN and no flow when the DNS Firewall blocks it);
- for a flow that reaches the firewall: FLOW records (EVE `netflow`, one per direction seen) and ALERT records
  (EVE `alert`) for the rule or default action that dropped it (`alert.action` "blocked") and for alert rules
  it met ("allowed" when it passed).

The client's address is a host of one of the spoke's workspace subnets; the hub AZ is one the routes lead to
(the Transit Gateway's choice, by flow). Nothing is logged for a flow that never reaches the firewall (no route,
or a route around it), and firewall logs only where logging is configured.
"""

from __future__ import annotations

import ipaddress
import json
import random
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from provisioner.aws.errors import error_code, translate
from provisioner.design import evaluate as ev
from provisioner.design.dns_firewall import query_log_group_name
from provisioner.design.firewall import log_group_name
from provisioner.egress_live import Live, PathCheck, SpokeCheck, Target, check

if TYPE_CHECKING:
    from provisioner.context import Context

# Where the sandbox's names resolve: TEST-NET-2 (RFC 5737), never routable and named by no rule.
ANSWER_NETWORK = ipaddress.IPv4Network("198.51.100.0/24")
SANDBOX_INSTANCE_PREFIX = "i-0sandbox"
_PROTO = {"tls": "TCP", "http": "TCP", "tcp": "TCP", "udp": "UDP", "icmp": "ICMP"}
# What AWS's default actions put in an ALERT record: no rule of yours matched.
DEFAULT_ACTION_SIGNATURE_ID = 2


def sandbox_answer(name: str) -> str:
    """The address the sandbox's resolver gives a name: the same every time."""
    return str(ANSWER_NETWORK.network_address + 1 + zlib.crc32(name.encode()) % 254)


@dataclass
class Sent:
    """One simulated flow and what became of it."""

    spoke: str
    target: Target
    source: str = ""
    address: str | None = None
    dns: ev.DnsVerdict | None = None
    verdict: str = ev.DROP
    reason: str = ""
    hub_az: str | None = None
    logged: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"spoke": self.spoke, "target": self.target.label, "protocol": self.target.protocol,
                "source": self.source, "address": self.address, "dns": self.dns.action if self.dns else None,
                "verdict": self.verdict, "reason": self.reason, "hub_az": self.hub_az, "logged": self.logged}


@dataclass
class _Batch:
    """Log events per (group, stream), written together at the end."""

    events: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)

    def add(self, group: str, stream: str, timestamp_ms: int, record: dict[str, Any]) -> None:
        self.events.setdefault((group, stream), []).append({"timestamp": timestamp_ms,
                                                             "message": json.dumps(record, separators=(",", ":"))})

    def write(self, logs: Any) -> None:
        for (group, stream), events in self.events.items():
            try:
                logs.create_log_stream(logGroupName=group, logStreamName=stream)
            except ClientError as e:
                if error_code(e) != "ResourceAlreadyExistsException":
                    raise
            ordered = sorted(events, key=lambda e: e["timestamp"])
            for i in range(0, len(ordered), 10_000):  # PutLogEvents takes at most 10,000 events a call
                logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=ordered[i:i + 10_000])


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+0000")


def logging_groups(ctx: Context, firewall_arn: str) -> dict[str, str]:
    """The firewall's CloudWatch log groups by log type (ALERT, FLOW), as its logging configuration has them."""
    got = ctx.aws.network_firewall.describe_logging_configuration(FirewallArn=firewall_arn)
    configs = (got.get("LoggingConfiguration") or {}).get("LogDestinationConfigs") or []
    return {c["LogType"]: c["LogDestination"]["logGroup"] for c in configs
            if c.get("LogDestinationType") == "CloudWatchLogs" and (c.get("LogDestination") or {}).get("logGroup")}


def query_log_group(ctx: Context, vpc_id: str) -> tuple[str, str] | None:
    """(log group, query logging configuration ID) the VPC's Resolver queries are logged to, if any."""
    r53 = ctx.aws.route53resolver
    associations = r53.list_resolver_query_log_config_associations(
        Filters=[{"Name": "ResourceId", "Values": [vpc_id]}])["ResolverQueryLogConfigAssociations"]
    for association in associations:
        if association.get("Status") in ("DELETING", "FAILED"):
            continue
        config = r53.get_resolver_query_log_config(
            ResolverQueryLogConfigId=association["ResolverQueryLogConfigId"])["ResolverQueryLogConfig"]
        destination = str(config.get("DestinationArn", ""))
        if ":log-group:" in destination:
            return destination.split(":log-group:", 1)[1].removesuffix(":*"), config["Id"]
    return None


def _pick(options: Sequence[PathCheck], rng: random.Random) -> PathCheck | None:
    return rng.choice(list(options)) if options else None


def send(ctx: Context, live: Live, flows: Sequence[tuple[str, Target]], rng: random.Random | None = None,
         now: float | None = None) -> list[Sent]:
    """Decide each (spoke, target) flow and log it as AWS would; return what became of each."""
    rng = rng or random.Random()
    start = time.time() if now is None else now
    batch = _Batch()
    region = ctx.config.region
    account = ctx.aws.account_id()
    with translate("read the sandbox firewall's logging configuration"):
        groups = logging_groups(ctx, live.firewall.arn)
        query_groups = {name: query_log_group(ctx, net.vpc_id) for name, net in live.spokes.items()}
    results = []
    for i, (spoke, target) in enumerate(flows):
        moment = start + i * 0.001
        net = live.spokes[spoke]
        subnet = rng.choice(list(net.workspace_subnets))
        network = ipaddress.IPv4Network(subnet.cidr)
        client = str(network.network_address + 4 + rng.randrange(max(1, min(network.num_addresses - 5, 250))))
        sent = Sent(spoke, target, client)
        address = target.address or (sandbox_answer(target.host) if target.host else None)
        resolved = Target(target.host, address, target.protocol, target.port)
        checked: SpokeCheck = check(live, resolved, [spoke])[0]
        sent.dns = checked.dns
        if checked.dns is not None:
            _log_query(batch, query_groups.get(spoke), checked.dns, address, net.vpc_id, client, account, region,
                       moment, rng)
            if not checked.dns.resolves:
                sent.verdict, sent.reason = ev.DROP, f"not sent: DNS answered {checked.dns.rcode}"
                sent.logged.append("DNS query")
                results.append(sent)
                continue
            sent.logged.append("DNS query")
        sent.address = address
        from_subnet = [p for p in checked.paths if p.subnet.id == subnet.id] or checked.paths
        path = _pick([p for p in from_subnet if p.leaves], rng)
        if path is None:
            sent.verdict = ev.DROP
            reasons = {p.path.reason for p in from_subnet}
            sent.reason = f"not sent: no route to the internet ({'; '.join(sorted(reasons))})"
            results.append(sent)
            continue
        sent.hub_az = path.hub_az
        if path.firewall is None:
            sent.verdict, sent.reason = ev.PASS, "left without passing the firewall (nothing logged by it)"
            results.append(sent)
            continue
        flow = ev.Flow(target.protocol, client, target.port, target.flow(client).host, address)
        decision = ev.evaluate_flow(live.firewall.policy, flow).decision
        sent.verdict, sent.reason = decision.verdict, decision.describe()
        sent.logged += _log_flow(batch, groups, live.firewall.name, path.hub_az or "", flow, decision, moment, rng)
        results.append(sent)
    with translate("write the simulated flows to CloudWatch Logs"):
        batch.write(ctx.aws.logs)
    return results


def _log_query(batch: _Batch, where: tuple[str, str] | None, dns: ev.DnsVerdict, address: str | None, vpc_id: str,
               client: str, account: str, region: str, moment: float, rng: random.Random) -> None:
    if where is None:
        return
    group, config_id = where
    record: dict[str, Any] = {
        "version": "1.100000", "account_id": account, "region": region, "vpc_id": vpc_id,
        "query_timestamp": datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "query_name": dns.name + ".", "query_type": "A", "query_class": "IN", "rcode": dns.rcode,
        "answers": ([{"Rdata": address, "Type": "A", "Class": "IN"}] if dns.resolves and address else []),
        "srcaddr": client, "srcport": str(rng.randrange(32768, 61000)), "transport": "UDP",
        "srcids": {"instance": f"{SANDBOX_INSTANCE_PREFIX}{zlib.crc32(client.encode()):08x}"},
    }
    if dns.rule is not None:
        record.update({"firewall_rule_action": dns.action, "firewall_rule_group_id": dns.rule.group_id,
                       "firewall_domain_list_id": dns.rule.domain_list_id})
    batch.add(group, f"{vpc_id}_{config_id}", int(moment * 1000), record)


def _event(flow: ev.Flow, flow_id: int, moment: float, src_port: int, event_type: str,
           reply: bool = False) -> dict[str, Any]:
    client, server = (flow.source, src_port), (flow.address, flow.port)
    src, dst = (server, client) if reply else (client, server)
    event: dict[str, Any] = {"timestamp": _iso(moment), "flow_id": flow_id, "event_type": event_type,
                             "src_ip": src[0], "dest_ip": dst[0], "proto": _PROTO[flow.protocol]}
    if flow.protocol == "icmp":
        event.update({"icmp_type": 0 if reply else 8, "icmp_code": 0})
    else:
        event.update({"src_port": src[1], "dest_port": dst[1]})
    return event


def _log_flow(batch: _Batch, groups: dict[str, str], firewall: str, az: str, flow: ev.Flow, decision: ev.Decision,
              moment: float, rng: random.Random) -> list[str]:
    """ALERT and FLOW records for one flow; what was logged."""
    logged = []
    flow_id = rng.randrange(10**15, 10**16)
    src_port = rng.randrange(32768, 61000)
    # The application protocol is known once data flowed: not for a flow stopped at its handshake.
    app = flow.protocol if flow.protocol in ("tls", "http") and not decision.packet.startswith("handshake") else None

    def envelope(event: dict[str, Any]) -> dict[str, Any]:
        return {"firewall_name": firewall, "availability_zone": az, "event_timestamp": str(int(moment)),
                "event": event}

    alerts: list[tuple[str, int | None, str, str]] = []  # (action, sid, signature, category)
    final = "allowed" if decision.verdict == ev.PASS else "blocked"
    for rule in decision.alerts:
        alerts.append((final, rule.sid, rule.msg, ""))
    if decision.verdict == ev.DROP and decision.logged:
        if decision.rule is not None:
            alerts.append(("blocked", decision.rule.sid, decision.rule.msg or decision.rule.generated or "", ""))
        else:
            alerts.append(("blocked", DEFAULT_ACTION_SIGNATURE_ID, f"{decision.default_action} action", ""))
    elif decision.verdict == ev.PASS and decision.logged and decision.default_action:
        alerts.append(("allowed", DEFAULT_ACTION_SIGNATURE_ID, f"{decision.default_action} action", ""))
    if "ALERT" in groups:
        for action, sid, signature, category in alerts:
            event = _event(flow, flow_id, moment, src_port, "alert")
            if app:
                event["app_proto"] = app
                if app == "tls" and flow.host:
                    event["tls"] = {"sni": flow.host}
                if app == "http" and flow.host:
                    event["http"] = {"hostname": flow.host}
            event["alert"] = {"action": action, "signature_id": sid or 0, "rev": 1, "signature": signature,
                              "category": category, "severity": 3}
            batch.add(groups["ALERT"], f"{firewall}_alert_{az}", int(moment * 1000), envelope(event))
            logged.append(f"ALERT {action}")
    if "FLOW" in groups:
        # One netflow record per direction that carried packets: a flow dropped at its first packet has no reply.
        first = decision.verdict == ev.DROP and decision.packet in ("handshake (SYN)", "first datagram", "request")
        for reply in (False, True) if not first else (False,):
            event = _event(flow, flow_id, moment, src_port, "netflow", reply)
            if app:
                event["app_proto"] = app
            packets = 1 if first else rng.randrange(3, 12)
            event["netflow"] = {"pkts": packets, "bytes": packets * rng.randrange(60, 1400),
                                "start": _iso(moment), "end": _iso(moment + 0.05), "age": 0,
                                "min_ttl": 63, "max_ttl": 63}
            batch.add(groups["FLOW"], f"{firewall}_flow_{az}", int(moment * 1000), envelope(event))
            logged.append("FLOW")
    return logged


def default_log_groups(deployment: str) -> dict[str, str]:
    """Where provision points the logs (for messages)."""
    return {"ALERT": log_group_name(deployment, "ALERT"), "FLOW": log_group_name(deployment, "FLOW"),
            "queries": query_log_group_name(deployment)}
