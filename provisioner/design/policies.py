"""IAM, bucket and VPC endpoint policy documents.

The trust, cross-account and bucket policies are byte-identical to what the Databricks Terraform provider
generates (`databricks_aws_assume_role_policy`, `databricks_aws_crossaccount_policy`,
`databricks_aws_bucket_policy`): Go's `json.MarshalIndent(policy, "", "  ")` over structs whose fields come
in the order Version, Id, Statement and Sid, Effect, Action, NotAction, Resource, NotResource, Principal,
Condition, empty fields left out. `json.dumps(..., indent=2)` over dicts built in that order gives the same
bytes, so a role made here and one made by Terraform compare equal.
"""

from __future__ import annotations

import json
from typing import Any

DATABRICKS_AWS_ACCOUNT = "414351767826"
PARTITION = "aws"
STATEMENT_KEYS = ("Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Principal", "Condition")

# Cross-account actions, in the provider's order (aws/data_aws_crossaccount_policy.go).
BASE_ACTIONS = (
    "ec2:AssignPrivateIpAddresses", "ec2:CancelSpotInstanceRequests", "ec2:DescribeAvailabilityZones",
    "ec2:DescribeIamInstanceProfileAssociations", "ec2:DescribeInstanceStatus", "ec2:DescribeInstances",
    "ec2:DescribeInternetGateways", "ec2:DescribeNatGateways", "ec2:DescribeNetworkAcls", "ec2:DescribePrefixLists",
    "ec2:DescribeReservedInstancesOfferings", "ec2:DescribeRouteTables", "ec2:DescribeSecurityGroups",
    "ec2:DescribeSpotInstanceRequests", "ec2:DescribeSpotPriceHistory", "ec2:DescribeSubnets", "ec2:DescribeVolumes",
    "ec2:DescribeVpcAttribute", "ec2:DescribeVpcs", "ec2:CreateTags", "ec2:DeleteTags", "ec2:GetSpotPlacementScores",
    "ec2:RequestSpotInstances", "ec2:DescribeFleetHistory", "ec2:ModifyFleet", "ec2:DeleteFleets",
    "ec2:DescribeFleetInstances", "ec2:DescribeFleets", "ec2:CreateFleet", "ec2:DeleteLaunchTemplate",
    "ec2:GetLaunchTemplateData", "ec2:CreateLaunchTemplate", "ec2:DescribeLaunchTemplates",
    "ec2:DescribeLaunchTemplateVersions", "ec2:ModifyLaunchTemplate", "ec2:DeleteLaunchTemplateVersions",
    "ec2:CreateLaunchTemplateVersion",
)
CUSTOMER_ACTIONS = (
    "ec2:AssociateIamInstanceProfile", "ec2:AttachVolume", "ec2:AuthorizeSecurityGroupEgress",
    "ec2:AuthorizeSecurityGroupIngress", "ec2:CreateVolume", "ec2:DeleteVolume", "ec2:DetachVolume",
    "ec2:DisassociateIamInstanceProfile", "ec2:ReplaceIamInstanceProfileAssociation", "ec2:RevokeSecurityGroupEgress",
    "ec2:RevokeSecurityGroupIngress", "ec2:RunInstances", "ec2:TerminateInstances",
)
ROOT_BUCKET_ACTIONS = ("s3:GetObject", "s3:GetObjectVersion", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket",
                       "s3:GetBucketLocation")


def _statement(**fields: Any) -> dict[str, Any]:
    return {key: fields[key] for key in STATEMENT_KEYS if fields.get(key)}


