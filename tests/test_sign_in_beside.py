"""`up` signs in to Databricks in a thread of its own, beside its plan and preflight, and waits for it before its
first step: refused credentials still end `up` with their own line and exit 2 before any write to either cloud."""

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


def test_up_signs_in_before_any_write_to_either_cloud(aws, databricks, workdir, monkeypatch):
    events = _events(databricks, monkeypatch)
    workdir.write_config(config_text("signfirst"))
    result = workdir.run("up")
    assert result.code == 0, result.out + result.err
    signed_in = next(i for i, e in enumerate(events) if e.startswith("dbx ") and "/v1/token" in e)
    first_write = next(i for i, e in enumerate(events) if e.startswith("aws ") and clients.is_mutating(e[4:])
                       and e != "aws GetCallerIdentity")
    assert signed_in < first_write


def test_a_wrong_secret_stops_up_before_any_write(aws, databricks, workdir, monkeypatch, calls):
    monkeypatch.setenv("DATABRICKS_CLIENT_SECRET", "wrong-secret-value-123")
    workdir.write_config(config_text("signbad"))
    result = workdir.run("up")
    assert result.code == 2, result.out + result.err
    assert "cannot authenticate" in result.err.strip().splitlines()[-1]
    assert "wrong-secret-value-123" not in result.out + result.err
    assert calls.mutating == []
    writes = [r for r in databricks.requests if r.split(" ", 1)[0] in ("POST", "PATCH", "PUT", "DELETE")
              and "/token" not in r]  # the sign-in's own POST to the token endpoint aside
    assert writes == []

    monkeypatch.setenv("DATABRICKS_CLIENT_SECRET", DATABRICKS_CLIENT_SECRET)
    again = workdir.run("up")
    assert again.code == 0, again.out + again.err
