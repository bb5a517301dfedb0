"""`provision egress check|blocked` and `provision sandbox traffic`: operating the default-deny egress.

- `egress check HOST`: what a flow from a spoke would meet, decided from what AWS has now (the DNS Firewall
  rules, the routes, the firewall policy and its rule groups), not from the config. Exit 0 when it would pass, 4
  when it would be dropped, 1 when a rule that could decide it cannot be evaluated (the answer is incomplete).
- `egress blocked`: what the firewall's ALERT log and the DNS query log say was refused, per spoke, and the
  provision.toml lines that would allow it.
- `sandbox traffic`: simulated flows through the sandbox's firewall, logged as AWS logs them.

Bad input (a host, port, protocol, spoke, address or duration that is not one) is one line, exit 2, before any
cloud call. docs/operations.md has the details.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from provisioner.design import evaluate as ev
from provisioner.errors import ExitStatus, UsageError
from provisioner.settings import DEFAULT_CONFIG, DEFAULT_STATE_DIR

if TYPE_CHECKING:
    from provisioner.context import Context
    from provisioner.design.config import Config
    from provisioner.egress_live import SpokeCheck, Target

# `egress check`: the flow would be dropped (beside the exit codes of DESIGN.md).
EXIT_DROPPED = 4
DEFAULT_PORTS = {"tls": 443, "tcp": 443, "http": 80, "udp": 53}
HOST_RE = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
DURATION_RE = re.compile(r"^(?:\d+[smhdw])+$")
DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
MAX_SINCE_SECONDS = 366 * 86400
# A log read longer than this many pages says how far it has got.
PROGRESS_EVERY_PAGES = 5

egress_app = typer.Typer(help="What the egress firewall lets through: a what-if, and what it refused.",
                         no_args_is_help=True)

out = Console(highlight=False, width=None if sys.stdout.isatty() or "COLUMNS" in os.environ else 200)
err = Console(stderr=True, highlight=False)

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", envvar="PROVISION_CONFIG", show_default=False,
                                                help="Settings file [default: provision.toml]")]
StateDirOpt = Annotated[Path, typer.Option("--state-dir", envvar="PROVISION_STATE_DIR", help="Where state files live")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text")]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show tracebacks")]
SandboxOpt = Annotated[bool, typer.Option("--sandbox", envvar="PROVISION_SANDBOX",
                                          help="Use the local emulator (started if not running)")]
SpokeOpt = Annotated[str | None, typer.Option("--spoke", help="Only this spoke [default: every spoke]",
                                              show_default=False)]
ProtocolOpt = Annotated[str, typer.Option("--protocol", help="tls, http, tcp, udp or icmp")]


# -- bad input: one line, exit 2, before anything is called -------------------------------------------------------


def parse_protocol(value: str) -> str:
    protocol = value.strip().lower()
    if protocol not in ev.PROTOCOLS:
        raise UsageError(f"--protocol {value!r} is not one of {', '.join(ev.PROTOCOLS)}")
    return protocol


def parse_port(value: str | int | None, protocol: str, what: str = "--port") -> int | None:
    if protocol == "icmp":
        if value is not None:
            raise UsageError(f"{what} {value}: ICMP has no ports; leave the port out")
        return None
    if value is None:
        return DEFAULT_PORTS[protocol]
    text = str(value).strip()
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise UsageError(f"{what} {value!r} is not a port (1 to 65535)")
    return int(text)


def parse_host(value: str, what: str = "HOST", port_suffix: bool = False) -> tuple[str | None, str | None]:
    """(name, address): a DNS name (lowercased, without a trailing dot) or an IPv4 address. `port_suffix`: a port
    is written HOST:PORT (sandbox traffic), not --port."""
    text = value.strip().lower().removesuffix(".")
    try:
        return None, str(ipaddress.IPv4Address(text))
    except ValueError:
        pass
    if not HOST_RE.match(text) or re.match(r"^[\d.]+$", text):
        url = re.match(r"^(https?)://([^/:?#]+)(?::(\d+))?", text)
        if url:  # a URL pasted whole: its host, and the protocol and port it implies
            scheme, host, port = url.groups()
            if port and port_suffix:
                host, port = f"{host}:{port}", None
            flags = (["--protocol http"] if scheme == "http" else []) + ([f"--port {port}"] if port else [])
            raise UsageError(f"{what} {value!r} is a URL; give its host alone: {host}"
                             + (f" with {' '.join(flags)}" if flags else " (TLS, port 443, is the default)"))
        raise UsageError(f"{what} {value!r} is neither a DNS name (such as pypi.org) nor an IPv4 address")
    return text, None


def parse_address(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        address = ipaddress.IPv4Address(value.strip())
    except ValueError:
        raise UsageError(f"--address {value!r} is not an IPv4 address") from None
    return str(address)


def parse_since(value: str) -> int:
    """A duration such as 30m, 1h, 2d or 1h30m, in seconds."""
    text = value.strip().lower()
    if not DURATION_RE.match(text):
        raise UsageError(f"--since {value!r} is not a duration; use a number and a unit, such as 30m, 1h, 2d or "
                         "1h30m (units s, m, h, d, w)")
    seconds = sum(int(n) * DURATION_UNITS[u] for n, u in re.findall(r"(\d+)([smhdw])", text))
    if not 0 < seconds <= MAX_SINCE_SECONDS:
        raise UsageError(f"--since {value!r} must be more than nothing and at most 366 days")
    return seconds


def parse_target(value: str, protocol: str) -> Target:
    """`HOST[:PORT]` (sandbox traffic)."""
    from provisioner.egress_live import Target

    if "://" in value:
        parse_host(value, "target", port_suffix=True)  # a URL: refused, with its HOST[:PORT]
    host, sep, port = value.rpartition(":") if value.count(":") == 1 else (value, "", "")
    name, address = parse_host(host if sep else value, "target")
    return Target(name, address, protocol, parse_port(port if sep else None, protocol, f"the port of {value!r}"))


def check_spoke(config: Config, spoke: str | None) -> list[str]:
    names = [s.name for s in config.spokes]
    if spoke is None:
        return names
    if spoke not in names:
        raise UsageError(f"--spoke {spoke!r} is not a spoke of deployment {config.deployment}; its spokes are "
                         f"{', '.join(names)}")
    return [spoke]


# -- reading the cloud --------------------------------------------------------------------------------------------


@dataclass
class _Session:
    config: Config
    ctx: Context


def _open(config: Path | None, state_dir: Path, sandbox: bool, validate: Any = None) -> _Session:
    """The config (validated, then `validate(config)` for flags that depend on it) and a read-only context over
    the deployment's state wherever its backend keeps it: no lock (nothing is written), AWS only."""
    from provisioner import cli
    from provisioner.context import Context
    from provisioner.settings import with_hub_split

    opts = cli._set_options(config, state_dir, False)
    cfg = cli._config(opts)
    if validate is not None:
        validate(cfg)
    if sandbox:
        opts = cli._set_options(config, state_dir, True)
    state = opts.load(cfg)
    cli._check_kind(state, sandbox)
    cfg = with_hub_split(cfg, state)
    ctx = Context(config=cfg, state=state, aws_factory=cli._aws_factory(cfg, 4), poll_scale=cli._poll_scale())
    return _Session(cfg, ctx)


