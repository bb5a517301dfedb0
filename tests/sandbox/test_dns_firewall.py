"""The sandbox's Route 53 Resolver DNS Firewall and query logging, checked through boto3 against moto in both modes.

Every behavioural test runs twice: in-process with `mock_aws()`, and over HTTP against a `ThreadedMotoServer`
(reset between tests with `POST /moto-api/reset`), because the provisioner uses the sandbox both ways.
"""

from __future__ import annotations

import logging
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.moto_api import state_manager
from moto.server import ThreadedMotoServer

from provisioner.sandbox import dns_firewall
from provisioner.sandbox.dns_firewall import (
    ASSOCIATION_DELETE_MODEL,
    ASSOCIATION_MODEL,
    DOMAIN_LIST_MODEL,
    MANAGED_DOMAIN_LISTS,
    install,
)

REGION = "eu-west-1"
ACCOUNT = "123456789012"
MODELS = (ASSOCIATION_MODEL, ASSOCIATION_DELETE_MODEL, DOMAIN_LIST_MODEL)


@dataclass
class Aws:
    r53: Any
    ec2: Any
    tagging: Any
    logs: Any


_SESSION = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)


def _clients(endpoint_url: str | None) -> Aws:
    # One attempt only: a moto crash in server mode is a 500 that botocore would otherwise retry twice.
    config = Config(retries={"total_max_attempts": 1})
    return Aws(
        r53=_SESSION.client("route53resolver", endpoint_url=endpoint_url, config=config),
        ec2=_SESSION.client("ec2", endpoint_url=endpoint_url, config=config),
        tagging=_SESSION.client("resourcegroupstaggingapi", endpoint_url=endpoint_url, config=config),
        logs=_SESSION.client("logs", endpoint_url=endpoint_url, config=config),
    )


@pytest.fixture(scope="module")
def moto_server_url() -> Iterator[str]:
    install()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="module")
def decorator_clients() -> Aws:
    # Built once: moto hooks botocore at import time, so clients made outside mock_aws() are mocked inside it.
    return _clients(None)


@pytest.fixture(scope="module")
def server_clients(moto_server_url: str) -> Aws:
    return _clients(moto_server_url)


@pytest.fixture(params=["decorator", "server"])
def aws(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    # Loading moto's thousands of default AMIs dominates every EC2 backend reset; these tests use none.
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    install()
    try:
        if request.param == "decorator":
            clients = request.getfixturevalue("decorator_clients")
            with mock_aws():
                yield clients
        else:
            url = request.getfixturevalue("moto_server_url")
            reset = urllib.request.Request(f"{url}/moto-api/reset", method="POST")
            with urllib.request.urlopen(reset, timeout=10) as response:
                assert response.status == 200
            yield request.getfixturevalue("server_clients")
    finally:
        for model in MODELS:
            state_manager.unset_transition(model)


def _code(excinfo: pytest.ExceptionInfo[ClientError]) -> str:
    return str(excinfo.value.response["Error"]["Code"])


def _refused(call: Any, **kwargs: Any) -> str:
    with pytest.raises(ClientError) as excinfo:
        call(**kwargs)
    return _code(excinfo)


# ------------------------------------------------------------------------------------------------ builders


def _domain_list(aws: Aws, name: str = "allowed", domains: list[str] | None = None, **kwargs: Any) -> str:
    created = aws.r53.create_firewall_domain_list(CreatorRequestId=f"list-{name}", Name=name, **kwargs)
    list_id: str = created["FirewallDomainList"]["Id"]
    if domains is not None:
        aws.r53.update_firewall_domains(FirewallDomainListId=list_id, Operation="REPLACE", Domains=domains)
    return list_id


def _rule_group(aws: Aws, name: str = "egress", **kwargs: Any) -> str:
    group_id: str = aws.r53.create_firewall_rule_group(CreatorRequestId=f"group-{name}", Name=name, **kwargs)[
        "FirewallRuleGroup"
    ]["Id"]
    return group_id


def _rule(aws: Aws, group_id: str, list_id: str, priority: int = 100, **kwargs: Any) -> dict[str, Any]:
    request = {
        "CreatorRequestId": f"rule-{group_id}-{list_id}-{priority}",
        "FirewallRuleGroupId": group_id,
        "FirewallDomainListId": list_id,
        "Priority": priority,
        "Action": "ALLOW",
        "Name": f"rule-{priority}",
    }
    rule: dict[str, Any] = aws.r53.create_firewall_rule(**{**request, **kwargs})["FirewallRule"]
    return rule


def _vpc(aws: Aws, cidr: str = "10.20.0.0/16") -> str:
    vpc_id: str = aws.ec2.create_vpc(CidrBlock=cidr)["Vpc"]["VpcId"]
    return vpc_id


def _associate(aws: Aws, group_id: str, vpc_id: str, priority: int = 1000, **kwargs: Any) -> dict[str, Any]:
    request = {
        "CreatorRequestId": f"assoc-{group_id}-{vpc_id}-{priority}",
        "FirewallRuleGroupId": group_id,
        "VpcId": vpc_id,
        "Priority": priority,
        "Name": "spoke-dns-firewall",
    }
    association: dict[str, Any] = aws.r53.associate_firewall_rule_group(**{**request, **kwargs})[
        "FirewallRuleGroupAssociation"
    ]
    return association


def _domains(aws: Aws, list_id: str) -> list[str]:
    found, token = [], None
    while True:
        page = aws.r53.list_firewall_domains(FirewallDomainListId=list_id, **({"NextToken": token} if token else {}))
        found += page["Domains"]
        token = page.get("NextToken")
        if not token:
            return found


def _tags(aws: Aws, arn: str) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in aws.r53.list_tags_for_resource(ResourceArn=arn)["Tags"]}


# ------------------------------------------------------------------------------------------------ guard


def test_guard_moto_is_the_release_the_emulation_was_written_for() -> None:
    # Fails when moto is upgraded, starts implementing an action added here, or drops an internal name the patches
    # rely on: the emulation must then be revisited.
    assert dns_firewall.compatibility_problems() == []
    assert "create_firewall_domain_list" in dns_firewall.ADDED_ACTIONS
    assert "delete_resolver_query_log_config" in dns_firewall.ADDED_ACTIONS


