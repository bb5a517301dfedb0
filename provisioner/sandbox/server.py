"""`provision sandbox`: emulated AWS (moto plus our patches) and the emulated Databricks Account API, on
127.0.0.1, with a latency model so the build shows the real order and overlap of its waits.

A detached sandbox (started by `--sandbox` on another command) records itself in `<state-dir>/sandbox.record`
(not a `.json` name: a deployment may be called `sandbox`)
(pid, URLs, time scale); a record whose process is gone, or whose ports no longer answer, is stale and replaced.
A recorded sandbox that is alive but answers its health check with an error is not replaced (a second, empty
sandbox would hide what the first holds): commands stop and say how to restart it.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from provisioner.errors import UsageError
from provisioner.state import prepare_dir

# A fixed, obviously fake identity: the sandbox is one emulated Databricks account and one AWS account.
SANDBOX_ACCOUNT_ID = "00000000-0000-4000-8000-000000000000"
SANDBOX_CLIENT_ID = "sandbox-client"
SANDBOX_CLIENT_SECRET = "sandbox-secret"
SANDBOX_AWS_KEY = "sandbox"
DEFAULT_TIME_SCALE = 0.02
RECORD_NAME = "sandbox.record"

# What takes time on the real services, in seconds (typical values; AWS and Databricks documentation and
# observed runs): multiplied by the time scale.
LATENCY_SECONDS: dict[str, float] = {
    "ec2::nat_gateway": 90,  # NAT gateway: 1-2 minutes to available
    "ec2::nat_gateway_delete": 60,
    "ec2::transit_gateway": 90,  # Transit Gateway: 1-2 minutes
    "ec2::transit_gateway_delete": 60,
    "ec2::transit_gateway_attachment": 90,  # VPC attachments: 1-2 minutes
    "ec2::transit_gateway_attachment_delete": 60,
    "ec2::vpc_endpoint": 60,  # interface endpoints: about a minute
    "ec2::vpc_endpoint_delete": 30,
    "network-firewall::firewall": 390,  # Network Firewall: 5-8 minutes to READY
    "network-firewall::firewall_delete": 390,  # ... and to delete
}
WORKSPACE_SECONDS = 240  # Databricks workspace: about 4 minutes to RUNNING
WORKSPACE_DELETE_SECONDS = 30
IAM_PROPAGATION_SECONDS = 20  # a new IAM role fails Databricks' credential validation for about 20 s
# The legacy Hive metastore's addresses as the sandbox resolves them (TEST-NET-3, RFC 5737: never routable).
SANDBOX_METASTORE_ADDRESSES = ["203.0.113.10", "203.0.113.11"]


@dataclass(frozen=True)
class SandboxInfo:
    pid: int
    aws_url: str
    databricks_url: str
    time_scale: float
    started_at: str

    def exports(self) -> dict[str, str]:
        """The environment a shell needs to point provision (or boto3 and the Databricks SDK) at the sandbox."""
        return {
            "AWS_ENDPOINT_URL": self.aws_url,
            "AWS_ACCESS_KEY_ID": SANDBOX_AWS_KEY,
            "AWS_SECRET_ACCESS_KEY": SANDBOX_AWS_KEY,
            "AWS_DEFAULT_REGION": "eu-central-1",
            "DATABRICKS_HOST": self.databricks_url,
            "DATABRICKS_ACCOUNT_ID": SANDBOX_ACCOUNT_ID,
            "DATABRICKS_CLIENT_ID": SANDBOX_CLIENT_ID,
            "DATABRICKS_CLIENT_SECRET": SANDBOX_CLIENT_SECRET,
            "PROVISION_WORKSPACE_URL_TEMPLATE": f"{self.databricks_url}/ws/{{deployment_name}}",
            "PROVISION_POLL_SCALE": str(self.time_scale),
            # provision commands in a shell with these exports act as with --sandbox, on this sandbox.
            "PROVISION_SANDBOX": "1",
        }


def apply_latency(time_scale: float) -> None:
    """Make every emulated long operation take its real duration times `time_scale`."""
    from moto.moto_api import state_manager

    for model, seconds in LATENCY_SECONDS.items():
        if time_scale > 0:
            state_manager.set_transition(model, {"progression": "time", "seconds": seconds * time_scale})
        else:
            state_manager.unset_transition(model)


def _aws_action(environ: dict[str, Any]) -> tuple[str, str]:
    """(service, action) of an AWS request: the SigV4 credential scope names the service; JSON APIs name the
    action in X-Amz-Target, query APIs (EC2, IAM) in the form body, S3 by method and path."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    scope = auth.split("Credential=", 1)[1].split(",", 1)[0].split("/") if "Credential=" in auth else []
    service = scope[3] if len(scope) > 3 else "?"
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return service, target.rsplit(".", 1)[-1]
    if environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(body)  # put it back for moto
        action = urllib.parse.parse_qs(body.decode(errors="replace")).get("Action", ["?"])[0]
        return service, action
    return service, f"{environ.get('REQUEST_METHOD')} {environ.get('PATH_INFO')}"


