"""Where the time goes: `provision` against the sandbox's latency model, as ratios within one run and call counts.

    python benchmarks/run.py [--time-scale 0.05] [--spokes 1 10] [--skip-large]

It starts the sandbox in this process (both emulators, every long operation taking its real duration times the
time scale), then runs the real CLI in subprocesses, as a user would, and prints:

- start-up: `provision --help` and an offline `provision plan`, wall seconds (best of three);
- per deployment size: a fresh `up`, its wall time against the critical path (the longest chain of typical
  durations through the step graph, times the time scale: no schedule can beat it), and the ratio; then where
  the rest went, from the times its `--progress json` lines arrived: before the first step (start, preflight),
  from there to the firewall's create, the firewall's wait against its typical length, and after it (its
  routes, the end of the run). These hold on a busy machine better than the ratio does;
- the no-op `up` and `status` of the first size: AWS and Databricks requests (counted by the sandbox's request
  log), how many change anything, and the AWS calls by service and action;
- `down`, wall seconds.

Wall times depend on the machine; the ratios and counts are what to compare between versions. Nothing here is a
test: the test suite asserts call counts and "no write", never times.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
READ_PREFIXES = ("Describe", "Get", "List", "Head", "Search", "GET", "HEAD")


class RequestLog:
    """The sandbox's one line per request, counted: `aws  <service> <action> -> <status>`, `dbx  <line>`."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, line: str) -> None:
        with self.lock:
            self.lines.append(line)

    def mark(self) -> int:
        with self.lock:
            return len(self.lines)

    def since(self, mark: int) -> list[str]:
        with self.lock:
            return self.lines[mark:]


def aws_calls(lines: list[str]) -> Counter[str]:
    """`<service> <action>` per AWS request (S3's REST calls as `s3 <METHOD>`)."""
    return Counter(" ".join(line.split()[1:3]) for line in lines if line.startswith("aws "))


def dbx_calls(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("dbx ")]


def writes(calls: Counter[str]) -> int:
    return sum(n for call, n in calls.items() if not call.split(" ", 1)[1].startswith(READ_PREFIXES))


def provision(workdir: Path, env: dict[str, str], *args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "provisioner", *args], cwd=workdir, env=env, text=True,
                          capture_output=True, check=False)
    return time.monotonic() - started, done


def timed_up(workdir: Path, env: dict[str, str], *args: str) -> tuple[float, int, list[tuple[float, dict[str, Any]]]]:
    """`up --progress json`: wall seconds, exit status, and each progress line with when it arrived."""
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "provisioner", "up", "--progress", "json", *args], cwd=workdir,
                            env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    lines = [(time.monotonic() - started, json.loads(line)) for line in proc.stdout or []]
    code = proc.wait()
    return time.monotonic() - started, code, lines


def where_it_went(lines: list[tuple[float, dict[str, Any]]], wall: float, firewall_typical: float) -> list[str]:
    """The parts of a fresh `up` around the firewall's wait, in seconds since the process started."""
    steps = [(t, doc) for t, doc in lines if doc.get("step")]
    firewall = [(t, doc["state"]) for t, doc in steps if doc["step"] == "hub/firewall"]
    created = next((t for t, state in firewall if state == "waiting"), None)
    ready = next((t for t, state in firewall if state == "done"), None)
    if not steps or created is None or ready is None:
        return []
    first, last = steps[0][0], steps[-1][0]
    return [f"before the first step {first:.2f} s", f"to the firewall's create {created - first:.2f} s",
            f"its wait {ready - created:.2f} s (typical {firewall_typical:.2f} s)",
            f"after it {last - ready:.2f} s", f"exit {wall - last:.2f} s"]


def best_of(runs: int, workdir: Path, env: dict[str, str], *args: str) -> float:
    return min(provision(workdir, env, *args)[0] for _ in range(runs))


def config(spokes: int) -> str:
    lines = ['deployment = "bench"', 'databricks_account_id = "00000000-0000-4000-8000-000000000000"',
             "hub_availability_zones = 2"]
    for i in range(spokes):
        lines += ["[[spokes]]", f'name = "bu{i}"', f'cidr = "10.{100 + i}.0.0/16"']
    return "\n".join(lines) + "\n"


