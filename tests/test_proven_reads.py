"""A hub resource taken as proven by what other reads show, with no describe of its own, only while the proof
holds: the internet gateway by an active route to it, a NAT gateway's address by the NAT gateway holding it, their
tags by the one Tagging API read. Anything that breaks the proof (a detached gateway, a twin) is described,
reported by `status` and repaired by `up`; `down` describes everything it deletes."""

from __future__ import annotations

import json

import pytest

from provisioner.design.naming import COMPONENT_TAG, DEPLOYMENT_TAG
from provisioner.steps import keys
from tests.conftest import client, config_text
from tests.hub_readback import recorded_state

DEPLOYMENT = "proofs"


@pytest.fixture
def built(aws, databricks, dns, workdir, calls):
    workdir.write_config(config_text(DEPLOYMENT))
    up = workdir.run("up")
    assert up.code == 0, up.out + up.err
    return recorded_state(workdir, DEPLOYMENT)["resources"]


def _status(workdir) -> dict[str, dict]:
    result = workdir.run("status", "--json")
    return {r["key"]: r for r in json.loads(result.out)["resources"]}


def test_a_no_op_up_and_status_describe_neither_the_gateway_nor_the_addresses(built, workdir, calls):
    calls.clear()
    assert workdir.run("up").code == 0
    assert calls.mutating == []
    assert "DescribeAddresses" not in calls.calls and "DescribeInternetGateways" not in calls.calls
    calls.clear()
    assert workdir.run("status").code == 0
    assert "DescribeAddresses" not in calls.calls


def test_a_gateway_detached_outside_is_described_reported_and_attached_again(built, workdir, calls):
    ec2 = client("ec2")
    igw, vpc = built[keys.hub("igw")]["id"], built[keys.hub("vpc")]["id"]
    ec2.detach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)

    assert _status(workdir)[keys.hub("igw")]["status"] == "drifted"
    assert workdir.run("up").code == 0
    attached = ec2.describe_internet_gateways(InternetGatewayIds=[igw])["InternetGateways"][0]["Attachments"]
    assert [a["VpcId"] for a in attached] == [vpc]
    assert workdir.run("status").code == 0


def test_a_twin_address_is_seen_through_the_tagging_read_and_deleted(built, workdir, calls):
    ec2 = client("ec2")
    az_key = next(k for k in built if k.startswith(keys.hub("eip", "")))
    twin = ec2.allocate_address(Domain="vpc", TagSpecifications=[{"ResourceType": "elastic-ip", "Tags": [
        {"Key": DEPLOYMENT_TAG, "Value": DEPLOYMENT}, {"Key": COMPONENT_TAG, "Value": az_key}]}])["AllocationId"]

    assert _status(workdir)[az_key]["status"] == "drifted"
    assert workdir.run("up").code == 0
    left = [a["AllocationId"] for a in ec2.describe_addresses()["Addresses"]]
    assert twin not in left and built[az_key]["id"] in left


def test_down_describes_what_it_deletes(built, workdir, calls):
    calls.clear()
    assert workdir.run("down", "--yes", "--delete-logs").code == 0
    assert "DescribeAddresses" in calls.calls and "DescribeInternetGateways" in calls.calls
