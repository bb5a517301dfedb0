"""Never a duplicate, whatever the network does: provision's Databricks steps through the emulator's fault mode
(429s, 503s and reset connections, before a request takes effect or after it, the reply lost), a new workspace
whose API does not answer at first, and a workspace that refuses the token.

The AWS side is not faulted. provision's clock, the SDK's retry clock and the emulator's clock are one fake
clock, so the SDK's Retry-After pauses and every wait take no wall time.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from provisioner import engine
from provisioner.databricks.retry import explain_transient, transient_cause
from provisioner.errors import CloudError
from provisioner.sandbox.databricks_api import Faults
from provisioner.steps import databricks as dbsteps
from tests.conftest import DATABRICKS_CLIENT_ID, DATABRICKS_CLIENT_SECRET, FakeClock, config_text
from tests.test_databricks import (  # noqa: F401 (the autouse fixtures: the spokes' Databricks branch only)
    _context,
    _spoke_steps,
    _state,
    databricks_branch,
    families,
)

ALL_BUT_ACCOUNT_SIGN_IN = frozenset({"account", "workspace", "workspace-sign-in"})
CREATES = r"/(credentials|storage-configurations|networks|workspaces|token/create)$"


@pytest.fixture
def clock(databricks: Any, monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """One fake clock for provision, the emulator and the SDK's retries (`databricks.sdk.clock.RealClock`)."""
    from databricks.sdk.clock import RealClock

    fake = databricks.share_clock(monkeypatch)
    monkeypatch.setattr(RealClock, "time", lambda _self: fake.now())
    monkeypatch.setattr(RealClock, "sleep", lambda _self, seconds: fake.sleep(seconds))
    return fake


def _objects(databricks: Any) -> dict[str, list[str]]:
    """The name of every object in the emulated account, and of every token in its workspaces."""
    from databricks.sdk import WorkspaceClient

    account = databricks.account_client()
    found = {"credentials": [c.credentials_name for c in account.credentials.list()],
             "storage": [s.storage_configuration_name for s in account.storage.list()],
             "networks": [n.network_name for n in account.networks.list()],
             "workspaces": [w.workspace_name for w in account.workspaces.list()], "tokens": []}
    for ws in account.workspaces.list():
        client = WorkspaceClient(host=databricks.workspace_url(ws.deployment_name), client_id=DATABRICKS_CLIENT_ID,
                                 client_secret=DATABRICKS_CLIENT_SECRET, auth_type="oauth-m2m")
        found["tokens"] += [t.comment for t in client.tokens.list()]
    return {kind: sorted(names) for kind, names in found.items()}


def _one_of_each(deployment: str, spoke: str = "main") -> dict[str, list[str]]:
    name = f"{deployment}-{spoke}"
    return {"credentials": [f"{name}-creds"], "storage": [f"{name}-storage"], "networks": [f"{name}-network"],
            "workspaces": [name], "tokens": [f"provision {name}-token"]}


def _faults_off(databricks: Any) -> Any:
    """Faults paused, to read the account back; returns them for `_faults_on`."""
    faults, databricks.settings.faults = databricks.settings.faults, None
    return faults


# -- up and down through random faults ------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [11, 23])
def test_up_status_and_down_finish_first_time_through_random_faults(aws, databricks, workdir, clock, seed):
    workdir.write_config(config_text(f"flaky{seed}"))
    databricks.settings.faults = Faults(rate=0.3, seed=seed, endpoints=ALL_BUT_ACCOUNT_SIGN_IN)
    started = time.monotonic()

    up = workdir.run("up")
    assert up.code == 0, up.out + up.err
    status = workdir.run("status", "--json")
    assert status.code == 0, status.out + status.err
    items = [r for r in json.loads(status.out)["resources"] if r["kind"].startswith("Databricks")]
    # five objects, the serverless network policy and the workspace's binding to it
    assert len(items) == 7 and {r["status"] for r in items} == {"present"}, status.out

    faults = _faults_off(databricks)
    assert _objects(databricks) == _one_of_each(f"flaky{seed}")
    state = _state(workdir, f"flaky{seed}")
    assert state["secrets"]["spoke/main/token"].startswith("dapi")
    databricks.settings.faults = faults

    down = workdir.run("down", "--yes")
    assert down.code == 0, down.out + down.err
    databricks.settings.faults = None
    assert _objects(databricks) == {"credentials": [], "storage": [], "networks": [], "workspaces": [],
                                    "tokens": []}
    assert not [k for k in _state(workdir, f"flaky{seed}")["resources"] if k.startswith("spoke/main/")]

    injected = databricks.emulator.faults_injected
    assert len(injected) >= 20, injected  # the run did meet faults, of every kind, lost replies among them
    assert {line.split(" -> ")[1].split(" ")[0] for line in injected} == {"429", "503", "reset"}
    assert any(line.startswith(("POST", "DELETE")) and "after" in line for line in injected)
    assert time.monotonic() - started < 60


