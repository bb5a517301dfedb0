"""The foundation end to end against emulated AWS: IAM role and root bucket per spoke."""

import json

import pytest
from botocore.exceptions import ClientError

from tests.conftest import client, config_text, live_tagged


def test_idempotency_quartet(aws, workdir, calls):
    workdir.write_config(config_text("quartet", spokes=(("bu1", "10.1.0.0/16"), ("bu2", "10.2.0.0/16"))))

    plan = json.loads(workdir.run("plan", "--json").out)
    actions = {r["key"]: r["action"] for r in plan["resources"]}
    assert {"spoke/bu1/role", "spoke/bu2/role", "spoke/bu1/root-bucket", "spoke/bu2/root-bucket"} <= set(actions)
    # All made anew, but the workspace hosts: written in the control-plane group, as `up` reports it (updated).
    assert {k for k, a in actions.items() if a != "create"} == {"hub/firewall/workspace-hosts"}
    assert actions["hub/firewall/workspace-hosts"] == "update"
    assert calls.calls == []  # plan touches nothing

    first = workdir.run("up")
    assert first.code == 0, first.err
    role = client("iam").get_role(RoleName="quartet-bu1-crossaccount")["Role"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Condition"]["StringEquals"]["sts:ExternalId"]
    assert client("s3").get_public_access_block(Bucket="quartet-bu2-rootbucket")["PublicAccessBlockConfiguration"] \
        == {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True}

    again = json.loads(workdir.run("plan", "--json").out)
    assert {r["action"] for r in again["resources"]} == {"nothing"}

    calls.clear()
    second = workdir.run("up")
    assert second.code == 0, second.err
    assert calls.mutating == []
    assert calls.calls  # it did look

    status = workdir.run("status", "--json")
    assert status.code == 0, status.out
    assert {r["status"] for r in json.loads(status.out)["resources"]} <= {"present", "ok"}

    assert workdir.run("down", "--yes", "--delete-logs").code == 0
    assert live_tagged("quartet") == []
    assert client("iam").list_roles()["Roles"] == []


def test_crash_after_create_adopts_instead_of_duplicating(aws, workdir, calls, monkeypatch):
    """A run that died between CreateRole and saving the state: the rerun finds the role by its tags."""
    workdir.write_config(config_text("crash"))
    from provisioner.steps.iam import CrossAccountRole

    real_create = CrossAccountRole.create

    def create_then_die(self, ctx):
        real_create(self, ctx)
        raise KeyboardInterrupt  # the process dies before the engine records the ID

    monkeypatch.setattr(CrossAccountRole, "create", create_then_die)
    assert workdir.run("up").code == 130
    state = json.loads((workdir.path / "state" / "crash.json").read_text())
    assert "spoke/main/role" not in state["resources"]
    made = client("iam").get_role(RoleName="crash-main-crossaccount")["Role"]["RoleId"]

    monkeypatch.setattr(CrossAccountRole, "create", real_create)
    calls.clear()
    rerun = workdir.run("up")
    assert rerun.code == 0, rerun.out + rerun.err
    # The very role the dead run made, adopted (the flow logs role may be new: it may not have been reached).
    assert client("iam").get_role(RoleName="crash-main-crossaccount")["Role"]["RoleId"] == made
    assert sorted(r["RoleName"] for r in client("iam").list_roles()["Roles"]) == ["crash-flowlogs",
                                                                                   "crash-main-crossaccount"]
    assert "spoke/main/role" in json.loads((workdir.path / "state" / "crash.json").read_text())["resources"]


def test_status_reports_drift_and_up_repairs_it(aws, workdir):
    workdir.write_config(config_text("drift"))
    assert workdir.run("up").code == 0
    client("s3").delete_bucket_policy(Bucket="drift-main-rootbucket")
    client("iam").delete_role_policy(RoleName="drift-main-crossaccount", PolicyName="databricks-crossaccount")

    status = workdir.run("status", "--json")
    assert status.code == 3
    items = {r["key"]: r for r in json.loads(status.out)["resources"]}
    assert items["spoke/main/root-bucket"]["status"] == "drifted"
    assert "bucket policy" in items["spoke/main/root-bucket"]["drift"]
    assert "inline policy databricks-crossaccount" in items["spoke/main/role"]["drift"]

    assert workdir.run("up").code == 0
    assert workdir.run("status").code == 0


def test_status_reports_missing(aws, workdir):
    workdir.write_config(config_text("gone"))
    assert workdir.run("up").code == 0
    iam = client("iam")
    iam.delete_role_policy(RoleName="gone-main-crossaccount", PolicyName="databricks-crossaccount")
    iam.delete_role(RoleName="gone-main-crossaccount")
    status = workdir.run("status")
    assert status.code == 3 and "missing" in status.out


def test_down_keeps_bucket_with_data_unless_asked(aws, workdir):
    workdir.write_config(config_text("data"))
    assert workdir.run("up").code == 0
    client("s3").put_object(Bucket="data-main-rootbucket", Key="user/file.csv", Body=b"1,2")

    kept = workdir.run("down", "--yes", "--delete-logs")
    assert kept.code == 0
    assert "kept" in kept.out and "--delete-data" in kept.out
    assert client("s3").head_bucket(Bucket="data-main-rootbucket")
    assert client("iam").list_roles()["Roles"] == []  # the rest went

    assert workdir.run("down", "--yes", "--delete-data").code == 0
    assert "data-main-rootbucket" not in [b["Name"] for b in client("s3").list_buckets()["Buckets"]]


def test_down_deletes_nothing_it_did_not_make(aws, workdir):
    iam = client("iam")
    iam.create_role(RoleName="theirs-main-crossaccount", AssumeRolePolicyDocument="{}")
    workdir.write_config(config_text("theirs"))
    result = workdir.run("up")
    assert result.code == 1
    assert "not tagged as part of deployment theirs" in result.err
    down = workdir.run("down", "--yes", "--delete-logs")
    assert down.code == 1  # refuses to touch it
    assert iam.get_role(RoleName="theirs-main-crossaccount")


def test_down_needs_confirmation(aws, workdir):
    workdir.write_config(config_text("confirm"))
    result = workdir.run("down")
    assert result.code == 2 and "--yes" in result.err


def test_missing_aws_credentials_exit_2_no_call(aws, workdir, calls, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    workdir.write_config(config_text("nocreds"))
    result = workdir.run("up")
    assert result.code == 2 and "AWS credentials" in result.err
    assert calls.calls == []


def test_put_role_policy_waits_out_iam_propagation(aws, workdir, monkeypatch):
    """Right after CreateRole, IAM can answer NoSuchEntity for the new role: retried, not a failure."""
    from botocore.awsrequest import AWSResponse

    from provisioner.aws import clients

    refusals = []

    def not_yet(model, params, **kwargs):
        if len(refusals) < 2 and params["body"]["RoleName"].endswith("-crossaccount"):
            refusals.append(params["body"]["RoleName"])
            error = {"Error": {"Code": "NoSuchEntity", "Message": "The role cannot be found."},
                     "ResponseMetadata": {"HTTPStatusCode": 404}}
            return AWSResponse("https://iam.amazonaws.com/", 404, {}, None), error
        return None

    monkeypatch.setattr(clients, "SESSION_HOOKS", [("before-call.iam.PutRolePolicy", not_yet)])
    workdir.write_config(config_text("iamlag"))
    result = workdir.run("up")
    assert result.code == 0, result.err
    assert refusals == ["iamlag-main-crossaccount"] * 2
    assert client("iam").get_role_policy(RoleName="iamlag-main-crossaccount", PolicyName="databricks-crossaccount")


def test_crash_after_create_bucket_adopts_the_untagged_bucket(aws, workdir, calls, monkeypatch):
    """CreateBucket takes no tags: a crash before tagging leaves an untagged bucket, which the rerun adopts."""
    from provisioner.steps.bucket import RootBucket

    real_create = RootBucket.create

    def create_then_die(self, ctx):
        real_create(self, ctx)
        raise KeyboardInterrupt

    workdir.write_config(config_text("bcrash"))
    monkeypatch.setattr(RootBucket, "create", create_then_die)
    assert workdir.run("up").code == 130
    with pytest.raises(ClientError, match="NoSuchTagSet"):  # the bucket exists, untagged
        client("s3").get_bucket_tagging(Bucket="bcrash-main-rootbucket")
    monkeypatch.setattr(RootBucket, "create", real_create)
    calls.clear()
    result = workdir.run("up")
    assert result.code == 0, result.err
    assert "CreateBucket" not in calls.calls
    tags = {t["Key"]: t["Value"] for t in client("s3").get_bucket_tagging(Bucket="bcrash-main-rootbucket")["TagSet"]}
    assert tags["provisioner:deployment"] == "bcrash"


def test_user_tags_and_ownership_tags_on_every_kind(aws, workdir):
    workdir.write_config(config_text("tagged", extra="[tags]\nCostCenter = \"cc-42\"\n"))
    assert workdir.run("up").code == 0
    wanted = {"CostCenter": "cc-42", "ManagedBy": "provisioner", "provisioner:deployment": "tagged"}

    def tags(items):
        return {t["Key"]: t["Value"] for t in items}

    role = tags(client("iam").list_role_tags(RoleName="tagged-main-crossaccount")["Tags"])
    bucket = tags(client("s3").get_bucket_tagging(Bucket="tagged-main-rootbucket")["TagSet"])
    vpcs = [tags(v["Tags"]) for v in client("ec2").describe_vpcs(
        Filters=[{"Name": "tag:provisioner:deployment", "Values": ["tagged"]}])["Vpcs"]]
    assert len(vpcs) == 2
    for found, component, name in [(role, "spoke/main/role", "tagged-main-crossaccount"),
                                   (bucket, "spoke/main/root-bucket", "tagged-main-rootbucket")]:
        assert wanted.items() <= found.items()
        assert found["provisioner:component"] == component and found["Name"] == name
    assert all(wanted.items() <= v.items() for v in vpcs)


def test_a_generated_name_is_kept_and_reused(aws, workdir):
    from tests.conftest import ACCOUNT_ID

    workdir.write_config(f'databricks_account_id = "{ACCOUNT_ID}"\n')
    assert workdir.run("up").code == 0
    [state] = list((workdir.path / "state").glob("demo*.json"))
    status = workdir.run("status", "--json")
    assert status.code == 0
    assert json.loads(status.out)["deployment"] == state.stem
    assert workdir.run("down", "--yes", "--delete-logs").code == 0


def test_down_after_everything_vanished_outside_provision(aws, workdir, databricks):
    """The clouds lost everything (a restarted sandbox, a cleanup by hand): `down` finishes, `status` says so."""
    import requests

    workdir.write_config(config_text("vanish"))
    assert workdir.run("up").code == 0
    requests.post(f"{aws}/moto-api/reset", timeout=10)
    databricks.emulator.reset()
    status = workdir.run("status")
    assert status.code == 3 and "Nothing of deployment vanish exists" in status.out
    down = workdir.run("down", "--yes", "--delete-logs")
    assert down.code == 0, down.err
    assert json.loads((workdir.path / "state" / "vanish.json").read_text())["resources"] == {}


def test_status_that_cannot_read_is_a_failure_not_drift(aws, workdir, monkeypatch):
    from provisioner.aws.errors import CloudError
    from provisioner.steps.iam import CrossAccountRole

    workdir.write_config(config_text("noread"))
    assert workdir.run("up").code == 0

    def expired(self, ctx):
        raise CloudError("read IAM role noread-main-crossaccount failed: ExpiredToken: the token has expired")

    monkeypatch.setattr(CrossAccountRole, "find", expired)
    status = workdir.run("status")
    assert status.code == 1
    assert "ExpiredToken" in status.out and "could not read everything" in status.err


def test_plan_warns_about_resources_the_config_no_longer_has(aws, workdir):
    workdir.write_config(config_text("shrink", spokes=(("a", "10.1.0.0/16"), ("b", "10.2.0.0/16"))))
    assert workdir.run("up").code == 0
    workdir.write_config(config_text("shrink", spokes=(("a", "10.1.0.0/16"),)))
    plan = workdir.run("plan")
    assert plan.code == 0
    assert "no longer has" in plan.err and "spoke/b/" in plan.err
