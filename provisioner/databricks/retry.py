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
- `WORKSPACE_NOT_READY`: a workspace that has just become RUNNING may not answer yet: its host name does not
  resolve or refuses connections (terraform-provider-databricks #339, #1645), its sign-in fails, or its API
  answers 401/403 until it knows the principal. Its API is polled until it answers (`wait_until`).
- `SIGN_IN`: signing in to a workspace (host metadata, OIDC discovery, OAuth token) failed. The SDK retries
  none of it when the token endpoint answers 5xx or 429, so a read of the workspace's tokens signs in again.

And what the SDK's retries leave: `transient_cause` says when a failure is throttling, a service error or a
lost connection that outlasted the SDK's retry budget (or a 5xx it does not retry), so the step can say the
fault was transient and a rerun resumes (`explain_transient`).

Both retry by the project's one rule (`provisioner.poll.retry`). Time comes from an injectable clock (`now()`,
`sleep(s)`), so tests pass time without waiting. The SDK (and
`requests`) are imported when an error is classified, not with this module: importing the SDK takes a second,
and `plan` loads the steps without calling Databricks.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from provisioner.databricks.errors import describe
from provisioner.errors import CloudError
from provisioner.poll import Backoff, Clock, retry

T = TypeVar("T")


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
    from databricks.sdk.errors import BadRequest

    return (isinstance(e, BadRequest) and getattr(e, "error_code", None) == "MALFORMED_REQUEST"
            and bool(_CREDENTIAL_CHECKS.match(str(e))))


def is_in_use(e: BaseException) -> bool:
    from databricks.sdk.errors import InvalidState, ResourceConflict

    # InvalidState is INVALID_STATE (a 400); ResourceConflict is any 409, the empty-body form included.
    return isinstance(e, InvalidState | ResourceConflict)


def _sdk_gave_up_on(e: BaseException) -> BaseException:
    """The error behind the SDK's `TimeoutError("Timed out after ...")` (raised from the last error once its retry
    budget is spent), else `e` itself."""
    if isinstance(e, TimeoutError) and e.__cause__ is not None:
        return e.__cause__
    return e


def transient_cause(e: BaseException) -> BaseException | None:
    """The transient fault behind a failed call, or None when the failure is not one: throttling, service errors
    and lost connections, which the SDK retries (429 and 503 after Retry-After, connection errors, timeouts), and
    the 5xx it raises at once (500, 504)."""
    import requests
    from databricks.sdk.errors import DeadlineExceeded, InternalError, TemporarilyUnavailable, TooManyRequests

    cause = _sdk_gave_up_on(e)
    transient = (TooManyRequests, TemporarilyUnavailable, InternalError, DeadlineExceeded, requests.ConnectionError,
                 requests.Timeout)
    return cause if isinstance(cause, transient) else None


# The error codes of RFC 6749 section 5.2 with which a token endpoint refuses the client: no wait changes them.
# The SDK raises them as ValueError("<error>: <error_description>"), so the code is read from the text.
_OAUTH_REFUSAL = re.compile(r"\b(invalid_client|unauthorized_client|invalid_grant|invalid_scope|access_denied)\b")


def is_sign_in_refused(e: BaseException) -> bool:
    """The workspace's token endpoint refused the principal (its OAuth error code says so)."""
    return isinstance(e, ValueError) and bool(_OAUTH_REFUSAL.search(str(e)))


def is_workspace_not_ready(e: BaseException) -> bool:
    """What a workspace just RUNNING answers before it serves its API: host not resolving or refusing connections
    (after the SDK's own retries of those), 401/403 while it does not know the principal yet, 404 while its host
    is not routed yet, and ValueError, which the SDK raises when signing in to the host fails (host metadata,
    OIDC discovery, a token endpoint failing), unless the token endpoint refused the principal outright."""
    import requests
    from databricks.sdk.errors import NotFound, PermissionDenied, Unauthenticated

    cause = _sdk_gave_up_on(e)
    if is_sign_in_refused(cause):
        return False
    return isinstance(cause, Unauthenticated | PermissionDenied | NotFound | requests.ConnectionError
                      | requests.Timeout | ValueError)


