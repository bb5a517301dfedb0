"""Every crash point: the process dies right after each mutating AWS call of `up` (and of `down`), and the rerun
finishes the work with exactly one of each resource.

The runs are chained: each run dies right after the first change it makes, so the next run starts from the
state the previous call left (the resource made, its ID never recorded). Over the chain every mutating call of a
fresh `up` is the last thing a dead run did, once; likewise for `down`. The deployment is the AWS side (network,
firewall, DNS Firewall, flow logs, role, bucket) with one spoke and one hub AZ; the Databricks side has its own
tests against the emulated account API.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest

from provisioner import engine, steps
from provisioner.aws import clients
from provisioner.steps import (
    dns_firewall,
    firewall,
    flow_logs,
    hub_network,
    spoke_network,
    transit_gateway,
)
from tests.conftest import config_text, live_tagged
from tests.test_faults import components, resolver_objects

MAX_RUNS = 200


class DieAfterFirstChange:
    """botocore hooks: the first mutating call of the run takes effect, then the process "dies": that call's
    caller never hears back, and no other change is sent by any thread (a dead process sends nothing)."""

    def __init__(self) -> None:
        self.died_after: list[str] = []
        self.armed = True
        # Changes go one at a time, so that "the first" is one call even with eight steps running at once.
        self.one_at_a_time = threading.Lock()

    @staticmethod
    def _changes(model: Any) -> bool:
        return clients.is_mutating(model.name) and model.name != "GetCallerIdentity"

    def before(self, model: Any, **kwargs: Any) -> None:
        if self._changes(model):
            self.one_at_a_time.acquire()
            if not self.armed:
                self.one_at_a_time.release()
                raise KeyboardInterrupt

    def after(self, model: Any, **kwargs: Any) -> None:
        if self._changes(model):
            first = self.armed
            self.armed = False
            if first:
                self.died_after.append(model.name)
            self.one_at_a_time.release()
            raise KeyboardInterrupt

    def failed(self, model: Any, **kwargs: Any) -> None:
        if self._changes(model):  # the call never got an answer (a connection error): it dies all the same
            self.armed = False
            self.one_at_a_time.release()


def _chain(workdir: Any, monkeypatch: pytest.MonkeyPatch, *command: str) -> list[str]:
    """Run `command` until a run makes no change; every other run dies right after its first change."""
    hook = DieAfterFirstChange()
    monkeypatch.setattr(clients, "SESSION_HOOKS", [("before-call.*.*", hook.before), ("after-call.*.*", hook.after),
                                                   ("after-call-error.*.*", hook.failed)])
    for _ in range(MAX_RUNS):
        hook.armed = True
        result = workdir.run(*command)
        if hook.armed:  # a run that changed nothing: the work is done
            assert result.code == 0, result.out + result.err
            monkeypatch.setattr(clients, "SESSION_HOOKS", [])
            return hook.died_after
        assert result.code == 130, result.out + result.err
    raise AssertionError(f"{' '.join(command)} still changing things after {MAX_RUNS} runs")


@pytest.mark.slow
def test_a_crash_after_any_change_of_up_or_down_leaves_no_twin(aws, workdir, monkeypatch):
    # A dead process waits for nothing: no grace for the calls under way in other steps' threads.
    monkeypatch.setattr(engine, "INTERRUPT_GRACE_SECONDS", 0.05)
    # The creates the engine cannot make idempotent are all here; the role and the bucket (named, adopted by
    # name after a crash) have crash tests of their own in test_foundation.py.
    monkeypatch.setattr(steps, "FAMILIES", (hub_network, transit_gateway, spoke_network, firewall, dns_firewall,
                                            flow_logs))
    deployment = "crashes"
    workdir.write_config(config_text(deployment, hub_azs=1, extra="[firewall]\nlegacy_hive_metastore = false\n"))

    died = _chain(workdir, monkeypatch, "up", "--skip-preflight")  # preflight changes nothing; it would only add reads
    assert len(died) > 50  # every change of a fresh `up` was, once, the last thing a run did
    assert {c: n for c, n in components(deployment, aws).items() if n > 1} == {}
    assert resolver_objects(aws) == Counter({"domain lists": 2, "rule groups": 1, "associations": 1,
                                             "query log configs": 1})
    assert workdir.run("status").code == 0

    died = _chain(workdir, monkeypatch, "down", "--yes", "--delete-logs")
    assert len(died) > 40
    assert live_tagged(deployment) == []
    assert sum(resolver_objects(aws).values()) == 0
