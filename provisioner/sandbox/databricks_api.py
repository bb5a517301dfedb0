"""An emulated Databricks Account API (AWS, E2), served over HTTP to the real ``databricks-sdk``.

The emulator runs in the same process as moto (decorator mode in unit tests, beside ``ThreadedMotoServer`` in
the sandbox) and validates every configuration against moto's in-process backends, the way Databricks validates
against the customer's AWS account: the cross-account role's trust and permission policies, the root bucket's
policy, and the customer-managed VPC's subnets, security groups and DNS attributes.

What it serves, all on one port (paths as the real service):

- account host: ``/.well-known/databricks-config``, the account OIDC discovery document and token endpoint,
  and ``/api/2.0/accounts/{account_id}/{credentials,storage-configurations,networks,workspaces}``;
- each workspace under a path prefix: ``{base_url}/ws/{deployment_name}`` (see :func:`workspace_url`), with its
  own host metadata, OIDC endpoints, ``/api/2.0/token/{create,list,delete}`` and ``/api/2.0/preview/scim/v2/Me``.

Time is read from an injectable clock (:class:`EmulatorSettings`), so tests drive IAM propagation, workspace
provisioning and workspace deletion without sleeping. Workspaces change state lazily: every request first
brings all workspaces up to date with the clock.

Behaviour where the public record is silent (chosen here, documented so clients don't mistake it for fact):

- Credential validation requires the ``customer`` cross-account action set (TPD lists A+B, 50 actions) to be
  allowed by some Allow statement of the role's inline or attached policies, ignoring ``Resource`` and
  ``Condition``. The ``managed`` policy passes, and so does ``restricted``: its scoped statements grant every
  action of list B. The spot service-linked-role statement is not checked.
- The IAM propagation window starts when the emulator first sees a role (keyed by the role's unique id, on the
  emulator clock), not at moto's ``create_date``, which is wall-clock time and can't be compared with a fake clock.
  So with a non-zero window the first validation of a new role always fails, and a role deleted and created again
  under the same ARN is in a fresh window.
- A FAILED or RUNNING workspace can be PATCHed to other credentials or another network (storage only while
  FAILED); a change of configuration, or any PATCH of a FAILED workspace, provisions it again. As the service
  documents, PrivateLink can be added but not removed: clearing ``private_access_settings_id``, or moving a
  workspace whose network names VPC endpoints to one that names none, is refused.
- Credential-validation failures are ``text/plain`` 400s (the form the service has sent since about 2024).
  At credential create the message is the documented "please use a valid cross account IAM role" text for a bad
  role and the list-of-checks text while the role is still propagating; at workspace create it is always the
  list-of-checks text.
- Root-bucket problems answer a JSON 400 ``MALFORMED_REQUEST`` naming the failed storage checks.
- Network problems at create answer JSON 400 ``INVALID_PARAMETER_VALUE``; duplicate names of credentials,
  storage configurations, networks and workspaces answer JSON 400 ``INVALID_PARAMETER_VALUE``.
- A workspace answers ``NOT_PROVISIONED`` in the create response, ``PROVISIONING`` on later requests until
  ``workspace_provisioning_seconds`` have passed, then ``RUNNING`` (or ``FAILED`` when its network no longer
  validates at that moment). With 0 seconds the first request after create already sees ``RUNNING``.
- A deleted workspace keeps its last status for ``workspace_deleting_seconds`` and still holds its network,
  credentials and storage configuration during that time; afterwards GET answers 404.
- A token for the wrong account in an account API path answers 403 ``PERMISSION_DENIED``. Workspace URLs of
  unknown or not-RUNNING workspaces answer 404 (the real service would not resolve the host yet).
- OAuth access tokens expire after an hour of wall-clock time, the clock the SDK uses to refresh them.
- ``workspace_api_warmup_requests``: a workspace that has just become RUNNING answers its first N API requests
  (``/api/...`` on its host, not its sign-in endpoints) with 403 ``PERMISSION_DENIED`` (or
  ``workspace_api_warmup_status``, 401), as a new workspace's host does until it knows its principals.
- ``token_refusal``: the workspace refuses to make a personal access token. ``"tokens-disabled"`` and
  ``"no-token-permission"`` answer ``POST /api/2.0/token/create`` with 403 ``PERMISSION_DENIED`` (the status and
  code for both; the messages are ours: Databricks does not publish them); ``"not-a-member"`` answers every API
  request on the workspace host with 401 ``UNAUTHENTICATED``, what the Terraform provider reports for an account
  principal that was not added to the workspace.

Fault mode (:class:`Faults`, ``EmulatorSettings.faults``): a seeded fraction of requests fail with 429, 503 or
a reset connection, before the request takes effect or, for requests that change something, after (the object
is made or deleted and the reply is lost). The account API, its sign-in endpoints (host metadata, OIDC
discovery, OAuth token), the workspace APIs and the workspaces' sign-in endpoints can each be chosen.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import hashlib
import hmac
import ipaddress
import json
import logging
import re
import secrets
import socket
import struct
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.ec2.exceptions import InvalidSubnetIdError
from moto.ec2.models import ec2_backends
from moto.iam.exceptions import NotFoundException as IamNotFound
from moto.iam.models import iam_backends
from moto.s3.models import s3_backends
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from provisioner.sandbox.server import HEALTH_PATH

__all__ = [
    "DATABRICKS_AWS_ACCOUNT",
    "DATABRICKS_PRINCIPAL_ARN",
    "REQUIRED_CROSS_ACCOUNT_ACTIONS",
    "ROOT_BUCKET_ACTIONS",
    "DatabricksEmulator",
    "EmulatorServer",
    "EmulatorSettings",
    "Faults",
    "serve",
    "workspace_url",
]

_LOG = logging.getLogger(__name__)

# Databricks' AWS account in the commercial partition (TPD aws/constants.go).
DATABRICKS_AWS_ACCOUNT = "414351767826"
DATABRICKS_PRINCIPAL_ARN = f"arn:aws:iam::{DATABRICKS_AWS_ACCOUNT}:root"

# TPD databricks_aws_crossaccount_policy: list A (all policy types), then list B (managed and customer).
_BASE_ACTIONS = (
    "ec2:AssignPrivateIpAddresses",
    "ec2:CancelSpotInstanceRequests",
    "ec2:DescribeAvailabilityZones",
    "ec2:DescribeIamInstanceProfileAssociations",
    "ec2:DescribeInstanceStatus",
    "ec2:DescribeInstances",
    "ec2:DescribeInternetGateways",
    "ec2:DescribeNatGateways",
    "ec2:DescribeNetworkAcls",
    "ec2:DescribePrefixLists",
    "ec2:DescribeReservedInstancesOfferings",
    "ec2:DescribeRouteTables",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSpotInstanceRequests",
    "ec2:DescribeSpotPriceHistory",
    "ec2:DescribeSubnets",
    "ec2:DescribeVolumes",
    "ec2:DescribeVpcAttribute",
    "ec2:DescribeVpcs",
    "ec2:CreateTags",
    "ec2:DeleteTags",
    "ec2:GetSpotPlacementScores",
    "ec2:RequestSpotInstances",
    "ec2:DescribeFleetHistory",
    "ec2:ModifyFleet",
    "ec2:DeleteFleets",
    "ec2:DescribeFleetInstances",
    "ec2:DescribeFleets",
    "ec2:CreateFleet",
    "ec2:DeleteLaunchTemplate",
    "ec2:GetLaunchTemplateData",
    "ec2:CreateLaunchTemplate",
    "ec2:DescribeLaunchTemplates",
    "ec2:DescribeLaunchTemplateVersions",
    "ec2:ModifyLaunchTemplate",
    "ec2:DeleteLaunchTemplateVersions",
    "ec2:CreateLaunchTemplateVersion",
)
_CUSTOMER_ACTIONS = (
    "ec2:AssociateIamInstanceProfile",
    "ec2:AttachVolume",
    "ec2:AuthorizeSecurityGroupEgress",
    "ec2:AuthorizeSecurityGroupIngress",
    "ec2:CreateVolume",
    "ec2:DeleteVolume",
    "ec2:DetachVolume",
    "ec2:DisassociateIamInstanceProfile",
    "ec2:ReplaceIamInstanceProfileAssociation",
    "ec2:RevokeSecurityGroupEgress",
    "ec2:RevokeSecurityGroupIngress",
    "ec2:RunInstances",
    "ec2:TerminateInstances",
)
REQUIRED_CROSS_ACCOUNT_ACTIONS: tuple[str, ...] = _BASE_ACTIONS + _CUSTOMER_ACTIONS

# TPD databricks_aws_bucket_policy: what the Databricks principal needs on the root bucket.
ROOT_BUCKET_ACTIONS: tuple[str, ...] = (
    "s3:GetObject",
    "s3:GetObjectVersion",
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:ListBucket",
    "s3:GetBucketLocation",
)
_BUCKET_LEVEL_ACTIONS = frozenset({"s3:ListBucket", "s3:GetBucketLocation"})
_STORAGE_CHECK_NAMES = {
    "s3:ListBucket": "List",
    "s3:GetBucketLocation": "Get Bucket Location",
    "s3:GetObject": "Get",
    "s3:GetObjectVersion": "Get Object Version",
    "s3:PutObject": "Put, PutWithBucketOwnerFullControl",
    "s3:DeleteObject": "Delete",
}

# Check names Databricks reports in "Failed credentials validation checks: ..." (TPD docs, issues #951, #4026).
_CHECK_NAMES = {
    "ec2:CancelSpotInstanceRequests": "Spot Cancellation",
    "ec2:DescribeInstances": "Describe instances",
    "ec2:DescribeSpotInstanceRequests": "Describe Spot Instances",
}
# The list reported when the role can't be assumed at all (TPD docs/guides/aws-workspace.md).
_UNASSUMABLE_ROLE_CHECKS = (
    "Spot Cancellation, Create Placement Group, Delete Tags, Describe Availability Zones, Describe instances, "
    "Describe Instance Status, Describe Placement Group, Describe Route Tables, Describe Security Groups, "
    "Describe Spot Instances, Describe Spot Price History, Describe Subnets, Describe Volumes, Describe Vpcs, "
    "Request Spot Instances"
)
_CREDENTIAL_CREATE_FAILURE = (
    "Failed credential validation checks: please use a valid cross account IAM role with permissions setup correctly"
)

NOT_PROVISIONED = "NOT_PROVISIONED"
PROVISIONING = "PROVISIONING"
RUNNING = "RUNNING"
FAILED = "FAILED"
_STATUS_MESSAGES = {
    NOT_PROVISIONED: "Workspace has not yet begun provisioning.",
    PROVISIONING: "Workspace resources are being set up.",
    RUNNING: "Workspace is running.",
}

_ACCESS_TOKEN_SECONDS = 3600
_PAT_DEFAULT_LIFETIME_SECONDS = 2 * 365 * 24 * 3600
_ACCOUNT_AUDIENCE = ""  # audience of account-level OAuth tokens; workspace tokens carry the deployment name
_DEPLOYMENT_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_ACCOUNT_KINDS = ("credentials", "storage-configurations", "networks", "workspaces")
# Network policies (the public API reference: network_policy_id `^[a-zA-Z0-9_.-]{1,32}$`).
DEFAULT_NETWORK_POLICY = "default-policy"
_NETWORK_POLICY_ID = re.compile(r"^[a-zA-Z0-9_.-]{1,32}$")
_RESTRICTION_MODES = ("FULL_ACCESS", "RESTRICTED_ACCESS")
_DNS_NAME = re.compile(r"^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_AWS_REGION = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-[0-9]$")
_S3_BUCKET = re.compile(r"^[0-9a-z][-0-9a-z.]{1,61}[0-9a-z]$")


# Endpoint groups the fault mode can choose from.
ACCOUNT_API = "account"
ACCOUNT_SIGN_IN = "account-sign-in"
WORKSPACE_API = "workspace"
WORKSPACE_SIGN_IN = "workspace-sign-in"
ENDPOINT_GROUPS = frozenset({ACCOUNT_API, ACCOUNT_SIGN_IN, WORKSPACE_API, WORKSPACE_SIGN_IN})
FAULT_KINDS = ("429", "503", "reset")
_MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass
class Faults:
    """Network faults to inject: which requests fail, and how.

    Each request to a chosen endpoint fails with probability ``rate``. The draw is a hash of ``seed``, the endpoint
    (method and route, not the IDs in the path) and how many requests that endpoint has had, so one seed gives
    the same faults to the same sequence of requests, whatever IDs the run makes.

    A fault strikes before the request takes effect (one of ``kinds``: a 429, a 503, both with ``Retry-After: 1``,
    or a reset connection), or, for a request that changes something (POST, PATCH, DELETE), with probability
    ``after``, once it has taken effect: the object is made or deleted and the reply is lost (a 503 or a reset,
    whichever of those ``kinds`` has).

    ``endpoints`` chooses among ``account`` (``/api/2.0/accounts/...``), ``account-sign-in`` (host metadata, OIDC
    discovery, OAuth token), ``workspace`` (``/api/...`` on a workspace host) and ``workspace-sign-in``;
    ``methods`` and ``route`` (a regular expression searched in the route, such as ``/credentials$``) narrow
    further. ``limit`` caps the faults per endpoint (then it answers normally): with ``rate=1`` and ``limit=1``
    every chosen endpoint fails exactly once.
    """

    rate: float = 0.0
    seed: int = 0
    after: float = 0.5
    kinds: tuple[str, ...] = FAULT_KINDS
    endpoints: frozenset[str] = ENDPOINT_GROUPS
    methods: frozenset[str] | None = None
    route: str | None = None
    limit: int | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.rate <= 1 or not 0 <= self.after <= 1:
            raise ValueError("Faults: rate and after are fractions between 0 and 1")
        unknown = set(self.kinds) - set(FAULT_KINDS) or set(self.endpoints) - ENDPOINT_GROUPS
        if unknown or not self.kinds:
            raise ValueError(f"Faults: unknown kinds or endpoints {sorted(unknown)}; kinds are {FAULT_KINDS}, "
                             f"endpoints {sorted(ENDPOINT_GROUPS)}")

    @classmethod
    def parse(cls, spec: str) -> Faults:
        """From ``rate=0.2,seed=7,after=0.5,kinds=503+reset,endpoints=account+workspace`` (any of the keys)."""
        values: dict[str, Any] = {}
        for item in filter(None, (part.strip() for part in spec.split(","))):
            key, _, value = item.partition("=")
            key = key.strip()
            if key in ("rate", "after"):
                values[key] = float(value)
            elif key in ("seed", "limit"):
                values[key] = int(value)
            elif key == "kinds":
                values[key] = tuple(value.split("+"))
            elif key in ("endpoints", "methods"):
                values[key] = frozenset(v.upper() if key == "methods" else v for v in value.split("+"))
            elif key == "route":
                values[key] = value
            else:
                raise ValueError(f"Faults: unknown setting {key!r} in {spec!r}")
        return cls(**values)


@dataclass(frozen=True)
class _Fault:
    kind: str  # "429", "503" or "reset"
    after: bool  # the request took effect first; only its reply is lost


@dataclass
class EmulatorSettings:
    """How the emulated account behaves.

    ``clock`` is a monotonic-like source of seconds; every delay below is measured on it. ``log``, when set,
    receives one line per request, ``METHOD path -> status`` (never bodies, tokens or secrets).
    """

    account_id: str
    client_id: str
    client_secret: str
    username: str | None = None
    password: str | None = None
    aws_account_id: str = DEFAULT_ACCOUNT_ID
    iam_propagation_seconds: float = 0.0
    workspace_provisioning_seconds: float = 0.0
    workspace_deleting_seconds: float = 0.0
    clock: Callable[[], float] = time.monotonic
    # When set, DELETE of a network in use answers 409 with an empty body (seen in databricks-sdk-go #777)
    # instead of the JSON 400 INVALID_STATE.
    network_delete_conflict_409: bool = False
    # An account-level deployment-name prefix: a requested deployment_name D becomes "<prefix>-D".
    deployment_name_prefix: str | None = None
    log: Callable[[str], None] | None = None
    # A workspace just RUNNING answers its first N API requests with this status (module docstring).
    workspace_api_warmup_requests: int = 0
    workspace_api_warmup_status: int = 403
    # "tokens-disabled", "no-token-permission" or "not-a-member" (module docstring).
    token_refusal: str | None = None
    faults: Faults | None = None
    # Back-end PrivateLink (VPC endpoint registrations, private access settings) needs the Enterprise tier.
    enterprise_tier: bool = True


class ApiError(Exception):
    """An error answered the way the real service answers it."""

    def __init__(
        self, status: int, error_code: str, message: str, *, plain_text: bool = False, empty: bool = False
    ) -> None:
        super().__init__(f"{error_code}: {message}")
        self.status = status
        self.error_code = error_code
        self.message = message
        self.plain_text = plain_text
        self.empty = empty

    def response(self) -> Response:
        if self.empty:
            return Response(b"", self.status)
        if self.plain_text:
            return Response(f"{self.error_code}: {self.message}", self.status, mimetype="text/plain")
        return _json({"error_code": self.error_code, "message": self.message}, self.status)


def _json(payload: Any, status: int = 200) -> Response:
    return Response(json.dumps(payload), status, mimetype="application/json")


def _bad_value(message: str) -> ApiError:
    return ApiError(400, "INVALID_PARAMETER_VALUE", message)


def _not_found(message: str) -> ApiError:
    return ApiError(404, "RESOURCE_DOES_NOT_EXIST", message)


def _epoch_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class _Credential:
    credentials_id: str
    name: str
    role_arn: str
    creation_time: int

    def as_dict(self, account_id: str) -> dict[str, Any]:
        return {
            "credentials_id": self.credentials_id,
            "credentials_name": self.name,
            "aws_credentials": {"sts_role": {"role_arn": self.role_arn}},
            "account_id": account_id,
            "creation_time": self.creation_time,
        }


@dataclass
class _Storage:
    storage_configuration_id: str
    name: str
    bucket_name: str
    role_arn: str | None
    creation_time: int

    def as_dict(self, account_id: str) -> dict[str, Any]:
        out: dict[str, Any] = {
            "storage_configuration_id": self.storage_configuration_id,
            "storage_configuration_name": self.name,
            "root_bucket_info": {"bucket_name": self.bucket_name},
            "account_id": account_id,
            "creation_time": self.creation_time,
        }
        if self.role_arn:
            out["role_arn"] = self.role_arn
        return out


@dataclass
class _Network:
    network_id: str
    name: str
    vpc_id: str
    region: str
    subnet_ids: list[str]
    security_group_ids: list[str]
    vpc_endpoints: dict[str, Any] | None
    creation_time: int
    vpc_status: str = "UNATTACHED"
    error_messages: list[dict[str, str]] = field(default_factory=list)
    workspace_id: int | None = None

    def as_dict(self, account_id: str) -> dict[str, Any]:
        out: dict[str, Any] = {
            "network_id": self.network_id,
            "network_name": self.name,
            "vpc_id": self.vpc_id,
            "subnet_ids": list(self.subnet_ids),
            "security_group_ids": list(self.security_group_ids),
            "account_id": account_id,
            "creation_time": self.creation_time,
            "vpc_status": self.vpc_status,
            "error_messages": list(self.error_messages),
            "warning_messages": [],
        }
        if self.vpc_endpoints is not None:
            out["vpc_endpoints"] = self.vpc_endpoints
        if self.workspace_id is not None:
            out["workspace_id"] = self.workspace_id
        return out


@dataclass
class _Pat:
    token_id: str
    token_value: str
    comment: str
    creation_time: int
    expiry_time: int

    def info(self) -> dict[str, Any]:
        return {
            "token_id": self.token_id,
            "creation_time": self.creation_time,
            "expiry_time": self.expiry_time,
            "comment": self.comment,
        }


@dataclass
class _Workspace:
    workspace_id: int
    name: str
    deployment_name: str
    aws_region: str
    credentials_id: str
    storage_configuration_id: str
    network_id: str | None
    pricing_tier: str
    creation_time: int
    provision_started: float
    options: dict[str, Any] = field(default_factory=dict)
    status: str = NOT_PROVISIONED
    status_message: str = _STATUS_MESSAGES[NOT_PROVISIONED]
    deleted_at: float | None = None
    pats: dict[str, _Pat] = field(default_factory=dict)
    warmup_left: int = 0  # API requests still refused since it became RUNNING

    def as_dict(self, account_id: str) -> dict[str, Any]:
        out: dict[str, Any] = {
            "workspace_id": self.workspace_id,
            "workspace_name": self.name,
            "deployment_name": self.deployment_name,
            "aws_region": self.aws_region,
            "cloud": "aws",
            "account_id": account_id,
            "credentials_id": self.credentials_id,
            "storage_configuration_id": self.storage_configuration_id,
            "pricing_tier": self.pricing_tier,
            "workspace_status": self.status,
            "workspace_status_message": self.status_message,
            "creation_time": self.creation_time,
            **self.options,
        }
        if self.network_id is not None:
            out["network_id"] = self.network_id
        return out


@dataclass
class _AccessToken:
    audience: str
    expires_at: float  # wall clock


@dataclass
class _RoleCheck:
    """Outcome of validating a cross-account role; ``problem`` is None when the role is usable."""

    problem: str | None = None  # "propagating", "missing", "trust", "permissions"
    missing_actions: list[str] = field(default_factory=list)


class DatabricksEmulator:
    """The emulated account: credentials, storage configurations, networks, workspaces and tokens.

    Thread-safe: every request runs under one lock. ``wsgi_app`` is the WSGI entry point; ``reset()`` forgets
    everything (the settings stay).
    """

    def __init__(self, settings: EmulatorSettings) -> None:
        self.settings = settings
        self._lock = threading.RLock()
        self._url_map = _build_url_map()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._credentials: dict[str, _Credential] = {}
            self._storage: dict[str, _Storage] = {}
            self._networks: dict[str, _Network] = {}
            self._workspaces: dict[int, _Workspace] = {}
            # Network policies (serverless egress), by ID; every account has its reserved default-policy.
            self._network_policies: dict[str, dict[str, Any]] = {
                DEFAULT_NETWORK_POLICY: {"network_policy_id": DEFAULT_NETWORK_POLICY,
                                         "egress": {"network_access": {"restriction_mode": "FULL_ACCESS"}}}
            }
            # The policy each workspace is bound to; absent means default-policy.
            self._workspace_policy: dict[int, str] = {}
            # PrivateLink: VPC endpoint registrations and private access settings, by ID.
            self._vpc_endpoints: dict[str, dict[str, Any]] = {}
            self._private_access: dict[str, dict[str, Any]] = {}
            self._access_tokens: dict[str, _AccessToken] = {}
            self._role_first_seen: dict[str, float] = {}
            self._fault_draws: dict[str, int] = {}
            self._faults_made: dict[str, int] = {}
            # Every fault injected, as ``METHOD path -> 503 (fault, after)``: for tests to see what struck.
            self.faults_injected: list[str] = []

    # ----------------------------------------------------------------------------------------------- WSGI

    def wsgi_app(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        if request.path == HEALTH_PATH:
            # The sandbox's own health check: not a request of the Databricks API, so not in its request log.
            return _json({"status": "ok"})(environ, start_response)
        adapter = self._url_map.bind_to_environ(request.environ)
        try:
            rule, args = adapter.match(return_rule=True)
        except HTTPException:
            rule, args = None, {}
        fault = self._draw_fault(request.method, rule)
        if fault is None:
            response = self._dispatch(request, rule, args)
            self._log(f"{request.method} {request.path} -> {response.status_code}")
            return response(environ, start_response)
        if fault.after:
            self._dispatch(request, rule, args)  # it takes effect; its reply is lost
        line = f"{request.method} {request.path} -> {fault.kind} (fault, {'after' if fault.after else 'before'})"
        with self._lock:
            self.faults_injected.append(line)
        self._log(line)
        if fault.kind == "reset":
            _drop_connection(environ)
        return _fault_response(fault.kind, _endpoint_group(rule))(environ, start_response)

    __call__ = wsgi_app

    def _log(self, line: str) -> None:
        if self.settings.log is not None:
            self.settings.log(line)

    def _draw_fault(self, method: str, rule: Rule | None) -> _Fault | None:
        """Whether this request fails (see :class:`Faults`), decided from the seed and the endpoint's count."""
        faults = self.settings.faults
        if faults is None or rule is None or faults.rate <= 0 or _endpoint_group(rule) not in faults.endpoints:
            return None
        if faults.methods is not None and method not in faults.methods:
            return None
        if faults.route is not None and not re.search(faults.route, rule.rule):
            return None
        key = f"{method} {rule.rule}"
        with self._lock:
            if faults.limit is not None and self._faults_made.get(key, 0) >= faults.limit:
                return None
            count = self._fault_draws.get(key, 0)
            self._fault_draws[key] = count + 1
            digest = hashlib.sha256(f"{faults.seed}\0{key}\0{count}".encode()).digest()
            if int.from_bytes(digest[:8], "big") / 2**64 >= faults.rate:
                return None
            self._faults_made[key] = self._faults_made.get(key, 0) + 1
        after = method in _MUTATING and int.from_bytes(digest[8:16], "big") / 2**64 < faults.after
        kinds = [k for k in faults.kinds if k != "429"] if after else list(faults.kinds)
        if not kinds:  # only 429 chosen: a throttled request never took effect
            after, kinds = False, list(faults.kinds)
        return _Fault(kinds[digest[16] % len(kinds)], after)

    def _dispatch(self, request: Request, rule: Rule | None, args: Mapping[str, Any]) -> Response:
        if rule is None:
            return ApiError(404, "ENDPOINT_NOT_FOUND", f"No API found for '{request.method} {request.path}'").response()
        endpoint = rule.endpoint
        try:
            with self._lock:
                self._advance(self.settings.clock())
                handler: Callable[..., Response] = getattr(self, f"_route_{endpoint}")
                return handler(request, **args)
        except ApiError as error:
            return error.response()
        except Exception:
            _LOG.exception("emulator failure on %s %s", request.method, request.path)
            return ApiError(500, "INTERNAL_ERROR", "The emulator failed to handle this request.").response()

    # ------------------------------------------------------------------------------------ authentication

    def _check_client(self, request: Request) -> None:
        """Client-credentials authentication at a token endpoint (HTTP basic, or form fields)."""
        auth = request.authorization
        if auth is not None and auth.type == "basic":
            client_id, client_secret = auth.username or "", auth.password or ""
        else:
            client_id = request.form.get("client_id", "")
            client_secret = request.form.get("client_secret", "")
        good = _same(client_id, self.settings.client_id) & _same(client_secret, self.settings.client_secret)
        if not good:
            raise _OAuthError(401, "invalid_client", "Client authentication failed")

    def _issue_access_token(self, request: Request, audience: str) -> Response:
        if request.form.get("grant_type") != "client_credentials":
            raise _OAuthError(400, "unsupported_grant_type", "Only client_credentials is supported")
        self._check_client(request)
        token = secrets.token_urlsafe(48)
        self._access_tokens[token] = _AccessToken(audience, time.time() + _ACCESS_TOKEN_SECONDS)
        scope = request.form.get("scope") or "all-apis"
        return _json(
            {"access_token": token, "token_type": "Bearer", "expires_in": _ACCESS_TOKEN_SECONDS, "scope": scope}
        )

    def _authenticate(self, request: Request, audience: str, workspace: _Workspace | None = None) -> str:
        """Check the caller's credentials for an API call; returns the caller's user name."""
        header = request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value:
            access = self._access_tokens.get(value)
            if access is not None and access.audience == audience and access.expires_at > time.time():
                return self.settings.client_id
            if workspace is not None and _pat_valid(workspace, value):
                return self.settings.client_id
            raise ApiError(401, "UNAUTHENTICATED", "Invalid access token.")
        if scheme.lower() == "basic" and value and self.settings.username and self.settings.password:
            try:
                user, _, password = base64.b64decode(value).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                user, password = "", ""
            if _same(user, self.settings.username) & _same(password, self.settings.password):
                return user
            raise ApiError(401, "UNAUTHENTICATED", "Invalid username or password.")
        raise ApiError(401, "UNAUTHENTICATED", "Credential was not sent or was of an unsupported type for this API.")

    def _account_call(self, request: Request, account_id: str) -> None:
        self._authenticate(request, _ACCOUNT_AUDIENCE)
        if account_id != self.settings.account_id:
            raise ApiError(403, "PERMISSION_DENIED", f"Account {account_id} does not exist or is not accessible.")

    # ------------------------------------------------------------------------------- account host routes

    def _route_account_metadata(self, request: Request) -> Response:
        base = request.host_url.rstrip("/")
        return _json({"oidc_endpoint": f"{base}/oidc/accounts/{{account_id}}", "cloud": "aws"})

    def _route_account_discovery(self, request: Request, account_id: str) -> Response:
        if account_id != self.settings.account_id:
            raise _not_found(f"Account {account_id} does not exist.")
        return _json(_oidc_document(f"{request.host_url.rstrip('/')}/oidc/accounts/{account_id}"))

    def _route_account_token(self, request: Request, account_id: str) -> Response:
        try:
            if account_id != self.settings.account_id:
                raise _OAuthError(401, "invalid_client", "Client authentication failed")
            return self._issue_access_token(request, _ACCOUNT_AUDIENCE)
        except _OAuthError as error:
            return error.response()

    def _route_collection(self, request: Request, account_id: str, kind: str) -> Response:
        self._account_call(request, account_id)
        records = self._records(kind)
        if request.method == "GET":
            return _json([record.as_dict(account_id) for record in records.values()])
        body = _json_body(request)
        creators: dict[str, Callable[[dict[str, Any]], Any]] = {
            "credentials": self._create_credentials,
            "storage-configurations": self._create_storage,
            "networks": self._create_network,
            "workspaces": self._create_workspace,
        }
        return _json(creators[kind](body).as_dict(account_id))

    def _route_item(self, request: Request, account_id: str, kind: str, obj_id: str) -> Response:
        self._account_call(request, account_id)
        record = self._find(kind, obj_id)
        if request.method == "GET":
            return _json(record.as_dict(account_id))
        if request.method == "PATCH":
            if not isinstance(record, _Workspace):
                raise ApiError(404, "ENDPOINT_NOT_FOUND", f"No API found for 'PATCH {request.path}'")
            self._update_workspace(record, _json_body(request), request.args.get("update_mask"))
            return _json(record.as_dict(account_id))
        if isinstance(record, _Workspace):
            if record.deleted_at is None:
                record.deleted_at = self.settings.clock()
            return _json(record.as_dict(account_id))
        self._refuse_delete_in_use(kind, record)
        del self._records(kind)[obj_id]
        return _json(record.as_dict(account_id))

    def _records(self, kind: str) -> dict[Any, Any]:
        tables: dict[str, dict[Any, Any]] = {
            "credentials": self._credentials,
            "storage-configurations": self._storage,
            "networks": self._networks,
            "workspaces": self._workspaces,
        }
        return tables[kind]

    def _find(self, kind: str, obj_id: str) -> Any:
        key: Any = obj_id
        if kind == "workspaces":
            if not obj_id.isdigit():
                raise _bad_value(f"Invalid workspace id {obj_id!r}: must be an integer.")
            key = int(obj_id)
        record = self._records(kind).get(key)
        if record is None:
            noun = {
                "credentials": "Credential configuration",
                "storage-configurations": "Storage configuration",
                "networks": "Network configuration",
                "workspaces": "Workspace",
            }[kind]
            raise _not_found(f"{noun} {obj_id} does not exist.")
        return record

    def _refuse_delete_in_use(self, kind: str, record: Any) -> None:
        for ws in self._workspaces.values():
            if kind == "networks" and ws.network_id == record.network_id:
                if self.settings.network_delete_conflict_409:
                    raise ApiError(409, "RESOURCE_CONFLICT", "", empty=True)
                noun = "Network"
            elif kind == "credentials" and ws.credentials_id == record.credentials_id:
                noun = "Credential"
            elif kind == "storage-configurations" and ws.storage_configuration_id == record.storage_configuration_id:
                noun = "Storage configuration"
            else:
                continue
            raise ApiError(
                400, "INVALID_STATE", f"Unable to delete, {noun} is being used by active workspace {ws.workspace_id}"
            )

    # ---------------------------------------------------------------------------------------- credentials

    def _create_credentials(self, body: dict[str, Any]) -> _Credential:
        name = _name(body, "credentials_name")
        role_arn = _nested_str(body, ("aws_credentials", "sts_role", "role_arn"))
        if any(c.name == name for c in self._credentials.values()):
            raise _bad_value(
                f"Credential configuration name {name} already exists in this account. Try again with a unique name."
            )
        check = self._check_role(role_arn)
        if check.problem == "propagating":
            raise _malformed(f"Failed credentials validation checks: {_UNASSUMABLE_ROLE_CHECKS}")
        if check.problem is not None:
            raise _malformed(_CREDENTIAL_CREATE_FAILURE)
        record = _Credential(str(uuid.uuid4()), name, role_arn, _epoch_ms())
        self._credentials[record.credentials_id] = record
        return record

    def _check_role(self, role_arn: str) -> _RoleCheck:
        role = self._role(role_arn)
        if role is None:
            return _RoleCheck("missing")
        first_seen = self._role_first_seen.setdefault(role.id, self.settings.clock())
        if self.settings.clock() - first_seen < self.settings.iam_propagation_seconds:
            return _RoleCheck("propagating")
        if not _trusts_databricks(_policy_statements(role.assume_role_policy_document), self.settings.account_id):
            return _RoleCheck("trust")
        statements: list[dict[str, Any]] = []
        for document in role.policies.values():
            statements += _policy_statements(document)
        for managed in role.managed_policies.values():
            for version in managed.versions:
                if version.is_default:
                    statements += _policy_statements(version.document)
        missing = [a for a in REQUIRED_CROSS_ACCOUNT_ACTIONS if not _identity_allows(statements, a)]
        return _RoleCheck("permissions", missing) if missing else _RoleCheck()

    def _role(self, role_arn: str) -> Any:
        match = re.fullmatch(r"arn:(aws[\w-]*):iam::(\d{12}):role/(?:.*/)?[\w+=,.@-]+", role_arn)
        if match is None or match.group(2) != self.settings.aws_account_id:
            return None
        try:
            return iam_backends[match.group(2)][match.group(1)].get_role_by_arn(role_arn)
        except (IamNotFound, KeyError):
            return None

    # -------------------------------------------------------------------------------------------- storage

    def _create_storage(self, body: dict[str, Any]) -> _Storage:
        name = _name(body, "storage_configuration_name")
        bucket = _nested_str(body, ("root_bucket_info", "bucket_name"))
        role_arn = body.get("role_arn")
        if role_arn is not None and not isinstance(role_arn, str):
            raise _bad_value("role_arn must be a string.")
        if any(s.name == name for s in self._storage.values()):
            raise _bad_value(f"Storage configuration name {name} already exists in this account.")
        self._validate_bucket(bucket)
        record = _Storage(str(uuid.uuid4()), name, bucket, role_arn, _epoch_ms())
        self._storage[record.storage_configuration_id] = record
        return record

    def _validate_bucket(self, bucket_name: str) -> None:
        failed = [_STORAGE_CHECK_NAMES[a] for a in ROOT_BUCKET_ACTIONS if not self._bucket_allows(bucket_name, a)]
        if failed:
            raise ApiError(
                400, "MALFORMED_REQUEST", f"Failed storage configuration validation checks: {', '.join(failed)}"
            )

    def _bucket_allows(self, bucket_name: str, action: str) -> bool:
        bucket = s3_backends[self.settings.aws_account_id]["aws"].buckets.get(bucket_name)
        if bucket is None or not bucket.policy:
            return False
        policy = bucket.policy.decode() if isinstance(bucket.policy, bytes) else bucket.policy
        resource = f"arn:aws:s3:::{bucket_name}" if action in _BUCKET_LEVEL_ACTIONS else f"arn:aws:s3:::{bucket_name}/x"
        allowed = False
        for st in _policy_statements(policy):
            if not (_principal_is_databricks(st) and _matches(st, "Action", "NotAction", action)):
                continue
            if not _matches(st, "Resource", "NotResource", resource):
                continue
            if st.get("Effect") == "Deny":
                if not st.get("Condition"):
                    return False
            elif st.get("Effect") == "Allow" and _bucket_condition_holds(st, self.settings.account_id):
                allowed = True
        return allowed

    # ------------------------------------------------------------------------------------------- networks

    def _create_network(self, body: dict[str, Any]) -> _Network:
        name = _name(body, "network_name")
        vpc_id = _required_str(body, "vpc_id")
        subnet_ids = _str_list(body, "subnet_ids")
        sg_ids = _str_list(body, "security_group_ids")
        endpoints = body.get("vpc_endpoints")
        if any(n.name == name for n in self._networks.values()):
            raise _bad_value(f"Network configuration name {name} already exists in this account.")
        region, ec2 = self._locate_vpc(vpc_id)
        if ec2 is None:
            raise _bad_value(f"VPC {vpc_id} does not exist.")
        self._check_network_endpoints(endpoints, region)
        if len(subnet_ids) < 2:
            raise _bad_value("A network configuration requires at least 2 subnets in different availability zones.")
        if len(set(subnet_ids)) != len(subnet_ids):
            raise _bad_value("subnet_ids contains duplicates.")
        seen_azs: dict[str, str] = {}
        for subnet_id in subnet_ids:
            subnet = _subnet(ec2, subnet_id)
            if subnet is None:
                raise _bad_value(f"Subnet {subnet_id} does not exist.")
            if subnet.vpc_id != vpc_id:
                raise _bad_value(f"Subnet {subnet_id} does not belong to VPC {vpc_id}.")
            az = subnet.availability_zone
            if az in seen_azs:
                raise _bad_value(
                    f"Subnets {seen_azs[az]} and {subnet_id} are in the same availability zone {az}; "
                    "each subnet must be in a different availability zone."
                )
            seen_azs[az] = subnet_id
            prefix = ipaddress.ip_network(subnet.cidr_block).prefixlen
            if not 17 <= prefix <= 26:
                raise _bad_value(f"Subnet {subnet_id} has netmask /{prefix}; the netmask must be between /17 and /26.")
        if not 1 <= len(sg_ids) <= 5:
            raise _bad_value("A network configuration requires between 1 and 5 security groups.")
        for sg_id in sg_ids:
            group = ec2.get_security_group_from_id(sg_id)
            if group is None:
                raise _bad_value(f"Security group {sg_id} does not exist.")
            if group.vpc_id != vpc_id:
                raise _bad_value(f"Security group {sg_id} does not belong to VPC {vpc_id}.")
        for other in self._networks.values():
            reused = [s for s in subnet_ids if s in other.subnet_ids]
            if reused:
                raise _bad_value(f"Subnet {reused[0]} is already used by network configuration {other.network_id}.")
            reused = [g for g in sg_ids if g in other.security_group_ids]
            if reused:
                raise _bad_value(
                    f"Security group {reused[0]} is already used by network configuration {other.network_id}."
                )
        for attribute, label in (("enable_dns_hostnames", "DNS hostnames"), ("enable_dns_support", "DNS resolution")):
            if not ec2.describe_vpc_attribute(vpc_id, attribute):
                raise _bad_value(f"VPC {vpc_id} must have {label} enabled.")
        record = _Network(
            network_id=str(uuid.uuid4()),
            name=name,
            vpc_id=vpc_id,
            region=region,
            subnet_ids=subnet_ids,
            security_group_ids=sg_ids,
            vpc_endpoints=endpoints if isinstance(endpoints, dict) else None,
            creation_time=_epoch_ms(),
        )
        self._networks[record.network_id] = record
        return record

    def _locate_vpc(self, vpc_id: str) -> tuple[str, Any]:
        """The region and EC2 backend holding the VPC; networks carry no region, so look in every loaded one."""
        regional = ec2_backends[self.settings.aws_account_id]
        for region in list(regional.keys()):
            backend = regional[region]
            if vpc_id in backend.vpcs:
                return region, backend
        return "", None

    def _network_problems(self, network: _Network) -> list[dict[str, str]]:
        """What Databricks would find wrong with the network now, as ``error_messages`` entries."""
        ec2 = ec2_backends[self.settings.aws_account_id][network.region]
        if network.vpc_id not in ec2.vpcs:
            return [{"error_type": "vpc", "error_message": f"VPC {network.vpc_id} does not exist."}]
        problems = []
        for attribute, label in (("enable_dns_hostnames", "DNS hostnames"), ("enable_dns_support", "DNS resolution")):
            if not ec2.describe_vpc_attribute(network.vpc_id, attribute):
                problems.append({"error_type": "vpc", "error_message": f"VPC {network.vpc_id} has {label} disabled."})
        for subnet_id in network.subnet_ids:
            if _subnet(ec2, subnet_id) is None:
                problems.append({"error_type": "subnet", "error_message": f"Subnet {subnet_id} does not exist."})
        for sg_id in network.security_group_ids:
            if ec2.get_security_group_from_id(sg_id) is None:
                problems.append(
                    {"error_type": "securityGroup", "error_message": f"Security group {sg_id} does not exist."}
                )
        return problems

    # ----------------------------------------------------------------------------------------- workspaces

    def _create_workspace(self, body: dict[str, Any]) -> _Workspace:
        name = _required_str(body, "workspace_name")
        region = _required_str(body, "aws_region")
        credentials_id = _required_str(body, "credentials_id")
        storage_id = _required_str(body, "storage_configuration_id")
        network_id = body.get("network_id") or None
        if any(w.name == name for w in self._workspaces.values()):
            raise _bad_value(f"Workspace name {name} already exists in this account.")
        deployment = self._deployment_name(body.get("deployment_name"))
        credential = self._referenced(self._credentials, credentials_id, "Credential configuration")
        storage = self._referenced(self._storage, storage_id, "Storage configuration")
        network = None
        if network_id is not None:
            network = self._referenced(self._networks, str(network_id), "Network configuration")
            self._check_network_free(network, None)
            if network.region != region:
                raise _bad_value(
                    f"Network configuration {network.network_id} uses VPC {network.vpc_id} in {network.region}, "
                    f"not in the workspace region {region}."
                )
        pas_id = body.get("private_access_settings_id")
        if pas_id:
            self._check_private_access_for(str(pas_id), region)
        self._validate_credential_for_workspace(credential)
        self._validate_bucket(storage.bucket_name)
        workspace_id = self._new_workspace_id()
        options = {k: body[k] for k in _WORKSPACE_OPTIONS if body.get(k) is not None}
        record = _Workspace(
            workspace_id=workspace_id,
            name=name,
            deployment_name=deployment,
            aws_region=region,
            credentials_id=credential.credentials_id,
            storage_configuration_id=storage.storage_configuration_id,
            network_id=network.network_id if network else None,
            pricing_tier=str(body.get("pricing_tier") or "PREMIUM"),
            creation_time=_epoch_ms(),
            provision_started=self.settings.clock(),
            options=options,
        )
        if network is not None:
            network.workspace_id = workspace_id
        self._workspaces[workspace_id] = record
        return record

    def _deployment_name(self, requested: Any) -> str:
        taken = {w.deployment_name for w in self._workspaces.values()}
        if requested in (None, ""):
            while True:
                candidate = f"dbc-{secrets.token_hex(4)}-{secrets.token_hex(2)}"
                if candidate not in taken:
                    return candidate
        if not isinstance(requested, str) or not _DEPLOYMENT_NAME.fullmatch(requested):
            raise _bad_value(
                f"Invalid deployment name {requested!r}: use lowercase letters, digits and hyphens (at most 63)."
            )
        name = (
            f"{self.settings.deployment_name_prefix}-{requested}" if self.settings.deployment_name_prefix else requested
        )
        if name in taken:
            raise _bad_value(f"Deployment name {name} is already in use.")
        return name

    def _referenced(self, records: dict[str, Any], obj_id: str, noun: str) -> Any:
        record = records.get(obj_id)
        if record is None:
            raise _bad_value(f"{noun} {obj_id} does not exist.")
        return record

    def _check_network_free(self, network: _Network, workspace: _Workspace | None) -> None:
        for other in self._workspaces.values():
            if other is not workspace and other.network_id == network.network_id:
                raise _bad_value(
                    f"Network configuration {network.network_id} is already used by workspace {other.workspace_id}."
                )

    def _validate_credential_for_workspace(self, credential: _Credential) -> None:
        check = self._check_role(credential.role_arn)
        if check.problem == "permissions":
            raise _malformed(
                f"Failed credentials validation checks: {', '.join(map(_check_name, check.missing_actions))}"
            )
        if check.problem is not None:
            raise _malformed(f"Failed credentials validation checks: {_UNASSUMABLE_ROLE_CHECKS}")

    def _new_workspace_id(self) -> int:
        while True:
            candidate = 1_000_000_000_000_000 + secrets.randbelow(9_000_000_000_000_000)
            if candidate not in self._workspaces:
                return candidate

    def _update_workspace(self, ws: _Workspace, body: dict[str, Any], update_mask: str | None) -> None:
        """PATCH: change the configurations of a RUNNING or FAILED workspace, which then provisions again."""
        if ws.deleted_at is not None or ws.status not in (RUNNING, FAILED):
            raise ApiError(400, "INVALID_STATE", f"Workspace {ws.workspace_id} can't be updated in status {ws.status}.")
        if update_mask and update_mask != "*":
            fields = [f.strip() for f in update_mask.split(",") if f.strip()]
        else:
            fields = [f for f in body if f in _UPDATABLE_FIELDS]
        unknown = [f for f in fields if f not in _UPDATABLE_FIELDS]
        if unknown:
            raise _bad_value(f"Fields {', '.join(unknown)} can't be updated.")
        changes = {f: body.get(f) for f in fields}
        redeploy = ws.status == FAILED
        if "credentials_id" in changes:
            credential = self._referenced(self._credentials, str(changes["credentials_id"]), "Credential configuration")
            self._validate_credential_for_workspace(credential)
            redeploy = redeploy or credential.credentials_id != ws.credentials_id
        if "storage_configuration_id" in changes:
            storage = self._referenced(self._storage, str(changes["storage_configuration_id"]), "Storage configuration")
            if storage.storage_configuration_id != ws.storage_configuration_id and ws.status != FAILED:
                raise _bad_value("The storage configuration can be changed only while the workspace is FAILED.")
            self._validate_bucket(storage.bucket_name)
        new_network = None
        if "network_id" in changes:
            new_network = self._referenced(self._networks, str(changes["network_id"]), "Network configuration")
            self._check_network_free(new_network, ws)
            if new_network.region != ws.aws_region:
                raise _bad_value(f"Network configuration {new_network.network_id} is not in {ws.aws_region}.")
            redeploy = redeploy or new_network.network_id != ws.network_id
        if changes.get("private_access_settings_id"):
            self._check_private_access_for(str(changes["private_access_settings_id"]), ws.aws_region)
        # PrivateLink can be added or upgraded, never taken away: not the settings, nor the network's endpoints.
        if "private_access_settings_id" in changes and not changes["private_access_settings_id"] \
                and ws.options.get("private_access_settings_id"):
            raise _bad_value(f"Workspace {ws.workspace_id} has PrivateLink support, which cannot be removed "
                             "(private_access_settings_id cannot be cleared).")
        old_network = self._networks.get(ws.network_id or "")
        if (new_network is not None and old_network is not None and (old_network.vpc_endpoints or {})
                and not (new_network.vpc_endpoints or {})):
            raise _bad_value(f"Workspace {ws.workspace_id} has back-end PrivateLink; network configuration "
                             f"{new_network.network_id} has no vpc_endpoints, and PrivateLink cannot be removed.")
        # Validation passed: apply.
        if "credentials_id" in changes:
            ws.credentials_id = str(changes["credentials_id"])
        if "storage_configuration_id" in changes:
            ws.storage_configuration_id = str(changes["storage_configuration_id"])
        if new_network is not None and new_network.network_id != ws.network_id:
            old = self._networks.get(ws.network_id or "")
            if old is not None:
                old.workspace_id, old.vpc_status, old.error_messages = None, "UNATTACHED", []
            new_network.workspace_id = ws.workspace_id
            ws.network_id = new_network.network_id
        for option in _WORKSPACE_OPTIONS & changes.keys():
            if changes[option] is None:
                ws.options.pop(option, None)
            else:
                ws.options[option] = changes[option]
        if redeploy:
            ws.status, ws.status_message = PROVISIONING, _STATUS_MESSAGES[PROVISIONING]
            ws.provision_started = self.settings.clock()

    def _advance(self, now: float) -> None:
        """Bring every workspace up to date with the clock."""
        for ws in list(self._workspaces.values()):
            if ws.deleted_at is not None:
                if now - ws.deleted_at >= self.settings.workspace_deleting_seconds:
                    del self._workspaces[ws.workspace_id]
                    network = self._networks.get(ws.network_id or "")
                    if network is not None and network.workspace_id == ws.workspace_id:
                        network.workspace_id = None
                continue
            if ws.status not in (NOT_PROVISIONED, PROVISIONING):
                continue
            if now - ws.provision_started >= self.settings.workspace_provisioning_seconds:
                self._finish_provisioning(ws)
            else:
                ws.status, ws.status_message = PROVISIONING, _STATUS_MESSAGES[PROVISIONING]

    def _finish_provisioning(self, ws: _Workspace) -> None:
        network = self._networks.get(ws.network_id or "")
        problems = self._network_problems(network) if network is not None else []
        if network is not None:
            network.vpc_status = "BROKEN" if problems else "VALID"
            network.error_messages = problems
        if problems:
            detail = " ".join(p["error_message"] for p in problems)
            ws.status, ws.status_message = FAILED, f"Workspace failed to launch: network validation failed. {detail}"
        else:
            ws.status, ws.status_message = RUNNING, _STATUS_MESSAGES[RUNNING]
            ws.warmup_left = self.settings.workspace_api_warmup_requests

    # ------------------------------------------------------------------------------------ workspace hosts

    # ----------------------------------------------------------------- PrivateLink: endpoints, access settings

    def _require_enterprise(self) -> None:
        if not self.settings.enterprise_tier:
            raise ApiError(400, "INVALID_PARAMETER_VALUE", "PrivateLink is available only on the Enterprise "
                                                           "pricing tier; this account is not on it.")

    def _route_vpc_endpoints(self, request: Request, account_id: str) -> Response:
        self._account_call(request, account_id)
        if request.method == "GET":
            return _json([self._registration(e, account_id) for e in self._vpc_endpoints.values()])
        self._require_enterprise()
        body = _json_body(request)
        name = _name(body, "vpc_endpoint_name")
        aws_id = _required_str(body, "aws_vpc_endpoint_id")
        region = _required_str(body, "region")
        if any(e["vpc_endpoint_name"] == name for e in self._vpc_endpoints.values()):
            raise _bad_value(f"VPC endpoint name {name} already exists in this account.")
        if any(e["aws_vpc_endpoint_id"] == aws_id for e in self._vpc_endpoints.values()):
            raise _bad_value(f"AWS VPC endpoint {aws_id} is already registered in this account.")
        endpoint = ec2_backends[self.settings.aws_account_id][region].vpc_end_points.get(aws_id)
        if endpoint is None:
            raise _bad_value(f"AWS VPC endpoint {aws_id} does not exist in {region}.")
        # The endpoint waits in pendingAcceptance for this registration (the service accepts it on registration,
        # Account API); one the service turned down, or that is going, cannot be registered.
        state = str(getattr(endpoint, "state", "available")).lower()
        if state not in ("pendingacceptance", "pending", "available"):
            raise _bad_value(f"AWS VPC endpoint {aws_id} is {state}; only an endpoint pending acceptance or "
                             "available can be registered.")
        use_case = _databricks_service_use(region, endpoint.service_name)
        if use_case is None:
            raise _bad_value(f"AWS VPC endpoint {aws_id} connects to {endpoint.service_name}, which is not a "
                             f"Databricks endpoint service in {region}.")
        from provisioner.sandbox.ec2_patches import accept_vpc_endpoint

        accept_vpc_endpoint(endpoint)
        record = {"vpc_endpoint_id": str(uuid.uuid4()), "vpc_endpoint_name": name, "aws_vpc_endpoint_id": aws_id,
                  "aws_endpoint_service_id": endpoint.service_name.rsplit(".", 1)[-1], "region": region,
                  "aws_account_id": self.settings.aws_account_id, "use_case": use_case}
        self._vpc_endpoints[record["vpc_endpoint_id"]] = record
        return _json(self._registration(record, account_id))

    def _route_vpc_endpoint(self, request: Request, account_id: str, obj_id: str) -> Response:
        self._account_call(request, account_id)
        record = self._vpc_endpoints.get(obj_id)
        if record is None or request.method == "PUT":
            raise _not_found(f"VPC endpoint {obj_id} does not exist.")
        if request.method == "DELETE":
            for network in self._networks.values():
                if obj_id in [i for ids in (network.vpc_endpoints or {}).values() for i in ids]:
                    raise ApiError(400, "INVALID_STATE", f"Unable to delete, VPC endpoint is used by network "
                                                         f"configuration {network.network_id}")
            del self._vpc_endpoints[obj_id]
        return _json(self._registration(record, account_id))

    def _registration(self, record: dict[str, Any], account_id: str) -> dict[str, Any]:
        """A registration as GET answers it: its `state` is the AWS endpoint's as it is now ("derived from AWS";
        `deleted` once the endpoint is gone)."""
        endpoint = ec2_backends[self.settings.aws_account_id][record["region"]].vpc_end_points.get(
            record["aws_vpc_endpoint_id"])
        state = str(getattr(endpoint, "state", "available")).lower() if endpoint is not None else "deleted"
        return dict(record, account_id=account_id, state=state)

    def _check_network_endpoints(self, endpoints: Any, region: str) -> None:
        """`vpc_endpoints.rest_api` and `.dataplane_relay` name registered endpoints of that use, in the region."""
        if endpoints is None:
            return
        if not isinstance(endpoints, dict) or set(endpoints) - {"rest_api", "dataplane_relay"}:
            raise _bad_value("vpc_endpoints takes rest_api and dataplane_relay, each a list of VPC endpoint IDs.")
        if endpoints:
            self._require_enterprise()
        wanted_use = {"rest_api": "WORKSPACE_ACCESS", "dataplane_relay": "DATAPLANE_RELAY_ACCESS"}
        for field_name, ids in endpoints.items():
            if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
                raise _bad_value(f"vpc_endpoints.{field_name} must be a list of VPC endpoint IDs.")
            for endpoint_id in ids:
                record = self._vpc_endpoints.get(endpoint_id)
                if record is None:
                    raise _bad_value(f"VPC endpoint {endpoint_id} in vpc_endpoints.{field_name} is not registered "
                                     "in this account.")
                if record["region"] != region or record["use_case"] != wanted_use[field_name]:
                    raise _bad_value(f"VPC endpoint {endpoint_id} ({record['use_case']} in {record['region']}) "
                                     f"cannot serve vpc_endpoints.{field_name} in {region}.")

    def _route_private_accesss(self, request: Request, account_id: str) -> Response:
        self._account_call(request, account_id)
        if request.method == "GET":
            return _json([dict(p, account_id=account_id) for p in self._private_access.values()])
        self._require_enterprise()
        record = self._valid_private_access(_json_body(request), str(uuid.uuid4()))
        if any(p["private_access_settings_name"] == record["private_access_settings_name"]
               for p in self._private_access.values()):
            raise _bad_value(f"Private access settings name {record['private_access_settings_name']} already "
                             "exists in this account.")
        self._private_access[record["private_access_settings_id"]] = record
        return _json(dict(record, account_id=account_id))

    def _route_private_access(self, request: Request, account_id: str, obj_id: str) -> Response:
        self._account_call(request, account_id)
        record = self._private_access.get(obj_id)
        if record is None:
            raise _not_found(f"Private access settings {obj_id} does not exist.")
        if request.method == "PUT":
            updated = self._valid_private_access(_json_body(request), obj_id)
            for ws in self._workspaces.values():
                if ws.options.get("private_access_settings_id") == obj_id and ws.aws_region != updated["region"]:
                    raise _bad_value(f"Private access settings {obj_id} are used by workspace {ws.workspace_id} in "
                                     f"{ws.aws_region}; their region cannot change.")
            self._private_access[obj_id] = record = updated
        elif request.method == "DELETE":
            users = [ws.workspace_id for ws in self._workspaces.values()
                     if ws.options.get("private_access_settings_id") == obj_id]
            if users:
                raise ApiError(400, "INVALID_STATE", f"Unable to delete, private access settings are used by "
                                                     f"workspace {users[0]}")
            del self._private_access[obj_id]
        return _json(dict(record, account_id=account_id))

    def _valid_private_access(self, body: dict[str, Any], pas_id: str) -> dict[str, Any]:
        name = _name(body, "private_access_settings_name")
        region = _required_str(body, "region")
        if not _AWS_REGION.match(region):
            raise _bad_value(f"region {region!r} is not an AWS region.")
        public = body.get("public_access_enabled", False)
        level = body.get("private_access_level", "ACCOUNT")
        allowed = body.get("allowed_vpc_endpoint_ids", [])
        if not isinstance(public, bool):
            raise _bad_value("public_access_enabled must be true or false.")
        if level not in ("ACCOUNT", "ENDPOINT"):
            raise _bad_value("private_access_level must be ACCOUNT or ENDPOINT.")
        if not isinstance(allowed, list) or any(i not in self._vpc_endpoints for i in allowed):
            raise _bad_value("allowed_vpc_endpoint_ids must list VPC endpoints registered in this account.")
        return {"private_access_settings_id": pas_id, "private_access_settings_name": name, "region": region,
                "public_access_enabled": public, "private_access_level": level,
                "allowed_vpc_endpoint_ids": list(allowed)}

    def _check_private_access_for(self, pas_id: str, region: str) -> None:
        self._require_enterprise()
        record = self._private_access.get(pas_id)
        if record is None:
            raise _bad_value(f"Private access settings {pas_id} do not exist.")
        if record["region"] != region:
            raise _bad_value(f"Private access settings {pas_id} are for {record['region']}, not the workspace "
                             f"region {region}.")

    # ------------------------------------------------------------------------ network policies (serverless)

    def _route_network_policies(self, request: Request, account_id: str) -> Response:
        self._account_call(request, account_id)
        if request.method == "GET":
            return _json({"items": [dict(p, account_id=account_id) for p in self._network_policies.values()]})
        policy = self._valid_network_policy(_json_body(request))
        policy_id = policy["network_policy_id"]
        if policy_id in self._network_policies:
            raise ApiError(409, "RESOURCE_ALREADY_EXISTS", f"Network policy {policy_id} already exists.")
        self._network_policies[policy_id] = policy
        return _json(dict(policy, account_id=account_id))

    def _route_network_policy(self, request: Request, account_id: str, policy_id: str) -> Response:
        self._account_call(request, account_id)
        if policy_id not in self._network_policies:
            raise _not_found(f"Network policy {policy_id} does not exist.")
        if request.method == "GET":
            return _json(dict(self._network_policies[policy_id], account_id=account_id))
        if request.method == "PUT":
            body = _json_body(request)
            if body.get("network_policy_id", policy_id) != policy_id:
                raise _bad_value("network_policy_id in the body does not match the one in the path.")
            policy = self._valid_network_policy({**body, "network_policy_id": policy_id})
            self._network_policies[policy_id] = policy
            return _json(dict(policy, account_id=account_id))
        if policy_id == DEFAULT_NETWORK_POLICY:
            raise _bad_value("The default-policy is reserved and cannot be deleted.")
        users = sorted(ws for ws, bound in self._workspace_policy.items()
                       if bound == policy_id and ws in self._workspaces)
        if users:
            raise ApiError(400, "INVALID_STATE", f"Unable to delete, network policy {policy_id} is used by "
                                                 f"workspace {users[0]}")
        del self._network_policies[policy_id]
        return _json({})

    def _route_workspace_network(self, request: Request, account_id: str, workspace_id: int) -> Response:
        self._account_call(request, account_id)
        ws = self._workspaces.get(workspace_id)
        if ws is None or ws.deleted_at is not None:
            raise _not_found(f"Workspace {workspace_id} does not exist.")
        if request.method == "PUT":
            body = _json_body(request)
            policy_id = body.get("network_policy_id")
            if not isinstance(policy_id, str) or not policy_id:
                raise _bad_value("network_policy_id is required and must be a non-empty string.")
            if body.get("workspace_id", workspace_id) != workspace_id:
                raise _bad_value("workspace_id in the body does not match the one in the path.")
            if policy_id not in self._network_policies:
                raise _not_found(f"Network policy {policy_id} does not exist.")
            if policy_id == DEFAULT_NETWORK_POLICY:
                self._workspace_policy.pop(workspace_id, None)
            else:
                self._workspace_policy[workspace_id] = policy_id
        bound = self._workspace_policy.get(workspace_id, DEFAULT_NETWORK_POLICY)
        return _json({"workspace_id": workspace_id, "network_policy_id": bound})

    def _valid_network_policy(self, body: dict[str, Any]) -> dict[str, Any]:
        """A network policy as the service keeps it, or the 400 it answers (shapes: the SDK's dataclasses)."""
        policy_id = body.get("network_policy_id")
        if not isinstance(policy_id, str) or not _NETWORK_POLICY_ID.match(policy_id):
            raise _bad_value("network_policy_id is required and must match ^[a-zA-Z0-9_.-]{1,32}$.")
        egress = body.get("egress")
        access = egress.get("network_access") if isinstance(egress, dict) else None
        if not isinstance(access, dict):
            raise _bad_value("egress.network_access is required.")
        mode = access.get("restriction_mode")
        if mode not in _RESTRICTION_MODES:
            raise _bad_value(f"egress.network_access.restriction_mode must be one of {', '.join(_RESTRICTION_MODES)}.")
        internet = access.get("allowed_internet_destinations", [])
        storage = access.get("allowed_storage_destinations", [])
        if not isinstance(internet, list) or not isinstance(storage, list):
            raise _bad_value("allowed_internet_destinations and allowed_storage_destinations must be lists.")
        for i, dest in enumerate(internet):
            where = f"allowed_internet_destinations[{i}]"
            if not isinstance(dest, dict) or dest.get("internet_destination_type") != "DNS_NAME":
                raise _bad_value(f"{where}.internet_destination_type must be DNS_NAME.")
            name = dest.get("destination")
            if not isinstance(name, str) or not _DNS_NAME.match(name):
                raise _bad_value(f"{where}.destination {name!r} is not a domain name.")
        for i, dest in enumerate(storage):
            where = f"allowed_storage_destinations[{i}]"
            if not isinstance(dest, dict) or dest.get("storage_destination_type") != "AWS_S3":
                raise _bad_value(f"{where}.storage_destination_type must be AWS_S3 in an AWS account.")
            bucket = dest.get("bucket_name")
            if not isinstance(bucket, str) or not _S3_BUCKET.match(bucket):
                raise _bad_value(f"{where}.bucket_name {bucket!r} is not an S3 bucket name.")
            if "region" in dest and not _AWS_REGION.match(str(dest["region"])):
                raise _bad_value(f"{where}.region {dest['region']!r} is not an AWS region.")
        kept: dict[str, Any] = {"restriction_mode": mode}
        if internet:
            kept["allowed_internet_destinations"] = internet
        if storage:
            kept["allowed_storage_destinations"] = storage
        return {"network_policy_id": policy_id, "egress": {"network_access": kept}}

    def _running_workspace(self, deployment: str) -> _Workspace:
        for ws in self._workspaces.values():
            if ws.deployment_name == deployment and ws.deleted_at is None and ws.status == RUNNING:
                return ws
        raise _not_found(f"No running workspace has deployment name {deployment}.")

    def _route_ws_metadata(self, request: Request, deployment: str) -> Response:
        ws = self._running_workspace(deployment)
        base = request.host_url.rstrip("/")
        return _json(
            {
                "oidc_endpoint": f"{base}/ws/{deployment}/oidc",
                "workspace_id": str(ws.workspace_id),
                "account_id": self.settings.account_id,
                "cloud": "aws",
            }
        )

    def _route_ws_discovery(self, request: Request, deployment: str) -> Response:
        self._running_workspace(deployment)
        return _json(_oidc_document(f"{request.host_url.rstrip('/')}/ws/{deployment}/oidc"))

    def _route_ws_token(self, request: Request, deployment: str) -> Response:
        self._running_workspace(deployment)
        try:
            return self._issue_access_token(request, deployment)
        except _OAuthError as error:
            return error.response()

    def _workspace_api(self, request: Request, deployment: str) -> tuple[_Workspace, str]:
        """The workspace behind an API call on its host, and the caller, once the host lets the caller in."""
        ws = self._running_workspace(deployment)
        user = self._authenticate(request, deployment, ws)
        if self.settings.token_refusal == "not-a-member":
            raise ApiError(401, "UNAUTHENTICATED", f"{user} is not a member of this workspace.")
        if ws.warmup_left > 0:
            ws.warmup_left -= 1
            if self.settings.workspace_api_warmup_status == 401:
                raise ApiError(401, "UNAUTHENTICATED", "Invalid access token.")
            raise ApiError(403, "PERMISSION_DENIED", f"{user} is not authorized to access this workspace.")
        return ws, user

    def _route_pat_create(self, request: Request, deployment: str) -> Response:
        ws, user = self._workspace_api(request, deployment)
        if self.settings.token_refusal == "tokens-disabled":
            raise ApiError(403, "PERMISSION_DENIED", "Personal access tokens are disabled for this workspace.")
        if self.settings.token_refusal == "no-token-permission":
            raise ApiError(403, "PERMISSION_DENIED", f"{user} does not have permission to create personal access "
                                                     "tokens in this workspace.")
        body = _json_body(request)
        lifetime = body.get("lifetime_seconds", _PAT_DEFAULT_LIFETIME_SECONDS)
        if isinstance(lifetime, str) and lifetime.lstrip("-").isdigit():
            lifetime = int(lifetime)
        if not isinstance(lifetime, int) or isinstance(lifetime, bool):
            raise _bad_value("lifetime_seconds must be an integer.")
        comment = body.get("comment") or ""
        now = _epoch_ms()
        pat = _Pat(
            token_id=secrets.token_hex(32),
            token_value=f"dapi{secrets.token_hex(16)}",
            comment=str(comment),
            creation_time=now,
            expiry_time=now + lifetime * 1000 if lifetime > 0 else -1,
        )
        ws.pats[pat.token_id] = pat
        return _json({"token_value": pat.token_value, "token_info": pat.info()})

    def _route_pat_list(self, request: Request, deployment: str) -> Response:
        ws, _ = self._workspace_api(request, deployment)
        return _json({"token_infos": [pat.info() for pat in ws.pats.values()]})

    def _route_pat_delete(self, request: Request, deployment: str) -> Response:
        ws, _ = self._workspace_api(request, deployment)
        token_id = _required_str(_json_body(request), "token_id")
        if ws.pats.pop(token_id, None) is None:
            raise _not_found(f"Token with id {token_id} does not exist.")
        return _json({})

    def _route_ws_me(self, request: Request, deployment: str) -> Response:
        _, user = self._workspace_api(request, deployment)
        return _json(
            {
                "id": str(uuid.uuid5(uuid.NAMESPACE_URL, user).int % 10**16),
                "userName": user,
                "displayName": user,
                "active": True,
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            }
        )


