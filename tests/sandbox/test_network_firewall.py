"""The sandbox's Network Firewall emulation, checked through boto3 against moto in both modes.

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

from provisioner.sandbox import network_firewall, suricata
from provisioner.sandbox.network_firewall import (
    CONFIG_SYNC_MODEL,
    FIREWALL_DELETE_MODEL,
    FIREWALL_MODEL,
    install,
    set_firewall_fault,
)

REGION = "eu-west-1"
needs_suricata = pytest.mark.skipif(not suricata.available(), reason=suricata.unavailable_reason())
FORWARD = ["aws:forward_to_sfe"]
_STATELESS_RULES = {
    "RulesSource": {
        "StatelessRulesAndCustomActions": {
            "StatelessRules": [
                {"Priority": 1, "RuleDefinition": {"MatchAttributes": {"Protocols": [1]}, "Actions": ["aws:drop"]}}
            ]
        }
    }
}


@dataclass
class Aws:
    nfw: Any
    ec2: Any


def _clients(endpoint_url: str | None) -> Aws:
    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
    # One attempt only: a moto crash in server mode is a 500 that botocore would otherwise retry twice.
    config = Config(retries={"total_max_attempts": 1})
    return Aws(
        nfw=session.client("network-firewall", endpoint_url=endpoint_url, config=config),
        ec2=session.client("ec2", endpoint_url=endpoint_url, config=config),
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


def _reset(url: str) -> None:
    request = urllib.request.Request(f"{url}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


@pytest.fixture(params=["decorator", "server"])
def aws(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    # Loading moto's thousands of default AMIs dominates every EC2 backend reset; these tests use none.
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    install()
    try:
        if request.param == "decorator":
            clients = request.getfixturevalue("decorator_clients")
            with mock_aws():
                yield clients
        else:
            url = request.getfixturevalue("moto_server_url")
            _reset(url)
            yield request.getfixturevalue("server_clients")
    finally:
        state_manager.unset_transition(FIREWALL_MODEL)
        state_manager.unset_transition(FIREWALL_DELETE_MODEL)
        state_manager.unset_transition(CONFIG_SYNC_MODEL)
        network_firewall.set_in_use_after_release()


def _error_code(excinfo: pytest.ExceptionInfo[ClientError]) -> str:
    return str(excinfo.value.response["Error"]["Code"])


# ------------------------------------------------------------------------------------------------ builders


def _domain_group(aws: Aws, name: str = "fqdn", order: str = "STRICT_ORDER") -> dict[str, Any]:
    return aws.nfw.create_rule_group(  # type: ignore[no-any-return]
        RuleGroupName=name,
        Type="STATEFUL",
        Capacity=100,
        RuleGroup={
            "RuleVariables": {"IPSets": {"HOME_NET": {"Definition": ["10.0.0.0/8"]}}},
            "RulesSource": {
                "RulesSourceList": {
                    "Targets": [".cloud.databricks.com"],
                    "TargetTypes": ["TLS_SNI", "HTTP_HOST"],
                    "GeneratedRulesType": "ALLOWLIST",
                }
            },
            "StatefulRuleOptions": {"RuleOrder": order},
        },
        Tags=[{"Key": "ManagedBy", "Value": "provisioner"}],
    )


def _strict_policy(aws: Aws, group_arn: str, name: str = "egress") -> dict[str, Any]:
    return aws.nfw.create_firewall_policy(  # type: ignore[no-any-return]
        FirewallPolicyName=name,
        FirewallPolicy={
            "StatelessDefaultActions": FORWARD,
            "StatelessFragmentDefaultActions": FORWARD,
            "StatefulEngineOptions": {"RuleOrder": "STRICT_ORDER", "StreamExceptionPolicy": "REJECT"},
            "StatefulDefaultActions": ["aws:drop_established", "aws:alert_established"],
            "StatefulRuleGroupReferences": [{"ResourceArn": group_arn, "Priority": 10}],
        },
    )


def _policy_arn(aws: Aws) -> str:
    group = _domain_group(aws)
    return str(
        _strict_policy(aws, group["RuleGroupResponse"]["RuleGroupArn"])["FirewallPolicyResponse"]["FirewallPolicyArn"]
    )


def _vpc(aws: Aws, azs: list[str], cidr: str = "10.20.0.0/16") -> tuple[str, list[str]]:
    vpc_id = aws.ec2.create_vpc(CidrBlock=cidr)["Vpc"]["VpcId"]
    prefix = cidr.rsplit(".", 2)[0]
    subnets = [
        aws.ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"{prefix}.{index}.0/24", AvailabilityZone=az)["Subnet"][
            "SubnetId"
        ]
        for index, az in enumerate(azs)
    ]
    return vpc_id, subnets


def _firewall(
    aws: Aws, policy_arn: str, vpc_id: str, subnets: list[str], name: str = "hub", **protections: bool
) -> dict[str, Any]:
    return aws.nfw.create_firewall(  # type: ignore[no-any-return]
        FirewallName=name,
        FirewallPolicyArn=policy_arn,
        VpcId=vpc_id,
        SubnetMappings=[{"SubnetId": subnet} for subnet in subnets],
        DeleteProtection=False,
        Tags=[{"Key": "Name", "Value": name}],
        **protections,
    )


def _firewall_endpoints(aws: Aws, vpc_id: str) -> list[dict[str, Any]]:
    filters = [{"Name": "vpc-id", "Values": [vpc_id]}]
    return [
        endpoint
        for endpoint in aws.ec2.describe_vpc_endpoints(Filters=filters)["VpcEndpoints"]
        if endpoint["VpcEndpointType"] == "GatewayLoadBalancer"
    ]


# ------------------------------------------------------------------------------------------------ guard


def test_guard_moto_is_the_release_the_emulation_was_written_for() -> None:
    # Fails when moto is upgraded, starts implementing an action added here (e.g. create_rule_group), or drops an
    # internal name the patches rely on: the emulation must then be revisited.
    assert network_firewall.compatibility_problems() == []
    assert "create_rule_group" in network_firewall.ADDED_ACTIONS


def test_install_twice_still_makes_one_endpoint_per_subnet(aws: Aws) -> None:
    install()
    install()
    vpc_id, subnets = _vpc(aws, ["eu-west-1a", "eu-west-1b"])
    _firewall(aws, _policy_arn(aws), vpc_id, subnets)
    assert len(_firewall_endpoints(aws, vpc_id)) == 2


# ------------------------------------------------------------------------------------------------ rule groups


def test_rule_group_round_trip_and_update_token(aws: Aws) -> None:
    created = _domain_group(aws)
    arn = created["RuleGroupResponse"]["RuleGroupArn"]
    assert arn == f"arn:aws:network-firewall:{REGION}:123456789012:stateful-rulegroup/fqdn"

    by_name = aws.nfw.describe_rule_group(RuleGroupName="fqdn", Type="STATEFUL")
    by_arn = aws.nfw.describe_rule_group(RuleGroupArn=arn)
    assert by_name["RuleGroup"] == by_arn["RuleGroup"]
    assert by_arn["RuleGroup"]["RulesSource"]["RulesSourceList"]["Targets"] == [".cloud.databricks.com"]
    assert by_arn["RuleGroup"]["RuleVariables"]["IPSets"]["HOME_NET"]["Definition"] == ["10.0.0.0/8"]
    assert by_arn["RuleGroup"]["StatefulRuleOptions"] == {"RuleOrder": "STRICT_ORDER"}
    response = by_arn["RuleGroupResponse"]
    assert (response["RuleGroupName"], response["Type"], response["Capacity"]) == ("fqdn", "STATEFUL", 100)
    assert response["RuleGroupStatus"] == "ACTIVE"
    assert response["RuleGroupId"] == created["RuleGroupResponse"]["RuleGroupId"]
    assert response["Tags"] == [{"Key": "ManagedBy", "Value": "provisioner"}]
    assert response["NumberOfAssociations"] == 0
    assert by_arn["UpdateToken"] == created["UpdateToken"]

    new_rules = {
        "RulesSource": {
            "RulesSourceList": {
                "Targets": [".cloud.databricks.com", "tunnel.eu-west-1.cloud.databricks.com"],
                "TargetTypes": ["TLS_SNI"],
                "GeneratedRulesType": "ALLOWLIST",
            }
        },
        "StatefulRuleOptions": {"RuleOrder": "STRICT_ORDER"},
    }
    with pytest.raises(ClientError) as stale:
        aws.nfw.update_rule_group(RuleGroupArn=arn, UpdateToken="not-the-token", RuleGroup=new_rules)
    assert _error_code(stale) == "InvalidTokenException"

    updated = aws.nfw.update_rule_group(RuleGroupArn=arn, UpdateToken=by_arn["UpdateToken"], RuleGroup=new_rules)
    assert updated["UpdateToken"] != by_arn["UpdateToken"]
    after = aws.nfw.describe_rule_group(RuleGroupArn=arn)
    assert after["UpdateToken"] == updated["UpdateToken"]
    assert len(after["RuleGroup"]["RulesSource"]["RulesSourceList"]["Targets"]) == 2

    # The token that was current before the update is now stale.
    with pytest.raises(ClientError) as reused:
        aws.nfw.update_rule_group(RuleGroupArn=arn, UpdateToken=by_arn["UpdateToken"], RuleGroup=new_rules)
    assert _error_code(reused) == "InvalidTokenException"


def test_rule_group_kinds_are_accepted(aws: Aws) -> None:
    aws.nfw.create_rule_group(
        RuleGroupName="five-tuple",
        Type="STATEFUL",
        Capacity=10,
        RuleGroup={
            "RulesSource": {
                "StatefulRules": [
                    {
                        "Action": "PASS",
                        "Header": {
                            "Protocol": "TCP",
                            "Source": "$HOME_NET",
                            "SourcePort": "ANY",
                            "Direction": "FORWARD",
                            "Destination": "10.1.0.0/16",
                            "DestinationPort": "443",
                        },
                        "RuleOptions": [{"Keyword": "sid", "Settings": ["1"]}],
                    }
                ]
            },
            "StatefulRuleOptions": {"RuleOrder": "STRICT_ORDER"},
        },
    )
    aws.nfw.create_rule_group(
        RuleGroupName="suricata", Type="STATEFUL", Capacity=10, Rules="drop ssh any any -> any any (sid:2;)"
    )
    aws.nfw.create_rule_group(
        RuleGroupName="stateless",
        Type="STATELESS",
        Capacity=10,
        RuleGroup=_STATELESS_RULES,
    )
    suricata = aws.nfw.describe_rule_group(RuleGroupName="suricata", Type="STATEFUL")
    assert suricata["RuleGroup"]["RulesSource"]["RulesString"].startswith("drop ssh")

    listed = aws.nfw.list_rule_groups()["RuleGroups"]
    assert [group["Name"] for group in listed] == ["five-tuple", "stateless", "suricata"]
    stateless_only = aws.nfw.list_rule_groups(Type="STATELESS")["RuleGroups"]
    assert [group["Name"] for group in stateless_only] == ["stateless"]
    first_page = aws.nfw.list_rule_groups(MaxResults=2)
    second_page = aws.nfw.list_rule_groups(MaxResults=2, NextToken=first_page["NextToken"])
    assert [g["Name"] for g in first_page["RuleGroups"] + second_page["RuleGroups"]] == [g["Name"] for g in listed]
    assert "NextToken" not in second_page


@pytest.mark.parametrize(
    ("case", "kwargs"),
    [
        ("duplicate name", {}),
        ("unknown type", {"Type": "STATEFUL_DOMAIN"}),
        ("capacity out of range", {"Capacity": 0}),
        ("stateless rules in a stateful group", {"RuleGroup": _STATELESS_RULES}),
        ("both RuleGroup and Rules", {"Rules": "pass ip any any -> any any (sid:1;)"}),
    ],
)
def test_create_rule_group_rejects(aws: Aws, case: str, kwargs: dict[str, Any]) -> None:
    _domain_group(aws, name="taken")
    request: dict[str, Any] = {
        "RuleGroupName": "taken" if case == "duplicate name" else "new",
        "Type": "STATEFUL",
        "Capacity": 10,
        "RuleGroup": {"RulesSource": {"RulesString": "pass ip any any -> any any (sid:1;)"}},
    }
    with pytest.raises(ClientError) as excinfo:
        aws.nfw.create_rule_group(**{**request, **kwargs})
    assert _error_code(excinfo) == "InvalidRequestException"


def test_rule_order_of_a_group_cannot_change(aws: Aws) -> None:
    arn = _domain_group(aws)["RuleGroupResponse"]["RuleGroupArn"]
    token = aws.nfw.describe_rule_group(RuleGroupArn=arn)["UpdateToken"]
    # Omitting StatefulRuleOptions means DEFAULT_ACTION_ORDER, which AWS refuses for a STRICT_ORDER group.
    with pytest.raises(ClientError) as excinfo:
        aws.nfw.update_rule_group(RuleGroupArn=arn, UpdateToken=token, Rules="pass tls any any -> any any (sid:1;)")
    assert _error_code(excinfo) == "InvalidRequestException"


# ------------------------------------------------------------------------------------------------ policies


def test_strict_order_policy_round_trip(aws: Aws) -> None:
    group_arn = _domain_group(aws)["RuleGroupResponse"]["RuleGroupArn"]
    created = _strict_policy(aws, group_arn)
    aws.nfw.get_waiter("firewall_policy_active").wait(FirewallPolicyName="egress")

    described = aws.nfw.describe_firewall_policy(FirewallPolicyName="egress")
    policy = described["FirewallPolicy"]
    assert policy["StatefulEngineOptions"]["RuleOrder"] == "STRICT_ORDER"
    assert policy["StatefulDefaultActions"] == ["aws:drop_established", "aws:alert_established"]
    assert policy["StatefulRuleGroupReferences"] == [{"ResourceArn": group_arn, "Priority": 10}]
    response = described["FirewallPolicyResponse"]
    assert response["FirewallPolicyStatus"] == "ACTIVE"
    assert response["FirewallPolicyArn"] == created["FirewallPolicyResponse"]["FirewallPolicyArn"]
    assert response["ConsumedStatefulRuleCapacity"] == 100
    assert described["UpdateToken"] == created["UpdateToken"]
    assert aws.nfw.describe_rule_group(RuleGroupArn=group_arn)["RuleGroupResponse"]["NumberOfAssociations"] == 1

    with pytest.raises(ClientError) as stale:
        aws.nfw.update_firewall_policy(FirewallPolicyName="egress", UpdateToken="stale", FirewallPolicy=policy)
    assert _error_code(stale) == "InvalidTokenException"
    policy["StatefulDefaultActions"] = ["aws:drop_strict"]
    updated = aws.nfw.update_firewall_policy(
        FirewallPolicyName="egress", UpdateToken=described["UpdateToken"], FirewallPolicy=policy
    )
    assert updated["UpdateToken"] != described["UpdateToken"]
    after = aws.nfw.describe_firewall_policy(FirewallPolicyArn=response["FirewallPolicyArn"])
    assert after["FirewallPolicy"]["StatefulDefaultActions"] == ["aws:drop_strict"]
    assert [p["Name"] for p in aws.nfw.list_firewall_policies()["FirewallPolicies"]] == ["egress"]


@pytest.mark.parametrize(
    ("case", "engine", "references"),
    [
        # AWS accepts StatefulDefaultActions only under STRICT_ORDER.
        ("default actions without strict order", None, lambda strict, default: []),
        ("strict reference without priority", "STRICT_ORDER", lambda strict, default: [{"ResourceArn": strict}]),
        ("priority under default order", None, lambda strict, default: [{"ResourceArn": default, "Priority": 1}]),
        (
            "group rule order differs from the policy",
            "STRICT_ORDER",
            lambda strict, default: [{"ResourceArn": default, "Priority": 1}],
        ),
        (
            "unknown rule group",
            "STRICT_ORDER",
            lambda strict, default: [{"ResourceArn": strict.replace("fqdn", "nope"), "Priority": 1}],
        ),
    ],
)
def test_create_firewall_policy_rejects(aws: Aws, case: str, engine: str | None, references: Any) -> None:
    strict = _domain_group(aws, "fqdn", "STRICT_ORDER")["RuleGroupResponse"]["RuleGroupArn"]
    default = _domain_group(aws, "legacy", "DEFAULT_ACTION_ORDER")["RuleGroupResponse"]["RuleGroupArn"]
    policy: dict[str, Any] = {
        "StatelessDefaultActions": FORWARD,
        "StatelessFragmentDefaultActions": FORWARD,
        "StatefulRuleGroupReferences": references(strict, default),
    }
    if engine:
        policy["StatefulEngineOptions"] = {"RuleOrder": engine}
    if case == "default actions without strict order":
        policy["StatefulDefaultActions"] = ["aws:drop_established"]
    with pytest.raises(ClientError) as excinfo:
        aws.nfw.create_firewall_policy(FirewallPolicyName="egress", FirewallPolicy=policy)
    assert _error_code(excinfo) == "InvalidRequestException"
    assert aws.nfw.list_firewall_policies()["FirewallPolicies"] == []


def test_deleting_what_is_in_use_is_refused(aws: Aws) -> None:
    group_arn = _domain_group(aws)["RuleGroupResponse"]["RuleGroupArn"]
    policy_arn = _strict_policy(aws, group_arn)["FirewallPolicyResponse"]["FirewallPolicyArn"]
    vpc_id, subnets = _vpc(aws, ["eu-west-1a"])
    _firewall(aws, policy_arn, vpc_id, subnets)

    with pytest.raises(ClientError) as group_in_use:
        aws.nfw.delete_rule_group(RuleGroupArn=group_arn)
    assert _error_code(group_in_use) == "InvalidOperationException"
    with pytest.raises(ClientError) as policy_in_use:
        aws.nfw.delete_firewall_policy(FirewallPolicyArn=policy_arn)
    assert _error_code(policy_in_use) == "InvalidOperationException"

    aws.nfw.delete_firewall(FirewallName="hub")
    deleted = aws.nfw.delete_firewall_policy(FirewallPolicyArn=policy_arn)
    assert deleted["FirewallPolicyResponse"]["FirewallPolicyStatus"] == "DELETING"
    aws.nfw.delete_rule_group(RuleGroupName="fqdn", Type="STATEFUL")
    with pytest.raises(ClientError) as gone:
        aws.nfw.describe_rule_group(RuleGroupArn=group_arn)
    assert _error_code(gone) == "ResourceNotFoundException"


# ------------------------------------------------------------------------------------------------ firewalls


def test_firewall_provisions_then_is_ready_with_an_endpoint_per_az(aws: Aws) -> None:
    state_manager.set_transition(FIREWALL_MODEL, {"progression": "manual", "times": 2})
    vpc_id, subnets = _vpc(aws, ["eu-west-1a", "eu-west-1b"])
    policy_arn = _policy_arn(aws)
    created = _firewall(aws, policy_arn, vpc_id, subnets)
    assert created["FirewallStatus"]["Status"] == "PROVISIONING"
    assert created["Firewall"]["FirewallId"]

    for _ in range(2):
        status = aws.nfw.describe_firewall(FirewallName="hub")["FirewallStatus"]
        assert status["Status"] == "PROVISIONING"
        assert status["ConfigurationSyncStateSummary"] == "PENDING"
        for state in status["SyncStates"].values():
            assert state["Attachment"]["Status"] == "CREATING"
            assert "EndpointId" not in state["Attachment"]
            assert state["Config"]["egress"]["SyncStatus"] == "PENDING"

    described = aws.nfw.describe_firewall(FirewallArn=created["Firewall"]["FirewallArn"])
    status = described["FirewallStatus"]
    assert status["Status"] == "READY"
    assert status["ConfigurationSyncStateSummary"] == "IN_SYNC"
    assert described["Firewall"]["FirewallId"] == created["Firewall"]["FirewallId"]
    assert sorted(status["SyncStates"]) == ["eu-west-1a", "eu-west-1b"]
    endpoints = {endpoint["VpcEndpointId"]: endpoint for endpoint in _firewall_endpoints(aws, vpc_id)}
    for az, subnet in zip(["eu-west-1a", "eu-west-1b"], subnets, strict=True):
        attachment = status["SyncStates"][az]["Attachment"]
        assert attachment["Status"] == "READY"
        assert attachment["SubnetId"] == subnet
        assert endpoints[attachment["EndpointId"]]["SubnetIds"] == [subnet]
        assert status["SyncStates"][az]["Config"]["egress"]["SyncStatus"] == "IN_SYNC"
    assert len(endpoints) == 2


def test_default_progression_is_ready_on_first_describe(aws: Aws) -> None:
    vpc_id, subnets = _vpc(aws, ["eu-west-1a"])
    created = _firewall(aws, _policy_arn(aws), vpc_id, subnets)
    # Even when instant, the create answer carries no endpoint ID, as on AWS.
    assert "EndpointId" not in created["FirewallStatus"]["SyncStates"]["eu-west-1a"]["Attachment"]
    assert aws.nfw.describe_firewall(FirewallName="hub")["FirewallStatus"]["Status"] == "READY"


def test_route_to_the_firewall_endpoint_is_accepted(aws: Aws) -> None:
    vpc_id, subnets = _vpc(aws, ["eu-west-1a"])
    _firewall(aws, _policy_arn(aws), vpc_id, subnets)
    endpoint_id = aws.nfw.describe_firewall(FirewallName="hub")["FirewallStatus"]["SyncStates"]["eu-west-1a"][
        "Attachment"
    ]["EndpointId"]
    route_table_id = aws.ec2.create_route_table(VpcId=vpc_id)["RouteTable"]["RouteTableId"]

    aws.ec2.create_route(RouteTableId=route_table_id, DestinationCidrBlock="0.0.0.0/0", VpcEndpointId=endpoint_id)

    routes = aws.ec2.describe_route_tables(RouteTableIds=[route_table_id])["RouteTables"][0]["Routes"]
    assert {"DestinationCidrBlock": "0.0.0.0/0", "GatewayId": endpoint_id} in [
        {key: route[key] for key in ("DestinationCidrBlock", "GatewayId") if key in route} for route in routes
    ]
    with pytest.raises(ClientError) as unknown:
        aws.ec2.create_route(
            RouteTableId=route_table_id, DestinationCidrBlock="10.9.0.0/16", VpcEndpointId="vpce-0123456789abcdef0"
        )
    assert _error_code(unknown) == "InvalidVpcEndpointId.NotFound"


def test_two_subnets_in_one_az_are_rejected(aws: Aws) -> None:
    vpc_id, subnets = _vpc(aws, ["eu-west-1a", "eu-west-1a"])
    with pytest.raises(ClientError) as excinfo:
        _firewall(aws, _policy_arn(aws), vpc_id, subnets)
    assert _error_code(excinfo) == "InvalidRequestException"
    assert aws.nfw.list_firewalls()["Firewalls"] == []
    assert _firewall_endpoints(aws, vpc_id) == []


def test_subnet_of_another_vpc_is_rejected(aws: Aws) -> None:
    vpc_id, _ = _vpc(aws, ["eu-west-1a"])
    _, other_subnets = _vpc(aws, ["eu-west-1b"], cidr="10.30.0.0/16")
    with pytest.raises(ClientError) as excinfo:
        _firewall(aws, _policy_arn(aws), vpc_id, other_subnets)
    assert _error_code(excinfo) == "InvalidRequestException"


def test_unknown_policy_is_rejected(aws: Aws) -> None:
    vpc_id, subnets = _vpc(aws, ["eu-west-1a"])
    unknown = f"arn:aws:network-firewall:{REGION}:123456789012:firewall-policy/nope"
    with pytest.raises(ClientError) as excinfo:
        _firewall(aws, unknown, vpc_id, subnets)
    assert _error_code(excinfo) == "InvalidRequestException"
    assert aws.nfw.list_firewalls()["Firewalls"] == []


def test_duplicate_firewall_name_is_rejected(aws: Aws) -> None:
    vpc_id, subnets = _vpc(aws, ["eu-west-1a"])
    policy_arn = _policy_arn(aws)
    first = _firewall(aws, policy_arn, vpc_id, subnets)
    other_vpc, other_subnets = _vpc(aws, ["eu-west-1b"], cidr="10.30.0.0/16")
    with pytest.raises(ClientError) as excinfo:
        _firewall(aws, policy_arn, other_vpc, other_subnets)
    assert _error_code(excinfo) == "InvalidRequestException"
    kept = aws.nfw.describe_firewall(FirewallName="hub")["Firewall"]
    assert (kept["VpcId"], kept["FirewallId"]) == (vpc_id, first["Firewall"]["FirewallId"])


def test_delete_protection_then_delete_removes_endpoints(aws: Aws) -> None:
    state_manager.set_transition(FIREWALL_DELETE_MODEL, {"progression": "manual", "times": 1})
    vpc_id, subnets = _vpc(aws, ["eu-west-1a", "eu-west-1b"])
    policy_arn = _policy_arn(aws)
    aws.nfw.create_firewall(
        FirewallName="hub",
        FirewallPolicyArn=policy_arn,
        VpcId=vpc_id,
        SubnetMappings=[{"SubnetId": subnet} for subnet in subnets],
        DeleteProtection=True,
    )
    described = aws.nfw.describe_firewall(FirewallName="hub")
    assert described["Firewall"]["DeleteProtection"] is True
    with pytest.raises(ClientError) as protected:
        aws.nfw.delete_firewall(FirewallName="hub")
    assert _error_code(protected) == "InvalidOperationException"

    with pytest.raises(ClientError) as stale:
        aws.nfw.update_firewall_delete_protection(FirewallName="hub", DeleteProtection=False, UpdateToken="stale")
    assert _error_code(stale) == "InvalidTokenException"
    aws.nfw.update_firewall_delete_protection(
        FirewallName="hub", DeleteProtection=False, UpdateToken=described["UpdateToken"]
    )

    deleting = aws.nfw.delete_firewall(FirewallName="hub")
    assert deleting["FirewallStatus"]["Status"] == "DELETING"
    assert aws.nfw.describe_firewall(FirewallName="hub")["FirewallStatus"]["Status"] == "DELETING"
    with pytest.raises(ClientError) as gone:
        aws.nfw.describe_firewall(FirewallName="hub")
    assert _error_code(gone) == "ResourceNotFoundException"
    assert aws.nfw.list_firewalls()["Firewalls"] == []
    assert {endpoint["State"] for endpoint in _firewall_endpoints(aws, vpc_id)} == {"deleted"}
    # The policy is free again once the firewall is gone.
    aws.nfw.delete_firewall_policy(FirewallPolicyArn=policy_arn)


def test_default_delete_is_gone_on_next_describe(aws: Aws) -> None:
    vpc_id, subnets = _vpc(aws, ["eu-west-1a"])
    _firewall(aws, _policy_arn(aws), vpc_id, subnets)
    assert aws.nfw.delete_firewall(FirewallName="hub")["FirewallStatus"]["Status"] == "DELETING"
    with pytest.raises(ClientError) as gone:
        aws.nfw.describe_firewall(FirewallName="hub")
    assert _error_code(gone) == "ResourceNotFoundException"
    assert {endpoint["State"] for endpoint in _firewall_endpoints(aws, vpc_id)} == {"deleted"}


# ------------------------------------------------------------------------------------------------ protections


def _endpoint_ids(aws: Aws, vpc_id: str, state: str = "available") -> set[str]:
    return {e["VpcEndpointId"] for e in _firewall_endpoints(aws, vpc_id) if e["State"] == state}


def test_protections_are_off_when_omitted_and_kept_when_given(aws: Aws) -> None:
    vpc_id, subnets = _vpc(aws, ["eu-west-1a"])
    policy_arn = _policy_arn(aws)
    aws.nfw.create_firewall(
        FirewallName="plain", FirewallPolicyArn=policy_arn, VpcId=vpc_id, SubnetMappings=[{"SubnetId": subnets[0]}]
    )
    plain = aws.nfw.describe_firewall(FirewallName="plain")["Firewall"]
    assert (plain["DeleteProtection"], plain["SubnetChangeProtection"], plain["FirewallPolicyChangeProtection"]) == (
        False,
        False,
        False,
    )
    other_vpc, other_subnets = _vpc(aws, ["eu-west-1a"], cidr="10.30.0.0/16")
    created = _firewall(
        aws, policy_arn, other_vpc, other_subnets, SubnetChangeProtection=True, FirewallPolicyChangeProtection=True
    )["Firewall"]
    assert (created["SubnetChangeProtection"], created["FirewallPolicyChangeProtection"]) == (True, True)
    described = aws.nfw.describe_firewall(FirewallName="hub")["Firewall"]
    assert (described["SubnetChangeProtection"], described["FirewallPolicyChangeProtection"]) == (True, True)


@pytest.mark.parametrize(
    ("flag", "update"),
    [
        ("SubnetChangeProtection", "update_subnet_change_protection"),
        ("FirewallPolicyChangeProtection", "update_firewall_policy_change_protection"),
        ("DeleteProtection", "update_firewall_delete_protection"),
    ],
)
def test_protection_updates_follow_the_update_token(aws: Aws, flag: str, update: str) -> None:
    vpc_id, subnets = _vpc(aws, ["eu-west-1a"])
    _firewall(aws, _policy_arn(aws), vpc_id, subnets)
    token = aws.nfw.describe_firewall(FirewallName="hub")["UpdateToken"]

    with pytest.raises(ClientError) as stale:
        getattr(aws.nfw, update)(FirewallName="hub", UpdateToken="00000000-0000-0000-0000-000000000000", **{flag: True})
    assert _error_code(stale) == "InvalidTokenException"
    assert aws.nfw.describe_firewall(FirewallName="hub")["Firewall"][flag] is False

    answer = getattr(aws.nfw, update)(FirewallName="hub", UpdateToken=token, **{flag: True})
    assert answer[flag] is True
    assert answer["UpdateToken"] != token
    described = aws.nfw.describe_firewall(FirewallName="hub")
    assert described["Firewall"][flag] is True
    assert described["UpdateToken"] == answer["UpdateToken"]
    # The token it replaced is stale now; without a token the change is unconditional.
    with pytest.raises(ClientError) as reused:
        getattr(aws.nfw, update)(FirewallName="hub", UpdateToken=token, **{flag: False})
    assert _error_code(reused) == "InvalidTokenException"
    getattr(aws.nfw, update)(FirewallName="hub", **{flag: False})
    assert aws.nfw.describe_firewall(FirewallName="hub")["Firewall"][flag] is False


# ------------------------------------------------------------------------------------------------ subnets


def test_associate_subnets_is_refused_while_subnet_change_protection_is_on(aws: Aws) -> None:
    vpc_id, subnets = _vpc(aws, ["eu-west-1a", "eu-west-1b"])
    _firewall(aws, _policy_arn(aws), vpc_id, subnets[:1], SubnetChangeProtection=True)
    with pytest.raises(ClientError) as protected:
        aws.nfw.associate_subnets(FirewallName="hub", SubnetMappings=[{"SubnetId": subnets[1]}])
    assert _error_code(protected) == "InvalidOperationException"
    with pytest.raises(ClientError) as protected_removal:
        aws.nfw.disassociate_subnets(FirewallName="hub", SubnetIds=[subnets[0]])
    assert _error_code(protected_removal) == "InvalidOperationException"
    assert [m["SubnetId"] for m in aws.nfw.describe_firewall(FirewallName="hub")["Firewall"]["SubnetMappings"]] == [
        subnets[0]
    ]
    assert len(_endpoint_ids(aws, vpc_id)) == 1


def test_associated_subnet_gets_an_endpoint_that_comes_up_on_its_own(aws: Aws) -> None:
    vpc_id, subnets = _vpc(aws, ["eu-west-1a", "eu-west-1b"])
    _firewall(aws, _policy_arn(aws), vpc_id, subnets[:1])
    token = aws.nfw.describe_firewall(FirewallName="hub")["UpdateToken"]
    state_manager.set_transition(FIREWALL_MODEL, {"progression": "manual", "times": 1})

    answer = aws.nfw.associate_subnets(FirewallName="hub", UpdateToken=token, SubnetMappings=[{"SubnetId": subnets[1]}])
    assert [m["SubnetId"] for m in answer["SubnetMappings"]] == subnets
    assert answer["UpdateToken"] != token

    adding = aws.nfw.describe_firewall(FirewallName="hub")
    assert adding["UpdateToken"] == answer["UpdateToken"]
    status = adding["FirewallStatus"]
    assert (status["Status"], status["ConfigurationSyncStateSummary"]) == ("PROVISIONING", "PENDING")
    assert status["SyncStates"]["eu-west-1a"]["Attachment"]["Status"] == "READY"
    assert status["SyncStates"]["eu-west-1b"]["Attachment"]["Status"] == "CREATING"
    assert "EndpointId" not in status["SyncStates"]["eu-west-1b"]["Attachment"]

    status = aws.nfw.describe_firewall(FirewallName="hub")["FirewallStatus"]
    assert (status["Status"], status["ConfigurationSyncStateSummary"]) == ("READY", "IN_SYNC")
    new_endpoint = status["SyncStates"]["eu-west-1b"]["Attachment"]["EndpointId"]
    assert new_endpoint in _endpoint_ids(aws, vpc_id)
    assert len(_endpoint_ids(aws, vpc_id)) == 2
    with pytest.raises(ClientError) as stale:
        aws.nfw.disassociate_subnets(FirewallName="hub", UpdateToken=token, SubnetIds=[subnets[1]])
    assert _error_code(stale) == "InvalidTokenException"


@pytest.mark.parametrize("case", ["AZ already used", "subnet of another VPC", "unknown subnet", "two in one AZ"])
def test_associate_subnets_rejects(aws: Aws, case: str) -> None:
    vpc_id, subnets = _vpc(aws, ["eu-west-1a", "eu-west-1a", "eu-west-1b", "eu-west-1b"])
    _, other_subnets = _vpc(aws, ["eu-west-1b"], cidr="10.30.0.0/16")
    _firewall(aws, _policy_arn(aws), vpc_id, subnets[:1])
    token = aws.nfw.describe_firewall(FirewallName="hub")["UpdateToken"]
    wanted = {
        "AZ already used": [subnets[1]],
        "subnet of another VPC": other_subnets,
        "unknown subnet": ["subnet-0123456789abcdef0"],
        "two in one AZ": subnets[2:],
    }[case]
    with pytest.raises(ClientError) as excinfo:
        aws.nfw.associate_subnets(FirewallName="hub", SubnetMappings=[{"SubnetId": subnet} for subnet in wanted])
    assert _error_code(excinfo) == "InvalidRequestException"
    described = aws.nfw.describe_firewall(FirewallName="hub")
    assert described["UpdateToken"] == token
    assert list(described["FirewallStatus"]["SyncStates"]) == ["eu-west-1a"]
    assert len(_endpoint_ids(aws, vpc_id)) == 1


def test_disassociated_subnet_is_deleting_then_its_endpoint_goes(aws: Aws) -> None:
    vpc_id, subnets = _vpc(aws, ["eu-west-1a", "eu-west-1b"])
    _firewall(aws, _policy_arn(aws), vpc_id, subnets)
    leaving = aws.nfw.describe_firewall(FirewallName="hub")["FirewallStatus"]["SyncStates"]["eu-west-1b"]
    state_manager.set_transition(FIREWALL_DELETE_MODEL, {"progression": "manual", "times": 1})

    answer = aws.nfw.disassociate_subnets(FirewallName="hub", SubnetIds=[subnets[1]])
    assert [m["SubnetId"] for m in answer["SubnetMappings"]] == subnets[:1]

    status = aws.nfw.describe_firewall(FirewallName="hub")["FirewallStatus"]
    assert status["Status"] == "PROVISIONING"
    assert status["SyncStates"]["eu-west-1b"]["Attachment"]["Status"] == "DELETING"
    assert status["SyncStates"]["eu-west-1a"]["Attachment"]["Status"] == "READY"
    # Being deleted, the subnet can't be disassociated again.
    with pytest.raises(ClientError) as again:
        aws.nfw.disassociate_subnets(FirewallName="hub", SubnetIds=[subnets[1]])
    assert _error_code(again) == "InvalidRequestException"

    status = aws.nfw.describe_firewall(FirewallName="hub")["FirewallStatus"]
    assert status["Status"] == "READY"
    assert list(status["SyncStates"]) == ["eu-west-1a"]
    assert leaving["Attachment"]["EndpointId"] in _endpoint_ids(aws, vpc_id, state="deleted")
    assert len(_endpoint_ids(aws, vpc_id)) == 1


@pytest.mark.parametrize("case", ["not the firewall's", "every subnet"])
def test_disassociate_subnets_rejects(aws: Aws, case: str) -> None:
    vpc_id, subnets = _vpc(aws, ["eu-west-1a", "eu-west-1b", "eu-west-1c"])
    _firewall(aws, _policy_arn(aws), vpc_id, subnets[:2])
    wanted = subnets[2:] if case == "not the firewall's" else subnets[:2]
    with pytest.raises(ClientError) as excinfo:
        aws.nfw.disassociate_subnets(FirewallName="hub", SubnetIds=wanted)
    assert _error_code(excinfo) == "InvalidRequestException"
    assert len(aws.nfw.describe_firewall(FirewallName="hub")["FirewallStatus"]["SyncStates"]) == 2


# ------------------------------------------------------------------------------------------------ policy association


def test_associate_firewall_policy_is_refused_while_policy_change_protection_is_on(aws: Aws) -> None:
    group_arn = _domain_group(aws)["RuleGroupResponse"]["RuleGroupArn"]
    first = _strict_policy(aws, group_arn, name="first")["FirewallPolicyResponse"]["FirewallPolicyArn"]
    second = _strict_policy(aws, group_arn, name="second")["FirewallPolicyResponse"]["FirewallPolicyArn"]
    vpc_id, subnets = _vpc(aws, ["eu-west-1a"])
    _firewall(aws, first, vpc_id, subnets, FirewallPolicyChangeProtection=True)

    with pytest.raises(ClientError) as protected:
        aws.nfw.associate_firewall_policy(FirewallName="hub", FirewallPolicyArn=second)
    assert _error_code(protected) == "InvalidOperationException"
    assert aws.nfw.describe_firewall(FirewallName="hub")["Firewall"]["FirewallPolicyArn"] == first


def test_associated_policy_syncs_and_frees_the_old_one(aws: Aws) -> None:
    group_arn = _domain_group(aws)["RuleGroupResponse"]["RuleGroupArn"]
    first = _strict_policy(aws, group_arn, name="first")["FirewallPolicyResponse"]["FirewallPolicyArn"]
    second = _strict_policy(aws, group_arn, name="second")["FirewallPolicyResponse"]["FirewallPolicyArn"]
    vpc_id, subnets = _vpc(aws, ["eu-west-1a"])
    _firewall(aws, first, vpc_id, subnets)
    token = aws.nfw.describe_firewall(FirewallName="hub")["UpdateToken"]

    with pytest.raises(ClientError) as unknown:
        aws.nfw.associate_firewall_policy(FirewallName="hub", FirewallPolicyArn=second.replace("second", "nope"))
    assert _error_code(unknown) == "InvalidRequestException"
    with pytest.raises(ClientError) as stale:
        aws.nfw.associate_firewall_policy(
            FirewallName="hub", FirewallPolicyArn=second, UpdateToken="00000000-0000-0000-0000-000000000000"
        )
    assert _error_code(stale) == "InvalidTokenException"

    state_manager.set_transition(FIREWALL_MODEL, {"progression": "manual", "times": 1})
    answer = aws.nfw.associate_firewall_policy(FirewallName="hub", FirewallPolicyArn=second, UpdateToken=token)
    assert answer["FirewallPolicyArn"] == second
    assert answer["UpdateToken"] != token

    syncing = aws.nfw.describe_firewall(FirewallName="hub")
    assert syncing["Firewall"]["FirewallPolicyArn"] == second
    status = syncing["FirewallStatus"]
    assert (status["Status"], status["ConfigurationSyncStateSummary"]) == ("PROVISIONING", "PENDING")
    assert status["SyncStates"]["eu-west-1a"]["Config"]["second"]["SyncStatus"] == "PENDING"
    assert "first" not in status["SyncStates"]["eu-west-1a"]["Config"]
    status = aws.nfw.describe_firewall(FirewallName="hub")["FirewallStatus"]
    assert (status["Status"], status["ConfigurationSyncStateSummary"]) == ("READY", "IN_SYNC")

    aws.nfw.delete_firewall_policy(FirewallPolicyArn=first)
    with pytest.raises(ClientError) as in_use:
        aws.nfw.delete_firewall_policy(FirewallPolicyArn=second)
    assert _error_code(in_use) == "InvalidOperationException"


def test_sync_states_name_each_object_at_its_update_token_and_an_update_syncs(aws: Aws) -> None:
    """SyncStates[az].Config is keyed by the name of the policy and of each rule group it references, with the
    UpdateToken their describes answer; an updated object is PENDING at its new token until the sync is done."""
    group = _domain_group(aws)
    group_arn = group["RuleGroupResponse"]["RuleGroupArn"]
    policy = _strict_policy(aws, group_arn)
    vpc_id, subnets = _vpc(aws, ["eu-west-1a", "eu-west-1b"])
    _firewall(aws, policy["FirewallPolicyResponse"]["FirewallPolicyArn"], vpc_id, subnets)

    def config() -> dict[str, dict[str, Any]]:
        states = _status(aws)["SyncStates"]
        assert sorted(states) == ["eu-west-1a", "eu-west-1b"]
        first, second = (states[az]["Config"] for az in sorted(states))
        assert first == second
        return first  # type: ignore[no-any-return]

    assert config() == {"egress": {"SyncStatus": "IN_SYNC", "UpdateToken": policy["UpdateToken"]},
                        "fqdn": {"SyncStatus": "IN_SYNC", "UpdateToken": group["UpdateToken"]}}

    state_manager.set_transition(CONFIG_SYNC_MODEL, {"progression": "manual", "times": 1})
    current = aws.nfw.describe_rule_group(RuleGroupArn=group_arn)
    rules = current["RuleGroup"]
    rules["RulesSource"]["RulesSourceList"]["Targets"].append("pypi.org")
    token = aws.nfw.update_rule_group(RuleGroupArn=group_arn, UpdateToken=current["UpdateToken"],
                                      RuleGroup=rules)["UpdateToken"]
    assert token != group["UpdateToken"]
    syncing = _status(aws)
    assert (syncing["Status"], syncing["ConfigurationSyncStateSummary"]) == ("PROVISIONING", "PENDING")
    for state in syncing["SyncStates"].values():
        assert state["Config"]["fqdn"] == {"SyncStatus": "PENDING", "UpdateToken": token}
        assert state["Config"]["egress"] == {"SyncStatus": "IN_SYNC", "UpdateToken": policy["UpdateToken"]}
    assert config()["fqdn"] == {"SyncStatus": "IN_SYNC", "UpdateToken": token}
    assert _status(aws)["Status"] == "READY"


def test_changes_to_a_deleting_firewall_are_refused(aws: Aws) -> None:
    state_manager.set_transition(FIREWALL_DELETE_MODEL, {"progression": "manual", "times": 2})
    vpc_id, subnets = _vpc(aws, ["eu-west-1a", "eu-west-1b"])
    policy_arn = _policy_arn(aws)
    _firewall(aws, policy_arn, vpc_id, subnets[:1])
    aws.nfw.delete_firewall(FirewallName="hub")
    with pytest.raises(ClientError) as excinfo:
        aws.nfw.associate_subnets(FirewallName="hub", SubnetMappings=[{"SubnetId": subnets[1]}])
    assert _error_code(excinfo) == "InvalidOperationException"


# ------------------------------------------------------------------------------------------------ logging, tags


def _log_config(log_type: str, group: str) -> dict[str, Any]:
    return {"LogType": log_type, "LogDestinationType": "CloudWatchLogs", "LogDestination": {"logGroup": group}}


def test_logging_changes_one_destination_per_call(aws: Aws) -> None:
    vpc_id, subnets = _vpc(aws, ["eu-west-1a"])
    _firewall(aws, _policy_arn(aws), vpc_id, subnets)
    flow, alert = _log_config("FLOW", "/nfw/flow"), _log_config("ALERT", "/nfw/alert")

    with pytest.raises(ClientError) as both:
        aws.nfw.update_logging_configuration(
            FirewallName="hub", LoggingConfiguration={"LogDestinationConfigs": [flow, alert]}
        )
    assert _error_code(both) == "InvalidRequestException"
    current = aws.nfw.describe_logging_configuration(FirewallName="hub")["LoggingConfiguration"]
    assert current["LogDestinationConfigs"] == []

    aws.nfw.update_logging_configuration(FirewallName="hub", LoggingConfiguration={"LogDestinationConfigs": [flow]})
    aws.nfw.update_logging_configuration(
        FirewallName="hub", LoggingConfiguration={"LogDestinationConfigs": [flow, alert]}
    )
    current = aws.nfw.describe_logging_configuration(FirewallName="hub")["LoggingConfiguration"]
    assert current["LogDestinationConfigs"] == [flow, alert]

    moved = [_log_config("FLOW", "/nfw/flow2"), _log_config("ALERT", "/nfw/alert2")]
    with pytest.raises(ClientError) as two_changes:
        aws.nfw.update_logging_configuration(FirewallName="hub", LoggingConfiguration={"LogDestinationConfigs": moved})
    assert _error_code(two_changes) == "InvalidRequestException"
    aws.nfw.update_logging_configuration(
        FirewallName="hub", LoggingConfiguration={"LogDestinationConfigs": [moved[0], alert]}
    )
    aws.nfw.update_logging_configuration(FirewallName="hub", LoggingConfiguration={"LogDestinationConfigs": [alert]})
    current = aws.nfw.describe_logging_configuration(FirewallName="hub")["LoggingConfiguration"]
    assert current["LogDestinationConfigs"] == [alert]


def test_tags_on_firewall_policy_and_rule_group(aws: Aws) -> None:
    group_arn = _domain_group(aws)["RuleGroupResponse"]["RuleGroupArn"]
    policy_arn = _strict_policy(aws, group_arn)["FirewallPolicyResponse"]["FirewallPolicyArn"]
    vpc_id, subnets = _vpc(aws, ["eu-west-1a"])
    firewall_arn = _firewall(aws, policy_arn, vpc_id, subnets)["Firewall"]["FirewallArn"]

    for arn in (group_arn, policy_arn, firewall_arn):
        aws.nfw.tag_resource(ResourceArn=arn, Tags=[{"Key": "provisioner:deployment", "Value": "dev"}])
        keys = {tag["Key"] for tag in aws.nfw.list_tags_for_resource(ResourceArn=arn)["Tags"]}
        assert "provisioner:deployment" in keys
    aws.nfw.untag_resource(ResourceArn=firewall_arn, TagKeys=["Name"])
    assert aws.nfw.describe_firewall(FirewallArn=firewall_arn)["Firewall"]["Tags"] == [
        {"Key": "provisioner:deployment", "Value": "dev"}
    ]
    policy_tags = aws.nfw.describe_firewall_policy(FirewallPolicyArn=policy_arn)["FirewallPolicyResponse"]["Tags"]
    assert policy_tags == [{"Key": "provisioner:deployment", "Value": "dev"}]

    with pytest.raises(ClientError) as unknown:
        aws.nfw.list_tags_for_resource(ResourceArn=firewall_arn.replace("hub", "nope"))
    assert _error_code(unknown) == "ResourceNotFoundException"


# ------------------------------------------------------------------------------------------------ rule content


def _rules_group(aws: Aws, rules: str, capacity: int = 10, name: str = "rules", **group: Any) -> dict[str, Any]:
    return aws.nfw.create_rule_group(  # type: ignore[no-any-return]
        RuleGroupName=name,
        Type="STATEFUL",
        Capacity=capacity,
        RuleGroup={"RulesSource": {"RulesString": rules}, **group},
    )


def _message(excinfo: pytest.ExceptionInfo[ClientError]) -> str:
    return str(excinfo.value.response["Error"]["Message"])


def test_rules_string_takes_one_unit_of_capacity_per_rule(aws: Aws) -> None:
    rules = "# three rules, a comment and a blank line\n\n" + "".join(
        f'pass tcp any any -> 10.0.0.{i}/32 443 (msg:"r{i}"; sid:{i};)\n' for i in range(1, 4))
    with pytest.raises(ClientError) as over:
        _rules_group(aws, rules, capacity=2)
    assert _error_code(over) == "InvalidRequestException"
    assert "capacity" in _message(over) and "3" in _message(over)
    made = _rules_group(aws, rules, capacity=3)
    assert made["RuleGroupResponse"]["ConsumedCapacity"] == 3

    arn = made["RuleGroupResponse"]["RuleGroupArn"]
    token = aws.nfw.describe_rule_group(RuleGroupArn=arn)["UpdateToken"]
    bigger = {"RulesSource": {"RulesString": rules + "drop ssh any any -> any any (sid:9;)"}}
    with pytest.raises(ClientError) as grown:
        aws.nfw.update_rule_group(RuleGroupArn=arn, UpdateToken=token, RuleGroup=bigger)
    assert _error_code(grown) == "InvalidRequestException" and "capacity" in _message(grown)
    assert aws.nfw.describe_rule_group(RuleGroupArn=arn)["UpdateToken"] == token  # nothing changed


@pytest.mark.parametrize(("generated", "target_types", "needed"), [
    ("ALLOWLIST", ["TLS_SNI", "HTTP_HOST"], 3 * 2 + 2),  # a pass per domain and type, a drop per type
    ("ALLOWLIST", ["TLS_SNI"], 3 + 1),
    ("DENYLIST", ["TLS_SNI", "HTTP_HOST"], 3 * 2),
])
def test_domain_list_takes_the_capacity_of_the_rules_aws_generates(
        aws: Aws, generated: str, target_types: list[str], needed: int) -> None:
    source = {"RulesSourceList": {"Targets": ["a.example.com", ".example.org", "b.example.net"],
                                  "TargetTypes": target_types, "GeneratedRulesType": generated}}
    with pytest.raises(ClientError) as over:
        aws.nfw.create_rule_group(RuleGroupName="domains", Type="STATEFUL", Capacity=needed - 1,
                                  RuleGroup={"RulesSource": source})
    assert _error_code(over) == "InvalidRequestException" and "capacity" in _message(over)
    made = aws.nfw.create_rule_group(RuleGroupName="domains", Type="STATEFUL", Capacity=needed,
                                     RuleGroup={"RulesSource": source})
    assert made["RuleGroupResponse"]["ConsumedCapacity"] == needed


def test_an_action_aws_does_not_take_is_refused(aws: Aws) -> None:
    # Suricata knows rejectsrc; AWS takes pass, drop, reject and alert only.
    with pytest.raises(ClientError) as refused:
        _rules_group(aws, "rejectsrc tcp any any -> any any (sid:1;)")
    assert _error_code(refused) == "InvalidRequestException"
    assert "line 1: action 'rejectsrc'" in _message(refused)


def test_rule_variables_must_be_cidrs_with_valid_names(aws: Aws) -> None:
    rules = "pass tcp $HOME_NET any -> any 443 (sid:1;)"
    for variables in ({"IPSets": {"HOME_NET": {"Definition": ["not-a-cidr"]}}},
                      {"IPSets": {"1BAD": {"Definition": ["10.0.0.0/8"]}}},
                      {"PortSets": {"WEB": {"Definition": []}}}):
        with pytest.raises(ClientError) as refused:
            _rules_group(aws, rules, RuleVariables=variables)
        assert _error_code(refused) == "InvalidRequestException"


@needs_suricata
def test_a_rule_suricata_cannot_load_is_refused_with_its_line_and_reason(aws: Aws) -> None:
    rules = "\n".join((
        'drop icmp any any <> any any (msg:"ICMP is blocked"; sid:1; rev:1;)',
        "# a comment line",
        'pass tls $HOME_NET any -> any any (msg:"typo"; tls.snix; content:"example.com"; sid:2; rev:1;)',
        'pass http $HOME_NET any -> any any (msg:"nocase"; http.host; content:"example.com"; nocase; sid:3; rev:1;)',
        'pass tcp $HOME_NET any -> $NOWHERE 443 (msg:"undefined variable"; sid:4; rev:1;)',
    ))
    with pytest.raises(ClientError) as refused:
        _rules_group(aws, rules, RuleVariables={"IPSets": {"HOME_NET": {"Definition": ["10.1.0.0/16"]}}})
    assert _error_code(refused) == "InvalidRequestException"
    message = _message(refused)
    assert "3 rule(s) failed to load" in message
    assert "line 3: unknown rule keyword 'tls.snix'" in message
    assert "line 4: " in message and "nocase" in message
    assert 'line 5: Variable "NOWHERE" is not defined' in message
    assert "line 1" not in message
    assert aws.nfw.list_rule_groups()["RuleGroups"] == []

    good = "\n".join(rules.splitlines()[:2])
    arn = _rules_group(aws, good)["RuleGroupResponse"]["RuleGroupArn"]
    token = aws.nfw.describe_rule_group(RuleGroupArn=arn)["UpdateToken"]
    with pytest.raises(ClientError) as update:
        aws.nfw.update_rule_group(RuleGroupArn=arn, UpdateToken=token,
                                  RuleGroup={"RulesSource": {"RulesString": good + "\npass tcp any any -> any any"}})
    assert _error_code(update) == "InvalidRequestException" and "line 3" in _message(update)
    assert aws.nfw.describe_rule_group(RuleGroupArn=arn)["RuleGroup"]["RulesSource"]["RulesString"] == good


@needs_suricata
def test_a_domain_list_is_checked_as_the_rules_aws_generates(aws: Aws) -> None:
    source = {"RulesSourceList": {"Targets": ['evil".com'], "TargetTypes": ["TLS_SNI"],
                                  "GeneratedRulesType": "ALLOWLIST"}}
    with pytest.raises(ClientError) as refused:
        aws.nfw.create_rule_group(RuleGroupName="domains", Type="STATEFUL", Capacity=10,
                                  RuleGroup={"RulesSource": source})
    assert _error_code(refused) == "InvalidRequestException" and "line 1" in _message(refused)


# ------------------------------------------------------------------------------------------------ in use for a while


def test_a_policy_stays_in_use_for_a_while_after_its_firewall_is_deleted(aws: Aws) -> None:
    network_firewall.set_in_use_after_release(firewall_policy=2, rule_group=1)
    group_arn = _domain_group(aws)["RuleGroupResponse"]["RuleGroupArn"]
    policy_arn = _strict_policy(aws, group_arn)["FirewallPolicyResponse"]["FirewallPolicyArn"]
    vpc_id, subnets = _vpc(aws, ["eu-west-1a"])
    _firewall(aws, policy_arn, vpc_id, subnets)
    aws.nfw.delete_firewall(FirewallName="hub")

    for _ in range(2):
        with pytest.raises(ClientError) as policy_in_use:
            aws.nfw.delete_firewall_policy(FirewallPolicyArn=policy_arn)
        assert _error_code(policy_in_use) == "InvalidOperationException"
        assert "still in use" in _message(policy_in_use)
    # Meanwhile no firewall is counted as using it: only deleting it is refused.
    assert aws.nfw.describe_firewall_policy(FirewallPolicyArn=policy_arn)["FirewallPolicyResponse"][
        "NumberOfAssociations"] == 0
    aws.nfw.delete_firewall_policy(FirewallPolicyArn=policy_arn)

    with pytest.raises(ClientError) as group_in_use:
        aws.nfw.delete_rule_group(RuleGroupArn=group_arn)
    assert _error_code(group_in_use) == "InvalidOperationException"
    aws.nfw.delete_rule_group(RuleGroupArn=group_arn)


def test_a_rule_group_a_policy_update_dropped_stays_in_use_for_a_while(aws: Aws) -> None:
    network_firewall.set_in_use_after_release(rule_group=1)
    old = _domain_group(aws, name="old")["RuleGroupResponse"]["RuleGroupArn"]
    new = _domain_group(aws, name="new")["RuleGroupResponse"]["RuleGroupArn"]
    policy = _strict_policy(aws, old)
    policy_arn = policy["FirewallPolicyResponse"]["FirewallPolicyArn"]
    described = aws.nfw.describe_firewall_policy(FirewallPolicyArn=policy_arn)
    document = {**described["FirewallPolicy"], "StatefulRuleGroupReferences": [{"ResourceArn": new, "Priority": 10}]}
    aws.nfw.update_firewall_policy(FirewallPolicyArn=policy_arn, UpdateToken=described["UpdateToken"],
                                   FirewallPolicy=document)
    assert aws.nfw.describe_rule_group(RuleGroupArn=old)["RuleGroupResponse"]["NumberOfAssociations"] == 0
    with pytest.raises(ClientError) as in_use:
        aws.nfw.delete_rule_group(RuleGroupArn=old)
    assert _error_code(in_use) == "InvalidOperationException"
    aws.nfw.delete_rule_group(RuleGroupArn=old)


def test_by_default_what_is_released_can_be_deleted_at_once(aws: Aws) -> None:
    group_arn = _domain_group(aws)["RuleGroupResponse"]["RuleGroupArn"]
    policy_arn = _strict_policy(aws, group_arn)["FirewallPolicyResponse"]["FirewallPolicyArn"]
    aws.nfw.delete_firewall_policy(FirewallPolicyArn=policy_arn)
    aws.nfw.delete_rule_group(RuleGroupArn=group_arn)


# ------------------------------------------------------------------------------------------------ firewall faults


def _status(aws: Aws) -> dict[str, Any]:
    return aws.nfw.describe_firewall(FirewallName="hub")["FirewallStatus"]  # type: ignore[no-any-return]


def test_a_failed_firewall_says_why_in_each_endpoint(aws: Aws) -> None:
    vpc_id, subnets = _vpc(aws, ["eu-west-1a", "eu-west-1b"])
    _firewall(aws, _policy_arn(aws), vpc_id, subnets)
    set_firewall_fault("hub", "FAILED", region=REGION, message="Internal failure")
    status = _status(aws)
    assert status["Status"] == "FAILED"
    for state in status["SyncStates"].values():
        assert state["Attachment"]["Status"] == "FAILED"
        assert state["Attachment"]["StatusMessage"] == "Internal failure"
        assert "EndpointId" not in state["Attachment"]
    # It can still be deleted, as on AWS.
    aws.nfw.delete_firewall(FirewallName="hub")


def test_one_az_in_error_keeps_the_firewall_from_ready(aws: Aws) -> None:
    vpc_id, subnets = _vpc(aws, ["eu-west-1a", "eu-west-1b"])
    arn = _firewall(aws, _policy_arn(aws), vpc_id, subnets)["Firewall"]["FirewallArn"]
    set_firewall_fault(arn, "ERROR", region=REGION, az="eu-west-1b", message="No free IP address in the subnet")
    status = _status(aws)
    assert status["Status"] == "PROVISIONING"
    assert status["SyncStates"]["eu-west-1a"]["Attachment"]["Status"] == "READY"
    broken = status["SyncStates"]["eu-west-1b"]["Attachment"]
    assert (broken["Status"], broken["StatusMessage"]) == ("ERROR", "No free IP address in the subnet")

    set_firewall_fault("hub", None, region=REGION, az="eu-west-1b")
    assert _status(aws)["Status"] == "READY"


def test_a_capacity_constrained_configuration_is_not_in_sync(aws: Aws) -> None:
    vpc_id, subnets = _vpc(aws, ["eu-west-1a"])
    policy_arn = _policy_arn(aws)
    _firewall(aws, policy_arn, vpc_id, subnets)
    set_firewall_fault("hub", "CAPACITY_CONSTRAINED", region=REGION)
    status = _status(aws)
    assert (status["Status"], status["ConfigurationSyncStateSummary"]) == ("PROVISIONING", "CAPACITY_CONSTRAINED")
    state = status["SyncStates"]["eu-west-1a"]
    assert state["Config"]["egress"]["SyncStatus"] == "CAPACITY_CONSTRAINED"
    assert state["Attachment"]["Status"] == "READY" and "capacity" in state["Attachment"]["StatusMessage"]


def test_an_endpoint_aws_fails_to_delete_says_why_while_the_firewall_is_deleting(aws: Aws) -> None:
    state_manager.set_transition(FIREWALL_DELETE_MODEL, {"progression": "manual", "times": 3})
    vpc_id, subnets = _vpc(aws, ["eu-west-1a", "eu-west-1b"])
    _firewall(aws, _policy_arn(aws), vpc_id, subnets)
    set_firewall_fault("hub", "FAILED", region=REGION)  # a failed firewall can still be deleted
    aws.nfw.delete_firewall(FirewallName="hub")
    assert {s["Attachment"]["Status"] for s in _status(aws)["SyncStates"].values()} == {"DELETING"}
    set_firewall_fault("hub", "ERROR", region=REGION, az="eu-west-1a", message="The endpoint's ENI is in use")
    status = _status(aws)
    assert status["Status"] == "DELETING"
    stuck = status["SyncStates"]["eu-west-1a"]["Attachment"]
    assert (stuck["Status"], stuck["StatusMessage"]) == ("ERROR", "The endpoint's ENI is in use")
    assert stuck["EndpointId"].startswith("vpce-")


def test_a_fault_needs_a_known_state_and_az(aws: Aws) -> None:
    vpc_id, subnets = _vpc(aws, ["eu-west-1a"])
    _firewall(aws, _policy_arn(aws), vpc_id, subnets)
    with pytest.raises(ValueError, match="unknown fault"):
        set_firewall_fault("hub", "BROKEN", region=REGION)
    with pytest.raises(ValueError, match="no endpoint in eu-west-1c"):
        set_firewall_fault("hub", "ERROR", region=REGION, az="eu-west-1c")
