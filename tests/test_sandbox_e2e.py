"""End to end through real processes: `provision sandbox` in one, `provision` commands in others, and the result
read back with boto3 and the Databricks SDK, independently of provision's own code paths."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config as BotoConfig

pytestmark = pytest.mark.slow

TIME_SCALE = "0.01"


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "DATABRICKS_", "PROVISION_"))}
    env["COLUMNS"] = "160"
    env.update(extra or {})
    return env


def provision(workdir: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "provisioner", *args], cwd=workdir, env=_env(), text=True,
                          capture_output=True, timeout=timeout, check=False)


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[dict[str, str]]:
    """`provision sandbox` in the foreground of its own process, as a user would run it."""
    proc = subprocess.Popen([sys.executable, "-m", "provisioner", "sandbox", "--time-scale", TIME_SCALE],
                            cwd=tmp_path, env=_env(), text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    exports: dict[str, str] = {}
    deadline = time.monotonic() + 60
    assert proc.stdout is not None
    while time.monotonic() < deadline and "PROVISION_POLL_SCALE" not in exports:
        line = proc.stdout.readline()
        if not line:
            break
        if line.strip().startswith("export "):
            key, _, value = line.strip()[len("export "):].partition("=")
            exports[key] = value.strip("'")
    assert "AWS_ENDPOINT_URL" in exports, "sandbox did not start"
    try:
        yield exports
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)


def _aws(exports: dict[str, str], service: str) -> object:
    return boto3.client(service, region_name="eu-central-1", endpoint_url=exports["AWS_ENDPOINT_URL"],
                        aws_access_key_id=exports["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=exports["AWS_SECRET_ACCESS_KEY"],
                        config=BotoConfig(retries={"total_max_attempts": 2}))


def _tagged(exports: dict[str, str], deployment: str) -> list[dict[str, object]]:
    tagging = _aws(exports, "resourcegroupstaggingapi")
    pages = tagging.get_paginator("get_resources").paginate(  # type: ignore[attr-defined]
        TagFilters=[{"Key": "provisioner:deployment", "Values": [deployment]}])
    return [r for page in pages for r in page["ResourceTagMappingList"]]


def _live_ec2(exports: dict[str, str], deployment: str) -> dict[str, int]:
    """Counts of live (not deleted) EC2 resources carrying the deployment's tag."""
    ec2 = _aws(exports, "ec2")
    flt = [{"Name": "tag:provisioner:deployment", "Values": [deployment]}]
    counts = {
        "vpcs": len(ec2.describe_vpcs(Filters=flt)["Vpcs"]),  # type: ignore[attr-defined]
        "subnets": len(ec2.describe_subnets(Filters=flt)["Subnets"]),  # type: ignore[attr-defined]
        "nats": len([n for n in ec2.describe_nat_gateways(Filter=flt)["NatGateways"]  # type: ignore[attr-defined]
                     if n["State"] not in ("deleted", "deleting")]),
        "tgws": len([t for t in ec2.describe_transit_gateways(Filters=flt)["TransitGateways"]  # type: ignore[attr-defined]
                     if t["State"] not in ("deleted", "deleting")]),
    }
    return counts


# Plan entries that are not AWS resources of their own: routes inside route tables, a logging configuration,
# the workspace hosts in the control-plane rule group, and the Databricks objects (checked through the Databricks
# SDK instead).
NOT_TAGGED_KINDS = {"firewall routes", "firewall logging", "firewall workspace hosts", "Databricks credentials",
                    "Databricks network",
                    "Databricks storage", "Databricks token", "Databricks workspace",
                    "Databricks network policy", "Databricks workspace network option",
                    "Databricks VPC endpoint", "Databricks private access settings",
                    "Resolver query logging association"}