def test_install_twice_keeps_one_set_of_managed_lists(aws: Aws) -> None:
    install()
    install()
    _domain_list(aws)
    names = [d["Name"] for d in aws.r53.list_firewall_domain_lists()["FirewallDomainLists"]]
    assert sorted(names) == sorted([*MANAGED_DOMAIN_LISTS, "allowed"])


# ------------------------------------------------------------------------------------------------ domain lists


def test_domain_list_round_trip(aws: Aws) -> None:
    created = aws.r53.create_firewall_domain_list(
        CreatorRequestId="first", Name="allowed", Tags=[{"Key": "provisioner:deployment", "Value": "dev"}]
    )["FirewallDomainList"]
    list_id = created["Id"]
    assert list_id.startswith("rslvr-fdl-")
    assert created["Arn"] == f"arn:aws:route53resolver:{REGION}:{ACCOUNT}:firewall-domain-list/{list_id}"
    assert (created["Name"], created["DomainCount"], created["Status"]) == ("allowed", 0, "COMPLETE")
    assert created["CreatorRequestId"] == "first"

    got = aws.r53.get_firewall_domain_list(FirewallDomainListId=list_id)["FirewallDomainList"]
    assert got == created
    assert _tags(aws, created["Arn"]) == {"provisioner:deployment": "dev"}
    listed = {d["Id"]: d for d in aws.r53.list_firewall_domain_lists()["FirewallDomainLists"]}
    assert listed[list_id]["Name"] == "allowed"
    managed = [d for d in listed.values() if d.get("ManagedOwnerName")]
    assert sorted(d["Name"] for d in managed) == sorted(MANAGED_DOMAIN_LISTS)
    assert _refused(aws.r53.get_firewall_domain_list, FirewallDomainListId="rslvr-fdl-0123456789abcdef0") == (
        "ResourceNotFoundException"
    )


def test_update_domains_adds_removes_and_replaces(aws: Aws) -> None:
    list_id = _domain_list(aws)
    answer = aws.r53.update_firewall_domains(
        FirewallDomainListId=list_id, Operation="ADD", Domains=["example.com", "*.example.com", "pypi.org."]
    )
    assert (answer["Id"], answer["Name"], answer["Status"]) == (list_id, "allowed", "UPDATING")
    got = aws.r53.get_firewall_domain_list(FirewallDomainListId=list_id)["FirewallDomainList"]
    assert (got["Status"], got["DomainCount"]) == ("COMPLETE", 3)

    aws.r53.update_firewall_domains(FirewallDomainListId=list_id, Operation="ADD", Domains=["example.com", "a.io"])
    assert _domains(aws, list_id) == ["example.com", "*.example.com", "pypi.org.", "a.io"]
    aws.r53.update_firewall_domains(FirewallDomainListId=list_id, Operation="REMOVE", Domains=["pypi.org."])
    assert _domains(aws, list_id) == ["example.com", "*.example.com", "a.io"]
    # AWS refuses to remove what the list does not hold, and changes nothing.
    refused = _refused(
        aws.r53.update_firewall_domains, FirewallDomainListId=list_id, Operation="REMOVE", Domains=["a.io", "b.io"]
    )
    assert refused == "ValidationException"
    assert _domains(aws, list_id) == ["example.com", "*.example.com", "a.io"]
    aws.r53.update_firewall_domains(FirewallDomainListId=list_id, Operation="REPLACE", Domains=["*"])
    assert _domains(aws, list_id) == ["*"]


@pytest.mark.parametrize(
    "domain",
    ["exa mple.com", "a..b", "*example.com", "ex_ample.com", "x" * 256, "*.*.example.com", "example.com/x", "**"],
)
def test_update_domains_rejects_an_invalid_domain(aws: Aws, domain: str) -> None:
    list_id = _domain_list(aws, domains=["example.com"])
    refused = _refused(
        aws.r53.update_firewall_domains, FirewallDomainListId=list_id, Operation="ADD", Domains=["ok.io", domain]
    )
    assert refused == "ValidationException"
    assert _domains(aws, list_id) == ["example.com"]


def test_update_domains_limits(aws: Aws) -> None:
    list_id = _domain_list(aws)
    many = [f"host{n}.example.com" for n in range(1001)]
    update = aws.r53.update_firewall_domains
    assert _refused(update, FirewallDomainListId=list_id, Operation="ADD", Domains=many) == "LimitExceededException"
    assert _refused(update, FirewallDomainListId=list_id, Operation="DENY", Domains=["a.io"]) == "ValidationException"
    assert _refused(update, FirewallDomainListId=list_id, Operation="MERGE", Domains=["a.io"]) == "ValidationException"
    missing = "rslvr-fdl-0123456789abcdef0"
    assert _refused(update, FirewallDomainListId=missing, Operation="ADD", Domains=["a.io"]) == (
        "ResourceNotFoundException"
    )
    update(FirewallDomainListId=list_id, Operation="ADD", Domains=many[:1000])
    assert len(_domains(aws, list_id)) == 1000


def test_domains_and_lists_are_paginated(aws: Aws) -> None:
    domains = [f"host{n:03}.example.com" for n in range(250)]
    list_id = _domain_list(aws, domains=domains)
    first = aws.r53.list_firewall_domains(FirewallDomainListId=list_id)
    assert len(first["Domains"]) == 100
    assert _domains(aws, list_id) == domains
    assert _refused(aws.r53.list_firewall_domains, FirewallDomainListId=list_id, MaxResults=5001) == (
        "ValidationException"
    )

    for n in range(3):
        _domain_list(aws, name=f"list-{n}")
    page = aws.r53.list_firewall_domain_lists(MaxResults=5)
    rest = aws.r53.list_firewall_domain_lists(MaxResults=5, NextToken=page["NextToken"])
    assert len(page["FirewallDomainLists"]) == 5
    assert "NextToken" not in rest
    assert len(page["FirewallDomainLists"] + rest["FirewallDomainLists"]) == len(MANAGED_DOMAIN_LISTS) + 4


