"""plan / up / down / status over the step graph.

`up` runs each step once everything it needs is done, several at a time (the long waits, NAT gateways,
Transit Gateway attachments, the firewall, the workspace, overlap); `down` runs the graph in reverse: a
step is deleted once everything that needs it is gone. A failed step stops its dependants, lets running
steps finish, and the run ends with every failure reported; the state file has every ID created so far.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from provisioner.context import Clock, Context
from provisioner.errors import CloudError
from provisioner.poll import MIN_PAUSE_SECONDS, Pending, next_read
from provisioner.state import State
from provisioner.steps.base import Check, Kept, Resource, Retired, Step

# Steps under way at once. Most of a step's time is waiting for AWS or Databricks (a poll every few seconds), so
# a thread per step is cheap; 8 held a 10-spoke `up` to the sum of its waits over 8 (2.6 times the critical
# path against the latency model), 32 lets them overlap (1.4 times). The AWS connection pool follows.
DEFAULT_WORKERS = 32
INTERRUPT_GRACE_SECONDS = 3.0
# At the start of `up`, a ready step whose remaining path is this much shorter (typical seconds) than the
# longest waits while a step on the longest path is ready or under way, for at most HOLD_SECONDS (times the poll
# scale): the few seconds of calls before the firewall's minutes-long wait then have the machine and the API to
# themselves, and what waits has a minute or more to spare. Once over, the hold is over for the run.
SLACK_SECONDS = 60.0
HOLD_SECONDS = 10.0


class PlanError(Exception):
    """`up` cannot do what the config asks without deleting something first."""


@dataclass
class PlanItem:
    key: str
    kind: str
    name: str
    action: str  # create | nothing | update | recreate | delete | orphan
    details: dict[str, Any] = field(default_factory=dict)
    reason: str = ""


@dataclass
class StatusItem:
    key: str
    kind: str
    name: str
    status: str  # present | missing | drifted | unreadable (checks: ok | failed)
    id: str | None = None
    drift: list[str] = field(default_factory=list)


@dataclass
class Outcome:
    key: str
    # created | updated | unchanged | deleted | absent | kept | failed | skipped; retired: a step of an earlier
    # design with nothing left to delete (not counted in summaries)
    result: str
    message: str = ""


@dataclass
class RunResult:
    outcomes: list[Outcome]

    @property
    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.result == "failed"]

    def of(self, result: str) -> list[Outcome]:
        return [o for o in self.outcomes if o.result == result]


@dataclass
class Later:
    """A step's work is not finished: `then` goes on with it once `seconds` have passed. Meanwhile no worker is
    held (a step waiting minutes for its resource costs nothing)."""

    seconds: float
    then: Callable[[], Outcome | Later]


def check_graph(steps: Sequence[Step]) -> None:
    keys = {s.key for s in steps}
    if len(keys) != len(steps):
        raise ValueError("duplicate step keys")
    for s in steps:
        for need in s.needs:
            # A retired step waits for what replaces it only where that is part of the run.
            if need not in keys and not isinstance(s, Retired):
                raise ValueError(f"{s.key} needs unknown step {need}")


def plan(steps: Sequence[Step], state: State) -> list[PlanItem]:
    """What `up` would do, from the config and the state file alone: no network, no credentials."""
    items = []
    for step in steps:
        entry = state.resource(step.key)
        if isinstance(step, Retired):
            if entry is not None:
                items.append(PlanItem(step.key, step.kind, step.name, "delete", {}, step.reason))
            continue
        spec = step.spec()
        if entry is None:
            action, reason = ("update", "") if step.writes_in else ("create", "")
        elif entry.get("spec") == step.spec_hash():
            action, reason = "nothing", ""
        else:
            recorded = entry.get("spec_values") or {}
            changed = [k for k in step.replace_on if recorded.get(k) != spec.get(k)] if recorded else []
            action = "recreate" if changed else "update"
            reason = f"{', '.join(changed)} changed" if changed else "settings changed"
        items.append(PlanItem(step.key, step.kind, step.name, action, step.details(), reason))
    # What the state file records that no step of the config owns (a spoke removed, fewer AZs): `up` leaves it,
    # `up --prune` deletes it.
    for key in sorted(set(state.resources()) - {s.key for s in steps}):
        items.append(PlanItem(key, "resource", key, "orphan", {}, "no longer in the config; `up --prune` deletes it"))
    return items


# How long a step typically takes against the real clouds, by kind (the sandbox's latency model has the same
# figures); anything not listed takes a second or two. Only the order steps start in depends on these.
TYPICAL_SECONDS = {"network firewall": 390.0, "Databricks workspace": 240.0, "NAT gateway": 90.0,
                   "Transit Gateway": 90.0, "TGW attachment": 90.0, "VPC endpoint": 60.0,
                   "Databricks credentials": 20.0}


def remaining_seconds(steps: Sequence[Step], reverse: bool = False) -> dict[str, float]:
    """For each step, the typical time from its start to the end of the run along its longest chain of
    dependants (`reverse`: of what it stands on, as `down` runs): the critical path through it."""
    after: dict[str, list[str]] = {s.key: [] for s in steps}
    for s in steps:
        for need in s.needs:
            if need in after:
                if reverse:
                    after[s.key].append(need)
                else:
                    after[need].append(s.key)
    kinds = {s.key: s.kind for s in steps}
    memo: dict[str, float] = {}

    def walk(key: str) -> float:
        if key not in memo:
            memo[key] = 0.0  # a cycle is reported by the scheduler, not here
            memo[key] = TYPICAL_SECONDS.get(kinds[key], 1.0) + max((walk(k) for k in after[key]), default=0.0)
        return memo[key]

    return {key: walk(key) for key in after}


def _run_graph(steps: Sequence[Step], fn: Callable[[Step], Outcome | Later], reverse: bool, workers: int,
               ctx: Context | None = None, hold: float = 0.0) -> RunResult:
    """Run `fn` over the steps in dependency order (or reverse), in parallel where the graph allows. A step
    whose `fn` answers `Later` sleeps without a worker; its continuation runs once the time has passed. For the
    first `hold` seconds on the clock, steps far off the longest path wait while it is under way (`SLACK_SECONDS`)."""
    by_key = {s.key: s for s in steps}
    if reverse:
        blockers = {s.key: {o.key for o in steps if s.key in o.needs} for s in steps}
    else:
        blockers = {s.key: set(s.needs) & set(by_key) for s in steps}
    # Going down, a dependant that was kept (a bucket holding data, say) keeps what it stands on too.
    stop_on = ("failed", "skipped", "kept") if reverse else ("failed", "skipped")
    done: dict[str, Outcome] = {}
    running: dict[Future[Outcome | Later], str] = {}
    # Steps waiting for their next poll: (when, tie-break, key, continuation), soonest first.
    sleeping: list[tuple[float, int, str, Callable[[], Outcome | Later]]] = []
    clock = ctx.clock if ctx is not None else Clock()
    order = [s.key for s in steps]
    # Ready steps start longest-remaining-path first, and only as workers come free: the firewall (minutes to
    # READY, then its routes) is never queued behind a subnet.
    rank = remaining_seconds(steps, reverse)
    longest = max(rank.values(), default=0.0)
    hold_until = clock.now() + hold
    holding = hold > 0
    tie = itertools.count()
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="step")
    try:
        while len(done) < len(steps):
            settled = len(done)
            ready = []
            busy = set(running.values()) | {entry[2] for entry in sleeping}
            for key in order:
                if key in done or key in busy:
                    continue
                stopped = sorted(b for b in blockers[key] if b in done and done[b].result in stop_on)
                if stopped:
                    done[key] = Outcome(key, "skipped", f"waits for {', '.join(stopped)}")
                    if ctx is not None:
                        ctx.report(key, "skipped", done[key].message)
                    continue
                if all(b in done for b in blockers[key]):
                    ready.append(key)
            # A poll that is due goes first: its step holds resources others wait for.
            while sleeping and sleeping[0][0] <= clock.now() and len(running) < workers:
                _, _, key, then = heapq.heappop(sleeping)
                running[pool.submit(then)] = key
            if holding:
                near = [k for k in [*ready, *running.values()] if longest - rank[k] <= SLACK_SECONDS]
                holding = bool(near) and clock.now() < hold_until
                if holding:
                    ready = [k for k in ready if longest - rank[k] <= SLACK_SECONDS]
            for key in sorted(ready, key=lambda k: -rank[k])[:max(workers - len(running), 0)]:
                running[pool.submit(fn, by_key[key])] = key
            if not running:
                if sleeping:
                    clock.sleep(max(0.0, sleeping[0][0] - clock.now()))
                    continue
                if len(done) == settled:
                    raise ValueError(f"dependency cycle among {sorted(set(order) - set(done))}")
                continue
            due = [sleeping[0][0]] if sleeping else []
            if holding:
                due.append(hold_until)
            timeout = max(0.0, min(due) - clock.now()) if due else None
            finished, _ = wait(list(running), timeout=timeout, return_when=FIRST_COMPLETED)
            for fut in finished:
                key = running.pop(fut)
                result = fut.result()
                if isinstance(result, Later):
                    heapq.heappush(sleeping, (clock.now() + result.seconds, next(tie), key, result.then))
                else:
                    done[key] = result
    except BaseException:
        # Interrupted (Ctrl-C) or broken: start nothing more, tell running steps to stop at their next report,
        # and do not wait for calls under way: a rerun adopts whatever they create.
        if ctx is not None:
            ctx.cancelled.set()
        pool.shutdown(wait=False, cancel_futures=True)
        # A short grace for calls under way to return and their steps to stop at the next report, so that
        # what they create is recorded; a step deep in a long wait is not waited for.
        wait(list(running), timeout=INTERRUPT_GRACE_SECONDS)
        raise
    pool.shutdown(wait=True)
    return RunResult([done[k] for k in order])


def check_plan(steps: Sequence[Step], state: State) -> None:
    """Refuse (PlanError) a config `up` cannot reach without deleting something first."""
    blocked = [item for item in plan(steps, state) if item.action == "recreate"]
    if blocked:
        first = blocked[0]
        raise PlanError(f"{first.key}: {first.reason}, which AWS cannot change in place; run `provision down` "
                        "first, or revert the setting")


def up(ctx: Context, steps: Sequence[Step], workers: int = DEFAULT_WORKERS) -> RunResult:
    check_graph(steps)
    check_plan(steps, ctx.state)

    def run(step: Step) -> Outcome | Later:
        if isinstance(step, Retired):
            return _remove(ctx, step, retiring=True)

        said = [""]
        # When the resource was created in this run: how long it has been on its way, for `next_read`.
        created_at: list[float] = []

        def begin() -> Outcome | Later:
            ctx.report(step.key, "checking", "")
            res = step.find(ctx)
            if res is None:
                return creating()
            return waiting(res, created=False)

        def creating() -> Outcome | Later:
            got = step.poll_ready(ctx)
            if isinstance(got, Pending):
                return later(got, creating)
            ctx.report(step.key, "creating", "")
            res = step.create(ctx)
            created_at.append(ctx.clock.now())
            ctx.record(step, res)
            _record_spec(ctx, step)
            ctx.report(step.key, "waiting", "")
            return waiting(res, created=True)

        def waiting(res: Resource, created: bool) -> Outcome | Later:
            got = step.poll(ctx, res)
            if isinstance(got, Pending):
                return later(got, lambda: waiting(got.res, created), after(got.after))
            return finish(got, created)

        def later(got: Pending, then: Callable[[], Outcome | Later], seconds: float | None = None) -> Later:
            if got.note and got.note != said[-1]:  # a line when what it waits on changes, not every poll
                said.append(got.note)
                ctx.report(step.key, "waiting", got.note)
            pause = got.after if seconds is None else seconds
            return Later(max(ctx.poll_delay(pause), MIN_PAUSE_SECONDS), lambda: _guarded(ctx, step, then))

        def after(usual: float) -> float:
            """The next read of a resource this run created comes when its kind is typically done, if sooner."""
            if not created_at or ctx.poll_scale <= 0:
                return usual
            waited = (ctx.clock.now() - created_at[0]) / ctx.poll_scale
            return next_read(usual, waited, TYPICAL_SECONDS.get(step.kind))

        def finish(res: Resource, created: bool) -> Outcome:
            if created:
                ctx.record(step, res)
                step.ensure(ctx, res, apply=True)
                ctx.report(step.key, "done", "created")
                return Outcome(step.key, "created")
            changes = step.ensure(ctx, res, apply=True)
            ctx.record(step, res)
            _record_spec(ctx, step)
            if changes:
                ctx.report(step.key, "done", "updated: " + "; ".join(changes))
                return Outcome(step.key, "updated", "; ".join(changes))
            ctx.report(step.key, "unchanged", "")
            return Outcome(step.key, "unchanged")

        return _guarded(ctx, step, begin)

    # A run that only checks what exists has no minutes-long create to put first.
    creates = any(ctx.state.resource(s.key) is None for s in steps if not isinstance(s, Retired))
    return _run_graph(steps, run, reverse=False, workers=workers, ctx=ctx,
                      hold=ctx.poll_delay(HOLD_SECONDS) if creates else 0.0)


def _guarded(ctx: Context, step: Step, work: Callable[[], Outcome | Later]) -> Outcome | Later:
    """`work()`, or the step's failure: its message as it is for what the clouds or the plan refused, with the
    error's type for anything else."""
    try:
        return work()
    except Exception as e:
        message = str(e) if isinstance(e, CloudError | PlanError) else f"{type(e).__name__}: {e}"
        ctx.report(step.key, "failed", message)
        return Outcome(step.key, "failed", message)


