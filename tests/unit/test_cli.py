"""Command-line usage: mistakes are one message and exit 2, never a traceback."""

from pathlib import Path

import pytest

from provisioner import __version__


@pytest.mark.parametrize(("args", "words"), [
    (["plan", "--bogus"], "No such option: --bogus"),
    (["frobnicate"], "No such command"),
    (["plan", "--config"], "requires an argument"),
    (["up", "--workers", "0"], "--workers"),
])
def test_usage_mistakes_exit_2_without_traceback(workdir, args, words):
    result = workdir.run(*args)
    assert result.code == 2
    assert words in result.err and "Traceback" not in result.err + result.out
    assert len(result.err.strip().splitlines()) == 1 and "Usage:" not in result.err, result.err


def test_an_unknown_option_names_the_help_of_its_command(workdir):
    result = workdir.run("up", "--sandox")
    assert result.code == 2
    assert result.err.strip() == ("error: No such option: --sandox (Possible options: --sandbox) "
                                  "(see `provision up --help`)")


def test_version(workdir):
    result = workdir.run("--version")
    assert result.code == 0 and __version__ in result.out


def test_environment_overrides_the_files_deployment(workdir, monkeypatch):
    workdir.write_config('deployment = "fromfile"\n')
    monkeypatch.setenv("PROVISION_DEPLOYMENT", "fromenv")
    result = workdir.run("plan")
    assert result.code == 0 and "plan for deployment fromenv" in result.out


def test_output_with_nothing_deployed_says_so(workdir):
    workdir.write_config('deployment = "empty"\n')
    result = workdir.run("output")
    assert result.code == 0 and "nothing is deployed (`provision up` builds it)" in result.err


def test_a_suggested_command_keeps_the_config_file_and_the_sandbox():
    from provisioner.cli import Options, _flags

    assert _flags(Options(Path("provision.toml"), False, Path("state"))) == ""
    assert _flags(Options(Path("my conf.toml"), True, Path("state"), sandbox=True)) == " -c 'my conf.toml' --sandbox"


def test_sandbox_and_real_state_never_mix(tmp_path):
    from provisioner.cli import _check_kind
    from provisioner.state import StateError, load

    real = load(tmp_path, "prod")
    real.set_meta(sandbox=False)
    with pytest.raises(StateError, match="is a real deployment"):
        _check_kind(real, sandbox=True)
    play = load(tmp_path, "play")
    play.set_meta(sandbox=True)
    with pytest.raises(StateError, match="built in the sandbox"):
        _check_kind(play, sandbox=False)
    _check_kind(load(tmp_path, "new"), sandbox=True)  # nothing recorded yet: either is fine


@pytest.mark.parametrize(("workers", "pool"), [(1, 10), (8, 10), (16, 16), (32, 32)])
def test_aws_clients_pool_a_connection_per_worker_and_adapt_to_throttling(monkeypatch, workers, pool):
    """botocore keeps 10 connections per client by default: more workers than that made urllib3 drop
    connections and print "Connection pool is full" warnings."""
    from provisioner.cli import _aws_factory
    from provisioner.design.config import build_config

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    aws = _aws_factory(build_config({"deployment": "pool"}), workers)()
    config = aws.ec2.meta.config
    assert config.max_pool_connections == pool
    assert config.retries["mode"] == "adaptive"


@pytest.mark.parametrize(("args", "stop"), [((), "`provision sandbox stop` ends it"),
                                            (("--state-dir", "other"), "`provision sandbox stop --state-dir other`")])
def test_a_second_sandbox_for_one_state_directory_is_refused_with_the_stop_command(workdir, monkeypatch, args, stop):
    from provisioner.sandbox import server

    running = server.SandboxInfo(pid=4242, aws_url="http://127.0.0.1:5000", databricks_url="http://127.0.0.1:5001",
                                 time_scale=0.02, started_at="")
    monkeypatch.setattr(server, "read_record", lambda state_dir: running)
    result = workdir.run("sandbox", *args)
    assert result.code == 2 and len(result.err.strip().splitlines()) == 1, result.err
    assert "a sandbox is already running for the state directory " in result.err and stop in result.err


def test_init_into_a_directory_that_does_not_exist_is_one_line(workdir):
    result = workdir.run("init", "-c", "no/such/dir/provision.toml")
    assert result.code == 2 and "Traceback" not in result.err
    assert result.err.strip() == ("error: cannot write no/such/dir/provision.toml (No such file or directory); give -c "
                                  "a file in a directory that exists")


def test_a_state_directory_that_cannot_be_made_is_bad_input():
    from provisioner.state import StateError, prepare_dir

    with pytest.raises(StateError, match=r"^the state directory /proc/provision-no/state cannot be made or written"):
        prepare_dir(Path("/proc/provision-no/state"))


@pytest.mark.parametrize(("recorded", "words"), [(["a/x"], "records 1 resource the config"),
                                                 (["a/x", "a/y"], "records 2 resources the config")])
def test_resources_the_config_no_longer_has_are_counted(tmp_path, capsys, recorded, words):
    from provisioner.cli import _warn_orphans
    from provisioner.state import load

    state = load(tmp_path, "orph")
    for key in recorded:
        state.record(key, "id-" + key)
    _warn_orphans(state, [])
    assert words in capsys.readouterr().err
