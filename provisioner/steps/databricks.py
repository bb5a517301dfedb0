"""The Databricks objects of each spoke, made through the account API, and the workspace's token.

Per spoke: credentials (the cross-account role), a storage configuration (the root bucket) and a network (the
spoke VPC, its two workspace subnets and its security group); from those three, the workspace; in it, a
personal access token. `down` runs the other way: the token, the workspace (waiting until GET answers 404),
then the network, storage configuration and credentials, then the AWS resources under them.

Databricks objects carry no tags: ours are those with our deterministic name (`<deployment>-<spoke>-creds`,
`-storage`, `-network`, the workspace `<deployment>-<spoke>`; names are unique per account), or the ID recorded
in the state file. They cannot be changed in place either: a difference is drift for `status`, and `up` stops
on it with the way out rather than pretending to fix it.

Never a duplicate, whatever the network does. The SDK sends a request again when its reply is lost (a 503, a
dropped connection), so a create can take effect twice over: the second answers that the name (or the network)
is taken, and the object of our name is adopted if it is exactly the one wanted (`adopt`). Our own retries of a
workspace create look for it by name first. Tokens have no unique name: after a create, any other token of ours
(same comment) is revoked. Transient faults the SDK could not retry away fail the step saying so; a rerun
resumes (`retry.explain_transient`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any, ClassVar

from provisioner.context import Context
from provisioner.databricks import client as dbx
from provisioner.databricks.errors import describe, gone_if_missing, none_if_missing, remember_secret, translate
from provisioner.databricks.retry import (
    CREDENTIAL_VALIDATION,
    IN_USE,
    SIGN_IN,
    WORKSPACE_NOT_READY,
    WaitTimeout,
    call_with_retry,
    duration,
    explain_transient,
    is_sign_in_refused,
    wait_until,
)
from provisioner.design.config import Config
from provisioner.design.naming import resource_name, role_name, root_bucket_name, workspace_deployment_name
from provisioner.design.policies import DATABRICKS_AWS_ACCOUNT
from provisioner.errors import CloudError
from provisioner.poll import Pending, Read, WaitDeadline, block, poll_once
from provisioner.steps import keys
from provisioner.steps.base import Resource, Step
from provisioner.steps.iam import POLICY_NAME

# Deadlines (seconds). Workspace: the SDK's and the Terraform provider's 20 minutes to RUNNING, and the
# provider's 15 minutes for a deleted workspace to answer 404. In-use deletes: the workspace is already gone
# by then (GET answers 404), so this only covers the account API catching up.
WORKSPACE_RUNNING_TIMEOUT = 20 * 60
WORKSPACE_DELETED_TIMEOUT = 15 * 60
IN_USE_TIMEOUT = 5 * 60
# A RUNNING workspace's API can take a while to answer (DNS, sign-in, 401/403 until it knows the principal); the
# Terraform provider checks it under its 20-minute create deadline. Past this, the cause is rarely time.
WORKSPACE_API_TIMEOUT = 10 * 60
# Signing in to a workspace that answered before: a failing token endpoint is retried this long.
SIGN_IN_TIMEOUT = 2 * 60
FAILED_STATUSES = ("FAILED", "BANNED")
# Polling a workspace on its way to RUNNING: the first read soon after the create (a rerun finds it RUNNING
# already, or FAILED at once), then every 10 s as the SDK's own waiter does at most.
WORKSPACE_FIRST_POLL_SECONDS = 5.0
WORKSPACE_POLL_SECONDS = 10.0
# Probing a RUNNING workspace's API before its token: a second after the first try, then every 5 s.
WORKSPACE_API_POLL_SECONDS = 5.0


def workspace_url_output(spoke: str) -> str:
    """The `outputs` key of a spoke's workspace URL (`provision output`)."""
    return keys.spoke(spoke, "workspace-url")


def _status(value: Any) -> str:
    """An SDK enum's value (`RUNNING`), or '' when absent."""
    return str(getattr(value, "value", value) or "")


@contextlib.contextmanager
def calling(what: str) -> Iterator[None]:
    """Databricks calls: a transient fault the SDK's retries did not outlast says so and that a rerun resumes;
    any other SDK failure becomes a CloudError saying what failed."""
    with translate(what), explain_transient(what):
        yield


def may_be_name_conflict(e: BaseException) -> bool:
    """A create's answer when the name (or, for a workspace, the network) is taken: a 400 (the service says
    INVALID_PARAMETER_VALUE, "... already exists") or a 409. Which one is not documented, so any 400 or 409 is
    checked against the account: only an object of our name there now makes it a conflict."""
    from databricks.sdk.errors import BadRequest, ResourceConflict

    return isinstance(e, BadRequest | ResourceConflict)


def listed_workspaces(ctx: Context) -> list[Any]:
    """Every workspace of the account, listed once per command and shared by every spoke's steps: the list the
    sign-in's check made (`dbx.CHECKED_WORKSPACES`), else one made now."""
    def load() -> list[Any]:
        account = ctx.databricks
        checked = getattr(account, dbx.CHECKED_WORKSPACES, None)
        return list(checked) if isinstance(checked, list) else list(account.workspaces.list())

    return list(ctx.reads.get("databricks/workspaces", load))


