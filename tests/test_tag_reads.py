"""The tags of log groups and Route 53 Resolver objects come from one Resource Groups Tagging API read per command,
and a DNS Firewall object whose existence another read proves is not read again with its Get.

What a no-op `up` and `status` call, counted; and that what the per-resource reads did still happens: tag drift
reported and repaired, a resource found by name but not ours refused, a resource the Tagging API does not list
(it lags behind changes) read on its own.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from provisioner import steps
from provisioner.aws import tagging
from provisioner.design import dns_firewall as design
from provisioner.steps import dns_firewall, firewall, flow_logs, hub_network, spoke_network, transit_gateway
from tests.conftest import CallLog, client, config_text

# The Get of a DNS Firewall or query logging object a no-op `up` no longer makes (GetFirewallConfig stays: the
# VPC's fail-open setting is read nowhere else).
PROVEN_GETS = {"GetFirewallDomainList", "GetFirewallRuleGroup", "GetResolverQueryLogConfig"}


@pytest.fixture
def aws_families(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(steps, "FAMILIES", (hub_network, transit_gateway, spoke_network, firewall, dns_firewall,
                                            flow_logs))


def _reads(calls: CallLog, service: str) -> set[str]:
    return {operation for name, operation in calls.operations if name == service}


def _restart(calls: CallLog) -> None:
    calls.clear()
    calls.operations.clear()


def _status(workdir: Any) -> tuple[int, dict[str, dict[str, Any]]]:
    result = workdir.run("status", "--json")
    return result.code, {item["key"]: item for item in json.loads(result.out)["resources"]}


def _ids(workdir: Any, deployment: str) -> dict[str, dict[str, Any]]:
    doc = json.loads((workdir.path / "state" / f"{deployment}.json").read_text())
    resources: dict[str, dict[str, Any]] = doc["resources"]
    return resources


def test_a_no_op_up_and_status_read_tags_once_and_get_no_proven_object(aws, workdir, calls, aws_families):
    workdir.write_config(config_text("tagreads", hub_azs=2))
    assert workdir.run("up").code == 0

    for command in (("up",), ("status",)):
        _restart(calls)
        assert workdir.run(*command).code == 0
        assert calls.mutating == []
        assert calls.calls.count("GetResources") == 1
        assert "ListTagsForResource" not in _reads(calls, "logs")
        assert "ListTagsForResource" not in _reads(calls, "route53resolver")
        assert not _reads(calls, "route53resolver") & PROVEN_GETS
        # Each list read once, for every step that needs it.
        for operation in ("ListFirewallRules", "ListFirewallRuleGroupAssociations",
                          "ListResolverQueryLogConfigAssociations", "DescribeLogGroups"):
            assert calls.calls.count(operation) == 1, operation
        assert calls.calls.count("ListFirewallDomains") == 2


def test_resources_the_tagging_api_does_not_list_are_read_on_their_own(aws, workdir, calls, aws_families,
                                                                       monkeypatch):
    workdir.write_config(config_text("taglag", hub_azs=2))
    assert workdir.run("up").code == 0
    # As while the Tagging API lags behind: it lists none of the Resolver objects.
    monkeypatch.setattr(tagging, "RESOURCE_TYPES",
                        tuple(t for t in tagging.RESOURCE_TYPES if not t.startswith("route53resolver:")))
    _restart(calls)
    assert workdir.run("up").code == 0
    assert calls.mutating == []
    assert "ListTagsForResource" not in _reads(calls, "logs")
    assert calls.calls.count("ListTagsForResource") == 4  # the two domain lists, the rule group, query logging
    assert workdir.run("status").code == 0


def test_tag_drift_is_reported_and_up_puts_the_tags_back(aws, workdir, aws_families):
    deployment = "tagdrift"
    workdir.write_config(config_text(deployment, hub_azs=2))
    assert workdir.run("up").code == 0
    resources = _ids(workdir, deployment)
    r53, logs = client("route53resolver"), client("logs")
    allowed = resources["hub/dns-firewall/domain-list/allowed"]["outputs"]["arn"]
    group = resources["hub/dns-firewall/rule-group"]["outputs"]["arn"]
    query_log_group = resources["hub/dns-query-logging/log-group"]["outputs"]["arn"]
    r53.untag_resource(ResourceArn=allowed, TagKeys=["Name"])
    r53.tag_resource(ResourceArn=group, Tags=[{"Key": "provisioner:component", "Value": "something-else"}])
    logs.untag_resource(resourceArn=query_log_group, tagKeys=["Name"])

    code, items = _status(workdir)
    assert code == 3
    for key in ("hub/dns-firewall/domain-list/allowed", "hub/dns-firewall/rule-group",
                "hub/dns-query-logging/log-group"):
        assert items[key]["drift"] == ["tags"], key
    assert workdir.run("up").code == 0
    assert workdir.run("status").code == 0
    tags = {t["Key"]: t["Value"] for t in r53.list_tags_for_resource(ResourceArn=allowed)["Tags"]}
    assert tags["Name"] == design.domain_list_name(deployment, design.ALLOWED)
    tags = {t["Key"]: t["Value"] for t in r53.list_tags_for_resource(ResourceArn=group)["Tags"]}
    assert tags["provisioner:component"] == "hub/dns-firewall/rule-group"
    assert logs.list_tags_for_resource(resourceArn=query_log_group)["tags"]["Name"] == design.query_log_group_name(
        deployment)


@pytest.mark.parametrize("tags", [{}, {"provisioner:deployment": "refuse"}], ids=["untagged", "not-managed"])
def test_a_log_group_found_by_name_but_not_ours_is_refused(aws, workdir, aws_families, tags):
    # With only our deployment tag (no ManagedBy) the Tagging API lists it; untagged it does not: refused either way.
    name = design.query_log_group_name("refuse")
    client("logs").create_log_group(logGroupName=name, **({"tags": tags} if tags else {}))
    workdir.write_config(config_text("refuse", hub_azs=2))
    result = workdir.run("up")
    assert result.code == 1
    assert f"log group {name} exists but is not tagged as part of deployment refuse" in result.out + result.err


@pytest.mark.parametrize("tags", [[{"Key": "provisioner:deployment", "Value": "other"}],
                                  [{"Key": "provisioner:deployment", "Value": "refuse"}]],
                         ids=["another-deployment", "not-managed"])
def test_a_domain_list_found_by_name_but_not_ours_is_refused(aws, workdir, aws_families, tags):
    name = design.domain_list_name("refuse", design.ALLOWED)
    client("route53resolver").create_firewall_domain_list(CreatorRequestId="someone-else", Name=name, Tags=tags)
    workdir.write_config(config_text("refuse", hub_azs=2))
    result = workdir.run("up")
    assert result.code == 1
    assert f"DNS Firewall domain list {name} exists but is not tagged as part of deployment refuse" in (
        result.out + result.err)


def test_without_the_proof_the_get_reads_the_object(aws, workdir, calls, aws_families):
    deployment = "noproof"
    workdir.write_config(config_text(deployment, hub_azs=2))
    assert workdir.run("up").code == 0
    resources = _ids(workdir, deployment)
    r53 = client("route53resolver")
    group_id = resources["hub/dns-firewall/rule-group"]["id"]
    config_id = resources["hub/dns-query-logging"]["id"]
    vpc_id = resources["spoke/main/vpc"]["id"]
    # An empty rule group (nothing uses the domain lists), and query logging associated with no VPC.
    for rule in r53.list_firewall_rules(FirewallRuleGroupId=group_id)["FirewallRules"]:
        r53.delete_firewall_rule(FirewallRuleGroupId=group_id, FirewallDomainListId=rule["FirewallDomainListId"])
    r53.disassociate_resolver_query_log_config(ResolverQueryLogConfigId=config_id, ResourceId=vpc_id)

    _restart(calls)
    code, items = _status(workdir)
    assert code == 3
    assert calls.calls.count("GetFirewallRuleGroup") == 1
    assert calls.calls.count("GetFirewallDomainList") == 2
    assert calls.calls.count("GetResolverQueryLogConfig") == 1
    assert items["hub/dns-firewall/rule-group"]["status"] == "drifted"
    assert items["hub/dns-query-logging"]["status"] == "present"
    assert items["spoke/main/dns-query-logging"]["status"] == "missing"
    assert workdir.run("up").code == 0
    assert workdir.run("status").code == 0


def test_a_state_file_without_the_query_logging_destination_reads_it_once(aws, workdir, calls, aws_families):
    deployment = "olderstate"
    workdir.write_config(config_text(deployment, hub_azs=2))
    assert workdir.run("up").code == 0
    path = workdir.path / "state" / f"{deployment}.json"
    doc = json.loads(path.read_text())
    destination = doc["resources"]["hub/dns-query-logging"]["outputs"].pop("destination")
    assert destination.endswith(design.query_log_group_name(deployment))
    path.write_text(json.dumps(doc))

    _restart(calls)
    assert workdir.run("up").code == 0
    assert calls.calls.count("GetResolverQueryLogConfig") == 1
    assert _ids(workdir, deployment)["hub/dns-query-logging"]["outputs"]["destination"] == destination
    _restart(calls)
    assert workdir.run("up").code == 0
    assert "GetResolverQueryLogConfig" not in calls.calls
