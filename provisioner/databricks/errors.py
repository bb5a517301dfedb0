"""Errors from the Databricks SDK, translated once at the boundary (as `provisioner.aws.errors` does for AWS).

"Missing" on read gives `None`; "missing" on delete gives "already gone" (`False`); anything else becomes a
`CloudError` saying what we were doing, chained to the original. No message ever carries a secret: the SDK masks
its own configuration, and `scrub` (`provisioner.databricks.secrets`) removes the client secret, the password,
every token we handled and any echoed Authorization header.

The SDK is imported only when an error is being translated: importing it takes a second, and `plan` imports the
steps that use these helpers without ever calling Databricks.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from provisioner.databricks.secrets import remember_secret, scrub
from provisioner.errors import CloudError

__all__ = ["describe", "gone_if_missing", "none_if_missing", "remember_secret", "scrub", "translate"]

T = TypeVar("T")


def describe(e: BaseException) -> str:
    """`ERROR_CODE: message` for an SDK error; the message alone for anything else."""
    message = str(e).split(". Config:")[0].strip()
    code = getattr(e, "error_code", None)
    if code and not message.startswith(str(code)):
        message = f"{code}: {message}" if message else str(code)
    return scrub(message or type(e).__name__)


def _sdk_failures() -> tuple[type[BaseException], ...]:
    """What the SDK raises when a call fails. ValueError: its authentication raises that when it configures a
    client or fetches or refreshes a token mid-run (a revoked secret, an unreachable token endpoint)."""
    import requests
    from databricks.sdk.errors import OperationFailed
    from databricks.sdk.errors.base import DatabricksError

    return DatabricksError, OperationFailed, TimeoutError, requests.RequestException, ValueError


def _is_not_found(e: BaseException) -> bool:
    from databricks.sdk.errors import NotFound

    return isinstance(e, NotFound)


@contextlib.contextmanager
def translate(what: str) -> Iterator[None]:
    """Turn any Databricks SDK failure inside the block into a CloudError saying what failed (its text scrubbed)."""
    try:
        yield
    except CloudError:
        raise
    except Exception as e:
        if isinstance(e, _sdk_failures()):
            raise CloudError(f"{what} failed: {describe(e)}") from e
        raise


def none_if_missing(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
    """Call a read; `None` when Databricks says the object is not there (404)."""
    try:
        return fn(*args, **kwargs)
    except Exception as e:
        if _is_not_found(e):
            return None
        raise


def gone_if_missing(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> bool:
    """Call a delete; `False` when it was already gone (which is success), `True` when it deleted something."""
    try:
        fn(*args, **kwargs)
        return True
    except Exception as e:
        if _is_not_found(e):
            return False
        raise