class DatabricksStep(Step):
    """What every Databricks step shares: the account client, the immutable-drift rule, in-use deletes."""

    noun: ClassVar[str] = "object"

    def __init__(self, config: Config, spoke: str, key: str, name: str, needs: tuple[str, ...]) -> None:
        self.config = config
        self.spoke = spoke
        super().__init__(key, name, needs)

    def account(self, ctx: Context) -> Any:
        return ctx.databricks

    def immutable(self, changes: list[str], apply: bool, differences: list[str]) -> None:
        """Databricks configurations can't be edited: report a difference, and during `up` stop on it."""
        if not differences:
            return
        if apply:
            raise CloudError(f"{self.noun} {self.name}: {'; '.join(differences)}. Databricks can't change a "
                             f"{self.noun} in place: `provision down` then `provision up` makes it anew")
        changes.extend(differences)

    def recorded(self, ctx: Context, key: str, name: str = "id") -> Any:
        """Another step's recorded ID or output, or None when the state file has none (status reads only)."""
        entry = ctx.state.resource(key)
        if entry is None:
            return None
        return entry.get("id") if name == "id" else entry.get("outputs", {}).get(name)

    def workspace_using(self, ctx: Context, field: str, object_id: str) -> bool:
        """Whether this spoke's recorded workspace, RUNNING in the account's list of workspaces, uses `object_id`
        as its `field`. That proves the object exists as it was recorded: Databricks refuses to delete a
        credential, storage or network configuration a workspace uses, and none can be changed in place."""
        workspace_id = ctx.state.resource_id(keys.spoke(self.spoke, "workspace"))
        name = workspace_deployment_name(self.config.deployment, self.spoke)
        return any(str(w.workspace_id) == workspace_id and w.workspace_name == name
                   and _status(w.workspace_status) == "RUNNING" and getattr(w, field, None) == object_id
                   for w in listed_workspaces(ctx)) if workspace_id else False

    def adopt(self, ctx: Context, error: BaseException, found: Resource | None, wanted: dict[str, Any]) -> Resource:
        """After a create failed with `error` (`may_be_name_conflict`): the object of our name, `found`, is ours
        when it is exactly as `wanted` (an earlier attempt made it and its reply was lost: the SDK sent the
        request again). Nothing of our name: `error` stands. Anything else of our name is a conflict."""
        if found is None:
            raise error
        differences = [f"{field} {found.live.get(field)}, not {value}" for field, value in wanted.items()
                       if found.live.get(field) != value]
        if differences:
            raise CloudError(
                f"create Databricks {self.noun} {self.name} failed: {describe(error)}. The {self.noun} of that name "
                f"({found.id}) is not the one this deployment wants: it has {'; '.join(differences)}. It was not "
                f"made by this run, so it is left alone: delete or rename it (account console), or give the "
                "deployment another name, then run `provision up` again") from error
        ctx.report(self.key, "creating", f"adopted {found.id}, made by an earlier attempt whose reply was lost")
        return found

    def delete_in_use(self, ctx: Context, delete: Any, object_id: str) -> None:
        """Delete, retrying while a workspace still holds the object (INVALID_STATE, or 409), up to a deadline."""

        def on_retry(attempt: int, error: BaseException, left: float) -> None:
            ctx.report(self.key, "retrying", f"still in use by a workspace ({describe(error)}); retrying for up "
                                             f"to {duration(left)} more")

        try:
            call_with_retry(lambda: gone_if_missing(delete, object_id), condition=IN_USE, clock=ctx.clock,
                            deadline_seconds=IN_USE_TIMEOUT, on_retry=on_retry, scale=ctx.poll_scale)
        except Exception as e:
            if IN_USE.matches(e):
                raise CloudError(f"delete {self.noun} {self.name} failed: {describe(e)}; a workspace still uses it "
                                 f"after {duration(IN_USE_TIMEOUT)}: delete that workspace first (`provision down` "
                                 "does), then run `provision down` again") from e
            raise


class AccountObject(DatabricksStep):
    """Credentials, storage configurations and networks: found by recorded ID, then by name."""

    api: ClassVar[str]  # the AccountClient attribute: credentials, storage, networks
    id_field: ClassVar[str]
    name_field: ClassVar[str]
    # The workspace's field naming it, for an object a workspace's use proves (immutable, and not deletable while
    # in use); "" for one read each time (VPC endpoint registrations, private access settings, which change).
    workspace_field: ClassVar[str] = ""
    # The recorded outputs that are its `live` fields (all of them recorded from a read of the object).
    live_outputs: ClassVar[tuple[str, ...]] = ()

    def proven(self, ctx: Context) -> Resource | None:
        """The object as recorded, when this spoke's workspace is listed using it (`workspace_using`): no read
        of its own. None when that proves nothing (no workspace yet, another ID, outputs of an older version)."""
        entry = ctx.state.resource(self.key) or {}
        outputs = dict(entry.get("outputs") or {})
        if (not self.workspace_field or not entry.get("id") or outputs.get("name") != self.name
                or any(k not in outputs for k in self.live_outputs)):
            return None
        if not self.workspace_using(ctx, self.workspace_field, str(entry["id"])):
            return None
        return Resource(str(entry["id"]), outputs=outputs, live={k: outputs[k] for k in self.live_outputs})

    def resource(self, ctx: Context, obj: Any) -> Resource:
        raise NotImplementedError

    def wanted(self, ctx: Context) -> dict[str, Any]:
        """What the object must have (its `live` fields), from the outputs of the steps it stands on."""
        raise NotImplementedError

    def make(self, ctx: Context, wanted: dict[str, Any]) -> Any:
        """The create call; returns the SDK's object."""
        raise NotImplementedError

    def by_name(self, ctx: Context) -> Resource | None:
        for obj in getattr(self.account(ctx), self.api).list():
            if getattr(obj, self.name_field) == self.name:
                return self.resource(ctx, obj)
        return None

    def find(self, ctx: Context) -> Resource | None:
        api = getattr(self.account(ctx), self.api)
        with calling(f"read Databricks {self.noun} {self.name}"):
            found = self.proven(ctx)
            if found is not None:
                return found
            recorded = ctx.state.resource_id(self.key)
            if recorded:
                obj = none_if_missing(api.get, recorded)
                if obj is not None and getattr(obj, self.name_field) == self.name:
                    return self.resource(ctx, obj)
            return self.by_name(ctx)

    def create(self, ctx: Context) -> Resource:
        wanted = self.wanted(ctx)
        with calling(f"create Databricks {self.noun} {self.name}"):
            try:
                return self.resource(ctx, self.make(ctx, wanted))
            except Exception as e:
                if not may_be_name_conflict(e):
                    raise
                return self.adopt(ctx, e, self.by_name(ctx), wanted)

    def delete(self, ctx: Context, res: Resource) -> None:
        api = getattr(self.account(ctx), self.api)
        with calling(f"delete Databricks {self.noun} {self.name}"):
            self.delete_in_use(ctx, api.delete, res.id)


