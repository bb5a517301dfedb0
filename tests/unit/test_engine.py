"""The step graph: order, parallelism, failure isolation, reverse order for down, and plan actions."""

from __future__ import annotations

import time

import pytest

from provisioner.aws.errors import CloudError
from provisioner.context import Context
from provisioner.design.config import build_config
from provisioner.engine import PlanError, check_graph, down, plan, status, up
from provisioner.state import load
from provisioner.steps.base import Kept, Resource, Step


class FakeStep(Step):
    """A resource in a dict 'cloud'; records the order of calls."""

    kind = "fake"
    replace_on = ("cidr",)

    def __init__(self, key, needs=(), cloud=None, log=None, fail=None, cidr="10.0.0.0/16", delay=0.0):
        super().__init__(key, f"name-{key}", tuple(needs))
        self.cloud, self.log, self.fail, self.cidr, self.delay = cloud, log, fail, cidr, delay

    def details(self):
        return {"cidr": self.cidr}

    def find(self, ctx):
        return Resource(self.cloud[self.key]) if self.key in self.cloud else None

    def create(self, ctx):
        if self.fail == "create":
            raise CloudError(f"create {self.key} failed: LimitExceeded")
        time.sleep(self.delay)
        self.log.append(("create", self.key))
        self.cloud[self.key] = f"id-{self.key}"
        return Resource(self.cloud[self.key])

    def delete(self, ctx, res):
        if self.fail == "keep":
            raise Kept("holds data")
        self.log.append(("delete", self.key))
        del self.cloud[self.key]


@pytest.fixture
def ctx(tmp_path):
    config = build_config({"deployment": "eng", "databricks_account_id": "0d4f7b3a-1c2e-4b5a-9f8e-7d6c5b4a3f2e"})
    return Context(config=config, state=load(tmp_path, "eng"))


def graph(cloud, log, **fail):
    return [
        FakeStep("vpc", cloud=cloud, log=log, fail=fail.get("vpc")),
        FakeStep("subnet-a", ["vpc"], cloud=cloud, log=log, fail=fail.get("subnet-a")),
        FakeStep("subnet-b", ["vpc"], cloud=cloud, log=log, fail=fail.get("subnet-b")),
        FakeStep("nat", ["subnet-a"], cloud=cloud, log=log, fail=fail.get("nat")),
        FakeStep("bucket", cloud=cloud, log=log, fail=fail.get("bucket")),
    ]


def test_up_runs_needs_first_and_records_ids(ctx):
    cloud, log = {}, []
    result = up(ctx, graph(cloud, log))
    order = [k for _, k in log]
    assert order.index("vpc") < order.index("subnet-a") < order.index("nat")
    assert {o.result for o in result.outcomes} == {"created"}
    assert ctx.state.resource_id("nat") == "id-nat"


def test_second_up_changes_nothing_and_plan_says_nothing(ctx):
    cloud, log = {}, []
    up(ctx, graph(cloud, log))
    log.clear()
    result = up(ctx, graph(cloud, log))
    assert log == [] and {o.result for o in result.outcomes} == {"unchanged"}
    assert {i.action for i in plan(graph(cloud, log), ctx.state)} == {"nothing"}


def test_failure_stops_only_dependants(ctx):
    cloud, log = {}, []
    result = up(ctx, graph(cloud, log, **{"subnet-a": "create"}))
    outcome = {o.key: o.result for o in result.outcomes}
    assert outcome == {"vpc": "created", "subnet-a": "failed", "subnet-b": "created", "nat": "skipped",
                       "bucket": "created"}
    assert "LimitExceeded" in result.failures[0].message


def test_down_runs_in_reverse_and_kept_keeps_what_it_stands_on(ctx):
    cloud, log = {}, []
    up(ctx, graph(cloud, log))
    log.clear()
    steps = graph(cloud, log, **{"subnet-a": "keep"})
    result = down(ctx, steps)
    outcome = {o.key: o.result for o in result.outcomes}
    assert outcome["nat"] == "deleted" and outcome["subnet-a"] == "kept" and outcome["vpc"] == "skipped"
    assert ("delete", "nat") in log and ("delete", "vpc") not in log
    assert ctx.state.resource_id("vpc") == "id-vpc" and ctx.state.resource_id("nat") is None


def test_independent_steps_run_in_parallel(ctx):
    cloud, log = {}, []
    steps = [FakeStep(f"s{i}", cloud=cloud, log=log, delay=0.3) for i in range(4)]
    started = time.monotonic()
    up(ctx, steps, workers=4)
    assert time.monotonic() - started < 0.9  # four 0.3 s creates overlap


