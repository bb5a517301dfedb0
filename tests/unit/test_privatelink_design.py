"""Back-end PrivateLink as data: the endpoints' security group, their subnets' route table, and the step graph
that `up` runs forwards and `down` backwards."""

from __future__ import annotations

import pytest

from provisioner import steps as steps_pkg
from provisioner.design.config import build_config
from provisioner.design.layout import layout
from provisioner.design.routes import privatelink_route_table, vpc_route_tables
from provisioner.design.security_group import INGRESS, privatelink_endpoint_rules
from tests.conftest import ACCOUNT_ID


def _config(**extra: object):  # type: ignore[no-untyped-def]
    return build_config({"databricks_account_id": ACCOUNT_ID, "deployment": "pl", **extra})


def test_endpoint_group_admits_only_the_workspace_group_on_the_databricks_ports():
    rules = privatelink_endpoint_rules("sg-0ws")
    assert {r.direction for r in rules} == {INGRESS}
    assert {r.peer for r in rules} == {"sg:sg-0ws"} and {r.protocol for r in rules} == {"tcp"}
    assert sorted((r.from_port, r.to_port) for r in rules) == [(443, 443), (2443, 2443), (6666, 6666), (8443, 8451)]


@pytest.mark.parametrize("private_link", [False, True])
def test_the_printed_allowlist_is_the_firewalls_own(private_link):
    """With PrivateLink the relay is reached through the spoke's endpoint: what `up`, `plan` and `status` print as
    allowed through the firewall leaves it out, as the firewall's rule group does."""
    from provisioner import render
    from provisioner.design import firewall

    config = _config(private_link=private_link)
    lay = layout(config)
    relay = lay.region.scc_relay
    group = firewall.allowlist_group(config, lay).rule_group["RulesSource"]["RulesSourceList"]["Targets"]
    printed = "\n".join(render.allowlist_lines(config, width=1000))
    assert (relay in group) is (relay in printed) is (relay in render.allowlists(config)["main"]) is not private_link
    assert lay.region.webapp in printed


def test_privatelink_subnets_have_a_table_with_no_way_out():
    spoke = layout(_config(private_link=True)).spokes[0]
    table = privatelink_route_table(spoke)
    assert table.routes == () and not table.main
    assert table.subnets == tuple(f"spoke/main/privatelink-subnet/{az}" for az in spoke.azs)
    # The spoke's own table, and what the egress walker reads, are unchanged.
    assert table.key not in {t.key for t in vpc_route_tables(layout(_config(private_link=True)))}


def _graph(config):  # type: ignore[no-untyped-def]
    return {s.key: s for s in steps_pkg.all_steps(config)}


def _stands_on(graph, key: str, other: str) -> bool:  # type: ignore[no-untyped-def]
    todo, seen = list(graph[key].needs), set()
    while todo:
        k = todo.pop()
        if k == other:
            return True
        if k not in seen:
            seen.add(k)
            todo += list(graph[k].needs)
    return False


@pytest.mark.parametrize(("upper", "lower"), [
    ("spoke/main/workspace", "spoke/main/private-access-settings"),
    ("spoke/main/network", "spoke/main/workspace-endpoint-registration"),
    ("spoke/main/network", "spoke/main/relay-endpoint-registration"),
    ("spoke/main/relay-endpoint-registration", "spoke/main/relay-endpoint"),
    ("spoke/main/workspace-endpoint", "spoke/main/privatelink-security-group"),
    ("spoke/main/workspace-endpoint", "spoke/main/privatelink-subnet/eu-central-1b"),
    ("spoke/main/privatelink-route-table", "spoke/main/privatelink-subnet/eu-central-1a"),
    # The endpoints' group refers to the workspace group: it goes first on the way down.
    ("spoke/main/privatelink-security-group", "spoke/main/security-group"),
])
def test_what_stands_on_what(upper, lower):
    """`up` makes `lower` first; `down` deletes `upper` first (Databricks refuses to delete what is in use)."""
    assert _stands_on(_graph(_config(private_link=True)), upper, lower)


def test_default_deployment_has_no_privatelink_step_and_an_unchanged_graph():
    graph = _graph(_config())
    assert not [k for k in graph if "privatelink" in k or "endpoint-registration" in k or "access-settings" in k]
    assert "vpc_endpoints" not in graph["spoke/main/network"].details()
    assert "private_access_settings" not in graph["spoke/main/workspace"].details()
    on = _graph(_config(private_link=True))
    assert on["spoke/main/network"].spec() != graph["spoke/main/network"].spec()
    assert len([k for k in on if k not in graph]) == 9  # 2 subnets, table, group, 2 endpoints, 2 registrations, PAS


class _Outputs:
    """Just what an endpoint's placement check reads: the recorded IDs of its subnets and group."""

    def output(self, key: str, field: str = "id") -> str:
        return f"id-of-{key}"


@pytest.mark.parametrize("state, fault", [("pendingAcceptance", False), ("available", False), ("rejected", True),
                                          ("failed", True), ("expired", True)])
def test_an_endpoint_waiting_for_its_registration_is_not_a_fault(state, fault):
    from provisioner.aws.errors import CloudError
    from provisioner.steps.base import Resource
    from provisioner.steps.privatelink import WORKSPACE, DatabricksEndpoint

    config = _config(private_link=True)
    spoke = layout(config).spokes[0]
    step = DatabricksEndpoint(config, spoke, WORKSPACE, layout(config).region.privatelink_workspace_service)
    step._offered = frozenset(spoke.azs)
    ctx = _Outputs()
    placed = {"SubnetIds": [ctx.output(f"spoke/main/privatelink-subnet/{az}") for az in spoke.azs],
              "Groups": [{"GroupId": ctx.output("spoke/main/privatelink-security-group")}],
              "PrivateDnsEnabled": True}
    res = Resource("vpce-0", live={"State": state, **placed})
    modify: dict[str, object] = {}
    if fault:
        with pytest.raises(CloudError, match=f"is {state}"):
            step.ensure_placement(ctx, res, True, [], modify)  # type: ignore[arg-type]
    else:
        changes: list[str] = []
        step.ensure_placement(ctx, res, True, changes, modify)  # type: ignore[arg-type]
        assert changes == [] and modify == {}
    # AWS holds a new endpoint to a Databricks service in pendingAcceptance: the step is done once it is made.
    assert step.available_waiter == "VpcEndpointCreated"


@pytest.mark.parametrize(("setting", "recorded", "taken_down_with"), [
    (False, [], False),
    (True, [], True),
    (True, ["spoke/main/vpc"], True),  # nothing of a workspace yet: the setting decides
    (False, ["spoke/main/workspace", "spoke/main/workspace-endpoint"], True),  # turned off since: its endpoints go
    (True, ["spoke/main/workspace"], False),  # turned on since: the control-plane group goes
    (True, ["spoke/main/workspace", "spoke/main/private-access-settings"], True),
])
def test_down_takes_down_the_deployment_as_built(tmp_path, setting, recorded, taken_down_with):
    from provisioner.state import load
    from provisioner.steps.privatelink import as_built, private_access_key

    state = load(tmp_path, "pl")
    for key in recorded:
        state.record(private_access_key("main") if key.endswith("private-access-settings") else key, "id")
    assert as_built(_config(private_link=setting), state).private_link is taken_down_with
