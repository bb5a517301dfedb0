"""The egress firewall end to end: `provision` against emulated AWS over HTTP, read back through the API.

The firewall takes a few polls to become READY (moto's ManagedState, set to manual progression here), so the
PROVISIONING -> READY path runs. What is checked is what a user relies on: the policy is default-deny in strict
order with the rule groups it should have and HOME_NET = the spoke CIDRs (the firewall sits before the NAT, so it
sees the spokes' own addresses), the deny group drops spoke-to-spoke flows, a spoke's own domains pass from its
CIDR alone, the firewall keeps its delete, subnet change and policy change protections on, every hub AZ's route
tables hold exactly the designed routes (TGW subnet -> endpoint -> NAT -> IGW, replies back through the same
endpoint; no IGW edge table), the Transit Gateway blackholes spoke-to-spoke, every VPC's default security group
is empty, every spoke subnet's internet traffic passes the firewall endpoint of its hub AZ before the NAT and
back (traced over the route tables EC2 reports), a second `up` changes nothing, `status` reports what was
changed behind the tool's back and `up` repairs it, and `down` removes it all in an order AWS accepts.

Only the network and firewall families run (DNS Firewall, flow logs, IAM and Databricks have their own tests).
"""

from __future__ import annotations

import json
from typing import Any

import botocore.exceptions
import botocore.session
import pytest
from moto.moto_api import state_manager

from provisioner import steps
from provisioner.aws import clients
from provisioner.design import firewall as fw
from provisioner.design.layout import Layout, layout
from provisioner.egress import FIREWALL_ENDPOINT, INTERNET, NAT_GATEWAY, Source, read_network, trace_egress
from provisioner.sandbox.network_firewall import CONFIG_SYNC_MODEL, FIREWALL_DELETE_MODEL, FIREWALL_MODEL
from provisioner.steps import firewall as fwsteps
from provisioner.steps import hub_network, spoke_network, transit_gateway
from tests.conftest import REGION, client, config_text
from tests.hub_readback import (
    assert_default_groups_empty,
    assert_hub_route_tables,
    assert_spokes_blackholed,
    default_groups,
    unhealthy,
)
from tests.hub_readback import config as _config
from tests.hub_readback import read_status as _status
from tests.hub_readback import recorded_ids as _ids
from tests.hub_readback import recorded_state as _state

FIREWALL_OPERATIONS = set(botocore.session.get_session().get_service_model("network-firewall").operation_names)
LOGS_OPERATIONS = set(botocore.session.get_session().get_service_model("logs").operation_names)
PROVISIONING_POLLS = 3
PROTECTIONS = ("DeleteProtection", "SubnetChangeProtection", "FirewallPolicyChangeProtection")
TWO_SPOKES = (("bu1", "10.1.0.0/16"), ("bu2", "10.2.0.0/16"))


# -- fixtures -----------------------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def network_and_firewall(monkeypatch):
    """The firewall and the network it sits in; the other families are tested on their own."""
    monkeypatch.setattr(steps, "FAMILIES", (hub_network, transit_gateway, spoke_network, fwsteps))


@pytest.fixture
def firewall_takes_time(aws: str) -> Any:
    """A firewall is PROVISIONING for a few describes, then READY; DELETING for a few, then gone."""
    state_manager.set_transition(FIREWALL_MODEL, {"progression": "manual", "times": PROVISIONING_POLLS})
    state_manager.set_transition(FIREWALL_DELETE_MODEL, {"progression": "manual", "times": PROVISIONING_POLLS})
    yield aws
    state_manager.unset_transition(FIREWALL_MODEL)
    state_manager.unset_transition(FIREWALL_DELETE_MODEL)


# -- helpers ------------------------------------------------------------------------------------------------------


def _policy(deployment: str, region: str = REGION) -> dict[str, Any]:
    return client("network-firewall", region).describe_firewall_policy(FirewallPolicyName=fw.policy_name(deployment))


def _groups(deployment: str, region: str = REGION) -> dict[str, dict[str, Any]]:
    """The policy's rule groups read back through the API, by role (from the name), with their priority."""
    nfw = client("network-firewall", region)
    found = {}
    for ref in _policy(deployment, region)["FirewallPolicy"]["StatefulRuleGroupReferences"]:
        group = nfw.describe_rule_group(RuleGroupArn=ref["ResourceArn"])
        name = group["RuleGroupResponse"]["RuleGroupName"]
        role = name.removeprefix(f"{deployment}-").rsplit("-cap", 1)[0]
        found[role] = {**group, "Priority": ref["Priority"]}
    return found


def _rules(group: dict[str, Any]) -> list[str]:
    return group["RuleGroup"]["RulesSource"].get("RulesString", "").splitlines()


def _home_net(group: dict[str, Any]) -> list[str]:
    return group["RuleGroup"]["RuleVariables"]["IPSets"]["HOME_NET"]["Definition"]


def _firewall(deployment: str, region: str = REGION) -> dict[str, Any]:
    return client("network-firewall", region).describe_firewall(FirewallName=fw.firewall_name(deployment))


def _endpoints(deployment: str, region: str = REGION) -> dict[str, str]:
    got = _firewall(deployment, region)
    return {az: s["Attachment"]["EndpointId"] for az, s in got["FirewallStatus"]["SyncStates"].items()}


def _trace(ids: dict[str, str], lay: Layout) -> Any:
    vpcs = [ids["hub/vpc"], *(ids[f"spoke/{s.name}/vpc"] for s in lay.spokes)]
    data = read_network(client("ec2", lay.region.name), vpcs, ids["hub/transit-gateway"])
    sources = [Source(f"spoke {s.name} {az}", ids[f"spoke/{s.name}/workspace-subnet/{az}"])
               for s in lay.spokes for az in s.azs]
    return trace_egress(data, sources)