def _record_spec(ctx: Context, step: Step) -> None:
    entry = ctx.state.resource(step.key) or {}
    if entry.get("spec_values") != step.spec():
        ctx.state.record(step.key, entry.get("id", ""), spec=step.spec_hash(), spec_values=step.spec())


def _remove(ctx: Context, step: Step, retiring: bool = False) -> Outcome | Later:
    """Delete what one step owns (if anything) and forget it: `down`'s work, and `up`'s for a retired step
    (`retiring`: nothing there is the usual case, not worth a line of its own). The wait for it to be gone is
    the step's `poll_deleted`, scheduled by the engine like `up`'s polls."""
    said = [""]

    def begin() -> Outcome | Later:
        # A retired step the state file does not record is, almost always, something this deployment never had:
        # no line for it unless it turns out to exist.
        quiet = retiring and ctx.state.resource(step.key) is None
        if not quiet:
            ctx.report(step.key, "checking", "")
        res = step.find(ctx)
        if res is None:
            ctx.state.forget(step.key)
            if not quiet:
                ctx.report(step.key, "absent", "")
            return Outcome(step.key, "retired" if retiring else "absent")
        ctx.report(step.key, "deleting", getattr(step, "reason", ""))
        try:
            step.delete(ctx, res)
        except Kept as e:
            ctx.report(step.key, "kept", str(e))
            return Outcome(step.key, "kept", str(e))
        return going(res)

    def going(res: Resource) -> Outcome | Later:
        got = step.poll_deleted(ctx, res)
        if isinstance(got, Pending):
            if got.note and got.note != said[-1]:
                said.append(got.note)
                ctx.report(step.key, "deleting", got.note)
            return Later(max(ctx.poll_delay(got.after), MIN_PAUSE_SECONDS),
                         lambda: _guarded(ctx, step, lambda: going(res)))
        ctx.state.forget(step.key)
        ctx.report(step.key, "deleted", "")
        return Outcome(step.key, "deleted")

    return _guarded(ctx, step, begin)


