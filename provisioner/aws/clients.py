"""boto3 client factory: one session, clients made once and shared across threads.

Retries: botocore's `adaptive` mode for throttling and 5xx (the first of the three retry layers in
DESIGN.md): `standard`'s retries, plus client-side rate limiting once AWS starts throttling, so many workers
calling one service slow down together instead of using up their attempts. `AWS_ENDPOINT_URL` (and the
per-service variants) are honoured by botocore itself.

Connections: each client keeps at least as many pooled connections as there are workers calling it at once
(botocore's default of 10 makes urllib3 drop and reopen connections, and warn, under `--workers 32`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import boto3
from botocore.config import Config as BotoConfig

USER_AGENT = "provisioner/0.1"
# Attempts per request (botocore's `max_attempts` counts the retries): with backoff capped at 20 s, ten attempts
# ride out a minute of throttling or an outage of a few seconds; a fault that outlasts them is reported as
# transient, and a rerun resumes.
MAX_ATTEMPTS = 10
DEFAULT_MAX_POOL_CONNECTIONS = 10  # botocore's own default
# (event name, handler) registered on every session this module makes: how tests count API calls.
SESSION_HOOKS: list[tuple[str, Callable[..., Any]]] = []
READ_PREFIXES = ("Describe", "Get", "List", "Head", "Search", "Simulate")  # Simulate*: IAM policy simulation


def is_mutating(operation: str) -> bool:
    return not operation.startswith(READ_PREFIXES)


def new_session(region: str) -> boto3.Session:
    session = boto3.Session(region_name=region)
    for event, handler in SESSION_HOOKS:
        session.events.register(event, handler)
    return session


class Aws:
    def __init__(self, region: str, session: boto3.Session | None = None, max_attempts: int = MAX_ATTEMPTS,
                 max_pool_connections: int = DEFAULT_MAX_POOL_CONNECTIONS) -> None:
        self.region = region
        self.session = session or new_session(region)
        self._config = BotoConfig(region_name=region, retries={"mode": "adaptive", "max_attempts": max_attempts},
                                  max_pool_connections=max(max_pool_connections, DEFAULT_MAX_POOL_CONNECTIONS),
                                  user_agent_extra=USER_AGENT)
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._account_id: str | None = None

    def client(self, service: str) -> Any:
        # Session.client() is not thread-safe; the clients it returns are.
        with self._lock:
            if service not in self._clients:
                self._clients[service] = self.session.client(service, config=self._config)
            return self._clients[service]

    def once(self, service: str) -> Any:
        """A client that sends each request once: for creates AWS cannot make idempotent, where a retry after a
        lost reply would make a twin (the caller looks for what the first attempt made instead)."""
        key = f"{service}#once"
        with self._lock:
            if key not in self._clients:
                config = self._config.merge(BotoConfig(retries={"mode": "standard", "total_max_attempts": 1}))
                self._clients[key] = self.session.client(service, config=config)
            return self._clients[key]

    @property
    def ec2(self) -> Any:
        return self.client("ec2")

    @property
    def iam(self) -> Any:
        return self.client("iam")

    @property
    def s3(self) -> Any:
        return self.client("s3")

    @property
    def network_firewall(self) -> Any:
        return self.client("network-firewall")

    @property
    def logs(self) -> Any:
        return self.client("logs")

    @property
    def route53resolver(self) -> Any:
        return self.client("route53resolver")

    @property
    def tagging(self) -> Any:
        """The Resource Groups Tagging API (`tag:` in IAM policies)."""
        return self.client("resourcegroupstaggingapi")

    def account_id(self) -> str:
        if self._account_id is None:
            self._account_id = str(self.client("sts").get_caller_identity()["Account"])
        return self._account_id
