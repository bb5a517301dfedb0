"""Command-line usage: mistakes are one message and exit 2, never a traceback."""

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
    assert result.code == 0 and "nothing is deployed" in result.err
