"""Where state documents live: a local directory (the default) or an S3 bucket shared by a team or a pipeline.

`[state] backend = "s3://BUCKET/PREFIX"` in provision.toml, or `PROVISION_STATE=s3://...` (which wins). In S3:

- `<prefix>/<deployment>.json` is the state document. Every write is conditional on the ETag read
  (`If-Match`; `If-None-Match: *` for the first), so a write based on a stale read fails instead of losing an
  update.
- `<prefix>/<deployment>.lock` is the lock: created with `If-None-Match: *`, so only one command can hold it; it
  says who, on which host, running which command, since when. A second command fails at once naming the holder;
  `provision unlock` removes a lock whose holder died.
- Workspace tokens are never in the document: each is a Secrets Manager secret, and the document holds its ARN.
- The bucket must have versioning (every earlier state stays recoverable) and default encryption: checked first.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provisioner import state as local
from provisioner.errors import UsageError
from provisioner.state import State, StateError

ENV = "PROVISION_STATE"


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def holder(command: str) -> dict[str, Any]:
    # `lock` makes each lock object's ETag its own: a holder releases its lock by that ETag, never one that two
    # commands of the same user, host, pid and second would share (containers on one host can have the same pid).
    return {"who": getpass.getuser(), "host": socket.gethostname(), "pid": os.getpid(), "command": command,
            "since": _now(), "lock": uuid.uuid4().hex}


def describe_holder(doc: dict[str, Any]) -> str:
    return (f"{doc.get('who', '?')} on {doc.get('host', '?')} (pid {doc.get('pid', '?')}) running "
            f"`provision {doc.get('command', '?')}` since {doc.get('since', '?')}")


@dataclass(frozen=True)
class S3Url:
    bucket: str
    prefix: str

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    def key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name


def parse(url: str) -> S3Url:
    if not url.startswith("s3://"):
        raise UsageError(f"state backend {url!r} is not an s3:// URL; use s3://BUCKET/PREFIX, or leave it unset for "
                         "the local state directory")
    bucket, _, prefix = url[len("s3://"):].partition("/")
    if not bucket:
        raise UsageError(f"state backend {url!r} names no bucket; use s3://BUCKET/PREFIX")
    return S3Url(bucket, prefix.strip("/"))


class LocalBackend:
    """State files in a directory: `<dir>/<deployment>.json`, 0600, an flock per deployment (state.py)."""

    kind = "local"

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.where = str(state_dir)

    def load(self, deployment: str) -> State:
        return local.load(self.state_dir, deployment)

    @contextlib.contextmanager
    def locked(self, deployment: str, command: str) -> Iterator[None]:
        with local.locked(self.state_dir, deployment):
            yield

    def read_doc(self, deployment: str) -> dict[str, Any] | None:
        state = self.load(deployment)
        if not state.exists:
            return None
        doc = state.snapshot()
        return doc

    def write_new(self, doc: dict[str, Any]) -> None:
        path = local.state_path(self.state_dir, doc["deployment"])
        if path.exists():
            raise UsageError(f"{path} already exists; provision never overwrites a state: move it away first")
        State(path, doc).save()

    def deployments(self) -> list[dict[str, Any]]:
        found = []
        for path in sorted(self.state_dir.glob("*.json")) if self.state_dir.is_dir() else []:
            with contextlib.suppress(OSError, ValueError):
                doc = json.loads(path.read_text())
                if isinstance(doc, dict) and doc.get("deployment") == path.stem:
                    found.append(doc)
        return found

    def unlock(self, deployment: str) -> str | None:
        raise UsageError("a local lock goes with the process that held it: there is nothing to unlock")


class S3Document:
    """One deployment's document in S3, written conditionally on the ETag last read or written (state.Store)."""

    def __init__(self, backend: S3Backend, deployment: str, etag: str | None) -> None:
        self.backend = backend
        self.deployment = deployment
        self.etag = etag
        self.where = backend.url.url + f"/{deployment}.json"

    def exists(self) -> bool:
        return self.etag is not None

    def write(self, doc: dict[str, Any]) -> None:
        self.etag = self.backend.put_doc(self.deployment, doc, self.etag)

    def put_secret(self, key: str, value: str) -> str:
        return self.backend.put_secret(self.deployment, key, value)

    def get_secret(self, ref: str) -> str:
        return self.backend.get_secret(ref)

    def delete_secret(self, ref: str) -> None:
        self.backend.delete_secret(ref)