def _assert_egress_forced_through_firewall(ids: dict[str, str], lay: Layout, endpoints: dict[str, str]) -> None:
    """For every spoke subnet and every hub AZ its flows may take: out through TGW -> endpoint[az] -> NAT[az] ->
    IGW, back through NAT[az] -> the same endpoint -> TGW to the subnet's VPC, and no path to the IGW without an
    endpoint."""
    report = _trace(ids, lay)
    assert report.problems() == []
    hub_azs = sorted(h.az for h in lay.hub_azs)
    for spoke in lay.spokes:
        for az in spoke.azs:
            paths = report.paths(f"spoke {spoke.name} {az}")
            assert sorted(paths) == hub_azs  # appliance mode: any hub AZ may take the flow
            for hub_az, trace in paths.items():
                egress = trace.egress
                assert egress.end == INTERNET and egress.hops[-1].id == ids["hub/igw"], str(egress)
                assert [(h.id, h.az) for h in egress.of(NAT_GATEWAY)] == [(ids[f"hub/nat/{hub_az}"], hub_az)]
                assert [(h.id, h.az) for h in egress.of(FIREWALL_ENDPOINT)] == [(endpoints[hub_az], hub_az)]
                kinds = egress.kinds
                # Firewall before NAT: the firewall sees the workspace's own address.
                assert kinds.index("transit-gateway") < kinds.index(FIREWALL_ENDPOINT) < kinds.index(NAT_GATEWAY)
                assert trace.returns
                for back in trace.returns:
                    assert [h.id for h in back.of(FIREWALL_ENDPOINT)] == [endpoints[hub_az]], str(back)
                    assert back.kinds.index(NAT_GATEWAY) < back.kinds.index(FIREWALL_ENDPOINT)
                    assert back.vpc == ids[f"spoke/{spoke.name}/vpc"]


def _assert_network_as_designed(ids: dict[str, str], lay: Layout, endpoints: dict[str, str]) -> None:
    assert_hub_route_tables(ids, lay, endpoints)
    assert_spokes_blackholed(ids, lay)
    assert_default_groups_empty(ids, lay)
    _assert_egress_forced_through_firewall(ids, lay, endpoints)


def _firewall_calls(calls: list[str]) -> list[str]:
    return [c for c in calls if c in FIREWALL_OPERATIONS or c in LOGS_OPERATIONS]


def _spokes_toml(spokes: tuple[tuple[str, str, tuple[str, ...]], ...]) -> str:
    """[[spokes]] tables with their own `extra_allowed_fqdns` (config_text writes name and CIDR only)."""
    lines = []
    for name, cidr, domains in spokes:
        lines += ["[[spokes]]", f'name = "{name}"', f'cidr = "{cidr}"']
        if domains:
            lines.append("extra_allowed_fqdns = [" + ", ".join(f'"{d}"' for d in domains) + "]")
    return "\n".join(lines) + "\n"


# -- what `up` builds ---------------------------------------------------------------------------------------------


