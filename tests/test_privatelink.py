"""Back-end PrivateLink (`private_link = true`) end to end against emulated AWS and the emulated Databricks
account, read back with boto3 and the Databricks SDK only; and the switch on or off refused for a live workspace."""

from __future__ import annotations

import json
from typing import Any

import pytest

from provisioner.design.firewall import passes_to_range, policy_name
from provisioner.design.regions import region
from tests.conftest import REGION, client, config_text, live_tagged

PRIVATE_LINK = "[private_link]\nenabled = true\npublic_access = false\n"


def _state(workdir: Any, deployment: str) -> dict[str, Any]:
    return json.loads((workdir.path / "state" / f"{deployment}.json").read_text())


def _spoke_vpc(deployment: str, spoke: str) -> str:
    vpcs = client("ec2").describe_vpcs(Filters=[{"Name": "tag:Name", "Values": [f"{deployment}-{spoke}"]}])["Vpcs"]
    assert len(vpcs) == 1
    return str(vpcs[0]["VpcId"])


@pytest.mark.slow
def test_up_with_private_link_builds_endpoints_registrations_and_access_settings(aws, databricks, workdir):
    deployment = "plk"
    workdir.write_config(config_text(deployment, extra=PRIVATE_LINK))
    up = workdir.run("up")
    assert up.code == 0, up.out + up.err

    ec2 = client("ec2")
    services = region(REGION)
    vpc_id = _spoke_vpc(deployment, "main")
    endpoints = {e["ServiceName"]: e for e in ec2.describe_vpc_endpoints(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["VpcEndpoints"] if e["State"] != "deleted"}
    workspace_ep = endpoints[services.privatelink_workspace_service]
    relay_ep = endpoints[services.privatelink_relay_service]
    pl_subnets = {s["SubnetId"]: s for s in ec2.describe_subnets(
        Filters=[{"Name": "tag:Name", "Values": [f"{deployment}-main-privatelink-*"]}])["Subnets"]}
    assert sorted(s["CidrBlock"] for s in pl_subnets.values()) == ["10.173.128.0/20", "10.173.144.0/20"]
    groups = ec2.describe_security_groups(
        Filters=[{"Name": "tag:Name", "Values": [f"{deployment}-main-privatelink-sg",
                                                 f"{deployment}-main-workspace-sg"]}])["SecurityGroups"]
    by_name = {g["GroupName"]: g for g in groups}
    endpoint_sg = by_name[f"{deployment}-main-privatelink-sg"]
    workspace_sg = by_name[f"{deployment}-main-workspace-sg"]["GroupId"]
    for ep in (workspace_ep, relay_ep):
        assert ep["State"] == "available" and ep["VpcEndpointType"] == "Interface"
        assert ep["PrivateDnsEnabled"] is True
        assert sorted(ep["SubnetIds"]) == sorted(pl_subnets)
        assert [g["GroupId"] for g in ep["Groups"]] == [endpoint_sg["GroupId"]]
    # The endpoints' group: in from the workspace group on the Databricks ports only, nothing out.
    ports = sorted((p["FromPort"], p["ToPort"]) for p in endpoint_sg["IpPermissions"]
                   for pair in p["UserIdGroupPairs"] if pair["GroupId"] == workspace_sg)
    assert ports == [(443, 443), (2443, 2443), (6666, 6666), (8443, 8451)]
    assert all(not p.get("IpRanges") for p in endpoint_sg["IpPermissions"])
    assert endpoint_sg["IpPermissionsEgress"] == []
    # The PrivateLink subnets have a table of their own, with the local route only.
    tables = ec2.describe_route_tables(
        Filters=[{"Name": "association.subnet-id", "Values": list(pl_subnets)}])["RouteTables"]
    assert len(tables) == 1 and [r["GatewayId"] for r in tables[0]["Routes"]] == ["local"]

    account = databricks.account_client()
    registrations = {r.aws_vpc_endpoint_id: r for r in account.vpc_endpoints.list()}
    assert set(registrations) == {workspace_ep["VpcEndpointId"], relay_ep["VpcEndpointId"]}
    assert {str(r.state).lower() for r in registrations.values()} == {"available"}
    ws = next(w for w in account.workspaces.list() if w.workspace_name == f"{deployment}-main")
    network = account.networks.get(ws.network_id)
    assert network.vpc_endpoints.rest_api == [registrations[workspace_ep["VpcEndpointId"]].vpc_endpoint_id]
    assert network.vpc_endpoints.dataplane_relay == [registrations[relay_ep["VpcEndpointId"]].vpc_endpoint_id]
    pas = account.private_access.get(ws.private_access_settings_id)
    assert pas.region == REGION and pas.public_access_enabled is False
    assert str(getattr(pas.private_access_level, "value", pas.private_access_level)) == "ACCOUNT"

    # The firewall passes nothing to the control-plane range: that traffic no longer reaches the hub.
    # Read in the policy's order: no pass rule and no allowlist comes before the drop of the whole range.
    nfw = client("network-firewall")
    policy = nfw.describe_firewall_policy(FirewallPolicyName=policy_name(deployment))["FirewallPolicy"]
    groups = [nfw.describe_rule_group(RuleGroupArn=ref["ResourceArn"])["RuleGroup"]
              for ref in sorted(policy["StatefulRuleGroupReferences"], key=lambda r: r["Priority"])]
    assert passes_to_range(groups, services.control_plane_cidr) == []
    assert any(f"drop ip $HOME_NET any -> {services.control_plane_cidr} any" in g["RulesSource"].get("RulesString", "")
               for g in groups)
    allowed = [t for g in groups for t in (g["RulesSource"].get("RulesSourceList") or {}).get("Targets", [])]
    assert allowed and services.scc_relay not in allowed

    # status finds every resource as configured (so a second `up` has nothing to change), its PrivateLink check
    # included.
    status = workdir.run("status", "--json")
    assert status.code == 0, status.out + status.err
    items = json.loads(status.out)["resources"]
    assert {r["status"] for r in items if r["kind"] != "check"} == {"present"}
    checks = {r["key"]: r for r in items if r["kind"] == "check"}
    assert checks["privatelink/endpoints"]["status"] == "ok"

    # Private DNS turned off behind provision's back is drift (exit 3).
    ec2.modify_vpc_endpoint(VpcEndpointId=relay_ep["VpcEndpointId"], PrivateDnsEnabled=False)
    drift = workdir.run("status")
    assert drift.code == 3 and "private DNS off" in drift.out
    assert f"main: relay endpoint {relay_ep['VpcEndpointId']} has private DNS off" in " ".join(drift.out.split())
    # `up` puts it back; and public_access may change at any time: the settings are replaced in place.
    workdir.write_config(config_text(deployment, extra="[private_link]\nenabled = true\npublic_access = true\n"))
    fixed = workdir.run("up")
    assert fixed.code == 0, fixed.out + fixed.err
    assert ec2.describe_vpc_endpoints(VpcEndpointIds=[relay_ep["VpcEndpointId"]])["VpcEndpoints"][0][
        "PrivateDnsEnabled"] is True
    assert account.private_access.get(ws.private_access_settings_id).public_access_enabled is True

    # `down` takes down what was built, even with the setting turned off since.
    workdir.write_config(config_text(deployment))
    down = workdir.run("down", "--yes", "--delete-logs")
    assert down.code == 0, down.out + down.err
    assert list(account.vpc_endpoints.list()) == [] and list(account.private_access.list()) == []
    assert live_tagged(deployment) == []


@pytest.mark.parametrize("first, then, workspace, words", [
    ("", PRIVATE_LINK, True, ["private_link = true, but workspace swt-main exists without it",
                              "private_link = false"]),
    (PRIVATE_LINK, "", True, ["private_link is off, but workspace swt-main has back-end PrivateLink",
                              "cannot take away"]),
    ("", PRIVATE_LINK, False, ["private_link is on, but network configuration swt-main-network was made without it",
                               "revert private_link"]),
    (PRIVATE_LINK, "", False, ["private_link is off, but network configuration swt-main-network was made with it"]),
], ids=["on", "off", "on-network-only", "off-network-only"])
def test_switching_private_link_on_a_live_workspace_is_refused_before_any_write(aws, databricks, workdir, calls,
                                                                                first, then, workspace, words):
    """The state file says a workspace (or, before it, a network configuration) exists, made with or without
    PrivateLink: the other setting is refused in one line, exit 2, before any AWS or Databricks write."""
    from provisioner.state import load

    workdir.write_config(config_text("swt", extra=first))
    state = load(workdir.path / "state", "swt")
    network_spec = {"name": "swt-main-network", **({"vpc_endpoints": "..."} if first else {})}
    state.record("spoke/main/network", "net-1", spec="x", spec_values=network_spec, outputs={})
    if workspace:
        state.record("spoke/main/workspace", "1234", spec="x", outputs={})
    if first:
        state.record("spoke/main/private-access-settings", "pas-1", spec="x", outputs={})
    state.close()
    workdir.write_config(config_text("swt", extra=then))
    planned = workdir.run("plan")
    assert planned.code == 0 and "warning: `up` will refuse this config" in planned.err
    databricks.requests.clear()
    result = workdir.run("up", "--skip-preflight")
    assert result.code == 2, result.out + result.err
    line = " ".join(result.err.split())
    assert all(w in line for w in words), line
    assert calls.mutating == []
    assert [r for r in databricks.requests if r.split(" ")[0] in ("POST", "PUT", "PATCH", "DELETE")
            and "/oidc/" not in r] == []


def test_without_the_enterprise_tier_up_fails_saying_so(aws, databricks, workdir, monkeypatch):
    from provisioner import cli
    from provisioner.steps.privatelink import PrivateAccessSettings

    monkeypatch.setattr(cli, "all_steps", lambda config: [PrivateAccessSettings(config, "main")])
    monkeypatch.setattr(cli, "all_checks", lambda config: [])
    databricks.settings.enterprise_tier = False
    workdir.write_config(config_text("ent", extra="private_link = true"))
    result = workdir.run("up", "--skip-preflight")
    assert result.code == 1, result.out + result.err
    assert "Enterprise" in result.out + result.err
    assert list(databricks.account_client().private_access.list()) == []


@pytest.mark.parametrize("extra, says", [
    ("private_link = true\nregion = 'ap-northeast-1'\n",
     ["ap-northeast-1 has no Databricks PrivateLink endpoint services", "eu-central-1"]),
    ("[private_link]\npublic_access = false\n", ["private_link.public_access", "PrivateLink is off"]),
], ids=["region-without-services", "public-access-without-private-link"])
def test_bad_privatelink_settings_are_one_line_exit_2_and_write_nothing(aws, databricks, workdir, calls, monkeypatch,
                                                                        extra, says):
    from tests.test_bad_input import snapshot
    from tests.unit.test_config import without_privatelink_services

    # Every region of the table has endpoint services: one stands in for a region that has none.
    without_privatelink_services(monkeypatch, "ap-northeast-1")
    workdir.write_config(config_text("badpl", extra=extra))
    before = snapshot(workdir.path)
    databricks.requests.clear()
    result = workdir.run("up")
    assert result.code == 2, result.out + result.err
    [line] = result.err.strip().splitlines()
    assert all(w in line for w in says), line
    assert snapshot(workdir.path) == before and calls.calls == [] and databricks.requests == []


def test_endpoints_go_only_into_the_azs_their_service_is_offered_in(aws, monkeypatch):
    """AWS offers an endpoint service in the AZs its provider chose (us-west-1's Databricks services are not in
    every AZ: terraform-databricks-sra #216) and refuses a subnet of another AZ."""
    from types import SimpleNamespace

    from provisioner.aws.errors import CloudError
    from provisioner.design.config import build_config
    from provisioner.design.layout import layout
    from provisioner.sandbox import ec2_patches
    from provisioner.steps.privatelink import RELAY, DatabricksEndpoint
    from tests.conftest import ACCOUNT_ID

    config = build_config({"databricks_account_id": ACCOUNT_ID, "deployment": "plaz", "region": REGION,
                           "private_link": True})
    spoke = layout(config).spokes[0]
    service = region(REGION).privatelink_relay_service
    second = spoke.azs[1]
    ec2 = client("ec2")
    monkeypatch.setitem(ec2_patches.DATABRICKS_SERVICE_AZS, service, (second,))
    offered = ec2.describe_vpc_endpoint_services(ServiceNames=[service])["ServiceDetails"]
    assert [d["AvailabilityZones"] for d in offered] == [[second]]
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    for attribute in ("EnableDnsSupport", "EnableDnsHostnames"):
        ec2.modify_vpc_attribute(VpcId=vpc, **{attribute: {"Value": True}})
    subnets = {az: ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.9.{i}.0/24", AvailabilityZone=az)["Subnet"]["SubnetId"]
               for i, az in enumerate(spoke.azs)}
    with pytest.raises(Exception, match="does not support the availability zone"):
        ec2.create_vpc_endpoint(VpcId=vpc, VpcEndpointType="Interface", ServiceName=service,
                                SubnetIds=list(subnets.values()))

    outputs = {f"spoke/main/privatelink-subnet/{az}": subnet for az, subnet in subnets.items()}
    ctx = SimpleNamespace(aws=SimpleNamespace(ec2=ec2), output=lambda key, field="id": outputs[key])
    step = DatabricksEndpoint(config, spoke, RELAY, service)
    assert step._subnets(ctx) == [subnets[second]]  # type: ignore[arg-type]
    ec2.create_vpc_endpoint(VpcId=vpc, VpcEndpointType="Interface", ServiceName=service,
                            SubnetIds=step._subnets(ctx))  # type: ignore[arg-type]
    monkeypatch.setitem(ec2_patches.DATABRICKS_SERVICE_AZS, service, ("elsewhere-1z",))
    with pytest.raises(CloudError, match="none of the spoke's AZs"):
        DatabricksEndpoint(config, spoke, RELAY, service)._subnets(ctx)  # type: ignore[arg-type]