# -- a create whose reply was lost ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["503", "reset"])
def test_every_create_losing_its_reply_leaves_one_object_each(aws, databricks, workdir, clock, kind):
    """Each create takes effect and its reply is lost; the SDK sends it again and hears the name is taken (the
    token's create, which no name guards, makes a second token): each is adopted, or the extra token revoked."""
    workdir.write_config(config_text("lost"))
    databricks.settings.faults = Faults(rate=1.0, after=1.0, kinds=(kind,), methods=frozenset({"POST"}),
                                        route=CREATES, limit=1)

    up = workdir.run("up")
    assert up.code == 0, up.out + up.err

    lost = [line for line in databricks.emulator.faults_injected if "(fault, after)" in line]
    assert len(lost) == 5, lost
    assert up.out.count("made by an earlier attempt whose reply was lost") >= 1
    databricks.settings.faults = None
    assert _objects(databricks) == _one_of_each("lost")
    state = _state(workdir, "lost")
    from databricks.sdk import WorkspaceClient

    ws = WorkspaceClient(host=databricks.workspace_url("lost-main"), client_id=DATABRICKS_CLIENT_ID,
                         client_secret=DATABRICKS_CLIENT_SECRET, auth_type="oauth-m2m")
    [token] = list(ws.tokens.list())
    assert state["resources"]["spoke/main/token"]["id"] == token.token_id
    kept = WorkspaceClient(host=databricks.workspace_url("lost-main"), token=state["secrets"]["spoke/main/token"],
                           auth_type="pat")
    assert kept.current_user.me().user_name == DATABRICKS_CLIENT_ID  # the value kept is the live token's

    again = workdir.run("up")
    assert again.code == 0 and _objects(databricks) == _one_of_each("lost")


def test_a_name_taken_by_another_object_is_a_conflict_named_not_adopted(aws, databricks, tmp_path, clock,
                                                                        monkeypatch):
    """The storage configuration of our name appears between `find` and `create`, on another bucket: not ours."""
    from databricks.sdk.service.provisioning import RootBucketInfo

    ctx = _context(tmp_path, config_text("taken"), clock)
    steps = _spoke_steps(ctx.config)
    real_make = dbsteps.Storage.make
    foreign: list[str] = []

    def someone_else_first(self, ctx, wanted):
        other = f"{wanted['bucket']}-other"
        from tests.conftest import client

        s3 = client("s3")
        s3.create_bucket(Bucket=other, CreateBucketConfiguration={"LocationConstraint": "eu-central-1"})
        s3.put_bucket_policy(Bucket=other, Policy=s3.get_bucket_policy(Bucket=wanted["bucket"])["Policy"]
                             .replace(wanted["bucket"], other))
        foreign.append(databricks.account_client().storage.create(
            storage_configuration_name=self.name,
            root_bucket_info=RootBucketInfo(bucket_name=other)).storage_configuration_id)
        return real_make(self, ctx, wanted)

    monkeypatch.setattr(dbsteps.Storage, "make", someone_else_first)
    result = engine.up(ctx, steps)

    [failure] = result.failures
    assert failure.key == "spoke/main/storage"
    assert "already exists" in failure.message and foreign[0] in failure.message
    assert "is not the one this deployment wants" in failure.message and "-rootbucket-other" in failure.message
    assert ctx.state.resource("spoke/main/storage") is None  # not adopted
    assert [s.storage_configuration_id for s in databricks.account_client().storage.list()] == foreign


def test_our_own_workspace_retry_looks_for_it_by_name_before_creating_again(aws, databricks, workdir, clock,
                                                                            monkeypatch):
    """A create that took effect but answered an error we retry (here, credential validation) is found by name
    on the next attempt: no second POST."""
    from databricks.sdk.errors import BadRequest
    from databricks.sdk.service.provisioning import WorkspacesAPI

    workdir.write_config(config_text("again"))
    real_create = WorkspacesAPI.create
    calls: list[str] = []

    def made_but_refused(self, **kwargs):
        calls.append(kwargs["workspace_name"])
        waiter = real_create(self, **kwargs)
        if len(calls) == 1:
            raise BadRequest("Failed credentials validation checks: Describe Vpcs", error_code="MALFORMED_REQUEST")
        return waiter

    monkeypatch.setattr(WorkspacesAPI, "create", made_but_refused)
    up = workdir.run("up")

    assert up.code == 0, up.out + up.err
    assert calls == ["again-main"]
    assert _objects(databricks)["workspaces"] == ["again-main"]
    [ws] = list(databricks.account_client().workspaces.list())
    assert _state(workdir, "again")["resources"]["spoke/main/workspace"]["id"] == str(ws.workspace_id)


