"""S3 bucket policies in the sandbox: moto evaluates a bucket policy without its conditions.

moto 5 (`FakeBucket.get_permission`) ignores `Condition`, so the root bucket's `DenyInsecureTransport`
statement (Deny `s3:*` when `aws:SecureTransport` is `false`) would refuse every object request. The sandbox's
S3 stands for AWS's endpoints, which are reached over TLS, so a request to it is taken as secure: the policy is
evaluated without Deny statements whose only condition is `aws:SecureTransport = false`. Every other statement
is evaluated as moto does.
"""

from __future__ import annotations

import json
import threading
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


def install() -> None:
    global _installed
    with _lock:
        if _installed:
            return
        from moto.iam.access_control import IAMPolicy, PermissionResult
        from moto.s3.models import FakeBucket

        def get_permission(self: Any, action: str, resource: str) -> Any:
            if self.policy is None:
                return PermissionResult.NEUTRAL
            return IAMPolicy(secure_request_policy(self.policy)).is_action_permitted(action, resource)

        FakeBucket.get_permission = get_permission  # type: ignore[method-assign]
        _installed = True