_WORKSPACE_OPTIONS = frozenset(
    {
        "custom_tags",
        "private_access_settings_id",
        "managed_services_customer_managed_key_id",
        "storage_customer_managed_key_id",
        "network_connectivity_config_id",
        "compute_mode",
    }
)
_UPDATABLE_FIELDS = frozenset(
    {
        "credentials_id",
        "network_id",
        "storage_configuration_id",
        "custom_tags",
        "private_access_settings_id",
        "managed_services_customer_managed_key_id",
        "storage_customer_managed_key_id",
        "network_connectivity_config_id",
        "expected_workspace_status",
    }
)


def _build_url_map() -> Map:
    rules = [
        Rule("/.well-known/databricks-config", endpoint="account_metadata", methods=["GET"]),
        Rule(
            "/oidc/accounts/<account_id>/.well-known/oauth-authorization-server",
            endpoint="account_discovery",
            methods=["GET"],
        ),
        Rule("/oidc/accounts/<account_id>/v1/token", endpoint="account_token", methods=["POST"]),
        Rule("/ws/<deployment>/.well-known/databricks-config", endpoint="ws_metadata", methods=["GET"]),
        Rule("/ws/<deployment>/oidc/.well-known/oauth-authorization-server", endpoint="ws_discovery", methods=["GET"]),
        Rule("/ws/<deployment>/oidc/v1/token", endpoint="ws_token", methods=["POST"]),
        Rule("/ws/<deployment>/api/2.0/token/create", endpoint="pat_create", methods=["POST"]),
        Rule("/ws/<deployment>/api/2.0/token/list", endpoint="pat_list", methods=["GET"]),
        Rule("/ws/<deployment>/api/2.0/token/delete", endpoint="pat_delete", methods=["POST"]),
        Rule("/ws/<deployment>/api/2.0/preview/scim/v2/Me", endpoint="ws_me", methods=["GET"]),
    ]
    for kind, endpoint in (("vpc-endpoints", "vpc_endpoint"), ("private-access-settings", "private_access")):
        base = f"/api/2.0/accounts/<account_id>/{kind}"
        rules += [Rule(base, endpoint=f"{endpoint}s", methods=["GET", "POST"]),
                  Rule(f"{base}/<obj_id>", endpoint=endpoint, methods=["GET", "PUT", "DELETE"])]
    policies = "/api/2.0/accounts/<account_id>/network-policies"
    rules += [
        Rule(policies, endpoint="network_policies", methods=["GET", "POST"]),
        Rule(f"{policies}/<policy_id>", endpoint="network_policy", methods=["GET", "PUT", "DELETE"]),
        Rule("/api/2.0/accounts/<account_id>/workspaces/<int:workspace_id>/network", endpoint="workspace_network",
             methods=["GET", "PUT"]),
    ]
    for kind in _ACCOUNT_KINDS:
        base = f"/api/2.0/accounts/<account_id>/{kind}"
        rules.append(Rule(base, endpoint="collection", methods=["GET", "POST"], defaults={"kind": kind}))
        item_methods = ["GET", "DELETE", "PATCH"] if kind == "workspaces" else ["GET", "DELETE"]
        rules.append(Rule(f"{base}/<obj_id>", endpoint="item", methods=item_methods, defaults={"kind": kind}))
    return Map(rules, strict_slashes=False)


