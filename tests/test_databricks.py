"""The Databricks family end to end: provision's CLI and steps, the real databricks-sdk over HTTP, the emulated
Account API validating against emulated AWS. Waits and retries run on a fake clock: no wall-clock sleeping."""

from __future__ import annotations

import json
import stat
import time
import tomllib
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from databricks.sdk.errors import BadRequest, InvalidParameterValue, InvalidState, ResourceConflict

from provisioner import engine
from provisioner import steps as steps_pkg
from provisioner.aws import clients
from provisioner.aws.clients import Aws
from provisioner.context import Context
from provisioner.databricks import client as dbx
from provisioner.databricks.retry import (
    CREDENTIAL_VALIDATION,
    IN_USE,
    call_with_retry,
    is_credential_validation_failure,
)
from provisioner.design import firewall as fw
from provisioner.design.config import build_config
from provisioner.design.layout import layout
from provisioner.design.naming import tag_list
from provisioner.state import load
from provisioner.steps import databricks as dbsteps
from provisioner.steps import iam, keys
from provisioner.steps.base import Resource, Step
from tests.conftest import (
    ACCOUNT_ID,
    DATABRICKS_CLIENT_ID,
    DATABRICKS_CLIENT_SECRET,
    DATABRICKS_PASSWORD,
    DATABRICKS_USERNAME,
    FakeClock,
    client,
    config_text,
)

# -- the spoke network, until the network family provides it ------------------------------------------------


def _owned(ctx: Context, step: Step) -> list[dict[str, Any]]:
    return [{"Name": "tag:provisioner:deployment", "Values": [ctx.deployment]},
            {"Name": "tag:provisioner:component", "Values": [step.key]}]


def _tags(ctx: Context, step: Step, resource_type: str) -> list[dict[str, Any]]:
    return [{"ResourceType": resource_type, "Tags": tag_list(ctx.tags(step))}]


class StandinVpc(Step):
    kind = "VPC (test stand-in)"

    def __init__(self, deployment: str, spoke: str, cidr: str) -> None:
        self.cidr = cidr
        super().__init__(keys.spoke(spoke, "vpc"), f"{deployment}-{spoke}-vpc")

    def find(self, ctx: Context) -> Resource | None:
        vpcs = ctx.aws.ec2.describe_vpcs(Filters=_owned(ctx, self))["Vpcs"]
        return Resource(vpcs[0]["VpcId"]) if vpcs else None

    def create(self, ctx: Context) -> Resource:
        ec2 = ctx.aws.ec2
        vpc_id = ec2.create_vpc(CidrBlock=self.cidr, TagSpecifications=_tags(ctx, self, "vpc"))["Vpc"]["VpcId"]
        ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsSupport={"Value": True})
        ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsHostnames={"Value": True})
        return Resource(vpc_id)

    def delete(self, ctx: Context, res: Resource) -> None:
        ctx.aws.ec2.delete_vpc(VpcId=res.id)


class StandinSubnet(Step):
    kind = "subnet (test stand-in)"

    def __init__(self, deployment: str, spoke: str, az: str, cidr: str) -> None:
        self.az, self.cidr, self.spoke = az, cidr, spoke
        super().__init__(keys.spoke(spoke, "workspace-subnet", az), f"{deployment}-{spoke}-ws-{az}",
                         (keys.spoke(spoke, "vpc"),))

    def find(self, ctx: Context) -> Resource | None:
        subnets = ctx.aws.ec2.describe_subnets(Filters=_owned(ctx, self))["Subnets"]
        return Resource(subnets[0]["SubnetId"]) if subnets else None

    def create(self, ctx: Context) -> Resource:
        return Resource(ctx.aws.ec2.create_subnet(
            VpcId=ctx.output(keys.spoke(self.spoke, "vpc")), CidrBlock=self.cidr, AvailabilityZone=self.az,
            TagSpecifications=_tags(ctx, self, "subnet"))["Subnet"]["SubnetId"])

    def delete(self, ctx: Context, res: Resource) -> None:
        ctx.aws.ec2.delete_subnet(SubnetId=res.id)


class StandinSecurityGroup(Step):
    kind = "security group (test stand-in)"

    def __init__(self, deployment: str, spoke: str) -> None:
        self.spoke = spoke
        super().__init__(keys.spoke(spoke, "security-group"), f"{deployment}-{spoke}-sg", (keys.spoke(spoke, "vpc"),))

    def find(self, ctx: Context) -> Resource | None:
        groups = ctx.aws.ec2.describe_security_groups(Filters=_owned(ctx, self))["SecurityGroups"]
        return Resource(groups[0]["GroupId"]) if groups else None

    def create(self, ctx: Context) -> Resource:
        return Resource(ctx.aws.ec2.create_security_group(
            GroupName=self.name, Description="workspace", VpcId=ctx.output(keys.spoke(self.spoke, "vpc")),
            TagSpecifications=_tags(ctx, self, "security-group"))["GroupId"])

    def delete(self, ctx: Context, res: Resource) -> None:
        ctx.aws.ec2.delete_security_group(GroupId=res.id)


def _standin_steps(config: Any) -> list[Step]:
    out: list[Step] = []
    for spoke in layout(config).spokes:
        out.append(StandinVpc(config.deployment, spoke.name, spoke.cidrs.vpc))
        out += [StandinSubnet(config.deployment, spoke.name, az, cidr)
                for az, cidr in zip(spoke.azs, spoke.cidrs.workspace_subnets, strict=True)]
        out.append(StandinSecurityGroup(config.deployment, spoke.name))
    return out


STANDIN_NETWORK = SimpleNamespace(steps=_standin_steps)


@pytest.fixture(autouse=True)
def families(monkeypatch: pytest.MonkeyPatch) -> tuple[Any, ...]:
    """The registered families with the Databricks one; the stand-in network while no family makes the VPC."""
    probe = build_config({"deployment": "probe", "databricks_account_id": ACCOUNT_ID})
    others = [f for f in steps_pkg.FAMILIES if f is not dbsteps]
    made = {s.key for family in others for s in family.steps(probe)}
    if keys.spoke("main", "vpc") not in made:
        others.append(STANDIN_NETWORK)
    chosen = (*others, dbsteps)
    monkeypatch.setattr(steps_pkg, "FAMILIES", chosen)
    return chosen