def test_domain_list_is_updating_until_the_update_is_done(aws: Aws) -> None:
    list_id = _domain_list(aws)
    state_manager.set_transition(DOMAIN_LIST_MODEL, {"progression": "manual", "times": 1})
    aws.r53.update_firewall_domains(FirewallDomainListId=list_id, Operation="ADD", Domains=["example.com"])
    statuses = [
        aws.r53.get_firewall_domain_list(FirewallDomainListId=list_id)["FirewallDomainList"]["Status"] for _ in "ab"
    ]
    assert statuses == ["UPDATING", "COMPLETE"]


def test_create_domain_list_honours_creator_request_id(aws: Aws) -> None:
    first = aws.r53.create_firewall_domain_list(CreatorRequestId="retry-me", Name="allowed")["FirewallDomainList"]
    again = aws.r53.create_firewall_domain_list(CreatorRequestId="retry-me", Name="allowed")["FirewallDomainList"]
    assert again["Id"] == first["Id"]
    own = [d for d in aws.r53.list_firewall_domain_lists()["FirewallDomainLists"] if not d.get("ManagedOwnerName")]
    assert len(own) == 1
    refused = _refused(aws.r53.create_firewall_domain_list, CreatorRequestId="retry-me", Name="blocked")
    assert refused == "ValidationException"


@pytest.mark.parametrize("name", ["12345", "bad!name", "x" * 65, "tab\tname"])
def test_invalid_names_are_refused(aws: Aws, name: str) -> None:
    assert _refused(aws.r53.create_firewall_domain_list, CreatorRequestId="n", Name=name) == "ValidationException"
    assert _refused(aws.r53.create_firewall_rule_group, CreatorRequestId="n", Name=name) == "ValidationException"


def test_managed_lists_are_read_only_but_usable_in_rules(aws: Aws) -> None:
    lists = aws.r53.list_firewall_domain_lists()["FirewallDomainLists"]
    malware = next(d["Id"] for d in lists if d["Name"] == "AWSManagedDomainsMalwareDomainList")
    update = aws.r53.update_firewall_domains
    assert _refused(update, FirewallDomainListId=malware, Operation="ADD", Domains=["a.io"]) == "ValidationException"
    assert _refused(aws.r53.delete_firewall_domain_list, FirewallDomainListId=malware) == "ValidationException"
    group_id = _rule_group(aws)
    rule = _rule(aws, group_id, malware, Action="BLOCK", BlockResponse="NODATA")
    assert rule["FirewallDomainListId"] == malware


def test_domain_list_in_use_is_not_deleted(aws: Aws) -> None:
    list_id = _domain_list(aws, domains=["example.com"], Tags=[{"Key": "Name", "Value": "allowed"}])
    arn = aws.r53.get_firewall_domain_list(FirewallDomainListId=list_id)["FirewallDomainList"]["Arn"]
    group_id = _rule_group(aws)
    _rule(aws, group_id, list_id)

    assert _refused(aws.r53.delete_firewall_domain_list, FirewallDomainListId=list_id) == "ConflictException"
    aws.r53.delete_firewall_rule(FirewallRuleGroupId=group_id, FirewallDomainListId=list_id)
    deleted = aws.r53.delete_firewall_domain_list(FirewallDomainListId=list_id)["FirewallDomainList"]
    assert deleted["Status"] == "DELETING"
    assert _refused(aws.r53.get_firewall_domain_list, FirewallDomainListId=list_id) == "ResourceNotFoundException"
    assert _refused(aws.r53.list_tags_for_resource, ResourceArn=arn) == "ResourceNotFoundException"


# ------------------------------------------------------------------------------------------------ rule groups, rules


def test_rule_group_and_rules_round_trip(aws: Aws) -> None:
    allowed = _domain_list(aws, "allowed", ["example.com"])
    blocked = _domain_list(aws, "blocked", ["*"])
    created = aws.r53.create_firewall_rule_group(
        CreatorRequestId="group", Name="egress", Tags=[{"Key": "Name", "Value": "egress"}]
    )["FirewallRuleGroup"]
    group_id = created["Id"]
    assert group_id.startswith("rslvr-frg-")
    assert created["Arn"] == f"arn:aws:route53resolver:{REGION}:{ACCOUNT}:firewall-rule-group/{group_id}"
    assert (created["Status"], created["RuleCount"], created["OwnerId"]) == ("COMPLETE", 0, ACCOUNT)
    assert created["ShareStatus"] == "NOT_SHARED"

    block = _rule(aws, group_id, blocked, 200, Action="BLOCK", BlockResponse="NXDOMAIN", Name="everything-else")
    allow = _rule(aws, group_id, allowed, 100, Name="allowed")
    assert (block["Action"], block["BlockResponse"], block["Priority"]) == ("BLOCK", "NXDOMAIN", 200)
    assert allow["FirewallDomainRedirectionAction"] == "INSPECT_REDIRECTION_DOMAIN"
    assert "BlockResponse" not in allow

    rules = aws.r53.list_firewall_rules(FirewallRuleGroupId=group_id)["FirewallRules"]
    assert [(r["Priority"], r["FirewallDomainListId"]) for r in rules] == [(100, allowed), (200, blocked)]
    blocking = aws.r53.list_firewall_rules(FirewallRuleGroupId=group_id, Action="BLOCK")["FirewallRules"]
    assert [r["Name"] for r in blocking] == ["everything-else"]
    at_100 = aws.r53.list_firewall_rules(FirewallRuleGroupId=group_id, Priority=100)["FirewallRules"]
    assert [r["Name"] for r in at_100] == ["allowed"]
    page = aws.r53.list_firewall_rules(FirewallRuleGroupId=group_id, MaxResults=1)
    rest = aws.r53.list_firewall_rules(FirewallRuleGroupId=group_id, MaxResults=1, NextToken=page["NextToken"])
    assert [r["Name"] for r in page["FirewallRules"] + rest["FirewallRules"]] == ["allowed", "everything-else"]

    group = aws.r53.get_firewall_rule_group(FirewallRuleGroupId=group_id)["FirewallRuleGroup"]
    assert group["RuleCount"] == 2
    listed = aws.r53.list_firewall_rule_groups()["FirewallRuleGroups"]
    assert [(g["Id"], g["Name"], g["OwnerId"]) for g in listed] == [(group_id, "egress", ACCOUNT)]
    assert _tags(aws, group["Arn"]) == {"Name": "egress"}
    missing = "rslvr-frg-0123456789abcdef0"
    assert _refused(aws.r53.list_firewall_rules, FirewallRuleGroupId=missing) == "ResourceNotFoundException"
    assert _refused(aws.r53.get_firewall_rule_group, FirewallRuleGroupId=missing) == "ResourceNotFoundException"


