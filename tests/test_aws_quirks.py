"""What real AWS does that a plain emulator would not, reproduced by the sandbox, and `provision` coping with it.

- ReleaseAddress of a deleted NAT gateway's Elastic IP answers AuthFailure for a while: `down` retries it.
- CreateNatGateway right after AllocateAddress answers InvalidElasticIpID.NotFound for a while: `up` retries it.
- The NAT gateway's ClientToken covers every parameter AWS compares (tags too): a rerun after a tag change and a
  NAT gateway that failed makes a new one instead of failing with IdempotentParameterMismatch.
- A firewall or endpoint FAILED, in ERROR or CAPACITY_CONSTRAINED ends the wait at once with AWS's reason.
- DeleteFirewallPolicy / DeleteRuleGroup answer "in use" for a while after the firewall or policy has gone: retried.
- A rule AWS's Suricata would refuse is refused by the sandbox, so `up` fails the way it would on AWS.

Every retry polls at the context's poll scale (0 here: PROVISION_POLL_SCALE=0), so no test waits for real.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from moto.moto_api import state_manager

from provisioner import steps
from provisioner.design import firewall as fw
from provisioner.sandbox import ec2_patches, network_firewall, suricata
from provisioner.sandbox.network_firewall import FIREWALL_DELETE_MODEL, FIREWALL_MODEL
from provisioner.steps import firewall as fwsteps
from provisioner.steps import hub_network, spoke_network, transit_gateway
from tests.conftest import REGION, client, config_text, live_tagged
from tests.hub_readback import read_status as _status
from tests.hub_readback import recorded_ids as _ids

NETWORK = (hub_network, transit_gateway, spoke_network)
WITH_FIREWALL = (*NETWORK, fwsteps)


@pytest.fixture
def faults(aws: str) -> Any:
    """The sandbox's injectable AWS behaviour, put back to normal after the test."""
    yield aws
    ec2_patches.reset_faults()
    ec2_patches.unset_transitions()
    network_firewall.set_in_use_after_release()
    state_manager.unset_transition(FIREWALL_MODEL)
    state_manager.unset_transition(FIREWALL_DELETE_MODEL)


def _families(monkeypatch: pytest.MonkeyPatch, families: tuple[Any, ...]) -> None:
    monkeypatch.setattr(steps, "FAMILIES", families)


def _nats(deployment: str) -> list[dict[str, Any]]:
    return client("ec2").describe_nat_gateways(  # type: ignore[no-any-return]
        Filter=[{"Name": "tag:provisioner:deployment", "Values": [deployment]}])["NatGateways"]


# -- Elastic IPs and NAT gateways ---------------------------------------------------------------------------------


def test_down_releases_an_address_aws_still_refuses_with_auth_failure(faults, workdir, calls, monkeypatch):
    _families(monkeypatch, NETWORK)
    workdir.write_config(config_text("eipauth", hub_azs=2))
    assert workdir.run("up").code == 0
    ec2_patches.set_fault("release_auth_failure", 3)
    calls.clear()
    started = time.monotonic()
    result = workdir.run("down", "--yes", "--delete-logs")
    assert result.code == 0, result.err
    # Each address: refused three times after its NAT gateway went, then released; no wall-clock wait.
    assert calls.calls.count("ReleaseAddress") == 2 * 4
    assert time.monotonic() - started < 60
    assert live_tagged("eipauth") == []


def test_an_address_refused_past_the_deadline_fails_down_with_aws_answer(faults, workdir, calls, monkeypatch):
    _families(monkeypatch, NETWORK)
    workdir.write_config(config_text("eipstuck", hub_azs=1))
    assert workdir.run("up").code == 0
    ec2_patches.set_fault("release_auth_failure", 10_000)
    calls.clear()
    result = workdir.run("down", "--yes", "--delete-logs")
    assert result.code == 1
    assert "AuthFailure" in result.err and "permission to access the specified resource" in " ".join(result.err.split())
    # Bounded: at most the deadline's worth of attempts at full speed (5 minutes, 5 s apart), not forever.
    assert 5 < calls.calls.count("ReleaseAddress") <= hub_network.ADDRESS_RELEASE_DEADLINE // 5
    ec2_patches.reset_faults()
    assert workdir.run("down", "--yes", "--delete-logs").code == 0  # a rerun, once AWS lets go, finishes
    assert live_tagged("eipstuck") == []


