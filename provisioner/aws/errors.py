"""Errors from AWS, translated once at the boundary.

"Missing" on read gives `None`; "missing" on delete gives "already gone" (`False`); anything else becomes a
`CloudError` whose message says what we were doing, chained to the original.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
    WaiterError,
)

from provisioner.errors import CloudError

__all__ = ["CloudError", "applied", "error_code", "error_message", "gone_if_missing", "is_transient", "none_if_missing",
           "translate"]

# Codes AWS answers when the fault is on its side or in the network, not in the request: worth another try.
TRANSIENT_CODES = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "RequestLimitExceeded", "RequestThrottled",
    "RequestThrottledException", "TooManyRequestsException", "SlowDown", "EC2ThrottledException",
    "ServiceUnavailable", "ServiceUnavailableException", "Unavailable", "InternalError", "InternalFailure",
    "InternalServerError", "InternalServiceError", "InternalServiceErrorException", "RequestTimeout",
    "RequestTimeoutException", "PriorRequestNotComplete", "IDPCommunicationError", "BandwidthLimitExceeded",
})
TRANSIENT_NOTE = ("a transient fault (AWS or the network did not answer as it should, even after retries); "
                  "rerun the command: it resumes where it stopped")

T = TypeVar("T")


def error_code(e: BaseException) -> str:
    if isinstance(e, ClientError):
        return str(e.response.get("Error", {}).get("Code", ""))
    return ""


def error_message(e: BaseException) -> str:
    if isinstance(e, ClientError):
        err = e.response.get("Error", {})
        return f"{err.get('Code', 'Error')}: {err.get('Message', '')}".strip()
    return str(e)


def is_transient(e: BaseException) -> bool:
    """A throttle, a 5xx, a timeout or a dropped connection: the request may or may not have taken effect."""
    if isinstance(e, ClientError):
        status = int(e.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        return error_code(e) in TRANSIENT_CODES or status >= 500 or status == 429
    return isinstance(e, EndpointConnectionError | ConnectionClosedError | ReadTimeoutError | ConnectTimeoutError)


@contextlib.contextmanager
def translate(what: str) -> Iterator[None]:
    """Turn any AWS SDK failure inside the block into a CloudError saying what failed (and, for a fault that
    is not the request's, that a rerun resumes)."""
    try:
        yield
    except ClientError as e:
        note = f" ({TRANSIENT_NOTE})" if is_transient(e) else ""
        raise CloudError(f"{what} failed: {error_message(e)}{note}") from e
    except WaiterError as e:
        reason = e.last_response.get("Error", {}).get("Message") if isinstance(e.last_response, dict) else None
        raise CloudError(f"{what} failed: {reason or e}") from e
    except BotoCoreError as e:
        note = f" ({TRANSIENT_NOTE})" if is_transient(e) else ""
        raise CloudError(f"{what} failed: {e}{note}") from e


def none_if_missing(codes: tuple[str, ...], fn: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
    """Call a read; `None` when AWS says the thing is not there."""
    try:
        return fn(*args, **kwargs)
    except ClientError as e:
        if error_code(e) in codes:
            return None
        raise


def gone_if_missing(codes: tuple[str, ...], fn: Callable[..., Any], *args: Any, **kwargs: Any) -> bool:
    """Call a delete; `False` when it was already gone (which is success), `True` when it deleted something."""
    try:
        fn(*args, **kwargs)
        return True
    except ClientError as e:
        if error_code(e) in codes:
            return False
        raise


def applied(codes: tuple[str, ...], fn: Callable[..., Any], *args: Any, **kwargs: Any) -> bool:
    """Call a change: `True` when this call made it, `False` when AWS answers that it is already so (one of
    `codes`), as after our own earlier attempt whose reply was lost. Where that answer is ambiguous (so, but
    how?), the caller checks."""
    return gone_if_missing(codes, fn, *args, **kwargs)