def down(ctx: Context, steps: Sequence[Step], workers: int = DEFAULT_WORKERS) -> RunResult:
    check_graph(steps)
    return _run_graph(steps, lambda step: _remove(ctx, step), reverse=True, workers=workers, ctx=ctx)


def prune(ctx: Context, removed: Sequence[Step], workers: int = DEFAULT_WORKERS) -> RunResult:
    """Delete what the config no longer has (`up --prune`): the removed steps, rebuilt from the config that made
    them, in `down`'s order among themselves (the workspace before its network, routes before gateways). What they
    stand on that the config still has is not theirs to delete."""
    return _run_graph(removed, lambda step: _remove(ctx, step), reverse=True, workers=workers, ctx=ctx)


def status(ctx: Context, steps: Sequence[Step], workers: int = DEFAULT_WORKERS) -> list[StatusItem]:
    """What exists now, read from the cloud; drift is every aspect `ensure` would change. Reads only, so in
    any order and in parallel."""
    check_graph(steps)

    def read(step: Step) -> StatusItem:
        try:
            res: Resource | None = step.find(ctx)
            if isinstance(step, Retired):
                return StatusItem(step.key, step.kind, step.name, "absent" if res is None else "drifted",
                                  None if res is None else res.id,
                                  [] if res is None else [f"{step.reason}; `provision up` removes it"])
            if res is None:
                return StatusItem(step.key, step.kind, step.name, "missing")
            drift = step.ensure(ctx, res, apply=False)
            return StatusItem(step.key, step.kind, step.name, "drifted" if drift else "present", res.id, drift)
        except CloudError as e:
            # Not "drifted": the cloud did not answer, which is a failure of the command, not of the deployment.
            return StatusItem(step.key, step.kind, step.name, "unreadable", None, [f"cannot read: {e}"])
        except Exception as e:  # one step's bug must not hide the others' status
            return StatusItem(step.key, step.kind, step.name, "unreadable", None, [f"{type(e).__name__}: {e}"])

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="status") as pool:
        # A retired step that is gone is not part of the deployment at all.
        return [item for item in pool.map(read, steps) if item.status != "absent"]


def run_checks(ctx: Context, checks: Sequence[Check]) -> list[StatusItem]:
    items = []
    for check in checks:
        try:
            problems = check.run(ctx)
        except CloudError as e:
            problems = [f"cannot check: {e}"]
        items.append(StatusItem(check.key, "check", check.name, "failed" if problems else "ok", None, problems))
    return items
