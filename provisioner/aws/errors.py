"""Errors from AWS, translated once at the boundary.

"Missing" on read gives `None`; "missing" on delete gives "already gone" (`False`); anything else becomes a
`CloudError` whose message says what we were doing, chained to the original.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError, WaiterError

from provisioner.errors import CloudError

__all__ = ["CloudError", "error_code", "error_message", "gone_if_missing", "none_if_missing", "translate"]

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


@contextlib.contextmanager
def translate(what: str) -> Iterator[None]:
    """Turn any AWS SDK failure inside the block into a CloudError saying what failed."""
    try:
        yield
    except ClientError as e:
        raise CloudError(f"{what} failed: {error_message(e)}") from e
    except WaiterError as e:
        reason = e.last_response.get("Error", {}).get("Message") if isinstance(e.last_response, dict) else None
        raise CloudError(f"{what} failed: {reason or e}") from e
    except BotoCoreError as e:
        raise CloudError(f"{what} failed: {e}") from e


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
