"""The firewall policy's wait is an engine poll: one read each time, `Pending` (no worker held) until ACTIVE."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from provisioner.design.config import build_config, parse_toml
from provisioner.poll import Pending
from provisioner.steps.base import Resource
from provisioner.steps.firewall import policy as policy_steps


class Nfw:
    def __init__(self, statuses: list[str]) -> None:
        self.statuses = statuses
        self.reads = 0

    def describe_firewall_policy(self, FirewallPolicyArn: str) -> dict[str, Any]:
        status = self.statuses[min(self.reads, len(self.statuses) - 1)]
        self.reads += 1
        return {"UpdateToken": "t", "FirewallPolicy": {},
                "FirewallPolicyResponse": {"FirewallPolicyArn": FirewallPolicyArn, "FirewallPolicyName": "p",
                                           "FirewallPolicyStatus": status}}


@pytest.fixture
def step(monkeypatch: pytest.MonkeyPatch) -> policy_steps.FirewallPolicy:
    config = build_config(parse_toml('deployment = "pp"\n[[spokes]]\nname = "a"\ncidr = "10.1.0.0/16"\n', "t"))
    made = policy_steps.FirewallPolicy(config)
    monkeypatch.setattr(made, "wanted", lambda ctx: {})
    return made


def test_a_policy_not_yet_active_is_pending_then_found_active(step: policy_steps.FirewallPolicy) -> None:
    nfw = Nfw(["CREATING", "CREATING", "ACTIVE"])
    ctx = SimpleNamespace(aws=SimpleNamespace(network_firewall=nfw))
    res = Resource("arn:p", live={"FirewallPolicyResponse": {"FirewallPolicyStatus": "CREATING"}})
    first = step.poll(ctx, res)  # type: ignore[arg-type]
    assert isinstance(first, Pending) and first.after == policy_steps.POLICY_FIRST_POLL_SECONDS
    assert isinstance(step.poll(ctx, res), Pending)  # type: ignore[arg-type]
    done = step.poll(ctx, res)  # type: ignore[arg-type]
    assert isinstance(done, Resource) and done.live["FirewallPolicyResponse"]["FirewallPolicyStatus"] == "ACTIVE"
    assert nfw.reads == 3


def test_an_active_policy_is_not_read_again(step: policy_steps.FirewallPolicy) -> None:
    nfw = Nfw(["ACTIVE"])
    ctx = SimpleNamespace(aws=SimpleNamespace(network_firewall=nfw))
    res = Resource("arn:p", live={"FirewallPolicyResponse": {"FirewallPolicyStatus": "ACTIVE"}})
    assert step.poll(ctx, res) is res  # type: ignore[arg-type]
    assert nfw.reads == 0