@pytest.fixture
def full_graph() -> None:
    """Run the CLI over every step of the deployment (hub, firewall...), not only what the Databricks objects
    stand on."""


@pytest.fixture(autouse=True)
def databricks_branch(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, families: Any) -> None:
    """Unless a test asks for the full graph, the CLI runs only the spokes' Databricks steps and what they stand
    on (role, bucket, spoke network): the hub and the firewall add time and nothing these tests look at."""
    if "full_graph" in request.fixturenames:
        return
    from provisioner import cli

    def branch(config: Any) -> list[Step]:
        return [s for spoke in config.spokes for s in _spoke_steps(config, spoke.name)]

    monkeypatch.setattr(cli, "all_steps", branch)
    monkeypatch.setattr(cli, "all_checks", lambda config: [])


# -- helpers ------------------------------------------------------------------------------------------------


def _state(workdir: Any, deployment: str) -> dict[str, Any]:
    return json.loads((workdir.path / "state" / f"{deployment}.json").read_text())


def _api_calls(databricks: Any, *methods: str) -> list[str]:
    """Account and workspace API requests (not the OAuth token endpoint) with one of these methods."""
    return [r for r in databricks.requests if r.split(" ")[0] in methods and "/oidc/" not in r]


def _context(tmp_path: Path, text: str, clock: FakeClock, poll_scale: float = 1.0,
             reports: list[tuple[str, str, str]] | None = None) -> Context:
    """A context as the CLI builds it, with the fake clock: for tests of single steps and retries."""
    config = build_config(tomllib.loads(text))
    sink = reports if reports is not None else []
    return Context(config=config, state=load(tmp_path / "state", config.deployment),
                   aws_factory=lambda: Aws(config.region), databricks_factory=dbx.account_client_factory(config),
                   clock=clock, poll_scale=poll_scale, report=lambda k, s, m: sink.append((k, s, m)),
                   resolver=lambda host: ["203.0.113.10"])


def _spoke_steps(config: Any, spoke: str = "main") -> list[Step]:
    """The spoke's Databricks steps and everything they stand on (not the hub, the firewall, ...)."""
    everything = {s.key: s for s in steps_pkg.all_steps(config)}
    wanted: set[str] = set()
    todo = [k for k in everything if k.startswith(f"spoke/{spoke}/") and isinstance(everything[k],
                                                                                     dbsteps.DatabricksStep)]
    while todo:
        key = todo.pop()
        if key not in wanted:
            wanted.add(key)
            todo += list(everything[key].needs)
    return [s for k, s in everything.items() if k in wanted]


# -- the whole family through the CLI -----------------------------------------------------------------------


@pytest.mark.parametrize("spokes", [(("main", "10.173.0.0/16"),),
                                    (("bu1", "10.1.0.0/16"), ("bu2", "10.2.0.0/16"))], ids=["1-spoke", "2-spokes"])
def test_up_builds_the_databricks_objects_and_down_removes_them(aws, databricks, workdir, spokes, calls, full_graph):
    deployment = f"dbx{len(spokes)}"
    workdir.write_config(config_text(deployment, spokes=spokes))
    names = [s for s, _ in spokes]

    up = workdir.run("up", "--progress", "json")
    assert up.code == 0, up.out + up.err
    _assert_firewall_learnt_the_hosts_after_the_workspaces(workdir, deployment, spokes, up.out)

    account = databricks.account_client()
    assert sorted(c.credentials_name for c in account.credentials.list()) == [f"{deployment}-{s}-creds" for s in names]
    assert sorted(s.storage_configuration_name for s in account.storage.list()) == \
        [f"{deployment}-{s}-storage" for s in names]
    networks = {n.network_name: n for n in account.networks.list()}
    assert sorted(networks) == [f"{deployment}-{s}-network" for s in names]
    workspaces = {w.workspace_name: w for w in account.workspaces.list()}
    assert sorted(workspaces) == [f"{deployment}-{s}" for s in names]
    state = _state(workdir, deployment)
    iam_client = client("iam")
    for spoke in names:
        ws = workspaces[f"{deployment}-{spoke}"]
        assert ws.workspace_status.value == "RUNNING"
        assert ws.deployment_name == f"{deployment}-{spoke}"
        assert ws.aws_region == "eu-central-1"
        role_arn = iam_client.get_role(RoleName=f"{deployment}-{spoke}-crossaccount")["Role"]["Arn"]
        creds = account.credentials.get(ws.credentials_id)
        assert creds.aws_credentials.sts_role.role_arn == role_arn
        assert account.storage.get(ws.storage_configuration_id).root_bucket_info.bucket_name == \
            f"{deployment}-{spoke}-rootbucket"
        network = account.networks.get(ws.network_id)
        assert network.vpc_id == state["resources"][f"spoke/{spoke}/vpc"]["id"]
        assert len(network.subnet_ids) == 2 and len(network.security_group_ids) == 1
        # The workspace ID was recorded, and its URL is an output.
        assert state["resources"][f"spoke/{spoke}/workspace"]["id"] == str(ws.workspace_id)
        assert state["outputs"][f"spoke/{spoke}/workspace-url"] == databricks.workspace_url(f"{deployment}-{spoke}")
        assert state["secrets"][f"spoke/{spoke}/token"].startswith("dapi")

    output = workdir.run("output")
    for spoke in names:
        assert f"spoke/{spoke}/workspace-url = {databricks.workspace_url(f'{deployment}-{spoke}')}" in output.out
        assert f"spoke/{spoke}/token = (hidden" in output.out

    # A second run finds everything and changes nothing.
    databricks.requests.clear()
    calls.clear()
    again = workdir.run("up")
    assert again.code == 0, again.out + again.err
    assert _api_calls(databricks, "POST", "DELETE", "PATCH") == []
    assert "failed" not in again.out
    assert "UpdateRuleGroup" not in calls.calls
    # Reads: the sign-in (the token, from the endpoint Databricks documents), the account's workspaces once
    # (proving each spoke's credentials, storage and network: no read of those), and per spoke its network policy,
    # the workspace's binding to it and its token, read with the token itself (no sign-in to the workspace).
    requests = list(databricks.requests)
    assert not [r for r in requests if "databricks-config" in r or ("/ws/" in r and "/oidc/" in r)], requests
    assert not [r for r in requests if any(f"/{kind}/" in r for kind in ("credentials", "storage-configurations",
                                                                          "networks"))], requests
    assert len([r for r in requests if r.startswith("GET ") and r.split()[1].endswith("/workspaces")]) == 1
    assert len(requests) == 2 + 3 * len(spokes), requests

    status = workdir.run("status", "--json")
    assert status.code == 0, status.out
    resources = [r for r in json.loads(status.out)["resources"] if r["kind"] != "check"]
    assert {r["status"] for r in resources} == {"present"}, status.out
    # credentials, storage, network, workspace, token, network policy, the workspace's binding to it
    assert len([r for r in resources if r["kind"].startswith("Databricks")]) == 7 * len(spokes)

    # Someone passes the whole control-plane range again: status names the rule.
    nfw = client("network-firewall")
    arn = _state(workdir, deployment)["resources"]["hub/firewall/rule-group/control-plane"]["id"]
    got = nfw.describe_rule_group(RuleGroupArn=arn)
    widened = 'pass tcp $HOME_NET any -> 18.159.44.32/28 443 (msg:"anything"; flow:to_server; sid:9; rev:1;)'
    nfw.update_rule_group(RuleGroupArn=arn, UpdateToken=got["UpdateToken"], RuleGroup={
        **got["RuleGroup"], "RulesSource": {"RulesString": got["RuleGroup"]["RulesSource"]["RulesString"] + widened}})
    status = workdir.run("status")
    assert status.code == 3, status.out
    assert f"passes what the design does not: {widened}" in " ".join(status.out.split())

    databricks.requests.clear()
    down = workdir.run("down", "--yes")
    assert down.code == 0, down.out + down.err
    assert list(account.workspaces.list()) == []
    assert list(account.networks.list()) == list(account.storage.list()) == list(account.credentials.list()) == []
    assert [p.network_policy_id for p in account.network_policies.list_network_policies_rpc()] == ["default-policy"]
    state = _state(workdir, deployment)
    assert state["outputs"] == {} and state["secrets"] == {}
    assert not [k for k in state["resources"] if k.split("/")[-1] in ("credentials", "storage", "network")]