# -- egress check -------------------------------------------------------------------------------------------------


@egress_app.command("check")
def check_command(
    host: Annotated[str | None, typer.Argument(help="A DNS name (pypi.org) or an IPv4 address",
                                               show_default=False)] = None,
    port: Annotated[str | None, typer.Option("--port", help="Destination port [default: 443; 80 for http, 53 for "
                                                            "udp; none for icmp]", show_default=False)] = None,
    protocol: ProtocolOpt = "tls",
    spoke: SpokeOpt = None,
    address: Annotated[str | None, typer.Option("--address", help="The address HOST resolves to, when known",
                                                show_default=False)] = None,
    config: ConfigOpt = None, state_dir: StateDirOpt = Path(DEFAULT_STATE_DIR), as_json: JsonOpt = False,
    sandbox: SandboxOpt = False, debug: DebugOpt = False,
) -> None:
    """What a flow from a spoke to HOST would meet: DNS Firewall, routes, firewall rules, as AWS has them now.
    Exit 0 if it would pass, 4 if dropped."""
    from provisioner import egress_live

    if host is None:
        raise UsageError("egress check needs a HOST: a DNS name (such as pypi.org) or an IPv4 address")
    proto = parse_protocol(protocol)
    name, literal = parse_host(host)
    given = parse_address(address)
    if given is not None and literal is not None:
        raise UsageError("--address goes with a DNS name; HOST is already an address")
    target = egress_live.Target(name, literal or given, proto, parse_port(port, proto))
    session = _open(config, state_dir, sandbox, lambda cfg: check_spoke(cfg, spoke))
    spokes = check_spoke(session.config, spoke)
    live = egress_live.read(session.ctx, spokes)
    results = egress_live.check(live, target, spokes)
    verdicts = {r.verdict for r in results}
    overall = ev.UNKNOWN if ev.UNKNOWN in verdicts else ev.DROP if ev.DROP in verdicts else ev.PASS
    if as_json:
        print(json.dumps({"deployment": session.config.deployment, "target": {
            "host": target.host, "address": target.address, "protocol": target.protocol, "port": target.port},
            "firewall": live.firewall.name, "policy": live.firewall.policy.name, "verdict": overall,
            "spokes": [r.as_dict() for r in results]}, indent=2))
    else:
        _print_check(session.config.deployment, live.firewall.policy.name, target, results, overall)
    if overall == ev.UNKNOWN:
        raise typer.Exit(ExitStatus.CLOUD_FAILED)
    if overall == ev.DROP:
        raise typer.Exit(EXIT_DROPPED)