_SIGN_IN_ENDPOINTS = {
    "account_metadata": ACCOUNT_SIGN_IN,
    "account_discovery": ACCOUNT_SIGN_IN,
    "account_token": ACCOUNT_SIGN_IN,
    "ws_metadata": WORKSPACE_SIGN_IN,
    "ws_discovery": WORKSPACE_SIGN_IN,
    "ws_token": WORKSPACE_SIGN_IN,
}


def _endpoint_group(rule: Rule | None) -> str:
    if rule is None:
        return ""
    endpoint = str(rule.endpoint)
    if endpoint in _SIGN_IN_ENDPOINTS:
        return _SIGN_IN_ENDPOINTS[endpoint]
    account = ("collection", "item", "network_policies", "network_policy", "workspace_network", "vpc_endpoints",
               "vpc_endpoint", "private_accesss", "private_access")
    return ACCOUNT_API if endpoint in account else WORKSPACE_API


def _fault_response(kind: str, group: str) -> Response:
    """A throttled or unavailable answer, as the service's front end gives it (``Retry-After`` in seconds)."""
    code, message = {
        "429": ("REQUEST_LIMIT_EXCEEDED", "Too many requests. Please wait a moment and try again."),
        "503": ("TEMPORARILY_UNAVAILABLE", "The service is temporarily unavailable. Please try again later."),
    }.get(kind, ("TEMPORARILY_UNAVAILABLE", "The connection was reset."))
    body: dict[str, Any] = {"error_code": code, "message": message}
    if group in (ACCOUNT_SIGN_IN, WORKSPACE_SIGN_IN):  # OAuth endpoints answer errors in RFC 6749's form too
        body.update(error="temporarily_unavailable", error_description=message)
    response = _json(body, 429 if kind == "429" else 503)
    response.headers["Retry-After"] = "1"
    return response