def _assert_firewall_learnt_the_hosts_after_the_workspaces(workdir: Any, deployment: str,
                                                          spokes: tuple[tuple[str, str], ...], progress: str) -> None:
    """The control-plane group was made before any workspace (the firewall does not wait for one) and learnt
    each workspace's host, from that workspace's spoke alone, once the workspaces were RUNNING."""
    events = [json.loads(line) for line in progress.splitlines() if line.startswith("{")]
    done = {e["step"]: i for i, e in enumerate(events) if e["state"] == "done"}
    state = _state(workdir, deployment)
    # (the emulator's workspace URLs are on its own address)
    hosts = {spoke: fw.workspace_host(state["outputs"][f"spoke/{spoke}/workspace-url"]) for spoke, _ in spokes}
    assert all(done["hub/firewall/rule-group/control-plane"] < done[f"spoke/{s}/workspace"] <
               done["hub/firewall/workspace-hosts"] for s, _ in spokes)
    assert events[done["hub/firewall/workspace-hosts"]]["message"] == \
        "updated: workspace hosts not passed yet: " + ", ".join(f"{s} ({h})" for s, h in sorted(hosts.items()))
    arn = state["resources"]["hub/firewall/rule-group/control-plane"]["id"]
    rules = client("network-firewall").describe_rule_group(RuleGroupArn=arn)["RuleGroup"]["RulesSource"][
        "RulesString"].splitlines()
    assert all(r.startswith("pass tls ") and "tls.sni;" in r for r in rules)
    for spoke, cidr in spokes:
        assert [r.split(" (")[0] for r in rules if f"workspace of spoke {spoke}," in r] == [
            f"pass tls {cidr} any -> 18.159.44.32/28 {port}" for port in ("443", "8443:8451")]
        assert all(f'content:"{hosts[spoke]}"' in r for r in rules if f"workspace of spoke {spoke}," in r)


def test_the_token_is_kept_in_the_state_file_and_printed_only_when_asked(aws, databricks, workdir):
    workdir.write_config(config_text("tok"))
    printed = []
    up = workdir.run("up")
    assert up.code == 0, up.out + up.err
    printed += [up.out, up.err]

    path = workdir.path / "state" / "tok.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    token = json.loads(path.read_text())["secrets"]["spoke/main/token"]
    assert token.startswith("dapi")

    hidden = workdir.run("output")
    as_json = workdir.run("output", "--json")
    status = workdir.run("status")
    printed += [hidden.out, hidden.err, as_json.out, as_json.err, status.out, status.err]
    assert "spoke/main/token = (hidden: --show-secrets prints it)" in hidden.out
    assert json.loads(as_json.out)["secrets"]["spoke/main/token"].startswith("(hidden")

    shown = workdir.run("output", "--show-secrets")
    assert f"spoke/main/token = {token}" in shown.out

    down = workdir.run("down", "--yes")
    printed += [down.out, down.err]
    for text in printed:
        assert token not in text
        assert DATABRICKS_CLIENT_SECRET not in text

    # The token was made as configured, in the workspace, and was revoked with it.
    assert "spoke/main/token" not in json.loads(path.read_text())["secrets"]


def test_token_lifetime_and_comment_come_from_the_config(aws, databricks, workdir):
    workdir.write_config(config_text("life", extra="[workspace]\npat_lifetime_seconds = 3600"))
    assert workdir.run("up").code == 0
    from databricks.sdk import WorkspaceClient

    ws = WorkspaceClient(host=databricks.workspace_url("life-main"), client_id=DATABRICKS_CLIENT_ID,
                         client_secret=DATABRICKS_CLIENT_SECRET, auth_type="oauth-m2m")
    [info] = list(ws.tokens.list())
    assert info.comment == "provision life-main-token"
    assert info.expiry_time - info.creation_time == 3600 * 1000
    assert info.token_id == _state(workdir, "life")["resources"]["spoke/main/token"]["id"]


