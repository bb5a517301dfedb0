"""The `provision` command line: parse, build the context, call the engine, render. Nothing else.

`main()` turns every failure into one clear line and an exit code (DESIGN.md); `--debug` shows the traceback.

Start-up is kept short: the engine, the steps, boto3 and the Databricks SDK are imported by the commands that use
them (the SDK alone takes a second), so `--help` and `plan` never load the SDKs.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shlex
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from provisioner.commands.egress import egress_app, sandbox_traffic
from provisioner.context import Context
from provisioner.design.config import TEMPLATE, Config, ConfigError
from provisioner.errors import CloudError, ExitStatus, UsageError
from provisioner.settings import DEFAULT_CONFIG, DEFAULT_STATE_DIR, fingerprint, load_config, with_hub_split
from provisioner.state import State, StateError

if TYPE_CHECKING:
    from provisioner import engine
    from provisioner.steps.base import Check, Step

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Stand up Databricks on AWS behind a hub-and-spoke data-exfiltration firewall.")
# Piped output is read by tools and people who grep: wide enough that IDs and ARNs are not cut.
out = Console(highlight=False, width=None if sys.stdout.isatty() or "COLUMNS" in os.environ else 200)
err = Console(stderr=True, highlight=False)

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", envvar="PROVISION_CONFIG", show_default=False,
                                                help=f"Settings file [default: {DEFAULT_CONFIG}]")]
StateDirOpt = Annotated[Path, typer.Option("--state-dir", envvar="PROVISION_STATE_DIR",
                                           help="Where state files live")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table")]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show tracebacks")]
WorkersOpt = Annotated[int, typer.Option("--workers", min=1, max=64, help="Steps run at once (default 32)")]
SandboxOpt = Annotated[bool, typer.Option("--sandbox", envvar="PROVISION_SANDBOX",
                                          help="Use the local emulator (started if not running)")]


class Progress(StrEnum):
    auto = "auto"
    json = "json"


ProgressOpt = Annotated[Progress, typer.Option("--progress", case_sensitive=False,
                                               help="auto: a live view on a terminal, plain lines elsewhere; json: "
                                                    "one JSON object per line on stdout (step, state, elapsed, "
                                                    "message), for pipelines")]


@dataclass
class Options:
    config_path: Path
    config_explicit: bool
    state_dir: Path
    sandbox: bool = False
    _backend: Any = None

    def backend(self, config: Config) -> Any:
        """Where this deployment's state lives: the state directory, or the S3 backend the config or
        PROVISION_STATE names (checked on first use: bucket, versioning, encryption)."""
        if self._backend is None:
            from provisioner.backends import backend_for
            from provisioner.settings import state_backend_url

            self._backend = backend_for(state_backend_url(self.config_path, self.config_explicit), self.state_dir,
                                        config.region)
            if self._backend.kind != "local" and config.deployment_generated:
                raise UsageError("a shared state backend needs a fixed deployment name; set `deployment` in the "
                                 "config (or PROVISION_DEPLOYMENT)")
        return self._backend

    def load(self, config: Config) -> State:
        return self.backend(config).load(config.deployment)  # type: ignore[no-any-return]


# Variables that would point the SDKs somewhere other than the sandbox.
FOREIGN_AUTH_VARS = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "DATABRICKS_CONFIG_PROFILE", "DATABRICKS_TOKEN",
                     "DATABRICKS_USERNAME", "DATABRICKS_PASSWORD", "DATABRICKS_AUTH_TYPE")


def _set_options(config: Path | None, state_dir: Path, sandbox: bool = False) -> Options:
    # Bad input in the environment and flags first: before the config is read, the sandbox started or anything
    # written or called.
    _poll_scale()
    _check_state_dir(state_dir)
    opts = Options(config or Path(DEFAULT_CONFIG), config is not None, state_dir, sandbox)
    if sandbox:
        from provisioner.sandbox.server import ensure_running

        _config(opts)  # bad input is reported before anything starts
        try:
            info = ensure_running(state_dir)
        except RuntimeError as e:
            raise CloudError(str(e)) from e
        for var in FOREIGN_AUTH_VARS:
            os.environ.pop(var, None)
        os.environ.update(info.exports())
    return opts


def _flags(opts: Options) -> str:
    """What a command suggested to the user needs to reach this deployment again: its config file, the sandbox."""
    return (f" -c {shlex.quote(str(opts.config_path))}" if opts.config_explicit else "") + (
        " --sandbox" if opts.sandbox else "")


def _check_kind(state: State, sandbox: bool) -> None:
    """A sandbox deployment's state never drives a real run, nor the reverse."""
    if state.exists and state.sandbox != sandbox:
        if state.sandbox:
            raise StateError(f"deployment {state.deployment} was built in the sandbox; add --sandbox, or use another "
                             "deployment name for a real one")
        raise StateError(f"deployment {state.deployment} is a real deployment; drop --sandbox, or use another "
                         "deployment name in the sandbox")


def _config(opts: Options) -> Config:
    return load_config(opts.config_path, opts.config_explicit, opts.state_dir)