_OVERRIDE = {"BlockOverrideDomain": "blocked.example.com", "BlockOverrideDnsType": "CNAME", "BlockOverrideTtl": 60}


@pytest.mark.parametrize(
    ("case", "kwargs", "code"),
    [
        ("priority taken", {"Priority": 100, "FirewallDomainListId": "other"}, "ValidationException"),
        ("second rule for the list", {"Priority": 300}, "ValidationException"),
        ("BLOCK without BlockResponse", {"Action": "BLOCK", "FirewallDomainListId": "other"}, "ValidationException"),
        (
            "OVERRIDE without its settings",
            {"Action": "BLOCK", "BlockResponse": "OVERRIDE", "FirewallDomainListId": "other"},
            "ValidationException",
        ),
        (
            "ALLOW with a BlockResponse",
            {"BlockResponse": "NODATA", "FirewallDomainListId": "other"},
            "ValidationException",
        ),
        (
            "ALERT with override settings",
            {"Action": "ALERT", **_OVERRIDE, "FirewallDomainListId": "other"},
            "ValidationException",
        ),
        (
            "NXDOMAIN with override settings",
            {"Action": "BLOCK", "BlockResponse": "NXDOMAIN", **_OVERRIDE, "FirewallDomainListId": "other"},
            "ValidationException",
        ),
        (
            "TTL too long",
            {
                "Action": "BLOCK",
                "BlockResponse": "OVERRIDE",
                **_OVERRIDE,
                "BlockOverrideTtl": 604801,
                "FirewallDomainListId": "other",
            },
            "ValidationException",
        ),
        ("unknown action", {"Action": "DROP", "FirewallDomainListId": "other"}, "ValidationException"),
        ("invalid query type", {"Qtype": "BOGUS", "FirewallDomainListId": "other"}, "ValidationException"),
        ("unknown domain list", {"FirewallDomainListId": "rslvr-fdl-0123456789abcdef0"}, "ResourceNotFoundException"),
        ("unknown rule group", {"FirewallRuleGroupId": "rslvr-frg-0123456789abcdef0"}, "ResourceNotFoundException"),
        (
            "two match sources",
            {"DnsThreatProtection": "DGA", "ConfidenceThreshold": "HIGH", "Action": "ALERT"},
            "ValidationException",
        ),
    ],
)
def test_create_rule_rejects(aws: Aws, case: str, kwargs: dict[str, Any], code: str) -> None:
    allowed, other = _domain_list(aws, "allowed"), _domain_list(aws, "other")
    group_id = _rule_group(aws)
    _rule(aws, group_id, allowed, 100)
    request = {
        "CreatorRequestId": "rejected",
        "FirewallRuleGroupId": group_id,
        "FirewallDomainListId": allowed,
        "Priority": 200,
        "Action": "ALLOW",
        "Name": "rejected",
        **kwargs,
    }
    if request["FirewallDomainListId"] == "other":
        request["FirewallDomainListId"] = other
    assert _refused(aws.r53.create_firewall_rule, **request) == code
    assert [r["Priority"] for r in aws.r53.list_firewall_rules(FirewallRuleGroupId=group_id)["FirewallRules"]] == [100]


def test_block_override_rule_keeps_its_settings(aws: Aws) -> None:
    list_id = _domain_list(aws)
    group_id = _rule_group(aws)
    rule = _rule(aws, group_id, list_id, Action="BLOCK", BlockResponse="OVERRIDE", **_OVERRIDE)
    assert {key: rule[key] for key in _OVERRIDE} == _OVERRIDE
    assert rule["BlockResponse"] == "OVERRIDE"


def test_rules_of_one_list_for_other_query_types(aws: Aws) -> None:
    list_id = _domain_list(aws)
    group_id = _rule_group(aws)
    _rule(aws, group_id, list_id, 100, Qtype="A")
    _rule(aws, group_id, list_id, 200, Qtype="TYPE28", Action="BLOCK", BlockResponse="NODATA")
    refused = _refused(
        aws.r53.create_firewall_rule,
        CreatorRequestId="again",
        FirewallRuleGroupId=group_id,
        FirewallDomainListId=list_id,
        Priority=300,
        Action="ALLOW",
        Name="again",
        Qtype="A",
    )
    assert refused == "ValidationException"
    deleted = aws.r53.delete_firewall_rule(FirewallRuleGroupId=group_id, FirewallDomainListId=list_id, Qtype="A")
    assert deleted["FirewallRule"]["Priority"] == 100
    rules = aws.r53.list_firewall_rules(FirewallRuleGroupId=group_id)["FirewallRules"]
    assert [(r["Priority"], r["Qtype"]) for r in rules] == [(200, "TYPE28")]