def test_up_builds_a_default_deny_firewall_that_all_egress_passes(firewall_takes_time, dns, workdir, calls):
    deployment = "fwmain"
    text = config_text(deployment, spokes=TWO_SPOKES, hub_azs=2, extra="[firewall]\nlog_retention_days = 90\n")
    workdir.write_config(text)
    lay = layout(_config(text))

    first = workdir.run("up")
    assert first.code == 0, first.err
    # The firewall was PROVISIONING for a while and `up` polled it to READY before routing to it.
    assert calls.calls.count("DescribeFirewall") >= PROVISIONING_POLLS + 1
    assert calls.calls.index("CreateFirewall") < calls.calls.index("CreateRoute", calls.calls.index("CreateFirewall"))
    created = _firewall_calls(calls.mutating)
    # One call per destination: AWS refuses two logging changes in one.
    assert created.count("UpdateLoggingConfiguration") == 2
    ids = _ids(workdir, deployment)

    # The policy, read back: strict order, default drop + alert, everything to the stateful engine.
    policy = _policy(deployment)["FirewallPolicy"]
    assert policy["StatefulEngineOptions"]["RuleOrder"] == "STRICT_ORDER"
    assert policy["StatefulDefaultActions"] == ["aws:drop_established", "aws:alert_established"]
    assert policy["StatelessDefaultActions"] == policy["StatelessFragmentDefaultActions"] == ["aws:forward_to_sfe"]
    # HOME_NET is the spoke CIDRs alone: the firewall sees each workspace's own address, never the NAT's.
    home_net = ["10.1.0.0/16", "10.2.0.0/16"]
    assert policy["PolicyVariables"]["RuleVariables"]["HOME_NET"]["Definition"] == home_net

    groups = _groups(deployment)
    assert {role: g["Priority"] for role, g in groups.items()} == {
        "deny": 100, "control-plane": 200, "metastore": 300, "allowlist": 400}
    for group in groups.values():
        assert group["RuleGroupResponse"]["Type"] == "STATEFUL"
        assert group["RuleGroup"]["StatefulRuleOptions"] == {"RuleOrder": "STRICT_ORDER"}
        assert _home_net(group) == home_net
    allowlist = groups["allowlist"]["RuleGroup"]["RulesSource"]["RulesSourceList"]
    assert sorted(allowlist["Targets"]) == sorted([
        "frankfurt.cloud.databricks.com", "tunnel.eu-central-1.cloud.databricks.com",
        "mdv2llxgl8lou0.ceptxxgorjrc.eu-central-1.rds.amazonaws.com",
        "fwmain-bu1-rootbucket.s3.amazonaws.com", "fwmain-bu1-rootbucket.s3.eu-central-1.amazonaws.com",
        "fwmain-bu2-rootbucket.s3.amazonaws.com", "fwmain-bu2-rootbucket.s3.eu-central-1.amazonaws.com",
        "pypi.org", "files.pythonhosted.org", "cran.r-project.org"])
    assert (allowlist["TargetTypes"], allowlist["GeneratedRulesType"]) == (["TLS_SNI", "HTTP_HOST"], "ALLOWLIST")
    # No workspace yet: to the control-plane range only TLS naming the web application or the relay.
    assert [(r.split(" (")[0], r.split('content:"')[1].split('"')[0]) for r in _rules(groups["control-plane"])] == [
        (f"pass tls $HOME_NET any -> 18.159.44.32/28 {port}", host) for port in ("443", "8443:8451")
        for host in ("frankfurt.cloud.databricks.com", "tunnel.eu-central-1.cloud.databricks.com")]
    assert [r.split(" (")[0] for r in _rules(groups["metastore"])] == [
        "pass tcp $HOME_NET any -> 203.0.113.10/32 3306", "pass tcp $HOME_NET any -> 203.0.113.11/32 3306",
        "drop tcp $HOME_NET any -> any 3306"]
    assert [r.split(" ")[:2] for r in _rules(groups["deny"])] == [
        ["drop", "icmp"], ["drop", "ftp"], ["drop", "ssh"], ["drop", "udp"], ["drop", "ip"]]
    # Spoke to spoke is dropped by the firewall too, should a TGW blackhole ever go missing.
    (between_spokes,) = [r for r in _rules(groups["deny"]) if "Spoke to spoke" in r]
    assert between_spokes.split(" (")[0] == "drop ip $HOME_NET any -> $HOME_NET any"
    # Capacity sized to content: twice what it needs, rounded up.
    assert groups["allowlist"]["RuleGroupResponse"]["Capacity"] == fw.capacity_for(10 * 2) == 50

    # The firewall: READY and IN_SYNC, protected, one endpoint per hub AZ, in the hub's firewall subnets.
    nfw = client("network-firewall")
    described = _firewall(deployment)
    assert {flag: described["Firewall"][flag] for flag in PROTECTIONS} == dict.fromkeys(PROTECTIONS, True)
    assert described["FirewallStatus"]["Status"] == "READY"
    assert described["FirewallStatus"]["ConfigurationSyncStateSummary"] == "IN_SYNC"
    assert sorted(m["SubnetId"] for m in described["Firewall"]["SubnetMappings"]) == sorted(
        ids[f"hub/firewall-subnet/{h.az}"] for h in lay.hub_azs)
    assert described["Firewall"]["FirewallPolicyArn"] == ids["hub/firewall/policy"]
    endpoints = _endpoints(deployment)
    assert sorted(endpoints) == sorted(h.az for h in lay.hub_azs)
    assert _state(workdir, deployment)["resources"]["hub/firewall"]["outputs"]["endpoints"] == endpoints
    for arn in (ids["hub/firewall"], ids["hub/firewall/policy"], *(g["RuleGroupResponse"]["RuleGroupArn"]
                                                                  for g in groups.values())):
        tags = {t["Key"]: t["Value"] for t in nfw.list_tags_for_resource(ResourceArn=arn)["Tags"]}
        assert tags["provisioner:deployment"] == deployment and tags["ManagedBy"] == "provisioner"

    # ALERT and FLOW logs to their own log groups, kept as configured.
    logging = nfw.describe_logging_configuration(FirewallArn=ids["hub/firewall"])["LoggingConfiguration"]
    assert {c["LogType"]: c["LogDestination"]["logGroup"] for c in logging["LogDestinationConfigs"]} == {
        "ALERT": f"/aws/vendedlogs/network-firewall/{deployment}/alert",
        "FLOW": f"/aws/vendedlogs/network-firewall/{deployment}/flow"}
    log_groups = client("logs").describe_log_groups(logGroupNamePrefix="/aws/vendedlogs/network-firewall/")
    assert {g["logGroupName"]: g["retentionInDays"] for g in log_groups["logGroups"]} == {
        f"/aws/vendedlogs/network-firewall/{deployment}/alert": 90,
        f"/aws/vendedlogs/network-firewall/{deployment}/flow": 90}

    _assert_network_as_designed(ids, lay, endpoints)

    calls.clear()
    again = workdir.run("up")
    assert again.code == 0, again.err
    assert calls.mutating == []

    code, items = _status(workdir)
    assert code == 0, items
    assert items["hub/firewall/metastore-addresses"]["status"] == "ok"
    assert {i["status"] for i in items.values()} <= {"present", "ok"}

    calls.clear()
    down = workdir.run("down", "--yes", "--delete-logs")
    assert down.code == 0, down.err
    order = _firewall_calls(calls.mutating)
    # Logging off one destination per call, before the log groups go; the firewall gone (waited out) before the
    # policy; the policy before its rule groups.
    assert order.count("UpdateLoggingConfiguration") == 2
    last = {op: max(i for i, c in enumerate(order) if c == op) for op in set(order)}
    first = {op: order.index(op) for op in set(order)}
    assert last["UpdateLoggingConfiguration"] < first["DeleteLogGroup"]
    assert last["UpdateLoggingConfiguration"] < first["DeleteFirewall"]
    # The delete protection lifted just before the delete, and no other protection touched. (The log groups'
    # deletes run beside the firewall's and may come in between.)
    assert order.count("UpdateFirewallDeleteProtection") == 1
    lifted = order.index("UpdateFirewallDeleteProtection")
    assert lifted < first["DeleteFirewall"]
    assert [c for c in order[lifted + 1:first["DeleteFirewall"]] if c not in LOGS_OPERATIONS] == []
    assert "UpdateSubnetChangeProtection" not in order and "UpdateFirewallPolicyChangeProtection" not in order
    assert last["DeleteFirewall"] < first["DeleteFirewallPolicy"] < first["DeleteRuleGroup"]
    assert calls.calls.count("DescribeFirewall") >= PROVISIONING_POLLS
    assert nfw.list_firewalls()["Firewalls"] == []
    assert nfw.list_firewall_policies()["FirewallPolicies"] == []
    assert nfw.list_rule_groups()["RuleGroups"] == []
    assert client("logs").describe_log_groups()["logGroups"] == []
    # The firewall's endpoints went with it (listed as deleted for a while, as on AWS).
    firewall_endpoints = client("ec2").describe_vpc_endpoints(
        Filters=[{"Name": "vpc-endpoint-type", "Values": ["GatewayLoadBalancer"]}])["VpcEndpoints"]
    assert {e["VpcEndpointId"] for e in firewall_endpoints} == set(endpoints.values())
    assert {e["State"].lower() for e in firewall_endpoints} == {"deleted"}


def test_second_region_without_legacy_metastore_has_no_3306_rule(aws, dns, workdir):
    deployment = "fwusw2"
    text = config_text(deployment, hub_azs=2, extra='region = "us-west-2"\n[firewall]\nlegacy_hive_metastore = false\n'
                       'extra_allowed_fqdns = [".maven.org"]\n')
    workdir.write_config(text)
    lay = layout(_config(text))
    result = workdir.run("up")
    assert result.code == 0, result.err

    groups = _groups(deployment, "us-west-2")
    assert sorted(groups) == ["allowlist", "control-plane", "deny"]
    assert sorted(groups["allowlist"]["RuleGroup"]["RulesSource"]["RulesSourceList"]["Targets"]) == sorted([
        "oregon.cloud.databricks.com", "tunnel.cloud.databricks.com", ".maven.org",
        "fwusw2-main-rootbucket.s3.amazonaws.com", "fwusw2-main-rootbucket.s3.us-west-2.amazonaws.com"])
    assert [(r.split(" (")[0], r.split('content:"')[1].split('"')[0]) for r in _rules(groups["control-plane"])] == [
        (f"pass tls $HOME_NET any -> 44.234.192.32/28 {port}", host) for port in ("443", "8443:8451")
        for host in ("oregon.cloud.databricks.com", "tunnel.cloud.databricks.com")]
    assert not any("3306" in rule for g in groups.values() for rule in _rules(g))
    policy = _policy(deployment, "us-west-2")["FirewallPolicy"]
    assert policy["StatefulEngineOptions"]["RuleOrder"] == "STRICT_ORDER"
    assert policy["StatefulDefaultActions"] == ["aws:drop_established", "aws:alert_established"]
    assert policy["PolicyVariables"]["RuleVariables"]["HOME_NET"]["Definition"] == ["10.173.0.0/16"]
    assert all(_home_net(g) == ["10.173.0.0/16"] for g in groups.values())
    _assert_egress_forced_through_firewall(_ids(workdir, deployment), lay, _endpoints(deployment, "us-west-2"))

    code, items = _status(workdir)
    assert code == 0 and "hub/firewall/metastore-addresses" not in items