def _require_account(config: Config) -> None:
    if not config.databricks_account_id:
        raise ConfigError("databricks_account_id is not set; set it in the config file or export "
                          "DATABRICKS_ACCOUNT_ID (your account ID, a UUID from the account console)")


def _check_state_dir(state_dir: Path) -> None:
    """The state directory, or the nearest part of its path that exists, must be a directory (the rest is made)."""
    for path in (state_dir, *state_dir.parents):
        if path.is_dir():
            return
        if path.exists() or path.is_symlink():
            where = "is not a directory" if path == state_dir else f"cannot be made: {path} is not a directory"
            raise UsageError(f"the state directory {state_dir} {where}; point --state-dir (or PROVISION_STATE_DIR) "
                             "at a directory (it is made if missing)")


def _aws_factory(config: Config, workers: int) -> Callable[[], Any]:
    """Check that AWS credentials exist (no call is made), and return the client factory."""
    from provisioner.aws.clients import Aws, new_session

    session = new_session(config.region)
    if session.get_credentials() is None:
        raise UsageError("no AWS credentials found; set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                         "(boto3's usual chain is used)")
    # Every worker may hold a connection to the same endpoint at once.
    return lambda: Aws(config.region, session=session, max_pool_connections=workers)


def _databricks_factory(config: Config, sign_in_now: bool = True) -> Callable[[], Any] | None:
    """The Databricks account client factory, its environment checked before any AWS call and, with
    `sign_in_now`, its credentials too (None while no step needs it)."""
    try:
        from provisioner.databricks.client import account_client_factory
    except ImportError:
        return None
    return account_client_factory(config, sign_in_now=sign_in_now)


class _SignInBeside:
    """`up`'s Databricks sign-in, made in a thread of its own while `up` plans and runs its preflight's AWS reads,
    instead of before them: the credential check, then the SDK's client (its import is most of a second of CPU).
    `wait` is called before the first step, so credentials Databricks refuses still stop `up` (exit 2) before any
    write to either cloud, and no step waits for the SDK. Called, it gives the signed-in client."""

    def __init__(self, check: Callable[[], Callable[[], Any]]) -> None:
        self.check = check
        self._client: Any = None
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def begin(self) -> None:
        def run() -> None:
            try:
                self._client = self.check()()
            except BaseException as e:  # handed to whoever waits
                self._error = e

        self._thread = threading.Thread(target=run, name="databricks-sign-in", daemon=True)
        self._thread.start()

    def wait(self) -> None:
        if self._thread is None:
            self.begin()
        assert self._thread is not None
        self._thread.join()
        if self._error is not None:
            raise self._error

    def __call__(self) -> Any:
        self.wait()
        return self._client


def _poll_scale() -> float:
    """PROVISION_POLL_SCALE multiplies every polling interval (the sandbox and tests shorten them)."""
    raw = os.environ.get("PROVISION_POLL_SCALE", "1")
    try:
        value = float(raw)
    except ValueError:
        raise UsageError(f"PROVISION_POLL_SCALE={raw!r} is not a number; use 1 (real timing, the default) or a "
                         "fraction such as 0.1") from None
    if not (math.isfinite(value) and 0 <= value <= 10):
        raise UsageError(f"PROVISION_POLL_SCALE={raw} is not between 0 and 10; use 1 (real timing, the default) or "
                         "a fraction such as 0.1")
    return value


def all_steps(config: Config) -> list[Step]:
    """Every step of the deployment (the step modules load here, not with the CLI)."""
    from provisioner import steps

    return steps.all_steps(config)


def all_checks(config: Config) -> list[Check]:
    from provisioner import steps

    return steps.all_checks(config)


def _steps(config: Config) -> list[Step]:
    return all_steps(config)


@contextmanager
def _session(opts: Options, config: Config, command: str, *, workers: int, databricks: bool = True,
             fit_hub: bool = False, sign_in_beside: bool = False) -> Iterator[tuple[Context, list[Step]]]:
    """Lock the deployment, load its state and build the context for a command that talks to the clouds. The
    context's config is the deployment's as it stands (the hub's subnet split kept): use `ctx.config`.

    With `sign_in_beside`, the Databricks environment is checked now, and the sign-in begins in a thread of its
    own (`_SignInBeside`), for the first `ctx.databricks` to wait for."""
    poll_scale = _poll_scale()
    before = opts.load(config)
    _check_kind(before, opts.sandbox)
    with_hub_split(config, before, fit_hub)  # hub AZs that no longer fit: bad input, before the lock
    _require_account(config)
    aws_factory = _aws_factory(config, workers)
    db_factory = _databricks_factory(config, sign_in_now=not sign_in_beside) if databricks else None
    if db_factory is not None and sign_in_beside:
        db_factory = _SignInBeside(db_factory)
    with opts.backend(config).locked(config.deployment, command):
        state = opts.load(config)
        _check_kind(state, opts.sandbox)
        config = with_hub_split(config, state, fit_hub)
        if state.exists and command in ("up", "down"):
            state.set_meta(last_command=command)  # what `state list` shows
        ctx = Context(config=config, state=state, aws_factory=aws_factory, databricks_factory=db_factory,
                      poll_scale=poll_scale)
        if isinstance(db_factory, _SignInBeside):
            db_factory.begin()
        if opts.sandbox:
            from provisioner.sandbox.server import metastore_resolver

            ctx.resolver = metastore_resolver
        try:
            yield ctx, _steps(config)
        finally:
            ctx.cancelled.set()  # steps still running after an interrupt stop at their next report...
            state.close()  # ...and can no longer write the state file once the lock is released


# -- commands -----------------------------------------------------------------------------------


def _version(value: bool) -> None:
    if value:
        from provisioner import __version__

        out.print(f"provision {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                help="Print the version and exit")] = False) -> None:
    """Stand up Databricks on AWS behind a hub-and-spoke data-exfiltration firewall."""


@app.command()
def init(config: ConfigOpt = None, force: Annotated[bool, typer.Option("--force", help="Overwrite")] = False) -> None:
    """Write a commented provision.toml with every setting and its default."""
    path = config or Path(DEFAULT_CONFIG)
    if path.exists() and not force:
        raise UsageError(f"{path} already exists; edit it, or pass --force to overwrite it")
    try:
        path.write_text(TEMPLATE)
    except OSError as e:
        raise UsageError(f"cannot write {path} ({e.strerror}); give -c a file in a directory that exists") from e
    out.print(f"Wrote {path}. Set databricks_account_id (or export DATABRICKS_ACCOUNT_ID), then run `provision plan`.")


@app.command()
def plan(config: ConfigOpt = None, state_dir: StateDirOpt = Path(DEFAULT_STATE_DIR), as_json: JsonOpt = False,
         sandbox: SandboxOpt = False, debug: DebugOpt = False,
         prune: Annotated[bool, typer.Option("--prune", hidden=True)] = False) -> None:
    """Show what `up` would do, from the config and the state file: no network call, no credentials."""
    from provisioner import engine, render
    from provisioner.steps import privatelink

    if prune:
        raise UsageError("--prune is an option of `provision up`; plan already lists what it would delete")
    opts = _set_options(config, state_dir, sandbox)
    cfg = _config(opts)
    state = opts.load(cfg)
    _check_kind(state, sandbox)
    cfg = with_hub_split(cfg, state)
    steps = _steps(cfg)
    items = engine.plan(steps, state)
    if as_json:
        doc = render.plan_json(items, cfg.deployment)
        doc["deployment_name_generated"] = cfg.deployment_generated and not state.exists
        doc["allowlists"] = render.allowlists(cfg)
        print(json.dumps(doc, indent=2))
        return
    out.print(f"plan for deployment {cfg.deployment}")
    out.print(render.plan_table(items, cfg.deployment))
    if cfg.deployment_generated and not state.exists:
        out.print(f"[dim]Deployment name {cfg.deployment} was generated just now; `up` generates and keeps its own "
                  "in the state file. Set `deployment` in the config to fix it in advance.[/]")
    for line in render.allowlist_lines(cfg, out.width):
        out.print(line, markup=False, soft_wrap=True)
    out.print(render.plan_summary(items))
    _warn_orphans(state, steps)
    _warn_settings(cfg)
    try:
        privatelink.check_switch(cfg, state)
    except UsageError as e:
        err.print(f"warning: `up` will refuse this config: {e}", markup=False, soft_wrap=True)


def _warn_settings(cfg: Config) -> None:
    for warning in cfg.warnings:
        err.print(f"warning: {warning}", markup=False, soft_wrap=True)


def _warn_orphans(state: State, steps: list[Step]) -> None:
    """Resources the state file records that the config no longer describes (fewer AZs, a spoke removed)."""
    orphans = sorted(set(state.resources()) - {s.key for s in steps})
    if orphans:
        counted = f"{len(orphans)} resource" + ("s" if len(orphans) > 1 else "")
        err.print(f"warning: the state file records {counted} the config no longer has "
                  f"({', '.join(orphans[:6])}{', ...' if len(orphans) > 6 else ''}); provision leaves them alone: "
                  "`provision up --prune` deletes them.", markup=False, soft_wrap=True)


@app.command()
def up(config: ConfigOpt = None, state_dir: StateDirOpt = Path(DEFAULT_STATE_DIR), workers: WorkersOpt = 32,
       sandbox: SandboxOpt = False, debug: DebugOpt = False, progress: ProgressOpt = Progress.auto,
       prune: Annotated[bool, typer.Option("--prune", help="Also delete what the config no longer has (a removed "
                                           "spoke), after asking")] = False,
       yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation (--prune)")] = False,
       delete_data: Annotated[bool, typer.Option("--delete-data", help="--prune: also delete the data in removed "
                                                 "spokes' root buckets")] = False,
       skip_preflight: Annotated[bool, typer.Option("--skip-preflight", help="Do not check the region, quotas and "
                                                    "permissions first")] = False) -> None:
    """Create everything, or finish what an earlier run left; never makes a duplicate."""
    from provisioner import engine, render
    from provisioner import prune as pruning
    from provisioner.steps import privatelink
    from provisioner.steps.base import Retired

    opts = _set_options(config, state_dir, sandbox)
    cfg = _config(opts)
    # With --progress json, stdout carries only the JSON lines: what people read goes to stderr.
    human = err if progress == Progress.json else out
    if prune:
        # What would be deleted is known (and rebuildable) before anything is asked, locked or written.
        before = opts.load(cfg)
        _check_kind(before, sandbox)
        removed = [s.key for s in pruning.removed_steps(before, _steps(with_hub_split(cfg, before)), all_steps)]
        if removed and not yes:
            if not sys.stdin.isatty():
                raise UsageError("up --prune needs confirmation; pass --yes to delete without asking")
            err.print("The config no longer has: " + ", ".join(removed), markup=False, soft_wrap=True)
            typer.confirm(f"Delete these {len(removed)} resources of deployment {cfg.deployment} in {cfg.region}?",
                          abort=True)
    with _session(opts, cfg, "up", workers=workers, sign_in_beside=True) as (ctx, steps):
        cfg = ctx.config
        removed_steps = pruning.removed_steps(ctx.state, steps, all_steps) if prune else []
        engine.check_plan(steps, ctx.state)  # before anything is written
        privatelink.check_switch(cfg, ctx.state)
        if not skip_preflight:
            _preflight_for_up(ctx, cfg, steps, human)
        if isinstance(ctx.databricks_factory, _SignInBeside):
            ctx.databricks_factory.wait()  # begun beside the preflight: refused credentials stop here
        ctx.state.set_meta(generated_name=cfg.deployment_generated or ctx.state.get_meta("generated_name"),
                           config_fingerprint=fingerprint(cfg), sandbox=sandbox, last_command="up")
        pruning.remember_config(ctx.state, cfg, pruned=False)
        if not prune:
            _warn_orphans(ctx.state, steps)
        _warn_settings(cfg)
        ctx.delete_data = delete_data
        keys = [s.key for s in steps if not (isinstance(s, Retired) and ctx.state.resource(s.key) is None)]
        keys += [s.key for s in reversed(removed_steps)]
        with render.progress_view(progress.value, out, keys) as view:
            ctx.report = view.report
            result = engine.up(ctx, steps, workers=workers)
            # The shared resources learn first that the removed parts are gone (the firewall stops using the
            # subnets of an AZ removed, say); then the removed parts go, in `down`'s order.
            if removed_steps and not result.failures:
                pruned = engine.prune(ctx, removed_steps, workers=workers)
                result = engine.RunResult(result.outcomes + pruned.outcomes)
                if not pruned.failures and not pruning.orphan_keys(ctx.state, steps):
                    pruning.remember_config(ctx.state, cfg, pruned=True)
        _progress_end(view, result)
        for line in render.run_summary(result):
            human.print(line)
        if not result.failures:
            for line in render.up_summary(cfg, ctx.state, _flags(opts), width=human.width):
                human.print(line, markup=False, soft_wrap=True)
    _finish(result, "up", counted=True)


def _preflight_for_up(ctx: Context, cfg: Config, steps: list[Step], human: Console) -> None:
    """`up` checks first what would make it fail, when it has something to create or change (the Databricks
    credentials sign in beside it, and are waited for after it)."""
    from provisioner import engine
    from provisioner.preflight import FAIL, Preflight

    items = engine.plan(steps, ctx.state)
    if all(i.action in ("nothing", "orphan") for i in items):
        return
    findings = Preflight(cfg, ctx.aws).run(items)
    failed = [f for f in findings if f.result == FAIL]
    for finding in findings:
        if finding.result != "ok":
            err.print(finding.line(), markup=False, soft_wrap=True)
    if failed:
        raise UsageError(f"preflight: {len(failed)} check{'s' if len(failed) > 1 else ''} failed (above); up would "
                         "fail: fix them, or pass --skip-preflight")
    human.print(f"preflight: {len(findings)} checks passed", markup=False)


def _progress_end(view: Any, result: engine.RunResult) -> None:
    """--progress json: a last line for the whole run (`step` null), so a pipeline knows how it ended."""
    from provisioner import render

    if isinstance(view, render.JsonProgress):
        elapsed = max((time.monotonic() - t for t in view.started.values()), default=0.0)
        view.emit({"step": None, "state": "failed" if result.failures else "finished", "elapsed": round(elapsed, 3),
                   "message": render.run_summary(result)[0]})


@app.command()
def preflight(config: ConfigOpt = None, state_dir: StateDirOpt = Path(DEFAULT_STATE_DIR), sandbox: SandboxOpt = False,
              debug: DebugOpt = False) -> None:
    """Check what would make `up` fail: the region, Service Quotas, the operator's permissions, Databricks sign-in.
    Exit 2 if anything would."""
    from provisioner import engine
    from provisioner.preflight import FAIL, Preflight

    opts = _set_options(config, state_dir, sandbox)
    cfg = _config(opts)
    state = opts.load(cfg)
    _check_kind(state, sandbox)
    cfg = with_hub_split(cfg, state)
    _require_account(cfg)
    aws = _aws_factory(cfg, 4)()
    findings = Preflight(cfg, aws, databricks_check=lambda: _databricks_factory(cfg)).run(
        engine.plan(_steps(cfg), state))
    for finding in findings:
        out.print(finding.line(), markup=False, soft_wrap=True)
    failed = [f for f in findings if f.result == FAIL]
    if failed:
        err.print(f"preflight: {len(failed)} of {len(findings)} checks failed: `provision up` would fail.",
                  markup=False)
        raise typer.Exit(ExitStatus.BAD_INPUT)
    out.print(f"preflight: all {len(findings)} checks passed.", markup=False)


@app.command()
def down(config: ConfigOpt = None, state_dir: StateDirOpt = Path(DEFAULT_STATE_DIR),
         yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation")] = False,
         delete_data: Annotated[bool, typer.Option("--delete-data", help="Also delete root bucket data")] = False,
         delete_logs: Annotated[bool, typer.Option(
             "--delete-logs", help="Also delete the firewall, DNS query and flow log groups")] = False,
         workers: WorkersOpt = 32, sandbox: SandboxOpt = False, debug: DebugOpt = False,
         progress: ProgressOpt = Progress.auto) -> None:
    """Delete what `up` made, in a safe order, and nothing it did not make."""
    from provisioner import engine, render
    from provisioner import prune as pruning
    from provisioner.steps import privatelink

    opts = _set_options(config, state_dir, sandbox)
    cfg = _config(opts)
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError("down needs confirmation; pass --yes to delete without asking")
        typer.confirm(f"Delete every resource of deployment {cfg.deployment} in {cfg.region}?", abort=True)
    cfg = privatelink.as_built(cfg, opts.load(cfg))  # PrivateLink turned off since: its resources go too
    with _session(opts, cfg, "down", workers=workers, fit_hub=True) as (ctx, steps):
        ctx.delete_data = delete_data
        ctx.delete_logs = delete_logs
        ctx.proofs = False  # what it deletes, and every twin of it, is described
        # What the config no longer has but the state records (a spoke removed, fewer hub AZs, without
        # `up --prune` since) goes too, in one graph with the rest: a dropped AZ's subnets once the hub's
        # attachment that still holds them is gone, a removed spoke's attachment before the Transit Gateway.
        orphans, unknown = pruning.orphan_steps_for_down(ctx.state, steps, all_steps)
        if unknown:
            err.print(f"warning: {unknown}", markup=False, soft_wrap=True)
        steps = [*steps, *orphans]
        with render.progress_view(progress.value, out, [s.key for s in reversed(steps)]) as view:
            ctx.report = view.report
            result = engine.down(ctx, steps, workers=workers)
        _progress_end(view, result)
    human = err if progress == Progress.json else out
    for kept in result.of("kept"):
        human.print(f"[yellow]kept[/] {kept.key}: {escape(kept.message)}")
    _finish(result, "down", console=human)


@app.command()
def status(config: ConfigOpt = None, state_dir: StateDirOpt = Path(DEFAULT_STATE_DIR), as_json: JsonOpt = False,
           workers: WorkersOpt = 32, sandbox: SandboxOpt = False, debug: DebugOpt = False,
           progress: ProgressOpt = Progress.auto,
           report: Annotated[Path | None, typer.Option("--report", help="Also write an HTML report (picture, checks, "
                                                       "allowlists) to this file", show_default=False)] = None) -> None:
    """Read the cloud: what exists, what drifted. Exit 3 if anything is missing or drifted."""
    from provisioner import engine, render
    from provisioner.report import check_report_path, write_report

    check_report_path(report)
    opts = _set_options(config, state_dir, sandbox)
    cfg = _config(opts)
    with _session(opts, cfg, "status", workers=workers) as (ctx, steps):
        cfg = ctx.config
        items = engine.status(ctx, steps, workers=workers)
        items += engine.run_checks(ctx, all_checks(cfg))
        _warn_orphans(ctx.state, steps)
        if report is not None:
            write_report(report, ctx, items)
    healthy = all(i.status in ("present", "ok") for i in items)
    deployed = any(i.status != "missing" for i in items if i.kind != "check")
    if progress == Progress.json:
        lines = render.JsonProgress()
        for i in items:
            lines.emit({"step": i.key, "state": i.status, "elapsed": 0.0, "message": "; ".join(i.drift)})
        lines.emit({"step": None, "state": "healthy" if healthy else "unhealthy", "elapsed": 0.0,
                    "message": f"{sum(i.status not in ('present', 'ok') for i in items)} of {len(items)} resources "
                               "missing or drifted"})
    elif as_json:
        print(json.dumps({"deployment": cfg.deployment, "healthy": healthy, "deployed": deployed,
                          "resources": [i.__dict__ for i in items], "allowlists": render.allowlists(cfg)}, indent=2))
    elif not deployed:
        out.print(f"Nothing of deployment {cfg.deployment} exists ({len(items)} resources checked): "
                  f"`provision up{_flags(opts)}` builds it.")
    else:
        out.print(f"status of deployment {cfg.deployment}")
        out.print(render.status_table(items, cfg.deployment))
        for line in render.status_problems(items):
            out.print(f"  ! {line}", soft_wrap=True, markup=False)
        for line in render.allowlist_lines(cfg, out.width):
            out.print(line, markup=False, soft_wrap=True)
        bad = [i for i in items if i.status not in ("present", "ok")]
        out.print("All resources present and as configured." if healthy else
                  f"{len(bad)} of {len(items)} resources missing or drifted.")
    if any(i.status == "unreadable" for i in items):
        err.print("status could not read everything (see above): the answer is incomplete.")
        raise typer.Exit(ExitStatus.CLOUD_FAILED)
    if not healthy:
        raise typer.Exit(ExitStatus.NOT_HEALTHY)


@app.command()
def output(config: ConfigOpt = None, state_dir: StateDirOpt = Path(DEFAULT_STATE_DIR), as_json: JsonOpt = False,
           show_secrets: Annotated[bool, typer.Option("--show-secrets", help="Print tokens")] = False,
           sandbox: SandboxOpt = False, debug: DebugOpt = False) -> None:
    """Print the deployment's outputs (workspace URLs, tokens hidden unless --show-secrets)."""
    opts = _set_options(config, state_dir, sandbox)
    cfg = _config(opts)
    state = opts.load(cfg)
    _check_kind(state, sandbox)
    doc = _outputs(state, show_secrets)
    if as_json:
        print(json.dumps(doc, indent=2))
        return
    if not doc["outputs"] and not doc["secrets"]:
        err.print(f"Deployment {cfg.deployment} has no outputs: nothing is deployed (`provision up{_flags(opts)}` "
                  "builds it).", soft_wrap=True, markup=False)
        return
    for key, value in doc["outputs"].items():
        out.print(f"{key} = {value}")
    for key, value in doc["secrets"].items():
        out.print(f"{key} = {value}")


def _outputs(state: State, show_secrets: bool) -> dict[str, Any]:
    snap = state.snapshot()
    # A shared backend's state holds each token's secret ARN: --show-secrets reads the token from it.
    secrets = {k: (state.secret(k) if show_secrets else "(hidden: --show-secrets prints it)")
               for k in snap["secrets"]}
    return {"deployment": snap["deployment"], "outputs": snap["outputs"], "secrets": secrets}


def _finish(result: engine.RunResult, command: str, counted: bool = False, console: Console | None = None) -> None:
    from provisioner import render

    if not counted:
        for line in render.run_summary(result):
            (console or out).print(line)
    if result.failures:
        for f in result.failures:
            err.print(f"[red]error:[/] {f.key}: {escape(f.message)}")
        err.print(f"{command} did not finish; the state file keeps what was created: rerun `provision {command}` "
                  "to resume.")
        raise typer.Exit(ExitStatus.CLOUD_FAILED)


@app.command()
def unlock(config: ConfigOpt = None, state_dir: StateDirOpt = Path(DEFAULT_STATE_DIR),
           yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation")] = False,
           debug: DebugOpt = False) -> None:
    """Release a shared backend's lock whose holder died (asks first; --yes)."""
    opts = _set_options(config, state_dir)
    cfg = _config(opts)
    backend = opts.backend(cfg)
    if backend.kind == "local":
        raise UsageError("the local state lock goes with the process that held it: there is nothing to unlock")
    from provisioner.backends import describe_holder

    held = backend.lock_holder(cfg.deployment)
    if held is None:
        out.print(f"Deployment {cfg.deployment} is not locked.")
        return
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError("unlock needs confirmation; pass --yes to release the lock without asking")
        typer.confirm(f"Release the lock of {describe_holder(held)}? Only if that command is no longer running",
                      abort=True)
    gone = backend.unlock(cfg.deployment)
    out.print(f"Released the lock of {gone}." if gone else f"Deployment {cfg.deployment} is not locked.")


state_app = typer.Typer(help="Where state lives: move it between backends, list the deployments in one.")
app.add_typer(state_app, name="state")


@state_app.command("migrate")
def state_migrate(to: Annotated[str, typer.Option("--to", help="s3://BUCKET/PREFIX, or a local directory")],
                  config: ConfigOpt = None, state_dir: StateDirOpt = Path(DEFAULT_STATE_DIR),
                  debug: DebugOpt = False) -> None:
    """Copy this deployment's state to another backend (local to S3 and back); never overwrites a state there."""
    from provisioner.backends import LocalBackend, backend_for

    opts = _set_options(config, state_dir)
    cfg = _config(opts)
    source = opts.backend(cfg)
    target = (backend_for(to, Path(), cfg.region) if to.startswith("s3:")
              else LocalBackend(Path(to)))
    if target.where == source.where:
        raise UsageError(f"the state is already in {to}")
    with source.locked(cfg.deployment, "state migrate"):
        state = source.load(cfg.deployment)
        if not state.exists:
            raise UsageError(f"{source.where} holds no state for deployment {cfg.deployment}: nothing to migrate")
        doc = state.snapshot()
        # Tokens move as values: into the target's secrets (a shared backend) or its 0600 file (local).
        tokens = {key: state.secret(key) for key in doc["secrets"]}
        doc["secrets"] = {}
        target.write_new(doc)
        moved = target.load(cfg.deployment)
        for key, token in tokens.items():
            if token is not None:
                moved.put("secrets", key, token)
    out.print(f"Copied deployment {cfg.deployment} from {source.where} to {target.where}. Point the config's "
              f"[state] backend (or PROVISION_STATE) at it; the copy in {source.where} is left as it was.")


@state_app.command("list")
def state_list(config: ConfigOpt = None, state_dir: StateDirOpt = Path(DEFAULT_STATE_DIR), as_json: JsonOpt = False,
               debug: DebugOpt = False) -> None:
    """The deployments in the state backend, with their last command and time."""
    opts = _set_options(config, state_dir)
    cfg = _config(opts)
    backend = opts.backend(cfg)
    rows = [{"deployment": d["deployment"], "last_command": d.get("last_command") or "",
             "updated_at": d.get("updated_at", ""), "resources": len(d.get("resources", {}))}
            for d in backend.deployments()]
    if as_json:
        print(json.dumps({"backend": backend.where, "deployments": rows}, indent=2))
        return
    if not rows:
        out.print(f"No deployments in {backend.where}.")
    for row in rows:
        out.print(f"{row['deployment']:<22} {row['updated_at']:<21} {row['last_command'] or '-':<10} "
                  f"{row['resources']} resources", markup=False)


sandbox_app = typer.Typer(help="Run the local emulator: AWS (moto) and the Databricks Account API, offline.")
app.add_typer(sandbox_app, name="sandbox")
app.add_typer(egress_app, name="egress")
sandbox_app.command("traffic")(sandbox_traffic)


@sandbox_app.callback(invoke_without_command=True)
def sandbox_serve(
    ctx: typer.Context,
    state_dir: StateDirOpt = Path(DEFAULT_STATE_DIR),
    time_scale: Annotated[float, typer.Option("--time-scale", min=0, max=1,
                                              help="Real durations times this (0.02: a 6-minute firewall in 8 s)")]
    = 0.02,
    aws_port: Annotated[int, typer.Option("--aws-port", min=0, max=65535, help="0 picks a free port")] = 0,
    databricks_port: Annotated[int, typer.Option("--databricks-port", min=0, max=65535,
                                                 help="0 picks a free port")] = 0,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="A line per request")] = False,
    quota: Annotated[list[str] | None, typer.Option(
        "--quota", metavar="SERVICE/CODE=VALUE",
        help="Give a Service Quota another value in every region (ec2/L-0263D0A3=2: two Elastic IPs; "
             "vpc/L-F678F1CE=20: twenty VPCs); repeatable")] = None,
    debug: DebugOpt = False,
) -> None:
    """Run the sandbox in the foreground (Ctrl-C stops it); `provision sandbox stop` ends a detached one."""
    if ctx.invoked_subcommand is not None:
        return
    from provisioner.sandbox import quotas, server

    try:
        quota_values = [quotas.parse_quota(q) for q in quota or []]
    except ValueError as e:
        raise UsageError(str(e)) from None
    _check_state_dir(state_dir)
    running = server.read_record(state_dir)
    if running is not None:
        flag = f" --state-dir {shlex.quote(str(state_dir))}" if state_dir != Path("state") else ""
        raise UsageError(f"a sandbox is already running for the state directory {state_dir} (pid {running.pid}, "
                         f"AWS at {running.aws_url}); `provision sandbox stop{flag}` ends it")
    signals = server.StopSignals()  # before anything starts, so an early SIGTERM still stops it cleanly
    sb = server.Sandbox(time_scale=time_scale, aws_port=aws_port, databricks_port=databricks_port,
                        log=(lambda line: out.print(line, markup=False)) if verbose else None)
    for service, code, amount in quota_values:
        quotas.set_quota_everywhere(service, code, amount)
    server.write_record(state_dir, sb.info)
    out.print(f"Sandbox running (pid {sb.info.pid}, time scale {time_scale}); Ctrl-C stops it.")
    for service, code, amount in quota_values:
        out.print(f"  quota {service}/{code} ({quotas.DEFAULT_QUOTAS[(service, code)][0]}) = {amount:g}")
    out.print(f"  emulated AWS                    {sb.info.aws_url}")
    out.print(f"  emulated Databricks account API {sb.info.databricks_url}")
    out.print("Commands with --sandbox in this directory use it; so does any provision command, and the AWS CLI, boto3 "
              "and the Databricks SDK, in a shell with these exports:")
    for key, value in sb.info.exports().items():
        out.print(f"  export {key}={shlex.quote(value)}", markup=False, soft_wrap=True)
    sys.stdout.flush()
    try:
        server.serve_forever(sb, signals)
    finally:
        current = server.record_path(state_dir)
        if current.exists() and json.loads(current.read_text()).get("pid") == sb.info.pid:
            current.unlink()


@sandbox_app.command("stop")
def sandbox_stop(state_dir: StateDirOpt = Path(DEFAULT_STATE_DIR)) -> None:
    """Stop the sandbox recorded in the state directory."""
    from provisioner.sandbox import server

    _check_state_dir(state_dir)
    info = server.stop_recorded(state_dir)
    out.print(f"Stopped the sandbox (pid {info.pid})." if info else "No sandbox was running.")


# -- entry point --------------------------------------------------------------------------------


class _StderrHandler(logging.Handler):
    """Writes to whatever `sys.stderr` is at the time (tests swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            print(self.format(record), file=sys.stderr)
        except Exception:
            self.handleError(record)


def _quiet_sdk_logs(debug: bool) -> None:
    """The Databricks SDK logs request and response bodies at DEBUG and warns (about an unreachable host, say)
    through Python's last-resort handler, around our one-line errors. Its records stop at its own logger, below
    WARNING are never made, and reach stderr only with --debug, scrubbed of secrets."""
    from provisioner.databricks.secrets import ScrubbingFilter

    logger = logging.getLogger("databricks")
    logger.setLevel(logging.WARNING)
    logger.propagate = False
    for old in [h for h in logger.handlers if getattr(h, "provision", False)]:
        logger.removeHandler(old)
    handler: logging.Handler = _StderrHandler() if debug else logging.NullHandler()
    handler.provision = True  # type: ignore[attr-defined]
    handler.addFilter(ScrubbingFilter())
    handler.setFormatter(logging.Formatter("%(name)s: %(levelname)s: %(message)s"))
    logger.addHandler(handler)


def _traceback(e: BaseException) -> None:
    """--debug: the traceback (causes included), with every secret scrubbed."""
    from provisioner.databricks.secrets import scrub

    print(scrub("".join(traceback.format_exception(e)).rstrip()), file=sys.stderr)


def _usage_error(e: Exception) -> int | None:
    """Click's own errors (unknown option, missing value, unknown command): its message, exit 2.

    Recent typer releases carry their own copy of click, so both exception families are checked."""
    import click

    families: tuple[type[Exception], ...] = (click.exceptions.ClickException,
                                             getattr(typer, "TyperException", click.exceptions.ClickException))
    if not isinstance(e, families) or not hasattr(e, "show"):
        return None
    message = e.format_message().strip() if hasattr(e, "format_message") else ""
    if not message:  # a command group given no command: its help is the answer
        e.show()
        return ExitStatus.BAD_INPUT
    # One line, like every other mistake, not click's usage block: the message, and where the options are.
    ctx = getattr(e, "ctx", None)
    where = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
    err.print(f"error: {message.removesuffix('.')}{where}", soft_wrap=True, markup=False)
    return ExitStatus.BAD_INPUT


def entry() -> None:
    """The `provision` console script. Once `main()` returns, the state file is saved, closed and unlocked; with
    the output flushed, it leaves at once, skipping the interpreter's teardown (finalising every loaded module,
    and after an interrupt waiting for API calls still under way in worker threads)."""
    code = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:  # the reader went away (`provision plan | head`): nothing left to tell it
        pass
    os._exit(code)


def _bad_input() -> tuple[type[Exception], ...]:
    """Errors that are the user's to fix (exit 2). The engine's PlanError counts once the engine is loaded: a
    command that never imported it cannot have raised it."""
    engine = sys.modules.get("provisioner.engine")
    return (ConfigError, UsageError, StateError, *((engine.PlanError,) if engine is not None else ()))


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; every error becomes one line on stderr and an exit code."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    _quiet_sdk_logs(debug)
    try:
        code = app(args=argv, prog_name="provision", standalone_mode=False)
        # Typer answers Ctrl-C by returning 130 rather than raising, in this mode.
        if code == ExitStatus.INTERRUPTED:
            raise KeyboardInterrupt
        return code if isinstance(code, int) else ExitStatus.OK
    except typer.Exit as e:
        return int(e.exit_code)
    except typer.Abort:
        err.print("Cancelled; nothing was changed.")
        return ExitStatus.INTERRUPTED
    except _bad_input() as e:
        if debug:
            _traceback(e)
        err.print(f"error: {e}", soft_wrap=True, markup=False)
        return ExitStatus.BAD_INPUT
    except CloudError as e:
        if debug:
            _traceback(e)
        err.print(f"error: {e}", soft_wrap=True, markup=False)
        return ExitStatus.CLOUD_FAILED
    except KeyboardInterrupt:
        err.print("Interrupted; the state file keeps what was created, and a rerun adopts what calls still under "
                  "way create: rerun to resume.")
        return ExitStatus.INTERRUPTED
    except Exception as e:
        usage = _usage_error(e)
        if usage is not None:
            return usage
        # A bug: its traceback, scrubbed (an SDK exception may carry what the service echoed).
        _traceback(e)
        return ExitStatus.CLOUD_FAILED