def test_update_rule_changes_action_and_priority(aws: Aws) -> None:
    allowed, blocked = _domain_list(aws, "allowed"), _domain_list(aws, "blocked")
    group_id = _rule_group(aws)
    _rule(aws, group_id, allowed, 100)
    _rule(aws, group_id, blocked, 200, Action="BLOCK", BlockResponse="NXDOMAIN")
    update = aws.r53.update_firewall_rule

    # BLOCK -> ALERT: the block settings go with it.
    alert = update(FirewallRuleGroupId=group_id, FirewallDomainListId=blocked, Action="ALERT")["FirewallRule"]
    assert alert["Action"] == "ALERT"
    assert "BlockResponse" not in alert
    assert _refused(update, FirewallRuleGroupId=group_id, FirewallDomainListId=blocked, Action="BLOCK") == (
        "ValidationException"
    )
    assert _refused(update, FirewallRuleGroupId=group_id, FirewallDomainListId=blocked, Priority=100) == (
        "ValidationException"
    )
    back = update(
        FirewallRuleGroupId=group_id, FirewallDomainListId=blocked, Action="BLOCK", BlockResponse="NODATA", Priority=300
    )["FirewallRule"]
    assert (back["Action"], back["BlockResponse"], back["Priority"]) == ("BLOCK", "NODATA", 300)
    # Moving to OVERRIDE needs the override settings; the response is kept when only the name changes.
    assert (
        _refused(update, FirewallRuleGroupId=group_id, FirewallDomainListId=blocked, BlockResponse="OVERRIDE")
        == "ValidationException"
    )
    renamed = update(FirewallRuleGroupId=group_id, FirewallDomainListId=blocked, Name="renamed")["FirewallRule"]
    assert (renamed["Name"], renamed["BlockResponse"]) == ("renamed", "NODATA")
    missing = "rslvr-fdl-0123456789abcdef0"
    assert _refused(update, FirewallRuleGroupId=group_id, FirewallDomainListId=missing, Priority=400) == (
        "ResourceNotFoundException"
    )
    rules = aws.r53.list_firewall_rules(FirewallRuleGroupId=group_id)["FirewallRules"]
    assert [(r["Priority"], r["Name"]) for r in rules] == [(100, "rule-100"), (300, "renamed")]


def test_create_rule_honours_creator_request_id(aws: Aws) -> None:
    list_id = _domain_list(aws)
    group_id = _rule_group(aws)
    first = _rule(aws, group_id, list_id, CreatorRequestId="rule-once")
    again = _rule(aws, group_id, list_id, CreatorRequestId="rule-once")
    assert again == first
    assert len(aws.r53.list_firewall_rules(FirewallRuleGroupId=group_id)["FirewallRules"]) == 1
    assert (
        _refused(
            aws.r53.create_firewall_rule,
            CreatorRequestId="rule-once",
            FirewallRuleGroupId=group_id,
            FirewallDomainListId=list_id,
            Priority=500,
            Action="ALLOW",
            Name="other",
        )
        == "ValidationException"
    )


def test_threat_protection_rule(aws: Aws) -> None:
    group_id = _rule_group(aws)
    create = aws.r53.create_firewall_rule
    base = {"FirewallRuleGroupId": group_id, "Name": "dga", "DnsThreatProtection": "DGA"}
    assert _refused(create, CreatorRequestId="a", Priority=10, Action="ALERT", **base) == "ValidationException"
    assert (
        _refused(create, CreatorRequestId="b", Priority=10, Action="ALLOW", ConfidenceThreshold="HIGH", **base)
        == "ValidationException"
    )
    rule = create(
        CreatorRequestId="c", Priority=10, Action="BLOCK", BlockResponse="NODATA", ConfidenceThreshold="HIGH", **base
    )["FirewallRule"]
    assert rule["FirewallThreatProtectionId"]
    assert (rule["DnsThreatProtection"], rule["ConfidenceThreshold"]) == ("DGA", "HIGH")
    aws.r53.delete_firewall_rule(
        FirewallRuleGroupId=group_id, FirewallThreatProtectionId=rule["FirewallThreatProtectionId"]
    )
    assert aws.r53.list_firewall_rules(FirewallRuleGroupId=group_id)["FirewallRules"] == []


def test_rule_group_with_rules_or_associations_is_not_deleted(aws: Aws) -> None:
    list_id = _domain_list(aws)
    group_id = _rule_group(aws)
    _rule(aws, group_id, list_id)
    assert _refused(aws.r53.delete_firewall_rule_group, FirewallRuleGroupId=group_id) == "ConflictException"
    aws.r53.delete_firewall_rule(FirewallRuleGroupId=group_id, FirewallDomainListId=list_id)
    association = _associate(aws, group_id, _vpc(aws))
    assert _refused(aws.r53.delete_firewall_rule_group, FirewallRuleGroupId=group_id) == "ConflictException"
    aws.r53.disassociate_firewall_rule_group(FirewallRuleGroupAssociationId=association["Id"])

    deleted = aws.r53.delete_firewall_rule_group(FirewallRuleGroupId=group_id)["FirewallRuleGroup"]
    assert deleted["Status"] == "DELETING"
    assert _refused(aws.r53.get_firewall_rule_group, FirewallRuleGroupId=group_id) == "ResourceNotFoundException"
    assert _refused(aws.r53.delete_firewall_rule_group, FirewallRuleGroupId=group_id) == "ResourceNotFoundException"


# ------------------------------------------------------------------------------------------------ associations


def test_association_lifecycle(aws: Aws) -> None:
    group_id = _rule_group(aws)
    vpc_id = _vpc(aws)
    created = _associate(aws, group_id, vpc_id, Tags=[{"Key": "Name", "Value": "spoke"}])
    association_id = created["Id"]
    assert association_id.startswith("rslvr-frgassoc-")
    assert created["Arn"] == (
        f"arn:aws:route53resolver:{REGION}:{ACCOUNT}:firewall-rule-group-association/{association_id}"
    )
    # AWS answers UPDATING while it applies the association.
    assert (created["Status"], created["MutationProtection"], created["Priority"]) == ("UPDATING", "DISABLED", 1000)

    got = aws.r53.get_firewall_rule_group_association(FirewallRuleGroupAssociationId=association_id)
    assert got["FirewallRuleGroupAssociation"]["Status"] == "COMPLETE"
    assert _tags(aws, created["Arn"]) == {"Name": "spoke"}

    other_vpc = _vpc(aws, "10.30.0.0/16")
    _associate(aws, group_id, other_vpc, priority=2000)
    listed = aws.r53.list_firewall_rule_group_associations

    def ids(**filters: Any) -> list[str]:
        return sorted(a["VpcId"] for a in listed(**filters)["FirewallRuleGroupAssociations"])

    assert ids() == sorted([vpc_id, other_vpc])
    assert ids(VpcId=vpc_id) == [vpc_id]
    assert ids(FirewallRuleGroupId=group_id, Priority=2000) == [other_vpc]
    assert ids(Status="COMPLETE") == sorted([vpc_id, other_vpc])
    assert ids(Status="DELETING") == []
    assert ids(FirewallRuleGroupId="rslvr-frg-0123456789abcdef0") == []

    gone = aws.r53.disassociate_firewall_rule_group(FirewallRuleGroupAssociationId=association_id)
    assert gone["FirewallRuleGroupAssociation"]["Status"] == "DELETING"
    assert (
        _refused(aws.r53.get_firewall_rule_group_association, FirewallRuleGroupAssociationId=association_id)
        == "ResourceNotFoundException"
    )
    assert ids() == [other_vpc]