class _LoggedMotoServer:
    """moto's threaded server with one line per request naming the service and the action."""

    @staticmethod
    def make(port: int, log: Callable[[str], None]) -> Any:
        from moto.moto_server.threaded_moto_server import ThreadedMotoServer
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
        from werkzeug.serving import make_server

        class Server(ThreadedMotoServer):
            def _server_entry(self) -> None:
                app = DomainDispatcherApplication(create_backend_app)

                def logged(environ: dict[str, Any], start_response: Any) -> Any:
                    service, action = _aws_action(environ)

                    def recording_start(status: str, headers: Any, *args: Any) -> Any:
                        log(f"aws  {service} {action} -> {status.split(' ', 1)[0]}")
                        return start_response(status, headers, *args)

                    return app(environ, recording_start)

                self._server = make_server(self._ip_address, self._port, logged, True)
                self._server_ready_event.set()
                self._server.serve_forever()

        return Server(ip_address="127.0.0.1", port=port, verbose=False)


class Sandbox:
    """Both emulators running in this process."""

    def __init__(self, time_scale: float = DEFAULT_TIME_SCALE, aws_port: int = 0, databricks_port: int = 0,
                 log: Callable[[str], None] | None = None) -> None:
        from moto.server import ThreadedMotoServer

        from provisioner.sandbox import install_patches
        from provisioner.sandbox.databricks_api import DatabricksEmulator, EmulatorSettings, serve

        # moto's default AMI catalogue takes seconds to load per region and no step uses it.
        os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
        install_patches()
        apply_latency(time_scale)
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self.moto = (_LoggedMotoServer.make(aws_port, log) if log
                     else ThreadedMotoServer(ip_address="127.0.0.1", port=aws_port, verbose=False))
        self.moto.start()
        host, port = self.moto.get_host_and_port()
        self.emulator = DatabricksEmulator(EmulatorSettings(
            account_id=SANDBOX_ACCOUNT_ID,
            client_id=SANDBOX_CLIENT_ID,
            client_secret=SANDBOX_CLIENT_SECRET,
            iam_propagation_seconds=IAM_PROPAGATION_SECONDS * time_scale,
            workspace_provisioning_seconds=WORKSPACE_SECONDS * time_scale,
            workspace_deleting_seconds=WORKSPACE_DELETE_SECONDS * time_scale,
            log=(lambda line: log(f"dbx  {line}")) if log else None,
        ))
        self.databricks, databricks_url = serve(self.emulator, port=databricks_port)
        self.info = SandboxInfo(pid=os.getpid(), aws_url=f"http://{host}:{port}", databricks_url=databricks_url,
                                time_scale=time_scale, started_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))

    def stop(self) -> None:
        self.databricks.shutdown()
        self.moto.stop()


def record_path(state_dir: Path) -> Path:
    return state_dir / RECORD_NAME


def write_record(state_dir: Path, info: SandboxInfo) -> None:
    prepare_dir(state_dir)
    tmp = record_path(state_dir).with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(info), indent=2) + "\n")
    os.replace(tmp, record_path(state_dir))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# The sandbox's health check, answered by its Databricks emulator outside the emulated API (and its request log).
HEALTH_PATH = "/sandbox/health"


def _health_url(info: SandboxInfo) -> str:
    return f"{info.databricks_url}{HEALTH_PATH}"


def _health(info: SandboxInfo) -> int | None:
    """The HTTP status of the sandbox's health check (its Databricks emulator's metadata; 200 when healthy),
    once its AWS port accepts connections too; None when either does not answer at all (a recycled pid is not
    enough to trust a record)."""
    try:
        try:
            with urllib.request.urlopen(_health_url(info), timeout=2) as response:
                status = int(response.status)
        except urllib.error.HTTPError as e:
            status = e.code
        parsed = urllib.parse.urlsplit(info.aws_url)
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 80), timeout=2):
            return status
    except (urllib.error.URLError, OSError, ValueError):
        return None


def _answers(info: SandboxInfo) -> bool:
    status = _health(info)
    return status is not None and 200 <= status < 300


def _check_healthy(info: SandboxInfo, status: int | None, what: str, restart: str) -> None:
    if status is not None and not 200 <= status < 300:
        raise UsageError(f"{what} is not healthy: {_health_url(info)} answered HTTP {status}; restart it: {restart}")


