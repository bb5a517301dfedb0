"""Waiting without holding a worker: a step's `poll` reads once and answers "ready" or "ask again in N s".

The engine schedules the next poll (`engine.Later`), so a step waiting minutes for a NAT gateway, a Transit
Gateway attachment or a workspace holds no thread meanwhile. `poll_once` is the one poll and backoff rule:

- each read either settles the wait (ready, or a failure that waiting would not change) or gives `Pending`;
- the first read after a create comes sooner than the rest (`first`), since short operations are often done
  by then; later reads come every `every` seconds (before the context's poll scale);
- the wait ends with a `CloudError` once `deadline` seconds' worth of reads at full speed have been made
  (counted in reads, not in time, so a scaled-down poll cannot spin for the whole deadline).

`block` runs a poll to the end in the calling thread, for callers that must wait where they are (a change made
in `ensure`, a twin's delete).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from provisioner.errors import CloudError

if TYPE_CHECKING:
    from provisioner.context import Clock, Context
    from provisioner.steps.base import Resource

T = TypeVar("T")
# The shortest pause between two reads, whatever the poll scale (0 in tests): a clock that tests move by hand
# moves on, and no wait spins.
MIN_PAUSE_SECONDS = 0.01


class WaitDeadline(CloudError):
    """A wait made all its reads and the resource is still not ready (a rerun keeps waiting)."""


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
    or once `deadline / every` reads found it not ready (with `clock`: once `deadline` seconds have passed on it
    since the first read, for a wait whose end is a matter of time, not of reads). The count of reads and the
    time of the first live on `res`."""
    if clock is not None and res.waited_since is None:
        res.waited_since = clock.now()
    found = read()
    if found.failed or found.ready:
        res.polls, res.waited_since = 0, None
        if found.failed:
            raise CloudError(f"waiting for {what} failed: {found.failed}")
        return res
    res.polls += 1
    polls = max(1, int(deadline // every))
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
    after = first if first is not None and res.polls == 1 else every
    return Pending(res, after, found.note)


def block(ctx: Context, key: str, poll: Callable[[], Resource | Pending]) -> Resource:
    """Run `poll` until it settles, sleeping in this thread (on the context's clock) between reads; `key`, when
    given, is the step its progress lines are of."""
    from provisioner.context import Clock

    clock = getattr(ctx, "clock", None) or Clock()
    said = ""
    while True:
        got = poll()
        if not isinstance(got, Pending):
            return got
        if key and got.note and got.note != said:
            said = got.note
            ctx.report(key, "waiting", got.note)
        clock.sleep(max(ctx.poll_delay(got.after), MIN_PAUSE_SECONDS))