def test_up_retries_a_nat_gateway_whose_new_address_aws_does_not_see_yet(faults, workdir, calls, monkeypatch):
    _families(monkeypatch, NETWORK)
    ec2_patches.set_fault("new_allocation_not_found", 2)
    workdir.write_config(config_text("eipnew", hub_azs=2))
    result = workdir.run("up")
    assert result.code == 0, result.err
    assert calls.calls.count("AllocateAddress") == 2
    assert calls.calls.count("CreateNatGateway") == 2 * 3
    nats = _nats("eipnew")
    assert sorted(n["State"] for n in nats) == ["available", "available"]  # no twin from the retries
    ids = _ids(workdir, "eipnew")
    assert {ids[f"hub/nat/{REGION}{z}"] for z in "ab"} == {n["NatGatewayId"] for n in nats}


def _fail_without_record(real_create: Any) -> Any:
    """NatGateway.create whose NAT gateway fails at once, and whose process dies before its ID is recorded."""

    def create(self: Any, ctx: Any) -> Any:
        res = real_create(self, ctx)
        ec2_patches.fail_nat_gateway(res.id, region=REGION, failure_code="InsufficientFreeAddressesInSubnet",
                                     failure_message="Subnet has insufficient free addresses to create this NAT")
        raise KeyboardInterrupt

    return create


def test_a_rerun_after_a_failed_nat_gateway_and_a_tag_change_makes_a_new_one(faults, workdir, monkeypatch):
    _families(monkeypatch, NETWORK)
    workdir.write_config(config_text("nattags", hub_azs=1, extra='[tags]\nteam = "blue"\n'))
    real_create = hub_network.NatGateway.create
    monkeypatch.setattr(hub_network.NatGateway, "create", _fail_without_record(real_create))
    assert workdir.run("up").code == 130
    assert f"hub/nat/{REGION}a" not in _ids(workdir, "nattags")

    # Same subnet, address and recorded ID as the first create: only the tags differ. AWS compares them for a
    # known ClientToken, so the token must change with them (else: IdempotentParameterMismatch).
    monkeypatch.setattr(hub_network.NatGateway, "create", real_create)
    workdir.write_config(config_text("nattags", hub_azs=1, extra='[tags]\nteam = "green"\n'))
    result = workdir.run("up")
    assert result.code == 0, result.err
    nats = {n["State"]: n for n in _nats("nattags")}
    assert sorted(nats) == ["available", "failed"]
    assert {t["Key"]: t["Value"] for t in nats["available"]["Tags"]}["team"] == "green"
    assert _ids(workdir, "nattags")[f"hub/nat/{REGION}a"] == nats["available"]["NatGatewayId"]


# -- the firewall: states that waiting does not end ---------------------------------------------------------------


FAULTS = {
    "firewall FAILED": ("FAILED", None, "Internal failure creating the endpoint", "AWS cannot recover a failed"),
    "one endpoint in ERROR": ("ERROR", f"{REGION}b", "The subnet has no free IP addresses", "fix what AWS says"),
    "configuration CAPACITY_CONSTRAINED": ("CAPACITY_CONSTRAINED", None, "Rule capacity exceeded",
                                           "do not fit the firewall's capacity"),
}


@pytest.mark.parametrize(("fault", "az", "message", "advice"), list(FAULTS.values()), ids=list(FAULTS))
def test_a_firewall_that_cannot_become_ready_fails_up_at_once_with_aws_reason(
        faults, dns, workdir, calls, monkeypatch, fault, az, message, advice):
    _families(monkeypatch, WITH_FIREWALL)
    deployment = "fwfault"
    workdir.write_config(config_text(deployment, hub_azs=2))
    state_manager.set_transition(FIREWALL_MODEL, {"progression": "manual", "times": 3})
    real_create = fwsteps.Firewall.create

    def create_then_break(self: Any, ctx: Any) -> Any:
        res = real_create(self, ctx)
        network_firewall.set_firewall_fault(res.id, fault, region=REGION, az=az, message=message)
        return res

    monkeypatch.setattr(fwsteps.Firewall, "create", create_then_break)
    result = workdir.run("up")
    err = " ".join(result.err.split())
    assert result.code == 1
    assert message in err and advice in err
    assert fault in err
    # One look was enough: not 120 polls to the 30-minute deadline.
    assert calls.calls.count("DescribeFirewall") <= 2
    code, items = _status(workdir)
    assert code == 3
    assert any(message in line for line in items["hub/firewall"]["drift"]), items["hub/firewall"]


