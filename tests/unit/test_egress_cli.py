"""Bad input to the egress commands, `sandbox traffic` and `status --report`: one line, exit 2, no cloud call."""

from __future__ import annotations

import pytest

from provisioner.commands import egress as commands
from provisioner.errors import UsageError
from tests.conftest import config_text

SPOKES = (("main", "10.173.0.0/16"), ("research", "10.20.0.0/16"))


@pytest.fixture
def offline(workdir, calls, monkeypatch):
    for var in ("AWS_ENDPOINT_URL", "DATABRICKS_HOST", "PROVISION_SANDBOX"):
        monkeypatch.delenv(var, raising=False)
    workdir.write_config(config_text("badinput", spokes=SPOKES))
    return workdir


@pytest.mark.parametrize(("args", "message"), [
    (["egress", "check", "not a host"], "HOST 'not a host' is neither a DNS name"),
    (["egress", "check", "1.2.3"], "is neither a DNS name"),
    (["egress", "check", "-"], "is neither a DNS name"),
    (["egress", "check", "https://PyPI.org/simple/"], "its host alone: pypi.org (TLS, port 443, is the default)"),
    (["egress", "check", "http://example.com:8080/x"], "alone: example.com with --protocol http --port 8080"),
    (["sandbox", "traffic", "--spoke", "main", "https://pypi.org/simple"], "its host alone: pypi.org (TLS"),
    (["sandbox", "traffic", "--spoke", "main", "http://a.example:81"], "alone: a.example:81 with --protocol http"),
    (["egress", "check", "pypi.org", "--port", "0"], "--port '0' is not a port"),
    (["egress", "check", "pypi.org", "--port", "65536"], "is not a port"),
    (["egress", "check", "pypi.org", "--port", "https"], "is not a port"),
    (["egress", "check", "pypi.org", "--protocol", "sctp"], "--protocol 'sctp' is not one of tls, http, tcp, udp"),
    (["egress", "check", "1.1.1.1", "--protocol", "icmp", "--port", "7"], "ICMP has no ports"),
    (["egress", "check", "pypi.org", "--spoke", "nope"], "--spoke 'nope' is not a spoke of deployment badinput; its "
                                                         "spokes are main, research"),
    (["egress", "check", "pypi.org", "--address", "pypi.org"], "--address 'pypi.org' is not an IPv4 address"),
    (["egress", "check", "1.1.1.1", "--address", "1.1.1.2"], "--address goes with a DNS name"),
    (["egress", "blocked", "--since", "1x"], "--since '1x' is not a duration"),
    (["egress", "blocked", "--since", "yesterday"], "is not a duration"),
    (["egress", "blocked", "--since", "0h"], "must be more than nothing"),
    (["egress", "blocked", "--since", "400d"], "at most 366 days"),
    (["egress", "blocked", "--spoke", "nope"], "--spoke 'nope' is not a spoke"),
    (["sandbox", "traffic", "--spoke", "main", "pypi.org", "bad_host"], "target 'bad_host' is neither a DNS name"),
    (["sandbox", "traffic", "--spoke", "main", "pypi.org:99999"], "the port of 'pypi.org:99999'"),
    (["sandbox", "traffic", "--spoke", "nope", "pypi.org"], "--spoke 'nope' is not a spoke"),
    (["sandbox", "traffic", "--spoke", "main", "pypi.org", "--protocol", "ftp"], "--protocol 'ftp'"),
    (["sandbox", "traffic", "--spoke", "main", "pypi.org"], "no sandbox is running for the state directory state:"),
    (["egress", "check"], "egress check needs a HOST"),
    (["sandbox", "traffic", "--spoke", "main"], "needs at least one HOST or HOST:PORT"),
    (["sandbox", "traffic", "pypi.org"], "needs --spoke NAME"),
    (["status", "--report", "no/such/dir/status.html"], "the directory no/such/dir does not exist"),
    (["status", "--report", "."], "is a directory"),
])
def test_bad_input_is_one_line_exit_2_and_no_cloud_call(offline, calls, args, message):
    result = offline.run(*args)
    assert result.code == 2, result.out + result.err
    assert message in result.err
    assert len(result.err.strip().splitlines()) == 1, result.err
    assert calls.calls == []


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("15m", 900), ("1h", 3600), ("1h30m", 5400),
                                                ("2d", 172800), ("1w", 604800), ("1H", 3600)])
def test_durations(text, seconds):
    assert commands.parse_since(text) == seconds


@pytest.mark.parametrize(("value", "protocol", "host", "address", "port"), [
    ("pypi.org", "tls", "pypi.org", None, 443),
    ("PyPI.org.", "tls", "pypi.org", None, 443),
    ("pypi.org:8443", "tls", "pypi.org", None, 8443),
    ("pypi.org", "http", "pypi.org", None, 80),
    ("8.8.8.8", "udp", None, "8.8.8.8", 53),
    ("8.8.8.8:123", "udp", None, "8.8.8.8", 123),
    ("1.1.1.1", "icmp", None, "1.1.1.1", None),
])
def test_targets(value, protocol, host, address, port):
    target = commands.parse_target(value, protocol)
    assert (target.host, target.address, target.port) == (host, address, port)


def test_icmp_targets_take_no_port():
    with pytest.raises(UsageError, match="ICMP has no ports"):
        commands.parse_target("1.1.1.1:7", "icmp")
