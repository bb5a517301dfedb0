"""State in S3: conditional writes, a lock object naming its holder, tokens in Secrets Manager, migrate and list."""

import json

import pytest
from botocore.exceptions import ClientError

from tests.conftest import client, config_text

BUCKET = "team-provision-state"


def _bucket(versioned=True, encrypted=True):
    s3 = client("s3")
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-central-1"})
    if versioned:
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    if encrypted:
        s3.put_bucket_encryption(Bucket=BUCKET, ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    return s3


def _keys(s3):
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []))


@pytest.mark.parametrize(("url", "words"), [("s3://", "names no bucket"), ("s3:///prefix", "names no bucket"),
                                            ("s3://no-such-state-bucket/p", "does not exist")])
def test_a_bad_backend_url_is_one_line_exit_2(aws, workdir, monkeypatch, url, words):
    workdir.write_config(config_text("bad"))
    monkeypatch.setenv("PROVISION_STATE", url)
    result = workdir.run("status")
    assert result.code == 2 and words in result.err and len(result.err.strip().splitlines()) == 1
    assert not (workdir.path / "state").exists()


def test_a_bucket_without_versioning_is_refused_and_nothing_written(aws, workdir):
    s3 = _bucket(versioned=False)
    workdir.write_config(config_text("nover", extra=f'[state]\nbackend = "s3://{BUCKET}/teams"'))
    result = workdir.run("up")
    assert result.code == 2 and "does not keep versions" in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert _keys(s3) == []


def test_up_keeps_state_in_s3_tokens_in_secrets_manager_and_output_reads_them(aws, workdir, monkeypatch):
    s3 = _bucket()
    monkeypatch.setenv("PROVISION_STATE", f"s3://{BUCKET}/teams/")
    workdir.write_config(config_text("shared"))
    up = workdir.run("up")
    assert up.code == 0, up.err
    assert _keys(s3) == ["teams/shared.json"]  # the lock is gone, the state is there
    # The lock it held (a version of the lock object kept by the versioned bucket) named the command.
    held = [v for v in s3.list_object_versions(Bucket=BUCKET)["Versions"] if v["Key"] == "teams/shared.lock"]
    holders = [json.loads(s3.get_object(Bucket=BUCKET, Key=v["Key"], VersionId=v["VersionId"])["Body"].read())
               for v in held]
    assert [h["command"] for h in holders] == ["up"]
    assert not (workdir.path / "state" / "shared.json").exists()
    doc = json.loads(s3.get_object(Bucket=BUCKET, Key="teams/shared.json")["Body"].read())
    assert doc["last_command"] == "up" and doc["resources"]["hub/vpc"]["id"].startswith("vpc-")
    ref = doc["secrets"]["spoke/main/token"]
    assert ref.startswith("arn:aws:secretsmanager:")
    token = client("secretsmanager").get_secret_value(SecretId=ref)["SecretString"]
    assert token not in json.dumps(doc)

    shown = workdir.run("output", "--show-secrets", "--json")
    assert json.loads(shown.out)["secrets"]["spoke/main/token"] == token
    hidden = workdir.run("output")
    assert token not in hidden.out

    listed = workdir.run("state", "list", "--json")
    rows = json.loads(listed.out)["deployments"]
    assert [(r["deployment"], r["last_command"]) for r in rows] == [("shared", "up")]

    status = workdir.run("status")
    assert status.code == 0, status.out + status.err
    down = workdir.run("down", "--yes")
    assert down.code == 0, down.err
    with pytest.raises(ClientError):  # the token's secret went with the token
        client("secretsmanager").get_secret_value(SecretId=ref)


def test_a_held_lock_stops_a_second_command_naming_its_holder_until_unlock(aws, workdir, monkeypatch):
    s3 = _bucket()
    monkeypatch.setenv("PROVISION_STATE", f"s3://{BUCKET}/p")
    workdir.write_config(config_text("locked"))
    s3.put_object(Bucket=BUCKET, Key="p/locked.lock", Body=json.dumps(
        {"who": "alice", "host": "ci-runner-7", "pid": 4242, "command": "up", "since": "2026-11-30T10:00:00Z"}))
    result = workdir.run("status")
    assert result.code == 2
    assert "locked by alice on ci-runner-7 (pid 4242) running `provision up` since 2026-11-30T10:00:00Z" in result.err
    assert "provision unlock" in result.err

    refused = workdir.run("unlock")  # asks; no terminal to ask on
    assert refused.code == 2 and "--yes" in refused.err
    released = workdir.run("unlock", "--yes")
    assert released.code == 0 and "alice" in released.out
    assert "p/locked.lock" not in _keys(s3)
    assert workdir.run("status").code in (0, 3)  # free again (nothing deployed: status says so)


