"""How results look: rich tables for people, JSON for machines, a live line per step while work runs."""

from __future__ import annotations

import json
import sys
import textwrap
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from provisioner.design.config import Config
from provisioner.engine import PlanItem, RunResult, StatusItem
from provisioner.state import State

ACTION_STYLE = {"create": "green", "nothing": "dim", "update": "yellow", "recreate": "red", "delete": "red",
                "orphan": "yellow"}
STATUS_STYLE = {"present": "green", "missing": "red", "drifted": "yellow", "ok": "green", "failed": "red",
                "unreadable": "red"}
STATE_STYLE = {"creating": "cyan", "waiting": "cyan", "deleting": "cyan", "checking": "dim", "retrying": "yellow",
               "done": "green", "unchanged": "dim", "deleted": "green", "absent": "dim", "kept": "yellow",
               "failed": "red", "skipped": "yellow"}
FINAL_STATES = {"done", "unchanged", "deleted", "absent", "kept", "failed"}
ACTIVE_STATES = {"checking", "creating", "waiting", "deleting", "retrying", "updating"}


def _details(details: dict[str, Any]) -> str:
    return "  ".join(f"{k}={v}" for k, v in details.items())


def plan_table(items: Sequence[PlanItem], deployment: str) -> Table:
    table = Table(box=None, pad_edge=False)
    table.add_column("action", no_wrap=True)
    table.add_column("resource", no_wrap=True)
    table.add_column("name and details", overflow="fold")
    for it in items:
        action = it.action + (f" ({it.reason})" if it.reason else "")
        details = "  ".join(x for x in (f"{it.kind} {it.name}", _details(it.details)) if x)
        table.add_row(f"[{ACTION_STYLE[it.action]}]{action}[/]", it.key, details)
    return table


def plan_summary(items: Sequence[PlanItem]) -> str:
    counts = {a: sum(1 for i in items if i.action == a) for a in ("create", "update", "recreate", "delete",
                                                                    "nothing")}
    if not counts["create"] and not counts["update"] and not counts["recreate"] and not counts["delete"] and not any(
            i.action == "orphan" for i in items):
        return (f"Nothing to do: all {len(items)} resources are up to date "
                "(per the state file; `status` asks the cloud).")
    deleting = f"{counts['delete']} to delete (replaced by the current design), " if counts["delete"] else ""
    orphans = sum(1 for i in items if i.action == "orphan")
    left = f" {orphans} no longer in the config (`up --prune` deletes them)." if orphans else ""
    return (f"{counts['create']} to create, {counts['update']} to update, {counts['recreate']} to recreate, "
            f"{deleting}{counts['nothing']} unchanged.{left}")


def plan_json(items: Sequence[PlanItem], deployment: str) -> dict[str, Any]:
    return {"deployment": deployment, "resources": [asdict(i) for i in items]}


def status_table(items: Sequence[StatusItem], deployment: str) -> Table:
    table = Table(box=None, pad_edge=False)
    table.add_column("status", no_wrap=True)
    table.add_column("resource", no_wrap=True)
    table.add_column("id", overflow="fold")
    for it in items:
        table.add_row(f"[{STATUS_STYLE.get(it.status, '')}]{it.status}[/]", it.key, it.id or it.name)
    return table


def status_problems(items: Sequence[StatusItem]) -> list[str]:
    """One line per way a resource differs from what it should be, or a check failed."""
    return [f"{it.key}: {problem}" for it in items for problem in (it.drift or ([it.status] if it.status not in
                                                                                   ("present", "ok") else []))]


def run_summary(result: RunResult) -> list[str]:
    lines = []
    for name in ("created", "updated", "unchanged", "deleted", "absent", "kept", "failed", "skipped"):
        n = len(result.of(name))
        if n:
            lines.append(f"{n} {name}")
    return [", ".join(lines)]


class ProgressView:
    """One line per step with its state and elapsed time; live on a terminal, plain lines elsewhere."""

    def __init__(self, console: Console, keys: Sequence[str]) -> None:
        self.console = console
        self.keys = list(keys)
        self.started: dict[str, float] = {}
        self.ended: dict[str, float] = {}
        self.states: dict[str, tuple[str, str]] = {}
        self.lock = threading.Lock()
        self.live: Live | None = None
        self.final = False  # the last frame: only what needs attention stays on screen

    def __enter__(self) -> ProgressView:
        if self.console.is_terminal:
            self.live = Live(self._table(), console=self.console, refresh_per_second=8, transient=False)
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.final = True
            self.live.update(self._table())
            self.live.__exit__(None, None, None)

    def report(self, key: str, state: str, message: str) -> None:
        with self.lock:
            now = time.monotonic()
            self.started.setdefault(key, now)
            if state in FINAL_STATES:
                self.ended[key] = now
            previous = self.states.get(key)
            self.states[key] = (state, message)
            if self.live is not None:
                self.live.update(self._table())
            elif state != "checking" and (state, message) != previous:
                elapsed = self.ended.get(key, now) - self.started[key]
                text = f"{key:<40} {state:<10} {elapsed:6.1f}s"
                self.console.print(f"[{STATE_STYLE.get(state, '')}]{text}[/] {escape(message)}".rstrip(),
                                   highlight=False, soft_wrap=True)

    def _rows(self, room: int) -> tuple[list[str], str]:
        """The steps worth a line when not all fit: failures and work under way first, then the latest done."""
        if len(self.keys) <= room:
            return self.keys, ""
        active = [k for k in self.keys if self.states.get(k, ("",))[0] in ACTIVE_STATES | {"failed"}]
        finished = sorted((k for k in self.keys if k in self.ended and k not in active),
                          key=lambda k: self.ended[k])
        shown = set(active[:room]) | set(finished[-max(room - len(active), 0):] if room > len(active) else [])
        pending = sum(1 for k in self.keys if k not in self.states)
        summary = (f"{len(finished)} finished, {len(active)} under way, {pending} pending "
                   f"({len(self.keys) - len(shown)} not shown)")
        return [k for k in self.keys if k in shown], summary

    def _table(self) -> RenderableType:
        table = Table(box=None, show_header=False, pad_edge=False)
        table.add_column("resource", no_wrap=True)
        table.add_column("state", min_width=9, no_wrap=True)
        table.add_column("elapsed", justify="right", min_width=7, no_wrap=True)
        table.add_column("message", no_wrap=True, overflow="ellipsis")
        now = time.monotonic()
        keys, summary = self._rows(max(self.console.height - 3, 5))
        if self.final:
            keys = [k for k in self.keys if self.states.get(k, ("",))[0] in ("failed", "kept", "retrying")]
            summary = ""
        for key in keys:
            if key not in self.states:
                table.add_row(key, "[dim]pending[/]", "", "")
                continue
            state, message = self.states[key]
            elapsed = self.ended.get(key, now) - self.started[key]
            table.add_row(key, f"[{STATE_STYLE.get(state, '')}]{state}[/]", f"{elapsed:.1f}s", Text(message))
        return Group(table, Text(summary, style="dim")) if summary else table