# -- faults that outlast the SDK's retries ----------------------------------------------------------------------


def test_a_fault_that_persists_past_the_sdk_retries_fails_the_step_saying_a_rerun_resumes(aws, databricks, workdir,
                                                                                          clock):
    workdir.write_config(config_text("stuck"))
    databricks.settings.faults = Faults(rate=1.0, after=0.0, kinds=("503", "reset"), methods=frozenset({"POST"}),
                                        route=r"/networks$")
    started = time.monotonic()

    up = workdir.run("up")

    assert up.code == 1, up.out + up.err
    message = " ".join(up.err.split())
    assert "create Databricks network configuration stuck-main-network failed" in message
    assert "for as long as the SDK retries" in message and "The fault is transient" in message
    assert "run the same `provision` command again; it resumes where this run stopped" in message
    assert time.monotonic() - started < 60  # 5 minutes of the SDK's retries, on the fake clock
    state = _state(workdir, "stuck")
    assert "spoke/main/credentials" in state["resources"] and "spoke/main/network" not in state["resources"]

    databricks.settings.faults = None
    rerun = workdir.run("up")
    assert rerun.code == 0, rerun.out + rerun.err
    assert _objects(databricks) == _one_of_each("stuck")


def test_a_server_error_the_sdk_does_not_retry_is_called_transient_too():
    from databricks.sdk.errors import BadRequest, InternalError

    with pytest.raises(CloudError, match=r"read X failed: upstream hiccup\. The fault is transient"), \
            explain_transient("read X"):
        raise InternalError("upstream hiccup")
    with pytest.raises(BadRequest), explain_transient("read X"):  # a mistake, not a fault: left for translation
        raise BadRequest("no")
    gave_up = TimeoutError("Timed out after 0:05:00")
    gave_up.__cause__ = InternalError("still failing")
    assert transient_cause(gave_up) is gave_up.__cause__


# -- a workspace whose API does not answer yet; a workspace that refuses the token ---------------------------


@pytest.mark.parametrize("status", [403, 401])
def test_the_token_waits_until_the_new_workspace_api_answers(aws, databricks, workdir, clock, status):
    databricks.settings.workspace_api_warmup_requests = 4
    databricks.settings.workspace_api_warmup_status = status
    workdir.write_config(config_text("warm"))

    up = workdir.run("up")

    assert up.code == 0, up.out + up.err
    assert "the workspace API does not answer yet" in up.out
    me = [r for r in databricks.requests if "/scim/v2/Me" in r]
    assert [r.rsplit(" ", 1)[1] for r in me] == [str(status)] * 4 + ["200"]
    created = [i for i, r in enumerate(databricks.requests) if "/token/create" in r]
    assert len(created) == 1 and created[0] > databricks.requests.index(me[-1])
    assert _objects(databricks)["tokens"] == ["provision warm-main-token"]


def test_the_new_workspace_sign_in_failing_at_first_is_waited_out(aws, databricks, workdir, clock):
    databricks.settings.faults = Faults(rate=1.0, after=0.0, kinds=("503",),
                                        endpoints=frozenset({"workspace-sign-in"}), limit=2)
    workdir.write_config(config_text("signin"))

    up = workdir.run("up")

    assert up.code == 0, up.out + up.err
    assert len(databricks.emulator.faults_injected) == 6  # host metadata, discovery, token endpoint: twice each
    assert _objects(databricks) == _one_of_each("signin")


@pytest.mark.parametrize("refusal, said", [("tokens-disabled", "Personal access tokens are disabled"),
                                           ("no-token-permission", "does not have permission to create")])
def test_a_refused_token_names_what_to_grant_and_keeps_the_workspace(aws, databricks, workdir, clock, refusal,
                                                                     said):
    databricks.settings.token_refusal = refusal
    workdir.write_config(config_text("refused"))

    up = workdir.run("up")

    assert up.code == 1, up.out + up.err
    message = " ".join(up.err.split())
    assert said in message and "refused to make the token" in message
    assert "Settings > Advanced > Personal Access Tokens" in message and "Can Use" in message
    assert f"({DATABRICKS_CLIENT_ID}) added to the workspace" in message and "The workspace is kept" in message
    assert len([r for r in databricks.requests if "/token/create" in r]) == 1  # refused once, not retried
    state = _state(workdir, "refused")
    assert "spoke/main/workspace" in state["resources"] and "spoke/main/token" not in state["resources"]
    assert _objects(databricks)["workspaces"] == ["refused-main"]

    databricks.settings.token_refusal = None  # granted: the rerun makes the token
    assert workdir.run("up").code == 0
    assert _objects(databricks) == _one_of_each("refused")