def _print_check(deployment: str, policy: str, target: Target, results: list[SpokeCheck], overall: str) -> None:
    proto = target.protocol.upper()
    where = f"port {target.port}" if target.port is not None else "no port"
    assumed = "" if target.address or not target.host else "; its address is not known (--address gives it)"
    out.print(f"{escape(target.host or target.address or '')} ({proto}, {where}) from deployment {deployment}, "
              f"decided by the live policy {policy}{assumed}", soft_wrap=True)
    for result in results:
        out.print(f"spoke {result.spoke} (source {result.source}):")
        if result.dns is not None:
            out.print(f"  DNS       {escape(result.dns.describe())}", soft_wrap=True)
        seen = []
        for path in result.paths:
            line = path.summary()
            if line not in seen:
                seen.append(line)
                out.print(f"  {'route' if len(seen) == 1 else '':<9} {escape(line)}", soft_wrap=True)
        firewall = result.firewall
        if firewall is not None:
            decision = firewall.decision
            out.print(f"  firewall  {escape(decision.describe())}", soft_wrap=True)
            if decision.rule is not None:
                out.print(f"            rule: {escape(decision.rule.text)}", soft_wrap=True)
            for rule in decision.alerts:
                out.print(f"            alert: {escape(rule.describe())}", soft_wrap=True)
            for rule in decision.uncertain:
                out.print(f"            may alert (not evaluated: {escape(rule.problem or '')}): "
                          f"{escape(rule.describe())}", soft_wrap=True)
            for note in decision.notes:
                out.print(f"            note: {escape(note)}", soft_wrap=True)
            for condition, other in firewall.alternatives:
                out.print(f"            {escape(condition)}: {escape(other.describe())}", soft_wrap=True)
        style = {ev.PASS: "green", ev.DROP: "red"}.get(result.verdict, "yellow")
        word = {ev.PASS: "passes", ev.DROP: "dropped", ev.UNKNOWN: "unknown"}[result.verdict]
        why = "; ".join(r for r in result.reasons() if not r.startswith("the firewall:"))
        out.print(f"  verdict   [{style}]{word}[/]" + (f" ({escape(why)})" if why and result.verdict != ev.PASS
                                                        else ""), soft_wrap=True)
    if len(results) > 1:
        word = {ev.PASS: "passes from every spoke", ev.DROP: "dropped from at least one spoke",
                ev.UNKNOWN: "unknown for at least one spoke"}[overall]
        out.print(f"verdict: {word}")
    if overall == ev.UNKNOWN:
        err.print("egress check could not evaluate a rule that may decide this flow (named above): the answer is "
                  "incomplete.")


# -- egress blocked -----------------------------------------------------------------------------------------------


