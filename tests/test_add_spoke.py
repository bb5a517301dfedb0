"""Adding a spoke to a live deployment: only the new spoke is built, and only the shared resources that must learn
of it change; no write touches another spoke's resources, and the firewall is never more open, even for a moment."""

from __future__ import annotations

import re
from typing import Any

import pytest

from provisioner.aws import clients
from provisioner.state import load
from tests.conftest import config_text

ONE = (("bu1", "10.1.0.0/16"),)
TWO = (*ONE, ("bu2", "10.2.0.0/16"))


class Writes:
    """Every mutating AWS call with its parameters (botocore's provide-client-params hook)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    def __call__(self, params: dict[str, Any], model: Any, **kwargs: Any) -> None:
        if clients.is_mutating(model.name):
            self.calls.append((model.service_model.service_name, model.name, dict(params)))


IDENTIFYING = re.compile(r"(Id|Ids|Arn|Name|Bucket|Resources|ResourceArn|RoleName|logGroupName|resourceArn)$")


def _targets(params: dict[str, Any]) -> list[str]:
    """What a call acts on: its identifying parameters (not contents such as a rule group's domain list)."""
    return [s for key, value in params.items() if IDENTIFYING.search(key) for s in _strings(value)]


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list | tuple):
        return [s for v in value for s in _strings(v)]
    return []


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> Writes:
    log = Writes()
    monkeypatch.setattr(clients, "SESSION_HOOKS", [("provide-client-params.*.*", log)])
    return log


def test_adding_a_spoke_writes_only_the_new_spoke_and_what_must_learn_of_it(aws, workdir, writes):
    workdir.write_config(config_text("grow", spokes=ONE))
    assert workdir.run("up").code == 0
    before = load(workdir.path / "state", "grow").resources()
    before_targets = _allowlist_targets()
    assert any("grow-bu1-rootbucket" in t for t in before_targets)
    control_plane = before["hub/firewall/rule-group/control-plane"]["id"]
    before_control_plane = _rules(control_plane)
    assert any(r.startswith("pass tls 10.1.0.0/16 ") for r in before_control_plane)  # bu1's workspace host
    writes.calls.clear()

    workdir.write_config(config_text("grow", spokes=TWO))
    result = workdir.run("up")
    assert result.code == 0, result.err
    after = load(workdir.path / "state", "grow").resources()

    # Every ID of what existed, mapped to its state key (a firewall routes step's ID lists its route tables).
    owner: dict[str, str] = {}
    for key, entry in before.items():
        for part in str(entry["id"]).split(","):
            owner.setdefault(part.split(":")[0] if part.startswith("rtb-") else part, key)
    touched: dict[str, set[str]] = {}
    for _service, op, params in writes.calls:
        for text in _targets(params):
            if text in owner:
                touched.setdefault(owner[text], set()).add(op)
            elif text.startswith("arn:") and text.rsplit("/", 1)[-1] in owner:  # an IAM role by name
                touched.setdefault(owner[text.rsplit("/", 1)[-1]], set()).add(op)

    # No write touches anything of the other spoke.
    assert {k: ops for k, ops in touched.items() if k.startswith("spoke/bu1/")} == {}
    # The shared resources written are those that must learn of the new spoke (or that it joins).
    learn = ("hub/firewall/rule-group/", "hub/firewall/policy", "hub/firewall/routes/",
             "hub/dns-firewall/domain-list/allowed", "hub/tgw-route-table/", "hub/firewall-subnet-route-table/",
             "hub/nat-subnet-route-table/")
    joins = {"hub/transit-gateway", "hub/dns-firewall/rule-group", "hub/dns-query-logging",
             "hub/flow-logs/log-group", "hub/flow-logs/role"}
    assert {k for k in touched if not k.startswith(learn) and k not in joins} == set()
    assert {k for k in after if k not in before} == {k.replace("bu1", "bu2") for k in before
                                                     if k.startswith("spoke/bu1/")}
    assert all(before[k]["id"] == after[k]["id"] for k in before if "/routes/" not in k)

    # The firewall is changed in place, never opened: no rule group or policy is deleted or made anew, and every
    # rule group has its final form before the policy changes (it only adds the new spoke's CIDR to HOME_NET), but
    # for the control-plane group learning the new workspace's host once that workspace exists: from bu2 alone.
    firewall = [(op, params) for service, op, params in writes.calls if service == "network-firewall"]
    assert not [op for op, _ in firewall if op.startswith(("Delete", "Create", "Disassociate"))]
    policy_at = [op for op, _ in firewall].index("UpdateFirewallPolicy")
    (learnt,) = [params for op, params in firewall[policy_at:] if op == "UpdateRuleGroup"]
    assert learnt["RuleGroupArn"] == control_plane
    rules = learnt["RuleGroup"]["RulesSource"]["RulesString"].splitlines()
    assert set(before_control_plane) <= set(rules)
    added = set(rules) - set(before_control_plane)
    assert len(added) == 2 and all(r.startswith("pass tls 10.2.0.0/16 any -> 18.159.44.32/28 ") for r in added)
    # Every domain allowed before is in every version of the allowlist written (never dropped and re-added), and
    # every rule group written keeps the other spoke in HOME_NET.
    for _service, op, params in writes.calls:
        if op == "UpdateRuleGroup":
            group = params["RuleGroup"]
            assert "10.1.0.0/16" in group["RuleVariables"]["IPSets"]["HOME_NET"]["Definition"]
            if "allowlist" in params.get("RuleGroupArn", ""):
                assert set(before_targets) <= set(group["RulesSource"]["RulesSourceList"]["Targets"])


def _rules(arn: str) -> list[str]:
    from tests.conftest import client

    got = client("network-firewall").describe_rule_group(RuleGroupArn=arn)
    return list(got["RuleGroup"]["RulesSource"]["RulesString"].splitlines())


def _allowlist_targets() -> list[str]:
    from tests.conftest import client

    nfw = client("network-firewall")
    arn = next(g["Arn"] for g in nfw.list_rule_groups()["RuleGroups"] if "allowlist" in g["Name"])
    return list(nfw.describe_rule_group(RuleGroupArn=arn)["RuleGroup"]["RulesSource"]["RulesSourceList"]["Targets"])
