"""The emulated Databricks Account API, driven through the real databricks-sdk over HTTP.

AWS state comes from moto in decorator mode; the emulator runs on a background thread of the same process and
validates against it. Time is a fake clock, so nothing here sleeps.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
import requests
from databricks.sdk import AccountClient, WorkspaceClient
from databricks.sdk.errors import (
    BadRequest,
    InvalidParameterValue,
    InvalidState,
    NotFound,
    PermissionDenied,
    ResourceConflict,
    Unauthenticated,
)
from databricks.sdk.service.provisioning import (
    CreateCredentialAwsCredentials,
    CreateCredentialStsRole,
    RootBucketInfo,
    Workspace,
    WorkspaceStatus,
)
from moto import mock_aws

from provisioner.sandbox.databricks_api import (
    REQUIRED_CROSS_ACCOUNT_ACTIONS,
    DatabricksEmulator,
    EmulatorSettings,
    Faults,
    serve,
    workspace_url,
)

REGION = "eu-west-1"
CLIENT_ID = "sp-client-id"
CLIENT_SECRET = "sp-client-secret-value"
DATABRICKS_ROOT = "arn:aws:iam::414351767826:root"
# One session for every test: a session caches botocore's service models, which are slow to load.
_SESSION = boto3.Session(region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Env:
    account_id: str
    clock: FakeClock
    emulator: DatabricksEmulator
    base_url: str
    log: list[str]
    iam: Any
    s3: Any
    ec2: Any

    def account(self, **kwargs: Any) -> AccountClient:
        auth = kwargs or {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
        return AccountClient(host=self.base_url, account_id=self.account_id, **auth)

    def account_token(self) -> str:
        reply = requests.post(
            f"{self.base_url}/oidc/accounts/{self.account_id}/v1/token",
            data={"grant_type": "client_credentials", "scope": "all-apis"},
            auth=(CLIENT_ID, CLIENT_SECRET),
            timeout=5,
        )
        reply.raise_for_status()
        return str(reply.json()["access_token"])


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Iterator[Env]:
    for name in ("DATABRICKS_HOST", "DATABRICKS_TOKEN", "DATABRICKS_ACCOUNT_ID", "DATABRICKS_CLIENT_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", str(tmp_path / "no-databrickscfg"))
    # Loading moto's default AMIs dominates EC2 backend start-up, and no test here needs an AMI.
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    clock, log = FakeClock(), []
    account_id = str(uuid.uuid4())
    settings = EmulatorSettings(
        account_id=account_id,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        username="admin@example.com",
        password="admin-password",
        clock=clock,
        log=log.append,
    )
    with mock_aws():
        emulator = DatabricksEmulator(settings)
        server, base_url = serve(emulator)
        try:
            yield Env(
                account_id=account_id,
                clock=clock,
                emulator=emulator,
                base_url=base_url,
                log=log,
                iam=_SESSION.client("iam"),
                s3=_SESSION.client("s3"),
                ec2=_SESSION.client("ec2"),
            )
        finally:
            server.shutdown()


# ---------------------------------------------------------------------------------- AWS objects to validate


def trust_policy(principal: str = DATABRICKS_ROOT, external_id: str | None = None) -> dict[str, Any]:
    statement: dict[str, Any] = {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"AWS": principal}}
    if external_id is not None:
        statement["Condition"] = {"StringEquals": {"sts:ExternalId": external_id}}
    return {"Version": "2012-10-17", "Statement": [statement]}


def make_role(
    env: Env,
    name: str = "cross-account",
    *,
    actions: list[str] | None = None,
    trust: dict[str, Any] | None = None,
    attach: bool = False,
) -> str:
    """A cross-account role; by default it trusts Databricks with the account id and holds the customer policy."""
    role = env.iam.create_role(
        RoleName=name,
        AssumeRolePolicyDocument=json.dumps(trust or trust_policy(external_id=env.account_id)),
    )["Role"]
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": list(REQUIRED_CROSS_ACCOUNT_ACTIONS) if actions is None else actions,
                "Resource": "*",
            }
        ],
    }
    if attach:
        arn = env.iam.create_policy(PolicyName=f"{name}-policy", PolicyDocument=json.dumps(policy))["Policy"]["Arn"]
        env.iam.attach_role_policy(RoleName=name, PolicyArn=arn)
    else:
        env.iam.put_role_policy(RoleName=name, PolicyName="databricks", PolicyDocument=json.dumps(policy))
    return str(role["Arn"])


def bucket_policy(bucket: str, *, condition_account: str | None = None) -> dict[str, Any]:
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Action": [
            "s3:GetObject",
            "s3:GetObjectVersion",
            "s3:PutObject",
            "s3:DeleteObject",
            "s3:ListBucket",
            "s3:GetBucketLocation",
        ],
        "Resource": [f"arn:aws:s3:::{bucket}/*", f"arn:aws:s3:::{bucket}"],
        "Principal": {"AWS": DATABRICKS_ROOT},
    }
    if condition_account is not None:
        statement["Condition"] = {"StringEquals": {"aws:PrincipalTag/DatabricksAccountId": condition_account}}
    return {"Version": "2012-10-17", "Statement": [statement]}


def make_bucket(env: Env, name: str = "root-bucket", *, policy: dict[str, Any] | None = None) -> str:
    env.s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
    env.s3.put_bucket_policy(Bucket=name, Policy=json.dumps(policy or bucket_policy(name)))
    return name


@dataclass
class Vpc:
    vpc_id: str
    subnet_ids: list[str]
    sg_id: str


def make_vpc(
    env: Env,
    cidr: str = "10.0.0.0/16",
    *,
    subnets: tuple[tuple[str, str], ...] = (("10.0.0.0/24", "a"), ("10.0.1.0/24", "b")),
    dns: bool = True,
) -> Vpc:
    vpc_id = env.ec2.create_vpc(CidrBlock=cidr)["Vpc"]["VpcId"]
    if dns:
        env.ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsHostnames={"Value": True})
    subnet_ids = [
        env.ec2.create_subnet(VpcId=vpc_id, CidrBlock=block, AvailabilityZone=f"{REGION}{az}")["Subnet"]["SubnetId"]
        for block, az in subnets
    ]
    sg_id = env.ec2.create_security_group(GroupName=f"dbx-{vpc_id}", Description="databricks", VpcId=vpc_id)["GroupId"]
    return Vpc(vpc_id, subnet_ids, sg_id)


def create_credentials(a: AccountClient, role_arn: str, name: str = "dep-credentials") -> str:
    aws = CreateCredentialAwsCredentials(sts_role=CreateCredentialStsRole(role_arn=role_arn))
    return str(a.credentials.create(credentials_name=name, aws_credentials=aws).credentials_id)


def create_storage(a: AccountClient, bucket: str, name: str = "dep-storage") -> str:
    created = a.storage.create(storage_configuration_name=name, root_bucket_info=RootBucketInfo(bucket_name=bucket))
    return str(created.storage_configuration_id)


def create_network(a: AccountClient, vpc: Vpc, name: str = "dep-network") -> str:
    created = a.networks.create(
        network_name=name, vpc_id=vpc.vpc_id, subnet_ids=vpc.subnet_ids, security_group_ids=[vpc.sg_id]
    )
    return str(created.network_id)


@dataclass
class Stack:
    account: AccountClient
    credentials_id: str
    storage_id: str
    network_id: str
    vpc: Vpc


def make_stack(env: Env) -> Stack:
    a = env.account()
    vpc = make_vpc(env)
    return Stack(
        account=a,
        credentials_id=create_credentials(a, make_role(env)),
        storage_id=create_storage(a, make_bucket(env)),
        network_id=create_network(a, vpc),
        vpc=vpc,
    )


def create_workspace(stack: Stack, name: str = "dep-workspace", **kwargs: Any) -> Workspace:
    return stack.account.workspaces.create(
        workspace_name=name,
        aws_region=REGION,
        credentials_id=stack.credentials_id,
        storage_configuration_id=stack.storage_id,
        network_id=stack.network_id,
        **kwargs,
    ).response


# ------------------------------------------------------------------------------------------- authentication


def test_oauth_m2m_handshake_then_api_calls_are_logged_without_secrets(env: Env) -> None:
    assert list(env.account().credentials.list()) == []

    assert env.log == [
        "GET /.well-known/databricks-config -> 200",
        f"GET /oidc/accounts/{env.account_id}/.well-known/oauth-authorization-server -> 200",
        f"POST /oidc/accounts/{env.account_id}/v1/token -> 200",
        f"GET /api/2.0/accounts/{env.account_id}/credentials -> 200",
    ]
    assert not any(CLIENT_SECRET in line or "Bearer" in line for line in env.log)


def test_wrong_client_secret_fails_at_the_token_endpoint(env: Env) -> None:
    client = env.account(client_id=CLIENT_ID, client_secret="not-the-secret")

    with pytest.raises(ValueError, match="invalid_client"):
        list(client.credentials.list())
    assert env.log[-1] == f"POST /oidc/accounts/{env.account_id}/v1/token -> 401"


def test_api_calls_need_a_valid_credential(env: Env) -> None:
    url = f"{env.base_url}/api/2.0/accounts/{env.account_id}/credentials"

    anonymous = requests.get(url, timeout=5)
    forged = requests.get(url, headers={"Authorization": "Bearer forged"}, timeout=5)

    assert (anonymous.status_code, anonymous.json()["error_code"]) == (401, "UNAUTHENTICATED")
    assert (forged.status_code, forged.json()["error_code"]) == (401, "UNAUTHENTICATED")


def test_a_token_of_this_account_is_refused_on_another_account_path(env: Env) -> None:
    other = f"{env.base_url}/api/2.0/accounts/{uuid.uuid4()}/credentials"

    reply = requests.get(other, headers={"Authorization": f"Bearer {env.account_token()}"}, timeout=5)

    assert (reply.status_code, reply.json()["error_code"]) == (403, "PERMISSION_DENIED")


def test_basic_auth_is_accepted_when_configured(env: Env) -> None:
    good = env.account(username="admin@example.com", password="admin-password")
    bad = env.account(username="admin@example.com", password="wrong")

    assert list(good.networks.list()) == []
    with pytest.raises(Unauthenticated):
        list(bad.networks.list())


def test_unknown_endpoint_answers_endpoint_not_found(env: Env) -> None:
    reply = requests.get(f"{env.base_url}/api/2.0/accounts/{env.account_id}/no-such-thing", timeout=5)

    assert (reply.status_code, reply.json()["error_code"]) == (404, "ENDPOINT_NOT_FOUND")


# ---------------------------------------------------------------------------------------------- credentials


def test_credentials_create_get_list_delete(env: Env) -> None:
    a = env.account()
    role_arn = make_role(env, attach=True)

    credentials_id = create_credentials(a, role_arn)
    fetched = a.credentials.get(credentials_id)

    assert uuid.UUID(credentials_id)
    assert fetched.credentials_name == "dep-credentials"
    assert fetched.account_id == env.account_id
    assert fetched.aws_credentials is not None and fetched.aws_credentials.sts_role is not None
    assert fetched.aws_credentials.sts_role.role_arn == role_arn
    assert isinstance(fetched.creation_time, int) and fetched.creation_time > 1_600_000_000_000
    assert [c.credentials_id for c in a.credentials.list()] == [credentials_id]

    a.credentials.delete(credentials_id)

    assert list(a.credentials.list()) == []
    with pytest.raises(NotFound) as missing:
        a.credentials.get(credentials_id)
    assert missing.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_credentials_names_are_checked(env: Env) -> None:
    a = env.account()
    role_arn = make_role(env)
    create_credentials(a, role_arn)

    with pytest.raises(InvalidParameterValue) as duplicate:
        create_credentials(a, role_arn)
    with pytest.raises(InvalidParameterValue):
        create_credentials(a, role_arn, name="abc")

    assert str(duplicate.value) == (
        "Credential configuration name dep-credentials already exists in this account. Try again with a unique name."
    )


def test_iam_propagation_window_gives_malformed_request_then_succeeds(env: Env) -> None:
    env.emulator.settings.iam_propagation_seconds = 10
    a = env.account()
    role_arn = make_role(env)

    with pytest.raises(BadRequest) as early:
        create_credentials(a, role_arn)
    env.clock.advance(9)
    with pytest.raises(BadRequest):
        create_credentials(a, role_arn)
    env.clock.advance(1)
    credentials_id = create_credentials(a, role_arn)

    assert early.value.error_code == "MALFORMED_REQUEST"
    assert str(early.value).startswith("Failed credentials validation checks:")
    assert a.credentials.get(credentials_id).credentials_name == "dep-credentials"


def test_credential_validation_failure_is_a_text_plain_400(env: Env) -> None:
    role_arn = make_role(env, actions=["s3:ListAllMyBuckets"])
    body = {"credentials_name": "bad-role", "aws_credentials": {"sts_role": {"role_arn": role_arn}}}

    reply = requests.post(
        f"{env.base_url}/api/2.0/accounts/{env.account_id}/credentials",
        json=body,
        headers={"Authorization": f"Bearer {env.account_token()}"},
        timeout=5,
    )

    assert reply.status_code == 400
    assert reply.headers["Content-Type"].startswith("text/plain")
    assert reply.text == (
        "MALFORMED_REQUEST: Failed credential validation checks: "
        "please use a valid cross account IAM role with permissions setup correctly"
    )


@pytest.mark.parametrize(
    "trust",
    [
        pytest.param(lambda account: trust_policy(external_id=None), id="no-external-id"),
        pytest.param(lambda account: trust_policy(external_id=str(uuid.uuid4())), id="other-external-id"),
        pytest.param(
            lambda account: trust_policy("arn:aws:iam::111122223333:root", external_id=account), id="other-principal"
        ),
    ],
)
def test_role_that_does_not_trust_databricks_is_rejected(env: Env, trust: Any) -> None:
    role_arn = make_role(env, trust=trust(env.account_id))

    with pytest.raises(BadRequest) as rejected:
        create_credentials(env.account(), role_arn)

    assert rejected.value.error_code == "MALFORMED_REQUEST"
    assert "please use a valid cross account IAM role" in str(rejected.value)


@pytest.mark.parametrize(
    "actions",
    [
        pytest.param([a for a in REQUIRED_CROSS_ACCOUNT_ACTIONS if a != "ec2:RunInstances"], id="no-run-instances"),
        pytest.param(["ec2:Describe*"], id="describe-only"),
    ],
)
def test_role_without_the_customer_policy_actions_is_rejected(env: Env, actions: list[str]) -> None:
    with pytest.raises(BadRequest) as rejected:
        create_credentials(env.account(), make_role(env, actions=actions))

    assert rejected.value.error_code == "MALFORMED_REQUEST"


def test_role_with_wildcard_ec2_permissions_is_accepted(env: Env) -> None:
    assert create_credentials(env.account(), make_role(env, actions=["ec2:*"]))


def test_role_with_a_restricted_style_policy_is_accepted(env: Env) -> None:
    """The restricted policy grants list B only through scoped, conditional statements: that still counts."""
    scoped = [
        ["ec2:AssociateIamInstanceProfile", "ec2:DisassociateIamInstanceProfile"],
        ["ec2:ReplaceIamInstanceProfileAssociation", "ec2:RunInstances", "ec2:TerminateInstances"],
        ["ec2:AttachVolume", "ec2:DetachVolume", "ec2:CreateVolume", "ec2:DeleteVolume"],
        ["ec2:AuthorizeSecurityGroupEgress", "ec2:AuthorizeSecurityGroupIngress"],
        ["ec2:RevokeSecurityGroupEgress", "ec2:RevokeSecurityGroupIngress"],
    ]
    base = [a for a in REQUIRED_CROSS_ACCOUNT_ACTIONS if not any(a in group for group in scoped)]
    assert len(base) == 37
    role_arn = make_role(env, actions=base)
    statements = [
        {
            "Effect": "Allow",
            "Action": group,
            "Resource": f"arn:aws:ec2:{REGION}:123456789012:instance/*",
            "Condition": {"StringEquals": {"ec2:ResourceTag/Vendor": "Databricks"}},
        }
        for group in scoped
    ]
    env.iam.put_role_policy(
        RoleName="cross-account",
        PolicyName="restricted-scoped",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}),
    )

    assert create_credentials(env.account(), role_arn)


def test_missing_role_is_rejected(env: Env) -> None:
    with pytest.raises(BadRequest) as rejected:
        create_credentials(env.account(), "arn:aws:iam::123456789012:role/never-created")

    assert rejected.value.error_code == "MALFORMED_REQUEST"


def test_required_actions_are_the_customer_policy() -> None:
    assert len(REQUIRED_CROSS_ACCOUNT_ACTIONS) == len(set(REQUIRED_CROSS_ACCOUNT_ACTIONS)) == 50
    assert {"ec2:RunInstances", "ec2:CreateFleet", "ec2:DescribeVpcAttribute"} <= set(REQUIRED_CROSS_ACCOUNT_ACTIONS)
    assert "ec2:CreateVpc" not in REQUIRED_CROSS_ACCOUNT_ACTIONS  # a managed-VPC-only action


# -------------------------------------------------------------------------------------------------- storage


def test_storage_configuration_with_bucket_policy_is_created(env: Env) -> None:
    a = env.account()
    bucket = make_bucket(env, policy=bucket_policy("root-bucket", condition_account=env.account_id))

    storage_id = create_storage(a, bucket)
    fetched = a.storage.get(storage_id)

    assert fetched.root_bucket_info is not None and fetched.root_bucket_info.bucket_name == bucket
    assert fetched.account_id == env.account_id
    assert [s.storage_configuration_id for s in a.storage.list()] == [storage_id]
    a.storage.delete(storage_id)
    assert list(a.storage.list()) == []


def test_storage_without_bucket_policy_is_rejected(env: Env) -> None:
    env.s3.create_bucket(Bucket="bare-bucket", CreateBucketConfiguration={"LocationConstraint": REGION})

    with pytest.raises(BadRequest) as rejected:
        create_storage(env.account(), "bare-bucket")

    assert rejected.value.error_code == "MALFORMED_REQUEST"
    assert "Failed storage configuration validation checks: " in str(rejected.value)
    assert "List" in str(rejected.value)


@pytest.mark.parametrize(
    "policy",
    [
        pytest.param(lambda account: bucket_policy("other-bucket"), id="policy-for-another-bucket"),
        pytest.param(lambda account: bucket_policy("root-bucket", condition_account="someone"), id="other-account"),
    ],
)
def test_storage_with_a_policy_that_does_not_grant_databricks_is_rejected(env: Env, policy: Any) -> None:
    bucket = make_bucket(env, policy=policy(env.account_id))

    with pytest.raises(BadRequest):
        create_storage(env.account(), bucket)


def test_storage_for_missing_bucket_is_rejected(env: Env) -> None:
    with pytest.raises(BadRequest):
        create_storage(env.account(), "no-such-bucket")


# ------------------------------------------------------------------------------------------------- networks


def test_network_is_created_unattached(env: Env) -> None:
    a = env.account()
    vpc = make_vpc(env)

    network = a.networks.get(create_network(a, vpc))

    assert network.vpc_id == vpc.vpc_id
    assert network.subnet_ids == vpc.subnet_ids
    assert network.security_group_ids == [vpc.sg_id]
    assert network.vpc_status is not None and network.vpc_status.value == "UNATTACHED"
    assert network.error_messages == [] and network.warning_messages == []
    assert network.workspace_id is None


@pytest.mark.parametrize(
    ("vpc_kwargs", "expected"),
    [
        ({"subnets": (("10.0.0.0/24", "a"), ("10.0.1.0/24", "a"))}, "same availability zone"),
        ({"subnets": (("10.0.0.0/24", "a"), ("10.0.1.0/27", "b"))}, "netmask /27"),
        ({"cidr": "10.0.0.0/16", "subnets": (("10.0.0.0/16", "a"),)}, "at least 2 subnets"),
        ({"dns": False}, "DNS hostnames"),
    ],
    ids=["same-az", "netmask-too-small", "one-subnet", "dns-off"],
)
def test_network_validation_failures(env: Env, vpc_kwargs: dict[str, Any], expected: str) -> None:
    vpc = make_vpc(env, **vpc_kwargs)

    with pytest.raises(InvalidParameterValue, match=expected):
        create_network(env.account(), vpc)


def test_network_subnets_cannot_be_reused(env: Env) -> None:
    a = env.account()
    vpc = make_vpc(env)
    create_network(a, vpc)
    other_sg = env.ec2.create_security_group(GroupName="second", Description="x", VpcId=vpc.vpc_id)["GroupId"]

    with pytest.raises(InvalidParameterValue, match=f"Subnet {vpc.subnet_ids[0]} is already used"):
        a.networks.create(
            network_name="second-network", vpc_id=vpc.vpc_id, subnet_ids=vpc.subnet_ids, security_group_ids=[other_sg]
        )


def test_network_security_groups_must_exist_in_the_vpc(env: Env) -> None:
    a = env.account()
    vpc = make_vpc(env)
    elsewhere = make_vpc(env, "10.1.0.0/16", subnets=())

    with pytest.raises(InvalidParameterValue, match="does not belong to VPC"):
        a.networks.create(
            network_name="n-foreign-sg",
            vpc_id=vpc.vpc_id,
            subnet_ids=vpc.subnet_ids,
            security_group_ids=[elsewhere.sg_id],
        )
    with pytest.raises(InvalidParameterValue, match="sg-0000 does not exist"):
        a.networks.create(
            network_name="n-missing-sg", vpc_id=vpc.vpc_id, subnet_ids=vpc.subnet_ids, security_group_ids=["sg-0000"]
        )


# ----------------------------------------------------------------------------------------------- workspaces


def test_workspace_goes_not_provisioned_provisioning_running(env: Env) -> None:
    env.emulator.settings.workspace_provisioning_seconds = 60
    stack = make_stack(env)

    created = create_workspace(stack, deployment_name="dep-ws")
    assert created.workspace_id is not None
    during = stack.account.workspaces.get(created.workspace_id)
    env.clock.advance(59)
    still = stack.account.workspaces.get(created.workspace_id)
    env.clock.advance(1)
    done = stack.account.workspaces.get(created.workspace_id)

    assert created.workspace_status == WorkspaceStatus.NOT_PROVISIONED
    assert created.workspace_status_message == "Workspace has not yet begun provisioning."
    assert created.deployment_name == "dep-ws"
    assert [during.workspace_status, still.workspace_status] == [WorkspaceStatus.PROVISIONING] * 2
    assert done.workspace_status == WorkspaceStatus.RUNNING
    assert done.aws_region == REGION and done.network_id == stack.network_id
    network = stack.account.networks.get(stack.network_id)
    assert network.workspace_id == created.workspace_id
    assert network.vpc_status is not None and network.vpc_status.value == "VALID"


def test_workspace_without_deployment_name_gets_a_dbc_name(env: Env) -> None:
    created = create_workspace(make_stack(env))

    assert created.deployment_name is not None
    assert re.fullmatch(r"dbc-[0-9a-f]{8}-[0-9a-f]{4}", created.deployment_name)


def test_workspace_fails_when_its_security_group_is_gone_at_provisioning(env: Env) -> None:
    env.emulator.settings.workspace_provisioning_seconds = 30
    stack = make_stack(env)
    created = create_workspace(stack)
    assert created.workspace_id is not None

    env.ec2.delete_security_group(GroupId=stack.vpc.sg_id)
    env.clock.advance(30)
    failed = stack.account.workspaces.get(created.workspace_id)
    network = stack.account.networks.get(stack.network_id)

    assert failed.workspace_status == WorkspaceStatus.FAILED
    assert failed.workspace_status_message is not None and stack.vpc.sg_id in failed.workspace_status_message
    assert network.vpc_status is not None and network.vpc_status.value == "BROKEN"
    assert network.error_messages is not None
    assert [(e.error_type.value if e.error_type else None, e.error_message) for e in network.error_messages] == [
        ("securityGroup", f"Security group {stack.vpc.sg_id} does not exist.")
    ]


def test_failed_workspace_can_be_moved_to_a_new_network(env: Env) -> None:
    stack = make_stack(env)
    env.ec2.delete_security_group(GroupId=stack.vpc.sg_id)
    created = create_workspace(stack)
    assert created.workspace_id is not None
    assert stack.account.workspaces.get(created.workspace_id).workspace_status == WorkspaceStatus.FAILED
    replacement = create_network(
        stack.account,
        make_vpc(env, "10.2.0.0/16", subnets=(("10.2.0.0/24", "a"), ("10.2.1.0/24", "b"))),
        "dep-network-2",
    )

    updated = stack.account.workspaces.update(
        created.workspace_id, Workspace(network_id=replacement), update_mask="network_id"
    ).response

    assert updated.workspace_status == WorkspaceStatus.PROVISIONING
    running = stack.account.workspaces.get(created.workspace_id)
    assert (running.workspace_status, running.network_id) == (WorkspaceStatus.RUNNING, replacement)
    assert stack.account.networks.get(stack.network_id).workspace_id is None


def test_workspace_create_revalidates_the_credential(env: Env) -> None:
    stack = make_stack(env)
    env.iam.put_role_policy(
        RoleName="cross-account",
        PolicyName="databricks",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ec2:Describe*", "Resource": "*"}]}
        ),
    )

    with pytest.raises(BadRequest) as rejected:
        create_workspace(stack)

    assert rejected.value.error_code == "MALFORMED_REQUEST"
    assert str(rejected.value).startswith("Failed credentials validation checks: ")
    assert "Run Instances" in str(rejected.value) and "Describe Vpcs" not in str(rejected.value)
    assert list(stack.account.workspaces.list()) == []


def test_recreated_role_is_in_its_propagation_window_again_at_workspace_create(env: Env) -> None:
    stack = make_stack(env)
    env.emulator.settings.iam_propagation_seconds = 15
    env.iam.delete_role_policy(RoleName="cross-account", PolicyName="databricks")
    env.iam.delete_role(RoleName="cross-account")
    make_role(env)  # same name and ARN, new role

    with pytest.raises(BadRequest) as propagating:
        create_workspace(stack)
    env.clock.advance(15)
    created = create_workspace(stack)

    assert propagating.value.error_code == "MALFORMED_REQUEST"
    assert "Describe Availability Zones" in str(propagating.value)
    assert created.workspace_status == WorkspaceStatus.NOT_PROVISIONED


def test_workspace_create_checks_its_inputs(env: Env) -> None:
    stack = make_stack(env)
    a = stack.account

    with pytest.raises(InvalidParameterValue, match="aws_region"):
        a.workspaces.create(
            workspace_name="no-region", credentials_id=stack.credentials_id, storage_configuration_id=stack.storage_id
        )
    with pytest.raises(InvalidParameterValue, match="does not exist"):
        a.workspaces.create(
            workspace_name="bad-creds",
            aws_region=REGION,
            credentials_id=str(uuid.uuid4()),
            storage_configuration_id=stack.storage_id,
        )
    create_workspace(stack, deployment_name="taken")
    with pytest.raises(InvalidParameterValue, match="already exists"):
        create_workspace(stack)
    with pytest.raises(InvalidParameterValue, match="already used by workspace"):
        create_workspace(stack, name="second-workspace")


def test_resources_used_by_a_workspace_cannot_be_deleted(env: Env) -> None:
    stack = make_stack(env)
    created = create_workspace(stack)

    with pytest.raises(InvalidState) as network_in_use:
        stack.account.networks.delete(stack.network_id)
    with pytest.raises(InvalidState, match="Credential is being used"):
        stack.account.credentials.delete(stack.credentials_id)
    with pytest.raises(InvalidState, match="Storage configuration is being used"):
        stack.account.storage.delete(stack.storage_id)

    assert str(network_in_use.value) == (
        f"Unable to delete, Network is being used by active workspace {created.workspace_id}"
    )


def test_network_in_use_can_answer_409_with_an_empty_body(env: Env) -> None:
    env.emulator.settings.network_delete_conflict_409 = True
    stack = make_stack(env)
    create_workspace(stack)

    with pytest.raises(ResourceConflict):
        stack.account.networks.delete(stack.network_id)


def test_deleted_workspace_stays_visible_for_the_window_then_is_gone(env: Env) -> None:
    env.emulator.settings.workspace_deleting_seconds = 120
    stack = make_stack(env)
    workspace_id = create_workspace(stack).workspace_id
    assert workspace_id is not None

    stack.account.workspaces.delete(workspace_id)
    env.clock.advance(119)
    during = stack.account.workspaces.get(workspace_id)
    with pytest.raises(InvalidState):
        stack.account.networks.delete(stack.network_id)
    env.clock.advance(1)

    assert during.workspace_id == workspace_id
    with pytest.raises(NotFound) as gone:
        stack.account.workspaces.get(workspace_id)
    assert gone.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert list(stack.account.workspaces.list()) == []
    stack.account.networks.delete(stack.network_id)
    stack.account.credentials.delete(stack.credentials_id)
    stack.account.storage.delete(stack.storage_id)


# ------------------------------------------------------------------------------------------ workspace hosts


def test_pat_is_created_through_the_workspace_host(env: Env) -> None:
    stack = make_stack(env)
    created = create_workspace(stack, deployment_name="pat-ws")
    assert stack.account.workspaces.get(created.workspace_id).workspace_status == WorkspaceStatus.RUNNING
    host = workspace_url(env.base_url, "pat-ws")

    w = WorkspaceClient(host=host, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    token = w.tokens.create(lifetime_seconds=3600, comment="provisioner")

    assert token.token_value is not None and re.fullmatch(r"dapi[0-9a-f]{32}", token.token_value)
    assert token.token_info is not None and token.token_info.comment == "provisioner"
    assert token.token_info.expiry_time == token.token_info.creation_time + 3_600_000
    assert w.config.workspace_id == str(created.workspace_id)
    with_pat = WorkspaceClient(host=host, token=token.token_value)
    assert [t.token_id for t in with_pat.tokens.list()] == [token.token_info.token_id]
    assert with_pat.current_user.me().user_name == CLIENT_ID
    w.tokens.delete(token.token_info.token_id)
    assert list(w.tokens.list()) == []


def test_workspace_host_is_unavailable_until_running_and_rejects_account_tokens(env: Env) -> None:
    env.emulator.settings.workspace_provisioning_seconds = 60
    stack = make_stack(env)
    create_workspace(stack, deployment_name="slow-ws")
    host = workspace_url(env.base_url, "slow-ws")

    before = requests.get(f"{host}/.well-known/databricks-config", timeout=5)
    env.clock.advance(60)
    after = requests.get(f"{host}/.well-known/databricks-config", timeout=5)
    account_token = requests.get(
        f"{host}/api/2.0/token/list", headers={"Authorization": f"Bearer {env.account_token()}"}, timeout=5
    )

    assert before.status_code == 404
    assert after.status_code == 200 and after.json()["oidc_endpoint"] == f"{host}/oidc"
    assert account_token.status_code == 401


def test_workspace_token_endpoint_rejects_a_wrong_secret(env: Env) -> None:
    stack = make_stack(env)
    create_workspace(stack, deployment_name="ws-secret")
    w = WorkspaceClient(host=workspace_url(env.base_url, "ws-secret"), client_id=CLIENT_ID, client_secret="nope")

    with pytest.raises(ValueError, match="invalid_client"):
        list(w.tokens.list())


def test_reset_forgets_everything(env: Env) -> None:
    stack = make_stack(env)
    create_workspace(stack)

    env.emulator.reset()

    with pytest.raises(Unauthenticated):  # access tokens are forgotten too
        list(stack.account.workspaces.list())
    fresh = env.account()
    assert list(fresh.workspaces.list()) == [] and list(fresh.networks.list()) == []


def test_permission_denied_maps_for_wrong_account_via_sdk(env: Env) -> None:
    token = env.account_token()
    client = AccountClient(host=env.base_url, account_id=str(uuid.uuid4()), token=token)

    with pytest.raises(PermissionDenied):
        list(client.workspaces.list())


# ------------------------------------------------------------------------------------------------ fault mode


@pytest.fixture
def sdk_sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The SDK's retry pauses, recorded instead of slept (its Retry-After is 1 s a time)."""
    from databricks.sdk.clock import RealClock

    slept: list[float] = []
    monkeypatch.setattr(RealClock, "sleep", lambda _self, seconds: slept.append(seconds))
    return slept