def test_a_log_group_aws_does_not_list_yet_after_its_create_is_recorded_with_its_arn(aws, dns, workdir, monkeypatch):
    """CloudWatch Logs is eventually consistent: right after CreateLogGroup, DescribeLogGroups may not list it."""
    created: set[str] = set()

    def creating(params: dict[str, Any], **kwargs: Any) -> None:
        created.add(params["logGroupName"])

    def not_listed_yet(params: dict[str, Any], **kwargs: Any) -> Any:
        from botocore.awsrequest import AWSResponse

        prefix = json.loads(params["body"]).get("logGroupNamePrefix")
        if prefix in created:
            return AWSResponse("https://logs", 200, {}, None), {"logGroups": []}
        return None

    monkeypatch.setattr(clients, "SESSION_HOOKS", [("before-parameter-build.cloudwatch-logs.CreateLogGroup", creating),
                                                   ("before-call.cloudwatch-logs.DescribeLogGroups", not_listed_yet)])
    workdir.write_config(config_text("fwlag", hub_azs=1, extra="[firewall]\nlegacy_hive_metastore = false\n"))
    result = workdir.run("up")
    assert result.code == 0, result.err
    assert len(created) == 2
    monkeypatch.setattr(clients, "SESSION_HOOKS", [])
    for log_type in fw.LOG_TYPES:
        name = fw.log_group_name("fwlag", log_type)
        group = client("logs").describe_log_groups(logGroupNamePrefix=name)["logGroups"][0]
        recorded = _state(workdir, "fwlag")["resources"][fwsteps.log_group_key(log_type)]["outputs"]["arn"]
        assert recorded == group["logGroupArn"]
        assert group["retentionInDays"] == _config(config_text("fwlag")).firewall_log_retention_days
    code, items = _status(workdir)
    assert code == 0, items


# -- drift --------------------------------------------------------------------------------------------------------


def test_status_reports_a_policy_changed_outside_the_tool_and_up_repairs_it(aws, dns, workdir, calls):
    deployment = "fwdrift"
    workdir.write_config(config_text(deployment, hub_azs=1))
    assert workdir.run("up").code == 0
    nfw = client("network-firewall")
    got = _policy(deployment)
    weakened = {**got["FirewallPolicy"], "StatefulDefaultActions": ["aws:alert_established"]}
    nfw.update_firewall_policy(FirewallPolicyArn=got["FirewallPolicyResponse"]["FirewallPolicyArn"],
                               UpdateToken=got["UpdateToken"], FirewallPolicy=weakened)

    code, items = _status(workdir)
    assert code == 3
    assert items["hub/firewall/policy"]["status"] == "drifted"
    assert items["hub/firewall/policy"]["drift"] == ["policy (StatefulDefaultActions)"]

    calls.clear()
    assert workdir.run("up").code == 0
    assert _firewall_calls(calls.mutating) == ["UpdateFirewallPolicy"]
    assert _policy(deployment)["FirewallPolicy"]["StatefulDefaultActions"] == [
        "aws:drop_established", "aws:alert_established"]
    assert _status(workdir)[0] == 0


_TOKEN = "11111111-2222-3333-4444-555555555555"
_OTHER = "66666666-7777-8888-9999-000000000000"


def _sync_states(*configs: dict[str, Any] | None) -> dict[str, Any]:
    """A DescribeFirewall answer (READY) whose AZs' Config is each of `configs` (None: the AZ has no Config yet)."""
    states = {f"eu-central-1{'abc'[i]}": {"Attachment": {"Status": "READY"}, **({"Config": c} if c is not None else {})}
              for i, c in enumerate(configs)}
    return {"Firewall": {}, "FirewallStatus": {"Status": "READY", "SyncStates": states}}


_RUNS = {"grp": {"SyncStatus": "IN_SYNC", "UpdateToken": _TOKEN}}


@pytest.mark.parametrize(("firewall", "recorded", "proven"), [
    (_sync_states(_RUNS, _RUNS), {"token": _TOKEN}, True),
    (_sync_states(_RUNS, {"grp": {"SyncStatus": "PENDING", "UpdateToken": _TOKEN}}), {"token": _TOKEN}, False),
    (_sync_states(_RUNS, {"grp": {"SyncStatus": "IN_SYNC", "UpdateToken": _OTHER}}), {"token": _TOKEN}, False),
    (_sync_states(_RUNS, {}), {"token": _TOKEN}, False),  # not run in one AZ
    (_sync_states(_RUNS, None), {"token": _TOKEN}, False),
    (_sync_states(), {"token": _TOKEN}, False),  # no AZ at all
    ({**_sync_states(_RUNS), "FirewallStatus": {**_sync_states(_RUNS)["FirewallStatus"], "Status": "DELETING"}},
     {"token": _TOKEN}, False),
    (None, {"token": _TOKEN}, False),  # the firewall is gone
    (_sync_states(_RUNS, _RUNS), None, False),  # never verified
], ids=["in-sync-everywhere", "pending", "other-token", "absent-in-an-az", "az-without-config", "no-az", "deleting",
        "no-firewall", "nothing-recorded"])
def test_the_firewall_proves_a_group_only_in_sync_at_the_recorded_token_in_every_az(firewall, recorded, proven):
    from types import SimpleNamespace

    from provisioner.context import Reads
    from provisioner.steps.firewall.common import PROVEN, proven_by_firewall

    entries = {fwsteps.FIREWALL_KEY: {"id": "arn:firewall"},
               "group": {"id": "arn:grp", "outputs": {"name": "grp", **({"verified": recorded} if recorded else {})}}}
    described: list[str] = []

    def describe_firewall(**kwargs: Any) -> Any:
        described.append(kwargs["FirewallArn"])
        if firewall is None:
            raise botocore.exceptions.ClientError({"Error": {"Code": "ResourceNotFoundException"}}, "DescribeFirewall")
        return firewall

    state = SimpleNamespace(resource=lambda key: entries.get(key),
                            resource_id=lambda key: (entries.get(key) or {}).get("id"))
    ctx: Any = SimpleNamespace(state=state, reads=Reads(),
                               aws=SimpleNamespace(network_firewall=SimpleNamespace(describe_firewall=describe_firewall)))
    found = proven_by_firewall(ctx, "group")
    assert (found is not None) == proven
    if proven:
        assert found.id == "arn:grp" and found.live == {PROVEN: True, "UpdateToken": _TOKEN}
    proven_by_firewall(ctx, "group")
    assert described == ([] if recorded is None else ["arn:firewall"])  # once per command, and only if needed


