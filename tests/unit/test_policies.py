"""Policy documents are byte-identical to the Databricks Terraform provider's: the lengths its tests assert."""

import json

import pytest

from provisioner.design.policies import (
    assume_role_policy,
    bucket_policy,
    crossaccount_policy,
    kinesis_endpoint_policy,
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
