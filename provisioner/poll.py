"""The one rule for waiting and retrying: when to ask again, and when to stop.

Waiting without holding a worker: a step's `poll` reads once and answers "ready" or "ask again in N s"; the
engine schedules the next poll (`engine.Later`), so a step waiting minutes for a NAT gateway, a Transit Gateway
attachment or a workspace holds no thread meanwhile. Everything else that waits or retries in this thread (a
change made in `ensure`, a delete AWS refuses while a dependency is released, Databricks' IAM propagation, a new
workspace's API) uses the same pieces:

- `Backoff`: the pauses between tries, in seconds before the context's poll scale. The first comes sooner when
  short operations are often done by then (`first`); then every `every` seconds, or growing from `first` to
  `every` (`growth`) for a refusal that may last a while; `jitter` spreads retries many clients make at once.
- the deadline: `deadline` seconds on the context's clock for a wait whose end is a matter of time, else
  counted in tries (`Backoff.tries`: as many as the deadline holds at full speed, so a scaled-down poll cannot
  spin for the whole deadline). A retry of a refused call counts both.
- `next_read`: a wait whose typical length is known reads at that time, then often for a while, so that what
  is ready is seen when it is ready rather than up to a whole interval later.

`poll_once` is one read of a wait, `block` runs a wait to the end here, `retry` calls until a named condition
passes.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeVar

from provisioner.errors import CloudError

if TYPE_CHECKING:
    from provisioner.context import Context
    from provisioner.steps.base import Resource

T = TypeVar("T")
# The shortest pause between two tries, whatever the poll scale (0 in tests): a clock that tests move by hand
# moves on, and no wait spins.
MIN_PAUSE_SECONDS = 0.01
# After a wait's typical length, reads come this many times as often as usual, for this share of the typical
# length; then at the usual interval again.
OFTEN = 5
OFTEN_FOR = 0.1


class Clock(Protocol):
    def now(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class WaitDeadline(CloudError):
    """A wait made all its reads and the resource is still not ready (a rerun keeps waiting)."""


@dataclass(frozen=True)
class Backoff:
    """The pauses between tries (seconds, before the poll scale): `first` after the first try (by default
    `every`); after that every `every` seconds, or, with `growth` above 1, each pause `growth` times the last up
    to `every`; plus up to `jitter` seconds at random."""

    every: float
    first: float | None = None
    growth: float = 1.0
    jitter: float = 0.0

    def _base(self, tries: int) -> float:
        start = self.every if self.first is None else self.first
        if tries <= 1:
            return start
        if self.growth <= 1:
            return self.every
        return min(start * self.growth ** min(tries - 1, 64), self.every)

    def pause(self, tries: int) -> float:
        """The pause after `tries` tries."""
        return self._base(tries) + (random.uniform(0, self.jitter) if self.jitter else 0.0)

    def tries(self, deadline: float) -> int:
        """The tries `deadline` seconds hold at full speed: those that start before it. An early first read of a
        fixed schedule (`first`) is extra, not counted against the deadline."""
        tries, start = 1, 0.0
        while tries < 100_000:
            start += self.every if tries == 1 and self.growth <= 1 else self._base(tries)
            if start >= deadline:
                break
            tries += 1
        return tries


def scaled(seconds: float, scale: float) -> float:
    """A pause in seconds on the clock: `seconds` times the poll scale, never below the floor."""
    return max(seconds * scale, MIN_PAUSE_SECONDS)


def next_read(after: float, waited: float, typical: float | None) -> float:
    """When to read next, `after` seconds being the usual interval (before the poll scale), for a wait that
    began `waited` seconds ago and typically takes `typical` seconds (None: not known). The read that would pass
    the typical end comes at it instead; after it, reads come `OFTEN` times as often for a while."""
    if not typical or after <= 0:
        return after
    left = typical - waited
    if left > 0:
        return min(after, left)
    if -left < typical * OFTEN_FOR:
        return after / OFTEN
    return after


@dataclass
class Pending:
    """Not ready yet: poll again in `after` seconds (before the poll scale). `note` is the progress line."""

    res: Resource
    after: float
    note: str = ""


@dataclass
class Read:
    """What one read of a waited-for resource found: `ready`, else why not (`note`), or `failed`: a reason that
    ends the wait (waiting would not change it)."""

    ready: bool
    note: str = ""
    failed: str | None = None


def poll_once(res: Resource, what: str, read: Callable[[], Read], *, every: float, deadline: float,
              first: float | None = None, clock: Clock | None = None) -> Resource | Pending:
    """One read of a wait: `res` when ready; `Pending` with the time to the next read; CloudError on a failure
    or once the deadline's tries (`Backoff.tries`) found it not ready (with `clock`: once `deadline` seconds have
    passed on it since the first read, for a wait whose end is a matter of time, not of reads). The count of
    reads and the time of the first live on `res`."""
    backoff = Backoff(every, first)
    if clock is not None and res.waited_since is None:
        res.waited_since = clock.now()
    found = read()
    if found.failed or found.ready:
        res.polls, res.waited_since = 0, None
        if found.failed:
            raise CloudError(f"waiting for {what} failed: {found.failed}")
        return res
    res.polls += 1
    polls = backoff.tries(deadline)
    if clock is not None and res.waited_since is not None:
        expired = clock.now() - res.waited_since >= deadline
        spent = f"after {deadline / 60:g} minutes (the deadline)"
    else:
        expired = res.polls >= polls
        spent = f"after {polls} polls (the deadline: {deadline / 60:g} minutes at full polling speed)"
    if expired:
        res.polls, res.waited_since = 0, None
        raise WaitDeadline(f"waiting for {what} failed: still {found.note or 'not ready'} {spent}; rerun the "
                           "command (`provision up` or `provision down`) to keep waiting")
    return Pending(res, backoff.pause(res.polls), found.note)


def block(ctx: Context, key: str, poll: Callable[[], Resource | Pending]) -> Resource:
    """Run `poll` until it settles, sleeping in this thread (on the context's clock) between reads; `key`, when
    given, is the step its progress lines are of."""
    from provisioner.context import Clock as WallClock

    clock = getattr(ctx, "clock", None) or WallClock()
    said = ""
    while True:
        got = poll()
        if not isinstance(got, Pending):
            return got
        if key and got.note and got.note != said:
            said = got.note
            ctx.report(key, "waiting", got.note)
        clock.sleep(max(ctx.poll_delay(got.after), MIN_PAUSE_SECONDS))


def retry(call: Callable[[], T], *, when: Callable[[BaseException], bool], backoff: Backoff, deadline: float,
          clock: Clock, scale: float, counted: bool = True,
          on_retry: Callable[[int, BaseException, float], None] | None = None) -> T:
    """Call `call`; while it raises an error `when` matches (a named condition, never any error), pause and call
    again, until `deadline` seconds have passed on `clock` and, when `counted`, at most the tries the deadline
    holds at full speed; then the last such error propagates. Anything else `call` raises propagates at once.

    `on_retry(tries, error, seconds_left)` runs before each pause (a progress line saying what is retried)."""
    ends = clock.now() + deadline
    limit = backoff.tries(deadline) if counted else None
    tries = 0
    while True:
        tries += 1
        try:
            return call()
        except Exception as e:
            if not when(e):
                raise
            left = ends - clock.now()
            if left <= 0 or (limit is not None and tries >= limit):
                raise
            if on_retry is not None:
                on_retry(tries, e, left)
            clock.sleep(min(scaled(backoff.pause(tries), scale), left))
