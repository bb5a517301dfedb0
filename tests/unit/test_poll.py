"""The one rule for waiting and retrying (`provisioner.poll`): the pauses, the deadline, and the retry loop that
`retry_while` (AWS) and `call_with_retry` / `wait_until` (Databricks) are made of. Time is a fake clock."""

from __future__ import annotations

import pytest

from provisioner.poll import Backoff, retry
from tests.conftest import FakeClock


class Refused(Exception):
    pass


def test_a_fixed_schedule_reads_early_once_then_at_its_interval():
    nat = Backoff(15, first=3)
    assert [nat.pause(n) for n in range(1, 5)] == [3, 15, 15, 15]
    assert nat.tries(900) == 60  # the early look is extra: 15 minutes of reads every 15 s


def test_a_growing_schedule_doubles_up_to_its_longest_pause():
    release = Backoff(30, first=5, growth=2)
    assert [release.pause(n) for n in range(1, 6)] == [5, 10, 20, 30, 30]
    # The tries that start within the deadline at full speed: 0, 5, 15, 35 s for one minute.
    assert release.tries(60) == 4
    assert release.tries(300) == 12


def test_jitter_stays_within_its_bound():
    backoff = Backoff(30, first=2, growth=2, jitter=2)
    assert all(2 <= backoff.pause(1) <= 4 for _ in range(50))


def _refused_until(calls: list[int], answer_after: int):
    def call() -> str:
        calls.append(1)
        if len(calls) <= answer_after:
            raise Refused("not yet")
        return "done"

    return call


def test_retry_calls_again_while_the_named_condition_holds():
    clock, calls, seen = FakeClock(), [], []
    got = retry(_refused_until(calls, 3), when=lambda e: isinstance(e, Refused), backoff=Backoff(30, first=5, growth=2),
                deadline=300, clock=clock, scale=1.0, on_retry=lambda n, e, left: seen.append((n, left)))
    assert got == "done" and len(calls) == 4
    assert clock.slept == [5, 10, 20]
    assert [n for n, _ in seen] == [1, 2, 3] and seen[0][1] == 300


def test_retry_never_retries_another_error():
    clock, calls = FakeClock(), []

    def call() -> None:
        calls.append(1)
        raise KeyError("a bug")

    with pytest.raises(KeyError):
        retry(call, when=lambda e: isinstance(e, Refused), backoff=Backoff(1), deadline=60, clock=clock, scale=1.0)
    assert len(calls) == 1 and clock.slept == []


def test_a_scaled_down_retry_stops_after_the_tries_its_deadline_holds():
    """At poll scale 0 the clock hardly moves: the deadline is counted in tries, not left to spin."""
    clock, calls = FakeClock(), []
    with pytest.raises(Refused):
        retry(_refused_until(calls, 10_000), when=lambda e: isinstance(e, Refused),
              backoff=Backoff(30, first=5, growth=2), deadline=300, clock=clock, scale=0.0)
    assert len(calls) == 12


def test_a_retry_counted_in_time_runs_to_its_deadline_on_the_clock():
    clock, calls = FakeClock(), []
    with pytest.raises(Refused):
        retry(_refused_until(calls, 10_000), when=lambda e: isinstance(e, Refused),
              backoff=Backoff(10, first=1, growth=2), deadline=120, clock=clock, scale=1.0, counted=False)
    assert clock.now() - 1000 == 120  # the last pause is cut at the deadline, then one last try
    assert len(calls) == 1 + len(clock.slept)
