"""DNS Firewall, Resolver query logging and VPC flow logs end to end, read back with plain boto3.

Two spokes over two hub AZs: every spoke VPC has the rule group associated (mutation protection on, failing
closed), its queries logged, and every VPC (hub included) its flow log. `status` notices each property broken
out of band and `up` repairs it; the `alert` and `off` modes change what they should and nothing else.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from provisioner import steps
from provisioner.design import dns_firewall as design
from provisioner.design.config import build_config, parse_toml
from provisioner.design.layout import layout
from provisioner.steps import dns_firewall, firewall, flow_logs, hub_network, spoke_network, transit_gateway
from tests.conftest import client, config_text, live_tagged

SPOKES = (("sales", "10.20.0.0/16"), ("finance", "10.30.0.0/16"))


@pytest.fixture
def aws_families(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(steps, "FAMILIES", (hub_network, transit_gateway, spoke_network, firewall, dns_firewall,
                                            flow_logs))


def _ids(workdir: Any, deployment: str) -> dict[str, str]:
    doc = json.loads((workdir.path / "state" / f"{deployment}.json").read_text())
    return {key: entry["id"] for key, entry in doc["resources"].items()}


def _pages(call: Any, result: str, **params: Any) -> list[Any]:
    found, token = [], None
    while True:
        page = call(**params, **({"NextToken": token} if token else {}))
        found += page.get(result) or []
        token = page.get("NextToken")
        if not token:
            return found


def _own_lists(r53: Any) -> list[dict[str, Any]]:
    """The account's domain lists but AWS's managed ones (every account lists those)."""
    return [d for d in _pages(r53.list_firewall_domain_lists, "FirewallDomainLists") if not d.get("ManagedOwnerName")]


def _rules(r53: Any, group_id: str) -> list[dict[str, Any]]:
    return sorted(_pages(r53.list_firewall_rules, "FirewallRules", FirewallRuleGroupId=group_id),
                  key=lambda r: r["Priority"])


def _status(workdir: Any) -> tuple[int, dict[str, dict[str, Any]]]:
    result = workdir.run("status", "--json")
    return result.code, {item["key"]: item for item in json.loads(result.out)["resources"]}


def test_dns_firewall_query_logs_and_flow_logs(aws, workdir, aws_families):
    deployment = "dnsfw"
    text = config_text(deployment, spokes=SPOKES, hub_azs=2,
                       extra='[firewall]\nextra_allowed_fqdns = ["pypi.org", ".example.org"]\n')
    config = build_config(parse_toml(text, "test"))
    workdir.write_config(text)
    assert workdir.run("up").code == 0
    ids = _ids(workdir, deployment)
    r53, ec2, iam, logs = client("route53resolver"), client("ec2"), client("iam"), client("logs")

    # The lists: every allowed name (leading dot: the domain and its subdomains), and "*" to block.
    lists = {d["Name"]: d for d in _own_lists(r53)}
    allowed_id = lists[design.domain_list_name(deployment, design.ALLOWED)]["Id"]
    allowed = set(_pages(r53.list_firewall_domains, "Domains", FirewallDomainListId=allowed_id))
    lay = layout(config)
    assert {"pypi.org", "example.org", "*.example.org", lay.region.webapp, lay.region.scc_relay,
            f"sts.{lay.region.name}.amazonaws.com", "*.cloud.databricks.com"} <= allowed
    assert "*.pypi.org" not in allowed
    blocked_id = lists[design.domain_list_name(deployment, design.BLOCKED)]["Id"]
    assert _pages(r53.list_firewall_domains, "Domains", FirewallDomainListId=blocked_id) == ["*"]

    group_id = ids["hub/dns-firewall/rule-group"]
    rules = _rules(r53, group_id)
    assert [(r["Priority"], r["Action"], r["FirewallDomainListId"]) for r in rules] == [
        (100, "ALLOW", allowed_id), (200, "BLOCK", blocked_id)]
    assert rules[1]["BlockResponse"] == "NXDOMAIN"

    log_config = r53.get_resolver_query_log_config(ResolverQueryLogConfigId=ids["hub/dns-query-logging"])
    assert log_config["ResolverQueryLogConfig"]["DestinationArn"].endswith(design.query_log_group_name(deployment))
    for spoke, _ in SPOKES:
        vpc = ids[f"spoke/{spoke}/vpc"]
        associations = _pages(r53.list_firewall_rule_group_associations, "FirewallRuleGroupAssociations",
                              VpcId=vpc)
        assert [(a["FirewallRuleGroupId"], a["MutationProtection"]) for a in associations] == [(group_id, "ENABLED")]
        assert r53.get_firewall_config(ResourceId=vpc)["FirewallConfig"]["FirewallFailOpen"] == "DISABLED"
        logged = _pages(r53.list_resolver_query_log_config_associations, "ResolverQueryLogConfigAssociations",
                        Filters=[{"Name": "ResourceId", "Values": [vpc]}])
        assert [a["ResolverQueryLogConfigId"] for a in logged] == [ids["hub/dns-query-logging"]]

    # Flow logs: every VPC, all traffic, through a role only the flow logs service may assume.
    role = iam.get_role(RoleName=f"{deployment}-flowlogs")["Role"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "vpc-flow-logs.amazonaws.com"}
    for vpc_key in ("hub/vpc", *(f"spoke/{s}/vpc" for s, _ in SPOKES)):
        found = ec2.describe_flow_logs(Filters=[{"Name": "resource-id", "Values": [ids[vpc_key]]}])["FlowLogs"]
        assert [(f["TrafficType"], f["LogGroupName"], f["DeliverLogsPermissionArn"]) for f in found] == [
            ("ALL", flow_logs.log_group_name(deployment), role["Arn"])]
    groups = {g["logGroupName"]: g for g in logs.describe_log_groups()["logGroups"]}
    assert groups[flow_logs.log_group_name(deployment)]["retentionInDays"] == config.firewall_log_retention_days

    assert workdir.run("status").code == 0

    # Broken out of band: the DNS Firewall taken off one spoke, the other made to fail open.
    sales_vpc, finance_vpc = ids["spoke/sales/vpc"], ids["spoke/finance/vpc"]
    association = _pages(r53.list_firewall_rule_group_associations, "FirewallRuleGroupAssociations",
                         VpcId=sales_vpc)[0]
    r53.update_firewall_rule_group_association(FirewallRuleGroupAssociationId=association["Id"],
                                               MutationProtection="DISABLED")
    r53.disassociate_firewall_rule_group(FirewallRuleGroupAssociationId=association["Id"])
    r53.update_firewall_config(ResourceId=finance_vpc, FirewallFailOpen="ENABLED")
    ec2.delete_flow_logs(FlowLogIds=[ids["hub/flow-log"]])
    code, items = _status(workdir)
    assert code == 3
    assert items["spoke/sales/dns-firewall"]["status"] == "missing"
    assert any("fail" in d for d in items["spoke/finance/dns-firewall"]["drift"])
    assert items["hub/flow-log"]["status"] == "missing"
    assert workdir.run("up").code == 0
    assert workdir.run("status").code == 0
    assert r53.get_firewall_config(ResourceId=finance_vpc)["FirewallConfig"]["FirewallFailOpen"] == "DISABLED"

    # A trial period: the rest is only logged.
    workdir.write_config(text + '[dns_firewall]\nmode = "alert"\n')
    assert workdir.run("up").code == 0
    assert [r["Action"] for r in _rules(r53, group_id)] == ["ALLOW", "ALERT"]
    assert workdir.run("status").code == 0

    # Off: the DNS Firewall goes (plan says so first); the query logs stay.
    workdir.write_config(text + '[dns_firewall]\nmode = "off"\n')
    plan = workdir.run("plan")
    assert "hub/dns-firewall/rule-group" in plan.out and "delete" in plan.out
    assert workdir.run("up").code == 0
    assert _pages(r53.list_firewall_rule_groups, "FirewallRuleGroups") == []
    assert _own_lists(r53) == []
    assert r53.list_firewall_rule_group_associations()["FirewallRuleGroupAssociations"] == []
    assert len(_pages(r53.list_resolver_query_log_config_associations, "ResolverQueryLogConfigAssociations")) == 2
    assert workdir.run("status").code == 0

    # Back on, then down leaves nothing.
    workdir.write_config(text)
    assert workdir.run("up").code == 0
    assert workdir.run("down", "--yes", "--delete-logs").code == 0
    assert live_tagged(deployment) == []
    assert _pages(r53.list_firewall_rule_groups, "FirewallRuleGroups") == []
    assert _pages(r53.list_resolver_query_log_configs, "ResolverQueryLogConfigs") == []
    assert ec2.describe_flow_logs()["FlowLogs"] == []


class _Resolver:
    """Route 53 Resolver answering as AWS does for a domain list being deleted: its domains still listed (the
    answer has no status), DELETING to the Get and in the account's lists."""

    def __init__(self, list_id: str, name: str) -> None:
        self.item = {"Id": list_id, "Arn": f"arn:aws:route53resolver:eu-central-1:111122223333:firewall-domain-list/"
                                          f"{list_id}", "Name": name, "Status": "DELETING"}
        self.calls: list[str] = []

    def list_firewall_domains(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append("ListFirewallDomains")
        return {"Domains": ["pypi.org"]}

    def get_firewall_domain_list(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append("GetFirewallDomainList")
        return {"FirewallDomainList": self.item}

    def list_firewall_domain_lists(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append("ListFirewallDomainLists")
        return {"FirewallDomainLists": [self.item]}


def test_a_domain_list_being_deleted_is_not_adopted(tmp_path):
    from provisioner.context import Context
    from provisioner.state import load

    config = build_config(parse_toml(config_text("deleting"), "test"))
    step = dns_firewall.DomainList(config, design.ALLOWED)
    state = load(tmp_path, config.deployment)
    state.record(step.key, "rslvr-fdl-1", outputs={"arn": "arn:...", "name": step.name})
    resolver = _Resolver("rslvr-fdl-1", step.name)
    aws = type("FakeAws", (), {"route53resolver": resolver})()
    # No rule of a recorded rule group uses it: its domains answering is no proof that it is not going.
    assert step.find(Context(config=config, state=state, aws_factory=lambda: aws)) is None
    assert resolver.calls == ["ListFirewallDomains", "GetFirewallDomainList", "ListFirewallDomainLists"]