def test_a_firewall_endpoint_aws_fails_to_delete_fails_down_at_once(faults, dns, workdir, calls, monkeypatch):
    _families(monkeypatch, WITH_FIREWALL)
    workdir.write_config(config_text("fwdelfault", hub_azs=2))
    assert workdir.run("up").code == 0
    state_manager.set_transition(FIREWALL_DELETE_MODEL, {"progression": "manual", "times": 3})
    real_delete = fwsteps.Firewall.delete

    def delete_then_stick(self: Any, ctx: Any, res: Any) -> None:
        real_delete(self, ctx, res)
        network_firewall.set_firewall_fault(res.id, "ERROR", region=REGION, az=f"{REGION}a",
                                            message="The endpoint's network interface is in use")

    monkeypatch.setattr(fwsteps.Firewall, "delete", delete_then_stick)
    calls.clear()
    result = workdir.run("down", "--yes", "--delete-logs")
    err = " ".join(result.err.split())
    assert result.code == 1
    assert "The endpoint's network interface is in use" in err and "rerun `provision down`" in err
    assert calls.calls.count("DescribeFirewall") <= 3
    assert "DeleteFirewallPolicy" not in calls.calls  # what needs the firewall gone waits for the next `down`


# -- deleting what AWS still counts as in use ---------------------------------------------------------------------


def test_down_deletes_a_policy_and_groups_aws_still_counts_in_use(faults, dns, workdir, calls, monkeypatch):
    _families(monkeypatch, WITH_FIREWALL)
    deployment = "fwinuse"
    workdir.write_config(config_text(deployment, hub_azs=1))
    assert workdir.run("up").code == 0
    groups = len(fw.rule_group_roles(_config_of(workdir)))
    network_firewall.set_in_use_after_release(firewall_policy=2, rule_group=2)
    calls.clear()
    result = workdir.run("down", "--yes", "--delete-logs")
    assert result.code == 0, result.err
    assert calls.calls.count("DeleteFirewallPolicy") == 3
    assert calls.calls.count("DeleteRuleGroup") == 3 * groups
    nfw = client("network-firewall")
    assert nfw.list_rule_groups()["RuleGroups"] == [] and nfw.list_firewall_policies()["FirewallPolicies"] == []
    assert live_tagged(deployment) == []


def test_a_replaced_rule_group_is_deleted_once_aws_lets_go_of_it(faults, dns, workdir, calls, monkeypatch):
    _families(monkeypatch, WITH_FIREWALL)
    deployment = "fwgrowinuse"
    workdir.write_config(config_text(deployment, hub_azs=1))
    assert workdir.run("up").code == 0
    network_firewall.set_in_use_after_release(rule_group=2)
    many = ", ".join(f'"host{i}.example.com"' for i in range(30))
    workdir.write_config(config_text(deployment, hub_azs=1, extra=f"[firewall]\nextra_allowed_fqdns = [{many}]\n"))
    calls.clear()
    result = workdir.run("up")
    assert result.code == 0, result.err
    assert calls.calls.count("DeleteRuleGroup") == 3
    names = [g["Name"] for g in client("network-firewall").list_rule_groups()["RuleGroups"]]
    assert f"{deployment}-allowlist-cap200" in names and f"{deployment}-allowlist-cap50" not in names


def _config_of(workdir: Any) -> Any:
    from tests.hub_readback import config

    return config((workdir.path / "provision.toml").read_text())


# -- rules AWS's Suricata refuses ---------------------------------------------------------------------------------


@pytest.mark.skipif(not suricata.available(), reason=suricata.unavailable_reason())
def test_a_rule_suricata_refuses_fails_up_as_aws_would(faults, dns, workdir, monkeypatch):
    """`nocase` on `http.host` (which provision once wrote) loads nowhere: AWS refuses the whole group."""
    _families(monkeypatch, WITH_FIREWALL)

    def with_nocase(keyword: str, domain: str) -> tuple[str, ...]:
        return (keyword, f'content:"{domain}"', "startswith", "nocase", "endswith")

    monkeypatch.setattr(fw, "domain_match", with_nocase)
    text = config_text("fwbadrule", spokes=(), hub_azs=1) + '[[spokes]]\nname = "bu1"\ncidr = "10.1.0.0/16"\n' \
        'extra_allowed_fqdns = ["example.com"]\n'
    workdir.write_config(text)
    result = workdir.run("up")
    err = " ".join(result.err.split())
    assert result.code == 1
    assert "InvalidRequestException" in err and "Suricata rules are invalid" in err
    assert "http.host keyword specified along with \"nocase\"" in err
    assert "hub/firewall/rule-group/spoke-allowlist" not in _ids(workdir, "fwbadrule")
