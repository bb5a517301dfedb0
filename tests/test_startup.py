"""Start-up: what `provision` loads before a command needs it, and how the console script leaves.

Each check runs in a fresh interpreter (this test process has every module loaded already). Wall times are
not asserted: they depend on the machine; what is loaded does not."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("databricks.sdk", "boto3")


def loaded_after(code: str, cwd: Path) -> dict[str, bool]:
    """Run `code` in a fresh interpreter; which of HEAVY (and the engine and steps) it had imported."""
    probe = ("import json, sys\n" + code + "\n"
             "names = (*sys.argv[1:],)\n"
             "print(json.dumps({name: name in sys.modules for name in names}), file=sys.__stderr__)\n")
    names = (*HEAVY, "botocore", "provisioner.engine", "provisioner.steps.databricks")
    proc = subprocess.run([sys.executable, "-c", probe, *names], capture_output=True, text=True, cwd=cwd,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stderr.strip().splitlines()[-1])


def test_importing_the_cli_loads_neither_sdk_nor_the_engine(tmp_path):
    loaded = loaded_after("import provisioner.cli", tmp_path)
    assert not any(loaded.values()), loaded


@pytest.mark.parametrize("args", [["--help"], ["up", "--help"], ["--version"], ["sandbox", "--help"]])
def test_help_loads_neither_sdk(tmp_path, args):
    code = ("import contextlib, io\nfrom provisioner.cli import main\n"
            f"with contextlib.redirect_stdout(io.StringIO()):\n    assert main({args!r}) == 0\n")
    loaded = loaded_after(code, tmp_path)
    assert not any(loaded.values()), loaded


def test_plan_loads_the_steps_but_neither_sdk(tmp_path):
    (tmp_path / "provision.toml").write_text('deployment = "fast"\n')
    code = ("import contextlib, io\nfrom provisioner.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n    assert main(['plan']) == 0\n")
    loaded = loaded_after(code, tmp_path)
    assert loaded["provisioner.steps.databricks"], "plan lists every step"
    assert not any(loaded[name] for name in HEAVY), loaded


def test_the_console_script_flushes_then_skips_the_interpreter_teardown(tmp_path):
    """`entry()` leaves with os._exit once the output is flushed: exit handlers do not run, the output is whole,
    and the exit code is main()'s."""
    code = ("import atexit, sys\n"
            "atexit.register(lambda: print('teardown ran', file=sys.stderr, flush=True))\n"
            "from provisioner.cli import entry\n"
            "sys.argv = ['provision', *sys.argv[1:]]\n"
            "entry()\n")
    version = subprocess.run([sys.executable, "-c", code, "--version"], capture_output=True, text=True,
                             cwd=tmp_path, timeout=120)
    assert version.returncode == 0
    assert version.stdout.startswith("provision ") and "teardown ran" not in version.stderr

    plan = subprocess.run([sys.executable, "-c", code, "plan", "--json"], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)
    assert plan.returncode == 0, plan.stderr
    assert json.loads(plan.stdout)["resources"]  # piped, and whole: flushed before leaving
    assert "teardown ran" not in plan.stderr

    missing = subprocess.run([sys.executable, "-c", code, "plan", "-c", "nope.toml"], capture_output=True,
                             text=True, cwd=tmp_path, timeout=120)
    assert missing.returncode == 2
    assert missing.stderr.strip().startswith("error: config file nope.toml does not exist")


def test_python_dash_m_runs_the_same_entry(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "provisioner", "--version"], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)
    assert proc.returncode == 0 and proc.stdout.startswith("provision ")
