"""Which ready step starts first: the one with the longest typical path to the end of the run."""

from __future__ import annotations

from provisioner.engine import remaining_seconds, up
from provisioner.poll import Pending
from provisioner.steps.base import Resource, Step
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


def _critical_path_and_a_bucket(wait_for_bucket: float):
    """A VPC (its create waits up to `wait_for_bucket` s for the bucket to start), the firewall on it, and a
    bucket with minutes to spare. What the VPC saw is in the list returned."""
    import threading

    cloud: dict[str, str] = {}
    log: list[tuple[str, str]] = []
    bucket_started = threading.Event()
    seen: list[bool] = []

    class Bucket(FakeStep):
        def find(self, context):
            bucket_started.set()
            return super().find(context)

    class Vpc(FakeStep):
        def create(self, context):
            seen.append(bucket_started.wait(wait_for_bucket))  # True as soon as the bucket is under way
            return super().create(context)

    steps = [Bucket("bucket", cloud=cloud, log=log), Vpc("vpc", cloud=cloud, log=log),
             Slow("firewall", ["vpc"], cloud=cloud, log=log), FakeStep("routes", ["firewall"], cloud=cloud, log=log)]
    return steps, seen, log


def test_steps_with_minutes_to_spare_wait_while_the_critical_path_is_under_way(ctx):  # noqa: F811
    steps, seen, log = _critical_path_and_a_bucket(0.5)
    assert not up(ctx, steps, workers=8).failures
    assert seen == [False]
    assert [k for _, k in log].index("firewall") < [k for _, k in log].index("bucket")


def test_the_hold_ends_after_its_time_even_while_the_critical_path_is_busy(ctx):  # noqa: F811
    """A step on the longest path that blocks (an `ensure` waiting for AWS) does not hold the others for long:
    at poll scale 0.001 the hold is 30 ms."""
    ctx.poll_scale = 0.001
    steps, seen, _ = _critical_path_and_a_bucket(30)
    assert not up(ctx, steps, workers=8).failures
    assert seen == [True]


# -- down ------------------------------------------------------------------------------------------------------


class SlowToGo(PollingStep):
    """Made at once; gone after `reads` reads of its deletion, each counted with the thread that made it."""

    def poll(self, context, res):
        return res

    def poll_deleted(self, context, res):
        got = super().poll(context, res)
        return None if got is res else Pending(res, got.after, "still deleting")


class NeedsAnAnswer(SlowToGo):
    """Its create needs another party to answer first: `poll_ready` says not yet `reads - 1` times."""

    def poll_ready(self, context):
        got = self.poll_deleted(context, Resource(""))
        return None if got is None else Pending(got.res, got.after, "does not answer yet")


def _one_worker(ctx, slow, run):  # noqa: F811
    """`run(ctx, steps, workers=1)` over `slow` and two quick steps, one standing on the other: the outcomes,
    the progress lines, and how many reads `slow` made."""
    cloud: dict[str, str] = {}
    log: list[tuple[str, str]] = []
    threads: list[str] = []
    steps = [slow(threads, cloud=cloud, log=log), FakeStep("a", cloud=cloud, log=log),
             FakeStep("b", ["a"], cloud=cloud, log=log)]
    if run is not up:
        assert not up(ctx, steps).failures
    reports: list[tuple[str, str, str]] = []
    ctx.report = lambda key, state, message: reports.append((key, state, message))
    result = run(ctx, steps, workers=1)
    return [o.result for o in result.outcomes], reports, len(threads), log


def test_a_delete_being_waited_for_holds_no_worker(ctx):  # noqa: F811
    from provisioner.engine import down

    results, reports, reads, _ = _one_worker(ctx, lambda threads, **kw: SlowToGo("nat", 4, threads, **kw), down)
    assert results == ["deleted"] * 3 and reads == 4
    order = [key for key, state, _ in reports if state == "deleted"]
    assert order.index("a") < order.index("nat")  # deleted while the slow one was still going
    assert [m for k, s, m in reports if k == "nat" and s == "deleting" and m] == ["still deleting"]
    assert ctx.state.resource("nat") is None


def test_a_create_waiting_for_another_party_holds_no_worker(ctx):  # noqa: F811
    results, reports, reads, log = _one_worker(ctx, lambda threads, **kw: NeedsAnAnswer("token", 3, threads, **kw),
                                               up)
    assert results == ["created"] * 3 and reads == 3 and log.count(("create", "token")) == 1
    order = [key for key, state, _ in reports if state == "done"]
    assert order.index("b") < order.index("token")  # made while the slow one was still waiting
    assert [m for k, s, m in reports if k == "token" and s == "waiting" and m] == ["does not answer yet"]
