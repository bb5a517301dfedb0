"""Tokens, client secrets and passwords never appear in what provision prints or logs: progress lines, errors,
`--debug` tracebacks, `status --json`, `output --json`, the Databricks SDK's own logs, the emulator's request log.
The PAT may be in the state file only (mode 0600)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from provisioner.databricks import client as dbx
from provisioner.databricks.secrets import remember_secret, scrub
from provisioner.design.config import build_config
from provisioner.errors import UsageError
from provisioner.sandbox import databricks_api
from tests.conftest import (
    ACCOUNT_ID,
    DATABRICKS_CLIENT_ID,
    DATABRICKS_CLIENT_SECRET,
    DATABRICKS_PASSWORD,
    DATABRICKS_USERNAME,
    config_text,
)
from tests.test_databricks import databricks_branch, families  # noqa: F401  (autouse: the spokes' branch only)

CONFIG = build_config({"deployment": "sec", "databricks_account_id": ACCOUNT_ID})


@pytest.fixture
def root_log() -> Iterator[io.StringIO]:
    """A root logger at DEBUG writing everything to a buffer, as an embedding program might configure it."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield buffer
    root.removeHandler(handler)
    root.setLevel(level)


def _pat(workdir: Any, deployment: str) -> str:
    doc = json.loads((workdir.path / "state" / f"{deployment}.json").read_text())
    return str(doc["secrets"]["spoke/main/token"])


# -- the whole run ------------------------------------------------------------------------------------------


def test_no_secret_in_any_output_log_or_request_line_of_a_whole_run(aws, databricks, workdir, root_log):
    workdir.write_config(config_text("leak"))
    printed: list[str] = []
    up = workdir.run("up", "--debug")
    assert up.code == 0, up.out + up.err
    token = _pat(workdir, "leak")
    assert token.startswith("dapi")
    printed += [up.out, up.err]
    for args in (("status", "--json"), ("status",), ("output", "--json"), ("output",), ("plan", "--json")):
        result = workdir.run(*args)
        printed += [result.out, result.err]
    down = workdir.run("down", "--yes", "--debug")
    assert down.code == 0, down.out + down.err
    printed += [down.out, down.err]

    access_tokens = list(databricks.emulator._access_tokens)
    assert access_tokens  # the SDK did authenticate
    everything = "\n".join([*printed, root_log.getvalue(), *databricks.requests])
    for secret in (token, DATABRICKS_CLIENT_SECRET, *access_tokens):
        assert secret not in everything
    printed_or_served = "\n".join([*printed, *databricks.requests])
    assert "Bearer" not in printed_or_served and "Authorization" not in printed_or_served
    # The SDK logs request and response bodies at DEBUG: none of it reaches a handler of the embedding program.
    assert "databricks.sdk" not in root_log.getvalue()
    assert (workdir.path / "state" / "leak.lock").read_text() == ""  # the lock file holds a pid, then nothing


def test_a_token_refused_mid_run_is_a_cloud_error_without_the_secret(aws, databricks, workdir, monkeypatch):
    """The SDK raises ValueError when a token fetch fails mid-run: it is translated (and scrubbed) like any
    other Databricks failure, not printed raw."""

    def refuse(self: Any, request: Any, deployment: str) -> Any:
        return databricks_api._OAuthError(401, "invalid_client", "Client authentication failed").response()

    monkeypatch.setattr(databricks_api.DatabricksEmulator, "_route_ws_token", refuse)
    workdir.write_config(config_text("refused"))
    up = workdir.run("up")
    assert up.code == 1
    line = next(x for x in up.err.splitlines() if "spoke/main/token" in x)
    assert "create Databricks token refused-main-token failed" in line and "invalid_client" in line
    assert "ValueError" not in up.err
    assert DATABRICKS_CLIENT_SECRET not in up.out + up.err


# -- errors and tracebacks ----------------------------------------------------------------------------------