def _drop_connection(environ: dict[str, Any]) -> None:
    """Reset the client's connection without a reply (the client sees "connection reset" or "aborted")."""
    sock = environ.get("werkzeug.socket")
    if sock is not None:
        try:
            # Linger 0: closing sends a TCP RST, not a FIN. Shutting down now stops the server's handler from
            # waiting on this (kept-alive) connection for another request.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    raise ConnectionResetError("fault injected: connection reset")


class _OAuthError(Exception):
    """An OAuth 2.0 error response (RFC 6749 section 5.2), as the token endpoints answer."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(error)
        self.status, self.error, self.description = status, error, description

    def response(self) -> Response:
        return _json({"error": self.error, "error_description": self.description}, self.status)


def _oidc_document(issuer: str) -> dict[str, Any]:
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/v1/authorize",
        "token_endpoint": f"{issuer}/v1/token",
        "jwks_uri": f"{issuer}/v1/keys",
        "grant_types_supported": ["client_credentials", "authorization_code", "refresh_token"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "scopes_supported": ["all-apis", "offline_access"],
    }


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def _pat_valid(ws: _Workspace, value: str) -> bool:
    now = _epoch_ms()
    return any(
        _same(value, pat.token_value) and (pat.expiry_time < 0 or pat.expiry_time > now) for pat in ws.pats.values()
    )


def _databricks_service_use(region: str, service_name: str) -> str | None:
    """`WORKSPACE_ACCESS` or `DATAPLANE_RELAY_ACCESS` for the region's Databricks endpoint services, else None."""
    from provisioner.design.regions import all_regions

    row = all_regions().get(region)
    if row is None:
        return None
    if service_name == row.privatelink_workspace_service:
        return "WORKSPACE_ACCESS"
    if service_name == row.privatelink_relay_service:
        return "DATAPLANE_RELAY_ACCESS"
    return None


