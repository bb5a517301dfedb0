"""Retries for Databricks' eventual consistency, each for one named condition and with a deadline.

The SDK already retries throttling, 5xx and connection errors (DESIGN.md: don't wrap them again). What it does
not retry, and what these do:

- `CREDENTIAL_VALIDATION`: right after the cross-account role and its policy are made, `POST /credentials` and
  `POST /workspaces` can answer HTTP 400 `MALFORMED_REQUEST: Failed credentials validation checks: ...`
  (sometimes as a text/plain body) because IAM has not propagated the role to where Databricks checks it
  (terraform-provider-databricks #951, #1424). Nothing else is retried: other 400s are real mistakes.
- `IN_USE`: deleting a network (or credentials, storage) that a workspace still holds answers
  `INVALID_STATE: Unable to delete, Network is being used by active workspace ...`, or 409 with an empty body
  (databricks-sdk-go #777), until the workspace is really gone.

Time comes from an injectable clock (`now()`, `sleep(s)`), so tests pass time without waiting.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from databricks.sdk.errors import BadRequest, InvalidState, ResourceConflict
from tenacity import RetryCallState, Retrying, retry_if_exception

T = TypeVar("T")

# A floor for every sleep, so a poll scale of 0 (tests, fast sandboxes) polls briskly instead of spinning.
MIN_SLEEP_SECONDS = 0.05


class Clock(Protocol):
    def now(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


@dataclass(frozen=True)
class Condition:
    """A named error worth retrying: `matches` says whether an exception is it."""

    name: str
    matches: Callable[[BaseException], bool]


# Both forms Databricks sends: "Failed credentials validation checks: <list>" (workspace create; credential create
# while the role propagates) and "Failed credential validation checks: please use a valid cross account IAM
# role..." (credential create). MALFORMED_REQUEST alone also means a bad body or a bad root bucket, which
# waiting will not fix: hence the message check, anchored at its start.
_CREDENTIAL_CHECKS = re.compile(r"^\s*(MALFORMED_REQUEST:\s*)?Failed credentials? validation checks", re.IGNORECASE)


def is_credential_validation_failure(e: BaseException) -> bool:
    return (isinstance(e, BadRequest) and getattr(e, "error_code", None) == "MALFORMED_REQUEST"
            and bool(_CREDENTIAL_CHECKS.match(str(e))))


def is_in_use(e: BaseException) -> bool:
    # InvalidState is INVALID_STATE (a 400); ResourceConflict is any 409, the empty-body form included.
    return isinstance(e, InvalidState | ResourceConflict)


CREDENTIAL_VALIDATION = Condition("Failed credentials validation checks (IAM propagation)",
                                  is_credential_validation_failure)
IN_USE = Condition("still in use by a workspace", is_in_use)


class _Deadline:
    """Stop once the deadline has passed (measured on the injected clock)."""

    def __init__(self, clock: Clock, deadline: float) -> None:
        self.clock, self.deadline = clock, deadline

    def __call__(self, state: RetryCallState) -> bool:
        return self.clock.now() >= self.deadline


class _ScaledBackoff:
    """Exponential backoff with jitter (`initial * 2**(n-1)` plus up to `initial`, at most `maximum`), times the
    poll scale, never past the deadline."""

    def __init__(self, clock: Clock, deadline: float, scale: float, initial: float, maximum: float) -> None:
        self.clock, self.deadline, self.scale = clock, deadline, scale
        self.initial, self.maximum = initial, maximum

    def __call__(self, state: RetryCallState) -> float:
        exponent = min(state.attempt_number - 1, 30)
        backoff = min(self.initial * 2.0**exponent + random.uniform(0, self.initial), self.maximum)
        wanted = max(backoff * self.scale, MIN_SLEEP_SECONDS)
        return max(0.0, min(wanted, self.deadline - self.clock.now()))


def call_with_retry(fn: Callable[[], T], *, condition: Condition, clock: Clock, deadline_seconds: float,
                    on_retry: Callable[[int, BaseException, float], None] | None = None, scale: float = 1.0,
                    initial: float = 2.0, maximum: float = 30.0) -> T:
    """Call `fn`; while it raises `condition`, back off and call again until `deadline_seconds` have passed.

    `on_retry(attempt, error, seconds_left)` runs before each sleep (to show the retry on the progress line).
    Anything else `fn` raises propagates at once; when the deadline passes, the last matching error does.
    """
    deadline = clock.now() + deadline_seconds

    def before_sleep(state: RetryCallState) -> None:
        if on_retry is not None and state.outcome is not None:
            error = state.outcome.exception()
            if error is not None:
                on_retry(state.attempt_number, error, max(0.0, deadline - clock.now()))

    retrying = Retrying(
        retry=retry_if_exception(condition.matches),
        stop=_Deadline(clock, deadline),
        wait=_ScaledBackoff(clock, deadline, scale, initial, maximum),
        sleep=clock.sleep,
        before_sleep=before_sleep,
        reraise=True,
    )
    return retrying(fn)


class WaitTimeout(Exception):
    """`wait_until` ran out of time; the message says what was awaited and the last thing seen."""


def wait_until(check: Callable[[], tuple[bool, Any]], *, clock: Clock, timeout_seconds: float, what: str,
               scale: float = 1.0, max_interval: float = 10.0) -> Any:
    """Poll `check` (returning `(done, value)`) until done; sleeps 1, 2, ... `max_interval` s, times `scale`.

    Returns the last value; raises `WaitTimeout` after `timeout_seconds` on `clock`.
    """
    deadline = clock.now() + timeout_seconds
    attempt = 1
    while True:
        done, value = check()
        if done:
            return value
        if clock.now() >= deadline:
            raise WaitTimeout(f"timed out after {duration(timeout_seconds)} waiting for {what}")
        pause = max(min(attempt, max_interval) * scale, MIN_SLEEP_SECONDS)
        clock.sleep(max(0.0, min(pause, deadline - clock.now())))
        attempt += 1


def duration(seconds: float) -> str:
    """`45 s`, `5 min`, `4 min 12 s`: for messages."""
    seconds = round(seconds)
    if seconds < 120:
        return f"{seconds} s"
    return f"{seconds // 60} min" + (f" {seconds % 60} s" if seconds % 60 else "")
