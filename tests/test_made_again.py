"""A resource `down` deleted, made again in a parent that `down` failed to delete, is a new one: its idempotency
token is not the one that gets back the deleted resource."""

from __future__ import annotations

from botocore.exceptions import ClientError

from provisioner import steps
from provisioner.aws import clients
from provisioner.steps import flow_logs, hub_network, spoke_network, transit_gateway
from tests.conftest import client, config_text


def _vpcs_kept(**_: object) -> None:
    raise ClientError({"Error": {"Code": "DependencyViolation", "Message": "has dependencies"}}, "DeleteVpc")


def test_flow_logs_deleted_by_a_failed_down_are_made_anew_by_up(aws, workdir, monkeypatch):
    monkeypatch.setattr(steps, "FAMILIES", (hub_network, transit_gateway, spoke_network, flow_logs))
    workdir.write_config(config_text("again", hub_azs=1))
    assert workdir.run("up", "--skip-preflight").code == 0
    ec2 = client("ec2")
    first = {f["FlowLogId"] for f in ec2.describe_flow_logs()["FlowLogs"]}
    assert len(first) == 2

    monkeypatch.setattr(clients, "SESSION_HOOKS", [("before-call.ec2.DeleteVpc", _vpcs_kept)])
    assert workdir.run("down", "--yes").code == 1  # the flow logs are gone, the VPCs are not
    assert ec2.describe_flow_logs()["FlowLogs"] == []

    monkeypatch.setattr(clients, "SESSION_HOOKS", [])
    assert workdir.run("up", "--skip-preflight").code == 0
    again = {f["FlowLogId"] for f in ec2.describe_flow_logs()["FlowLogs"]}
    assert len(again) == 2 and not again & first
    status = workdir.run("status")  # (the egress check fails here: this deployment has no firewall)
    assert not [line for line in status.out.splitlines() if line.startswith("missing")], status.out