# -- credentials --------------------------------------------------------------------------------------------


class Credentials(AccountObject):
    kind = "Databricks credentials"
    noun = "credential configuration"
    replace_on = ("name",)
    api, id_field, name_field = "credentials", "credentials_id", "credentials_name"
    workspace_field, live_outputs = "credentials_id", ("role_arn",)

    def __init__(self, config: Config, spoke: str) -> None:
        # The role step makes the role and its inline policy together: both exist before this runs (a
        # credential made before the policy fails validation: terraform-databricks-examples #62).
        super().__init__(config, spoke, keys.spoke(spoke, "credentials"),
                         resource_name(config.deployment, spoke, "creds"), (keys.spoke(spoke, "role"),))

    def details(self) -> dict[str, Any]:
        return {"role": role_name(self.config.deployment, self.spoke)}

    def resource(self, ctx: Context, obj: Any) -> Resource:
        sts = obj.aws_credentials.sts_role if obj.aws_credentials else None
        role_arn = sts.role_arn if sts else None
        return Resource(obj.credentials_id, outputs={"name": self.name, "role_arn": role_arn},
                        live={"role_arn": role_arn})

    def wanted(self, ctx: Context) -> dict[str, Any]:
        return {"role_arn": ctx.output(keys.spoke(self.spoke, "role"), "arn")}

    def make(self, ctx: Context, wanted: dict[str, Any]) -> Any:
        from databricks.sdk.service.provisioning import CreateCredentialAwsCredentials, CreateCredentialStsRole

        role_arn = wanted["role_arn"]
        api = self.account(ctx).credentials
        return retry_credential_validation(
            ctx, self, role_arn,
            lambda: api.create(credentials_name=self.name, aws_credentials=CreateCredentialAwsCredentials(
                sts_role=CreateCredentialStsRole(role_arn=role_arn))))

    def ensure(self, ctx: Context, res: Resource, apply: bool) -> list[str]:
        changes: list[str] = []
        wanted = self.recorded(ctx, keys.spoke(self.spoke, "role"), "arn")
        have = res.live.get("role_arn")
        self.immutable(changes, apply, [f"points to role {have}, not {wanted}"] if wanted and have != wanted else [])
        return changes


def retry_credential_validation(ctx: Context, step: Step, role_arn: str, call: Any) -> Any:
    """Run `call` (POST /credentials or /workspaces), retrying "Failed credentials validation checks" while IAM
    propagates the new role, for `workspace.credential_validation_timeout_seconds` (default 5 minutes)."""
    timeout = ctx.config.credential_validation_timeout_seconds

    def on_retry(attempt: int, error: BaseException, left: float) -> None:
        ctx.report(step.key, "retrying", f"Databricks can't validate role {role_arn} yet (IAM propagation; "
                                         f"attempt {attempt}); retrying for up to {duration(left)} more")

    try:
        return call_with_retry(call, condition=CREDENTIAL_VALIDATION, clock=ctx.clock, deadline_seconds=timeout,
                               on_retry=on_retry, scale=ctx.poll_scale)
    except Exception as e:
        if not CREDENTIAL_VALIDATION.matches(e):
            raise
        raise CloudError(
            f"{step.name}: Databricks still fails to validate the cross-account role {role_arn} after "
            f"{duration(timeout)} ({describe(e)}). It means Databricks could not assume the role, or the role "
            "lacks permissions it checks. Check the role's trust policy: principal "
            f"arn:aws:iam::{DATABRICKS_AWS_ACCOUNT}:root with sts:ExternalId = {ctx.config.databricks_account_id} "
            f"(your Databricks account ID); and its inline policy {POLICY_NAME} (`provision status` reports drift "
            "in both). A new role can take minutes to propagate: raise "
            "workspace.credential_validation_timeout_seconds and run `provision up` again") from e


# -- storage ------------------------------------------------------------------------------------------------


