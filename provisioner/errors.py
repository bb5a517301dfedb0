"""Exit codes (DESIGN.md contract) and the errors every layer raises: bad input, and a failed cloud operation."""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    OK = 0
    CLOUD_FAILED = 1
    BAD_INPUT = 2
    NOT_HEALTHY = 3
    INTERRUPTED = 130


class CloudError(Exception):
    """A cloud operation (AWS or Databricks) failed. Exit code 1; the state file keeps what was created."""


class UsageError(Exception):
    """Bad input: a flag, an environment variable, missing credentials. One line, exit 2, no cloud call."""
