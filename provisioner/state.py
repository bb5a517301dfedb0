"""The local state file: a cache of what a deployment created, never the truth (the cloud is).

`<state-dir>/<deployment>.json`, mode 0600 (it holds workspace tokens), written atomically (temp file,
fsync, rename) every time an ID arrives, so a crash loses nothing an API returned. One process at a time
per deployment: an exclusive `flock` on `<deployment>.lock`, which records who holds it.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import json
import os
import stat
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

SCHEMA_VERSION = 2


class Store(Protocol):
    """Where a state document lives when it is not a local file (a shared backend, say S3)."""

    where: str

    def exists(self) -> bool: ...

    def write(self, doc: dict[str, Any]) -> None: ...

    def put_secret(self, key: str, value: str) -> str: ...

    def get_secret(self, ref: str) -> str: ...

    def delete_secret(self, ref: str) -> None: ...


class StateError(Exception):
    """The state file cannot be used: corrupt, from a newer version, locked, or of the wrong kind."""


def _v1_to_v2(doc: dict[str, Any]) -> dict[str, Any]:
    # v2 adds a section for secrets (kept apart from outputs, so `output` hides them wholesale) and the sandbox
    # flag; v1 had neither.
    doc.setdefault("secrets", {})
    doc.setdefault("sandbox", False)
    return doc


MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _v1_to_v2}


def _empty(deployment: str) -> dict[str, Any]:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return {
        "schema_version": SCHEMA_VERSION,
        "deployment": deployment,
        "generated_name": False,
        "sandbox": False,
        "created_at": now,
        "updated_at": now,
        "config_fingerprint": None,
        "resources": {},
        "outputs": {},
        "secrets": {},
        "observations": {},
    }


def migrate(doc: dict[str, Any], source: str) -> dict[str, Any]:
    version = doc.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise StateError(f"{source} has no schema_version; it is not a provision state file")
    if version < 1:
        raise StateError(f"{source} has state schema {version}, which no provision writes; restore the file from a "
                         "backup or move it away (provision never overwrites it)")
    if version > SCHEMA_VERSION:
        raise StateError(f"{source} was written by a newer provision (state schema {version}, this one reads up to "
                         f"{SCHEMA_VERSION}); upgrade provision")
    while version < SCHEMA_VERSION:
        if version not in MIGRATIONS:
            raise StateError(f"{source} has state schema {version}, which this provision cannot migrate")
        doc = MIGRATIONS[version](doc)
        version += 1
        doc["schema_version"] = version
    return doc


# What each top-level field of a (current) state document may hold: required ones, then optional ones.
_REQUIRED: dict[str, tuple[type, ...]] = {"deployment": (str,), "resources": (dict,)}
_OPTIONAL: dict[str, tuple[type, ...]] = {
    "generated_name": (bool,), "sandbox": (bool,), "created_at": (str,), "updated_at": (str,),
    "config_fingerprint": (str, type(None)), "configs": (list,), "last_command": (str,), "outputs": (dict,),
    "secrets": (dict,), "observations": (dict,), "deleted": (dict,),
}
_JSON_NAMES = {dict: "an object", list: "a list", str: "a string", bool: "true or false", int: "a number",
               float: "a number", type(None): "null"}


def _json_name(value: Any) -> str:
    return _JSON_NAMES.get(type(value), type(value).__name__)


def check_schema(doc: dict[str, Any], source: str) -> None:
    """Refuse a document whose fields have the wrong shape (a hand edit, another tool's file): a StateError
    naming the file and the field, rather than a crash somewhere later."""

    def wrong(where: str, value: Any, expected: str) -> StateError:
        return StateError(f"{source}: {where} is {_json_name(value)}, not {expected}; fix it, restore the file from "
                          "a backup, or move it away (provision never overwrites it)")

    for fields, required in ((_REQUIRED, True), (_OPTIONAL, False)):
        for name, types in fields.items():
            if name not in doc:
                if required:
                    raise StateError(f"{source} has no {name!r}; it is not a provision state file: restore it from "
                                     "a backup or move it away (provision never overwrites it)")
                continue
            value = doc[name]
            if not isinstance(value, types) or (bool not in types and isinstance(value, bool)):
                raise wrong(f'"{name}"', value, " or ".join(_JSON_NAMES[t] for t in types))
    for key, entry in doc["resources"].items():
        if not isinstance(entry, dict):
            raise wrong(f'resource "{key}"', entry, "an object")
        if not isinstance(entry.get("id"), str):
            raise wrong(f'the "id" of resource "{key}"', entry.get("id"), "a string")
        if not isinstance(entry.get("outputs", {}), dict):
            raise wrong(f'the "outputs" of resource "{key}"', entry["outputs"], "an object")
    for key, secret in doc.get("secrets", {}).items():
        if not isinstance(secret, str):
            raise wrong(f'secret "{key}"', secret, "a string")


class State:
    """One deployment's state document, saved after every change. Thread-safe."""

    def __init__(self, path: Path, doc: dict[str, Any], store: Store | None = None) -> None:
        self.path = path
        # A shared backend writes the document and keeps tokens apart (the document holds a reference to each).
        self.store = store
        self._doc = doc
        self._lock = threading.RLock()
        self._closed = False

    # -- reading ---------------------------------------------------------------------------------
    @property
    def deployment(self) -> str:
        return str(self._doc["deployment"])

    @property
    def sandbox(self) -> bool:
        return bool(self._doc.get("sandbox", False))

    @property
    def exists(self) -> bool:
        return self.store.exists() if self.store is not None else self.path.exists()

    def resource(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            entry = self._doc["resources"].get(key)
            return copy.deepcopy(entry) if entry is not None else None

    def resource_id(self, key: str) -> str | None:
        entry = self.resource(key)
        return None if entry is None else entry.get("id")

    def resources(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._doc["resources"])

    def get(self, section: str, key: str, default: Any = None) -> Any:
        with self._lock:
            value = copy.deepcopy(self._doc.get(section, {}).get(key, default))
        if section == "secrets" and self.store is not None and isinstance(value, str) and value != default:
            return self.store.get_secret(value)
        return value

    def secret(self, key: str) -> str | None:
        """A token, read from where it is kept (the state file, or a secret the shared backend's state names)."""
        value = self.get("secrets", key)
        return None if value is None else str(value)

    def get_meta(self, key: str, default: Any = None) -> Any:
        with self._lock:
            return copy.deepcopy(self._doc.get(key, default))

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._doc)

    # -- writing ---------------------------------------------------------------------------------
    def record(self, key: str, resource_id: str, **fields: Any) -> None:
        """Remember a resource the moment its ID is known; merged into what is already recorded."""
        with self._lock:
            entry = self._doc["resources"].setdefault(key, {})
            entry["id"] = resource_id
            entry.update(fields)
            self.save()

    def forget(self, key: str) -> None:
        """Drop a deleted resource. Its ID stays under `deleted`: the idempotency token of the next create of the
        same key depends on it (steps/ec2_common.client_token)."""
        with self._lock:
            entry = self._doc["resources"].pop(key, None)
            had = entry is not None
            if entry and entry.get("id"):
                self._doc.setdefault("deleted", {})[key] = entry["id"]
            ref = self._doc["secrets"].pop(key, None)
            if ref is not None and self.store is not None:
                self.store.delete_secret(ref)
            had = ref is not None or had
            if had:
                self.save()

    def put(self, section: str, key: str, value: Any) -> None:
        with self._lock:
            if section == "secrets" and self.store is not None:
                value = self.store.put_secret(key, str(value))  # a token never sits in a shared document
            self._doc.setdefault(section, {})[key] = value
            self.save()

    def drop(self, section: str, key: str) -> None:
        with self._lock:
            value = self._doc.setdefault(section, {}).pop(key, None)
            if value is not None:
                if section == "secrets" and self.store is not None:
                    self.store.delete_secret(value)
                self.save()

    def set_meta(self, **fields: Any) -> None:
        with self._lock:
            self._doc.update(fields)
            self.save()

    def close(self) -> None:
        """No more writes: the lock is about to be released, and a worker thread still running after an
        interrupt must not overwrite what the next command writes."""
        with self._lock:
            self._closed = True

    def save(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._doc["updated_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            if self.store is not None:
                self.store.write(self._doc)
                return
            prepare_dir(self.path.parent)
            data = json.dumps(self._doc, indent=2, sort_keys=True) + "\n"
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
            try:
                os.fchmod(fd, 0o600)
                with os.fdopen(fd, "w") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, self.path)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
                raise
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)


def prepare_dir(state_dir: Path) -> None:
    """Create the state directory private (0700) and ignored by git wherever it is: it holds tokens."""
    try:
        if not state_dir.exists():
            state_dir.mkdir(parents=True, mode=0o700)
        ignore = state_dir / ".gitignore"
        if not ignore.exists():
            ignore.write_text("# provision state: resource IDs and workspace tokens. Never commit it.\n*\n")
    except OSError as e:
        raise StateError(f"the state directory {state_dir} cannot be made or written ({e.strerror}); point "
                         "--state-dir (or PROVISION_STATE_DIR) at a directory you can write") from e


def state_path(state_dir: Path, deployment: str) -> Path:
    return state_dir / f"{deployment}.json"


def load(state_dir: Path, deployment: str) -> State:
    """Read a deployment's state, or start an empty one (not written until something is recorded)."""
    path = state_path(state_dir, deployment)
    if not path.exists():
        return State(path, _empty(deployment))
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise StateError(f"{path} is unreadable or corrupt ({e}); restore it from a backup or move it away "
                         "(provision never overwrites it)") from e
    if not isinstance(doc, dict) or "resources" not in doc:
        raise StateError(f"{path} is not a provision state file; move it away (provision never overwrites it)")
    doc = migrate(doc, str(path))
    check_schema(doc, str(path))
    if doc.get("deployment") != deployment:
        raise StateError(f"{path} belongs to deployment {doc.get('deployment')!r}, not {deployment!r}")
    for section in ("outputs", "secrets", "observations"):
        doc.setdefault(section, {})
    _keep_private(path)
    return State(path, doc)


def _keep_private(path: Path) -> None:
    """The file holds tokens: if its mode lets the group or others read it (a copy, a restore, a umask), set it
    back to 0600 and say so."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            os.chmod(path, 0o600)
            print(f"warning: {path} was readable by others (mode {mode:04o}) and holds workspace tokens; its mode is "
                  "0600 again. Consider replacing the tokens it held (`provision up` does for a token it no longer "
                  "has).", file=sys.stderr)
    except OSError as e:
        print(f"warning: {path} may be readable by others and cannot be made private ({e.strerror}); it holds "
              "workspace tokens: run `chmod 600` on it", file=sys.stderr)


def generated_deployments(state_dir: Path) -> list[str]:
    """Deployments in `state_dir` whose name provision generated (for configs that set none)."""
    names = []
    for path in sorted(state_dir.glob("*.json")):
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(doc, dict) and doc.get("generated_name") and doc.get("deployment") == path.stem:
            names.append(path.stem)
    return names


@contextlib.contextmanager
def locked(state_dir: Path, deployment: str) -> Iterator[None]:
    """Hold the deployment's exclusive lock; fail at once if another process has it."""
    prepare_dir(state_dir)
    lock_path = state_dir / f"{deployment}.lock"
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            raise StateError(f"deployment {deployment} is locked by {holder}; wait for it to finish "
                             "(the lock goes with the process)") from None
        since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} since {since}".encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