class S3Backend:
    kind = "s3"

    def __init__(self, url: S3Url, session: Any) -> None:
        self.url = url
        self.where = url.url
        self.session = session
        self.s3 = session.client("s3")
        self._checked = False

    def _code(self, e: Exception) -> str:
        return str(getattr(e, "response", {}).get("Error", {}).get("Code", ""))

    def check_bucket(self) -> None:
        """The bucket exists, keeps versions and encrypts by default: else one line, exit 2, nothing written."""
        from botocore.exceptions import ClientError

        if self._checked:
            return
        bucket = self.url.bucket
        try:
            self.s3.head_bucket(Bucket=bucket)
        except ClientError as e:
            if self._code(e) in ("404", "NoSuchBucket", "NotFound"):
                raise UsageError(f"state bucket {bucket} does not exist; create it with versioning and default "
                                 "encryption (docs/ci.md)") from None
            raise UsageError(f"state bucket {bucket} cannot be read ({self._code(e)}); grant s3:ListBucket, "
                             "s3:GetObject, s3:PutObject, s3:DeleteObject on it") from None
        if self.s3.get_bucket_versioning(Bucket=bucket).get("Status") != "Enabled":
            raise UsageError(f"state bucket {bucket} does not keep versions; enable versioning on it "
                             f"(aws s3api put-bucket-versioning --bucket {bucket} --versioning-configuration "
                             "Status=Enabled), so that every earlier state stays recoverable")
        try:
            rules = self.s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
        except ClientError as e:
            if self._code(e) != "ServerSideEncryptionConfigurationNotFoundError":
                raise
            rules = []
        if not rules:
            raise UsageError(f"state bucket {bucket} has no default encryption; turn it on (SSE-S3 or SSE-KMS)")
        self._checked = True

    # -- documents --------------------------------------------------------------------------------------------
    def _get(self, key: str) -> tuple[dict[str, Any] | None, str | None]:
        from botocore.exceptions import ClientError

        try:
            got = self.s3.get_object(Bucket=self.url.bucket, Key=key)
        except ClientError as e:
            if self._code(e) in ("NoSuchKey", "404"):
                return None, None
            raise
        body = got["Body"].read()
        try:
            doc = json.loads(body)
        except ValueError as e:
            raise StateError(f"s3://{self.url.bucket}/{key} is not JSON ({e}); restore an earlier version of it "
                             "(the bucket keeps them)") from e
        return doc, str(got["ETag"])

    def load(self, deployment: str) -> State:
        self.check_bucket()
        key = self.url.key(f"{deployment}.json")
        doc, etag = self._get(key)
        where = f"s3://{self.url.bucket}/{key}"
        if doc is None:
            doc = local._empty(deployment)
        else:
            if not isinstance(doc, dict) or "resources" not in doc:
                raise StateError(f"{where} is not a provision state file")
            doc = local.migrate(doc, where)
            local.check_schema(doc, where)
            if doc.get("deployment") != deployment:
                raise StateError(f"{where} belongs to deployment {doc.get('deployment')!r}, not {deployment!r}")
            for section in ("outputs", "secrets", "observations"):
                doc.setdefault(section, {})
        return State(Path(where), doc, store=S3Document(self, deployment, etag))

    def put_doc(self, deployment: str, doc: dict[str, Any], etag: str | None) -> str:
        from botocore.exceptions import ClientError

        key = self.url.key(f"{deployment}.json")
        body = (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()
        condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
        try:
            put = self.s3.put_object(Bucket=self.url.bucket, Key=key, Body=body, ContentType="application/json",
                                     **condition)
        except ClientError as e:
            if self._code(e) in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
                raise StateError(f"s3://{self.url.bucket}/{key} was changed by someone else since this command read "
                                 "it; nothing was overwritten: rerun the command") from None
            raise
        return str(put["ETag"])

    def read_doc(self, deployment: str) -> dict[str, Any] | None:
        self.check_bucket()
        return self._get(self.url.key(f"{deployment}.json"))[0]

    def write_new(self, doc: dict[str, Any]) -> None:
        self.check_bucket()
        try:
            self.put_doc(doc["deployment"], doc, None)
        except StateError:
            raise UsageError(f"{self.url.url} already holds deployment {doc['deployment']}; provision never "
                             "overwrites a state") from None

    def deployments(self) -> list[dict[str, Any]]:
        self.check_bucket()
        prefix = self.url.key("")
        found = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.url.bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                name = obj["Key"][len(prefix):]
                if name.endswith(".json") and "/" not in name:
                    doc, _ = self._get(obj["Key"])
                    if isinstance(doc, dict):
                        found.append(doc)
        return found

    # -- the lock ---------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def locked(self, deployment: str, command: str) -> Iterator[None]:
        from botocore.exceptions import ClientError

        self.check_bucket()
        key = self.url.key(f"{deployment}.lock")
        mine = holder(command)
        try:
            put = self.s3.put_object(Bucket=self.url.bucket, Key=key, Body=json.dumps(mine).encode(),
                                     ContentType="application/json", IfNoneMatch="*")
        except ClientError as e:
            if self._code(e) not in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
                raise
            held, _ = self._get(key)
            who = describe_holder(held or {})
            raise StateError(f"deployment {deployment} is locked by {who}; wait for it to finish, or, if that "
                             "command died, `provision unlock`") from None
        try:
            yield
        finally:
            # Only our own lock: conditional on the ETag we wrote.
            with contextlib.suppress(ClientError):
                self.s3.delete_object(Bucket=self.url.bucket, Key=key, IfMatch=put["ETag"])

    def lock_holder(self, deployment: str) -> dict[str, Any] | None:
        self.check_bucket()
        return self._get(self.url.key(f"{deployment}.lock"))[0]

    def unlock(self, deployment: str) -> str | None:
        held = self.lock_holder(deployment)
        if held is None:
            return None
        self.s3.delete_object(Bucket=self.url.bucket, Key=self.url.key(f"{deployment}.lock"))
        return describe_holder(held)

    # -- tokens -----------------------------------------------------------------------------------------------
    @property
    def secrets(self) -> Any:
        return self.session.client("secretsmanager")

    def put_secret(self, deployment: str, key: str, value: str) -> str:
        from botocore.exceptions import ClientError

        name = f"provision/{deployment}/{key}"
        try:
            return str(self.secrets.create_secret(Name=name, SecretString=value, Tags=[
                {"Key": "provisioner:deployment", "Value": deployment}, {"Key": "ManagedBy", "Value": "provisioner"}])
                ["ARN"])
        except ClientError as e:
            if self._code(e) != "ResourceExistsException":
                raise
        return str(self.secrets.put_secret_value(SecretId=name, SecretString=value)["ARN"])

    def get_secret(self, ref: str) -> str:
        return str(self.secrets.get_secret_value(SecretId=ref)["SecretString"])

    def delete_secret(self, ref: str) -> None:
        from botocore.exceptions import ClientError

        with contextlib.suppress(ClientError):
            self.secrets.delete_secret(SecretId=ref, ForceDeleteWithoutRecovery=True)


Backend = LocalBackend | S3Backend


def backend_for(url: str | None, state_dir: Path, region: str) -> Backend:
    """The backend `PROVISION_STATE` (first) or the config's `[state] backend` names; the directory otherwise."""
    chosen = os.environ.get(ENV) or url
    if not chosen:
        return LocalBackend(state_dir)
    parsed = parse(chosen)
    from provisioner.aws.clients import new_session

    session = new_session(region)
    if session.get_credentials() is None:
        raise UsageError(f"the state backend {parsed.url} needs AWS credentials; set AWS_PROFILE, or "
                         "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
    return S3Backend(parsed, session)
