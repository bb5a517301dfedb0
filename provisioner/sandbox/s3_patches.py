"""S3 in the sandbox: bucket policies with their conditions, and conditional writes that are atomic.

moto checks `If-None-Match: *` and `If-Match` and then writes, in two steps (`S3Response.put_object`,
`delete_object`); two requests at once can both pass the check, where AWS lets exactly one win. The state
backend's lock relies on that, so every object write and delete here runs one at a time.

Bucket policies: moto evaluates a bucket policy without its conditions.

moto 5 (`FakeBucket.get_permission`) ignores `Condition`, so the root bucket's `DenyInsecureTransport`
statement (Deny `s3:*` when `aws:SecureTransport` is `false`) would refuse every object request. The sandbox's
S3 stands for AWS's endpoints, which are reached over TLS, so a request to it is taken as secure: the policy is
evaluated without Deny statements whose only condition is `aws:SecureTransport = false`. Every other statement
is evaluated as moto does.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable
from typing import Any

_installed = False
_lock = threading.Lock()


def _insecure_transport_only(statement: dict[str, Any]) -> bool:
    condition = statement.get("Condition")
    if statement.get("Effect") != "Deny" or not isinstance(condition, dict) or list(condition) != ["Bool"]:
        return False
    clause = condition["Bool"]
    return isinstance(clause, dict) and {k.lower(): str(v).lower() for k, v in clause.items()} == {
        "aws:securetransport": "false"}


def secure_request_policy(policy: bytes | str) -> str:
    """The policy as it applies to a request made over TLS."""
    document = json.loads(policy.decode() if isinstance(policy, bytes) else policy)
    statements = document.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    document["Statement"] = [s for s in statements if not _insecure_transport_only(s)]
    return json.dumps(document)


# One object write at a time: a conditional write's check and its write are then one step, as on AWS.
_writes = threading.RLock()


def _one_at_a_time(write: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(write)
    def serialized(self: Any, *args: Any, **kwargs: Any) -> Any:
        with _writes:
            return write(self, *args, **kwargs)

    return serialized


def install() -> None:
    global _installed
    with _lock:
        if _installed:
            return
        from moto.iam.access_control import IAMPolicy, PermissionResult
        from moto.s3.models import FakeBucket
        from moto.s3.responses import S3Response

        for name in ("put_object", "delete_object"):
            setattr(S3Response, name, _one_at_a_time(getattr(S3Response, name)))

        def get_permission(self: Any, action: str, resource: str) -> Any:
            if self.policy is None:
                return PermissionResult.NEUTRAL
            return IAMPolicy(secure_request_policy(self.policy)).is_action_permitted(action, resource)

        FakeBucket.get_permission = get_permission  # type: ignore[method-assign]
        _installed = True