class Storage(AccountObject):
    kind = "Databricks storage"
    noun = "storage configuration"
    replace_on = ("name", "bucket")
    api, id_field, name_field = "storage", "storage_configuration_id", "storage_configuration_name"
    workspace_field, live_outputs = "storage_configuration_id", ("bucket",)

    def __init__(self, config: Config, spoke: str) -> None:
        super().__init__(config, spoke, keys.spoke(spoke, "storage"),
                         resource_name(config.deployment, spoke, "storage"), (keys.spoke(spoke, "root-bucket"),))

    def details(self) -> dict[str, Any]:
        return {"bucket": root_bucket_name(self.config.deployment, self.spoke)}

    def resource(self, ctx: Context, obj: Any) -> Resource:
        bucket = obj.root_bucket_info.bucket_name if obj.root_bucket_info else None
        return Resource(obj.storage_configuration_id, outputs={"name": self.name, "bucket": bucket},
                        live={"bucket": bucket})

    def wanted(self, ctx: Context) -> dict[str, Any]:
        return {"bucket": ctx.output(keys.spoke(self.spoke, "root-bucket"))}

    def make(self, ctx: Context, wanted: dict[str, Any]) -> Any:
        from databricks.sdk.service.provisioning import RootBucketInfo

        return self.account(ctx).storage.create(storage_configuration_name=self.name,
                                                root_bucket_info=RootBucketInfo(bucket_name=wanted["bucket"]))

    def ensure(self, ctx: Context, res: Resource, apply: bool) -> list[str]:
        changes: list[str] = []
        wanted = self.recorded(ctx, keys.spoke(self.spoke, "root-bucket"))
        have = res.live.get("bucket")
        self.immutable(changes, apply, [f"uses bucket {have}, not {wanted}"] if wanted and have != wanted else [])
        return changes


# -- network ------------------------------------------------------------------------------------------------


class Network(AccountObject):
    kind = "Databricks network"
    noun = "network configuration"
    replace_on = ("name",)
    api, id_field, name_field = "networks", "network_id", "network_name"
    workspace_field, live_outputs = "network_id", ("vpc_id", "subnet_ids", "security_group_ids", "vpc_endpoints")

    def __init__(self, config: Config, spoke: str, azs: tuple[str, ...]) -> None:
        from provisioner.steps import privatelink

        self.azs = azs
        # With back-end PrivateLink the network names the spoke's registered endpoints (`vpc_endpoints`).
        self.endpoints = {privatelink.NETWORK_FIELD[w]: privatelink.registration_key(spoke, w)
                          for w in (privatelink.WORKSPACE, privatelink.RELAY)} if config.private_link else {}
        needs = (keys.spoke(spoke, "vpc"), *(keys.spoke(spoke, "workspace-subnet", az) for az in azs),
                 keys.spoke(spoke, "security-group"), *self.endpoints.values())
        super().__init__(config, spoke, keys.spoke(spoke, "network"),
                         resource_name(config.deployment, spoke, "network"), needs)

    def details(self) -> dict[str, Any]:
        found: dict[str, Any] = {"azs": ",".join(self.azs)}
        if self.endpoints:
            found["vpc_endpoints"] = ", ".join(f"{f}: {k}" for f, k in self.endpoints.items())
        return found

    def as_recorded(self, ctx: Context) -> dict[str, Any]:
        """The spoke's VPC, workspace subnets, security group and (PrivateLink) endpoint registrations as
        recorded (None where not recorded)."""
        subnets = [self.recorded(ctx, keys.spoke(self.spoke, "workspace-subnet", az)) for az in self.azs]
        sg = self.recorded(ctx, keys.spoke(self.spoke, "security-group"))
        endpoints = {f: self.recorded(ctx, k) for f, k in self.endpoints.items()}
        return {"vpc_id": self.recorded(ctx, keys.spoke(self.spoke, "vpc")),
                "subnet_ids": None if None in subnets else sorted(subnets),
                "security_group_ids": None if sg is None else [sg],
                "vpc_endpoints": None if None in endpoints.values() else {f: [i] for f, i in endpoints.items()}}

    def resource(self, ctx: Context, obj: Any) -> Resource:
        named = obj.vpc_endpoints
        endpoints = {f: sorted(getattr(named, f, None) or []) for f in ("rest_api", "dataplane_relay")}
        live = {"vpc_id": obj.vpc_id, "subnet_ids": sorted(obj.subnet_ids or []),
                "security_group_ids": sorted(obj.security_group_ids or []), "vpc_status": _status(obj.vpc_status),
                "problems": network_problems(obj),
                "vpc_endpoints": {f: ids for f, ids in endpoints.items() if ids}}
        outputs = {"name": self.name, "vpc_id": obj.vpc_id, "subnet_ids": live["subnet_ids"],
                   "security_group_ids": live["security_group_ids"], "vpc_endpoints": live["vpc_endpoints"]}
        return Resource(obj.network_id, outputs=outputs, live=live)

    def wanted(self, ctx: Context) -> dict[str, Any]:
        s = self.spoke
        return {"vpc_id": ctx.output(keys.spoke(s, "vpc")),
                "subnet_ids": sorted(ctx.output(keys.spoke(s, "workspace-subnet", az)) for az in self.azs),
                "security_group_ids": [ctx.output(keys.spoke(s, "security-group"))],
                "vpc_endpoints": {f: [ctx.output(k)] for f, k in self.endpoints.items()}}

    def make(self, ctx: Context, wanted: dict[str, Any]) -> Any:
        from databricks.sdk.service.provisioning import NetworkVpcEndpoints

        endpoints = wanted["vpc_endpoints"]
        return self.account(ctx).networks.create(
            network_name=self.name, vpc_id=wanted["vpc_id"], subnet_ids=wanted["subnet_ids"],
            security_group_ids=wanted["security_group_ids"],
            vpc_endpoints=NetworkVpcEndpoints(**endpoints) if endpoints else None)

    def ensure(self, ctx: Context, res: Resource, apply: bool) -> list[str]:
        changes: list[str] = []
        differences = []
        for field, wanted in self.as_recorded(ctx).items():
            if wanted is not None and res.live.get(field) != wanted:
                differences.append(f"{field} is {res.live.get(field)}, not {wanted}")
        self.immutable(changes, apply, differences)
        # Databricks' own verdict on the VPC, from its last validation: drift to report (the workspace step
        # stops `up` on a FAILED workspace with these details). Not part of the recorded outputs: `status` reads it,
        # from one list of the account's networks for every spoke.
        if not apply and "vpc_status" not in res.live:
            with calling(f"read Databricks {self.noun} {self.name}"):
                networks = ctx.reads.get("databricks/networks", lambda: list(self.account(ctx).networks.list()))
            obj = next((n for n in networks if n.network_id == res.id), None)
            if obj is not None:
                res.live.update(self.resource(ctx, obj).live)
        if not apply and res.live.get("vpc_status") in ("BROKEN", "WARNED"):
            changes.append(f"Databricks reports the network {res.live['vpc_status']}: "
                           + ("; ".join(res.live.get("problems") or []) or "no details"))
        return changes


