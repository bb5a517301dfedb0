"""A fault-injecting HTTP proxy in front of the sandbox: the network as it is on a bad day.

Each request is, with probability `rate`, failed: half of those before they reach the service (a 503, nothing
happened), half after (the service did the work, and the reply is lost: a 503 or a dropped connection, so the
client cannot tell it took effect). The choice is drawn from a seeded generator, so a failing run can be replayed.
Nothing else is changed: bodies and headers pass through as they are.

It fronts any HTTP service: the emulated AWS (point `AWS_ENDPOINT_URL` at `proxy.url`) or the emulated Databricks
account API. Requests to `/moto-api/` (the emulator's own controls) are never failed.
"""

from __future__ import annotations

import http.client
import json
import random
import threading
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

BEFORE = "before"       # failed before the service saw it
AFTER_503 = "after-503"  # done by the service, the reply replaced by a 503
AFTER_DROP = "after-drop"  # done by the service, the connection closed without a reply
FAULTS = (BEFORE, AFTER_503, AFTER_DROP)
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
              "transfer-encoding", "upgrade", "content-length"}


@dataclass
class FaultPlan:
    """How often to fail, and a record of what was failed (by kind)."""

    rate: float
    seed: int = 0
    exempt_prefixes: tuple[str, ...] = ("/moto-api/",)
    injected: Counter[str] = field(default_factory=Counter)
    passed: int = 0
    _rng: random.Random = field(init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"fault rate {self.rate} is not between 0 and 1")
        self._rng = random.Random(self.seed)

    def draw(self, path: str) -> str | None:
        if path.startswith(self.exempt_prefixes):
            return None
        with self._lock:
            roll, which = self._rng.random(), self._rng.random()
            if roll >= self.rate:
                self.passed += 1
                return None
            fault = BEFORE if which < 0.5 else (AFTER_503 if which < 0.75 else AFTER_DROP)
            self.injected[fault] += 1
            return fault


MESSAGE = "The service is unavailable. Please try again shortly."


def error_body(headers: dict[str, str], body: bytes) -> tuple[str, bytes]:
    """A 503's body in the shape the request's protocol answers errors with, as AWS sends them (a client that
    cannot parse the error would not see a throttle or an outage, but a broken service)."""
    lower = {k.lower(): v for k, v in headers.items()}
    if "x-amz-target" in lower or "json" in lower.get("content-type", ""):
        doc = {"__type": "ServiceUnavailableException", "message": MESSAGE}
        return "application/x-amz-json-1.1", json.dumps(doc).encode()
    if b"Action=" in body and b"Version=2016-11-15" in body:  # EC2's query dialect
        return "text/xml", (f"<Response><Errors><Error><Code>Unavailable</Code><Message>{MESSAGE}</Message></Error>"
                            "</Errors><RequestID>fault-proxy</RequestID></Response>").encode()
    if b"Action=" in body:  # the query protocol (IAM, STS)
        return "text/xml", ("<ErrorResponse><Error><Type>Receiver</Type><Code>ServiceUnavailable</Code>"
                            f"<Message>{MESSAGE}</Message></Error><RequestId>fault-proxy</RequestId>"
                            "</ErrorResponse>").encode()
    return "application/xml", (f"<Error><Code>ServiceUnavailable</Code><Message>{MESSAGE}</Message>"
                               "<RequestId>fault-proxy</RequestId></Error>").encode()


class FaultyProxy:
    """Serves on 127.0.0.1 (a free port), forwarding to `target` under `plan`."""

    def __init__(self, target: str, plan: FaultPlan) -> None:
        self.target = urllib.parse.urlsplit(target)
        self.plan = plan
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-proxy", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FaultyProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FaultyProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            _body = b""

            def log_message(self, format: str, *args: Any) -> None:
                return None

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                self._body = body
                fault = proxy.plan.draw(self.path)
                if fault == BEFORE:
                    self._unavailable()
                    return
                connection = http.client.HTTPConnection(proxy.target.hostname or "127.0.0.1", proxy.target.port,
                                                        timeout=60)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                    connection.request(self.command, self.path, body=body, headers=headers)
                    answer = connection.getresponse()
                    payload = answer.read()
                finally:
                    connection.close()
                if fault == AFTER_503:
                    self._unavailable()
                    return
                if fault == AFTER_DROP:
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self.send_response(answer.status, answer.reason)
                for key, value in answer.getheaders():
                    if key.lower() not in HOP_BY_HOP:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _unavailable(self) -> None:
                content_type, payload = error_body(dict(self.headers.items()), self._body)
                self.send_response(503, "Service Unavailable")
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _forward

        return Handler
