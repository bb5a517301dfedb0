"""What a step runs with: the config and its layout, the state file, cloud clients, and the injectable
things (clock, DNS resolver, progress reporting) that let tests and the sandbox control time and the world.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from provisioner.design.config import Config
from provisioner.design.layout import Layout, layout
from provisioner.design.naming import tags
from provisioner.state import State

if TYPE_CHECKING:
    from provisioner.aws.clients import Aws
    from provisioner.steps.base import Resource, Step


class Clock:
    """Wall-clock time; tests substitute a fake that advances instead of sleeping."""

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


def resolve_ipv4(host: str) -> list[str]:
    """The host's current IPv4 addresses, sorted (used to pin the legacy metastore's 3306 rule)."""
    infos = socket.getaddrinfo(host, 3306, family=socket.AF_INET, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


Reporter = Callable[[str, str, str], None]  # (step key, state, message)


class Reads:
    """Answers shared by every step of one command: a describe of every resource of a kind in the deployment is
    made once, by the first step that asks (the others wait for it), instead of once per step. A step that
    needs what is there now, not what was there when the command started, asks for a fresh read."""

    def __init__(self) -> None:
        self._answers: dict[str, Any] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def peek(self, key: str, load: Callable[[], Any]) -> Any:
        """The shared answer if a step read it already, else `load()` now, not kept for others (an answer that a
        change this step is about to make would leave stale)."""
        with self._lock:
            if key in self._answers:
                return self._answers[key]
        return load()

    def get(self, key: str, load: Callable[[], Any], fresh: bool = False) -> Any:
        with self._lock:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if fresh or key not in self._answers:
                self._answers[key] = load()
            return self._answers[key]


def _no_report(key: str, status: str, message: str) -> None:
    return None


class Cancelled(BaseException):
    """Raised in a step's thread at its next progress report once the command was interrupted (a BaseException,
    so no step's error handling turns it into a failure to carry on from)."""


def _cancellable(ctx: Context, report: Reporter) -> Reporter:
    def checked(key: str, status: str, message: str) -> None:
        if ctx.cancelled.is_set():
            raise Cancelled(key)
        report(key, status, message)

    return checked


@dataclass
class Context:
    config: Config
    state: State
    aws_factory: Callable[[], Aws] | None = None
    databricks_factory: Callable[[], Any] | None = None
    clock: Clock = field(default_factory=Clock)
    resolver: Callable[[str], list[str]] = resolve_ipv4
    report: Reporter = _no_report
    # Multiplies every polling interval: 1.0 against AWS, smaller in the sandbox, 0 in unit tests.
    poll_scale: float = 1.0
    delete_data: bool = False
    # `down --delete-logs`: also delete the log groups (kept by default: they are the audit trail).
    delete_logs: bool = False
    # Whether a step may take a resource as proven by what other reads show (a route to it, a NAT gateway holding
    # it) instead of describing it; `down`, which must find every twin it deletes, describes everything.
    proofs: bool = True
    _aws: Aws | None = None
    _databricks: Any = None
    # Set when the command is interrupted: steps still running stop at their next progress report.
    cancelled: threading.Event = field(default_factory=threading.Event)
    reads: Reads = field(default_factory=Reads)
    _clients_lock: threading.Lock = field(default_factory=threading.Lock)
    # Its own lock: a Databricks sign-in under way must not hold up the steps that only need AWS.
    _databricks_lock: threading.Lock = field(default_factory=threading.Lock)

    def __setattr__(self, name: str, value: Any) -> None:
        # Every progress report first checks for an interrupt, whoever set the reporter.
        if name == "report":
            value = _cancellable(self, value)
        super().__setattr__(name, value)

    @property
    def layout(self) -> Layout:
        return layout(self.config)

    @property
    def deployment(self) -> str:
        return self.config.deployment

    @property
    def aws(self) -> Aws:
        with self._clients_lock:  # steps start in parallel: one client factory, built once
            if self._aws is None:
                if self.aws_factory is None:
                    raise RuntimeError("this command runs without AWS access")
                self._aws = self.aws_factory()
            return self._aws

    @property
    def databricks(self) -> Any:
        """The Databricks account client (built on first use, so AWS-only work never needs its auth)."""
        with self._databricks_lock:
            if self._databricks is None:
                if self.databricks_factory is None:
                    raise RuntimeError("this command runs without Databricks access")
                self._databricks = self.databricks_factory()
            return self._databricks

    def tags(self, step: Step, name: str | None = None) -> dict[str, str]:
        return tags(self.deployment, step.key, name or step.name, self.config.tags)

    def record(self, step: Step, res: Resource) -> None:
        """Save a resource's ID (and outputs) the moment it is known."""
        self.state.record(step.key, res.id, spec=step.spec_hash(), outputs=res.outputs)

    def output(self, key: str, name: str = "id") -> Any:
        """Another step's ID or output, as recorded in this run (the engine runs `needs` first)."""
        entry = self.state.resource(key)
        if entry is None:
            raise RuntimeError(f"{key} has not been created yet")
        return entry["id"] if name == "id" else entry.get("outputs", {}).get(name)

    def poll_delay(self, seconds: float) -> float:
        return seconds * self.poll_scale