def _document(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def to_json(document: dict[str, Any]) -> str:
    """Serialize as the provider does (Go MarshalIndent with two spaces)."""
    return json.dumps(document, indent=2)


def databricks_principal(partition: str = PARTITION) -> str:
    return f"arn:{partition}:iam::{DATABRICKS_AWS_ACCOUNT}:root"


def assume_role_policy(external_id: str) -> dict[str, Any]:
    """Trust policy: the Databricks control plane may assume the role, given our account ID as external ID."""
    return _document(_statement(
        Effect="Allow",
        Action="sts:AssumeRole",
        Principal={"AWS": databricks_principal()},
        Condition={"StringEquals": {"sts:ExternalId": external_id}},
    ))


def crossaccount_policy(policy_type: str, *, aws_account_id: str = "", vpc_id: str = "", region: str = "",
                        security_group_id: str = "") -> dict[str, Any]:
    """What the Databricks control plane may do in our account with a customer-managed VPC.

    `restricted` scopes instance and volume actions to this account, region, VPC and security group;
    then the role cannot serve another workspace.
    """
    if policy_type not in ("customer", "restricted"):
        raise ValueError(f"policy_type must be 'customer' or 'restricted', not {policy_type!r}")
    actions = list(BASE_ACTIONS) + (list(CUSTOMER_ACTIONS) if policy_type == "customer" else [])
    statements = [
        _statement(Effect="Allow", Action=actions, Resource="*"),
        _statement(
            Effect="Allow",
            Action=["iam:CreateServiceLinkedRole", "iam:PutRolePolicy"],
            Resource=f"arn:{PARTITION}:iam::*:role/aws-service-role/spot.amazonaws.com/AWSServiceRoleForEC2Spot",
            Condition={"StringLike": {"iam:AWSServiceName": "spot.amazonaws.com"}},
        ),
    ]
    if policy_type == "restricted":
        statements += _restricted_statements(aws_account_id, vpc_id, region, security_group_id)
    return _document(*statements)


def _restricted_statements(account: str, vpc_id: str, region: str, sg_id: str) -> list[dict[str, Any]]:
    def arn(resource: str) -> str:
        return f"arn:{PARTITION}:ec2:{region}:{account}:{resource}"

    vendor = {"ec2:ResourceTag/Vendor": "Databricks"}
    in_vpc = {"StringEquals": {"ec2:vpc": arn(f"vpc/{vpc_id}")}}
    return [
        _statement(Sid="InstancePoolsSupport", Effect="Allow",
                   Action=["ec2:AssociateIamInstanceProfile", "ec2:DisassociateIamInstanceProfile",
                           "ec2:ReplaceIamInstanceProfileAssociation"],
                   Resource=arn("instance/*"), Condition={"StringEquals": vendor}),
        _statement(Sid="AllowEc2RunInstancePerTag", Effect="Allow", Action="ec2:RunInstances",
                   Resource=[arn("volume/*"), arn("instance/*")],
                   Condition={"StringEquals": {"aws:RequestTag/Vendor": "Databricks"}}),
        _statement(Sid="AllowEc2RunInstanceImagePerTag", Effect="Allow", Action="ec2:RunInstances",
                   Resource=arn("image/*"), Condition={"StringEquals": {"aws:ResourceTag/Vendor": "Databricks"}}),
        _statement(Sid="AllowEc2RunInstancePerVPCid", Effect="Allow", Action="ec2:RunInstances",
                   Resource=[arn("network-interface/*"), arn("subnet/*"), arn("security-group/*")], Condition=in_vpc),
        _statement(Sid="AllowEc2RunInstanceOtherResources", Effect="Allow", Action="ec2:RunInstances",
                   NotResource=[arn("image/*"), arn("network-interface/*"), arn("subnet/*"),
                                arn("security-group/*"), arn("volume/*"), arn("instance/*")]),
        _statement(Sid="EC2TerminateInstancesTag", Effect="Allow", Action="ec2:TerminateInstances",
                   Resource=arn("instance/*"), Condition={"StringEquals": vendor}),
        _statement(Sid="EC2AttachDetachVolumeTag", Effect="Allow", Action=["ec2:AttachVolume", "ec2:DetachVolume"],
                   Resource=[arn("instance/*"), arn("volume/*")], Condition={"StringEquals": vendor}),
        _statement(Sid="EC2CreateVolumeByTag", Effect="Allow", Action="ec2:CreateVolume", Resource=arn("volume/*"),
                   Condition={"StringEquals": {"aws:RequestTag/Vendor": "Databricks"}}),
        _statement(Sid="EC2DeleteVolumeByTag", Effect="Allow", Action="ec2:DeleteVolume", Resource=[arn("volume/*")],
                   Condition={"StringEquals": vendor}),
        _statement(Sid="VpcNonresourceSpecificActions", Effect="Allow",
                   Action=["ec2:AuthorizeSecurityGroupEgress", "ec2:AuthorizeSecurityGroupIngress",
                           "ec2:RevokeSecurityGroupEgress", "ec2:RevokeSecurityGroupIngress"],
                   Resource=arn(f"security-group/{sg_id}"), Condition=in_vpc),
    ]


def bucket_policy(bucket: str, databricks_e2_account_id: str = "") -> dict[str, Any]:
    """Root bucket policy: the Databricks control plane reads and writes the bucket.

    With `databricks_e2_account_id`, only requests tagged with our Databricks account (the confused-deputy guard).
    """
    condition = ({"StringEquals": {"aws:PrincipalTag/DatabricksAccountId": databricks_e2_account_id}}
                 if databricks_e2_account_id else None)
    return _document(_statement(
        Effect="Allow",
        Action=list(ROOT_BUCKET_ACTIONS),
        Resource=[f"arn:{PARTITION}:s3:::{bucket}/*", f"arn:{PARTITION}:s3:::{bucket}"],
        Principal={"AWS": databricks_principal()},
        Condition=condition,
    ))


def deny_insecure_transport(bucket: str) -> dict[str, Any]:
    """Refuse every request to the bucket that is not over TLS (AWS's own recommendation for S3; the provider's
    policy has no such statement, so it is added after the provider's, which stays byte-identical)."""
    return _statement(
        Sid="DenyInsecureTransport",
        Effect="Deny",
        Action="s3:*",
        Resource=[f"arn:{PARTITION}:s3:::{bucket}/*", f"arn:{PARTITION}:s3:::{bucket}"],
        Principal="*",
        Condition={"Bool": {"aws:SecureTransport": "false"}},
    )


def root_bucket_policy(bucket: str, databricks_e2_account_id: str) -> dict[str, Any]:
    """The root bucket's policy as provision writes it: the provider's statement with the Databricks account
    guard, then a Deny of plain-HTTP requests."""
    document = bucket_policy(bucket, databricks_e2_account_id)
    document["Statement"].append(deny_insecure_transport(bucket))
    return document


def _bucket_arns(buckets: list[str] | tuple[str, ...]) -> list[str]:
    return [arn for b in buckets for arn in (f"arn:{PARTITION}:s3:::{b}", f"arn:{PARTITION}:s3:::{b}/*")]


def s3_endpoint_policy(root_bucket: str, read_only_buckets: tuple[str, ...], log_bucket: str) -> dict[str, Any]:
    """S3 gateway endpoint policy: only the root bucket and the region's Databricks buckets.

    Without a policy the gateway endpoint is an unfiltered path to every bucket in the region, around the
    firewall. Databricks-owned buckets are pinned to the Databricks AWS account (aws:ResourceAccount), so a
    bucket of the same name elsewhere cannot be used.
    """
    return _document(
        _statement(Sid="WorkspaceRootBucket", Effect="Allow", Action=list(ROOT_BUCKET_ACTIONS),
                   Resource=_bucket_arns([root_bucket]), Principal="*"),
        _statement(Sid="DatabricksReadOnlyBuckets", Effect="Allow",
                   Action=["s3:ListBucket", "s3:GetObjectVersion", "s3:GetObject", "s3:GetBucketLocation"],
                   Resource=_bucket_arns(read_only_buckets), Principal="*",
                   Condition={"StringEquals": {"aws:ResourceAccount": DATABRICKS_AWS_ACCOUNT}}),
        _statement(Sid="DatabricksLogBucket", Effect="Allow",
                   Action=["s3:PutObject", "s3:ListBucket", "s3:GetBucketLocation"],
                   Resource=_bucket_arns([log_bucket]), Principal="*",
                   Condition={"StringEquals": {"aws:ResourceAccount": DATABRICKS_AWS_ACCOUNT}}),
    )


def sts_endpoint_policy(own_account_id: str) -> dict[str, Any]:
    """STS interface endpoint policy: sessions for our own principals and the Databricks account only."""
    return _document(
        _statement(Sid="OwnAccount", Effect="Allow",
                   Action=["sts:AssumeRole", "sts:GetAccessKeyInfo", "sts:GetSessionToken",
                           "sts:DecodeAuthorizationMessage", "sts:TagSession"],
                   Resource="*", Principal={"AWS": [own_account_id]}),
        _statement(Sid="DatabricksAccount", Effect="Allow",
                   Action=["sts:AssumeRole", "sts:GetSessionToken", "sts:TagSession"], Resource="*",
                   Principal={"AWS": [DATABRICKS_AWS_ACCOUNT,
                                      f"arn:{PARTITION}:iam::{DATABRICKS_AWS_ACCOUNT}:user/"
                                      "databricks-datasets-readonly-user-prod"]}),
    )


def kinesis_endpoint_policy(kinesis_region: str) -> dict[str, Any]:
    """Kinesis interface endpoint policy: only the Databricks account's streams (cluster logs and metrics)."""
    return _document(_statement(
        Sid="DatabricksStreams", Effect="Allow",
        Action=["kinesis:PutRecord", "kinesis:PutRecords", "kinesis:DescribeStream"],
        Resource=f"arn:{PARTITION}:kinesis:{kinesis_region}:{DATABRICKS_AWS_ACCOUNT}:stream/*",
        Principal={"AWS": [DATABRICKS_AWS_ACCOUNT]},
    ))


def flow_logs_trust_policy(own_account_id: str, region: str) -> dict[str, Any]:
    """Only the VPC Flow Logs service may assume the delivery role, and only for flow logs of this account
    (the confused-deputy guard AWS documents for the flow logs role)."""
    return _document(_statement(
        Effect="Allow",
        Action="sts:AssumeRole",
        Principal={"Service": "vpc-flow-logs.amazonaws.com"},
        Condition={"StringEquals": {"aws:SourceAccount": own_account_id},
                   "ArnLike": {"aws:SourceArn": f"arn:{PARTITION}:ec2:{region}:{own_account_id}:vpc-flow-log/*"}},
    ))


def flow_logs_policy(log_group_arn: str) -> dict[str, Any]:
    """What the delivery role may do: write streams and events to the deployment's flow log group, nothing else."""
    return _document(_statement(
        Sid="DeliverFlowLogs",
        Effect="Allow",
        Action=["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogGroups", "logs:DescribeLogStreams"],
        Resource=[log_group_arn, f"{log_group_arn}:*"],
    ))
