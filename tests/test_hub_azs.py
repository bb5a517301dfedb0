"""Fewer (or more) hub AZs on a live deployment: the AZs kept keep their subnets, `up --prune` removes a dropped
AZ's routes before anything they lead to, and at no moment can a spoke flow reach the internet gateway around a
firewall endpoint; more AZs than the hub's subnet split has room for are refused."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from provisioner import steps
from provisioner.aws import clients
from provisioner.egress import FIREWALL_ENDPOINT, INTERNET, Source, read_network, trace_egress
from provisioner.steps import firewall, hub_network, spoke_network, transit_gateway
from tests.conftest import client, config_text, live_tagged

SPOKES = (("sales", "10.20.0.0/16"), ("finance", "10.30.0.0/16"))
AZS = ("eu-central-1a", "eu-central-1b", "eu-central-1c")
CHANGES = {"CreateRoute", "ReplaceRoute", "DeleteRoute", "AssociateRouteTable", "DisassociateRouteTable",
           "DeleteRouteTable", "ModifyTransitGatewayVpcAttachment", "DeleteNatGateway", "ReleaseAddress",
           "DeleteSubnet", "DisassociateSubnets", "UpdateSubnetChangeProtection"}


@pytest.fixture
def network_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(steps, "FAMILIES", (hub_network, transit_gateway, spoke_network, firewall))


def _state(workdir: Any, deployment: str) -> dict[str, Any]:
    return json.loads((workdir.path / "state" / f"{deployment}.json").read_text())


def _ids(workdir: Any, deployment: str) -> dict[str, str]:
    return {key: entry["id"] for key, entry in _state(workdir, deployment)["resources"].items()}


def _paths(ids: dict[str, str]) -> tuple[list[str], set[str]]:
    """Every spoke egress path that leaves without a firewall endpoint, and the hub AZs paths leave through."""
    vpcs = [ids["hub/vpc"], *(ids[f"spoke/{name}/vpc"] for name, _ in SPOKES)]
    data = read_network(client("ec2"), vpcs, ids["hub/transit-gateway"])
    sources = [Source(f"spoke {name} {az}", ids[f"spoke/{name}/workspace-subnet/{az}"])
               for name, _ in SPOKES for az in AZS[:2]]
    traces = trace_egress(data, sources).traces
    bypass = [str(t.egress) for t in traces if t.egress.end == INTERNET and not t.egress.of(FIREWALL_ENDPOINT)]
    through = {az for t in traces if t.egress.end == INTERNET for az in AZS if az in str(t.egress)}
    return bypass, through


def test_three_hub_azs_to_two_and_back_keeps_the_subnets_and_never_bypasses_the_firewall(
        aws, workdir, monkeypatch, network_only):
    deployment = "shrink"
    workdir.write_config(config_text(deployment, spokes=SPOKES, hub_azs=3))
    grown = workdir.run("up")
    assert grown.code == 0, grown.out + grown.err
    before = _ids(workdir, deployment)
    cidrs = {k: v["outputs"]["cidr"] for k, v in _state(workdir, deployment)["resources"].items()
             if k.startswith("hub/") and "subnet/" in k}
    assert cidrs["hub/tgw-subnet/eu-central-1a"].endswith("/20")  # the split of a 3-AZ hub: 4 new bits
    dropped = {k for k in before if k.endswith("/eu-central-1c")}
    assert len(dropped) == 9  # 3 subnets and their route tables, EIP, NAT, firewall routes

    workdir.write_config(config_text(deployment, spokes=SPOKES, hub_azs=2))
    plan = json.loads(workdir.run("plan", "--json").out)
    actions = {r["key"]: r["action"] for r in plan["resources"]}
    assert "recreate" not in actions.values()
    assert {k for k, a in actions.items() if a == "orphan"} == dropped

    kept = workdir.run("up")  # without --prune: the AZ kept, listed, no longer entered
    assert kept.code == 0, kept.err
    assert "up --prune" in kept.err
    assert set(_ids(workdir, deployment)) == set(before)
    assert _paths(before) == ([], set(AZS[:2]))
    nfw = client("network-firewall").describe_firewall(FirewallName=f"{deployment}-firewall")
    assert len(nfw["Firewall"]["SubnetMappings"]) == 3  # its endpoint stays until its routes go

    seen: list[str] = []
    violations: list[str] = []
    lock = threading.Lock()

    def after_change(model: Any, **kwargs: Any) -> None:
        if model.name not in CHANGES:
            return
        with lock:
            seen.append(model.name)
            bypass, _ = _paths(before)
            violations.extend(f"after {model.name}: {p}" for p in bypass)

    monkeypatch.setattr(clients, "SESSION_HOOKS", [("after-call.*.*", after_change)])
    pruned = workdir.run("up", "--prune", "--yes")
    monkeypatch.setattr(clients, "SESSION_HOOKS", [])
    assert pruned.code == 0, pruned.out + pruned.err
    assert violations == []
    # Routes first, then what they led to; the endpoint with protection lifted and put back; subnets last.
    assert seen.index("DeleteRoute") < seen.index("DeleteNatGateway") < seen.index("ReleaseAddress")
    assert seen.index("DeleteRoute") < seen.index("DisassociateSubnets") < seen.index("DeleteSubnet")
    assert seen.count("UpdateSubnetChangeProtection") == 2

    after = _ids(workdir, deployment)
    assert set(after) == set(before) - dropped
    assert {k: after[k] for k in after if k.startswith("hub/") and "subnet/" in k} == {
        k: before[k] for k in before if k.startswith("hub/") and "subnet/" in k and k not in dropped}
    live = " ".join(live_tagged(deployment))
    assert [k for k in dropped if before[k] in live] == []
    assert before["hub/nat/eu-central-1a"] in live and before["hub/firewall-subnet/eu-central-1b"] in live
    ec2 = client("ec2")
    assert {s["AvailabilityZone"] for s in ec2.describe_subnets(
        Filters=[{"Name": "vpc-id", "Values": [before["hub/vpc"]]}])["Subnets"]} == set(AZS[:2])
    assert len(ec2.describe_addresses()["Addresses"]) == 2
    nfw = client("network-firewall").describe_firewall(FirewallName=f"{deployment}-firewall")
    assert set(nfw["FirewallStatus"]["SyncStates"]) == set(AZS[:2])
    assert nfw["Firewall"]["SubnetChangeProtection"] is True
    attachment = ec2.describe_transit_gateway_vpc_attachments(
        TransitGatewayAttachmentIds=[before["hub/tgw-attachment"]])["TransitGatewayVpcAttachments"][0]
    assert sorted(attachment["SubnetIds"]) == sorted(before[f"hub/tgw-subnet/{az}"] for az in AZS[:2])
    assert _paths(before) == ([], set(AZS[:2]))  # still through the firewall in both AZs kept
    status = workdir.run("status")
    assert status.code == 0, status.out + status.err
    assert "no longer has" not in status.err

    # Back to three: the split has room, so the AZ comes back where it was.
    workdir.write_config(config_text(deployment, spokes=SPOKES, hub_azs=3))
    grown = workdir.run("up")
    assert grown.code == 0, grown.out + grown.err
    assert _state(workdir, deployment)["resources"]["hub/tgw-subnet/eu-central-1c"]["outputs"]["cidr"] == \
        cidrs["hub/tgw-subnet/eu-central-1c"]
    assert _paths(_ids(workdir, deployment)) == ([], set(AZS))
    assert workdir.run("down", "--yes").code == 0


def test_more_hub_azs_than_the_split_has_room_for_is_refused_in_one_line(aws, workdir, calls, network_only):
    deployment = "grow"
    workdir.write_config(config_text(deployment, hub_azs=2))
    assert workdir.run("up").code == 0
    workdir.write_config(config_text(deployment, hub_azs=3))
    calls.clear()
    for command in (("plan",), ("up",), ("status",)):
        result = workdir.run(*command)
        assert result.code == 2, result.err
        assert "hub_availability_zones = 3 does not fit the hub" in result.err and "use 2 or fewer" in result.err
        assert len(result.err.strip().splitlines()) == 1
    assert calls.mutating == []
    down = workdir.run("down", "--yes")  # what never existed is not in the way of deleting the rest
    assert down.code == 0, down.err
    assert [a for a in live_tagged(deployment) if ":logs:" not in a] == []  # log groups are kept


def test_down_deletes_what_the_config_no_longer_has(aws, workdir, network_only):
    """Fewer hub AZs and a spoke removed in the config, no `up --prune` since: `down` still deletes all of it
    (the dropped AZ's firewall routes before its NAT and subnets, as `up --prune` would)."""
    deployment = "leftover"
    workdir.write_config(config_text(deployment, spokes=SPOKES, hub_azs=3))
    assert workdir.run("up").code == 0
    workdir.write_config(config_text(deployment, spokes=SPOKES[:1], hub_azs=2))
    down = workdir.run("down", "--yes")
    assert down.code == 0, down.out + down.err
    assert [a for a in live_tagged(deployment) if ":logs:" not in a] == []  # log groups are kept
    assert [k for k in _state(workdir, deployment)["resources"] if "/log-group/" not in k] == []