@pytest.mark.parametrize("sync", ["in sync", "pending"])
def test_a_rule_group_changed_outside_the_tool_is_read_reported_and_repaired(aws, dns, workdir, calls, sync):
    """After an update outside the tool the firewall runs the group at another UpdateToken (or PENDING, while
    the update syncs): that group alone is described again, status reports the drift, up repairs it, and the
    next no-op reads nothing again."""
    deployment = "fwoutside"
    workdir.write_config(config_text(deployment, hub_azs=1))
    assert workdir.run("up").code == 0
    nfw = client("network-firewall")
    arn = _groups(deployment)["deny"]["RuleGroupResponse"]["RuleGroupArn"]
    got = nfw.describe_rule_group(RuleGroupArn=arn)
    if sync == "pending":
        state_manager.set_transition(CONFIG_SYNC_MODEL, {"progression": "manual", "times": 1})
    try:
        nfw.update_rule_group(RuleGroupArn=arn, UpdateToken=got["UpdateToken"], RuleGroup={
            **got["RuleGroup"], "RulesSource": {"RulesString": "\n".join(_rules(got)[:-1]) + "\n"}})

        calls.clear()
        code, items = _status(workdir)
        assert code == 3
        assert items["hub/firewall/rule-group/deny"]["status"] == "drifted"
        assert items["hub/firewall/rule-group/deny"]["drift"][0].startswith("rules (")
        assert calls.calls.count("DescribeRuleGroup") == 1 and calls.calls.count("DescribeFirewallPolicy") == 0
    finally:
        state_manager.unset_transition(CONFIG_SYNC_MODEL)

    calls.clear()
    assert workdir.run("up").code == 0
    assert _firewall_calls(calls.mutating) == ["UpdateRuleGroup"]
    assert _rules(nfw.describe_rule_group(RuleGroupArn=arn)) == _rules(got)
    calls.clear()
    assert _status(workdir)[0] == 0
    assert calls.calls.count("DescribeRuleGroup") == 0


def test_a_broken_route_is_caught_by_the_walk_and_status_and_up_restores_it(aws, dns, workdir, calls):
    deployment = "fwroute"
    text = config_text(deployment, hub_azs=2)
    workdir.write_config(text)
    lay = layout(_config(text))
    assert workdir.run("up").code == 0
    ids = _ids(workdir, deployment)
    endpoints = _endpoints(deployment)
    _assert_egress_forced_through_firewall(ids, lay, endpoints)
    a, b = (h.az for h in lay.hub_azs)
    ec2 = client("ec2")
    spoke_cidr = lay.spoke_cidrs[0]

    # The NAT subnet of AZ a loses its way out: traffic inspected there goes nowhere.
    ec2.delete_route(RouteTableId=ids[f"hub/nat-subnet-route-table/{a}"], DestinationCidrBlock="0.0.0.0/0")
    problems = _trace(ids, lay).problems()
    assert problems and all(f"via hub {a}" in p for p in problems)
    assert any("no route to 0.0.0.0/0" in p for p in problems)
    code, items = _status(workdir)
    assert code == 3
    assert items[f"hub/firewall/routes/{a}"]["drift"] == [
        f"hub/nat-subnet-route-table/{a} route 0.0.0.0/0 -> nothing (should be {ids['hub/igw']})"]
    assert items[f"hub/firewall/routes/{b}"]["status"] == "present"

    calls.clear()
    assert workdir.run("up").code == 0
    assert calls.mutating == ["CreateRoute"]
    assert_hub_route_tables(ids, lay, endpoints)
    _assert_egress_forced_through_firewall(ids, lay, endpoints)

    # Replies to the spoke in NAT subnet a sent through the endpoint of AZ b: crosses AZs, and status says so.
    ec2.delete_route(RouteTableId=ids[f"hub/nat-subnet-route-table/{a}"], DestinationCidrBlock=spoke_cidr)
    ec2.create_route(RouteTableId=ids[f"hub/nat-subnet-route-table/{a}"], DestinationCidrBlock=spoke_cidr,
                     VpcEndpointId=endpoints[b])
    assert any(f"return path uses firewall-endpoint {endpoints[b]} ({b}), in another AZ than {a}" in p
               for p in _trace(ids, lay).problems())
    code, items = _status(workdir)
    assert code == 3
    assert items[f"hub/firewall/routes/{a}"]["drift"] == [
        f"hub/nat-subnet-route-table/{a} route {spoke_cidr} -> {endpoints[b]} (should be {endpoints[a]})"]
    assert any("in another AZ than" in p for p in items["network/egress"]["drift"])
    calls.clear()
    assert workdir.run("up").code == 0
    assert calls.mutating == ["ReplaceRoute"]  # in place: never a moment without the route
    assert_hub_route_tables(ids, lay, endpoints)
    assert _status(workdir)[0] == 0


