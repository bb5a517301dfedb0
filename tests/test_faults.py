"""Whatever the network does: `up`, `status` and `down` through a proxy that fails a fifth of the AWS requests,
half of them after they took effect (the reply lost), and never a twin.

Each run is seeded, so a failure replays. What is checked reads the emulator directly, around the proxy: every
component of the deployment exists exactly once after `up`, and nothing tagged is left after `down`.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config as BotoConfig

from provisioner import steps
from provisioner.design.naming import COMPONENT_TAG, DEPLOYMENT_TAG, tag_map
from provisioner.sandbox.faults import FaultPlan, FaultyProxy
from provisioner.steps import dns_firewall, firewall, flow_logs, hub_network, spoke_network, transit_gateway
from tests.conftest import REGION, config_text, live_tagged

SPOKES = (("sales", "10.20.0.0/16"), ("finance", "10.30.0.0/16"))
# EC2 describe calls whose items carry our tags, and the state that means "gone".
KINDS = (("describe_vpcs", "Vpcs", {}), ("describe_subnets", "Subnets", {}),
         ("describe_route_tables", "RouteTables", {}), ("describe_internet_gateways", "InternetGateways", {}),
         ("describe_addresses", "Addresses", {}), ("describe_nat_gateways", "NatGateways", {}),
         ("describe_security_groups", "SecurityGroups", {}), ("describe_vpc_endpoints", "VpcEndpoints", {}),
         ("describe_transit_gateways", "TransitGateways", {}),
         ("describe_transit_gateway_vpc_attachments", "TransitGatewayVpcAttachments", {}),
         ("describe_transit_gateway_route_tables", "TransitGatewayRouteTables", {}),
         ("describe_flow_logs", "FlowLogs", {}))
GONE = ("deleted", "deleting", "failed")


@pytest.fixture
def aws_families(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(steps, "FAMILIES", (hub_network, transit_gateway, spoke_network, firewall, dns_firewall,
                                            flow_logs))


@pytest.fixture
def faulty(aws: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Start a proxy at a given rate and seed; provision's AWS calls go through it."""
    proxies: list[FaultyProxy] = []

    def start(rate: float, seed: int) -> FaultyProxy:
        proxy = FaultyProxy(aws, FaultPlan(rate, seed)).start()
        proxies.append(proxy)
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        return proxy

    yield start
    for proxy in proxies:
        proxy.stop()


def _direct(service: str, url: str) -> Any:
    return boto3.client(service, region_name=REGION, endpoint_url=url,
                        config=BotoConfig(retries={"total_max_attempts": 1}))


def components(deployment: str, url: str) -> Counter[str]:
    """How many live EC2 resources carry each component tag of the deployment."""
    ec2 = _direct("ec2", url)
    found: Counter[str] = Counter()
    for method, result, params in KINDS:
        for item in getattr(ec2, method)(**params)[result]:
            tags = tag_map(item.get("Tags") or item.get("TagSet"))
            state = str(item.get("State") or item.get("FlowLogStatus") or "").lower()
            if tags.get(DEPLOYMENT_TAG) == deployment and state not in GONE:
                found[tags[COMPONENT_TAG]] += 1
    return found


def resolver_objects(url: str) -> Counter[str]:
    r53 = _direct("route53resolver", url)
    return Counter({
        "domain lists": len([d for d in r53.list_firewall_domain_lists()["FirewallDomainLists"]
                             if not d.get("ManagedOwnerName")]),
        "rule groups": len(r53.list_firewall_rule_groups()["FirewallRuleGroups"]),
        "associations": len(r53.list_firewall_rule_group_associations()["FirewallRuleGroupAssociations"]),
        "query log configs": len(r53.list_resolver_query_log_configs()["ResolverQueryLogConfigs"]),
    })


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_up_status_down_through_a_fifth_of_requests_failing(aws, workdir, faulty, aws_families, monkeypatch, seed):
    deployment = f"faults{seed}"
    workdir.write_config(config_text(deployment, spokes=SPOKES, hub_azs=2))
    proxy = faulty(0.2, seed)

    up = workdir.run("up")
    assert up.code == 0, up.out + up.err
    twins = {component: n for component, n in components(deployment, aws).items() if n > 1}
    assert twins == {}
    state = json.loads((workdir.path / "state" / f"{deployment}.json").read_text())
    assert set(components(deployment, aws)) <= set(state["resources"])
    assert resolver_objects(aws) == Counter({"domain lists": 2, "rule groups": 1, "associations": 2,
                                             "query log configs": 1})

    status = workdir.run("status")
    assert status.code == 0, status.out + status.err
    down = workdir.run("down", "--yes", "--delete-logs")
    assert down.code == 0, down.out + down.err
    # The run really met faults of every kind.
    assert all(proxy.plan.injected[kind] for kind in ("before", "after-503", "after-drop"))
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws)  # read back around the proxy
    assert live_tagged(deployment) == []
    assert sum(resolver_objects(aws).values()) == 0


@pytest.mark.slow
@pytest.mark.parametrize("seed", [7])
def test_the_whole_deployment_through_faults_on_both_clouds(aws, databricks, workdir, faulty, monkeypatch, seed):
    """AWS and the Databricks account (its sign-in included) both failing a fifth of requests, before or after
    they take effect: every command finishes first time, and nothing is made twice or left behind."""
    from provisioner.sandbox.databricks_api import Faults
    from tests.test_databricks_faults import _objects, _one_of_each

    deployment = f"bothfaulty{seed}"
    workdir.write_config(config_text(deployment, hub_azs=2))
    faulty(0.2, seed)
    databricks.settings.faults = Faults(rate=0.2, seed=seed)

    for command in (("up",), ("status",), ("down", "--yes", "--delete-logs")):
        result = workdir.run(*command)
        assert result.code == 0, f"{command}: {result.out + result.err}"
        if command == ("up",):
            databricks.settings.faults, faults = None, databricks.settings.faults
            assert _objects(databricks) == _one_of_each(deployment)
            assert {c: n for c, n in components(deployment, aws).items() if n > 1} == {}
            databricks.settings.faults = faults
    databricks.settings.faults = None
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws)
    assert live_tagged(deployment) == []
    assert all(not names for names in _objects(databricks).values())