def test_association_is_updating_then_deleting_while_the_transitions_run(aws: Aws) -> None:
    group_id = _rule_group(aws)
    association_id = _associate(aws, group_id, _vpc(aws))["Id"]
    get = aws.r53.get_firewall_rule_group_association
    # (the create above ran with the default: set the transitions for the update and the disassociation)
    state_manager.set_transition(ASSOCIATION_MODEL, {"progression": "manual", "times": 1})
    state_manager.set_transition(ASSOCIATION_DELETE_MODEL, {"progression": "manual", "times": 2})

    def status() -> str:
        return str(get(FirewallRuleGroupAssociationId=association_id)["FirewallRuleGroupAssociation"]["Status"])

    updated = aws.r53.update_firewall_rule_group_association(
        FirewallRuleGroupAssociationId=association_id, Priority=500
    )
    assert updated["FirewallRuleGroupAssociation"]["Status"] == "UPDATING"
    assert [status(), status()] == ["UPDATING", "COMPLETE"]

    aws.r53.disassociate_firewall_rule_group(FirewallRuleGroupAssociationId=association_id)
    assert status() == "DELETING"
    # Until the disassociation is done, the rule group is still in use.
    assert _refused(aws.r53.delete_firewall_rule_group, FirewallRuleGroupId=group_id) == "ConflictException"
    assert status() == "DELETING"
    assert _refused(get, FirewallRuleGroupAssociationId=association_id) == "ResourceNotFoundException"
    aws.r53.delete_firewall_rule_group(FirewallRuleGroupId=group_id)


@pytest.mark.parametrize(
    ("case", "kwargs", "code"),
    [
        ("unknown VPC", {"VpcId": "vpc-0123456789abcdef0"}, "ValidationException"),
        ("unknown rule group", {"FirewallRuleGroupId": "rslvr-frg-0123456789abcdef0"}, "ResourceNotFoundException"),
        ("reserved priority 100", {"Priority": 100}, "ValidationException"),
        ("reserved priority 9900", {"Priority": 9900}, "ValidationException"),
        ("priority out of range", {"Priority": 10000}, "ValidationException"),
        ("priority taken on the VPC", {"Priority": 1000}, "ConflictException"),
        ("group already on the VPC", {"FirewallRuleGroupId": "taken"}, "ConflictException"),
        ("unknown mutation protection", {"MutationProtection": "ON"}, "ValidationException"),
        ("invalid name", {"Name": "no/slashes"}, "ValidationException"),
    ],
)
def test_associate_rejects(aws: Aws, case: str, kwargs: dict[str, Any], code: str) -> None:
    taken, group_id = _rule_group(aws, "taken"), _rule_group(aws, "new")
    vpc_id = _vpc(aws)
    _associate(aws, taken, vpc_id, priority=1000)
    request = {
        "CreatorRequestId": "rejected",
        "FirewallRuleGroupId": group_id,
        "VpcId": vpc_id,
        "Priority": 2000,
        "Name": "rejected",
        **kwargs,
    }
    if request["FirewallRuleGroupId"] == "taken":
        request["FirewallRuleGroupId"] = taken
    assert _refused(aws.r53.associate_firewall_rule_group, **request) == code
    listed = aws.r53.list_firewall_rule_group_associations()["FirewallRuleGroupAssociations"]
    assert [a["FirewallRuleGroupId"] for a in listed] == [taken]


@pytest.mark.parametrize("priority", [101, 9899])
def test_associate_takes_priorities_strictly_between_100_and_9900(aws: Aws, priority: int) -> None:
    assert _associate(aws, _rule_group(aws), _vpc(aws), priority=priority)["Priority"] == priority


def test_mutation_protection_guards_the_association(aws: Aws) -> None:
    group_id = _rule_group(aws)
    association_id = _associate(aws, group_id, _vpc(aws), MutationProtection="ENABLED")["Id"]
    update = aws.r53.update_firewall_rule_group_association

    assert _refused(aws.r53.disassociate_firewall_rule_group, FirewallRuleGroupAssociationId=association_id) == (
        "ValidationException"
    )
    assert _refused(update, FirewallRuleGroupAssociationId=association_id, Priority=2000) == "ValidationException"
    assert _refused(update, FirewallRuleGroupAssociationId=association_id, MutationProtection="OFF") == (
        "ValidationException"
    )
    lifted = update(FirewallRuleGroupAssociationId=association_id, MutationProtection="DISABLED")
    assert lifted["FirewallRuleGroupAssociation"]["MutationProtection"] == "DISABLED"
    moved = update(FirewallRuleGroupAssociationId=association_id, Priority=2000, Name="moved")
    assert (moved["FirewallRuleGroupAssociation"]["Priority"], moved["FirewallRuleGroupAssociation"]["Name"]) == (
        2000,
        "moved",
    )
    aws.r53.disassociate_firewall_rule_group(FirewallRuleGroupAssociationId=association_id)


