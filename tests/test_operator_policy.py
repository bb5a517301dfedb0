"""docs/operator-policy.json grants every AWS action provision performs: checked against a real run."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import config_text

POLICY = Path(__file__).resolve().parent.parent / "docs" / "operator-policy.json"

# S3 authorizes most operations under an action of another name.
S3_ACTIONS = {
    "HeadBucket": ["s3:ListBucket"],
    "GetPublicAccessBlock": ["s3:GetBucketPublicAccessBlock"],
    "PutPublicAccessBlock": ["s3:PutBucketPublicAccessBlock"],
    "GetBucketEncryption": ["s3:GetEncryptionConfiguration"],
    "PutBucketEncryption": ["s3:PutEncryptionConfiguration"],
    "ListObjectVersions": ["s3:ListBucketVersions"],
    "DeleteObjects": ["s3:DeleteObject", "s3:DeleteObjectVersion"],
    "ListObjectsV2": ["s3:ListBucket"],
}
# Services whose IAM prefix is not the name they sign requests with.
IAM_PREFIXES = {"tagging": "tag"}  # the Resource Groups Tagging API
# Calls that need no permission.
FREE = {("sts", "GetCallerIdentity")}


def iam_actions(operations: set[tuple[str, str]]) -> set[str]:
    actions: set[str] = set()
    for service, operation in operations - FREE:
        if service == "s3":
            actions.update(S3_ACTIONS.get(operation, [f"s3:{operation}"]))
        else:
            actions.add(f"{IAM_PREFIXES.get(service, service)}:{operation}")
    return actions


def granted() -> set[str]:
    doc = json.loads(POLICY.read_text())
    return {action for statement in doc["Statement"] if statement["Effect"] == "Allow"
            for action in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])}


def test_operator_policy_covers_up_status_and_down(aws, workdir, calls):
    workdir.write_config(config_text("perms", hub_azs=2))
    assert workdir.run("up").code == 0
    assert workdir.run("up").code == 0
    assert workdir.run("status").code == 0
    assert workdir.run("down", "--yes").code == 0
    used = iam_actions(calls.operations)
    missing = sorted(used - granted())
    assert not missing, f"docs/operator-policy.json lacks {missing}"
