"""Errors from the Databricks SDK, translated once at the boundary (as `provisioner.aws.errors` does for AWS).

"Missing" on read gives `None`; "missing" on delete gives "already gone" (`False`); anything else becomes a
`CloudError` saying what we were doing, chained to the original. No message ever carries a secret: the SDK masks
its own configuration, and `scrub` removes the client secret, the password and every token we handled.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import requests
from databricks.sdk.errors import NotFound, OperationFailed
from databricks.sdk.errors.base import DatabricksError

from provisioner.aws.errors import CloudError

T = TypeVar("T")

_SECRET_VARS = ("DATABRICKS_CLIENT_SECRET", "DATABRICKS_PASSWORD", "DATABRICKS_TOKEN")
_known_secrets: set[str] = set()
_secrets_lock = threading.Lock()


def remember_secret(value: str) -> None:
    """A secret this process handled (a new PAT): never to appear in a message."""
    if value:
        with _secrets_lock:
            _known_secrets.add(value)


def scrub(text: str) -> str:
    """`text` with every known secret replaced by `***`."""
    with _secrets_lock:
        secrets = set(_known_secrets)
    secrets.update(v for v in (os.environ.get(name) for name in _SECRET_VARS) if v)
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


def describe(e: BaseException) -> str:
    """`ERROR_CODE: message` for an SDK error; the message alone for anything else."""
    message = str(e).split(". Config:")[0].strip()
    code = getattr(e, "error_code", None)
    if code and not message.startswith(str(code)):
        message = f"{code}: {message}" if message else str(code)
    return scrub(message or type(e).__name__)


@contextlib.contextmanager
def translate(what: str) -> Iterator[None]:
    """Turn any Databricks SDK failure inside the block into a CloudError saying what failed."""
    try:
        yield
    except CloudError:
        raise
    except DatabricksError as e:
        raise CloudError(f"{what} failed: {describe(e)}") from e
    except (OperationFailed, TimeoutError, requests.RequestException) as e:
        raise CloudError(f"{what} failed: {describe(e)}") from e


def none_if_missing(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
    """Call a read; `None` when Databricks says the object is not there (404)."""
    try:
        return fn(*args, **kwargs)
    except NotFound:
        return None


def gone_if_missing(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> bool:
    """Call a delete; `False` when it was already gone (which is success), `True` when it deleted something."""
    try:
        fn(*args, **kwargs)
        return True
    except NotFound:
        return False