def test_update_association_keeps_priorities_unique_on_the_vpc(aws: Aws) -> None:
    vpc_id = _vpc(aws)
    first = _associate(aws, _rule_group(aws, "first"), vpc_id, priority=1000)["Id"]
    _associate(aws, _rule_group(aws, "second"), vpc_id, priority=2000)
    update = aws.r53.update_firewall_rule_group_association
    assert _refused(update, FirewallRuleGroupAssociationId=first, Priority=2000) == "ConflictException"
    assert _refused(update, FirewallRuleGroupAssociationId=first, Priority=100) == "ValidationException"
    assert _refused(update, FirewallRuleGroupAssociationId="rslvr-frgassoc-0123456789abcdef0", Priority=3000) == (
        "ResourceNotFoundException"
    )
    # The same priority on another VPC is fine.
    assert _associate(aws, _rule_group(aws, "third"), _vpc(aws, "10.30.0.0/16"), priority=2000)["Priority"] == 2000


def test_associate_honours_creator_request_id(aws: Aws) -> None:
    group_id = _rule_group(aws)
    vpc_id = _vpc(aws)
    first = _associate(aws, group_id, vpc_id, CreatorRequestId="assoc-once")
    again = _associate(aws, group_id, vpc_id, CreatorRequestId="assoc-once")
    assert again["Id"] == first["Id"]
    assert len(aws.r53.list_firewall_rule_group_associations()["FirewallRuleGroupAssociations"]) == 1
    assert (
        _refused(
            aws.r53.associate_firewall_rule_group,
            CreatorRequestId="assoc-once",
            FirewallRuleGroupId=group_id,
            VpcId=vpc_id,
            Priority=3000,
            Name="other",
        )
        == "ValidationException"
    )


# ------------------------------------------------------------------------------------------------ firewall config


def test_firewall_config_fails_closed_until_changed(aws: Aws) -> None:
    vpc_id = _vpc(aws)
    config = aws.r53.get_firewall_config(ResourceId=vpc_id)["FirewallConfig"]
    assert config["Id"].startswith("rslvr-fc-")
    assert (config["ResourceId"], config["OwnerId"], config["FirewallFailOpen"]) == (vpc_id, ACCOUNT, "DISABLED")
    assert aws.r53.get_firewall_config(ResourceId=vpc_id)["FirewallConfig"] == config

    updated = aws.r53.update_firewall_config(ResourceId=vpc_id, FirewallFailOpen="ENABLED")["FirewallConfig"]
    assert (updated["Id"], updated["FirewallFailOpen"]) == (config["Id"], "ENABLED")
    assert aws.r53.get_firewall_config(ResourceId=vpc_id)["FirewallConfig"]["FirewallFailOpen"] == "ENABLED"
    aws.r53.update_firewall_config(ResourceId=vpc_id, FirewallFailOpen="USE_LOCAL_RESOURCE_SETTING")
    assert _refused(aws.r53.update_firewall_config, ResourceId=vpc_id, FirewallFailOpen="OPEN") == (
        "ValidationException"
    )
    missing = "vpc-0123456789abcdef0"
    assert _refused(aws.r53.get_firewall_config, ResourceId=missing) == "ValidationException"
    assert _refused(aws.r53.update_firewall_config, ResourceId=missing, FirewallFailOpen="DISABLED") == (
        "ValidationException"
    )

    other = _vpc(aws, "10.30.0.0/16")
    aws.r53.update_firewall_config(ResourceId=other, FirewallFailOpen="DISABLED")
    listed = aws.r53.list_firewall_configs()["FirewallConfigs"]
    assert {(c["ResourceId"], c["FirewallFailOpen"]) for c in listed} == {
        (vpc_id, "USE_LOCAL_RESOURCE_SETTING"),
        (other, "DISABLED"),
    }
    aws.ec2.delete_vpc(VpcId=other)
    assert [c["ResourceId"] for c in aws.r53.list_firewall_configs()["FirewallConfigs"]] == [vpc_id]
    assert _refused(aws.r53.list_firewall_configs, MaxResults=11) == "ValidationException"


# ------------------------------------------------------------------------------------------------ query logging


def _query_log_config(aws: Aws, request_id: str = "qlc", **kwargs: Any) -> dict[str, Any]:
    request = {
        "Name": "dns-queries",
        "DestinationArn": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/provision/dev/dns-queries",
        "CreatorRequestId": request_id,
    }
    config: dict[str, Any] = aws.r53.create_resolver_query_log_config(**{**request, **kwargs})["ResolverQueryLogConfig"]
    return config


def test_query_log_config_honours_creator_request_id_and_keeps_tags(aws: Aws) -> None:
    first = _query_log_config(aws, Tags=[{"Key": "provisioner:deployment", "Value": "dev"}])
    again = _query_log_config(aws, Tags=[{"Key": "provisioner:deployment", "Value": "dev"}])
    assert again["Id"] == first["Id"]
    assert len(aws.r53.list_resolver_query_log_configs()["ResolverQueryLogConfigs"]) == 1
    assert (
        _refused(
            aws.r53.create_resolver_query_log_config,
            Name="other",
            DestinationArn=first["DestinationArn"],
            CreatorRequestId="qlc",
        )
        == "ResourceExistsException"
    )

    assert _tags(aws, first["Arn"]) == {"provisioner:deployment": "dev"}
    aws.r53.tag_resource(ResourceArn=first["Arn"], Tags=[{"Key": "Name", "Value": "dns"}])
    aws.r53.untag_resource(ResourceArn=first["Arn"], TagKeys=["provisioner:deployment"])
    assert _tags(aws, first["Arn"]) == {"Name": "dns"}


