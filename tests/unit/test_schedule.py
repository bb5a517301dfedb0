"""Which ready step starts first: the one with the longest typical path to the end of the run."""

from __future__ import annotations

from provisioner.engine import remaining_seconds, up
from provisioner.poll import Pending
from provisioner.steps.base import Step
from tests.unit.test_engine import FakeStep, PollingStep, ctx  # noqa: F401 (a fixture)


class Slow(FakeStep):
    kind = "network firewall"


def test_remaining_seconds_follow_the_longest_chain_of_dependants():
    steps: list[Step] = [FakeStep("vpc"), FakeStep("subnet", ["vpc"]), Slow("firewall", ["subnet"]),
                         FakeStep("routes", ["firewall"]), FakeStep("bucket")]
    ahead = remaining_seconds(steps)
    assert ahead["routes"] == 1.0
    assert ahead["firewall"] == 391.0
    assert ahead["vpc"] == 393.0 and ahead["bucket"] == 1.0
    behind = remaining_seconds(steps, reverse=True)  # `down`: what a step stands on comes after it
    assert behind["routes"] == 393.0 and behind["vpc"] == 1.0


def test_with_one_worker_the_step_on_the_critical_path_starts_first(ctx):  # noqa: F811
    cloud: dict[str, str] = {}
    log: list[tuple[str, str]] = []
    steps = [FakeStep(f"bucket-{i}", cloud=cloud, log=log) for i in range(3)]
    steps += [Slow("firewall", cloud=cloud, log=log), FakeStep("routes", ["firewall"], cloud=cloud, log=log)]
    result = up(ctx, steps, workers=1)
    assert not result.failures
    assert log[0] == ("create", "firewall")  # before the buckets listed ahead of it


# -- when a wait reads ------------------------------------------------------------------------------------------


class TimedFirewall(Slow):
    """Ready `ready_after` seconds (on the context's clock) after its create; asks to be read every `every` s."""

    def __init__(self, key, ready_after, every, reads, **kwargs):
        super().__init__(key, **kwargs)
        self.ready_after, self.every, self.reads = ready_after, every, reads
        self.created = 0.0

    def create(self, context):
        res = super().create(context)
        self.created = context.clock.now()
        return res

    def poll(self, context, res):
        waited = context.clock.now() - self.created
        self.reads.append(waited)
        return res if waited >= self.ready_after else Pending(res, self.every)


def _timed_ctx(tmp_path):
    from provisioner.context import Context
    from provisioner.design.config import build_config
    from provisioner.state import load
    from tests.conftest import FakeClock

    config = build_config({"deployment": "eng", "databricks_account_id": "0d4f7b3a-1c2e-4b5a-9f8e-7d6c5b4a3f2e"})
    return Context(config=config, state=load(tmp_path, "eng"), clock=FakeClock(), poll_scale=1.0)


def test_a_wait_of_known_length_reads_when_it_is_typically_done(tmp_path):
    """The firewall typically takes 390 s: read every 100 s, it is read at 390 s, not at 400 s."""
    reads: list[float] = []
    step = TimedFirewall("firewall", 390, 100, reads, cloud={}, log=[])
    assert not up(_timed_ctx(tmp_path), [step]).failures
    assert reads == [0, 100, 200, 300, 390]


def test_past_its_typical_length_a_wait_reads_more_often_for_a_while(tmp_path):
    reads: list[float] = []
    step = TimedFirewall("firewall", 395, 100, reads, cloud={}, log=[])
    assert not up(_timed_ctx(tmp_path), [step]).failures
    assert reads == [0, 100, 200, 300, 390, 410]  # a fifth of the interval, not 490


def test_a_resource_found_already_is_read_at_the_usual_interval(tmp_path):
    """How long an adopted resource has been on its way is not known: no read is moved."""
    reads: list[float] = []
    step = TimedFirewall("firewall", 395, 100, reads, cloud={"firewall": "id-firewall"}, log=[])
    context = _timed_ctx(tmp_path)
    step.created = context.clock.now()  # made by an earlier run, just now
    assert not up(context, [step]).failures
    assert reads == [0, 100, 200, 300, 400]


def test_next_read():
    from provisioner.poll import next_read

    assert next_read(15, 0, None) == 15
    assert next_read(15, 100, 390) == 15
    assert next_read(15, 380, 390) == 10
    assert next_read(15, 391, 390) == 3
    assert next_read(15, 390 + 39, 390) == 15  # a tenth of the typical length after it: the usual interval again


# -- what starts first ------------------------------------------------------------------------------------------


def test_steps_with_minutes_to_spare_wait_while_the_critical_path_is_under_way(ctx):  # noqa: F811
    import threading

    cloud: dict[str, str] = {}
    log: list[tuple[str, str]] = []
    bucket_started = threading.Event()
    seen: list[bool] = []

    class Bucket(FakeStep):
        def find(self, ctx):
            bucket_started.set()
            return super().find(ctx)

    class Vpc(FakeStep):
        def create(self, ctx):
            seen.append(bucket_started.wait(0.5))  # True at once if the bucket were running beside it
            return super().create(ctx)

    steps = [Bucket("bucket", cloud=cloud, log=log), Vpc("vpc", cloud=cloud, log=log),
             Slow("firewall", ["vpc"], cloud=cloud, log=log), FakeStep("routes", ["firewall"], cloud=cloud, log=log)]
    result = up(ctx, steps, workers=8)
    assert not result.failures
    assert seen == [False]
    assert [k for _, k in log].index("firewall") < [k for _, k in log].index("bucket")


# -- down ------------------------------------------------------------------------------------------------------


class SlowToGo(PollingStep):
    """Made at once; gone after `reads` reads of its deletion, each counted with the thread that made it."""

    def poll(self, context, res):
        return res

    def poll_deleted(self, context, res):
        got = super().poll(context, res)
        return None if got is res else Pending(res, got.after, "still deleting")


def test_a_delete_being_waited_for_holds_no_worker(ctx):  # noqa: F811
    from provisioner.engine import down

    cloud: dict[str, str] = {}
    log: list[tuple[str, str]] = []
    threads: list[str] = []
    steps = [SlowToGo("nat", 4, threads, cloud=cloud, log=log),
             FakeStep("a", cloud=cloud, log=log), FakeStep("b", ["a"], cloud=cloud, log=log)]
    assert not up(ctx, steps).failures
    reports: list[tuple[str, str, str]] = []
    ctx.report = lambda key, state, message: reports.append((key, state, message))
    result = down(ctx, steps, workers=1)
    assert [o.result for o in result.outcomes] == ["deleted"] * 3
    assert len(threads) == 4
    order = [key for key, state, _ in reports if state == "deleted"]
    assert order.index("a") < order.index("nat")  # deleted while the slow one was still going
    assert [m for k, s, m in reports if k == "nat" and s == "deleting" and m] == ["still deleting"]
    assert ctx.state.resource("nat") is None
