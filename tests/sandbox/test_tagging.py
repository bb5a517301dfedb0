"""The sandbox's Resource Groups Tagging API answers log groups under AWS's resource type, `logs:log-group`."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from provisioner.sandbox import tagging

REGION = "eu-west-1"
ACCOUNT = "123456789012"


@pytest.fixture
def clients(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[object, object]]:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    tagging.install()
    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
    with mock_aws():
        yield session.client("logs"), session.client("resourcegroupstaggingapi")


def test_guard_moto_is_the_release_the_correction_was_written_for() -> None:
    assert tagging.compatibility_problems() == []


def test_get_resources_lists_log_groups_as_logs_log_group(clients) -> None:
    logs, api = clients
    logs.create_log_group(logGroupName="/provision/dev/flow-logs", tags={"provisioner:deployment": "dev"})
    logs.create_log_group(logGroupName="/provision/prod/flow-logs", tags={"provisioner:deployment": "prod"})

    def tagged(types: list[str]) -> list[str]:
        answer = api.get_resources(TagFilters=[{"Key": "provisioner:deployment", "Values": ["dev"]}],
                                   ResourceTypeFilters=types)
        return [r["ResourceARN"] for r in answer["ResourceTagMappingList"]]

    assert tagged(["logs:log-group"]) == [f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/provision/dev/flow-logs"]
    assert tagged(["logs:loggroup"]) == []


def test_the_sandbox_server_routes_the_tagging_api_and_it_lists_dns_firewall_objects(monkeypatch) -> None:
    from provisioner.sandbox import server

    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    lines: list[str] = []
    sandbox = server.Sandbox(time_scale=0, log=lines.append)
    try:
        session = boto3.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name="eu-central-1")
        r53 = session.client("route53resolver", endpoint_url=sandbox.info.aws_url)
        api = session.client("resourcegroupstaggingapi", endpoint_url=sandbox.info.aws_url)
        made = r53.create_firewall_domain_list(CreatorRequestId="allowed", Name="allowed",
                                               Tags=[{"Key": "provisioner:deployment", "Value": "dev"}])
        answer = api.get_resources(TagFilters=[{"Key": "provisioner:deployment", "Values": ["dev"]}],
                                   ResourceTypeFilters=["route53resolver:firewall-domain-list"])
    finally:
        sandbox.stop()
    assert [r["ResourceARN"] for r in answer["ResourceTagMappingList"]] == [made["FirewallDomainList"]["Arn"]]
    assert "aws  tagging GetResources -> 200" in lines