def _components(exports: dict[str, str], deployment: str) -> Counter[str]:
    """How many live resources carry each `provisioner:component` tag of the deployment, read service by
    service with plain boto3."""
    found: Counter[str] = Counter()

    def add(tags: list[dict[str, str]] | None) -> None:
        tag = {t["Key"]: t["Value"] for t in tags or []}
        if tag.get("provisioner:deployment") == deployment and tag.get("ManagedBy") == "provisioner":
            found[tag["provisioner:component"]] += 1

    ec2: Any = _aws(exports, "ec2")
    flt = [{"Name": "tag:provisioner:deployment", "Values": [deployment]}]
    live = ("available", "pending", "attached")
    for vpc in ec2.describe_vpcs(Filters=flt)["Vpcs"]:
        add(vpc.get("Tags"))
    for subnet in ec2.describe_subnets(Filters=flt)["Subnets"]:
        add(subnet.get("Tags"))
    for table in ec2.describe_route_tables(Filters=flt)["RouteTables"]:
        add(table.get("Tags"))
    for igw in ec2.describe_internet_gateways(Filters=flt)["InternetGateways"]:
        add(igw.get("Tags"))
    for group in ec2.describe_security_groups(Filters=flt)["SecurityGroups"]:
        add(group.get("Tags"))
    for address in ec2.describe_addresses(Filters=flt)["Addresses"]:
        add(address.get("Tags"))
    for nat in ec2.describe_nat_gateways(Filter=flt)["NatGateways"]:
        if nat["State"] in live:
            add(nat.get("Tags"))
    for endpoint in ec2.describe_vpc_endpoints(Filters=flt)["VpcEndpoints"]:
        if endpoint["State"].lower() in live:
            add(endpoint.get("Tags"))
    for tgw in ec2.describe_transit_gateways(Filters=flt)["TransitGateways"]:
        if tgw["State"] in live:
            add(tgw.get("Tags"))
    for attachment in ec2.describe_transit_gateway_attachments(Filters=flt)["TransitGatewayAttachments"]:
        if attachment["State"] in live:
            add(attachment.get("Tags"))
    for table in ec2.describe_transit_gateway_route_tables(Filters=flt)["TransitGatewayRouteTables"]:
        if table["State"] in live:
            add(table.get("Tags"))
    for flow_log in ec2.describe_flow_logs(Filters=flt)["FlowLogs"]:
        add(flow_log.get("Tags"))
    r53: Any = _aws(exports, "route53resolver")
    resolver = [d["Arn"] for d in r53.list_firewall_domain_lists()["FirewallDomainLists"]
                if not d.get("ManagedOwnerName")]
    resolver += [g["Arn"] for g in r53.list_firewall_rule_groups()["FirewallRuleGroups"]]
    resolver += [a["Arn"] for a in r53.list_firewall_rule_group_associations()["FirewallRuleGroupAssociations"]]
    resolver += [c["Arn"] for c in r53.list_resolver_query_log_configs()["ResolverQueryLogConfigs"]]
    for arn in resolver:
        add(r53.list_tags_for_resource(ResourceArn=arn)["Tags"])
    iam: Any = _aws(exports, "iam")
    for role in iam.list_roles()["Roles"]:
        add(iam.list_role_tags(RoleName=role["RoleName"])["Tags"])
    s3: Any = _aws(exports, "s3")
    for bucket in s3.list_buckets()["Buckets"]:
        add(s3.get_bucket_tagging(Bucket=bucket["Name"])["TagSet"])
    nfw: Any = _aws(exports, "network-firewall")
    arns = [f["FirewallArn"] for f in nfw.list_firewalls()["Firewalls"]]
    arns += [p["Arn"] for p in nfw.list_firewall_policies()["FirewallPolicies"]]
    arns += [g["Arn"] for g in nfw.list_rule_groups()["RuleGroups"]]
    for arn in arns:
        add(nfw.list_tags_for_resource(ResourceArn=arn)["Tags"])
    logs: Any = _aws(exports, "logs")
    for group in logs.describe_log_groups()["logGroups"]:
        add([{"Key": k, "Value": v} for k, v in
             logs.list_tags_for_resource(resourceArn=group["arn"].removesuffix(":*"))["tags"].items()])
    return found