class JsonProgress:
    """`--progress json`: one JSON object per state change on stdout, for pipelines: `step`, `state`, `elapsed`
    (seconds since the step started) and `message`. Written and flushed line by line, so a reader sees each at
    once; nothing else goes to stdout while it is in use."""

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream
        self.started: dict[str, float] = {}
        self.states: dict[str, tuple[str, str]] = {}
        self.lock = threading.Lock()

    def __enter__(self) -> JsonProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def report(self, key: str, state: str, message: str) -> None:
        with self.lock:
            now = time.monotonic()
            self.started.setdefault(key, now)
            if self.states.get(key) == (state, message):
                return
            self.states[key] = (state, message)
            self.emit({"step": key, "state": state, "elapsed": round(now - self.started[key], 3),
                       "message": message})

    def emit(self, doc: dict[str, Any]) -> None:
        stream = self.stream or sys.stdout
        stream.write(json.dumps(doc, sort_keys=False) + "\n")
        stream.flush()


def progress_view(kind: str, console: Console, keys: Sequence[str]) -> ProgressView | JsonProgress:
    """The progress display `--progress` names: `auto` (live on a terminal, plain lines elsewhere) or `json`."""
    return JsonProgress() if kind == "json" else ProgressView(console, keys)


def allowlists(config: Config) -> dict[str, list[str]]:
    """Every domain each spoke may reach through the firewall: the deployment's allowlist and its own."""
    from provisioner.design.firewall import spoke_allowed_fqdns
    from provisioner.design.layout import layout

    lay = layout(config)
    return {s.name: list(spoke_allowed_fqdns(config, lay, s.name)) for s in config.spokes}


def allowlist_lines(config: Config, width: int = 100) -> list[str]:
    """Per spoke: its own domains, then how many the whole deployment allows (listed once, after)."""
    from provisioner.design.firewall import firewall_fqdns, spoke_fqdns
    from provisioner.design.layout import layout

    shared = firewall_fqdns(config, layout(config))
    own = spoke_fqdns(config)
    lines = ["Allowed through the firewall (TLS SNI / HTTP Host):"]
    lines += _wrapped("every spoke", shared, width)
    for spoke in config.spokes:
        lines += _wrapped(f"{spoke.name} only", own.get(spoke.name) or ("(nothing more)",), width)
    return lines


def _wrapped(label: str, names: Sequence[str], width: int) -> list[str]:
    indent = f"  {label:<14} "
    return textwrap.wrap(", ".join(names), width=max(width, 60), initial_indent=indent,
                         subsequent_indent=" " * len(indent), break_long_words=False, break_on_hyphens=False)


def up_summary(config: Config, state: State, flags: str = "", width: int = 100) -> list[str]:
    """What a newcomer wants after `up`: where the workspaces are and how egress is fenced."""
    from provisioner.design.layout import layout

    lay = layout(config)
    firewall = (state.resource("hub/firewall") or {}).get("outputs", {})
    endpoints = firewall.get("endpoints") or {}
    lines = [f"Deployment {config.deployment} in {config.region}:",
             f"  hub      {lay.hub_cidr}  NAT subnets {', '.join(lay.hub_nat_subnet_cidrs)}"]
    for az in lay.hub_azs:
        lines.append(f"  egress   {az.az}: TGW subnet -> firewall endpoint {endpoints.get(az.az, '(none yet)')} -> "
                     f"NAT in {az.cidrs.nat_subnet} -> internet")
    name_width = max(len(s.name) for s in lay.spokes)
    for spoke in lay.spokes:
        workspace = (state.resource(f"spoke/{spoke.name}/workspace") or {}).get("outputs", {})
        lines.append(f"  spoke    {spoke.name:<{name_width}}  {spoke.cidrs.vpc:<15}  workspace "
                     f"{workspace.get('url', '(not created)')}")
    dns = {"block": "names off the allowlist answer NXDOMAIN", "alert": "names off the allowlist are only logged",
           "off": "off"}[config.dns_firewall_mode]
    lines.append(f"  DNS      DNS Firewall on every spoke: {dns}")
    lines += allowlist_lines(config, width)
    lines.append(f"Tokens: `provision output{flags} --show-secrets`.  Health: `provision status{flags}`.")
    return lines
