"""Shared fixtures: emulated AWS served over real HTTP, a CLI runner, and API-call counting."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

# The CLI's consoles are made when it is imported, and rich fixes a console's size then if COLUMNS or LINES is set
# (pytest-xdist's workers start with 80 and 24): without them, the consoles follow the COLUMNS each test sets.
os.environ.pop("COLUMNS", None)
os.environ.pop("LINES", None)

from provisioner.aws import clients
from provisioner.cli import main

ACCOUNT_ID = "0d4f7b3a-1c2e-4b5a-9f8e-7d6c5b4a3f2e"
REGION = "eu-central-1"


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """One in-process moto server (with the sandbox's patches) for the whole run; reset per test."""
    os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")  # seconds per region, and nothing uses them
    from moto.server import ThreadedMotoServer

    from provisioner.sandbox import install_patches

    install_patches()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws(moto_server: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    """A clean emulated AWS account; boto3 anywhere in the process talks to it."""
    requests.post(f"{moto_server}/moto-api/reset", timeout=10)
    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    yield moto_server


def client(service: str, region: str = REGION) -> Any:
    """An independent boto3 client for reading back what provision made."""
    return boto3.client(service, region_name=region, config=BotoConfig(retries={"total_max_attempts": 1}))


@dataclass
class CallLog:
    calls: list[str] = field(default_factory=list)
    # (IAM service prefix, operation), e.g. ("network-firewall", "CreateFirewall")
    operations: set[tuple[str, str]] = field(default_factory=set)

    def __call__(self, model: Any, **kwargs: Any) -> None:
        self.calls.append(model.name)
        self.operations.add((model.service_model.signing_name, model.name))

    @property
    def mutating(self) -> list[str]:
        return [c for c in self.calls if clients.is_mutating(c) and c != "GetCallerIdentity"]

    def clear(self) -> None:
        self.calls.clear()


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> CallLog:
    """Every AWS API call provision makes (botocore before-call hook)."""
    log = CallLog()
    monkeypatch.setattr(clients, "SESSION_HOOKS", [("before-call.*.*", log)])
    return log


@dataclass
class Result:
    code: int
    out: str
    err: str


@dataclass
class Workdir:
    path: Path
    capsys: pytest.CaptureFixture[str]

    def write_config(self, text: str) -> Path:
        cfg = self.path / "provision.toml"
        cfg.write_text(text)
        return cfg

    def run(self, *args: str) -> Result:
        """Run `provision` in-process, as a user would type it, from the work directory."""
        self.capsys.readouterr()
        cwd = os.getcwd()
        os.chdir(self.path)
        try:
            code = main(list(args))
        finally:
            os.chdir(cwd)
        captured = self.capsys.readouterr()
        return Result(int(code), captured.out, captured.err)


@pytest.fixture
def workdir(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Workdir:
    for var in ("PROVISION_CONFIG", "PROVISION_STATE_DIR", "PROVISION_DEPLOYMENT", "PROVISION_REGION",
                "DATABRICKS_ACCOUNT_ID"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("PROVISION_POLL_SCALE", "0")
    return Workdir(tmp_path, capsys)


def config_text(deployment: str | None = None, spokes: tuple[tuple[str, str], ...] = (("main", "10.173.0.0/16"),),
                hub_azs: int = 2, extra: str = "") -> str:
    lines = [f'deployment = "{deployment or "t" + uuid.uuid4().hex[:6]}"', f'databricks_account_id = "{ACCOUNT_ID}"',
             f"hub_availability_zones = {hub_azs}"]
    lines.append(extra)
    for name, cidr in spokes:
        lines += ["[[spokes]]", f'name = "{name}"', f'cidr = "{cidr}"']
    return "\n".join(lines) + "\n"


# -- Databricks: the emulated Account API, served over HTTP to the real SDK ----------------------------------

DATABRICKS_CLIENT_ID = "test-client"
# Distinctive values, so tests can assert they never appear in anything provision prints.
DATABRICKS_CLIENT_SECRET = "dose-secret-" + uuid.uuid4().hex
DATABRICKS_USERNAME = "admin@example.com"
DATABRICKS_PASSWORD = "dpw-secret-" + uuid.uuid4().hex
DATABRICKS_ENV_VARS = ("DATABRICKS_HOST", "DATABRICKS_CLIENT_ID", "DATABRICKS_CLIENT_SECRET", "DATABRICKS_USERNAME",
                       "DATABRICKS_PASSWORD", "DATABRICKS_TOKEN", "DATABRICKS_CONFIG_PROFILE", "DATABRICKS_AUTH_TYPE",
                       "DATABRICKS_ACCOUNT_ID", "PROVISION_WORKSPACE_URL_TEMPLATE")


class FakeClock:
    """Time that moves only when someone sleeps: waits and deadlines take no wall time. Thread-safe."""

    def __init__(self, start: float = 1000.0) -> None:
        import threading

        self._now = start
        self._lock = threading.Lock()
        self.slept: list[float] = []

    def now(self) -> float:
        with self._lock:
            return self._now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self._now += max(seconds, 0.0)
            self.slept.append(seconds)


@dataclass
class DatabricksApi:
    """The emulated account of one test: its settings are fresh, its clock fake, its requests logged."""

    emulator: Any
    url: str
    clock: FakeClock
    requests: list[str]

    @property
    def settings(self) -> Any:
        return self.emulator.settings

    def workspace_url(self, deployment_name: str) -> str:
        from provisioner.sandbox.databricks_api import workspace_url

        return workspace_url(self.url, deployment_name)

    def account_client(self) -> Any:
        """An independent SDK client, for reading back what provision made."""
        from databricks.sdk import AccountClient

        return AccountClient(host=self.url, account_id=ACCOUNT_ID, client_id=DATABRICKS_CLIENT_ID,
                             client_secret=DATABRICKS_CLIENT_SECRET, auth_type="oauth-m2m")

    def share_clock(self, monkeypatch: pytest.MonkeyPatch) -> FakeClock:
        """Make provision's clock (`ctx.clock`) this fake one too, so its waits move the emulator's time."""
        from provisioner.context import Clock

        monkeypatch.setattr(Clock, "now", lambda _self: self.clock.now())
        monkeypatch.setattr(Clock, "sleep", lambda _self, seconds: self.clock.sleep(seconds))
        return self.clock


@pytest.fixture(scope="session")
def databricks_server() -> Iterator[tuple[Any, str]]:
    """One emulated Databricks account on a free port for the whole run; `databricks` resets it per test."""
    from provisioner.sandbox.databricks_api import DatabricksEmulator, EmulatorSettings, serve

    emulator = DatabricksEmulator(EmulatorSettings(
        account_id=ACCOUNT_ID, client_id=DATABRICKS_CLIENT_ID, client_secret=DATABRICKS_CLIENT_SECRET,
        username=DATABRICKS_USERNAME, password=DATABRICKS_PASSWORD))
    server, url = serve(emulator)
    yield emulator, url
    server.shutdown()


@pytest.fixture
def databricks(databricks_server: tuple[Any, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> DatabricksApi:
    """A clean emulated account, and the environment that points provision at it (OAuth M2M)."""
    from provisioner.sandbox.databricks_api import EmulatorSettings

    clock = FakeClock()
    log: list[str] = []
    fresh = EmulatorSettings(account_id=ACCOUNT_ID, client_id=DATABRICKS_CLIENT_ID,
                             client_secret=DATABRICKS_CLIENT_SECRET, username=DATABRICKS_USERNAME,
                             password=DATABRICKS_PASSWORD, clock=clock.now, log=log.append)
    emulator, url = databricks_server
    for name in fresh.__dataclass_fields__:
        setattr(emulator.settings, name, getattr(fresh, name))
    emulator.reset()
    for var in DATABRICKS_ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", str(tmp_path / "no-databrickscfg"))
    monkeypatch.setenv("DATABRICKS_HOST", url)
    monkeypatch.setenv("DATABRICKS_CLIENT_ID", DATABRICKS_CLIENT_ID)
    monkeypatch.setenv("DATABRICKS_CLIENT_SECRET", DATABRICKS_CLIENT_SECRET)
    monkeypatch.setenv("PROVISION_WORKSPACE_URL_TEMPLATE", f"{url}/ws/{{deployment_name}}")
    return DatabricksApi(emulator, url, clock, log)


@pytest.fixture(autouse=True)
def _databricks_for_cli_runs(request: pytest.FixtureRequest) -> None:
    """Every test that runs provision against emulated AWS gets the emulated Databricks account as well
    (`up`, `down` and `status` check the Databricks credentials before anything else)."""
    if "aws" in request.fixturenames and "databricks" not in request.fixturenames:
        request.getfixturevalue("databricks")


# -- DNS: the legacy metastore host, resolved by `up` to pin the firewall's 3306 rule ------------------------

METASTORE_TEST_ADDRESSES = ("203.0.113.10", "203.0.113.11")


@pytest.fixture(autouse=True)
def dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """The DNS the CLI's context resolves with: no test asks the real DNS. Every host resolves to
    METASTORE_TEST_ADDRESSES (documentation addresses, as in the sandbox) unless a test sets `dns[host]`."""
    import functools

    from provisioner import cli
    from provisioner.context import Context

    answers: dict[str, list[str]] = {}

    def resolve(host: str) -> list[str]:
        return list(answers.get(host, METASTORE_TEST_ADDRESSES))

    monkeypatch.setattr(cli, "Context", functools.partial(Context, resolver=resolve))
    return answers


# -- what is left: live resources tagged with a deployment ---------------------------------------------------

# AWS keeps some deleted resources listed (and tagged) for a while, in a `deleted` state.
_LINGERING = {
    "natgateway": ("describe_nat_gateways", "NatGatewayIds", "NatGateways", "State"),
    "vpc-endpoint": ("describe_vpc_endpoints", "VpcEndpointIds", "VpcEndpoints", "State"),
    "transit-gateway": ("describe_transit_gateways", "TransitGatewayIds", "TransitGateways", "State"),
    "transit-gateway-attachment": ("describe_transit_gateway_attachments", "TransitGatewayAttachmentIds",
                                   "TransitGatewayAttachments", "State"),
    "transit-gateway-route-table": ("describe_transit_gateway_route_tables", "TransitGatewayRouteTableIds",
                                    "TransitGatewayRouteTables", "State"),
}


def live_tagged(deployment: str) -> list[str]:
    """ARNs of every resource tagged with the deployment that is not in a deleted state."""
    tagging = client("resourcegroupstaggingapi")
    pages = tagging.get_paginator("get_resources").paginate(
        TagFilters=[{"Key": "provisioner:deployment", "Values": [deployment]}])
    arns = [r["ResourceARN"] for page in pages for r in page["ResourceTagMappingList"]]
    ec2 = client("ec2")
    live = []
    for arn in arns:
        kind, _, rid = arn.split(":")[-1].partition("/")
        if ":ec2:" in arn and kind in _LINGERING:
            method, ids_param, key, state_key = _LINGERING[kind]
            try:
                found = getattr(ec2, method)(**{ids_param: [rid]})[key]
            except ClientError:  # an unknown id: gone
                continue
            if all(item.get(state_key, "").lower() in ("deleted", "deleting") for item in found):
                continue
        live.append(arn)
    return live
