"""Policy documents are byte-identical to the Databricks Terraform provider's: the lengths its tests assert."""

import json

import pytest

from provisioner.design.policies import (
    assume_role_policy,
    bucket_policy,
    crossaccount_policy,
    kinesis_endpoint_policy,
    root_bucket_policy,
    s3_endpoint_policy,
    sts_endpoint_policy,
    to_json,
)


@pytest.mark.parametrize(
    ("document", "length"),
    [
        (assume_role_policy("abc"), 299),
        (bucket_policy("abc"), 440),
        (bucket_policy("abc", "my_e2_account_id"), 575),
        (crossaccount_policy("customer"), 2328),
        (crossaccount_policy("restricted", aws_account_id="123456789012", vpc_id="vpc-12345678",
                             region="us-west-2", security_group_id="sg-12345678"), 5725),
    ],
)
def test_provider_lengths(document, length):
    assert len(to_json(document)) == length


def test_customer_policy_has_50_actions_and_restricted_37():
    assert len(crossaccount_policy("customer")["Statement"][0]["Action"]) == 50
    restricted = crossaccount_policy("restricted", aws_account_id="1" * 12, vpc_id="vpc-1", region="r",
                                     security_group_id="sg-1")
    assert len(restricted["Statement"][0]["Action"]) == 37
    assert [s.get("Sid") for s in restricted["Statement"][2:]][-1] == "VpcNonresourceSpecificActions"


def test_trust_policy_names_databricks_and_external_id():
    statement = assume_role_policy("acct")["Statement"][0]
    assert statement["Principal"] == {"AWS": "arn:aws:iam::414351767826:root"}
    assert statement["Condition"] == {"StringEquals": {"sts:ExternalId": "acct"}}


def test_unknown_policy_type_refused():
    with pytest.raises(ValueError, match="policy_type"):
        crossaccount_policy("managed")


def test_s3_endpoint_policy_allows_only_listed_buckets():
    doc = s3_endpoint_policy("root-b", ("art-1", "ds-1"), "logs-1")
    resources = {r for s in doc["Statement"] for r in s["Resource"]}
    assert {r.split(":::")[1].split("/")[0] for r in resources} == {"root-b", "art-1", "ds-1", "logs-1"}
    assert all(s["Effect"] == "Allow" for s in doc["Statement"])
    json.loads(to_json(doc))


def test_sts_and_kinesis_endpoint_policies_scope_principals():
    assert "123456789012" in sts_endpoint_policy("123456789012")["Statement"][0]["Principal"]["AWS"]
    kinesis = kinesis_endpoint_policy("us-west-2")["Statement"][0]
    assert kinesis["Resource"] == "arn:aws:kinesis:us-west-2:414351767826:stream/*"


def test_root_bucket_policy_is_the_providers_with_account_guard_then_a_tls_deny():
    doc = root_bucket_policy("abc", "my_e2_account_id")
    provider = bucket_policy("abc", "my_e2_account_id")
    assert doc["Statement"][0] == provider["Statement"][0]
    assert len(to_json(provider)) == 575  # the provider's statement, untouched
    deny = doc["Statement"][1]
    assert deny["Effect"] == "Deny" and deny["Principal"] == "*" and deny["Action"] == "s3:*"
    assert deny["Resource"] == ["arn:aws:s3:::abc/*", "arn:aws:s3:::abc"]
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def _restricted(region="eu-central-1", account="123456789012"):
    return crossaccount_policy("restricted", aws_account_id=account, vpc_id="vpc-1", region=region,
                               security_group_id="sg-1")


def _glob(pattern: str, value: str) -> bool:
    import fnmatch
    return fnmatch.fnmatchcase(value, pattern)


def _run_instances_statements_for(resource: str, doc) -> list[str]:
    """Sids of the RunInstances Allow statements that cover `resource` (Resource or NotResource)."""
    sids = []
    for st in doc["Statement"][2:]:
        if st.get("Action") != "ec2:RunInstances":
            continue
        if "Resource" in st:
            patterns = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
            if any(_glob(p, resource) for p in patterns):
                sids.append(st["Sid"])
        elif not any(_glob(p, resource) for p in st["NotResource"]):
            sids.append(st["Sid"])
    return sids


def test_restricted_ami_statement_follows_the_provider_and_a_databricks_ami_still_launches():
    # AMI ARNs carry no account (arn:aws:ec2:<region>::image/ami-...). The provider (and Databricks' template)
    # scopes the image statement and the NotResource entry to <region>:<account>:image/*, which no AMI matches:
    # the image statement never applies, and the AMI is allowed by AllowEc2RunInstanceOtherResources.
    doc = _restricted()
    image = next(s for s in doc["Statement"] if s.get("Sid") == "AllowEc2RunInstanceImagePerTag")
    assert image["Resource"] == "arn:aws:ec2:eu-central-1:123456789012:image/*"
    ami = "arn:aws:ec2:eu-central-1::image/ami-0123456789abcdef0"
    assert _run_instances_statements_for(ami, doc) == ["AllowEc2RunInstanceOtherResources"]
    # Instances and volumes still need the Vendor tag; subnets must be in the VPC.
    assert _run_instances_statements_for("arn:aws:ec2:eu-central-1:123456789012:instance/i-1", doc) == [
        "AllowEc2RunInstancePerTag"]
    assert _run_instances_statements_for("arn:aws:ec2:eu-central-1:123456789012:subnet/subnet-1", doc) == [
        "AllowEc2RunInstancePerVPCid"]
