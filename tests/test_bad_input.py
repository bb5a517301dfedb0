"""Bad input, tried as a new user would: each is one line naming the problem and the fix, exit 2, nothing written
in the state directory, and no call to AWS or Databricks."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from provisioner.state import SCHEMA_VERSION
from tests.conftest import config_text

DEPLOYMENT = "bad"


def state_doc(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION, "deployment": DEPLOYMENT, "generated_name": False, "sandbox": False,
        "created_at": "2025-01-01T00:00:00Z", "updated_at": "2025-01-01T00:00:00Z", "config_fingerprint": None,
        "resources": {"hub/vpc": {"id": "vpc-0123", "spec": "abc"}}, "outputs": {}, "secrets": {},
        "observations": {}}
    doc.update(changes)
    return doc


@dataclass
class Case:
    """What to put in the work directory, what to run, and what the one line must say."""

    state: Any = None  # the state file's content (JSON-encoded unless a str), or None for no state file
    env: dict[str, str] = field(default_factory=dict)
    args: tuple[str, ...] = ("up",)
    says: tuple[str, ...] = ()
    prepare: Callable[[Path], None] | None = None


def _file_named(name: str) -> Callable[[Path], None]:
    def prepare(workdir: Path) -> None:
        (workdir / name).write_text("not a directory\n")

    return prepare


CASES = {
    "resources null": Case(state_doc(resources=None), says=("state/bad.json", '"resources" is null')),
    "resources a list": Case(state_doc(resources=[]), says=('"resources" is a list, not an object',)),
    "a resource not an object": Case(state_doc(resources={"hub/vpc": "vpc-0123"}), says=('resource "hub/vpc"',)),
    "a resource id not a string": Case(state_doc(resources={"hub/vpc": {"id": 7}}), says=('"id" of resource',)),
    "resource outputs a list": Case(state_doc(resources={"hub/vpc": {"id": "v", "outputs": []}}),
                                    says=('"outputs" of resource "hub/vpc"',)),
    "deployment a number": Case(state_doc(deployment=5), says=('"deployment" is a number, not a string',)),
    "sandbox a string": Case(state_doc(sandbox="yes"), says=('"sandbox" is a string, not true or false',)),
    "outputs null": Case(state_doc(outputs=None), says=('"outputs" is null',)),
    "a secret not a string": Case(state_doc(secrets={"spoke/main/token": 5}), says=('secret "spoke/main/token"',)),
    "fingerprint a number": Case(state_doc(config_fingerprint=5), says=('"config_fingerprint"',)),
    "not an object": Case([1, 2], says=("state/bad.json", "not a provision state file")),
    "a string": Case("just text", says=("state/bad.json", "corrupt")),
    "version 0": Case(state_doc(schema_version=0), says=("state schema 0",)),
    "version -1": Case(state_doc(schema_version=-1), says=("state schema -1",)),
    "version from the future": Case(state_doc(schema_version=SCHEMA_VERSION + 7), says=("newer provision",)),
    "version a string": Case(state_doc(schema_version="2"), says=("schema_version",)),
    "version true": Case(state_doc(schema_version=True), says=("schema_version",)),
    "--state-dir a file": Case(args=("up", "--state-dir", "state"), prepare=_file_named("state"),
                               says=("state directory state is not a directory", "--state-dir")),
    "PROVISION_STATE_DIR a file": Case(env={"PROVISION_STATE_DIR": "statefile"}, prepare=_file_named("statefile"),
                                       says=("statefile", "PROVISION_STATE_DIR")),
    "--state-dir inside a file": Case(args=("up", "--state-dir", "statefile/deeper"),
                                      prepare=_file_named("statefile"), says=("statefile is not a directory",)),
    "plan with a file for the state dir": Case(args=("plan", "--state-dir", "state"), prepare=_file_named("state"),
                                               says=("not a directory",)),
    "poll scale abc": Case(env={"PROVISION_POLL_SCALE": "abc"}, says=("PROVISION_POLL_SCALE='abc' is not a number",)),
    "poll scale negative": Case(env={"PROVISION_POLL_SCALE": "-1"}, says=("PROVISION_POLL_SCALE=-1",)),
    "poll scale nan": Case(env={"PROVISION_POLL_SCALE": "nan"}, says=("PROVISION_POLL_SCALE=nan",)),
    "poll scale inf": Case(env={"PROVISION_POLL_SCALE": "inf"}, says=("PROVISION_POLL_SCALE=inf",)),
    "poll scale with a bad state file": Case(state_doc(resources=None), env={"PROVISION_POLL_SCALE": "x"},
                                             says=("PROVISION_POLL_SCALE",)),
    "poll scale, down": Case(env={"PROVISION_POLL_SCALE": "abc"}, args=("down", "--yes"),
                             says=("PROVISION_POLL_SCALE",)),
    "poll scale, status": Case(env={"PROVISION_POLL_SCALE": "abc"}, args=("status",), says=("PROVISION_POLL_SCALE",)),
    "bad state, status": Case(state_doc(resources=None), args=("status",), says=('"resources" is null',)),
    "bad state, down": Case(state_doc(resources=None), args=("down", "--yes"), says=('"resources" is null',)),
    "bad state, output": Case(state_doc(secrets=[]), args=("output",), says=('"secrets" is a list',)),
}


def snapshot(root: Path) -> dict[str, tuple[int, bytes]]:
    """Every file under `root` (but the config), with its mode and content."""
    return {str(p.relative_to(root)): (p.stat().st_mode, p.read_bytes() if p.is_file() else b"")
            for p in sorted(root.rglob("*")) if p.name != "provision.toml"}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_bad_input_is_one_line_exit_2_and_touches_nothing(aws, databricks, workdir, calls, monkeypatch, case):
    workdir.write_config(config_text(DEPLOYMENT))
    if case.state is not None:
        path = workdir.path / "state" / f"{DEPLOYMENT}.json"
        path.parent.mkdir()
        path.write_text(case.state if isinstance(case.state, str) else json.dumps(case.state))
        path.chmod(0o600)
    if case.prepare is not None:
        case.prepare(workdir.path)
    for name, value in case.env.items():
        monkeypatch.setenv(name, value)
    before = snapshot(workdir.path)

    result = workdir.run(*case.args)

    assert result.code == 2, result.out + result.err
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert "Traceback" not in result.err
    for words in case.says:
        assert words in lines[0], lines[0]
    assert snapshot(workdir.path) == before  # nothing created, changed or removed
    assert calls.calls == []  # no AWS call
    assert databricks.requests == []  # no Databricks call


# -- a state file others can read: not an error, made private again ----------------------------------------------


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_a_state_file_others_can_read_is_made_private_with_a_warning(workdir, mode):
    workdir.write_config(config_text(DEPLOYMENT))
    path = workdir.path / "state" / f"{DEPLOYMENT}.json"
    path.parent.mkdir()
    path.write_text(json.dumps(state_doc()))
    path.chmod(mode)
    content = path.read_bytes()

    result = workdir.run("plan")
    assert result.code == 0, result.out + result.err
    warnings = [line for line in result.err.splitlines() if "readable by others" in line]
    assert len(warnings) == 1 and str(path.relative_to(workdir.path)) in warnings[0] and "0600" in warnings[0]
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.read_bytes() == content

    again = workdir.run("plan")
    assert "readable by others" not in again.err  # said once: it is private now


# -- the sandbox: an unhealthy one is not replaced by a second, empty one -----------------------------------------


@contextlib.contextmanager
def answering(status: int) -> Iterator[str]:
    """An HTTP server on 127.0.0.1 that answers every GET with `status`."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("status", [500, 503])