def test_status_names_each_isolation_and_hardening_drift_and_up_repairs_it(aws, dns, workdir, calls):
    """One change behind the tool's back at a time: `status` exits 3 naming it (and nothing else: so the previous
    one was repaired), `up` repairs it with the one call it takes; at the end `status` is clean."""
    deployment = "fwharden"
    text = config_text(deployment, spokes=TWO_SPOKES, hub_azs=1, extra="[firewall]\nlegacy_hive_metastore = false\n")
    workdir.write_config(text)
    lay = layout(_config(text))
    assert workdir.run("up").code == 0
    ids = _ids(workdir, deployment)
    endpoints = _endpoints(deployment)
    _assert_network_as_designed(ids, lay, endpoints)
    ec2, nfw = client("ec2"), client("network-firewall")
    (az,) = endpoints
    bu1_default = default_groups([ids["spoke/bu1/vpc"]], REGION)[ids["spoke/bu1/vpc"]]["GroupId"]

    def delete_blackhole() -> None:
        ec2.delete_transit_gateway_route(TransitGatewayRouteTableId=ids["hub/tgw-route-table/spokes"],
                                         DestinationCidrBlock="10.2.0.0/16")

    def allow_from_default_group() -> None:
        ec2.authorize_security_group_egress(GroupId=bu1_default, IpPermissions=[
            {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])

    def lift_subnet_change_protection() -> None:
        nfw.update_subnet_change_protection(FirewallArn=ids["hub/firewall"], SubnetChangeProtection=False)

    def nat_before_firewall() -> None:
        # (delete + create, so that this does not rely on the sandbox's ReplaceRoute)
        table = ids[f"hub/tgw-subnet-route-table/{az}"]
        ec2.delete_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0")
        ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=ids[f"hub/nat/{az}"])

    nat = ids[f"hub/nat/{az}"]
    cases = [
        # (a) spoke bu1 reaches bu2 through the hub (the firewall's deny group is then all that stops it)
        (delete_blackhole, {
            "hub/tgw-route-table/spokes": ("drifted", "route 10.2.0.0/16 -> a blackhole missing"),
            "network/egress": ("failed", "reaches spoke bu2 (10.2.0.0/16)")}, ["CreateTransitGatewayRoute"]),
        # (b) the default security group allows again what AWS made it with
        (allow_from_default_group, {
            "spoke/bu1/vpc": ("drifted", f"default security group {bu1_default} has 1 egress rule")},
         ["RevokeSecurityGroupEgress"]),
        # (c) the firewall's endpoints may be moved
        (lift_subnet_change_protection, {"hub/firewall": ("drifted", "subnet change protection off")},
         ["UpdateSubnetChangeProtection"]),
        # (d) the TGW subnet hands everything to the NAT, which goes straight out: the endpoint is never reached
        (nat_before_firewall, {
            f"hub/firewall/routes/{az}": (
                "drifted", f"hub/tgw-subnet-route-table/{az} route 0.0.0.0/0 -> {nat} (should be {endpoints[az]})"),
            "network/egress": ("failed", f"via hub {az}: reaches the internet without passing a firewall endpoint")},
         ["ReplaceRoute"]),
    ]
    for change, named, repair in cases:
        change()
        code, items = _status(workdir)
        assert code == 3, change.__name__
        found = unhealthy(items)
        assert sorted(found) == sorted(named), (change.__name__, found)
        for key, (status, words) in named.items():
            assert found[key][0] == status and words in found[key][1], (change.__name__, key, found[key])
        if change is nat_before_firewall:
            # Every spoke subnet's way out, as the walk shows it: TGW subnet table -> NAT -> IGW, no endpoint.
            for trace in _trace(ids, lay).traces:
                assert trace.egress.end == INTERNET and not trace.egress.of(FIREWALL_ENDPOINT), str(trace.egress)
                assert [h.id for h in trace.egress.of(NAT_GATEWAY)] == [nat]
                assert f"{trace.label}: reaches the internet without passing a firewall endpoint" in found[
                    "network/egress"][1] and f"nat-gateway {nat}" in found["network/egress"][1]
        calls.clear()
        result = workdir.run("up")
        assert result.code == 0, (change.__name__, result.err)
        assert calls.mutating == repair, change.__name__
    code, items = _status(workdir)
    assert code == 0, unhealthy(items)
    # Read back: all as designed again, the protections on.
    _assert_network_as_designed(ids, lay, endpoints)
    assert {flag: _firewall(deployment)["Firewall"][flag] for flag in PROTECTIONS} == dict.fromkeys(PROTECTIONS, True)


def test_status_reports_metastore_addresses_that_moved_and_up_pins_the_new_ones(aws, dns, workdir, calls):
    deployment = "fwhms"
    workdir.write_config(config_text(deployment, hub_azs=1))
    assert workdir.run("up").code == 0
    host = layout(_config(config_text(deployment))).region.legacy_metastore_host
    assert _state(workdir, deployment)["observations"]["metastore-addresses"]["addresses"] == [
        "203.0.113.10", "203.0.113.11"]

    dns[host] = ["203.0.113.20"]  # an RDS failover
    code, items = _status(workdir)
    assert code == 3
    check = items["hub/firewall/metastore-addresses"]
    assert check["status"] == "failed"
    assert "now resolves to 203.0.113.20" in check["drift"][0] and "203.0.113.10, 203.0.113.11" in check["drift"][0]
    # The rule group itself is as `up` left it: the check, not drift, says the world moved.
    assert items["hub/firewall/rule-group/metastore"]["status"] == "present"

    calls.clear()
    assert workdir.run("up").code == 0
    assert _firewall_calls(calls.mutating) == ["UpdateRuleGroup"]
    assert [r.split(" (")[0] for r in _rules(_groups(deployment)["metastore"])] == [
        "pass tcp $HOME_NET any -> 203.0.113.20/32 3306", "drop tcp $HOME_NET any -> any 3306"]
    assert _status(workdir)[0] == 0


def test_an_unresolvable_metastore_host_fails_up_with_the_fix(aws, dns, workdir):
    workdir.write_config(config_text("fwnodns", hub_azs=1))
    host = layout(_config(config_text("fwnodns"))).region.legacy_metastore_host
    dns[host] = []
    result = workdir.run("up")
    assert result.code == 1
    assert f"cannot resolve the legacy Hive metastore host {host}" in result.err
    assert "legacy_hive_metastore = false" in result.err


def test_allowlist_that_outgrows_its_capacity_moves_to_a_bigger_group(aws, dns, workdir, calls):
    deployment = "fwgrow"
    workdir.write_config(config_text(deployment, hub_azs=1))
    assert workdir.run("up").code == 0
    before = _groups(deployment)["allowlist"]["RuleGroupResponse"]
    assert before["Capacity"] == 50

    many = ", ".join(f'"host{i}.example.com"' for i in range(30))
    workdir.write_config(config_text(deployment, hub_azs=1, extra=f"[firewall]\nextra_allowed_fqdns = [{many}]\n"))
    calls.clear()
    result = workdir.run("up")
    assert result.code == 0, result.err
    assert _firewall_calls(calls.mutating) == ["CreateRuleGroup", "UpdateFirewallPolicy", "DeleteRuleGroup"]
    after = _groups(deployment)["allowlist"]
    assert after["RuleGroupResponse"]["Capacity"] == 200
    assert after["RuleGroupResponse"]["RuleGroupName"] == f"{deployment}-allowlist-cap200"
    assert "host29.example.com" in after["RuleGroup"]["RulesSource"]["RulesSourceList"]["Targets"]
    names = [g["Name"] for g in client("network-firewall").list_rule_groups()["RuleGroups"]]
    assert before["RuleGroupName"] not in names
    calls.clear()
    assert workdir.run("up").code == 0 and calls.mutating == []