def test_a_debug_traceback_is_scrubbed_causes_included(aws, databricks, workdir, monkeypatch):
    echoed = f"Authorization: Bearer eyJ0eXAiOiJKV1Qi.x-y_z secret={DATABRICKS_CLIENT_SECRET}"

    def echoing(auth: Any, clock: Any = None) -> None:
        try:
            raise ValueError(f"the service said: {echoed}")
        except ValueError as e:
            raise UsageError(f"cannot authenticate: {scrub(str(e))}") from e

    monkeypatch.setattr(dbx, "signed_in", echoing)
    workdir.write_config(config_text("tb"))
    result = workdir.run("status", "--debug")
    assert result.code == 2
    assert "Traceback" in result.err and "ValueError: the service said" in result.err
    assert DATABRICKS_CLIENT_SECRET not in result.err and "eyJ0eXAiOiJKV1Qi" not in result.err


def test_an_unreachable_host_is_one_line_without_the_sdk_s_warning(aws, databricks, workdir, calls, monkeypatch):
    monkeypatch.setattr(dbx, "CHECK_RETRY_SECONDS", 1)
    monkeypatch.setenv("DATABRICKS_HOST", "http://127.0.0.1:9")  # discard: nothing listens
    workdir.write_config(config_text("nohost"))
    result = workdir.run("status")
    # Nothing answering may be a passing outage as well as a wrong host: a cloud failure (exit 1) whose one line
    # says to rerun, and to fix DATABRICKS_HOST if it is wrong.
    assert result.code == 1
    assert result.err.strip().count("\n") == 0, result.err  # the SDK's host-metadata warning stays quiet
    assert "cannot reach the Databricks account API at http://127.0.0.1:9" in result.err
    assert "DATABRICKS_HOST" in result.err and calls.calls == []


# -- the building blocks ------------------------------------------------------------------------------------


def test_scrub_masks_known_secrets_echoed_credentials_and_pats(monkeypatch):
    fake_pat = "dapi" + "0123456789abcdef" * 2  # built here, so no PAT-shaped literal sits in the source
    monkeypatch.setenv("DATABRICKS_PASSWORD", "pw-in-the-environment")
    remember_secret("a-token-we-handled")
    text = scrub("pw-in-the-environment a-token-we-handled Authorization: Basic dXNlcjpwYXNzd29yZA== "
                 '{"authorization": "Bearer abc.def-123"} Bearer eyJhbGciOiJSUzI1NiJ9.e30.sig '
                 f"{fake_pat}-2")
    for secret in ("pw-in-the-environment", "a-token-we-handled", "dXNlcjpwYXNzd29yZA", "abc.def-123",
                   "eyJhbGciOiJSUzI1NiJ9", fake_pat[:20]):
        assert secret not in text
    # Ordinary words stay.
    assert scrub("Basic authentication failed; Bearer token missing") == \
        "Basic authentication failed; Bearer token missing"


@pytest.mark.parametrize("env", [
    {"DATABRICKS_CLIENT_ID": DATABRICKS_CLIENT_ID, "DATABRICKS_CLIENT_SECRET": DATABRICKS_CLIENT_SECRET},
    {"DATABRICKS_USERNAME": DATABRICKS_USERNAME, "DATABRICKS_PASSWORD": DATABRICKS_PASSWORD},
], ids=["oauth-m2m", "basic"])
def test_the_resolved_auth_has_no_secret_in_its_repr(env):
    auth = dbx.resolve_auth(CONFIG, env)
    for text in (repr(auth), str(auth), f"{auth!r}"):
        assert DATABRICKS_CLIENT_SECRET not in text and DATABRICKS_PASSWORD not in text
        assert auth.method in text
    assert set(env.values()) & set(auth.sdk_kwargs().values())  # the SDK still gets them


def test_a_profile_s_secrets_are_scrubbed_though_the_sdk_reads_them(tmp_path, monkeypatch):
    for var in ("DATABRICKS_CLIENT_SECRET", "DATABRICKS_PASSWORD", "DATABRICKS_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    secret = "profile-secret-0f9e8d7c"
    cfg = tmp_path / "databrickscfg"
    cfg.write_text(f"[acct]\nhost = https://accounts.cloud.databricks.com\nclient_id = x\nclient_secret = {secret}\n")
    auth = dbx.resolve_auth(CONFIG, {"DATABRICKS_CONFIG_FILE": str(cfg), "DATABRICKS_CONFIG_PROFILE": "acct"})
    assert auth.method == "profile" and secret not in repr(auth)
    assert scrub(f"the service echoed {secret}") == "the service echoed ***"