def _progress(label: str) -> Any:
    """A progress callback for a log read: a live line on a terminal, a line every few pages elsewhere."""
    status = err.status(f"reading {label}...") if err.is_terminal else None
    if status is not None:
        status.start()

    def report(pages: int, events: int) -> None:
        if status is not None:
            status.update(f"reading {label}: {pages} pages, {events} events")
        elif pages % PROGRESS_EVERY_PAGES == 0:
            err.print(f"reading {label}: {pages} pages, {events} events so far", markup=False, soft_wrap=True)

    def stop() -> None:
        if status is not None:
            status.stop()

    report.stop = stop  # type: ignore[attr-defined]
    return report


def _utc(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))


@egress_app.command("blocked")
def blocked_command(
    since: Annotated[str, typer.Option("--since", help="How far back: 30m, 1h, 2d...")] = "1h",
    spoke: SpokeOpt = None,
    config: ConfigOpt = None, state_dir: StateDirOpt = Path(DEFAULT_STATE_DIR), as_json: JsonOpt = False,
    sandbox: SandboxOpt = False, debug: DebugOpt = False,
) -> None:
    """What the firewall and the DNS Firewall refused, per spoke, and the provision.toml lines that would allow it."""
    from provisioner import cli, egress_live
    from provisioner.design import blocked
    from provisioner.design.dns_firewall import query_log_group_name
    from provisioner.design.firewall import log_group_name, spoke_allowed_fqdns
    from provisioner.steps import keys

    seconds = parse_since(since)
    session = _open(config, state_dir, sandbox, lambda cfg: check_spoke(cfg, spoke))
    cfg, ctx = session.config, session.ctx
    wanted = check_spoke(cfg, spoke)
    configured = {s.name: s.extra_allowed_fqdns for s in cfg.spokes}
    spokes = [blocked.SpokeInfo(s.name, (s.cidrs.vpc,), ctx.state.resource_id(keys.spoke(s.name, "vpc")),
                                configured[s.name], spoke_allowed_fqdns(cfg, ctx.layout, s.name), s.cidrs.vpc)
              for s in ctx.layout.spokes]
    end_ms = int(time.time() * 1000)
    start_ms = end_ms - seconds * 1000
    groups = {"alert": log_group_name(cfg.deployment, "ALERT"), "queries": query_log_group_name(cfg.deployment)}
    events: dict[str, list[egress_live.LogEvent]] = {}
    for kind, group in groups.items():
        progress = _progress(group)
        try:
            events[kind] = egress_live.read_log_events(ctx.aws.logs, group, start_ms, end_ms, progress)
        finally:
            progress.stop()
    refusals = blocked.summarize([(e.timestamp_ms, e.message) for e in events["alert"]],
                                 [(e.timestamp_ms, e.message) for e in events["queries"]], spokes)
    refusals = [r for r in refusals if spoke is None or r.spoke in wanted]
    shown = [s for s in spokes if s.name in wanted]
    settings = blocked.allow_settings(refusals, shown, every_spoke=spoke is None or len(spokes) == 1)
    lines = settings.lines(cfg.extra_allowed_fqdns, shown)
    if as_json:
        print(json.dumps({"deployment": cfg.deployment, "since": _utc(start_ms), "until": _utc(end_ms),
                          "log_groups": groups, "events": {k: len(v) for k, v in events.items()},
                          "refused": [r.as_dict() for r in refusals],
                          "allow": {"firewall": settings.deployment_wide, "spokes": settings.per_spoke},
                          "already_allowed": [{"spoke": s, "host": h} for s, h in settings.already_allowed],
                          "not_names": settings.not_names, "config_lines": lines}, indent=2))
        return
    out.print(f"Refused since {_utc(start_ms)} ({since}) in deployment {cfg.deployment}: "
              f"{len(events['alert'])} firewall ALERT records, {len(events['queries'])} DNS query records read.",
              soft_wrap=True)
    if not refusals:
        out.print("Nothing was refused" + (f" to spoke {spoke}" if spoke else "") + " in that time.")
        return
    table = Table(box=None, pad_edge=False)
    for column in ("spoke", "refused", "how", "count", "first seen", "last seen", "why"):
        table.add_column(column, justify="right" if column == "count" else "left",
                         overflow="fold" if column == "why" else "ellipsis", no_wrap=column != "why")
    for r in refusals:
        table.add_row(r.spoke or "(no spoke)", escape(r.target), r.kind, str(r.count), _utc(r.first_ms),
                      _utc(r.last_ms), escape("; ".join(sorted(r.reasons))))
    out.print(table)
    for spoke_name, host in settings.already_allowed:
        out.print(f"note: {host} is allowed for spoke {spoke_name} by the config now (refused before it was, or "
                  "the deployment differs from the config: `provision status`).", soft_wrap=True)
    if settings.not_names:
        out.print(f"note: {', '.join(settings.not_names)}: no setting allows these (addresses, reverse lookups); the "
                  "firewall passes names (TLS SNI, HTTP Host), the control plane and the metastore.", soft_wrap=True)
    if lines:
        again = cli._flags(cli.Options(config or Path(DEFAULT_CONFIG), config is not None, state_dir, sandbox))
        out.print(f"To allow these names, set in {config or DEFAULT_CONFIG} (each line replaces the whole list), "
                  f"then run `provision up{again}`:", markup=False)
        for line in lines:
            out.print(f"  {line}" if line else "", markup=False, soft_wrap=True)