def _get(env: Env, path: str, token: str) -> requests.Response:
    return requests.get(f"{env.base_url}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=5)


def test_a_throttled_request_answers_429_with_retry_after_and_takes_no_effect(env: Env) -> None:
    token = env.account_token()
    env.emulator.settings.faults = Faults(rate=1.0, kinds=("429",), endpoints=frozenset({"account"}))
    role_arn = make_role(env)
    body = {"credentials_name": "dep-credentials", "aws_credentials": {"sts_role": {"role_arn": role_arn}}}

    reply = requests.post(
        f"{env.base_url}/api/2.0/accounts/{env.account_id}/credentials",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    )

    assert reply.status_code == 429 and reply.headers["Retry-After"] == "1"
    assert reply.json()["error_code"] == "REQUEST_LIMIT_EXCEEDED"
    env.emulator.settings.faults = None
    assert list(env.account().credentials.list()) == []
    path = f"/api/2.0/accounts/{env.account_id}/credentials"
    assert env.emulator.faults_injected == [f"POST {path} -> 429 (fault, before)"]


@pytest.mark.parametrize("kind", ["503", "reset"])
def test_a_lost_reply_comes_after_the_object_is_made(env: Env, kind: str, sdk_sleeps: list[float]) -> None:
    """The create takes effect and its reply is lost; the SDK sends it again and hears that the name is taken."""
    a = env.account()
    list(a.credentials.list())  # signed in before the faults start
    env.emulator.settings.faults = Faults(rate=1.0, after=1.0, kinds=(kind,), methods=frozenset({"POST"}), limit=1)

    with pytest.raises(InvalidParameterValue, match="already exists"):
        create_credentials(a, make_role(env))

    [made] = list(a.credentials.list())
    assert made.credentials_name == "dep-credentials"
    posts = [line for line in env.log if line.startswith("POST") and line.endswith("/credentials -> 400")]
    path = f"/api/2.0/accounts/{env.account_id}/credentials"
    assert env.emulator.faults_injected == [f"POST {path} -> {kind} (fault, after)"]
    assert len(posts) == 1 and len(sdk_sleeps) == 1


def test_a_reset_connection_is_a_connection_error_and_the_sdk_retries_it(env: Env, sdk_sleeps: list[float]) -> None:
    token = env.account_token()
    env.emulator.settings.faults = Faults(rate=1.0, kinds=("reset",), endpoints=frozenset({"account"}), limit=2)
    path = f"/api/2.0/accounts/{env.account_id}/networks"

    with pytest.raises(requests.ConnectionError):
        _get(env, path, token)
    assert list(env.account().networks.list()) == []  # the second fault, then the SDK's retry succeeds

    assert env.emulator.faults_injected == [f"GET {path} -> reset (fault, before)"] * 2
    assert len(sdk_sleeps) == 1


def test_faults_are_drawn_from_the_seed_and_the_endpoint_count(env: Env) -> None:
    def statuses(seed: int) -> list[int]:
        env.emulator.reset()
        token = env.account_token()
        env.emulator.settings.faults = Faults(rate=0.5, seed=seed, kinds=("429", "503"))
        try:
            return [_get(env, f"/api/2.0/accounts/{env.account_id}/{kind}", token).status_code
                    for _ in range(10) for kind in ("credentials", "networks")]
        finally:
            env.emulator.settings.faults = None

    first, again, other = statuses(7), statuses(7), statuses(8)

    assert first == again != other
    assert {200, 429, 503} <= set(first)


@pytest.mark.parametrize(
    "path",
    [
        "/.well-known/databricks-config",
        "/oidc/accounts/{account}/.well-known/oauth-authorization-server",
    ],
)
def test_sign_in_discovery_endpoints_can_fail(env: Env, path: str) -> None:
    env.emulator.settings.faults = Faults(rate=1.0, kinds=("503",), endpoints=frozenset({"account-sign-in"}))

    reply = requests.get(f"{env.base_url}{path.format(account=env.account_id)}", timeout=5)

    assert (reply.status_code, reply.json()["error_code"]) == (503, "TEMPORARILY_UNAVAILABLE")


def test_the_oauth_token_endpoint_can_fail_in_oauth_form(env: Env) -> None:
    env.emulator.settings.faults = Faults(rate=1.0, kinds=("503",), endpoints=frozenset({"account-sign-in"}))

    with pytest.raises(requests.HTTPError) as failed:
        env.account_token()
    reply = failed.value.response

    assert reply.status_code == 503 and reply.json()["error"] == "temporarily_unavailable"
    env.emulator.settings.faults = Faults(rate=1.0, endpoints=frozenset({"workspace", "workspace-sign-in"}))
    assert env.account_token()  # the account's sign-in is not chosen now


def test_faults_parse_from_a_spec() -> None:
    faults = Faults.parse("rate=0.2,seed=7,after=0,kinds=503+reset,endpoints=account+workspace,methods=post,limit=3")

    assert faults == Faults(rate=0.2, seed=7, after=0.0, kinds=("503", "reset"),
                            endpoints=frozenset({"account", "workspace"}), methods=frozenset({"POST"}), limit=3)
    with pytest.raises(ValueError, match="unknown"):
        Faults.parse("rate=0.2,kinds=418")
    with pytest.raises(ValueError, match="between 0 and 1"):
        Faults(rate=2)


# -------------------------------------------------------------------------- a new workspace's API, tokens


def _workspace_client(env: Env, deployment: str) -> WorkspaceClient:
    return WorkspaceClient(host=workspace_url(env.base_url, deployment), client_id=CLIENT_ID,
                           client_secret=CLIENT_SECRET)


@pytest.mark.parametrize("status, error", [(403, PermissionDenied), (401, Unauthenticated)])
def test_a_new_workspace_refuses_its_first_api_requests(env: Env, status: int, error: type) -> None:
    env.emulator.settings.workspace_api_warmup_requests = 2
    env.emulator.settings.workspace_api_warmup_status = status
    create_workspace(make_stack(env), deployment_name="warm-ws")
    w = _workspace_client(env, "warm-ws")

    for _ in range(2):
        with pytest.raises(error):
            w.current_user.me()
    assert w.current_user.me().user_name == CLIENT_ID
    assert list(w.tokens.list()) == []


@pytest.mark.parametrize("refusal", ["tokens-disabled", "no-token-permission"])
def test_token_creation_can_be_refused(env: Env, refusal: str) -> None:
    env.emulator.settings.token_refusal = refusal
    create_workspace(make_stack(env), deployment_name="no-pat")
    w = _workspace_client(env, "no-pat")

    with pytest.raises(PermissionDenied) as refused:
        w.tokens.create(comment="x", lifetime_seconds=60)

    assert refused.value.error_code == "PERMISSION_DENIED"
    assert ("disabled" if refusal == "tokens-disabled" else "does not have permission") in str(refused.value)
    assert w.current_user.me().user_name == CLIENT_ID and list(w.tokens.list()) == []


def test_a_principal_that_is_not_a_member_is_unauthenticated_in_the_workspace(env: Env) -> None:
    env.emulator.settings.token_refusal = "not-a-member"
    create_workspace(make_stack(env), deployment_name="not-member")
    w = _workspace_client(env, "not-member")

    with pytest.raises(Unauthenticated, match="not a member"):
        w.current_user.me()
    with pytest.raises(Unauthenticated):
        w.tokens.create(comment="x")


# ------------------------------------------------------------------------------------------------ PrivateLink

WORKSPACE_SERVICE = "com.amazonaws.vpce.eu-west-1.vpce-svc-0da6ebf1461278016"
RELAY_SERVICE = "com.amazonaws.vpce.eu-west-1.vpce-svc-09b4eb2bc775f4e8c"


def _interface_endpoint(env: Env, vpc: Vpc, service: str) -> str:
    return str(env.ec2.create_vpc_endpoint(VpcId=vpc.vpc_id, VpcEndpointType="Interface", ServiceName=service,
                                           SubnetIds=vpc.subnet_ids[:1], SecurityGroupIds=[vpc.sg_id])
               ["VpcEndpoint"]["VpcEndpointId"])


def test_privatelink_endpoints_are_registered_named_by_a_network_and_a_workspace_gets_access_settings(env: Env):
    from databricks.sdk.service.provisioning import NetworkVpcEndpoints, PrivateAccessLevel

    stack = make_stack(env)
    a = stack.account
    rest = a.vpc_endpoints.create(vpc_endpoint_name="dep-rest", aws_vpc_endpoint_id=_interface_endpoint(
        env, stack.vpc, WORKSPACE_SERVICE), region=REGION)
    relay = a.vpc_endpoints.create(vpc_endpoint_name="dep-relay", aws_vpc_endpoint_id=_interface_endpoint(
        env, stack.vpc, RELAY_SERVICE), region=REGION)
    assert (rest.use_case.value, relay.use_case.value) == ("WORKSPACE_ACCESS", "DATAPLANE_RELAY_ACCESS")

    # A network may name only registered endpoints, each for its own use.
    vpc = make_vpc(env, "10.1.0.0/16", subnets=(("10.1.0.0/24", "a"), ("10.1.1.0/24", "b")))
    with pytest.raises(BadRequest, match="not registered"):
        a.networks.create(network_name="pl-network", vpc_id=vpc.vpc_id, subnet_ids=vpc.subnet_ids,
                          security_group_ids=[vpc.sg_id],
                          vpc_endpoints=NetworkVpcEndpoints(rest_api=["nope"], dataplane_relay=[relay.vpc_endpoint_id]))
    with pytest.raises(BadRequest, match=r"cannot serve vpc_endpoints\.rest_api"):
        a.networks.create(network_name="pl-network", vpc_id=vpc.vpc_id, subnet_ids=vpc.subnet_ids,
                          security_group_ids=[vpc.sg_id], vpc_endpoints=NetworkVpcEndpoints(
                              rest_api=[relay.vpc_endpoint_id], dataplane_relay=[relay.vpc_endpoint_id]))
    network = a.networks.create(network_name="pl-network", vpc_id=vpc.vpc_id, subnet_ids=vpc.subnet_ids,
                                security_group_ids=[vpc.sg_id], vpc_endpoints=NetworkVpcEndpoints(
                                    rest_api=[rest.vpc_endpoint_id], dataplane_relay=[relay.vpc_endpoint_id]))
    with pytest.raises(InvalidState):
        a.vpc_endpoints.delete(rest.vpc_endpoint_id)  # a network names it

    elsewhere = a.private_access.create(private_access_settings_name="pas-us", region="us-east-1",
                                        public_access_enabled=True, private_access_level=PrivateAccessLevel.ACCOUNT)
    with pytest.raises(BadRequest, match="not the workspace region"):
        create_workspace(stack, "pl-ws", private_access_settings_id=elsewhere.private_access_settings_id)
    pas = a.private_access.create(private_access_settings_name="pas-eu", region=REGION, public_access_enabled=True,
                                  private_access_level=PrivateAccessLevel.ACCOUNT)
    plain_network = stack.network_id
    stack.network_id = str(network.network_id)
    ws = create_workspace(stack, "pl-ws", private_access_settings_id=pas.private_access_settings_id)
    assert a.workspaces.get(ws.workspace_id).private_access_settings_id == pas.private_access_settings_id
    with pytest.raises(InvalidState):
        a.private_access.delete(pas.private_access_settings_id)
    # A RUNNING workspace cannot lose PrivateLink: neither its settings nor its network's endpoints.
    assert a.workspaces.get(ws.workspace_id).workspace_status.value == "RUNNING"
    with pytest.raises(BadRequest, match="cannot be removed"):
        a.workspaces.update(ws.workspace_id, Workspace(private_access_settings_id=""),
                            update_mask="private_access_settings_id")
    with pytest.raises(BadRequest, match="PrivateLink cannot be removed"):
        a.workspaces.update(ws.workspace_id, Workspace(network_id=plain_network), update_mask="network_id")


def test_an_endpoint_must_exist_wait_for_acceptance_and_reach_a_databricks_service(env: Env):
    a = env.account()
    vpc = make_vpc(env)
    with pytest.raises(BadRequest, match="does not exist"):
        a.vpc_endpoints.create(vpc_endpoint_name="dep-rest", aws_vpc_endpoint_id="vpce-0123456789abcdef0",
                               region=REGION)
    other = _interface_endpoint(env, vpc, "com.amazonaws.eu-west-1.sts")
    with pytest.raises(BadRequest, match="not a Databricks endpoint service"):
        a.vpc_endpoints.create(vpc_endpoint_name="dep-sts", aws_vpc_endpoint_id=other, region=REGION)
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.ec2.models import ec2_backends

    # AWS holds an endpoint to a Databricks service in pendingAcceptance until it is registered (Account API).
    endpoint = _interface_endpoint(env, vpc, WORKSPACE_SERVICE)

    def aws_state() -> str:
        return str(env.ec2.describe_vpc_endpoints(VpcEndpointIds=[endpoint])["VpcEndpoints"][0]["State"])

    assert aws_state() == "pendingAcceptance"
    turned_down = _interface_endpoint(env, vpc, WORKSPACE_SERVICE)
    ec2_backends[DEFAULT_ACCOUNT_ID][REGION].vpc_end_points[turned_down].state = "rejected"
    with pytest.raises(BadRequest, match="is rejected"):
        a.vpc_endpoints.create(vpc_endpoint_name="dep-rejected", aws_vpc_endpoint_id=turned_down, region=REGION)
    # Registering it is what accepts it: it becomes available, and the registration's state follows the AWS
    # endpoint's, which Databricks derives it from.
    registered = a.vpc_endpoints.create(vpc_endpoint_name="dep-rest", aws_vpc_endpoint_id=endpoint, region=REGION)
    assert registered.state in ("pending", "available")
    for _ in range(100):
        if a.vpc_endpoints.get(registered.vpc_endpoint_id).state == "available":
            break
    assert a.vpc_endpoints.get(registered.vpc_endpoint_id).state == "available"
    assert aws_state() == "available"
    env.ec2.delete_vpc_endpoints(VpcEndpointIds=[endpoint])
    assert a.vpc_endpoints.get(registered.vpc_endpoint_id).state == "deleted"


def test_privatelink_needs_the_enterprise_tier(env: Env):
    env.emulator.settings.enterprise_tier = False
    with pytest.raises(BadRequest, match="Enterprise"):
        env.account().private_access.create(private_access_settings_name="pas-eu", region=REGION)