def test_a_lost_token_is_replaced_and_the_old_one_revoked(aws, databricks, workdir):
    workdir.write_config(config_text("lost"))
    assert workdir.run("up").code == 0
    path = workdir.path / "state" / "lost.json"
    doc = json.loads(path.read_text())
    old_id = doc["resources"]["spoke/main/token"]["id"]
    del doc["secrets"]["spoke/main/token"]
    path.write_text(json.dumps(doc))

    assert workdir.run("up").code == 0
    doc = json.loads(path.read_text())
    from databricks.sdk import WorkspaceClient

    ws = WorkspaceClient(host=databricks.workspace_url("lost-main"), client_id=DATABRICKS_CLIENT_ID,
                         client_secret=DATABRICKS_CLIENT_SECRET, auth_type="oauth-m2m")
    ids = [t.token_id for t in ws.tokens.list()]
    assert ids == [doc["resources"]["spoke/main/token"]["id"]] and old_id not in ids
    assert doc["secrets"]["spoke/main/token"].startswith("dapi")


def test_crash_after_workspace_create_adopts_it_by_name(aws, databricks, workdir, monkeypatch):
    workdir.write_config(config_text("wcrash"))
    real_create = dbsteps.Workspace.create

    def create_then_die(self, ctx):
        real_create(self, ctx)
        raise KeyboardInterrupt

    monkeypatch.setattr(dbsteps.Workspace, "create", create_then_die)
    assert workdir.run("up").code == 130
    assert "spoke/main/workspace" not in _state(workdir, "wcrash")["resources"]

    monkeypatch.setattr(dbsteps.Workspace, "create", real_create)
    databricks.requests.clear()
    assert workdir.run("up").code == 0
    assert not [r for r in _api_calls(databricks, "POST") if r.endswith("/workspaces -> 200")]
    assert len(list(databricks.account_client().workspaces.list())) == 1


# -- the credential-validation retry ------------------------------------------------------------------------


@pytest.fixture
def shared_clock(databricks, monkeypatch) -> FakeClock:
    """provision's clock and the emulator's are one fake clock: provision's sleeps move Databricks' time."""
    return databricks.share_clock(monkeypatch)


def test_propagation_failures_are_retried_and_shown_on_the_progress_line(aws, databricks, workdir, shared_clock):
    # The role fails validation for 0.3 s of (fake) time after Databricks first sees it; retries back off from
    # the floor (PROVISION_POLL_SCALE=0 here), so several attempts fail before one passes.
    databricks.settings.iam_propagation_seconds = 0.3
    workdir.write_config(config_text("prop"))
    started = time.monotonic()
    up = workdir.run("up")
    assert up.code == 0, up.out + up.err
    assert time.monotonic() - started < 30

    posts = [r for r in _api_calls(databricks, "POST") if "/credentials " in r]
    assert len([r for r in posts if r.endswith("-> 400")]) >= 2
    assert [r for r in posts if r.endswith("-> 200")] == [posts[-1]]
    retry_lines = [line for line in up.out.splitlines() if "spoke/main/credentials" in line and "retrying" in line]
    assert retry_lines and "IAM propagation" in retry_lines[0]
    assert len(list(databricks.account_client().credentials.list())) == 1


CUSTOMER_POLICY = '[workspace]\ncrossaccount_policy_type = "customer"'


def test_retry_backs_off_on_the_injected_clock_until_the_role_validates(aws, databricks, tmp_path):
    clock = FakeClock()
    databricks.settings.clock = clock.now
    databricks.settings.iam_propagation_seconds = 40
    reports: list[tuple[str, str, str]] = []
    # The role alone, without the spoke network a `restricted` policy names.
    ctx = _context(tmp_path, config_text("backoff", extra=CUSTOMER_POLICY), clock, poll_scale=1.0, reports=reports)
    steps = [*iam.steps(ctx.config), dbsteps.Credentials(ctx.config, "main")]
    started = time.monotonic()

    result = engine.up(ctx, steps)

    assert [o.result for o in result.outcomes] == ["created", "created"], result.outcomes
    assert time.monotonic() - started < 10  # 40 s of propagation took no wall time
    failures = [r for r in databricks.requests if "/credentials " in r and r.endswith("-> 400")]
    assert 2 <= len(failures) <= 6  # exponential backoff (2, 4, 8, 16 s + jitter), not a tight loop
    assert clock.now() - 1000 >= 40
    assert all(s > 0 for s in clock.slept)
    retrying = [m for k, s, m in reports if k == "spoke/main/credentials" and s == "retrying"]
    assert len(retrying) == len(failures)
    assert "attempt 1" in retrying[0] and "retrying for up to" in retrying[0]


def test_retry_gives_up_at_the_deadline_and_says_what_to_check(aws, databricks, tmp_path):
    clock = FakeClock()
    databricks.settings.clock = clock.now
    databricks.settings.iam_propagation_seconds = 10**6  # never propagates
    text = config_text("giveup", extra=CUSTOMER_POLICY + "\ncredential_validation_timeout_seconds = 60")
    ctx = _context(tmp_path, text, clock, poll_scale=1.0)
    steps = [*iam.steps(ctx.config), dbsteps.Credentials(ctx.config, "main")]
    started = time.monotonic()

    result = engine.up(ctx, steps)

    assert time.monotonic() - started < 10
    [failure] = result.failures
    assert failure.key == "spoke/main/credentials"
    assert "after 60 s" in failure.message
    assert "Failed credentials validation checks" in failure.message
    assert f"sts:ExternalId = {ACCOUNT_ID}" in failure.message
    assert "arn:aws:iam::414351767826:root" in failure.message
    assert "databricks-crossaccount" in failure.message
    assert "credential_validation_timeout_seconds" in failure.message
    assert 60 <= clock.now() - 1000 <= 61  # gave up at the deadline, not before nor long after
    attempts = [r for r in databricks.requests if "/credentials " in r and r.startswith("POST")]
    assert 3 <= len(attempts) <= 8


def _bad_request(message: str, code: str = "MALFORMED_REQUEST", cls: type = BadRequest) -> Exception:
    return cls(message, error_code=code)


@pytest.mark.parametrize("error", [
    _bad_request("Failed storage configuration validation checks: List, Put"),
    _bad_request("Invalid JSON given in the body of the request - expected a map"),
    _bad_request("Failed credentials validation checks: Describe Vpcs", code="INVALID_PARAMETER_VALUE",
                 cls=InvalidParameterValue),
    _bad_request("Network is being used by active workspace 1", code="INVALID_STATE", cls=InvalidState),
], ids=["storage-checks", "bad-body", "other-code", "invalid-state"])
def test_no_other_error_is_retried(error):
    clock, calls = FakeClock(), []

    def fail():
        calls.append(1)
        raise error

    with pytest.raises(type(error)):
        call_with_retry(fail, condition=CREDENTIAL_VALIDATION, clock=clock, deadline_seconds=300)
    assert calls == [1] and clock.slept == []