def test_query_log_association_rules(aws: Aws) -> None:
    config_id = _query_log_config(aws)["Id"]
    vpc_id = _vpc(aws)
    associate = aws.r53.associate_resolver_query_log_config
    disassociate = aws.r53.disassociate_resolver_query_log_config
    association = associate(ResolverQueryLogConfigId=config_id, ResourceId=vpc_id)["ResolverQueryLogConfigAssociation"]
    assert association["Status"] == "ACTIVE"

    assert _refused(associate, ResolverQueryLogConfigId=config_id, ResourceId=vpc_id) == "InvalidRequestException"
    assert _refused(aws.r53.delete_resolver_query_log_config, ResolverQueryLogConfigId=config_id) == (
        "InvalidRequestException"
    )
    assert _refused(disassociate, ResolverQueryLogConfigId=config_id, ResourceId=_vpc(aws, "10.30.0.0/16")) == (
        "ResourceNotFoundException"
    )
    missing_config = "rslvr-qlc-0123456789abcdef0"
    assert _refused(disassociate, ResolverQueryLogConfigId=missing_config, ResourceId=vpc_id) == (
        "ResourceNotFoundException"
    )

    gone = disassociate(ResolverQueryLogConfigId=config_id, ResourceId=vpc_id)["ResolverQueryLogConfigAssociation"]
    assert (gone["Id"], gone["Status"]) == (association["Id"], "DELETING")
    assert aws.r53.list_resolver_query_log_config_associations()["ResolverQueryLogConfigAssociations"] == []
    config = aws.r53.get_resolver_query_log_config(ResolverQueryLogConfigId=config_id)["ResolverQueryLogConfig"]
    assert config["AssociationCount"] == 0

    deleted = aws.r53.delete_resolver_query_log_config(ResolverQueryLogConfigId=config_id)["ResolverQueryLogConfig"]
    assert (deleted["Id"], deleted["Status"]) == (config_id, "DELETING")
    assert _refused(aws.r53.get_resolver_query_log_config, ResolverQueryLogConfigId=config_id) == (
        "ResourceNotFoundException"
    )
    assert _refused(aws.r53.list_tags_for_resource, ResourceArn=config["Arn"]) == "ResourceNotFoundException"
    assert _refused(aws.r53.delete_resolver_query_log_config, ResolverQueryLogConfigId=config_id) == (
        "ResourceNotFoundException"
    )


# ------------------------------------------------------------------------------------------------ tags


def test_tags_on_dns_firewall_resources(aws: Aws) -> None:
    list_arn = aws.r53.get_firewall_domain_list(FirewallDomainListId=_domain_list(aws))["FirewallDomainList"]["Arn"]
    group_id = _rule_group(aws)
    group_arn = aws.r53.get_firewall_rule_group(FirewallRuleGroupId=group_id)["FirewallRuleGroup"]["Arn"]
    association_arn = _associate(aws, group_id, _vpc(aws))["Arn"]

    for arn in (list_arn, group_arn, association_arn):
        aws.r53.tag_resource(
            ResourceArn=arn, Tags=[{"Key": "provisioner:deployment", "Value": "dev"}, {"Key": "a", "Value": "b"}]
        )
        aws.r53.untag_resource(ResourceArn=arn, TagKeys=["a"])
        assert _tags(aws, arn) == {"provisioner:deployment": "dev"}
    unknown = list_arn.rsplit("/", 1)[0] + "/rslvr-fdl-0123456789abcdef0"
    assert _refused(aws.r53.list_tags_for_resource, ResourceArn=unknown) == "ResourceNotFoundException"
    assert _refused(aws.r53.tag_resource, ResourceArn=unknown, Tags=[{"Key": "k", "Value": "v"}]) == (
        "ResourceNotFoundException"
    )


# ------------------------------------------------------------------------------------------------ Tagging API

DEPLOYMENT_TAG = [{"Key": "provisioner:deployment", "Value": "dev"}]
RESOLVER_TYPES = [
    "route53resolver:firewall-domain-list",
    "route53resolver:firewall-rule-group",
    "route53resolver:resolver-query-log-config",
]


def _tagged(aws: Aws, types: list[str], deployment: str = "dev") -> dict[str, dict[str, str]]:
    pages = aws.tagging.get_paginator("get_resources").paginate(
        TagFilters=[{"Key": "provisioner:deployment", "Values": [deployment]}], ResourceTypeFilters=types,
        ResourcesPerPage=2)
    return {r["ResourceARN"]: {t["Key"]: t["Value"] for t in r["Tags"]}
            for page in pages for r in page["ResourceTagMappingList"]}


def test_get_resources_lists_the_tagged_dns_firewall_and_query_logging_objects_by_type(aws: Aws) -> None:
    list_id = _domain_list(aws, Tags=DEPLOYMENT_TAG)
    list_arn = aws.r53.get_firewall_domain_list(FirewallDomainListId=list_id)["FirewallDomainList"]["Arn"]
    other_list = _domain_list(aws, "other", Tags=[{"Key": "provisioner:deployment", "Value": "prod"}])
    group_id = _rule_group(aws, Tags=DEPLOYMENT_TAG)
    group_arn = aws.r53.get_firewall_rule_group(FirewallRuleGroupId=group_id)["FirewallRuleGroup"]["Arn"]
    association_arn = _associate(aws, group_id, _vpc(aws), Tags=DEPLOYMENT_TAG)["Arn"]
    config_arn = _query_log_config(aws, Tags=DEPLOYMENT_TAG)["Arn"]
    assert ":firewall-domain-list/" in list_arn and ":resolver-query-log-config/" in config_arn

    # Paginated (two a page), our deployment's only, of the types asked for: the association is of another type.
    assert _tagged(aws, RESOLVER_TYPES) == {arn: {"provisioner:deployment": "dev"}
                                            for arn in (list_arn, group_arn, config_arn)}
    assert set(_tagged(aws, ["route53resolver"])) == {list_arn, group_arn, config_arn, association_arn}
    assert set(_tagged(aws, RESOLVER_TYPES, "prod")) == {
        aws.r53.get_firewall_domain_list(FirewallDomainListId=other_list)["FirewallDomainList"]["Arn"]}

    # It follows tag changes, whichever API makes them, and deletes.
    aws.tagging.tag_resources(ResourceARNList=[group_arn], Tags={"Name": "egress"})
    assert _tags(aws, group_arn) == {"provisioner:deployment": "dev", "Name": "egress"}
    aws.r53.untag_resource(ResourceArn=list_arn, TagKeys=["provisioner:deployment"])
    aws.r53.delete_firewall_rule_group(FirewallRuleGroupId=_rule_group(aws, "spare", Tags=DEPLOYMENT_TAG))
    assert _tagged(aws, RESOLVER_TYPES) == {group_arn: {"provisioner:deployment": "dev", "Name": "egress"},
                                            config_arn: {"provisioner:deployment": "dev"}}

