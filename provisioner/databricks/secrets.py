"""Keeping Databricks secrets out of what provision prints: `scrub` for messages, `ScrubbingFilter` for logs.

The secrets are the client secret, the password and every token this process handled: the environment's
(`DATABRICKS_CLIENT_SECRET`, `DATABRICKS_PASSWORD`, `DATABRICKS_TOKEN`), those read from a `~/.databrickscfg`
profile, and personal access tokens made or read from the state file (`remember_secret`). Credentials in an
echoed HTTP header (`Authorization: Bearer ...`, `Basic ...`) are masked whatever their value, since an OAuth
access token or a base64 `user:password` is never a value provision knows.

No third-party imports: the CLI scrubs its tracebacks with this even when the SDK is absent.
"""

from __future__ import annotations

import logging
import os
import re
import threading

SECRET_VARS = ("DATABRICKS_CLIENT_SECRET", "DATABRICKS_PASSWORD", "DATABRICKS_TOKEN")
MASK = "***"
# Shorter values would mask ordinary words; the SDK's own masking covers its configuration.
MIN_SECRET_LENGTH = 4

_known: set[str] = set()
_lock = threading.Lock()

# An HTTP credential as it would appear in an echoed request (`Authorization: Bearer <token>`, `Basic <b64>`, a
# bare `Bearer <token>`), and personal access tokens (`dapi` + 32 hex digits) wherever they are.
_HEADER = re.compile(r"(?i)\b(authorization['\"]?\s*[:=]\s*['\"]?)(?:(?:bearer|basic|token)\s+)?[^\s'\",}]+")
# (A credential has a digit or a symbol in it: "Basic authentication" is words.)
_SCHEME = re.compile(r"(?i)\b(bearer|basic)\s+(?=[A-Za-z]*[0-9._~+/=-])[A-Za-z0-9._~+/=-]{8,}")
_PAT = re.compile(r"\bdapi[0-9a-f]{32}(?:-\d+)?\b")


def remember_secret(value: str | None) -> None:
    """A secret this process handled (a PAT, a profile's client secret): never to appear in a message."""
    if value and len(value) >= MIN_SECRET_LENGTH:
        with _lock:
            _known.add(value)


def scrub(text: str) -> str:
    """`text` with every known secret, and every HTTP credential, replaced by `***`."""
    with _lock:
        secrets = set(_known)
    secrets.update(v for v in (os.environ.get(name) for name in SECRET_VARS) if v and len(v) >= MIN_SECRET_LENGTH)
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, MASK)
    text = _HEADER.sub(lambda m: f"{m.group(1)}{MASK}", text)
    text = _SCHEME.sub(lambda m: f"{m.group(1)} {MASK}", text)
    return _PAT.sub(MASK, text)


class ScrubbingFilter(logging.Filter):
    """Rewrites a log record's message with `scrub` (arguments included) before any handler formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = scrub(record.getMessage())
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            import traceback

            record.exc_text = scrub("".join(traceback.format_exception(*record.exc_info)).rstrip())
            record.exc_info = None
        return True