def network_problems(network: Any) -> list[str]:
    """A network's `error_messages` and `warning_messages`, one line each."""
    lines = [f"error {_status(m.error_type) or 'unknown'}: {m.error_message}" for m in network.error_messages or []]
    lines += [f"warning {_status(m.warning_type) or 'unknown'}: {m.warning_message}"
              for m in network.warning_messages or []]
    return lines


# -- workspace ----------------------------------------------------------------------------------------------


def needs_deployment_name_prefix(e: BaseException) -> bool:
    """`Deployment name cannot be used until a deployment name prefix is defined` (a 400 without a code of its
    own: quickstart-databricks-unified-data-analytics-platform PR #91)."""
    from databricks.sdk.errors import BadRequest

    return isinstance(e, BadRequest) and "deployment name prefix" in str(e).lower()


class Workspace(DatabricksStep):
    kind = "Databricks workspace"
    noun = "workspace"
    replace_on = ("name", "region")

    def __init__(self, config: Config, spoke: str) -> None:
        from provisioner.steps.privatelink import private_access_key

        self.deployment_name = workspace_deployment_name(config.deployment, spoke)
        # With back-end PrivateLink the workspace is given the spoke's private access settings.
        self.private_access = private_access_key(spoke) if config.private_link else None
        needs = (keys.spoke(spoke, "credentials"), keys.spoke(spoke, "storage"), keys.spoke(spoke, "network"),
                 *((self.private_access,) if self.private_access else ()))
        super().__init__(config, spoke, keys.spoke(spoke, "workspace"), self.deployment_name, needs)

    def details(self) -> dict[str, Any]:
        found = {"region": self.config.region, "deployment_name": self.deployment_name}
        if self.private_access:
            found["private_access_settings"] = self.private_access
        return found

    def resource(self, obj: Any) -> Resource:
        # With an account deployment-name prefix Databricks answers "<prefix>-<ours>": the URL follows the answer.
        deployment_name = obj.deployment_name or self.deployment_name
        url = dbx.workspace_url(deployment_name)
        return Resource(str(obj.workspace_id),
                        outputs={"workspace_id": obj.workspace_id, "deployment_name": deployment_name, "url": url},
                        live={"status": _status(obj.workspace_status), "message": obj.workspace_status_message or "",
                              "credentials_id": obj.credentials_id, "network_id": obj.network_id,
                              "storage_configuration_id": obj.storage_configuration_id,
                              "private_access_settings_id": obj.private_access_settings_id,
                              "aws_region": obj.aws_region, "url": url})

    def read(self, ctx: Context, workspace_id: str) -> Any:
        return none_if_missing(self.account(ctx).workspaces.get, int(workspace_id))

    def by_name(self, ctx: Context) -> Any:
        """The account's workspace of our name (the SDK's object), or None."""
        return next((obj for obj in self.account(ctx).workspaces.list() if obj.workspace_name == self.name), None)

    def find(self, ctx: Context, fresh: bool = False) -> Resource | None:
        """The workspace: from the account's list of workspaces read once per command (`fresh`: read it now)."""
        with calling(f"read Databricks workspace {self.name}"):
            recorded = ctx.state.resource_id(self.key)
            if recorded and recorded.isdigit():
                listed = [] if fresh else listed_workspaces(ctx)
                obj = next((w for w in listed if str(w.workspace_id) == recorded), None) or self.read(ctx, recorded)
                if obj is not None and obj.workspace_name == self.name:
                    return self.resource(obj)
            obj = self.by_name(ctx)
        return None if obj is None else self.resource(obj)

    def create(self, ctx: Context) -> Resource:
        s = self.spoke
        wanted = {"aws_region": self.config.region, "credentials_id": ctx.output(keys.spoke(s, "credentials")),
                  "storage_configuration_id": ctx.output(keys.spoke(s, "storage")),
                  "network_id": ctx.output(keys.spoke(s, "network"))}
        if self.private_access:
            wanted["private_access_settings_id"] = ctx.output(self.private_access)
        params = {"workspace_name": self.name, "deployment_name": self.deployment_name, **wanted}
        role_arn = ctx.output(keys.spoke(s, "credentials"), "role_arn") or ctx.output(keys.spoke(s, "role"), "arn")
        api = self.account(ctx).workspaces
        attempts: list[int] = []

        def attempt() -> Any:
            # Create returns at once (status NOT_PROVISIONED/PROVISIONING): the SDK's Wait is split so the engine
            # records the workspace ID before `wait` polls, on the context's clock. Our own retries (IAM
            # propagation, a refused deployment name) look for the workspace by name first: an attempt whose
            # reply was lost may have made it.
            if attempts:
                made = self.by_name(ctx)
                if made is not None:
                    return made
            attempts.append(1)
            return api.create(**params).response

        with calling(f"create Databricks workspace {self.name}"):
            try:
                try:
                    obj = retry_credential_validation(ctx, self, role_arn, attempt)
                except Exception as e:
                    if not needs_deployment_name_prefix(e):
                        raise
                    # Choosing a deployment name needs an account-level prefix, which most accounts lack; without
                    # one Databricks picks the name (dbc-xxxxxxxx-xxxx) and the URL follows its answer.
                    ctx.report(self.key, "creating", "the account has no deployment-name prefix: Databricks "
                                                     "names the workspace URL")
                    params.pop("deployment_name")
                    obj = retry_credential_validation(ctx, self, role_arn, attempt)
            except Exception as e:
                # The SDK sent a create again after losing its reply: the name (or the network, which serves one
                # workspace) is taken by the workspace the first one made.
                if not may_be_name_conflict(e):
                    raise
                made = self.by_name(ctx)
                return self.adopt(ctx, e, None if made is None else self.resource(made), wanted)
        return self.resource(obj)

    def poll(self, ctx: Context, res: Resource) -> Resource | Pending:
        """One read of the wait for RUNNING (about 4 minutes): the first read 5 s after the create, then every
        10 s, for up to `WORKSPACE_RUNNING_TIMEOUT`; FAILED or BANNED ends it with Databricks' reasons."""
        if res.live.get("status") == "RUNNING":
            self.publish(ctx, res)
            return res
        seen: list[Any] = []

        def read() -> Read:
            obj = self.read(ctx, res.id)
            if obj is None:
                raise CloudError(f"Databricks workspace {self.name} ({res.id}) disappeared while provisioning; run "
                                 "`provision up` again to make it anew")
            seen.append(obj)
            status = _status(obj.workspace_status)
            if status in FAILED_STATUSES:
                raise CloudError(self.failure(ctx, obj))
            return Read(status == "RUNNING", note=f"workspace {status}: {obj.workspace_status_message or ''}")

        with calling(f"wait for Databricks workspace {self.name}"):
            try:
                got = poll_once(res, f"workspace {self.name} to be RUNNING", read, every=WORKSPACE_POLL_SECONDS,
                                deadline=WORKSPACE_RUNNING_TIMEOUT, first=WORKSPACE_FIRST_POLL_SECONDS,
                                clock=ctx.clock)
            except WaitDeadline as e:
                raise CloudError(f"{e}; the workspace ID is in the state file: run `provision up` again to keep "
                                 "waiting") from e
        if isinstance(got, Pending):
            return got
        running = self.resource(seen[-1])
        self.publish(ctx, running)
        ctx.report(self.key, "waiting", f"RUNNING at {running.outputs['url']}")
        return running

    def wait(self, ctx: Context, res: Resource) -> Resource:
        return block(ctx, self.key, lambda: self.poll(ctx, res))

    def failure(self, ctx: Context, obj: Any) -> str:
        """What went wrong with a FAILED or BANNED workspace, with its network's errors and warnings."""
        status = _status(obj.workspace_status)
        text = f"Databricks workspace {self.name} ({obj.workspace_id}) is {status}: {obj.workspace_status_message}"
        if obj.network_id:
            network = none_if_missing(self.account(ctx).networks.get, obj.network_id)
            if network is not None:
                problems = network_problems(network)
                text += (f"; network {network.network_name} is {_status(network.vpc_status) or 'unknown'}"
                         + (": " + "; ".join(problems) if problems else ""))
        return (text + ". Everything made is kept in the state file: fix the cause, then `provision down` removes "
                       "the workspace and `provision up` makes it again")

    def publish(self, ctx: Context, res: Resource) -> None:
        """The workspace URL for `provision output`."""
        key = workspace_url_output(self.spoke)
        if ctx.state.get("outputs", key) != res.outputs["url"]:
            ctx.state.put("outputs", key, res.outputs["url"])

    def ensure(self, ctx: Context, res: Resource, apply: bool) -> list[str]:
        changes: list[str] = []
        differences = []
        for field, key in (("credentials_id", keys.spoke(self.spoke, "credentials")),
                           ("storage_configuration_id", keys.spoke(self.spoke, "storage")),
                           ("network_id", keys.spoke(self.spoke, "network")),
                           ("private_access_settings_id", self.private_access)):
            wanted = self.recorded(ctx, key) if key else None
            if wanted and res.live.get(field) != wanted:
                differences.append(f"uses {field} {res.live.get(field)}, not {wanted}")
        self.immutable(changes, apply, differences)
        status = res.live.get("status")
        if status != "RUNNING":
            if apply:
                raise CloudError(f"Databricks workspace {self.name} is {status}: {res.live.get('message')}")
            changes.append(f"status {status}: {res.live.get('message')}".rstrip(": "))
        if apply:
            self.publish(ctx, res)
        return changes

    def delete(self, ctx: Context, res: Resource) -> None:
        from databricks.sdk.errors import InvalidState

        with calling(f"delete Databricks workspace {self.name}"):
            try:
                gone_if_missing(self.account(ctx).workspaces.delete, int(res.id))
            except InvalidState:
                # A rerun of `down` while the first DELETE is still being carried out: the workspace is on its
                # way out already, so wait for it (poll_deleted has the deadline) instead of failing.
                ctx.report(self.key, "deleting", "already being deleted")

    def poll_deleted(self, ctx: Context, res: Resource) -> Pending | None:
        """One read of the wait for the workspace to go (minutes): `down` holds no worker meanwhile."""

        def read() -> Read:
            obj = self.read(ctx, res.id)
            return Read(obj is None, note="" if obj is None else
                        f"workspace still there ({_status(obj.workspace_status)})")

        with calling(f"wait for Databricks workspace {self.name} to go"):
            got = poll_once(res, f"workspace {self.name} to be deleted", read, every=WORKSPACE_POLL_SECONDS,
                            deadline=WORKSPACE_DELETED_TIMEOUT, first=WORKSPACE_FIRST_POLL_SECONDS, clock=ctx.clock)
        if isinstance(got, Pending):
            return got
        ctx.state.drop("outputs", workspace_url_output(self.spoke))
        return None