def _read(state_dir: Path) -> SandboxInfo | None:
    try:
        return SandboxInfo(**json.loads(record_path(state_dir).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def read_record(state_dir: Path) -> SandboxInfo | None:
    """The running sandbox recorded in `state_dir`, or None (no record, or a stale one of a dead sandbox).

    UsageError when the recorded sandbox is alive but answers its health check with an error: starting a
    second one beside it would lose what the first holds, and its record."""
    info = _read(state_dir)
    if info is None or not _alive(info.pid):
        return None
    status = _health(info)
    flag = f" --state-dir {shlex.quote(str(state_dir))}" if state_dir != Path("state") else ""
    _check_healthy(info, status, f"the sandbox recorded in {state_dir} (pid {info.pid})",
                   f"`provision sandbox stop{flag}`, then run this command again")
    return info if status is not None else None


def from_environment() -> SandboxInfo | None:
    """The sandbox the environment points at (a shell with `provision sandbox`'s exports), if it answers;
    UsageError if it answers its health check with an error."""
    aws_url, databricks_url = os.environ.get("AWS_ENDPOINT_URL"), os.environ.get("DATABRICKS_HOST")
    if not aws_url or not databricks_url or not databricks_url.startswith("http://127.0.0.1:"):
        return None
    try:
        scale = float(os.environ.get("PROVISION_POLL_SCALE", DEFAULT_TIME_SCALE))
    except ValueError:
        scale = DEFAULT_TIME_SCALE
    info = SandboxInfo(pid=0, aws_url=aws_url, databricks_url=databricks_url, time_scale=scale, started_at="")
    status = _health(info)
    _check_healthy(info, status, f"the sandbox at {databricks_url} (from DATABRICKS_HOST)",
                   "stop its `provision sandbox` and start it again, or unset the sandbox's exports")
    return info if status is not None else None


def start_detached(state_dir: Path, time_scale: float, timeout: float = 60) -> SandboxInfo:
    """Start `provision sandbox` in the background, recorded in `state_dir`; return once it answers."""
    print(f"Starting the sandbox in the background (time scale {time_scale}; `provision sandbox stop` ends it)...",
          file=sys.stderr, flush=True)
    prepare_dir(state_dir)
    with contextlib.suppress(FileNotFoundError):
        record_path(state_dir).unlink()
    log = (state_dir / "sandbox.log").open("ab")
    subprocess.Popen(
        [sys.executable, "-m", "provisioner", "sandbox", "--state-dir", str(state_dir), "--time-scale",
         str(time_scale)],
        stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True, close_fds=True)
    log.close()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = read_record(state_dir)
        if info is not None:
            return info
        time.sleep(0.1)
    raise RuntimeError(f"the sandbox did not start within {timeout:.0f} s; see {state_dir / 'sandbox.log'}")


def ensure_running(state_dir: Path, time_scale: float | None = None) -> SandboxInfo:
    """The sandbox the environment points at, else the one recorded in `state_dir` if it is alive, else a new
    detached one."""
    info = from_environment() or read_record(state_dir)
    if info is not None:
        return info
    return start_detached(state_dir, DEFAULT_TIME_SCALE if time_scale is None else time_scale)


def stop_recorded(state_dir: Path, timeout: float = 10) -> SandboxInfo | None:
    """Stop the sandbox recorded in `state_dir`, healthy or not; None if none was running."""
    info = _read(state_dir)
    if info is not None and not (_alive(info.pid) and _health(info) is not None):
        info = None  # a stale record: its process is gone, or the pid now belongs to something else
    with contextlib.suppress(FileNotFoundError):
        record_path(state_dir).unlink()
    if info is None:
        return None
    with contextlib.suppress(ProcessLookupError):
        os.kill(info.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _alive(info.pid):
        time.sleep(0.05)
    return info


class StopSignals:
    """Turns SIGTERM and SIGINT into a flag. A handler must not take locks (threading.Event.set does, and can
    deadlock when the signal lands while the main thread holds the same lock), so it only sets an attribute."""

    def __init__(self) -> None:
        self.stopped = False
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)

    def _stop(self, signum: int, frame: Any) -> None:
        self.stopped = True

    def wait(self, poll: float = 0.1) -> None:
        while not self.stopped:
            time.sleep(poll)


def serve_forever(sandbox: Sandbox, signals: StopSignals) -> None:
    """Block until SIGTERM/SIGINT (caught from before the sandbox started), then stop both emulators."""
    try:
        signals.wait()
    finally:
        sandbox.stop()


def metastore_resolver(host: str) -> list[str]:
    """The sandbox has no DNS: the legacy metastore resolves to documentation addresses."""
    return list(SANDBOX_METASTORE_ADDRESSES)
