"""Signing in to Databricks: a fault that passes (429, 5xx, a refused connection) is retried and, if it persists,
ends the command with exit 1 and a rerun; only what the user must fix is exit 2. One sign-in per command.

Against the emulated account API over HTTP, with faults injected into its routes; retries wait on the fake
clock, so no test waits for real except where the SDK's own best-effort read of the host's metadata does (kept
short with CHECK_RETRY_SECONDS)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from werkzeug.wrappers import Response

from provisioner import cli
from provisioner.databricks import client as dbx
from provisioner.sandbox.databricks_api import DatabricksEmulator
from provisioner.steps.base import Resource, Step
from tests.conftest import ACCOUNT_ID, config_text


class AccountProbe(Step):
    """A step that reads the account through the command's client (so the sign-in is used after the check)."""

    kind = "account probe (test)"

    def __init__(self) -> None:
        super().__init__("test/account-probe", "account probe")

    def find(self, ctx: Any) -> Resource | None:
        ctx.databricks.credentials.list()
        return None


@pytest.fixture(autouse=True)
def probe_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """`status` runs only the probe: the sign-in is what these tests look at, not the deployment's steps."""
    monkeypatch.setattr(cli, "all_steps", lambda config: [AccountProbe()])
    monkeypatch.setattr(cli, "all_checks", lambda config: [])