# -- token --------------------------------------------------------------------------------------------------


def none_if_refused(call: Any) -> list[Any] | None:
    """`call()` as a list, or None when the workspace refuses the credentials it was made with (401, 403)."""
    from databricks.sdk.errors import PermissionDenied, Unauthenticated

    try:
        return list(call())
    except (PermissionDenied, Unauthenticated):
        return None



class Token(DatabricksStep):
    """A personal access token in the workspace, kept in the state file's secrets (mode 0600)."""

    kind = "Databricks token"
    noun = "token"

    def __init__(self, config: Config, spoke: str, workspace: Workspace) -> None:
        self.workspace = workspace
        super().__init__(config, spoke, keys.spoke(spoke, "token"), resource_name(config.deployment, spoke, "token"),
                         (workspace.key,))
        # `poll_ready`'s wait for the workspace API (its reads and when it began), and the client that answered.
        self._probing = Resource("")
        self._answering: dict[str, Any] = {}

    def details(self) -> dict[str, Any]:
        return {"lifetime_seconds": self.config.pat_lifetime_seconds}

    @property
    def comment(self) -> str:
        return f"provision {self.name}"

    def running_url(self, ctx: Context) -> str | None:
        """The workspace's URL, or None while the workspace is missing or not RUNNING."""
        ws = self.workspace.find(ctx)
        if ws is not None and ws.live.get("status") != "RUNNING":
            ws = self.workspace.find(ctx, fresh=True)  # the list is from the command's start: it may be RUNNING now
        return ws.outputs["url"] if ws is not None and ws.live.get("status") == "RUNNING" else None

    def find(self, ctx: Context) -> Resource | None:
        recorded = ctx.state.resource_id(self.key)
        value = ctx.state.get("secrets", self.key)
        if not recorded or not value:
            return None  # a token whose value we don't hold is of no use: `create` revokes it and makes one
        remember_secret(value)  # one of ours from an earlier run: scrubbed from messages like a new one
        with calling(f"read Databricks token {self.name}"):
            url = self.running_url(ctx)
            if url is None:
                return None  # no RUNNING workspace, so no token either
            # The token itself signs the read in: one request, and an answer at all proves it is still valid
            # (a revoked or expired token is refused with 401/403).
            listed = none_if_refused(dbx.token_client(url, value).tokens.list)
            if listed is None:
                return None
            now_ms = time.time() * 1000
            for info in listed:
                expiry = info.expiry_time or -1
                if info.token_id == recorded and (expiry < 0 or expiry > now_ms):
                    return Resource(recorded, outputs={"token_id": recorded, "expiry_time": info.expiry_time,
                                                       "workspace_url": url})
        return None

    def create(self, ctx: Context) -> Resource:
        from databricks.sdk.errors import PermissionDenied, Unauthenticated

        with calling(f"create Databricks token {self.name}"):
            url = self.running_url(ctx)
            if url is None:
                raise CloudError(f"workspace {self.workspace.name} is not RUNNING; no token can be made in it yet")
            workspace = self._answering.pop(url, None) or self.answering_client(ctx, url)
            # Tokens of ours whose value the state file lost (a crash between create and save, or an expired
            # one) are useless: revoke them rather than let them pile up.
            self.revoke_ours(workspace)
            try:
                made = workspace.tokens.create(comment=self.comment,
                                               lifetime_seconds=self.config.pat_lifetime_seconds)
            except (PermissionDenied, Unauthenticated) as e:
                raise CloudError(self.refused(ctx, url, e)) from e
            value = made.token_value or ""
            remember_secret(value)
            ctx.state.put("secrets", self.key, value)
            info = made.token_info
            token_id = info.token_id if info else ""
            res = Resource(token_id, outputs={"token_id": token_id, "expiry_time": info.expiry_time if info else None,
                                              "workspace_url": url})
            ctx.record(self, res)
            # Tokens have no unique name: a create whose reply was lost, sent again by the SDK, made a token whose
            # value never reached us. Any other token of ours is one of those.
            self.revoke_ours(workspace, keep=token_id)
        return res

    def revoke_ours(self, workspace: Any, keep: str | None = None) -> None:
        for info in workspace.tokens.list():
            if info.comment == self.comment and info.token_id != keep:
                gone_if_missing(workspace.tokens.delete, info.token_id)

    def signed_in_client(self, ctx: Context, url: str) -> Any:
        """A client of the workspace at `url`, signed in; a failed sign-in is retried for `SIGN_IN_TIMEOUT`."""
        account = self.account(ctx)

        def sign_in() -> Any:
            workspace = dbx.workspace_client(account, url)  # host metadata, OIDC discovery
            workspace.config.authenticate()  # the OAuth token
            return workspace

        def on_retry(attempt: int, error: BaseException, left: float) -> None:
            ctx.report(self.key, "retrying", f"signing in to the workspace failed ({describe(error)}); retrying for "
                                             f"up to {duration(left)} more")

        return call_with_retry(sign_in, condition=SIGN_IN, clock=ctx.clock, deadline_seconds=SIGN_IN_TIMEOUT,
                               on_retry=on_retry, scale=ctx.poll_scale)

    def poll_ready(self, ctx: Context) -> Pending | None:
        """One probe of the workspace API before the token's create (it may not answer at first: see
        `retry.WORKSPACE_NOT_READY`): the engine schedules the next, so the minutes a new workspace can take to
        answer hold no worker. Up to `WORKSPACE_API_TIMEOUT` on the context's clock."""
        url = self.running_url(ctx)
        if url is None:
            return None  # `create` says why
        last: list[BaseException] = []

        def read() -> Read:
            answered = self._probe(ctx, url, last)
            if answered is None:
                return Read(False, note=f"the workspace API does not answer yet ({describe(last[-1])})")
            self._answering[url] = answered
            return Read(True)

        try:
            got = poll_once(self._probing, f"the API of workspace {self.workspace.name} to answer", read,
                            every=WORKSPACE_API_POLL_SECONDS, deadline=WORKSPACE_API_TIMEOUT, first=1.0,
                            clock=ctx.clock)
        except WaitDeadline as e:
            raise self._not_answering(ctx, url, last[-1]) from e
        return got if isinstance(got, Pending) else None

    def _probe(self, ctx: Context, url: str, last: list[BaseException]) -> Any:
        """A client of the workspace at `url` if its API answers `GET .../scim/v2/Me` (as the Terraform provider
        probes it), else None with the error in `last`; a refusal of the principal raises CloudError."""
        try:
            workspace = dbx.workspace_client(self.account(ctx), url)  # signs in: host metadata, OIDC discovery
            workspace.current_user.me()  # gets the OAuth token, then asks who we are
        except Exception as e:
            if is_sign_in_refused(e):
                raise CloudError(self.refused(ctx, url, e)) from e
            if not WORKSPACE_NOT_READY.matches(e):
                raise
            last.append(e)
            return None
        return workspace

    def answering_client(self, ctx: Context, url: str) -> Any:
        """A client of the workspace at `url` once its API answers, probed here (`_probe`) on the context's clock
        for up to `WORKSPACE_API_TIMEOUT`: for a create the engine did not prepare with `poll_ready`."""
        last: list[BaseException] = []

        def probe() -> tuple[bool, Any]:
            before = len(last)
            answered = self._probe(ctx, url, last)
            if answered is None and (before == 0 or type(last[before - 1]) is not type(last[-1])):
                ctx.report(self.key, "waiting", f"the workspace API does not answer yet ({describe(last[-1])})")
            return answered is not None, answered

        try:
            return wait_until(probe, clock=ctx.clock, timeout_seconds=WORKSPACE_API_TIMEOUT,
                              what=f"the API of workspace {self.workspace.name} to answer", scale=ctx.poll_scale)
        except WaitTimeout as e:
            raise self._not_answering(ctx, url, last[-1]) from e

    def _not_answering(self, ctx: Context, url: str, error: BaseException) -> CloudError:
        """The token's failure once the workspace API has not answered for `WORKSPACE_API_TIMEOUT`."""
        from databricks.sdk.errors import PermissionDenied, Unauthenticated

        cause = error.__cause__ if isinstance(error, TimeoutError) and error.__cause__ else error
        if isinstance(cause, PermissionDenied | Unauthenticated):
            return CloudError(self.refused(ctx, url, cause, waited=WORKSPACE_API_TIMEOUT))
        return CloudError(f"create Databricks token {self.name} failed: timed out after "
                          f"{duration(WORKSPACE_API_TIMEOUT)} waiting for the API of workspace {self.workspace.name} "
                          f"to answer: the workspace is RUNNING, but its API at {url} does not answer "
                          f"({describe(error)}). If the workspace is reached through a private network or a proxy, "
                          "check that this machine can reach that URL. The workspace is kept: run `provision up` "
                          "again to make the token")

    def refused(self, ctx: Context, url: str, error: BaseException, waited: float | None = None) -> str:
        """Why the workspace refuses the token, and what to grant so that it makes one."""
        cfg = getattr(self.account(ctx), "config", None)
        principal = getattr(cfg, "client_id", None) or getattr(cfg, "username", None) or "signing in"
        still = f" (still, after {duration(waited)})" if waited else ""
        return (f"create Databricks token {self.name} failed: workspace {self.workspace.name} ({url}) refused to "
                f"make the token{still}: {describe(error)}. The workspace is kept. To let `provision` make the "
                "token, grant in that workspace: personal access tokens enabled (a workspace admin: Settings > "
                f"Advanced > Personal Access Tokens), and the principal `provision` signs in as ({principal}) added "
                f"to the workspace (account console > Workspaces > {self.workspace.name} > Permissions) with the "
                "token permission Can Use (Settings > Advanced > Personal Access Tokens > Permission settings). "
                "Then run `provision up` again")

    def delete(self, ctx: Context, res: Resource) -> None:
        with calling(f"delete Databricks token {self.name}"):
            url = self.running_url(ctx)
            if url is not None:
                gone_if_missing(self.signed_in_client(ctx, url).tokens.delete, res.id)
        ctx.state.drop("secrets", self.key)


def steps(config: Config) -> list[Step]:
    from provisioner.design.layout import layout

    out: list[Step] = []
    for spoke in layout(config).spokes:
        workspace = Workspace(config, spoke.name)
        out += [Credentials(config, spoke.name), Storage(config, spoke.name), Network(config, spoke.name, spoke.azs),
                workspace, Token(config, spoke.name, workspace)]
    from provisioner.steps import serverless

    return out + serverless.steps(config)