def test_turning_the_legacy_metastore_off_removes_its_group_and_3306(aws, dns, workdir, calls):
    deployment = "fwhmsoff"
    workdir.write_config(config_text(deployment, hub_azs=1))
    assert workdir.run("up").code == 0
    metastore_arn = _groups(deployment)["metastore"]["RuleGroupResponse"]["RuleGroupArn"]

    workdir.write_config(config_text(deployment, hub_azs=1, extra="[firewall]\nlegacy_hive_metastore = false\n"))
    calls.clear()
    result = workdir.run("up")
    assert result.code == 0, result.err
    # The allowlist loses the metastore host, the policy the group, and the group goes once unreferenced.
    assert _firewall_calls(calls.mutating) == ["UpdateRuleGroup", "UpdateFirewallPolicy", "DeleteRuleGroup"]
    groups = _groups(deployment)
    assert sorted(groups) == ["allowlist", "control-plane", "deny"]
    assert not any("rds.amazonaws.com" in t
                   for t in groups["allowlist"]["RuleGroup"]["RulesSource"]["RulesSourceList"]["Targets"])
    assert metastore_arn not in [g["Arn"] for g in client("network-firewall").list_rule_groups()["RuleGroups"]]
    state = _state(workdir, deployment)
    assert "hub/firewall/rule-group/metastore" not in state["resources"]
    assert "metastore-addresses" not in state["observations"]
    code, items = _status(workdir)
    assert code == 0 and "hub/firewall/metastore-addresses" not in items


# -- a spoke's own domains ----------------------------------------------------------------------------------------


def test_a_spokes_own_domains_pass_from_its_cidr_alone(aws, dns, workdir, calls):
    deployment = "fwspoke"
    own = ("example.com", ".example.org")
    extra = "[firewall]\nlegacy_hive_metastore = false\n"
    text = config_text(deployment, spokes=(), hub_azs=1, extra=extra) + _spokes_toml(
        (("bu1", "10.1.0.0/16", own), ("bu2", "10.2.0.0/16", ())))
    workdir.write_config(text)
    lay = layout(_config(text))
    result = workdir.run("up")
    assert result.code == 0, result.err

    groups = _groups(deployment)
    # Evaluated after the deny and control-plane groups, before the deployment-wide allowlist (whose generated
    # drop of every other TLS and HTTP flow would otherwise come first).
    assert {role: g["Priority"] for role, g in groups.items()} == {
        "deny": 100, "control-plane": 200, "spoke-allowlist": 350, "allowlist": 400}
    spoke_group = groups["spoke-allowlist"]
    assert spoke_group["RuleGroupResponse"]["Type"] == "STATEFUL"
    assert spoke_group["RuleGroup"]["StatefulRuleOptions"] == {"RuleOrder": "STRICT_ORDER"}
    assert _home_net(spoke_group) == ["10.1.0.0/16", "10.2.0.0/16"]
    rules = _rules(spoke_group)
    # TLS by SNI and HTTP by Host, per domain, each passing from bu1's CIDR and nothing else.
    assert sorted(r.split(" (")[0] for r in rules) == sorted(
        f"pass {proto} 10.1.0.0/16 any -> any any" for proto in ("tls", "http") for _ in own)
    for domain in own:
        assert {r.split(" ")[1] for r in rules if f'content:"{domain}"' in r} == {"tls", "http"}, domain
    assert all("10.2.0.0/16" not in r and "$HOME_NET" not in r and r.startswith("pass ") for r in rules)
    assert spoke_group["RuleGroupResponse"]["Capacity"] == fw.capacity_for(len(rules))
    # The deployment-wide allowlist does not pass them (for bu2, they fall to its drop).
    targets = groups["allowlist"]["RuleGroup"]["RulesSource"]["RulesSourceList"]["Targets"]
    assert not set(own) & set(targets)
    _assert_network_as_designed(_ids(workdir, deployment), lay, _endpoints(deployment))
    code, items = _status(workdir)
    assert code == 0, unhealthy(items)

    # Without the spoke's own domains the group goes: out of the policy first, then deleted.
    workdir.write_config(config_text(deployment, spokes=(("bu1", "10.1.0.0/16"), ("bu2", "10.2.0.0/16")), hub_azs=1,
                                     extra=extra))
    calls.clear()
    result = workdir.run("up")
    assert result.code == 0, result.err
    assert _firewall_calls(calls.mutating) == ["UpdateFirewallPolicy", "DeleteRuleGroup"]
    assert sorted(_groups(deployment)) == ["allowlist", "control-plane", "deny"]
    assert spoke_group["RuleGroupResponse"]["RuleGroupArn"] not in [
        g["Arn"] for g in client("network-firewall").list_rule_groups()["RuleGroups"]]
    assert "hub/firewall/rule-group/spoke-allowlist" not in _state(workdir, deployment)["resources"]
    assert _status(workdir)[0] == 0


# -- crashes ------------------------------------------------------------------------------------------------------


def test_a_crash_after_create_firewall_adopts_the_firewall_by_name(aws, dns, workdir, calls, monkeypatch):
    deployment = "fwcrash"
    workdir.write_config(config_text(deployment, hub_azs=1))
    real_create = fwsteps.Firewall.create

    def create_then_die(self, ctx):
        real_create(self, ctx)
        raise KeyboardInterrupt  # the process dies before the engine records the ARN

    monkeypatch.setattr(fwsteps.Firewall, "create", create_then_die)
    assert workdir.run("up").code == 130
    assert "hub/firewall" not in _ids(workdir, deployment)

    monkeypatch.setattr(fwsteps.Firewall, "create", real_create)
    calls.clear()
    result = workdir.run("up")
    assert result.code == 0, result.err
    assert "CreateFirewall" not in calls.calls
    assert len(client("network-firewall").list_firewalls()["Firewalls"]) == 1
    assert _ids(workdir, deployment)["hub/firewall"].endswith(f":firewall/{fw.firewall_name(deployment)}")


