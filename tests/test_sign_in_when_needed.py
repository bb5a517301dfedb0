"""`up` signs in to Databricks when a step first needs it, not before its first step: the AWS calls on the
firewall's path (rule groups, policy, firewall) go first, and the sign-in happens while the firewall is being
made (`engine.HOLD_SECONDS`, at a poll scale above 0). A sign-in that fails still ends `up` with its own line and
exit status, before any Databricks write."""

from __future__ import annotations

from typing import Any

import pytest

from provisioner.aws import clients
from tests.conftest import DATABRICKS_CLIENT_SECRET, config_text


def _events(databricks: Any, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """AWS calls and Databricks requests, in the order they were made."""
    events: list[str] = []
    databricks.settings.log = lambda line: events.append(f"dbx {line}")
    monkeypatch.setattr(clients, "SESSION_HOOKS",
                        [("before-call.*.*", lambda model, **kw: events.append(f"aws {model.name}"))])
    return events


def test_up_makes_aws_calls_before_it_signs_in_to_databricks(aws, databricks, workdir, monkeypatch):
    events = _events(databricks, monkeypatch)
    workdir.write_config(config_text("signlate"))
    result = workdir.run("up")
    assert result.code == 0, result.out + result.err
    first_dbx = next(i for i, e in enumerate(events) if e.startswith("dbx "))
    # Every Databricks step stands on an AWS one: the first of them to run has been preceded by its create.
    assert any(e.startswith("aws Create") for e in events[:first_dbx])


def test_a_wrong_secret_stops_up_with_the_sign_in_error_before_any_databricks_write(aws, databricks, workdir,
                                                                                   monkeypatch):
    monkeypatch.setenv("DATABRICKS_CLIENT_SECRET", "wrong-secret-value-123")
    workdir.write_config(config_text("signbad"))
    result = workdir.run("up")
    assert result.code == 2, result.out + result.err
    assert "cannot authenticate" in result.err.strip().splitlines()[-1]
    assert "wrong-secret-value-123" not in result.out + result.err
    writes = [r for r in databricks.requests if r.split(" ", 1)[0] in ("POST", "PATCH", "PUT", "DELETE")
              and "/token" not in r]  # the sign-in's own POST to the token endpoint aside
    assert writes == []

    monkeypatch.setenv("DATABRICKS_CLIENT_SECRET", DATABRICKS_CLIENT_SECRET)
    again = workdir.run("up")  # what the first run made is adopted, the rest made
    assert again.code == 0, again.out + again.err
