"""Exit codes (DESIGN.md contract) and the one error every bad input becomes."""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    OK = 0
    CLOUD_FAILED = 1
    BAD_INPUT = 2
    NOT_HEALTHY = 3
    INTERRUPTED = 130


class UsageError(Exception):
    """Bad input: a flag, an environment variable, missing credentials. One line, exit 2, no cloud call."""