def test_a_principal_never_let_into_the_workspace_fails_at_the_deadline_naming_the_grant(aws, databricks, tmp_path,
                                                                                         clock):
    databricks.settings.token_refusal = "not-a-member"
    ctx = _context(tmp_path, config_text("outsider"), clock, poll_scale=1.0)
    started, begun = time.monotonic(), clock.now()

    result = engine.up(ctx, _spoke_steps(ctx.config))

    [failure] = result.failures
    assert failure.key == "spoke/main/token"
    assert "refused to make the token (still, after 10 min)" in failure.message
    assert "not a member of this workspace" in failure.message and "Permissions" in failure.message
    assert dbsteps.WORKSPACE_API_TIMEOUT <= clock.now() - begun < dbsteps.WORKSPACE_API_TIMEOUT + 60
    assert time.monotonic() - started < 30
    assert ctx.state.resource("spoke/main/workspace") is not None
    assert not [r for r in databricks.requests if "/token/create" in r]


def test_a_sign_in_the_workspace_refuses_is_not_waited_out(aws, databricks, workdir, clock, monkeypatch):
    """`invalid_client` from the workspace's token endpoint is a refusal (RFC 6749 error code), not a host that
    is not ready: the step fails at once naming the grant."""
    from provisioner.sandbox import databricks_api

    def refuse(self: Any, request: Any, deployment: str) -> Any:
        return databricks_api._OAuthError(401, "invalid_client", "Client authentication failed").response()

    monkeypatch.setattr(databricks_api.DatabricksEmulator, "_route_ws_token", refuse)
    workdir.write_config(config_text("nosign"))
    begun = clock.now()

    up = workdir.run("up")

    assert up.code == 1, up.out + up.err
    message = " ".join(up.err.split())
    assert "create Databricks token nosign-main-token failed" in message and "invalid_client" in message
    assert "refused to make the token" in message and "Can Use" in message
    assert len([r for r in databricks.requests if "/oidc/v1/token" in r]) == 1
    assert clock.now() - begun < 60


def test_a_workspace_host_that_never_answers_fails_at_the_deadline_keeping_the_workspace(aws, databricks, tmp_path,
                                                                                         clock, monkeypatch):
    import requests

    from provisioner.databricks import client as dbx

    def unresolvable(account: Any, host: str) -> Any:
        raise requests.ConnectionError(f"Failed to resolve '{host}' (Name or service not known)")

    monkeypatch.setattr(dbx, "workspace_client", unresolvable)
    ctx = _context(tmp_path, config_text("nodns"), clock, poll_scale=1.0)
    begun = clock.now()

    result = engine.up(ctx, _spoke_steps(ctx.config))

    [failure] = result.failures
    assert failure.key == "spoke/main/token"
    assert "timed out after 10 min waiting for the API of workspace nodns-main to answer" in failure.message
    assert "Name or service not known" in failure.message and "The workspace is kept" in failure.message
    assert dbsteps.WORKSPACE_API_TIMEOUT <= clock.now() - begun < dbsteps.WORKSPACE_API_TIMEOUT + 60
    assert ctx.state.resource("spoke/main/workspace") is not None


@pytest.mark.slow
def test_privatelink_creates_losing_their_reply_leave_one_object_each(aws, databricks, workdir, clock):
    """The VPC endpoint registrations, the private access settings and the network naming the endpoints: each
    create takes effect, its reply is lost, the SDK sends it again and hears the name is taken; each is adopted."""
    workdir.write_config(config_text("lostpl", extra="private_link = true"))
    databricks.settings.faults = Faults(rate=1.0, after=1.0, kinds=("503",), methods=frozenset({"POST"}),
                                        route=r"/(vpc-endpoints|private-access-settings|networks)$", limit=1)
    up = workdir.run("up")
    assert up.code == 0, up.out + up.err
    lost = [line for line in databricks.emulator.faults_injected if "(fault, after)" in line]
    assert len(lost) == 3, lost
    databricks.settings.faults = None
    account = databricks.account_client()
    assert sorted(e.vpc_endpoint_name for e in account.vpc_endpoints.list()) == [
        "lostpl-main-relay-vpce", "lostpl-main-workspace-vpce"]
    [pas] = list(account.private_access.list())
    [network] = list(account.networks.list())
    [ws] = list(account.workspaces.list())
    assert ws.private_access_settings_id == pas.private_access_settings_id and ws.network_id == network.network_id
    state = _state(workdir, "lostpl")
    assert state["resources"]["spoke/main/private-access-settings"]["id"] == pas.private_access_settings_id