def _malformed(message: str) -> ApiError:
    """A credential-validation failure: HTTP 400, ``text/plain`` body ``MALFORMED_REQUEST: <message>``."""
    return ApiError(400, "MALFORMED_REQUEST", message, plain_text=True)


def _json_body(request: Request) -> dict[str, Any]:
    raw = request.get_data(cache=True)
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise ApiError(400, "MALFORMED_REQUEST", "Invalid JSON given in the body of the request - expected a map")
    return body


def _required_str(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value:
        raise _bad_value(f"{key} is required and must be a non-empty string.")
    return value


def _name(body: dict[str, Any], key: str) -> str:
    value = _required_str(body, key)
    if not 4 <= len(value) <= 256:
        raise _bad_value(f"{key} must be between 4 and 256 characters long.")
    return value


def _nested_str(body: dict[str, Any], path: tuple[str, ...]) -> str:
    node: Any = body
    for key in path[:-1]:
        node = node.get(key) if isinstance(node, dict) else None
    if not isinstance(node, dict):
        raise _bad_value(f"{'.'.join(path)} is required.")
    try:
        return _required_str(node, path[-1])
    except ApiError:
        raise _bad_value(f"{'.'.join(path)} is required and must be a non-empty string.") from None


def _str_list(body: dict[str, Any], key: str) -> list[str]:
    value = body.get(key)
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise _bad_value(f"{key} is required and must be a list of strings.")
    return list(value)


def _subnet(ec2: Any, subnet_id: str) -> Any:
    try:
        return ec2.get_subnet(subnet_id)
    except InvalidSubnetIdError:
        return None


# ---------------------------------------------------------------------------------------- IAM policy reading


def _policy_statements(document: Any) -> list[dict[str, Any]]:
    """The statements of a policy document as moto stores it (JSON text, sometimes URL-encoded)."""
    if isinstance(document, bytes):
        document = document.decode()
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except ValueError:
            try:
                document = json.loads(unquote(document))
            except ValueError:
                return []
    if not isinstance(document, dict):
        return []
    statements = document.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    return [s for s in statements if isinstance(s, dict)] if isinstance(statements, list) else []


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _glob(pattern: str, value: str, *, case_sensitive: bool) -> bool:
    if case_sensitive:
        return fnmatch.fnmatchcase(value, pattern)
    return fnmatch.fnmatchcase(value.lower(), pattern.lower())


def _matches(statement: dict[str, Any], key: str, not_key: str, value: str) -> bool:
    """Whether ``value`` (an action or a resource ARN) is covered by the statement's Key / NotKey element."""
    actions = key == "Action"
    if key in statement:
        return any(_glob(p, value, case_sensitive=not actions) for p in _as_list(statement[key]))
    if not_key in statement:
        return not any(_glob(p, value, case_sensitive=not actions) for p in _as_list(statement[not_key]))
    return False


def _identity_allows(statements: list[dict[str, Any]], action: str) -> bool:
    """Whether an identity policy grants the action: some Allow matches it and no unconditional Deny does."""
    allowed = False
    for st in statements:
        if not _matches(st, "Action", "NotAction", action):
            continue
        if st.get("Effect") == "Deny" and not st.get("Condition"):
            return False
        if st.get("Effect") == "Allow":
            allowed = True
    return allowed


def _aws_principals(statement: dict[str, Any]) -> list[str]:
    principal = statement.get("Principal")
    if principal == "*":
        return ["*"]
    if isinstance(principal, dict):
        return _as_list(principal.get("AWS"))
    return []


def _principal_is_databricks(statement: dict[str, Any]) -> bool:
    return any(p in ("*", DATABRICKS_PRINCIPAL_ARN, DATABRICKS_AWS_ACCOUNT) for p in _aws_principals(statement))


def _condition_values(statement: dict[str, Any], operator: str, key: str) -> list[str] | None:
    """The values of ``Condition.<operator>.<key>`` (key case-insensitive), or None when absent."""
    block = statement.get("Condition", {})
    if not isinstance(block, dict):
        return None
    clause = block.get(operator)
    if not isinstance(clause, dict):
        return None
    for name, values in clause.items():
        if name.lower() == key.lower():
            return _as_list(values)
    return None


def _trusts_databricks(statements: list[dict[str, Any]], account_id: str) -> bool:
    """The trust policy lets Databricks' account assume the role with ExternalId = the Databricks account id."""
    for st in statements:
        if st.get("Effect") != "Allow" or not _matches(st, "Action", "NotAction", "sts:AssumeRole"):
            continue
        principals = _aws_principals(st)
        if DATABRICKS_PRINCIPAL_ARN not in principals and DATABRICKS_AWS_ACCOUNT not in principals:
            continue
        if account_id in (_condition_values(st, "StringEquals", "sts:ExternalId") or []):
            return True
    return False


def _bucket_condition_holds(statement: dict[str, Any], account_id: str) -> bool:
    """Only the confused-deputy condition is evaluated; other condition keys are assumed to hold."""
    for operator in ("StringEquals", "StringLike"):
        values = _condition_values(statement, operator, "aws:PrincipalTag/DatabricksAccountId")
        if values is not None and not any(_glob(v, account_id, case_sensitive=True) for v in values):
            return False
    return True


def _check_name(action: str) -> str:
    """The name Databricks gives the check for an EC2 action: ``ec2:DescribeVpcs`` -> ``Describe Vpcs``."""
    if action in _CHECK_NAMES:
        return _CHECK_NAMES[action]
    words = re.findall(r"[A-Z][a-z]+|[A-Z]+(?![a-z])", action.split(":", 1)[-1])
    return " ".join(words)


# ------------------------------------------------------------------------------------------------- serving


def workspace_url(base_url: str, deployment_name: str) -> str:
    """The emulated host of the workspace with this deployment name (real: ``https://<D>.cloud.databricks.com``)."""
    return f"{base_url.rstrip('/')}/ws/{deployment_name}"


class _QuietHandler(WSGIRequestHandler):
    """No per-request access log on stderr: the emulator's own ``log`` setting covers that."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class EmulatorServer:
    """A running emulator: ``base_url``, ``port``, and ``shutdown()`` to stop it and free the port."""

    def __init__(self, server: BaseWSGIServer, thread: threading.Thread, base_url: str) -> None:
        self._server = server
        self._thread = thread
        self.base_url = base_url
        self.port = server.port

    def shutdown(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def serve(emulator: DatabricksEmulator, host: str = "127.0.0.1", port: int = 0) -> tuple[EmulatorServer, str]:
    """Serve the emulator on a background thread; port 0 picks a free port. Returns the handle and base URL."""
    server = make_server(host, port, emulator.wsgi_app, threaded=True, request_handler=_QuietHandler)
    base_url = f"http://{host}:{server.port}"
    # A short poll interval keeps shutdown() quick: serve_forever only notices the request to stop between polls.
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.02}, name="databricks-emulator", daemon=True
    )
    thread.start()
    return EmulatorServer(server, thread, base_url), base_url