def critical_path(text: str, time_scale: float) -> float:
    """The longest chain of typical durations through the step graph, in sandbox seconds."""
    from provisioner.design.config import build_config, parse_toml
    from provisioner.engine import remaining_seconds
    from provisioner.steps import all_steps

    steps = all_steps(build_config(parse_toml(text, "benchmark")))
    return max(remaining_seconds(steps).values()) * time_scale


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--time-scale", type=float, default=0.05)
    parser.add_argument("--spokes", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--workers", type=int, default=None, help="passed to `up` (default: provision's own)")
    args = parser.parse_args()

    from provisioner.engine import TYPICAL_SECONDS
    from provisioner.sandbox.quotas import set_quota_everywhere
    from provisioner.sandbox.server import Sandbox

    log = RequestLog()
    sandbox = Sandbox(time_scale=args.time_scale, log=log)
    # AWS's default of 5 VPCs per region holds a hub and 4 spokes; the larger runs need the quota a platform
    # account running many workspaces has asked for (preflight checks it, as on AWS).
    set_quota_everywhere("vpc", "L-F678F1CE", max(args.spokes) + 2)  # moto has a default VPC too
    env = {**os.environ, **sandbox.info.exports(), "COLUMNS": "200"}
    rows: list[tuple[str, str]] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            (work / "provision.toml").write_text(config(args.spokes[0]))
            rows.append(("`provision --help` wall", f"{best_of(3, work, env, '--help'):.2f} s"))
            rows.append(("`provision plan` (offline) wall", f"{best_of(3, work, env, 'plan'):.2f} s"))
            for n, spokes in enumerate(args.spokes):
                work_n = work / f"s{spokes}"
                work_n.mkdir()
                text = config(spokes)
                (work_n / "provision.toml").write_text(text)
                path = critical_path(text, args.time_scale)
                workers = ["--workers", str(args.workers)] if args.workers else []
                wall, code, lines = timed_up(work_n, env, *workers)
                if code != 0:
                    print(json.dumps(lines[-20:], indent=1), file=sys.stderr)
                    return 1
                rows.append((f"fresh `up`, {spokes} spoke(s) x 2 AZ: wall / critical path",
                             f"{wall:.1f} s / {path:.1f} s = {wall / path:.2f}x"))
                parts = where_it_went(lines, wall, TYPICAL_SECONDS["network firewall"] * args.time_scale)
                rows.append((f"  where it went, {spokes} spoke(s)", "; ".join(parts) or "(no firewall line)"))
                if n == 0:
                    mark = log.mark()
                    provision(work_n, env, "up")
                    noop = log.since(mark)
                    aws = aws_calls(noop)
                    rows.append((f"no-op `up`, {spokes} spoke(s): AWS + Databricks requests",
                                 f"{sum(aws.values())} + {len(dbx_calls(noop))}, {writes(aws)} AWS writes"))
                    mark = log.mark()
                    provision(work_n, env, "status")
                    seen = log.since(mark)
                    rows.append((f"`status`, {spokes} spoke(s): AWS + Databricks requests",
                                 f"{sum(aws_calls(seen).values())} + {len(dbx_calls(seen))}, "
                                 f"{writes(aws_calls(seen))} AWS writes"))
                    by_call = aws
                    status_calls = aws_calls(seen)
                else:
                    mark = log.mark()
                    provision(work_n, env, "up")
                    rows.append((f"no-op `up`, {spokes} spokes: AWS requests",
                                 f"{sum(aws_calls(log.since(mark)).values())}"))
                wall, _ = provision(work_n, env, "down", "--yes")
                rows.append((f"`down`, {spokes} spoke(s) wall", f"{wall:.1f} s"))
    finally:
        sandbox.stop()
    width = max(len(name) for name, _ in rows)
    print(f"time scale {args.time_scale}, workers {args.workers or 'default'}")
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    print("\nno-op `up`, AWS calls by service and action:")
    for call, count in sorted(by_call.items(), key=lambda item: (-item[1], item[0])):
        print(f"  {count:4d}  {call}")
    print("\n`status`, AWS calls by service and action:")
    for call, count in sorted(status_calls.items(), key=lambda item: (-item[1], item[0])):
        print(f"  {count:4d}  {call}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