def _check_routes_through_firewall(exports: dict[str, str], deployment: str) -> None:
    """The egress path read back with boto3 alone, firewall before NAT: per AZ, the TGW subnet's 0/0 goes to that
    AZ's firewall endpoint, the firewall subnet's 0/0 to that AZ's NAT, the NAT subnet's 0/0 to the internet
    gateway and its spoke route back to the endpoint; no IGW edge table; the spoke's 0/0 to the Transit Gateway."""
    ec2: Any = _aws(exports, "ec2")
    nfw: Any = _aws(exports, "network-firewall")
    firewall = nfw.describe_firewall(FirewallName=nfw.list_firewalls()["Firewalls"][0]["FirewallName"])
    endpoint = {az: s["Attachment"]["EndpointId"] for az, s in firewall["FirewallStatus"]["SyncStates"].items()}
    tables = {}
    for table in ec2.describe_route_tables(
            Filters=[{"Name": "tag:provisioner:deployment", "Values": [deployment]}])["RouteTables"]:
        component = {t["Key"]: t["Value"] for t in table["Tags"]}["provisioner:component"]
        tables[component] = {r.get("DestinationCidrBlock"): r.get("GatewayId") or r.get("NatGatewayId")
                             or r.get("TransitGatewayId") for r in table["Routes"]}
    nats = {n["SubnetId"]: n["NatGatewayId"] for n in ec2.describe_nat_gateways()["NatGateways"]
            if n["State"] == "available"}
    subnet_az = {s["SubnetId"]: s["AvailabilityZone"] for s in ec2.describe_subnets()["Subnets"]}
    nat_by_az = {subnet_az[subnet]: nat for subnet, nat in nats.items()}
    assert len(endpoint) == 2
    for az, vpce in endpoint.items():
        assert tables[f"hub/tgw-subnet-route-table/{az}"]["0.0.0.0/0"] == vpce
        assert tables[f"hub/firewall-subnet-route-table/{az}"]["0.0.0.0/0"] == nat_by_az[az]
        assert tables[f"hub/nat-subnet-route-table/{az}"]["0.0.0.0/0"].startswith("igw-")
        assert tables[f"hub/nat-subnet-route-table/{az}"]["10.173.0.0/16"] == vpce
    assert "hub/igw-route-table" not in tables and "hub/firewall-subnet-route-table" not in tables
    assert tables["spoke/main/route-table"]["0.0.0.0/0"].startswith("tgw-")


def _workspaces(exports: dict[str, str]) -> list[object]:
    from databricks.sdk import AccountClient

    account = AccountClient(host=exports["DATABRICKS_HOST"], account_id=exports["DATABRICKS_ACCOUNT_ID"],
                            client_id=exports["DATABRICKS_CLIENT_ID"],
                            client_secret=exports["DATABRICKS_CLIENT_SECRET"])
    return list(account.workspaces.list())