# -- sandbox traffic ----------------------------------------------------------------------------------------------


def sandbox_traffic(
    targets: Annotated[list[str] | None, typer.Argument(help="HOST or HOST:PORT, one flow each",
                                                        show_default=False)] = None,
    spoke: Annotated[str | None, typer.Option("--spoke", help="The spoke the flows come from (required)",
                                              show_default=False)] = None,
    protocol: ProtocolOpt = "tls",
    config: ConfigOpt = None, state_dir: StateDirOpt = Path(DEFAULT_STATE_DIR), as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Send simulated flows from a spoke through the sandbox's firewall; they are logged as AWS logs them."""
    from provisioner import cli, egress_live
    from provisioner.context import Context
    from provisioner.sandbox import server, traffic
    from provisioner.settings import with_hub_split

    if not targets:
        raise UsageError("sandbox traffic needs at least one HOST or HOST:PORT to send a flow to")
    if spoke is None:
        raise UsageError("sandbox traffic needs --spoke NAME: the spoke the flows come from")
    proto = parse_protocol(protocol)
    flows = [parse_target(t, proto) for t in targets]
    opts = cli._set_options(config, state_dir, False)
    cfg = cli._config(opts)
    check_spoke(cfg, spoke)
    info = server.from_environment() or server.read_record(state_dir)
    if info is None:
        raise UsageError(f"no sandbox is running for the state directory {state_dir}: `sandbox traffic` only sends "
                         "flows through the sandbox (`provision up --sandbox` starts one and builds the deployment)")
    if info.aws_url != os.environ.get("AWS_ENDPOINT_URL"):
        for var in cli.FOREIGN_AUTH_VARS:
            os.environ.pop(var, None)
        os.environ.update(info.exports())
    state = opts.load(cfg)  # after the exports: a shared backend's bucket is the sandbox's too
    if state.exists and not state.sandbox:
        raise UsageError(f"deployment {cfg.deployment} is a real deployment: `sandbox traffic` only simulates flows "
                         "in the sandbox")
    cfg = with_hub_split(cfg, state)
    if not state.exists:
        raise UsageError(f"deployment {cfg.deployment} is not built in the sandbox: `provision up --sandbox` "
                         "builds it")
    ctx = Context(config=cfg, state=state, aws_factory=cli._aws_factory(cfg, 4), poll_scale=cli._poll_scale())
    live = egress_live.read(ctx, [spoke])
    sent = traffic.send(ctx, live, [(spoke, f) for f in flows])
    if as_json:
        print(json.dumps({"deployment": cfg.deployment, "flows": [s.as_dict() for s in sent]}, indent=2))
        return
    for s in sent:
        style = {ev.PASS: "green", ev.DROP: "red"}.get(s.verdict, "yellow")
        to = f" ({s.address})" if s.address and s.target.host else ""
        via = f" via {s.hub_az}" if s.hub_az else ""
        counted = {record: s.logged.count(record) for record in s.logged}
        logged = ("; logged: " + ", ".join(f"{n} {r}" if n > 1 else r for r, n in counted.items()) if s.logged
                  else "; nothing logged")
        out.print(f"{s.spoke} {s.source} -> {escape(s.target.label)}{to} {s.target.protocol}{via}: "
                  f"[{style}]{s.verdict}[/] ({escape(s.reason)}){logged}", soft_wrap=True)
    out.print(f"{len(sent)} flows sent; `provision egress blocked --sandbox` lists what was refused.")
