"""Log groups outlive `down` (they are the record of what left), unless told `--delete-logs`."""

from __future__ import annotations

import tomllib
from pathlib import Path

from provisioner import engine
from provisioner.aws.clients import Aws
from provisioner.context import Context
from provisioner.design.config import build_config
from provisioner.state import load
from provisioner.steps.logs import LogGroup
from tests.conftest import client, config_text


def _context(tmp_path: Path, deployment: str) -> Context:
    config = build_config(tomllib.loads(config_text(deployment)))
    return Context(config=config, state=load(tmp_path / "state", config.deployment),
                   aws_factory=lambda: Aws(config.region), poll_scale=0)


def _groups() -> dict[str, int | None]:
    return {g["logGroupName"]: g.get("retentionInDays") for g in client("logs").describe_log_groups()["logGroups"]}


def test_down_keeps_a_log_group_and_says_where_then_delete_logs_deletes_it(aws, tmp_path):
    ctx = _context(tmp_path, "keeplogs")
    step = LogGroup("hub/test/log-group", "/provision/keeplogs/test", ctx.config.firewall_log_retention_days)
    assert engine.up(ctx, [step]).failures == []
    assert _groups() == {"/provision/keeplogs/test": 365}

    kept = engine.down(ctx, [step])
    [outcome] = kept.of("kept")
    assert "/provision/keeplogs/test" in outcome.message and "eu-central-1" in outcome.message
    assert "365 days" in outcome.message and "--delete-logs" in outcome.message
    assert _groups() == {"/provision/keeplogs/test": 365}
    assert ctx.state.resource_id(step.key)  # still recorded: a later `up` adopts it, `down --delete-logs` ends it

    assert engine.up(ctx, [step]).failures == []  # adopted, not a duplicate
    ctx.delete_logs = True
    assert [o.result for o in engine.down(ctx, [step]).outcomes] == ["deleted"]
    assert _groups() == {}
