"""The workspace root bucket (one per spoke): DBFS root and workspace system data.

Locked down beyond the guide: all four public-access-block flags (the guide set one), object ownership
BucketOwnerEnforced (ACLs off; the guide's `acl = "private"` fails on such buckets), default encryption,
versioning as configured, and the provider's bucket policy for the Databricks control plane with its
Databricks account guard (`databricks_e2_account_id`: only requests tagged with our Databricks account), plus a
Deny of every request not made over TLS.
The bucket's data is the user's: `down` keeps a bucket that holds objects unless told `--delete-data`.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from provisioner.aws.errors import CloudError, error_code, gone_if_missing, none_if_missing, translate
from provisioner.context import Context
from provisioner.design.config import Config
from provisioner.design.naming import is_owned, root_bucket_name, tag_list, tag_map
from provisioner.design.policies import root_bucket_policy, to_json
from provisioner.poll import Pending, Read, poll_once
from provisioner.steps import keys
from provisioner.steps.base import Kept, Resource, Step, aspect

PUBLIC_ACCESS_BLOCK = {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
                       "RestrictPublicBuckets": True}
ENCRYPTION = {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}, "BucketKeyEnabled": True}]}


class RootBucket(Step):
    kind = "S3 bucket"
    replace_on = ("name",)

    def __init__(self, config: Config, spoke: str) -> None:
        self.config = config
        self.spoke = spoke
        super().__init__(keys.spoke(spoke, "root-bucket"), root_bucket_name(config.deployment, spoke))

    def details(self) -> dict[str, Any]:
        return {"region": self.config.region, "versioning": self.config.root_bucket_versioning}

    def find(self, ctx: Context) -> Resource | None:
        s3 = ctx.aws.s3
        with translate(f"read S3 bucket {self.name}"):
            # One request tells whether the bucket exists, whether we may read it, and its tags (no HEAD first).
            try:
                tags = s3.get_bucket_tagging(Bucket=self.name)
            except ClientError as e:
                if error_code(e) in ("404", "NoSuchBucket"):
                    return None
                if error_code(e) in ("403", "AccessDenied"):
                    raise CloudError(f"S3 bucket {self.name}: access denied. Either another AWS account owns this "
                                     "name (bucket names are global: choose another deployment name), or these "
                                     "credentials lack s3:GetBucketTagging on it (docs/operator-policy.json)") from e
                if error_code(e) != "NoSuchTagSet":
                    raise
                tags = None
        have = tag_map(tags["TagSet"] if tags else None)
        # A bucket is tagged just after it is created (CreateBucket takes no tags): a crash in between leaves
        # it untagged, but its name is then in the state file.
        recorded = ctx.state.resource_id(self.key) == self.name
        if not is_owned(have, ctx.deployment) and not recorded:
            raise CloudError(f"S3 bucket {self.name} exists but is not tagged as part of deployment {ctx.deployment}; "
                             "provision will not adopt it: delete it or choose another deployment name")
        return Resource(self.name, outputs={"name": self.name}, live={"tags": have})

    def create(self, ctx: Context) -> Resource:
        # CreateBucket takes no tags, so the bucket is tagged just after: record its name first, so that a crash
        # in between leaves a bucket the next run recognises as its own.
        ctx.state.record(self.key, self.name)
        params: dict[str, Any] = {"Bucket": self.name, "ObjectOwnership": "BucketOwnerEnforced"}
        if self.config.region != "us-east-1":  # us-east-1 refuses an explicit LocationConstraint
            params["CreateBucketConfiguration"] = {"LocationConstraint": self.config.region}
        with translate(f"create S3 bucket {self.name}"):
            try:
                ctx.aws.s3.create_bucket(**params)
            except ClientError as e:
                if error_code(e) == "BucketAlreadyExists":
                    raise CloudError(f"S3 bucket name {self.name} is taken by another AWS account; bucket names "
                                     "are global: choose another deployment name") from e
                # Ours already: a create retried after its reply was lost (the name is recorded above).
                if error_code(e) != "BucketAlreadyOwnedByYou":
                    raise
        return Resource(self.name, outputs={"name": self.name}, live={"tags": {}}, fresh=True)

    def wait(self, ctx: Context, res: Resource) -> Resource:
        if not res.fresh:
            return res  # found, so it exists: no second read
        with translate(f"wait for S3 bucket {self.name}"):
            ctx.aws.s3.get_waiter("bucket_exists").wait(
                Bucket=self.name, WaiterConfig={"Delay": max(ctx.poll_delay(5), 0.05), "MaxAttempts": 20})
        return res

    def ensure(self, ctx: Context, res: Resource, apply: bool) -> list[str]:
        s3, b = ctx.aws.s3, self.name
        changes: list[str] = []
        with translate(f"configure S3 bucket {b}"):
            wanted_tags = ctx.tags(self)
            have_tags = res.live.get("tags", {})
            if aspect(changes, apply, "tags", any(have_tags.get(k) != v for k, v in wanted_tags.items())):
                s3.put_bucket_tagging(Bucket=b, Tagging={"TagSet": tag_list({**have_tags, **wanted_tags})})

            pab = none_if_missing(("NoSuchPublicAccessBlockConfiguration",), s3.get_public_access_block, Bucket=b)
            if aspect(changes, apply, "public access block",
                      (pab or {}).get("PublicAccessBlockConfiguration") != PUBLIC_ACCESS_BLOCK):
                s3.put_public_access_block(Bucket=b, PublicAccessBlockConfiguration=PUBLIC_ACCESS_BLOCK)

            own = none_if_missing(("OwnershipControlsNotFoundError",), s3.get_bucket_ownership_controls, Bucket=b)
            rules = (own or {}).get("OwnershipControls", {}).get("Rules", [])
            if aspect(changes, apply, "object ownership",
                      [r.get("ObjectOwnership") for r in rules] != ["BucketOwnerEnforced"]):
                s3.put_bucket_ownership_controls(
                    Bucket=b, OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]})

            # S3 encrypts every bucket by default since 2023-01-05 and the default cannot be removed (deleting it
            # gives SSE-S3 back: https://docs.aws.amazon.com/AmazonS3/latest/userguide/default-encryption-faq.html),
            # so it is set once, on the new bucket, and never read again: a read could only ever answer "on".
            if res.fresh and apply:
                s3.put_bucket_encryption(Bucket=b, ServerSideEncryptionConfiguration=ENCRYPTION)

            status = s3.get_bucket_versioning(Bucket=b).get("Status")
            wanted = "Enabled" if self.config.root_bucket_versioning else "Suspended"
            # A bucket that never had versioning reports no status, which is as good as Suspended.
            differs = (status or "Suspended") != wanted
            if aspect(changes, apply, f"versioning ({wanted.lower()})", differs):
                s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": wanted})

            if not self.config.databricks_account_id:
                raise CloudError("databricks_account_id is not set; set it in provision.toml or "
                                 "DATABRICKS_ACCOUNT_ID (the root bucket policy admits only that account)")
            policy = root_bucket_policy(b, self.config.databricks_account_id)
            got = none_if_missing(("NoSuchBucketPolicy",), s3.get_bucket_policy, Bucket=b)
            if aspect(changes, apply, "bucket policy", got is None or json.loads(got["Policy"]) != policy):
                s3.put_bucket_policy(Bucket=b, Policy=to_json(policy))
        return changes

    def delete(self, ctx: Context, res: Resource) -> None:
        s3, b = ctx.aws.s3, self.name
        with translate(f"delete S3 bucket {b}"):
            versions = _all_versions(s3, b)
            if versions and not ctx.delete_data:
                raise Kept(f"S3 bucket {b} holds {len(versions)} object versions; kept it (the data is yours: "
                           "`provision down --delete-data` deletes them)")
            for i in range(0, len(versions), 1000):
                answer = s3.delete_objects(Bucket=b, Delete={"Objects": versions[i:i + 1000], "Quiet": True})
                if answer.get("Errors"):
                    first = answer["Errors"][0]
                    raise CloudError(f"delete S3 bucket {b} failed: {len(answer['Errors'])} objects could not be "
                                     f"deleted (first: {first.get('Key')}: {first.get('Code')}: "
                                     f"{first.get('Message')})")
            gone_if_missing(("NoSuchBucket",), s3.delete_bucket, Bucket=b)

    def poll_deleted(self, ctx: Context, res: Resource) -> Pending | None:
        """One read of the wait for the bucket to go (HeadBucket answers 404 once it has), which the engine
        schedules."""

        def read() -> Read:
            try:
                ctx.aws.s3.head_bucket(Bucket=self.name)
            except ClientError as e:
                if error_code(e) in ("404", "NoSuchBucket", "NotFound"):
                    return Read(True)
                raise
            return Read(False, note="still listed")

        with translate(f"wait for S3 bucket {self.name} to go"):
            got = poll_once(res, f"S3 bucket {self.name} to go", read, every=5, deadline=100)
        return got if isinstance(got, Pending) else None


def _all_versions(s3: Any, bucket: str) -> list[dict[str, str]]:
    """Every object version and delete marker: a versioned bucket is only empty when both are gone."""
    found: list[dict[str, str]] = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for item in page.get("Versions", []) + page.get("DeleteMarkers", []):
            found.append({"Key": item["Key"], "VersionId": item["VersionId"]})
    return found


def steps(config: Config) -> list[Step]:
    return [RootBucket(config, spoke.name) for spoke in config.spokes]