def is_sign_in_failure(e: BaseException) -> bool:
    """Signing in to a workspace host failed: the SDK raises ValueError when host metadata, OIDC discovery or
    the token endpoint fail (a 5xx or 429 included: it does not retry the token endpoint), and connection errors
    reach the caller as they are when the token is fetched outside an API call (`Config.authenticate`)."""
    import requests

    return isinstance(e, ValueError | requests.ConnectionError | requests.Timeout) and not is_sign_in_refused(e)


CREDENTIAL_VALIDATION = Condition("Failed credentials validation checks (IAM propagation)",
                                  is_credential_validation_failure)
IN_USE = Condition("still in use by a workspace", is_in_use)
WORKSPACE_NOT_READY = Condition("the new workspace's API does not answer yet", is_workspace_not_ready)
SIGN_IN = Condition("signing in to the workspace failed", is_sign_in_failure)


@contextlib.contextmanager
def explain_transient(what: str) -> Iterator[None]:
    """A transient fault the SDK could not retry away becomes a CloudError that says so and that a rerun resumes.

    The SDK retries throttling (429), 503 and lost connections itself, for its retry budget (5 minutes by
    default); nothing here retries them again.
    """
    try:
        yield
    except CloudError:
        raise
    except Exception as e:
        cause = transient_cause(e)
        if cause is None:
            raise
        gave_up = cause is not e
        raise CloudError(
            f"{what} failed: {describe(cause)}. "
            + ("Databricks kept failing like this for as long as the SDK retries (5 minutes by default). "
               if gave_up else "")
            + "The fault is transient (throttling, a service error or a lost connection), not a mistake in the "
              "deployment: run the same `provision` command again; it resumes where this run stopped") from e


def call_with_retry(fn: Callable[[], T], *, condition: Condition, clock: Clock, deadline_seconds: float,
                    on_retry: Callable[[int, BaseException, float], None] | None = None, scale: float = 1.0,
                    initial: float = 2.0, maximum: float = 30.0) -> T:
    """Call `fn`; while it raises `condition`, back off and call again until `deadline_seconds` have passed on
    `clock` (`provisioner.poll.retry`: pauses from `initial` doubling to `maximum`, with up to `initial` of
    jitter, times the poll scale).

    `on_retry(attempt, error, seconds_left)` runs before each pause (to show the retry on the progress line).
    Anything else `fn` raises propagates at once; when the deadline passes, the last matching error does.
    """
    return retry(fn, when=condition.matches, backoff=Backoff(maximum, first=initial, growth=2.0, jitter=initial),
                 deadline=deadline_seconds, clock=clock, scale=scale, counted=False, on_retry=on_retry)


class WaitTimeout(Exception):
    """`wait_until` ran out of time; the message says what was awaited and the last thing seen."""


class _NotYet(Exception):
    """`wait_until`'s check found it not done yet."""


def wait_until(check: Callable[[], tuple[bool, Any]], *, clock: Clock, timeout_seconds: float, what: str,
               scale: float = 1.0, max_interval: float = 10.0) -> Any:
    """Poll `check` (returning `(done, value)`) until done, on `clock` (`provisioner.poll.retry`: pauses from 1 s
    doubling to `max_interval`, times `scale`).

    Returns the last value; raises `WaitTimeout` after `timeout_seconds` on `clock`.
    """

    def once() -> Any:
        done, value = check()
        if not done:
            raise _NotYet
        return value

    try:
        return retry(once, when=lambda e: isinstance(e, _NotYet), backoff=Backoff(max_interval, first=1.0, growth=2.0),
                     deadline=timeout_seconds, clock=clock, scale=scale, counted=False)
    except _NotYet:
        raise WaitTimeout(f"timed out after {duration(timeout_seconds)} waiting for {what}") from None


def duration(seconds: float) -> str:
    """`45 s`, `5 min`, `4 min 12 s`: for messages."""
    seconds = round(seconds)
    if seconds < 120:
        return f"{seconds} s"
    return f"{seconds // 60} min" + (f" {seconds % 60} s" if seconds % 60 else "")