@pytest.mark.parametrize("command", [("up", "--sandbox"), ("plan", "--sandbox"), ("sandbox",)])
def test_an_unhealthy_recorded_sandbox_is_not_replaced(workdir, monkeypatch, status, command):
    for var in ("AWS_ENDPOINT_URL", "DATABRICKS_HOST", "PROVISION_SANDBOX"):
        monkeypatch.delenv(var, raising=False)
    started: list[Any] = []
    from provisioner.sandbox import server

    monkeypatch.setattr(server, "start_detached", lambda *a, **k: started.append(a))
    workdir.write_config(config_text(DEPLOYMENT))
    with answering(status) as url:
        record = workdir.path / "state" / "sandbox.record"
        record.parent.mkdir()
        # This test's own process stands in for the sandbox's: alive, and its ports answer (with an error).
        record.write_text(json.dumps({"pid": os.getpid(), "aws_url": url, "databricks_url": url, "time_scale": 0.02,
                                      "started_at": "2025-01-01T00:00:00Z"}))
        before = snapshot(workdir.path)
        result = workdir.run(*command)
    assert result.code == 2, result.out + result.err
    [line] = result.err.strip().splitlines()
    assert f"(pid {os.getpid()}) is not healthy" in line and f"answered HTTP {status}" in line
    assert "`provision sandbox stop`" in line
    assert started == []  # no second sandbox
    assert snapshot(workdir.path) == before


def test_stop_ends_an_unhealthy_recorded_sandbox(workdir):
    from provisioner.sandbox import server

    stand_in = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    reaper = threading.Thread(target=stand_in.wait, daemon=True)  # so it is gone, not a zombie, once it ends
    reaper.start()
    try:
        with answering(503) as url:
            server.write_record(workdir.path / "state", server.SandboxInfo(
                pid=stand_in.pid, aws_url=url, databricks_url=url, time_scale=0.02, started_at=""))
            result = workdir.run("sandbox", "stop")
        assert result.code == 0, result.err
        assert f"Stopped the sandbox (pid {stand_in.pid})" in result.out
        reaper.join(5)
        assert stand_in.returncode == -signal.SIGTERM
        assert not (workdir.path / "state" / "sandbox.record").exists()
    finally:
        stand_in.kill()