def test_newcomer_flow_up_status_down(tmp_path: Path, sandbox: dict[str, str]) -> None:
    # As the README shows: no provision.toml at all, so the defaults and a generated deployment name.
    plan = provision(tmp_path, "plan", "--sandbox", "--json")
    assert plan.returncode == 0, plan.stderr
    planned = json.loads(plan.stdout)["resources"]
    assert {r["action"] for r in planned if r["key"] != "hub/firewall/workspace-hosts"} == {"create"}

    up = provision(tmp_path, "up", "--sandbox")
    assert up.returncode == 0, up.stdout + up.stderr
    [state] = (tmp_path / "state").glob("demo*.json")
    deployment = state.stem
    # The summary: hub and spoke CIDRs, a firewall endpoint per AZ, the workspace URL, the allowlist.
    assert "hub      10.10.0.0/16" in up.stdout
    assert "eu-central-1a: TGW subnet -> firewall endpoint vpce-" in up.stdout
    assert "eu-central-1b: TGW subnet -> firewall endpoint vpce-" in up.stdout
    assert f"/ws/{deployment}-main" in up.stdout and "10.173.0.0/16" in up.stdout
    assert "frankfurt.cloud.databricks.com" in up.stdout and "files.pythonhosted.org" in up.stdout

    # Every planned AWS resource exists once, with its tags; the routes go through the firewall; the
    # Databricks objects exist and the workspace is RUNNING.
    components = _components(sandbox, deployment)
    tagged = {r["key"] for r in planned if r["kind"] not in NOT_TAGGED_KINDS}
    assert {key: components[key] for key in tagged} == dict.fromkeys(tagged, 1)
    assert set(components) == tagged
    _check_routes_through_firewall(sandbox, deployment)
    workspaces = _workspaces(sandbox)
    assert [w.workspace_status.value for w in workspaces] == ["RUNNING"]  # type: ignore[attr-defined]
    assert [w.workspace_name for w in workspaces] == [f"{deployment}-main"]  # type: ignore[attr-defined]

    status = provision(tmp_path, "status", "--sandbox", "--json")
    assert status.returncode == 0, status.stdout + status.stderr
    assert json.loads(status.stdout)["healthy"] is True

    out = provision(tmp_path, "output", "--sandbox")
    assert out.returncode == 0 and "dapi" not in out.stdout

    down = provision(tmp_path, "down", "--sandbox", "--yes", "--delete-logs")
    assert down.returncode == 0, down.stdout + down.stderr
    assert _components(sandbox, deployment) == Counter()
    assert _live_ec2(sandbox, deployment) == {"vpcs": 0, "subnets": 0, "nats": 0, "tgws": 0}
    assert _workspaces(sandbox) == []
    assert [r for r in _tagged(sandbox, deployment) if ":ec2:" not in str(r["ResourceARN"])] == []


def test_kill_mid_up_then_rerun_completes_without_duplicates(tmp_path: Path, sandbox: dict[str, str]) -> None:
    (tmp_path / "provision.toml").write_text('deployment = "crashy"\n')
    proc = subprocess.Popen([sys.executable, "-m", "provisioner", "up", "--sandbox"], cwd=tmp_path, env=_env(),
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    state = tmp_path / "state" / "crashy.json"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # wait until it is well into the build: NATs recorded
        if state.exists() and '"hub/nat/' in state.read_text():
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL

    # The sandbox keeps serving; the rerun adopts what exists and completes.
    rerun = provision(tmp_path, "up", "--sandbox")
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert _live_ec2(sandbox, "crashy") == {"vpcs": 2, "subnets": 10, "nats": 2, "tgws": 1}
    assert set(_components(sandbox, "crashy").values()) == {1}  # nothing made twice
    assert provision(tmp_path, "status", "--sandbox").returncode == 0
    assert provision(tmp_path, "down", "--sandbox", "--yes", "--delete-logs").returncode == 0


def test_detached_sandbox_is_started_recorded_and_stopped(tmp_path: Path) -> None:
    (tmp_path / "provision.toml").write_text('deployment = "detached"\n')
    plan = provision(tmp_path, "plan", "--sandbox")
    assert plan.returncode == 0, plan.stderr
    record = json.loads((tmp_path / "state" / "sandbox.record").read_text())
    os.kill(record["pid"], 0)  # alive
    # A real run refuses a sandbox state file, and the reverse.
    try:
        up = provision(tmp_path, "up", "--sandbox", "--workers", "8")
        assert up.returncode == 0, up.stdout + up.stderr
        real = provision(tmp_path, "status")
        assert real.returncode == 2 and "sandbox" in real.stderr
    finally:
        stop = provision(tmp_path, "sandbox", "stop")
    assert stop.returncode == 0 and str(record["pid"]) in stop.stdout
    with pytest.raises(ProcessLookupError):
        for _ in range(100):
            os.kill(record["pid"], 0)
            time.sleep(0.05)
