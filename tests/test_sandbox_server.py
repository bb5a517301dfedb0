"""The sandbox process's pieces, in-process: request log, records, latency model."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from botocore.config import Config as BotoConfig

from provisioner.sandbox import server


@pytest.fixture
def sandbox_lines():
    lines: list[str] = []
    sb = server.Sandbox(time_scale=0, log=lines.append)
    yield sb, lines
    sb.stop()


def test_verbose_names_service_and_action(sandbox_lines):
    sb, lines = sandbox_lines
    ec2 = boto3.client("ec2", region_name="eu-central-1", endpoint_url=sb.info.aws_url, aws_access_key_id="x",
                       aws_secret_access_key="x", config=BotoConfig(retries={"total_max_attempts": 1}))
    ec2.describe_vpcs()
    nfw = boto3.client("network-firewall", region_name="eu-central-1", endpoint_url=sb.info.aws_url,
                       aws_access_key_id="x", aws_secret_access_key="x")
    nfw.list_firewalls()
    assert "aws  ec2 DescribeVpcs -> 200" in lines
    assert "aws  network-firewall ListFirewalls -> 200" in lines


def test_a_record_of_a_dead_sandbox_is_stale(tmp_path: Path, sandbox_lines):
    sb, _ = sandbox_lines
    server.write_record(tmp_path, sb.info)
    assert server.read_record(tmp_path) == sb.info  # alive and answering
    dead = server.SandboxInfo(pid=2**22 + 12345, aws_url=sb.info.aws_url, databricks_url=sb.info.databricks_url,
                              time_scale=0.02, started_at="")
    server.write_record(tmp_path, dead)
    assert server.read_record(tmp_path) is None
    (tmp_path / server.RECORD_NAME).write_text("{not json")
    assert server.read_record(tmp_path) is None


def test_record_is_not_a_deployment_state_file(tmp_path: Path, sandbox_lines):
    """A deployment may be called `sandbox`: the record must not take its state file's name."""
    sb, _ = sandbox_lines
    (tmp_path / "sandbox.json").write_text(json.dumps({"schema_version": 2, "deployment": "sandbox",
                                                       "resources": {}}))
    server.write_record(tmp_path, sb.info)
    assert json.loads((tmp_path / "sandbox.json").read_text())["deployment"] == "sandbox"


def test_latency_model_keeps_a_nat_gateway_pending():
    from provisioner.sandbox import ec2_patches

    server.apply_latency(0.02)  # 90 s x 0.02: pending for about two seconds
    try:
        sb = server.Sandbox(time_scale=0.02)
        try:
            ec2 = boto3.client("ec2", region_name="eu-west-1", endpoint_url=sb.info.aws_url,
                               aws_access_key_id="x", aws_secret_access_key="x")
            vpc = ec2.create_vpc(CidrBlock="10.50.0.0/16")["Vpc"]["VpcId"]
            subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.50.0.0/24")["Subnet"]["SubnetId"]
            eip = ec2.allocate_address(Domain="vpc")["AllocationId"]
            nat = ec2.create_nat_gateway(SubnetId=subnet, AllocationId=eip)["NatGateway"]["NatGatewayId"]
            state = ec2.describe_nat_gateways(NatGatewayIds=[nat])["NatGateways"][0]["State"]
            assert state == "pending"
        finally:
            sb.stop()
    finally:
        ec2_patches.unset_transitions()
        server.apply_latency(0)