def test_plan_offline_actions(ctx):
    cloud, log = {}, []
    steps = graph(cloud, log)
    assert {i.action for i in plan(steps, ctx.state)} == {"create"}
    up(ctx, steps)
    changed = graph(cloud, log)
    changed[0].cidr = "10.9.0.0/16"
    items = {i.key: i for i in plan(changed, ctx.state)}
    assert items["vpc"].action == "recreate" and "cidr" in items["vpc"].reason
    with pytest.raises(PlanError, match="cidr changed"):
        up(ctx, changed)


def test_status_reads_present_and_missing(ctx):
    cloud, log = {}, []
    up(ctx, graph(cloud, log))
    del cloud["bucket"]
    items = {i.key: i.status for i in status(ctx, graph(cloud, log))}
    assert items["bucket"] == "missing" and items["vpc"] == "present"


def test_graph_errors():
    with pytest.raises(ValueError, match="unknown step"):
        check_graph([FakeStep("a", ["b"])])
    with pytest.raises(ValueError, match="duplicate"):
        check_graph([FakeStep("a"), FakeStep("a")])


def test_cycle_is_reported(ctx):
    cloud, log = {}, []
    steps = [FakeStep("a", ["b"], cloud=cloud, log=log), FakeStep("b", ["a"], cloud=cloud, log=log)]
    with pytest.raises(ValueError, match="cycle"):
        up(ctx, steps)


def test_a_bug_in_one_step_is_a_failure_not_a_crash(ctx):
    cloud, log = {}, []

    class Broken(FakeStep):
        def create(self, ctx):
            raise KeyError("oops")

    result = up(ctx, [Broken("x", cloud=cloud, log=log), FakeStep("y", cloud=cloud, log=log)])
    outcome = {o.key: o for o in result.outcomes}
    assert outcome["x"].result == "failed" and "KeyError" in outcome["x"].message
    assert outcome["y"].result == "created"


def test_drift_aws_cannot_fix_fails_up_instead_of_reporting_updated(ctx):
    from provisioner.steps.base import cannot_fix

    cloud, log = {"vpc": "id-vpc"}, []

    class WrongCidr(FakeStep):
        def ensure(self, ctx, res, apply):
            changes = []
            cannot_fix(changes, apply, self.name, "CIDR is 10.9.0.0/16, config says 10.0.0.0/16")
            return changes

    step = WrongCidr("vpc", cloud=cloud, log=log)
    result = up(ctx, [step])
    assert result.failures and "config says 10.0.0.0/16" in result.failures[0].message
    assert status(ctx, [step])[0].drift == ["CIDR is 10.9.0.0/16, config says 10.0.0.0/16"]


class PollingStep(FakeStep):
    """Ready after `reads` polls; each poll made in a worker thread is counted with the thread that made it."""

    def __init__(self, key, reads, threads, **kwargs):
        super().__init__(key, **kwargs)
        self.reads, self.threads = reads, threads

    def poll(self, ctx, res):
        import threading

        from provisioner.poll import Pending

        self.threads.append(threading.current_thread().name)
        self.reads -= 1
        return res if self.reads <= 0 else Pending(res, 0.05, "still pending")


def test_a_polling_step_holds_no_worker_while_it_waits(ctx):
    """One worker: while the slow step waits for its next read, the other steps run (a blocking wait would hold
    the only worker until it was done)."""
    cloud, log, threads = {}, [], []
    steps = [PollingStep("nat", 4, threads, cloud=cloud, log=log),
             FakeStep("a", cloud=cloud, log=log), FakeStep("b", ["a"], cloud=cloud, log=log)]
    reports = []
    ctx.report = lambda key, state, message: reports.append((key, state, message))
    result = up(ctx, steps, workers=1)
    assert [o.result for o in result.outcomes] == ["created"] * 3
    assert len(threads) == 4
    # b was made before the slow step's last read: the worker did not sit in its wait.
    order = [key for key, state, _ in reports if state == "done"]
    assert order.index("b") < order.index("nat")
    # One progress line for what it waits on, not one per read.
    assert [m for k, s, m in reports if k == "nat" and s == "waiting" and m] == ["still pending"]


def test_a_poll_gives_up_at_its_deadline_and_a_rerun_keeps_waiting(ctx):
    from provisioner.poll import Read, poll_once

    res = Resource("r-1")
    reads = []

    def read():
        reads.append(1)
        return Read(False, note="state pending")

    with pytest.raises(CloudError, match=r"still state pending after 3 polls .*rerun the command"):
        for _ in range(10):
            poll_once(res, "thing", read, every=10, deadline=30)
    assert len(reads) == 3
    assert res.polls == 0  # a rerun starts a new deadline
