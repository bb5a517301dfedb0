"""boto3 client factory: one session, clients made once and shared across threads.

Retries: botocore's `standard` mode for throttling and 5xx (the first of the three retry layers in
DESIGN.md). `AWS_ENDPOINT_URL` (and the per-service variants) are honoured by botocore itself.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import boto3
from botocore.config import Config as BotoConfig

USER_AGENT = "provisioner/0.1"
# (event name, handler) registered on every session this module makes: how tests count API calls.
SESSION_HOOKS: list[tuple[str, Callable[..., Any]]] = []
READ_PREFIXES = ("Describe", "Get", "List", "Head", "Search")


def is_mutating(operation: str) -> bool:
    return not operation.startswith(READ_PREFIXES)


def new_session(region: str) -> boto3.Session:
    session = boto3.Session(region_name=region)
    for event, handler in SESSION_HOOKS:
        session.events.register(event, handler)
    return session


class Aws:
    def __init__(self, region: str, session: boto3.Session | None = None, max_attempts: int = 5) -> None:
        self.region = region
        self.session = session or new_session(region)
        self._config = BotoConfig(region_name=region, retries={"mode": "standard", "max_attempts": max_attempts},
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

    def account_id(self) -> str:
        if self._account_id is None:
            self._account_id = str(self.client("sts").get_caller_identity()["Account"])
        return self._account_id