def test_a_write_based_on_a_stale_read_fails_instead_of_losing_an_update(aws, monkeypatch, tmp_path):
    from provisioner.backends import backend_for
    from provisioner.state import StateError

    _bucket()
    backend = backend_for(f"s3://{BUCKET}/x", tmp_path, "eu-central-1")
    first = backend.load("race")
    first.record("hub/vpc", "vpc-1")
    a, b = backend.load("race"), backend.load("race")
    a.record("hub/igw", "igw-1")
    with pytest.raises(StateError, match="changed by someone else"):
        b.record("hub/tgw", "tgw-1")
    assert set(backend.load("race").resources()) == {"hub/vpc", "hub/igw"}


def test_migrate_local_to_s3_and_back_never_overwrites(aws, workdir):
    s3 = _bucket()
    workdir.write_config(config_text("mig"))
    from provisioner.state import load

    local = load(workdir.path / "state", "mig")
    local.record("hub/vpc", "vpc-9")
    local.put("secrets", "spoke/main/token", "dapi-secret-value")

    moved = workdir.run("state", "migrate", "--to", f"s3://{BUCKET}/m")
    assert moved.code == 0, moved.err
    doc = json.loads(s3.get_object(Bucket=BUCKET, Key="m/mig.json")["Body"].read())
    assert doc["resources"]["hub/vpc"]["id"] == "vpc-9"
    assert "dapi-secret-value" not in json.dumps(doc)
    again = workdir.run("state", "migrate", "--to", f"s3://{BUCKET}/m")
    assert again.code == 2 and "never overwrites" in again.err

    back_dir = workdir.path / "elsewhere"
    workdir.write_config(config_text("mig", extra=f'[state]\nbackend = "s3://{BUCKET}/m"'))
    back = workdir.run("state", "migrate", "--to", str(back_dir))
    assert back.code == 0, back.err
    restored = load(back_dir, "mig")
    assert restored.resource_id("hub/vpc") == "vpc-9"
    assert restored.get("secrets", "spoke/main/token") == "dapi-secret-value"


def _race_for_the_lock(backends):
    """Every backend tries to take the same lock at once; the winner holds it until every other has tried."""
    import threading
    import time

    from provisioner.state import StateError

    start, tried = threading.Barrier(len(backends)), threading.Barrier(len(backends))
    won: list[str] = []
    lost: list[tuple[str, float]] = []

    def race(backend, command: str) -> None:
        start.wait(10)
        began = time.monotonic()
        try:
            with backend.locked("shared", command):
                won.append(command)
                tried.wait(10)
        except StateError as e:
            lost.append((str(e), time.monotonic() - began))
            tried.wait(10)

    threads = [threading.Thread(target=race, args=(b, f"up #{i}")) for i, b in enumerate(backends)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return won, lost


def test_commands_racing_for_the_lock_one_wins_the_others_fail_at_once_naming_it(aws, tmp_path, monkeypatch):
    import time

    from moto.s3.models import S3Backend

    from provisioner.backends import backend_for

    s3 = _bucket()
    # The emulated S3 runs in this process: its lookups of the lock object answer late, as a busy server's may, so
    # that racing requests all check before any of them writes; only an atomic check-and-write lets one win.
    lookup = S3Backend.get_object

    def slow_lookup(self, bucket_name, key_name, *args, **kwargs):
        found = lookup(self, bucket_name, key_name, *args, **kwargs)
        if key_name.endswith(".lock"):
            time.sleep(0.05)  # what was found may be stale by the time it is used
        return found

    monkeypatch.setattr(S3Backend, "get_object", slow_lookup)
    backends = [backend_for(f"s3://{BUCKET}/race", tmp_path, "eu-central-1") for _ in range(6)]
    for backend in backends:
        backend.check_bucket()  # the race is then only the lock object's conditional put
    for _ in range(2):
        won, lost = _race_for_the_lock(backends)
        assert len(won) == 1, won
        assert len(lost) == len(backends) - 1
        for message, seconds in lost:
            assert f"running `provision {won[0]}`" in message and "provision unlock" in message
            assert seconds < 5
        assert _keys(s3) == []  # the winner released it
