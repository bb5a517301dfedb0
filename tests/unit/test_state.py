"""The state file: atomic, private, locked, versioned; a bad one is refused and never overwritten."""

import json
import os
import stat
import subprocess
import sys

import pytest

from provisioner.state import SCHEMA_VERSION, StateError, load, locked


def test_record_writes_private_file_at_once(tmp_path):
    state = load(tmp_path, "acme")
    assert not state.exists
    state.record("spoke/main/role", "arn:aws:iam::1:role/x", outputs={"arn": "a"})
    path = tmp_path / "acme.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    doc = json.loads(path.read_text())
    assert doc["schema_version"] == SCHEMA_VERSION
    assert doc["resources"]["spoke/main/role"]["id"] == "arn:aws:iam::1:role/x"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".gitignore", "acme.json"]  # no temp files left behind
    assert (tmp_path / ".gitignore").read_text().splitlines()[-1] == "*"  # tokens never reach git


def test_corrupt_state_refused_and_kept(tmp_path, workdir):
    path = workdir.path / "state" / "acme.json"
    path.parent.mkdir()
    path.write_text("{not json")
    workdir.write_config('deployment = "acme"\n')
    result = workdir.run("plan")
    assert result.code == 2 and "corrupt" in result.err
    assert path.read_text() == "{not json"


def test_newer_state_refused(tmp_path):
    (tmp_path / "acme.json").write_text(json.dumps({"schema_version": SCHEMA_VERSION + 1, "resources": {}}))
    with pytest.raises(StateError, match="newer provision"):
        load(tmp_path, "acme")


def test_v1_state_is_migrated(tmp_path):
    (tmp_path / "acme.json").write_text(json.dumps(
        {"schema_version": 1, "deployment": "acme", "resources": {"k": {"id": "i"}}, "outputs": {}}))
    state = load(tmp_path, "acme")
    assert state.resource_id("k") == "i"
    assert state.snapshot()["secrets"] == {} and state.snapshot()["schema_version"] == SCHEMA_VERSION


def test_second_process_is_refused_with_holder(tmp_path):
    with locked(tmp_path, "acme"):
        code = ("import sys; from pathlib import Path; from provisioner.state import locked, StateError\n"
                "try:\n    locked(Path(sys.argv[1]), 'acme').__enter__()\n"
                "except StateError as e:\n    print(e); sys.exit(7)\n")
        proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 7
    assert f"locked by pid {os.getpid()} since" in proc.stdout
    with locked(tmp_path, "acme"):  # released: usable again
        pass
