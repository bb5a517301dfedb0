"""`provision preflight`, and `up`'s first step: what would make `up` fail, one line per check, exit 2."""

import pytest

from provisioner.preflight import operator_actions, principal_arn
from provisioner.sandbox.quotas import deny_actions, set_quota
from tests.conftest import config_text


def test_preflight_passes_on_a_fresh_account_with_one_line_per_check(aws, workdir, calls):
    workdir.write_config(config_text("pre"))
    result = workdir.run("preflight")
    assert result.code == 0, result.out + result.err
    lines = result.out.splitlines()
    assert all(line.startswith("ok ") for line in lines[:-1]), result.out
    text = result.out
    for what in ("region eu-central-1", "L-F678F1CE", "L-0263D0A3", "L-FE5A380F", "L-A2478D36", "L-29B6F2EB",
                 "Firewalls per account", "operator permissions", "Databricks account"):
        assert what in text
    assert "EC2-VPC Elastic IPs (ec2 L-0263D0A3): 0 used + 2 to create, quota 5" in text
    assert calls.mutating == ["SimulatePrincipalPolicy"] * len(calls.mutating)  # reads only (a simulation)


def test_too_low_an_elastic_ip_quota_fails_preflight_and_up_before_anything_is_made(aws, workdir, calls):
    workdir.write_config(config_text("lowq", hub_azs=3))
    set_quota("ec2", "L-0263D0A3", 2)
    result = workdir.run("preflight")
    assert result.code == 2
    failing = [line for line in result.out.splitlines() if line.startswith("fail")]
    assert len(failing) == 1 and "EC2-VPC Elastic IPs (ec2 L-0263D0A3): 0 used + 3 to create, quota 2" in failing[0]
    assert "request an increase to 3" in failing[0]

    calls.clear()
    up = workdir.run("up")
    assert up.code == 2 and "L-0263D0A3" in up.err and "--skip-preflight" in up.err
    assert [c for c in calls.mutating if c != "SimulatePrincipalPolicy"] == []
    assert not (workdir.path / "state" / "lowq.json").exists()


def test_a_missing_permission_is_named_with_the_fix(aws, workdir):
    workdir.write_config(config_text("perm"))
    deny_actions("network-firewall:CreateFirewall")
    result = workdir.run("preflight")
    assert result.code == 2
    assert "may not call network-firewall:CreateFirewall" in result.out and "operator-policy.json" in result.out


def test_wrong_databricks_credentials_fail_preflight(aws, workdir, monkeypatch):
    workdir.write_config(config_text("dbx"))
    monkeypatch.setenv("DATABRICKS_CLIENT_SECRET", "wrong")
    result = workdir.run("preflight")
    assert result.code == 2
    assert next(line for line in result.out.splitlines() if line.startswith("fail")).startswith(
        "fail  Databricks account")


def test_operator_actions_and_the_principal_simulated():
    actions = operator_actions()
    assert "ec2:CreateVpc" in actions and "network-firewall:CreateFirewall" in actions
    assert not [a for a in actions if "*" in a]
    assert principal_arn("arn:aws:sts::123:assumed-role/ci-deploy/gh-run-1") == "arn:aws:iam::123:role/ci-deploy"
    assert principal_arn("arn:aws:iam::123:user/alice") == "arn:aws:iam::123:user/alice"


def test_a_quota_given_to_the_whole_sandbox_is_what_preflight_reads(aws, workdir):
    from provisioner.sandbox import quotas

    assert quotas.parse_quota("vpc/L-F678F1CE=1") == ("vpc", "L-F678F1CE", 1.0)
    for bad, says in (("ec2/L-NOPE=2", "not a quota the sandbox answers"), ("ec2/L-0263D0A3=two", "a number"),
                      ("ec2/L-0263D0A3=-1", "cannot be negative")):
        with pytest.raises(ValueError, match=says):
            quotas.parse_quota(bad)
    workdir.write_config(config_text("wide"))
    quotas.set_quota_everywhere("vpc", "L-F678F1CE", 1)
    try:
        result = workdir.run("preflight")
    finally:
        quotas._EVERYWHERE.clear()
    assert result.code == 2 and "VPCs per Region (vpc L-F678F1CE): 1 used + 2 to create, quota 1" in result.out


def test_sandbox_refuses_an_unknown_quota_in_one_line(workdir):
    result = workdir.run("sandbox", "--quota", "ec2/L-NOPE=2")
    assert result.code == 2 and len(result.err.strip().splitlines()) == 1
    assert "not a quota the sandbox answers" in result.err


def test_aws_out_of_reach_is_said_so_not_blamed_on_the_region_or_the_permissions():
    from botocore.exceptions import EndpointConnectionError

    from provisioner.design.config import build_config
    from provisioner.preflight import Preflight
    from tests.conftest import ACCOUNT_ID

    class Unreachable:
        """Every client, and every call of one: the endpoint refuses the connection."""

        def __getattr__(self, name):
            if name in ("ec2", "iam", "network_firewall"):
                return self
            if name == "client":
                return lambda service: self

            def call(*args, **kwargs):
                raise EndpointConnectionError(endpoint_url="http://127.0.0.1:9/")
            return call

    findings = Preflight(build_config({"databricks_account_id": ACCOUNT_ID}), Unreachable()).run([])
    assert [f.result for f in findings] == ["fail", "warn", "warn"]
    for finding in findings:
        assert finding.fix == ("AWS could not be reached at http://127.0.0.1:9/: check the network, and "
                               "AWS_ENDPOINT_URL if it is set"), finding