@pytest.fixture
def clock(databricks: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    return databricks.share_clock(monkeypatch)


def fail(monkeypatch: pytest.MonkeyPatch, route: str, status: int, times: int | None = None) -> list[int]:
    """The emulator's `route` answers `status` the first `times` times (every time when None)."""
    real = getattr(DatabricksEmulator, f"_route_{route}")
    seen: list[int] = []

    def faulty(self: Any, request: Any, **kwargs: Any) -> Response:
        seen.append(status)
        if times is None or len(seen) <= times:
            body = {"error_code": "TEMPORARILY_UNAVAILABLE", "error": "temporarily_unavailable",
                    "message": "try again later"}
            return Response(json.dumps(body), status, mimetype="application/json")
        return real(self, request, **kwargs)

    monkeypatch.setattr(DatabricksEmulator, f"_route_{route}", faulty)
    return seen


def requests_to(databricks: Any, method: str, path_part: str) -> list[str]:
    return [line for line in databricks.requests if line.startswith(f"{method} ") and path_part in line]


def refused(workdir: Any, calls: Any, code: int) -> str:
    """Run `status`; it must stop with `code`, one line, before any AWS call and without a state file."""
    workdir.write_config(config_text("signin"))
    result = workdir.run("status")
    assert result.code == code, result.out + result.err
    assert len(result.err.strip().splitlines()) == 1, result.err
    assert calls.calls == []
    assert not (workdir.path / "state" / "signin.json").exists()
    return result.err


def not_where_documented(monkeypatch: pytest.MonkeyPatch, route: str) -> None:
    """The token endpoint answers 404 once, as where an account's is elsewhere: the discovery document is read."""
    if route == "account_discovery":
        fail(monkeypatch, "account_token", 404, times=1)


@pytest.mark.parametrize(("route", "status"), [("account_token", 429), ("account_token", 503),
                                               ("account_discovery", 429), ("account_discovery", 500)])
def test_a_passing_sign_in_fault_is_retried_and_the_command_signs_in_once(aws, databricks, workdir, clock,
                                                                         monkeypatch, route, status):
    seen = fail(monkeypatch, route, status, times=2)
    not_where_documented(monkeypatch, route)
    workdir.write_config(config_text("signin"))
    result = workdir.run("status")
    assert result.code == 3, result.out + result.err  # signed in; the probe reads the account and finds nothing
    assert len(seen) == 3
    assert clock.slept, "the retries wait on the injected clock"
    # One sign-in for the whole command: the check and the probe share its token.
    assert len([r for r in requests_to(databricks, "POST", "/v1/token") if r.endswith("200")]) == 1
    # The check lists the workspaces, which the steps then share; the probe looks for credentials by name.
    assert len(requests_to(databricks, "GET", "/workspaces")) == 1
    assert len(requests_to(databricks, "GET", "/credentials")) == 1


@pytest.mark.parametrize(("route", "status"), [("account_token", 429), ("account_token", 503),
                                               ("account_discovery", 503), ("account_discovery", 502),
                                               ("collection", 429), ("collection", 503)])
def test_a_sign_in_fault_that_persists_is_exit_1_and_says_rerun(aws, databricks, workdir, calls, clock,
                                                               monkeypatch, route, status):
    fail(monkeypatch, route, status)
    not_where_documented(monkeypatch, route)
    err = refused(workdir, calls, 1)
    assert "rerun" in err and "transient" in err
    assert "check the credentials" not in err
    assert clock.now() - 1000 >= dbx.CHECK_RETRY_SECONDS - 1  # it kept trying until the deadline


def test_unavailable_host_metadata_is_transient(aws, databricks, workdir, calls, clock, monkeypatch):
    """The host's metadata is read only when neither the token endpoint nor the discovery document is where
    Databricks documents it (to tell a wrong host from an unknown account): then its failing is transient too."""
    monkeypatch.setattr(dbx, "CHECK_RETRY_SECONDS", 1)
    fail(monkeypatch, "account_token", 404)
    fail(monkeypatch, "account_discovery", 404)
    fail(monkeypatch, "account_metadata", 503)
    err = refused(workdir, calls, 1)
    assert "databricks-config answered HTTP 503" in err and "rerun" in err


def test_signing_in_reads_neither_the_host_s_metadata_nor_the_discovery_document(aws, databricks, workdir, clock,
                                                                                 monkeypatch):
    """The token comes from the endpoint Databricks documents for an account: one request signs in."""
    seen = fail(monkeypatch, "account_metadata", 503)
    workdir.write_config(config_text("signin"))
    result = workdir.run("status")
    assert result.code == 3, result.out + result.err  # signed in; the probe reads the account and finds nothing
    assert seen == []
    assert requests_to(databricks, "GET", "oauth-authorization-server") == []
    assert len(requests_to(databricks, "POST", f"/oidc/accounts/{ACCOUNT_ID}/v1/token")) == 1


def test_a_token_endpoint_elsewhere_is_found_through_the_discovery_document(aws, databricks, workdir, clock,
                                                                            monkeypatch):
    fail(monkeypatch, "account_token", 404, times=1)
    workdir.write_config(config_text("signin"))
    result = workdir.run("status")
    assert result.code == 3, result.out + result.err
    assert len(requests_to(databricks, "GET", "oauth-authorization-server")) == 1
    assert len([r for r in requests_to(databricks, "POST", "/v1/token") if r.endswith("200")]) == 1


def test_a_refused_connection_is_transient(aws, databricks, workdir, calls, clock, monkeypatch):
    monkeypatch.setattr(dbx, "CHECK_RETRY_SECONDS", 1)
    monkeypatch.setenv("DATABRICKS_HOST", "http://127.0.0.1:9")  # discard: nothing listens
    err = refused(workdir, calls, 1)
    assert "cannot reach the Databricks account API at http://127.0.0.1:9" in err
    assert "rerun" in err and "DATABRICKS_HOST" in err


def test_a_host_name_that_does_not_exist_is_bad_input(aws, databricks, workdir, calls, clock, monkeypatch):
    monkeypatch.setattr(dbx, "CHECK_RETRY_SECONDS", 1)
    monkeypatch.setenv("DATABRICKS_HOST", "https://accounts.no-such-host.invalid")
    err = refused(workdir, calls, 2)
    assert "does not resolve" in err and "DATABRICKS_HOST" in err


@pytest.mark.parametrize(("setting", "value", "expected"), [
    ("DATABRICKS_CLIENT_SECRET", "wrong-secret-value-123", "invalid_client"),
    ("DATABRICKS_ACCOUNT_ID", "11111111-2222-4333-8444-555555555555", "databricks_account_id"),
])
def test_what_the_user_must_fix_is_exit_2_at_once(aws, databricks, workdir, calls, clock, monkeypatch, setting,
                                                  value, expected):
    monkeypatch.setenv(setting, value)
    err = refused(workdir, calls, 2)
    assert expected in err and "rerun" not in err
    assert clock.slept == []  # not retried
    assert value not in err or setting == "DATABRICKS_ACCOUNT_ID"


def test_the_check_s_client_is_the_command_s_with_the_full_retry_budget(databricks, clock):
    from provisioner.design.config import build_config

    config = build_config({"deployment": "budget", "databricks_account_id": ACCOUNT_ID})
    account = dbx.account_client_factory(config)()
    assert account.config.retry_timeout_seconds == dbx.RUN_RETRY_SECONDS
    assert len(list(account.credentials.list())) == 0
    assert len(requests_to(databricks, "POST", "/v1/token")) == 1


CHECK_WITHOUT_THE_SDK = """
import sys
from provisioner.databricks import client as dbx
from provisioner.design.config import build_config, parse_toml

config = build_config(parse_toml(open("provision.toml").read(), "provision.toml"))
account = dbx.signed_in(dbx.resolve_auth(config))
assert not [m for m in sys.modules if m.startswith("databricks.sdk")], "the check loaded the SDK"
workspaces = getattr(account(), dbx.CHECKED_WORKSPACES)
print(len(workspaces), type(workspaces[0]).__name__ if workspaces else "-")
"""


def test_the_credential_check_loads_no_sdk_and_the_client_comes_signed_in(aws, databricks, workdir):
    """The check (the token, the account's workspaces) is plain HTTP; the SDK's client, built when first asked
    for, reuses its token and its list: no second sign-in, no second list."""
    import os
    import subprocess
    import sys

    workdir.write_config(config_text("nosdk"))
    mark = len(databricks.requests)
    done = subprocess.run([sys.executable, "-c", CHECK_WITHOUT_THE_SDK], cwd=workdir.path, env=dict(os.environ),
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    made = databricks.requests[mark:]
    assert len([r for r in made if "/v1/token" in r]) == 1, made
    assert len([r for r in made if r.split()[1].endswith("/workspaces")]) == 1, made