def test_both_forms_of_the_credential_validation_error_are_retried():
    assert is_credential_validation_failure(_bad_request("Failed credentials validation checks: Spot Cancellation"))
    assert is_credential_validation_failure(_bad_request(
        "Failed credential validation checks: please use a valid cross account IAM role with permissions setup "
        "correctly"))
    assert IN_USE.matches(_bad_request("Unable to delete, Network is being used by active workspace 1",
                                       code="INVALID_STATE", cls=InvalidState))
    assert IN_USE.matches(ResourceConflict("Conflict"))
    assert not IN_USE.matches(_bad_request("Failed credentials validation checks: x"))


def test_the_sdk_reports_a_text_plain_propagation_error_as_the_retried_condition(aws, databricks):
    """What the retry keys on, as the real SDK parses the emulator's text/plain 400."""
    iam_client = client("iam")
    trust = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"AWS": "arn:aws:iam::414351767826:root"},
        "Condition": {"StringEquals": {"sts:ExternalId": ACCOUNT_ID}}}]})
    arn = iam_client.create_role(RoleName="fresh", AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    databricks.settings.iam_propagation_seconds = 30
    from databricks.sdk.service.provisioning import CreateCredentialAwsCredentials, CreateCredentialStsRole

    with pytest.raises(BadRequest) as caught:
        databricks.account_client().credentials.create(
            credentials_name="fresh-creds",
            aws_credentials=CreateCredentialAwsCredentials(sts_role=CreateCredentialStsRole(role_arn=arn)))
    assert caught.value.error_code == "MALFORMED_REQUEST"
    assert is_credential_validation_failure(caught.value)

    client("s3").create_bucket(Bucket="nopolicy", CreateBucketConfiguration={"LocationConstraint": "eu-central-1"})
    from databricks.sdk.service.provisioning import RootBucketInfo

    with pytest.raises(BadRequest) as storage:
        databricks.account_client().storage.create(storage_configuration_name="nopolicy-storage",
                                                   root_bucket_info=RootBucketInfo(bucket_name="nopolicy"))
    assert storage.value.error_code == "MALFORMED_REQUEST"
    assert not is_credential_validation_failure(storage.value)


# -- a workspace that fails ---------------------------------------------------------------------------------


def test_a_failed_workspace_shows_the_network_error_and_stays_in_state(aws, databricks, workdir, monkeypatch,
                                                                       shared_clock):
    databricks.settings.workspace_provisioning_seconds = 2
    workdir.write_config(config_text("broken"))
    real_create = dbsteps.Workspace.create
    removed = []

    def create_then_remove_security_group(self, ctx):
        res = real_create(self, ctx)
        sg = ctx.output(keys.spoke(self.spoke, "security-group"))
        ec2 = client("ec2")
        # As someone would by hand: the interface endpoints that use it go first (AWS refuses otherwise).
        users = [e["VpcEndpointId"] for e in ec2.describe_vpc_endpoints()["VpcEndpoints"]
                 if sg in [g["GroupId"] for g in e.get("Groups", [])]]
        if users:
            ec2.delete_vpc_endpoints(VpcEndpointIds=users)
        ec2.delete_security_group(GroupId=sg)
        removed.append(sg)
        return res

    monkeypatch.setattr(dbsteps.Workspace, "create", create_then_remove_security_group)
    up = workdir.run("up")
    assert up.code == 1
    [sg] = removed
    message = up.err.replace("\n", " ")
    assert "broken-main" in message and "is FAILED" in message
    assert "BROKEN" in message and f"error securityGroup: Security group {sg} does not exist" in message
    assert "provision down" in message
    state = _state(workdir, "broken")
    [ws] = list(databricks.account_client().workspaces.list())
    assert state["resources"]["spoke/main/workspace"]["id"] == str(ws.workspace_id)
    assert "spoke/main/token" not in state["resources"]

    status = workdir.run("status", "--json")
    assert status.code == 3
    items = {r["key"]: r for r in json.loads(status.out)["resources"]}
    assert items["spoke/main/workspace"]["status"] == "drifted"
    assert any("FAILED" in d for d in items["spoke/main/workspace"]["drift"])
    assert any("BROKEN" in d and sg in d for d in items["spoke/main/network"]["drift"])

    monkeypatch.setattr(dbsteps.Workspace, "create", real_create)
    down = workdir.run("down", "--yes")
    assert down.code == 0, down.out + down.err
    account = databricks.account_client()
    assert list(account.workspaces.list()) == list(account.networks.list()) == []


# -- down -------------------------------------------------------------------------------------------------


def test_down_waits_for_the_workspace_to_go_then_deletes_the_rest_in_order(aws, databricks, workdir, monkeypatch,
                                                                           shared_clock):
    databricks.settings.workspace_deleting_seconds = 1
    workdir.write_config(config_text("order"))
    assert workdir.run("up").code == 0

    events: list[str] = []
    databricks.settings.log = lambda line: events.append(f"dbx {line}")
    monkeypatch.setattr(clients, "SESSION_HOOKS",
                        [("before-call.*.*", lambda model, **kw: events.append(f"aws {model.name}"))])
    down = workdir.run("down", "--yes")
    assert down.code == 0, down.out + down.err

    ws_id = None
    for e in events:
        if e.startswith("dbx DELETE") and "/workspaces/" in e:
            ws_id = e.split("/workspaces/")[1].split(" ")[0]
    assert ws_id

    def first(pred):
        return next(i for i, e in enumerate(events) if pred(e))

    token_deleted = first(lambda e: "/api/2.0/token/delete -> 200" in e)
    ws_deleted = first(lambda e: e.startswith("dbx DELETE") and f"/workspaces/{ws_id} -> 200" in e)
    gone = first(lambda e: e.startswith("dbx GET") and f"/workspaces/{ws_id} -> 404" in e)
    still_there = [e for e in events[ws_deleted:gone] if e.startswith("dbx GET") and f"/workspaces/{ws_id} -> 200" in e]
    assert len(still_there) >= 3  # several polls while Databricks deletes it
    configs = [first(lambda e, kind=kind: e.startswith("dbx DELETE") and f"/{kind}/" in e and e.endswith("-> 200"))
               for kind in ("networks", "storage-configurations", "credentials")]
    aws_deletes = [first(lambda e, op=op: e == f"aws {op}") for op in ("DeleteRole", "DeleteBucket", "DeleteVpc")]
    assert token_deleted < ws_deleted < gone < min(configs)
    assert max(configs) < min(aws_deletes)
    assert not [e for e in events if "-> 400" in e or "-> 409" in e]  # nothing was tried before its time


@pytest.mark.parametrize("conflict_409", [False, True], ids=["INVALID_STATE", "409-empty-body"])
def test_a_network_still_in_use_is_retried_until_the_workspace_is_gone(aws, databricks, tmp_path, conflict_409):
    clock = FakeClock()
    databricks.settings.clock = clock.now
    databricks.settings.workspace_deleting_seconds = 20
    databricks.settings.network_delete_conflict_409 = conflict_409
    reports: list[tuple[str, str, str]] = []
    ctx = _context(tmp_path, config_text("inuse"), clock, poll_scale=1.0, reports=reports)
    steps = _spoke_steps(ctx.config)
    assert not engine.up(ctx, steps).failures
    by_key = {s.key: s for s in steps}
    workspace, network = by_key["spoke/main/workspace"], by_key["spoke/main/network"]

    # The workspace is asked to go, but nobody waits: the network delete meets it still there.
    workspace.delete(ctx, workspace.find(ctx))
    res = network.find(ctx)
    network.delete(ctx, res)

    assert network.find(ctx) is None
    code = "409" if conflict_409 else "400"
    refused = [r for r in databricks.requests if r.startswith("DELETE") and "/networks/" in r and r.endswith(code)]
    assert refused, databricks.requests
    assert clock.now() - 1000 >= 20
    assert any(k == "spoke/main/network" and s == "retrying" and "in use" in m for k, s, m in reports)


def test_a_network_in_use_past_the_deadline_says_so(aws, databricks, tmp_path, monkeypatch):
    clock = FakeClock()
    databricks.settings.clock = clock.now
    ctx = _context(tmp_path, config_text("stuck"), clock, poll_scale=1.0)
    steps = _spoke_steps(ctx.config)
    assert not engine.up(ctx, steps).failures
    network = next(s for s in steps if s.key == "spoke/main/network")

    from provisioner.aws.errors import CloudError

    with pytest.raises(CloudError) as caught:
        network.delete(ctx, network.find(ctx))  # the workspace was never deleted
    assert "INVALID_STATE" in str(caught.value) and "being used by active workspace" in str(caught.value)
    assert "delete that workspace first" in str(caught.value)
    assert clock.now() - 1000 >= dbsteps.IN_USE_TIMEOUT


# -- authentication -----------------------------------------------------------------------------------------


def _assert_refused_before_aws(workdir, calls, *args):
    workdir.write_config(config_text("auth"))
    result = workdir.run(*(args or ("up",)))
    assert result.code == 2, result.out + result.err
    assert calls.calls == []  # not one AWS call, let alone a write
    assert not (workdir.path / "state" / "auth.json").exists()
    assert len(result.err.strip().splitlines()) == 1, result.err
    assert DATABRICKS_CLIENT_SECRET not in result.out + result.err
    return result.err


def test_missing_databricks_credentials_exit_2_before_any_aws_call(aws, databricks, workdir, calls, monkeypatch):
    monkeypatch.delenv("DATABRICKS_CLIENT_ID")
    monkeypatch.delenv("DATABRICKS_CLIENT_SECRET")
    err = _assert_refused_before_aws(workdir, calls)
    assert "DATABRICKS_CLIENT_ID" in err and "DATABRICKS_CLIENT_SECRET" in err


def test_half_set_oauth_credentials_name_the_missing_one(aws, databricks, workdir, calls, monkeypatch):
    monkeypatch.delenv("DATABRICKS_CLIENT_SECRET")
    assert "DATABRICKS_CLIENT_SECRET is not set" in _assert_refused_before_aws(workdir, calls)


def test_wrong_secret_exit_2_without_printing_it(aws, databricks, workdir, calls, monkeypatch):
    monkeypatch.setenv("DATABRICKS_CLIENT_SECRET", "wrong-secret-value-123")
    err = _assert_refused_before_aws(workdir, calls, "down", "--yes")
    assert "cannot authenticate" in err and "wrong-secret-value-123" not in err


def test_wrong_account_exit_2(aws, databricks, workdir, calls, monkeypatch):
    monkeypatch.setenv("DATABRICKS_ACCOUNT_ID", "11111111-2222-4333-8444-555555555555")
    err = _assert_refused_before_aws(workdir, calls, "status")
    assert "databricks_account_id" in err


def test_bad_workspace_url_template_exit_2(aws, databricks, workdir, calls, monkeypatch):
    monkeypatch.setenv("PROVISION_WORKSPACE_URL_TEMPLATE", "https://example.com/no-placeholder")
    assert "PROVISION_WORKSPACE_URL_TEMPLATE" in _assert_refused_before_aws(workdir, calls)


def test_password_auth_works_with_a_warning(aws, databricks, workdir, monkeypatch):
    monkeypatch.delenv("DATABRICKS_CLIENT_ID")
    monkeypatch.delenv("DATABRICKS_CLIENT_SECRET")
    monkeypatch.setenv("DATABRICKS_USERNAME", DATABRICKS_USERNAME)
    monkeypatch.setenv("DATABRICKS_PASSWORD", DATABRICKS_PASSWORD)
    workdir.write_config(config_text("basic"))
    result = workdir.run("status")
    assert result.code == 3, result.out + result.err  # nothing built yet: missing, but authenticated
    assert "retired password authentication" in result.err and "DATABRICKS_CLIENT_ID" in result.err
    assert DATABRICKS_PASSWORD not in result.out + result.err

    monkeypatch.setenv("DATABRICKS_PASSWORD", "not-the-password")
    refused = workdir.run("status")
    assert refused.code == 2 and "rejected the credentials" in refused.err
    assert "not-the-password" not in refused.err


def test_a_profile_in_databrickscfg_is_used(aws, databricks, workdir, monkeypatch, tmp_path):
    monkeypatch.delenv("DATABRICKS_CLIENT_ID")
    monkeypatch.delenv("DATABRICKS_CLIENT_SECRET")
    monkeypatch.delenv("DATABRICKS_HOST")
    cfg = tmp_path / "databrickscfg"
    cfg.write_text(f"[acct]\nhost = {databricks.url}\naccount_id = {ACCOUNT_ID}\nclient_id = {DATABRICKS_CLIENT_ID}\n"
                   f"client_secret = {DATABRICKS_CLIENT_SECRET}\n")
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", str(cfg))
    monkeypatch.setenv("DATABRICKS_CONFIG_PROFILE", "acct")
    workdir.write_config(config_text("prof"))
    result = workdir.run("status")
    assert result.code == 3, result.out + result.err

    monkeypatch.setenv("DATABRICKS_CONFIG_PROFILE", "nope")
    wrong = workdir.run("status")
    assert wrong.code == 2 and "no profile [nope]" in wrong.err and "acct" in wrong.err


def test_a_chosen_profile_wins_over_credentials_in_the_environment(aws, databricks, workdir, monkeypatch, tmp_path):
    """The SDK reads DATABRICKS_USERNAME/PASSWORD/TOKEN itself; beside a profile's client credentials it would
    refuse both ("more than one authorization method configured")."""
    monkeypatch.delenv("DATABRICKS_CLIENT_ID")
    monkeypatch.delenv("DATABRICKS_CLIENT_SECRET")
    cfg = tmp_path / "databrickscfg"
    cfg.write_text(f"[acct]\nhost = {databricks.url}\nclient_id = {DATABRICKS_CLIENT_ID}\n"
                   f"client_secret = {DATABRICKS_CLIENT_SECRET}\n[pw]\nhost = {databricks.url}\n"
                   f"username = {DATABRICKS_USERNAME}\npassword = {DATABRICKS_PASSWORD}\n")
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", str(cfg))
    monkeypatch.setenv("DATABRICKS_CONFIG_PROFILE", "acct")
    monkeypatch.setenv("DATABRICKS_USERNAME", DATABRICKS_USERNAME)
    monkeypatch.setenv("DATABRICKS_PASSWORD", "not-the-password")
    workdir.write_config(config_text("envprof"))
    result = workdir.run("status")
    assert result.code == 3, result.out + result.err
    assert "retired password" not in result.err

    # A profile with a username and password is password authentication: it gets the warning too.
    monkeypatch.delenv("DATABRICKS_USERNAME")
    monkeypatch.delenv("DATABRICKS_PASSWORD")
    monkeypatch.setenv("DATABRICKS_CONFIG_PROFILE", "pw")
    result = workdir.run("status")
    assert result.code == 3, result.out + result.err
    assert "retired password authentication" in result.err
    assert DATABRICKS_PASSWORD not in result.out + result.err


def test_the_workspace_url_follows_the_template():
    assert dbx.workspace_url("acme-main", {}) == "https://acme-main.cloud.databricks.com"
    sandbox = {"PROVISION_WORKSPACE_URL_TEMPLATE": "http://127.0.0.1:9/ws/{deployment_name}"}
    assert dbx.workspace_url("acme-main", sandbox) == "http://127.0.0.1:9/ws/acme-main"


def test_without_a_deployment_name_prefix_databricks_names_the_workspace(aws, databricks, workdir, monkeypatch):
    """Accounts without a deployment-name prefix refuse `deployment_name`; the URL then follows Databricks' name.
    (The emulator has no such account: taught here.)"""
    from provisioner.sandbox import databricks_api

    real = databricks_api.DatabricksEmulator._deployment_name

    def no_prefix(self, requested):
        if requested not in (None, ""):
            raise databricks_api.ApiError(400, "INVALID_PARAMETER_VALUE", "Deployment name cannot be used until a "
                                          "deployment name prefix is defined.")
        return real(self, requested)

    monkeypatch.setattr(databricks_api.DatabricksEmulator, "_deployment_name", no_prefix)
    workdir.write_config(config_text("nopfx"))
    up = workdir.run("up")
    assert up.code == 0, up.out + up.err
    [ws] = list(databricks.account_client().workspaces.list())
    assert ws.workspace_name == "nopfx-main" and ws.deployment_name.startswith("dbc-")
    state = _state(workdir, "nopfx")
    assert state["outputs"]["spoke/main/workspace-url"] == databricks.workspace_url(ws.deployment_name)
    assert state["secrets"]["spoke/main/token"].startswith("dapi")
    assert workdir.run("up").code == 0  # found again by name, nothing new
    assert len(list(databricks.account_client().workspaces.list())) == 1


def test_an_object_that_differs_is_drift_and_up_says_it_cannot_change_it(aws, databricks, tmp_path):
    ctx = _context(tmp_path, config_text("immut"), FakeClock())
    steps = _spoke_steps(ctx.config)
    assert not engine.up(ctx, steps).failures
    creds = next(s for s in steps if s.key == "spoke/main/credentials")
    found = creds.find(ctx)
    assert creds.ensure(ctx, found, apply=False) == []

    other = Resource(found.id, live={"role_arn": "arn:aws:iam::123456789012:role/someone-else"})
    [drift] = creds.ensure(ctx, other, apply=False)
    assert "points to role arn:aws:iam::123456789012:role/someone-else" in drift
    from provisioner.aws.errors import CloudError

    with pytest.raises(CloudError, match="can't change a credential configuration in place"):
        creds.ensure(ctx, other, apply=True)


def test_a_failing_account_api_at_the_credential_check_is_a_cloud_failure(monkeypatch):
    """5xx or throttling after the SDK's retries is not bad input: exit 1 (CloudError), not 2."""
    from databricks.sdk.errors import InternalError, Unauthenticated

    from provisioner.aws.errors import CloudError
    from provisioner.databricks import client
    from provisioner.errors import UsageError

    auth = client.Auth("oauth-m2m", "DATABRICKS_CLIENT_ID/DATABRICKS_CLIENT_SECRET",
                       {"host": "https://accounts.example", "account_id": "a", "client_id": "i", "client_secret": "s"})

    def failing(error):
        class Workspaces:
            def list(self):
                raise error

        class Account:
            workspaces = Workspaces()

        return lambda *a, **k: Account()

    monkeypatch.setattr(client, "_build", failing(InternalError("upstream failed")))
    with pytest.raises(CloudError, match="is failing"):
        client.check_credentials(auth)
    monkeypatch.setattr(client, "_build", failing(Unauthenticated("bad token")))
    with pytest.raises(UsageError, match="rejected the credentials"):
        client.check_credentials(auth)


def test_down_rerun_while_the_workspace_is_already_being_deleted(aws, databricks, workdir, monkeypatch):
    """The real API can refuse a second DELETE of a workspace on its way out (INVALID_STATE): `down` waits
    for it instead of failing."""
    from databricks.sdk.errors import InvalidState
    from databricks.sdk.service.provisioning import WorkspacesAPI

    workdir.write_config(config_text("redel"))
    assert workdir.run("up").code == 0
    real_delete = WorkspacesAPI.delete
    refused = []

    def already_deleting(self, workspace_id):
        real_delete(self, workspace_id)  # the first DELETE, from an earlier run
        refused.append(workspace_id)
        raise InvalidState("INVALID_STATE: workspace is being deleted")

    monkeypatch.setattr(WorkspacesAPI, "delete", already_deleting)
    down = workdir.run("down", "--yes")
    assert down.code == 0, down.out + down.err
    assert refused and list(databricks.account_client().workspaces.list()) == []


# -- serverless egress ----------------------------------------------------------------------------------------


def _policy(account: Any, policy_id: str) -> dict[str, Any]:
    return account.network_policies.get_network_policy_rpc(policy_id).egress.network_access.as_dict()


def test_serverless_egress_is_restricted_per_spoke_to_its_allowlist_and_root_bucket(aws, databricks, workdir):
    text = config_text("sless", spokes=(("bu1", "10.1.0.0/16"), ("bu2", "10.2.0.0/16")))
    text = text.replace("name = 'bu2'", "name = 'bu2'\nextra_allowed_fqdns = ['.example.org']")
    text = text.replace('name = "bu2"', 'name = "bu2"\nextra_allowed_fqdns = [".example.org"]')
    workdir.write_config(text)
    up = workdir.run("up")
    assert up.code == 0, up.out + up.err
    account = databricks.account_client()
    state = _state(workdir, "sless")
    for spoke, extra in (("bu1", []), ("bu2", ["*.example.org", "example.org"])):
        access = _policy(account, f"sless-{spoke}-egress")
        assert access["restriction_mode"] == "RESTRICTED_ACCESS"
        assert [d["destination"] for d in access["allowed_internet_destinations"]] == \
            ["pypi.org", "files.pythonhosted.org", "cran.r-project.org", *extra]
        assert access["allowed_storage_destinations"] == [
            {"bucket_name": f"sless-{spoke}-rootbucket", "region": "eu-central-1",
             "storage_destination_type": "AWS_S3"}]
        workspace_id = int(state["resources"][f"spoke/{spoke}/workspace"]["id"])
        option = account.workspace_network_configuration.get_workspace_network_option_rpc(workspace_id)
        assert option.network_policy_id == f"sless-{spoke}-egress"

    # Changed by hand: `status` reports it, `up` puts it back in place (a policy can be updated).
    from databricks.sdk.service.settings import (
        AccountNetworkPolicy,
        EgressNetworkPolicyNetworkAccessPolicy,
        EgressNetworkPolicyNetworkAccessPolicyRestrictionMode,
        NetworkPolicyEgress,
    )
    account.network_policies.update_network_policy_rpc("sless-bu1-egress", AccountNetworkPolicy(
        network_policy_id="sless-bu1-egress", egress=NetworkPolicyEgress(network_access=(
            EgressNetworkPolicyNetworkAccessPolicy(
                restriction_mode=EgressNetworkPolicyNetworkAccessPolicyRestrictionMode.FULL_ACCESS)))))
    status = workdir.run("status", "--json")
    drift = {r["key"]: r for r in json.loads(status.out)["resources"]}["spoke/bu1/network-policy"]
    assert "egress RESTRICTED_ACCESS" in json.dumps(drift)
    assert workdir.run("up").code == 0
    assert _policy(account, "sless-bu1-egress")["restriction_mode"] == "RESTRICTED_ACCESS"

    down = workdir.run("down", "--yes")
    assert down.code == 0, down.out + down.err
    assert [p.network_policy_id for p in account.network_policies.list_network_policies_rpc()] == ["default-policy"]


def test_serverless_egress_full_is_a_full_access_policy(aws, databricks, workdir):
    workdir.write_config(config_text("slfull") + "\n[serverless]\negress = \"full\"\n")
    up = workdir.run("up")
    assert up.code == 0, up.out + up.err
    assert _policy(databricks.account_client(), "slfull-main-egress") == {"restriction_mode": "FULL_ACCESS"}


def test_the_emulated_network_policy_api_refuses_what_the_service_refuses(aws, databricks):
    from databricks.sdk.errors import NotFound
    from databricks.sdk.service.settings import AccountNetworkPolicy, NetworkPolicyEgress, WorkspaceNetworkOption

    api = databricks.account_client().network_policies
    good = {"restriction_mode": "RESTRICTED_ACCESS",
            "allowed_internet_destinations": [{"destination": "pypi.org", "internet_destination_type": "DNS_NAME"}]}

    def make(policy_id: str, access: dict[str, Any]) -> Any:
        from databricks.sdk.service.settings import EgressNetworkPolicyNetworkAccessPolicy

        return api.create_network_policy_rpc(AccountNetworkPolicy(network_policy_id=policy_id, egress=(
            NetworkPolicyEgress(network_access=EgressNetworkPolicyNetworkAccessPolicy.from_dict(access)))))

    with pytest.raises(BadRequest, match="network_policy_id"):
        make("x" * 33, good)
    with pytest.raises(BadRequest, match="not a domain name"):
        make("bad-dest", {**good, "allowed_internet_destinations": [
            {"destination": "not a host", "internet_destination_type": "DNS_NAME"}]})
    with pytest.raises(BadRequest, match="AWS_S3"):
        make("bad-storage", {**good, "allowed_storage_destinations": [
            {"bucket_name": "b-1", "storage_destination_type": "GOOGLE_CLOUD_STORAGE"}]})
    make("ok", good)
    with pytest.raises(ResourceConflict):
        make("ok", good)
    with pytest.raises(BadRequest, match="reserved"):
        api.delete_network_policy_rpc("default-policy")
    with pytest.raises(NotFound):
        databricks.account_client().workspace_network_configuration.update_workspace_network_option_rpc(
            42, WorkspaceNetworkOption(workspace_id=42, network_policy_id="ok"))