def test_plan_lists_the_firewall_family_without_any_call(workdir, calls):
    workdir.write_config(config_text("fwplan", hub_azs=2))
    result = workdir.run("plan", "--json")
    assert result.code == 0 and calls.calls == []
    items = {r["key"]: r for r in json.loads(result.out)["resources"]}
    for key in ("hub/firewall/rule-group/deny", "hub/firewall/rule-group/control-plane",
                "hub/firewall/rule-group/metastore", "hub/firewall/rule-group/allowlist", "hub/firewall/policy",
                "hub/firewall/log-group/alert", "hub/firewall/log-group/flow", "hub/firewall",
                "hub/firewall/logging", "hub/firewall/routes/eu-central-1a", "hub/firewall/routes/eu-central-1b"):
        assert items[key]["action"] == "create", key
    assert items["hub/firewall/rule-group/allowlist"]["name"] == "fwplan-allowlist-cap50"
    assert items["hub/firewall/rule-group/control-plane"]["details"] == {"cidr": "18.159.44.32/28"}
    assert "hub/firewall/rule-group/spoke-allowlist" not in items  # no spoke has domains of its own
    # Each AZ's routes, in the order they are made: nothing reaches the IGW before the endpoint routes exist.
    for az in ("eu-central-1a", "eu-central-1b"):
        assert items[f"hub/firewall/routes/{az}"]["details"] == {"az": az, "routes": (
            "tgw-subnet-route-table: 0.0.0.0/0 -> endpoint; nat-subnet-route-table: 10.173.0.0/16 -> endpoint; "
            "nat-subnet-route-table: 0.0.0.0/0 -> IGW")}


def test_private_link_converts_the_firewall_to_pass_nothing_to_the_control_plane_range(
        aws, workdir, calls, monkeypatch):
    """From `Config.private_link` alone (the config file cannot turn it on until the endpoints are built): a live
    deployment's `deny` group drops the range before the policy lets the control-plane group go, the relay
    leaves the allowlist, and `status` checks, from the live policy, that nothing passes there."""
    import dataclasses

    from provisioner import cli

    deployment = "fwpl"
    workdir.write_config(config_text(deployment, hub_azs=1))
    assert workdir.run("up").code == 0
    control_plane = _groups(deployment)["control-plane"]["RuleGroupResponse"]["RuleGroupArn"]
    real = cli._config
    monkeypatch.setattr(cli, "_config", lambda opts: dataclasses.replace(real(opts), private_link=True))
    calls.clear()
    result = workdir.run("up")
    assert result.code == 0, result.out + result.err

    groups = _groups(deployment)
    assert sorted(groups) == ["allowlist", "deny", "metastore"]
    assert _rules(groups["deny"])[-1].startswith("drop ip $HOME_NET any -> 18.159.44.32/28 any (")
    targets = groups["allowlist"]["RuleGroup"]["RulesSource"]["RulesSourceList"]["Targets"]
    assert "tunnel.eu-central-1.cloud.databricks.com" not in targets and "frankfurt.cloud.databricks.com" in targets
    # Never wider for a moment: the drop is in force before the policy changes, the old group goes after.
    writes = [c for c in calls.calls if c in ("UpdateRuleGroup", "UpdateFirewallPolicy", "DeleteRuleGroup")]
    assert writes.index("UpdateFirewallPolicy") < writes.index("DeleteRuleGroup")
    assert writes.index("UpdateRuleGroup") < writes.index("UpdateFirewallPolicy")
    assert "hub/firewall/rule-group/control-plane" not in _state(workdir, deployment)["resources"]
    assert not [g for g in client("network-firewall").list_rule_groups()["RuleGroups"]
                if g["Arn"] == control_plane]

    code, items = _status(workdir)
    assert code == 0, unhealthy(items)
    assert items["hub/firewall/control-plane-closed"]["status"] == "ok"

    # Someone removes the drop: the allowlist then passes its names to the range, and status says so.
    nfw = client("network-firewall")
    arn = groups["deny"]["RuleGroupResponse"]["RuleGroupArn"]
    got = nfw.describe_rule_group(RuleGroupArn=arn)
    kept = "\n".join(_rules(groups["deny"])[:-1]) + "\n"
    nfw.update_rule_group(RuleGroupArn=arn, UpdateToken=got["UpdateToken"],
                          RuleGroup={**got["RuleGroup"], "RulesSource": {"RulesString": kept}})
    code, items = _status(workdir)
    assert code == 3
    (problem,) = items["hub/firewall/control-plane-closed"]["drift"]
    assert "passes to 18.159.44.32/28: the domain allowlist (TLS_SNI, HTTP_HOST) passes" in problem
    assert items["hub/firewall/rule-group/deny"]["status"] == "drifted"


@pytest.mark.parametrize(("live_now", "succeeds"), [("designed", True), ("changed by someone", False)])
def test_a_stale_update_token_is_success_only_when_the_group_is_now_as_designed(live_now, succeeds):
    """botocore retries an UpdateRuleGroup whose reply was lost: AWS then answers the stale token. If our first
    attempt took effect the group is as designed and that is success; a change by someone else stays an error."""
    from types import SimpleNamespace

    from botocore.exceptions import ClientError

    from provisioner.context import Reads
    from provisioner.errors import CloudError
    from provisioner.steps.base import Resource
    from provisioner.steps.firewall.rule_groups import update_rules

    cfg = _config(config_text("fwtok"))
    group = fw.rule_group(cfg, layout(cfg), fw.CONTROL_PLANE, workspace_hosts={"main": "fwtok-main.example"})
    now = dict(group.rule_group) if succeeds else fw.rule_group(cfg, layout(cfg), fw.CONTROL_PLANE).rule_group
    stale = ClientError({"Error": {"Code": "InvalidTokenException", "Message": "stale"}}, "UpdateRuleGroup")

    def update_rule_group(**kwargs: Any) -> Any:
        raise stale

    nfw = SimpleNamespace(update_rule_group=update_rule_group,
                          describe_rule_group=lambda **kw: {"RuleGroup": now, "UpdateToken": "t2"})
    ctx: Any = SimpleNamespace(aws=SimpleNamespace(network_firewall=nfw), reads=Reads())
    res = Resource("arn:group", live={"UpdateToken": "t1", "RuleGroup": {}, "RuleGroupResponse": {}})
    if succeeds:
        update_rules(ctx, res, group)
        assert res.live["UpdateToken"] == "t2"
    else:
        with pytest.raises(CloudError, match="InvalidTokenException"):
            update_rules(ctx, res, group)


def test_the_workspace_hosts_step_stands_on_every_workspace_and_retires_with_private_link():
    import dataclasses

    from provisioner.steps.base import Retired
    from provisioner.steps.firewall import control_plane

    cfg = _config(config_text("fwh", spokes=(("a", "10.1.0.0/16"), ("b", "10.2.0.0/16"))))
    (step,) = control_plane.steps(cfg)
    assert set(step.needs) == {"hub/firewall/rule-group/control-plane", "spoke/a/workspace", "spoke/b/workspace"}
    (retired,) = control_plane.steps(dataclasses.replace(cfg, private_link=True))
    assert isinstance(retired, Retired) and retired.needs == (fwsteps.POLICY_KEY,)
    assert [c.key for c in fwsteps.checks(dataclasses.replace(cfg, private_link=True))][-1] == \
        "hub/firewall/control-plane-closed"
