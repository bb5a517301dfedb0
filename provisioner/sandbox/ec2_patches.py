"""Patches for moto's EC2 emulation where it differs from AWS in ways the provisioner depends on.

moto 5.2.5 makes every NAT gateway, Transit Gateway, TGW attachment and interface endpoint `available` at once,
ignores tag filters and idempotency tokens on several describe/create calls, and accepts references and deletions
that AWS refuses (a flow log delivering through a role that does not exist, or does not trust the flow logs
service, among them). Code that finds resources by tag, waits for them and tears them down in dependency order would
therefore pass against moto for the wrong reasons. `install()` monkeypatches moto's classes in place (moto looks
methods up on every request, so no re-registration is needed) to close those gaps. It works the same with
`mock_aws()` and with `ThreadedMotoServer`, which runs in-process.

Lifecycle states use moto's `ManagedState`. The default transition for every model in `MODEL_NAMES` is
`immediate`, so nothing changes unless a test or the sandbox opts in::

    state_manager.set_transition("ec2::nat_gateway", {"progression": "manual", "times": 2})
    # or set_transition("nat_gateway", times=2) / set_transition("nat_gateway", seconds=30)

With `manual`, a resource moves on after N describe calls that include it (every describe calls `advance()`);
with `time`, after N seconds. A test can make a NAT gateway fail with `fail_nat_gateway(...)` or by setting
`backend.nat_gateways[id].state = "failed"`.

AWS's eventual consistency around Elastic IPs is injectable too, as a number of answers (`set_fault`):
`release_auth_failure` makes ReleaseAddress of a deleted NAT gateway's address answer AuthFailure that many times,
and `new_allocation_not_found` makes CreateNatGateway answer InvalidElasticIpID.NotFound that many times for each
address allocated afterwards. Both are global, like transitions: `reset_faults()` puts them back to 0.

Extra state (idempotency tokens) lives in lazily created backend attributes, so moto's reset (`mock_aws` exit,
`POST /moto-api/reset`) clears it together with moto's own state. Transitions set on `state_manager` are global
and are not cleared by a reset: call `unset_transitions()`.

The patches reach into moto internals, so moto is pinned; `missing_internals()` reports what no longer exists.
"""

from __future__ import annotations

import fnmatch
import inspect
import json
import threading
from collections.abc import Callable, Iterable
from typing import Any, Final

import moto
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.core.responses import ActionResult
from moto.core.utils import iso_8601_datetime_with_milliseconds, utcnow
from moto.ec2 import models as ec2_models
from moto.ec2.exceptions import (
    DependencyViolationError,
    DuplicateTransitGatewayAttachmentError,
    EC2ClientError,
    InvalidParameter,
    InvalidRouteTableIdError,
    InvalidSecurityGroupNotFoundError,
    InvalidTransitGatewayID,
)
from moto.ec2.models.elastic_ip_addresses import ElasticAddressBackend
from moto.ec2.models.flow_logs import FlowLogs as FlowLog
from moto.ec2.models.nat_gateways import NatGateway, NatGatewayBackend
from moto.ec2.models.route_tables import RouteBackend, RouteTable
from moto.ec2.models.security_groups import SecurityGroupBackend
from moto.ec2.models.subnets import SubnetBackend
from moto.ec2.models.transit_gateway import TransitGateway, TransitGatewayBackend
from moto.ec2.models.transit_gateway_attachments import (
    TransitGatewayAttachment as TgwAttachmentModel,
)
from moto.ec2.models.transit_gateway_attachments import (
    TransitGatewayAttachmentBackend,
    TransitGatewayVpcAttachment,
)
from moto.ec2.models.transit_gateway_route_tables import (
    TransitGatewayRelations,
    TransitGatewayRouteTableBackend,
)
from moto.ec2.models.vpcs import VPCBackend, VPCEndPoint
from moto.ec2.responses.flow_logs import FlowLogs as FlowLogResponses
from moto.ec2.responses.nat_gateways import NatGateways as NatGatewayResponses
from moto.ec2.responses.route_tables import RouteTables as RouteTableResponses
from moto.ec2.responses.transit_gateway_attachments import (
    TransitGatewayAttachment as TgwAttachmentResponses,
)
from moto.ec2.responses.transit_gateways import TransitGateways as TransitGatewayResponses
from moto.ec2.responses.vpcs import VPCs as VpcResponses
from moto.ec2.utils import add_tag_specification, tag_filter_matches
from moto.iam.exceptions import NotFoundException as IamNotFound
from moto.iam.models import iam_backends
from moto.moto_api import state_manager
from moto.moto_api._internal.managed_state_model import ManagedState

__all__ = [
    "DATABRICKS_SERVICE_AZS",
    "FAULTS",
    "MODEL_NAMES",
    "MOTO_VERSION",
    "PENDING_ACCEPTANCE",
    "accept_vpc_endpoint",
    "fail_nat_gateway",
    "install",
    "is_installed",
    "missing_internals",
    "reset_faults",
    "set_fault",
    "set_transition",
    "unset_transitions",
]

MOTO_VERSION: Final = "5.2.5"

# ManagedState model names registered by install(). "<x>" covers creation (pending -> available);
# "<x>_delete" covers deletion (deleting -> deleted), so a test can slow one phase without the other.
MODEL_NAMES: Final[dict[str, str]] = {
    "nat_gateway": "ec2::nat_gateway",
    "nat_gateway_delete": "ec2::nat_gateway_delete",
    "transit_gateway": "ec2::transit_gateway",
    "transit_gateway_delete": "ec2::transit_gateway_delete",
    "transit_gateway_attachment": "ec2::transit_gateway_attachment",
    "transit_gateway_attachment_delete": "ec2::transit_gateway_attachment_delete",
    "vpc_endpoint": "ec2::vpc_endpoint",
    "vpc_endpoint_delete": "ec2::vpc_endpoint_delete",
}

# Injectable answers AWS gives for a while (each: how many times), set with set_fault():
# - release_auth_failure: ReleaseAddress of an address whose NAT gateway was deleted answers AuthFailure ("You do
#   not have permission to access the specified resource.") that many times before it succeeds; AWS does so while
#   it is still detaching the deleted NAT gateway's network interface from the address.
# - new_allocation_not_found: CreateNatGateway with an address allocated after this was set answers
#   InvalidElasticIpID.NotFound that many times (AllocateAddress returned, but CreateNatGateway does not see it yet;
#   hashicorp/terraform-provider-aws#27087, ansible-collections/amazon.aws#1872).
FAULTS: Final = ("release_auth_failure", "new_allocation_not_found")
_fault_counts: dict[str, int] = dict.fromkeys(FAULTS, 0)

# States in which a resource no longer holds on to what it used (subnets, EIPs, the VPC, its TGW).
_GONE: Final = frozenset({"deleted", "failed", "rejected"})
_STATE_ATTR: Final = "_sandbox_state"

_install_lock = threading.Lock()
_installed = False
# "Class.attribute" -> what moto had there before install() (None for instance attributes turned properties).
_ORIGINALS: dict[str, Any] = {}


# --------------------------------------------------------------------------------------------------- public API


def install() -> None:
    """Patch moto's EC2 backend and responses in place. Safe to call more than once: patches apply once."""
    global _installed
    with _install_lock:
        if _installed:
            return
        missing = missing_internals()
        if missing:
            raise RuntimeError(
                f"moto {moto.__version__} lacks internals the EC2 patches need (written for {MOTO_VERSION}): "
                + ", ".join(missing)
            )
        for model_name in MODEL_NAMES.values():
            state_manager.register_default_transition(model_name, {"progression": "immediate"})
        _install_lifecycles()
        _install_nat_gateways()
        _install_transit_gateways()
        _install_tgw_attachments()
        _install_tgw_route_tables()
        _install_vpc_endpoints()
        _install_route_tables()
        _install_dependency_checks()
        _install_flow_logs()
        # The root bucket's TLS-only Deny, which moto would apply to every request (s3_patches).
        from provisioner.sandbox import s3_patches

        s3_patches.install()
        _installed = True


def is_installed() -> bool:
    return _installed


def set_transition(model: str, seconds: float | None = None, *, times: int | None = None) -> None:
    """Make `model` (a MODEL_NAMES key or value) take `seconds` per phase, or `times` describes per phase.

    With neither, the model goes back to moving through its phases immediately.
    """
    name = MODEL_NAMES.get(model, model)
    if name not in MODEL_NAMES.values():
        raise ValueError(f"unknown model {model!r}; expected one of {sorted(MODEL_NAMES)}")
    if seconds is not None and times is not None:
        raise ValueError("give seconds or times, not both")
    if seconds is not None:
        state_manager.set_transition(name, {"progression": "time", "seconds": seconds})
    elif times is not None:
        state_manager.set_transition(name, {"progression": "manual", "times": times})
    else:
        state_manager.unset_transition(name)


def unset_transitions() -> None:
    """Drop every transition set on the models in MODEL_NAMES (a moto reset does not do this)."""
    for name in MODEL_NAMES.values():
        state_manager.unset_transition(name)


def set_fault(fault: str, times: int) -> None:
    """Make AWS answer `fault` (one of FAULTS) `times` times for each resource it concerns from now on."""
    if fault not in FAULTS:
        raise ValueError(f"unknown fault {fault!r}; expected one of {FAULTS}")
    if times < 0:
        raise ValueError("times must be 0 or more")
    _fault_counts[fault] = times


def reset_faults() -> None:
    """Every fault back to 0, and the answers still due for resources dropped (a moto reset clears only those)."""
    for fault in FAULTS:
        _fault_counts[fault] = 0
    for account in ec2_models.ec2_backends.values():
        for backend in account.values():
            for fault in FAULTS:
                _store(backend, fault).clear()


def _arm(backend: Any, fault: str, key: str) -> None:
    if _fault_counts[fault] > 0:
        _store(backend, fault)[key] = _fault_counts[fault]


def _fire(backend: Any, fault: str, key: str) -> bool:
    """Whether this call gets the fault's answer (and one fewer is left for `key`)."""
    left = int(_store(backend, fault).get(key, 0))
    if left > 0:
        _store(backend, fault)[key] = left - 1
    return left > 0


def fail_nat_gateway(
    nat_gateway_id: str,
    *,
    region: str,
    account_id: str = DEFAULT_ACCOUNT_ID,
    failure_code: str = "InternalError",
    failure_message: str = "The NAT gateway could not be created because of an internal error.",
) -> None:
    """Put a NAT gateway in the `failed` state with the failure details AWS reports. AWS lets go of a failed NAT
    gateway's Elastic IP (a new NAT gateway may take it); moto would keep it associated."""
    backend: Any = ec2_models.ec2_backends[account_id][region]
    nat: Any = backend.nat_gateways[nat_gateway_id]
    nat.failure_code = failure_code
    nat.failure_message = failure_message
    nat.state = "failed"
    for address in backend.addresses:
        if address.eni is not None and address.eni is getattr(nat, "_eni", None):
            address.eni = address.association_id = None


def missing_internals() -> list[str]:
    """Names of moto internals the patches rely on that this moto does not have (empty when all is well)."""
    missing = [
        f"{cls.__name__}.{name}"
        for cls, name in _METHOD_TARGETS
        if not callable(_ORIGINALS.get(f"{_qualname(cls)}.{name}", cls.__dict__.get(name)))
    ]
    # The state properties rely on moto assigning these literals in the model code.
    for cls, needle in _SOURCE_TARGETS:
        if needle not in inspect.getsource(cls):
            missing.append(f"{cls.__name__}: {needle}")
    return missing


# --------------------------------------------------------------------------------------------------- plumbing

_METHOD_TARGETS: Final[list[tuple[type, str]]] = [
    (NatGatewayBackend, "describe_nat_gateways"),
    (NatGatewayBackend, "delete_nat_gateway"),
    (NatGatewayResponses, "create_nat_gateway"),
    (NatGatewayResponses, "describe_nat_gateways"),
    (TransitGatewayBackend, "create_transit_gateway"),
    (TransitGatewayBackend, "describe_transit_gateways"),
    (TransitGatewayBackend, "delete_transit_gateway"),
    (TransitGatewayResponses, "describe_transit_gateways"),
    (TransitGatewayAttachmentBackend, "create_transit_gateway_vpc_attachment"),
    (TransitGatewayAttachmentBackend, "describe_transit_gateway_attachments"),
    (TransitGatewayAttachmentBackend, "describe_transit_gateway_vpc_attachments"),
    (TransitGatewayAttachmentBackend, "delete_transit_gateway_vpc_attachment"),
    (TgwAttachmentResponses, "create_transit_gateway_vpc_attachment"),
    (TgwAttachmentResponses, "describe_transit_gateway_attachments"),
    (TgwAttachmentResponses, "describe_transit_gateway_vpc_attachments"),
    (TransitGatewayRouteTableBackend, "get_all_transit_gateway_route_tables"),
    (TransitGatewayRouteTableBackend, "create_transit_gateway_route"),
    (TransitGatewayRouteTableBackend, "delete_transit_gateway_route"),
    (TransitGatewayRouteTableBackend, "search_transit_gateway_routes"),
    (TransitGatewayRouteTableBackend, "associate_transit_gateway_route_table"),
    (TransitGatewayRouteTableBackend, "disassociate_transit_gateway_route_table"),
    (TransitGatewayRouteTableBackend, "enable_transit_gateway_route_table_propagation"),
    (TransitGatewayRouteTableBackend, "disable_transit_gateway_route_table_propagation"),
    (VPCBackend, "create_vpc_endpoint"),
    (VPCBackend, "describe_vpc_endpoint_services"),
    (VPCBackend, "delete_vpc"),
    (VpcResponses, "describe_vpc_endpoints"),
    (RouteBackend, "create_route"),
    (RouteBackend, "replace_route"),
    (RouteBackend, "associate_route_table"),
    (RouteTable, "get_filter_value"),
    (RouteTableResponses, "create_route_table"),
    (RouteTableResponses, "delete_route_table"),
    (ElasticAddressBackend, "release_address"),
    (ElasticAddressBackend, "allocate_address"),
    (SubnetBackend, "delete_subnet"),
    (SecurityGroupBackend, "delete_security_group"),
    (FlowLogResponses, "create_flow_logs"),
    (FlowLogResponses, "delete_flow_logs"),
    (FlowLog, "get_filter_value"),
]

_SOURCE_TARGETS: Final[list[tuple[type, str]]] = [
    (NatGateway, 'self.state = "available"'),
    (NatGatewayBackend, 'nat_gw.state = "deleted"'),
    (TransitGateway, 'self.state = "available"'),
    (TgwAttachmentModel, 'self.state = "available"'),
    (TgwAttachmentModel, "self.transit_gateway_route_table = transit_gateway.default_route_table"),
    (TgwAttachmentModel, "def association(self)"),
    (VPCEndPoint, 'self.state = "available"'),
    (VPCBackend, 'vpc_endpoint.state = "deleted"'),
    (FlowLog, "self.deliver_logs_status = deliver_logs_status"),
    (ec2_models.transit_gateway_route_tables.TransitGatewayRouteTable, "self.routes"),
    (ec2_models.transit_gateway_route_tables.TransitGatewayRouteTable, "self.route_table_propagation"),
]


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _patch(cls: type, name: str, new: Any) -> Any:
    """Replace `cls.name` with `new`; return what was there so wrappers can call it."""
    key = f"{_qualname(cls)}.{name}"
    original = cls.__dict__.get(name)
    _ORIGINALS.setdefault(key, original)
    setattr(cls, name, new)
    return original


def _error(code: str, message: str) -> EC2ClientError:
    return EC2ClientError(code, message)


def _store(backend: Any, name: str) -> dict[str, Any]:
    # BaseBackend.reset() replaces __dict__, so this state is cleared along with moto's own.
    store: dict[str, Any] = backend.__dict__.setdefault(f"_sandbox_{name}", {})
    return store


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def _split_tag_filters(filters: Any) -> tuple[dict[str, list[str]], dict[str, Any]]:
    tag_filters: dict[str, list[str]] = {}
    others: dict[str, Any] = {}
    for name, values in (filters or {}).items():
        if name.startswith("tag:") or name in ("tag-key", "tag-value"):
            tag_filters[name] = list(values) if isinstance(values, list | tuple) else [values]
        else:
            others[name] = values
    return tag_filters, others


def _apply_tag_filters(tag_filters: dict[str, list[str]], resources: Iterable[Any]) -> list[Any]:
    # AWS ANDs filters and ORs the values of one filter; moto's describe_tag_filter handles only `tag:` and
    # raises ValueError when two tag filters both reject the same resource.
    return [
        resource
        for resource in resources
        if all(tag_filter_matches(resource, name, values) for name, values in tag_filters.items())
    ]


def _filtering_tags(original: Callable[..., list[Any]], filters_arg: int) -> Callable[..., list[Any]]:
    """Wrap a backend describe method so tag filters are applied here and never reach moto."""

    def wrapper(self: Any, *args: Any, **kwargs: Any) -> list[Any]:
        args_list = list(args)
        if "filters" in kwargs:
            tag_filters, kwargs["filters"] = _split_tag_filters(kwargs["filters"])
        elif len(args_list) > filters_arg:
            tag_filters, args_list[filters_arg] = _split_tag_filters(args_list[filters_arg])
        else:
            tag_filters = {}
        return _apply_tag_filters(tag_filters, original(self, *args_list, **kwargs))

    return wrapper


def _advance(resources: Iterable[Any]) -> None:
    for resource in resources:
        state = resource.__dict__.get(_STATE_ATTR)
        if isinstance(state, ManagedState):
            state.advance()


def _selected(collection: dict[str, Any], ids: list[str] | None) -> list[Any]:
    return [collection[i] for i in ids if i in collection] if ids else list(collection.values())


# --------------------------------------------------------------------------------------------------- lifecycles


def _lifecycle_state(create_model: str, delete_model: str, managed: Callable[[Any], bool] = lambda _: True) -> property:
    """A `state` property that turns moto's instant state writes into AWS's pending/deleting phases.

    moto writes "available" in the model's __init__ and "deleted" on delete; those become ManagedStates. Any
    other value (a test's "failed", moto's "pendingAcceptance" for peering) is stored as is.
    """

    def fget(self: Any) -> Any:
        value = self.__dict__.get(_STATE_ATTR)
        return value.status if isinstance(value, ManagedState) else value

    def fset(self: Any, value: Any) -> None:
        first_write = _STATE_ATTR not in self.__dict__
        new: Any = value
        if value == "available" and first_write and managed(self):
            new = ManagedState(create_model, [("pending", "available")])
        elif value == "deleted" and not first_write and managed(self):
            if fget(self) in ("deleting", "deleted"):
                return  # a repeated delete does not restart the deletion
            new = ManagedState(delete_model, [("deleting", "deleted")])
        elif value == "failed":
            # AWS explains a failure in FailureCode/FailureMessage (NAT gateways); fail_nat_gateway() sets them.
            self.__dict__.setdefault("failure_code", "InternalError")
            self.__dict__.setdefault("failure_message", "The resource failed to provision.")
        self.__dict__[_STATE_ATTR] = new

    return property(fget, fset)


def _install_lifecycles() -> None:
    _patch(NatGateway, "state", _lifecycle_state(MODEL_NAMES["nat_gateway"], MODEL_NAMES["nat_gateway_delete"]))
    _patch(
        TransitGateway,
        "state",
        _lifecycle_state(MODEL_NAMES["transit_gateway"], MODEL_NAMES["transit_gateway_delete"]),
    )
    _patch(
        TgwAttachmentModel,
        "state",
        _lifecycle_state(MODEL_NAMES["transit_gateway_attachment"], MODEL_NAMES["transit_gateway_attachment_delete"]),
    )

    # Gateway endpoints are usable at once on AWS; interface endpoints take a minute or two each way.
    # Gateway Load Balancer endpoints (used to stand in for Network Firewall endpoints) stay instant too.
    def is_interface(endpoint: Any) -> bool:
        return str(endpoint.vpc_endpoint_type or "").lower() == "interface"

    _patch(
        VPCEndPoint,
        "state",
        _lifecycle_state(MODEL_NAMES["vpc_endpoint"], MODEL_NAMES["vpc_endpoint_delete"], is_interface),
    )


# --------------------------------------------------------------------------------------------------- NAT gateways


def _install_nat_gateways() -> None:
    _patch(NatGatewayBackend, "describe_nat_gateways", _filtering_tags(NatGatewayBackend.describe_nat_gateways, 0))

    original_delete = NatGatewayBackend.delete_nat_gateway

    def delete_nat_gateway(self: Any, nat_gateway_id: str) -> Any:
        # moto crashes with AttributeError on an unknown id.
        if nat_gateway_id not in self.nat_gateways:
            raise _error("NatGatewayNotFound", f"The Nat Gateway {nat_gateway_id} was not found")
        nat = self.nat_gateways[nat_gateway_id]
        if nat.state not in ("deleting", "deleted"):
            nat.delete_time = iso_8601_datetime_with_milliseconds(utcnow())
            for entry in nat.address_set:
                if entry.get("allocationId"):
                    _arm(self, "release_auth_failure", entry["allocationId"])
        deleted = original_delete(self, nat_gateway_id)
        # On AWS a deleted NAT gateway's network interface goes with it; moto keeps it, still in the VPC's
        # default security group, so the VPC could never be deleted (the group is in use).
        eni = getattr(deleted, "_eni", None)
        if eni is not None and eni.id in self.enis:
            for address in self.addresses:
                if address.eni is eni:
                    address.eni = None
                    address.association_id = None
            self.delete_network_interface(eni.id)
        return deleted

    _patch(NatGatewayBackend, "delete_nat_gateway", delete_nat_gateway)

    def create_nat_gateway(self: Any) -> ActionResult:
        # AWS returns the NAT gateway made with the same ClientToken instead of making (or failing) another, and
        # refuses the token with other parameters (tags included); moto ignored the token.
        backend = self.ec2_backend
        token = self._get_param("ClientToken")
        subnet_id = self._get_param("SubnetId")
        allocation_id = self._get_param("AllocationId")
        connectivity_type = self._get_param("ConnectivityType") or "public"
        tags = add_tag_specification(self._get_param("TagSpecifications", []))
        params = (subnet_id, allocation_id, connectivity_type, tuple(sorted((tags or {}).items())))
        tokens = _store(backend, "nat_gateway_tokens")
        if token and token in tokens:
            nat_id, known = tokens[token]
            if known != params:
                raise _error("IdempotentParameterMismatch", f"ClientToken {token} was used with other parameters.")
            return ActionResult({"NatGateway": backend.nat_gateways[nat_id], "ClientToken": token})
        if allocation_id and _fire(backend, "new_allocation_not_found", allocation_id):
            raise _error("InvalidElasticIpID.NotFound", f"The elasticIp ID '{allocation_id}' does not exist")
        nat = backend.create_nat_gateway(
            subnet_id=subnet_id,
            allocation_id=allocation_id,
            tags=tags,
            connectivity_type=connectivity_type,
        )
        if token:
            tokens[token] = (nat.id, params)
        return ActionResult({"NatGateway": nat, "ClientToken": token})

    _patch(NatGatewayResponses, "create_nat_gateway", create_nat_gateway)

    original_describe = NatGatewayResponses.describe_nat_gateways

    def describe_nat_gateways(self: Any) -> Any:
        backend = self.ec2_backend
        ids = self._get_param("NatGatewayIds", [])
        unknown = [i for i in ids if i not in backend.nat_gateways]
        if unknown:
            # moto returns []; AWS errors, and the stock nat_gateway_* waiters rely on that error code.
            raise _error("NatGatewayNotFound", f"NAT gateway {unknown[0]} was not found")
        _advance(_selected(backend.nat_gateways, ids))
        return original_describe(self)

    _patch(NatGatewayResponses, "describe_nat_gateways", describe_nat_gateways)


# --------------------------------------------------------------------------------------------------- Transit Gateways


def _install_transit_gateways() -> None:
    original_create = TransitGatewayBackend.create_transit_gateway

    def create_transit_gateway(self: Any, *args: Any, **kwargs: Any) -> Any:
        tgw = original_create(self, *args, **kwargs)
        options = tgw.options
        if options.get("DefaultRouteTableAssociation") == "disable" and (
            options.get("DefaultRouteTablePropagation") == "disable"
        ):
            # AWS creates no default route table when neither default association nor propagation is on.
            self.transit_gateways_route_tables.pop(tgw.default_route_table.id, None)
            tgw.default_route_table = None
            options.pop("AssociationDefaultRouteTableId", None)
            options.pop("PropagationDefaultRouteTableId", None)
        return tgw

    _patch(TransitGatewayBackend, "create_transit_gateway", create_transit_gateway)
    _patch(
        TransitGatewayBackend,
        "describe_transit_gateways",
        _filtering_tags(TransitGatewayBackend.describe_transit_gateways, 0),
    )

    def delete_transit_gateway(self: Any, transit_gateway_id: str) -> Any:
        # AWS refuses while attachments remain, and keeps listing the gateway as deleting, then deleted;
        # moto removed it at once whatever was attached.
        tgw = self.transit_gateways.get(transit_gateway_id)
        if tgw is None or tgw.state == "deleted":
            raise InvalidTransitGatewayID(transit_gateway_id)
        if tgw.state != "available":
            raise _error("IncorrectState", f"{transit_gateway_id} is in invalid state")
        in_use = [
            attachment.id
            for attachment in self.transit_gateway_attachments.values()
            if attachment.transit_gateway_id == transit_gateway_id and attachment.state not in _GONE
        ]
        if in_use:
            raise _error(
                "IncorrectState", f"{transit_gateway_id} has non-deleted Transit Gateway Attachments: {in_use}"
            )
        tgw.state = "deleted"
        for table in self.transit_gateways_route_tables.values():
            if table.transit_gateway_id == transit_gateway_id:
                table.state = "deleted"
        return tgw

    _patch(TransitGatewayBackend, "delete_transit_gateway", delete_transit_gateway)

    original_describe = TransitGatewayResponses.describe_transit_gateways

    def describe_transit_gateways(self: Any) -> Any:
        backend = self.ec2_backend
        ids = self._get_param("TransitGatewayIds", [])
        unknown = [i for i in ids if i not in backend.transit_gateways]
        if unknown:
            raise InvalidTransitGatewayID(unknown[0])
        _advance(_selected(backend.transit_gateways, ids))
        return original_describe(self)

    _patch(TransitGatewayResponses, "describe_transit_gateways", describe_transit_gateways)


# --------------------------------------------------------------------------------------------------- TGW attachments


def _validate_subnets(backend: Any, vpc_id: str, subnet_ids: list[str], wrong_vpc_code: str) -> None:
    """AWS checks that the subnets exist, belong to the VPC and lie in distinct AZs; moto checks none of it."""
    zones: dict[str, str] = {}
    for subnet_id in subnet_ids:
        subnet = backend.get_subnet(subnet_id)  # InvalidSubnetID.NotFound
        if subnet.vpc_id != vpc_id:
            raise _error(wrong_vpc_code, f"The subnet {subnet_id} does not belong to VPC {vpc_id}.")
        zone = subnet.availability_zone
        if zone in zones:
            raise _error(
                "DuplicateSubnetsInSameZone",
                f"Subnets {zones[zone]} and {subnet_id} are both in availability zone {zone}.",
            )
        zones[zone] = subnet_id


def _associated_table(backend: Any, attachment_id: str) -> Any:
    for table in backend.transit_gateways_route_tables.values():
        if attachment_id in table.route_table_associations:
            return table
    return None


def _associate(backend: Any, attachment: Any, table: Any) -> None:
    backend.set_route_table_association(attachment.id, table.id)
    backend.set_attachment_association(attachment.id, table.id)
    backend.transit_gateway_associations[attachment.id] = TransitGatewayRelations(
        backend, attachment.id, table.id, state="associated"
    )
    # moto's attachment reports `Association` from this attribute, which its own associate call never updates.
    attachment.transit_gateway_route_table = table


def _unknown_attachment(attachment_id: str) -> EC2ClientError:
    return _error("InvalidTransitGatewayAttachmentID.NotFound", f"Transit Gateway Attachment {attachment_id} not found")


def _install_tgw_attachments() -> None:
    def create_transit_gateway_vpc_attachment(
        self: Any,
        transit_gateway_id: str,
        vpc_id: str,
        subnet_ids: list[str],
        tags: dict[str, str] | None = None,
        options: dict[str, str] | None = None,
    ) -> Any:
        tgw = self.transit_gateways.get(transit_gateway_id)
        if tgw is None or tgw.state in ("deleting", "deleted"):
            raise InvalidTransitGatewayID(
                transit_gateway_id, f"Transit Gateway {transit_gateway_id} was deleted or does not exist."
            )
        if tgw.state != "available":
            raise _error("IncorrectState", f"{transit_gateway_id} is in invalid state")
        self.get_vpc(vpc_id)
        _validate_subnets(self, vpc_id, subnet_ids, "InvalidParameterValue")
        for existing in self.transit_gateway_attachments.values():
            if (
                existing.transit_gateway_id == transit_gateway_id
                and existing.resource_type == "vpc"
                and existing.resource_id == vpc_id
                and existing.state not in _GONE
            ):
                raise DuplicateTransitGatewayAttachmentError(transit_gateway_id)
        attachment = TransitGatewayVpcAttachment(
            self, transit_gateway=tgw, tags=tags, vpc_id=vpc_id, subnet_ids=subnet_ids, options=options
        )
        self.transit_gateway_attachments[attachment.id] = attachment
        attachment.transit_gateway_route_table = None
        default_table = tgw.default_route_table
        # moto always associated with the default table, even with DefaultRouteTableAssociation=disable.
        if default_table is not None and tgw.options.get("DefaultRouteTableAssociation") == "enable":
            _associate(self, attachment, default_table)
        if default_table is not None and tgw.options.get("DefaultRouteTablePropagation") == "enable":
            _ORIGINAL_ENABLE_PROPAGATION(self, attachment.id, default_table.id)
        return attachment

    _patch(
        TransitGatewayAttachmentBackend, "create_transit_gateway_vpc_attachment", create_transit_gateway_vpc_attachment
    )

    original_describe_all = TransitGatewayAttachmentBackend.describe_transit_gateway_attachments

    def describe_transit_gateway_attachments(
        self: Any, transit_gateways_attachment_ids: list[str] | None = None, filters: Any = None
    ) -> list[Any]:
        tag_filters, others = _split_tag_filters(filters)
        # moto's version knows neither tag filters nor `state` / `transit-gateway-attachment-id`.
        extra = {name: others.pop(name) for name in ("state", "transit-gateway-attachment-id") if name in others}
        result = original_describe_all(self, transit_gateways_attachment_ids, others)
        if "state" in extra:
            result = [a for a in result if a.state in extra["state"]]
        if "transit-gateway-attachment-id" in extra:
            result = [a for a in result if a.id in extra["transit-gateway-attachment-id"]]
        return _apply_tag_filters(tag_filters, result)

    _patch(
        TransitGatewayAttachmentBackend, "describe_transit_gateway_attachments", describe_transit_gateway_attachments
    )
    _patch(
        TransitGatewayAttachmentBackend,
        "describe_transit_gateway_vpc_attachments",
        _filtering_tags(TransitGatewayAttachmentBackend.describe_transit_gateway_vpc_attachments, 1),
    )

    def delete_transit_gateway_vpc_attachment(self: Any, transit_gateway_attachment_id: str) -> Any:
        # AWS lists a deleted attachment as deleting, then deleted; moto dropped it at once.
        attachment = self.transit_gateway_attachments.get(transit_gateway_attachment_id)
        if attachment is None:
            raise _unknown_attachment(transit_gateway_attachment_id)
        if attachment.state in ("deleting", "deleted"):
            return attachment
        if attachment.state != "available":
            raise _error("IncorrectState", f"{transit_gateway_attachment_id} is in invalid state")
        attachment.state = "deleted"
        for table in self.transit_gateways_route_tables.values():
            table.route_table_associations.pop(attachment.id, None)
            table.route_table_propagation = [
                p for p in table.route_table_propagation if p.transitGatewayAttachmentId != attachment.id
            ]
            for route in table.routes.values():
                targets = route.get("transitGatewayAttachments") or []
                if any(t.get("transitGatewayAttachmentId") == attachment.id for t in targets):
                    # Static routes to a deleted attachment stay, as blackholes.
                    route["state"] = "blackhole"
                    route["transitGatewayAttachments"] = []
        self.transit_gateway_associations.pop(attachment.id, None)
        self.transit_gateway_propagations.pop(attachment.id, None)
        attachment.transit_gateway_route_table = None
        attachment._association_data = {}
        attachment.propagation = {}
        return attachment

    _patch(
        TransitGatewayAttachmentBackend, "delete_transit_gateway_vpc_attachment", delete_transit_gateway_vpc_attachment
    )

    def create_response(self: Any) -> ActionResult:
        # moto read the tags from the `transit-gateway-route-table` specification, dropping the attachment's.
        attachment = self.ec2_backend.create_transit_gateway_vpc_attachment(
            transit_gateway_id=self._get_param("TransitGatewayId"),
            tags=self._parse_tag_specification().get("transit-gateway-attachment", {}),
            vpc_id=self._get_param("VpcId"),
            subnet_ids=self._get_param("SubnetIds", []),
            options=self._get_param("Options", {}),
        )
        return ActionResult({"TransitGatewayVpcAttachment": attachment})

    _patch(TgwAttachmentResponses, "create_transit_gateway_vpc_attachment", create_response)

    for name in ("describe_transit_gateway_attachments", "describe_transit_gateway_vpc_attachments"):
        _patch(TgwAttachmentResponses, name, _advancing_attachment_describe(getattr(TgwAttachmentResponses, name)))

    def association(self: Any) -> dict[str, str] | None:
        # AWS lists an attachment's association (DescribeTransitGatewayAttachments) in every state that keeps
        # one, `modifying` included; moto only while `available`.
        table = self.transit_gateway_route_table
        if table is None or self.state in _GONE:
            return None
        return {"State": "associated", "TransitGatewayRouteTableId": table.id}

    _patch(TgwAttachmentModel, "association", property(association))


def _advancing_attachment_describe(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def describe(self: Any) -> Any:
        backend = self.ec2_backend
        ids = self._get_param("TransitGatewayAttachmentIds", [])
        unknown = [i for i in ids if i not in backend.transit_gateway_attachments]
        if unknown:
            raise _unknown_attachment(unknown[0])
        _advance(_selected(backend.transit_gateway_attachments, ids))
        return original(self)

    return describe


# --------------------------------------------------------------------------------------------------- TGW route tables

_ORIGINAL_ENABLE_PROPAGATION: Callable[..., Any] = (
    TransitGatewayRouteTableBackend.enable_transit_gateway_route_table_propagation
)


def _route_target(attachment: Any) -> dict[str, str]:
    return {
        "resourceId": attachment.resource_id,
        "resourceType": attachment.resource_type,
        "transitGatewayAttachmentId": attachment.id,
    }


def _propagated_routes(backend: Any, table: Any) -> list[dict[str, Any]]:
    """Routes AWS derives from propagations: each propagating VPC attachment contributes its VPC's CIDRs."""
    routes: dict[str, dict[str, Any]] = {}
    for propagation in table.route_table_propagation:
        attachment = backend.transit_gateway_attachments.get(propagation.transitGatewayAttachmentId)
        if attachment is None or attachment.state != "available" or attachment.resource_type != "vpc":
            continue
        vpc = backend.vpcs.get(attachment.resource_id)
        if vpc is None:
            continue
        for association in vpc.get_cidr_block_association_set(ipv6=False):
            cidr = association.get("cidr_block")
            if cidr and cidr not in table.routes and cidr not in routes:  # a static route wins
                routes[cidr] = {
                    "destinationCidrBlock": cidr,
                    "prefixListId": None,
                    "state": "active",
                    "type": "propagated",
                    "transitGatewayAttachments": [_route_target(attachment)],
                }
    return list(routes.values())


def _install_tgw_route_tables() -> None:
    _patch(
        TransitGatewayRouteTableBackend,
        "get_all_transit_gateway_route_tables",
        _filtering_tags(TransitGatewayRouteTableBackend.get_all_transit_gateway_route_tables, 1),
    )

    def live_table(backend: Any, table_id: str) -> Any:
        table = backend.transit_gateways_route_tables.get(table_id)
        if table is None or table.state == "deleted":
            raise InvalidRouteTableIdError(table_id)
        return table

    def live_attachment(backend: Any, attachment_id: str) -> Any:
        attachment = backend.transit_gateway_attachments.get(attachment_id)
        if attachment is None or attachment.state in _GONE:
            raise _unknown_attachment(attachment_id)
        return attachment

    original_create_route = TransitGatewayRouteTableBackend.create_transit_gateway_route

    def create_transit_gateway_route(
        self: Any,
        transit_gateway_route_table_id: str,
        destination_cidr_block: str,
        transit_gateway_attachment_id: str | None = None,
        blackhole: bool = False,
    ) -> Any:
        table = live_table(self, transit_gateway_route_table_id)
        if transit_gateway_attachment_id:
            live_attachment(self, transit_gateway_attachment_id)
        if destination_cidr_block in table.routes:
            # moto silently overwrote the existing route.
            raise _error(
                "RouteAlreadyExists",
                f"Route {destination_cidr_block} already exists in Transit Gateway Route Table "
                f"{transit_gateway_route_table_id}.",
            )
        route: dict[str, Any] = original_create_route(
            self, transit_gateway_route_table_id, destination_cidr_block, transit_gateway_attachment_id, blackhole
        )
        # moto stored the target as a dict under a list-typed member, so responses showed no target at all.
        target = route.get("transitGatewayAttachments")
        route["transitGatewayAttachments"] = [target] if isinstance(target, dict) else []
        return route

    _patch(TransitGatewayRouteTableBackend, "create_transit_gateway_route", create_transit_gateway_route)

    original_delete_route = TransitGatewayRouteTableBackend.delete_transit_gateway_route

    def delete_transit_gateway_route(
        self: Any, transit_gateway_route_table_id: str, destination_cidr_block: str
    ) -> Any:
        table = live_table(self, transit_gateway_route_table_id)
        if destination_cidr_block not in table.routes:
            raise _error(
                "InvalidRoute.NotFound",
                f"No route with destination-cidr-block {destination_cidr_block} in Transit Gateway Route Table "
                f"{transit_gateway_route_table_id}",
            )
        return original_delete_route(self, transit_gateway_route_table_id, destination_cidr_block)

    _patch(TransitGatewayRouteTableBackend, "delete_transit_gateway_route", delete_transit_gateway_route)

    def search_transit_gateway_routes(
        self: Any, transit_gateway_route_table_id: str, filters: Any, max_results: int | None = None
    ) -> list[dict[str, Any]]:
        """Static and propagated routes; filters `type`, `state` and `route-search.exact-match`."""
        table = live_table(self, transit_gateway_route_table_id)
        routes = list(table.routes.values()) + _propagated_routes(self, table)
        for filter_name, key in (
            ("type", "type"),
            ("state", "state"),
            ("route-search.exact-match", "destinationCidrBlock"),
        ):
            values = (filters or {}).get(filter_name)
            if values:
                routes = [route for route in routes if route.get(key) in values]
        return routes[: int(max_results)] if max_results else routes

    _patch(TransitGatewayRouteTableBackend, "search_transit_gateway_routes", search_transit_gateway_routes)

    def associate_transit_gateway_route_table(
        self: Any, transit_gateway_attachment_id: str, transit_gateway_route_table_id: str
    ) -> Any:
        attachment = live_attachment(self, transit_gateway_attachment_id)
        table = live_table(self, transit_gateway_route_table_id)
        if attachment.state != "available":
            raise _error("IncorrectState", f"{transit_gateway_attachment_id} is in invalid state")
        if _associated_table(self, attachment.id) is not None:
            # moto accepted a second association; an attachment has at most one on AWS.
            raise _error(
                "Resource.AlreadyAssociated",
                f"Transit Gateway Attachment {transit_gateway_attachment_id} is already associated to a route table.",
            )
        _associate(self, attachment, table)
        return self.transit_gateway_associations[attachment.id]

    _patch(
        TransitGatewayRouteTableBackend, "associate_transit_gateway_route_table", associate_transit_gateway_route_table
    )

    original_disassociate = TransitGatewayRouteTableBackend.disassociate_transit_gateway_route_table

    def disassociate_transit_gateway_route_table(self: Any, tgw_attach_id: str, tgw_rt_id: str) -> Any:
        attachment = self.transit_gateway_attachments.get(tgw_attach_id)
        table = _associated_table(self, tgw_attach_id)
        if attachment is None or table is None or table.id != tgw_rt_id:
            raise _error("InvalidAssociation.NotFound", f"Association {tgw_attach_id} / {tgw_rt_id} not found")
        self.transit_gateway_associations.setdefault(
            tgw_attach_id, TransitGatewayRelations(self, tgw_attach_id, tgw_rt_id, state="associated")
        )
        result = original_disassociate(self, tgw_attach_id, tgw_rt_id)
        attachment.transit_gateway_route_table = None
        return result

    _patch(
        TransitGatewayRouteTableBackend,
        "disassociate_transit_gateway_route_table",
        disassociate_transit_gateway_route_table,
    )

    original_enable = TransitGatewayRouteTableBackend.enable_transit_gateway_route_table_propagation

    def enable_transit_gateway_route_table_propagation(
        self: Any, transit_gateway_attachment_id: str, transit_gateway_route_table_id: str
    ) -> Any:
        live_attachment(self, transit_gateway_attachment_id)
        table = live_table(self, transit_gateway_route_table_id)
        if any(p.transitGatewayAttachmentId == transit_gateway_attachment_id for p in table.route_table_propagation):
            raise _error(
                "TransitGatewayRouteTablePropagation.Duplicate",
                f"Propagation of {transit_gateway_attachment_id} to {transit_gateway_route_table_id} already exists.",
            )
        return original_enable(self, transit_gateway_attachment_id, transit_gateway_route_table_id)

    _patch(
        TransitGatewayRouteTableBackend,
        "enable_transit_gateway_route_table_propagation",
        enable_transit_gateway_route_table_propagation,
    )

    original_disable = TransitGatewayRouteTableBackend.disable_transit_gateway_route_table_propagation

    def disable_transit_gateway_route_table_propagation(
        self: Any, transit_gateway_attachment_id: str, transit_gateway_route_table_id: str
    ) -> Any:
        table = live_table(self, transit_gateway_route_table_id)
        if not any(
            p.transitGatewayAttachmentId == transit_gateway_attachment_id for p in table.route_table_propagation
        ):
            raise _error(
                "InvalidPropagation.NotFound",
                f"{transit_gateway_attachment_id} does not propagate to {transit_gateway_route_table_id}.",
            )
        # moto keeps one propagation record per attachment and raised KeyError when it was missing.
        self.transit_gateway_propagations.setdefault(
            transit_gateway_attachment_id,
            TransitGatewayRelations(
                self, transit_gateway_attachment_id, transit_gateway_route_table_id, state="enabled"
            ),
        )
        return original_disable(self, transit_gateway_attachment_id, transit_gateway_route_table_id)

    _patch(
        TransitGatewayRouteTableBackend,
        "disable_transit_gateway_route_table_propagation",
        disable_transit_gateway_route_table_propagation,
    )


# --------------------------------------------------------------------------------------------------- VPC endpoints


def _check_endpoint_service(region: str, service_name: str) -> bool:
    """A PrivateLink endpoint service (`com.amazonaws.vpce.<region>.vpce-svc-...`) exists only if it is one of the
    Databricks endpoint services of that region in the region table; AWS answers InvalidServiceName otherwise.
    True for such a service: it accepts an endpoint only once the endpoint is registered with Databricks."""
    if not service_name.startswith("com.amazonaws.vpce."):
        return False
    from provisioner.design.regions import all_regions

    row = all_regions().get(region)
    known = (row.privatelink_workspace_service, row.privatelink_relay_service) if row else ()
    if service_name not in known:
        raise _error("InvalidServiceName", f"The Vpc Endpoint Service '{service_name}' does not exist")
    return True


PENDING_ACCEPTANCE = "pendingAcceptance"
#: Service name -> the AZs a Databricks endpoint service is offered in, where a test narrows it (AWS offers a
#: service in the AZs its provider chose: not always every AZ of the region). Otherwise every AZ of the region.
DATABRICKS_SERVICE_AZS: dict[str, tuple[str, ...]] = {}


def _databricks_service_azs(region: str, service_name: str) -> tuple[str, ...]:
    from provisioner.design.regions import all_regions

    row = all_regions().get(region)
    return DATABRICKS_SERVICE_AZS.get(service_name, row.availability_zones if row else ())


def accept_vpc_endpoint(endpoint: Any) -> None:
    """The endpoint service accepts a `pendingAcceptance` endpoint: it becomes `available` as a new one does."""
    if endpoint.state == PENDING_ACCEPTANCE:
        endpoint.state = ManagedState(MODEL_NAMES["vpc_endpoint"], [("pending", "available")])


def _install_vpc_endpoints() -> None:
    original_create = VPCBackend.create_vpc_endpoint

    def create_vpc_endpoint(
        self: Any,
        vpc_id: str,
        service_name: str,
        endpoint_type: str | None,
        policy_document: str | None,
        route_table_ids: list[str],
        subnet_ids: list[str] | None = None,
        network_interface_ids: list[str] | None = None,
        dns_entries: dict[str, str] | None = None,
        client_token: str | None = None,
        security_group_ids: list[str] | None = None,
        tags: dict[str, str] | None = None,
        private_dns_enabled: bool | None = None,
    ) -> Any:
        tokens = _store(self, "vpc_endpoint_tokens")
        if client_token and client_token in tokens:
            # AWS returns the endpoint made with the same ClientToken; moto made a second one.
            endpoint = self.vpc_end_points[tokens[client_token]]
            if (endpoint.vpc_id, endpoint.service_name) != (vpc_id, service_name):
                raise _error(
                    "IdempotentParameterMismatch", f"ClientToken {client_token} was used with other parameters."
                )
            return endpoint
        needs_acceptance = False
        if str(endpoint_type or "").lower() == "interface":
            needs_acceptance = _check_endpoint_service(self.region_name, service_name)
            vpc = self.get_vpc(vpc_id)
            _validate_subnets(self, vpc_id, subnet_ids or [], "InvalidParameter")
            if needs_acceptance:
                offered = _databricks_service_azs(self.region_name, service_name)
                for subnet_id in subnet_ids or []:
                    if self.get_subnet(subnet_id).availability_zone not in offered:
                        raise InvalidParameter(f"The VPC endpoint service {service_name} does not support the "
                                               f"availability zone of the subnet: {subnet_id}.")
            for group_id in security_group_ids or []:
                if self.get_security_group_from_id(group_id) is None:
                    raise InvalidSecurityGroupNotFoundError(group_id)
            if private_dns_enabled and not (_truthy(vpc.enable_dns_support) and _truthy(vpc.enable_dns_hostnames)):
                raise InvalidParameter(
                    "Enabling private DNS requires both enableDnsSupport and enableDnsHostnames VPC attributes "
                    f"set to true for {vpc_id}"
                )
        endpoint = original_create(
            self,
            vpc_id=vpc_id,
            service_name=service_name,
            endpoint_type=endpoint_type,
            policy_document=policy_document,
            route_table_ids=route_table_ids,
            subnet_ids=subnet_ids,
            network_interface_ids=network_interface_ids,
            dns_entries=dns_entries,
            client_token=client_token,
            security_group_ids=security_group_ids,
            tags=tags,
            private_dns_enabled=private_dns_enabled,
        )
        if needs_acceptance:
            # The Databricks endpoint services accept an endpoint once it is registered with the Databricks
            # account (the emulated Account API does, on POST /vpc-endpoints); until then AWS reports it so.
            endpoint.state = PENDING_ACCEPTANCE
        if client_token:
            tokens[client_token] = endpoint.id
        return endpoint

    _patch(VPCBackend, "create_vpc_endpoint", create_vpc_endpoint)

    original_services = VPCBackend.describe_vpc_endpoint_services

    def describe_vpc_endpoint_services(self: Any, service_names: list[str], filters: Any, max_results: int,
                                       next_token: str | None, region: str) -> dict[str, Any]:
        # moto knows AWS's own services only: the region's Databricks services are answered here, by name.
        from provisioner.design.regions import all_regions

        row = all_regions().get(region)
        ours = [n for n in service_names or [] if row and n in (row.privatelink_workspace_service,
                                                                row.privatelink_relay_service)]
        if not ours:
            return dict(original_services(self, service_names, filters, max_results, next_token, region))
        details = [{"ServiceName": n, "ServiceId": n.rsplit(".", 1)[-1], "ServiceType": [{"ServiceType": "Interface"}],
                    "AvailabilityZones": list(_databricks_service_azs(region, n)), "Owner": "414351767826",
                    "AcceptanceRequired": True, "ManagesVpcEndpoints": False, "VpcEndpointPolicySupported": False}
                   for n in ours]
        others = [n for n in service_names if n not in ours]
        if others:
            got = original_services(self, others, filters, max_results, next_token, region)
            details += list(got["servicesDetails"])
        return {"servicesDetails": details, "serviceNames": [d["ServiceName"] for d in details], "nextToken": None}

    _patch(VPCBackend, "describe_vpc_endpoint_services", describe_vpc_endpoint_services)

    original_describe = VpcResponses.describe_vpc_endpoints

    def describe_vpc_endpoints(self: Any) -> Any:
        _advance(_selected(self.ec2_backend.vpc_end_points, self._get_param("VpcEndpointIds", [])))
        return original_describe(self)

    _patch(VpcResponses, "describe_vpc_endpoints", describe_vpc_endpoints)

    original_modify = VpcResponses.modify_vpc_endpoint

    def modify_vpc_endpoint(self: Any) -> Any:
        # moto drops PrivateDnsEnabled; AWS turns an interface endpoint's private DNS on or off in place (and,
        # to turn it on, asks the same of the VPC as at create).
        private_dns = self._get_param("PrivateDnsEnabled")
        endpoint = self.ec2_backend.vpc_end_points.get(self._get_param("VpcEndpointId"))
        if private_dns is not None and endpoint is not None and _truthy(private_dns):
            vpc = self.ec2_backend.get_vpc(endpoint.vpc_id)
            if not (_truthy(vpc.enable_dns_support) and _truthy(vpc.enable_dns_hostnames)):
                raise InvalidParameter("Enabling private DNS requires both enableDnsSupport and enableDnsHostnames "
                                       f"VPC attributes set to true for {endpoint.vpc_id}")
        answer = original_modify(self)
        if private_dns is not None and endpoint is not None:
            endpoint.private_dns_enabled = _truthy(private_dns)
        return answer

    _patch(VpcResponses, "modify_vpc_endpoint", modify_vpc_endpoint)


# --------------------------------------------------------------------------------------------------- route tables


def _install_route_tables() -> None:
    def create_route_table(self: Any) -> ActionResult:
        # AWS returns the table made with the same ClientToken; moto made a new one each time.
        backend = self.ec2_backend
        token = self._get_param("ClientToken")
        vpc_id = self._get_param("VpcId")
        tokens = _store(backend, "route_table_tokens")
        if token and token in tokens and tokens[token][0] in backend.route_tables:
            table_id, token_vpc_id = tokens[token]
            if token_vpc_id != vpc_id:
                raise _error("IdempotentParameterMismatch", f"ClientToken {token} was used with other parameters.")
            return ActionResult({"RouteTable": backend.route_tables[table_id], "ClientToken": token})
        tag_specifications = self._get_param("TagSpecifications", [])
        tags = (tag_specifications[0].get("Tags") or []) if tag_specifications else []
        table = backend.create_route_table(vpc_id, tags)
        if token:
            tokens[token] = (table.id, vpc_id)
        return ActionResult({"RouteTable": table, "ClientToken": token})

    _patch(RouteTableResponses, "create_route_table", create_route_table)

    original_delete_table = RouteTableResponses.delete_route_table

    def delete_route_table(self: Any) -> Any:
        # AWS never deletes a VPC's main route table (it goes with the VPC); moto did. Patched on the response, so
        # moto's own delete_vpc still removes the main table with the VPC.
        table_id = self._get_param("RouteTableId")
        table = self.ec2_backend.route_tables.get(table_id)
        if table is not None and table.main_association_id is not None:
            raise DependencyViolationError(f"The routeTable '{table_id}' has dependencies and cannot be deleted.")
        return original_delete_table(self)

    _patch(RouteTableResponses, "delete_route_table", delete_route_table)

    def validating_targets(original: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(original)

        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            arguments = signature.bind(self, *args, **kwargs).arguments
            _validate_route_targets(
                self, arguments["route_table_id"], arguments.get("nat_gateway_id"), arguments.get("transit_gateway_id")
            )
            return original(self, *args, **kwargs)

        return wrapper

    _patch(RouteBackend, "create_route", validating_targets(RouteBackend.create_route))
    _patch(RouteBackend, "replace_route", validating_targets(RouteBackend.replace_route))

    original_associate = RouteBackend.associate_route_table

    def associate_route_table(
        self: Any, route_table_id: str, gateway_id: str | None = None, subnet_id: str | None = None
    ) -> str:
        self.get_route_table(route_table_id)
        if subnet_id:
            self.get_subnet(subnet_id)
        elif gateway_id and gateway_id.startswith("igw-"):
            self.get_internet_gateway(gateway_id)  # moto accepted unknown IGW ids
        target = subnet_id or gateway_id
        for table in self.route_tables.values():
            if target in table._associations.values():
                # moto answered with the other table's association id, leaving the subnet where it was.
                raise _error(
                    "Resource.AlreadyAssociated",
                    f"the specified association for route table {route_table_id} conflicts with an existing "
                    f"association ({target} is associated with {table.id})",
                )
        return original_associate(self, route_table_id, gateway_id=gateway_id, subnet_id=subnet_id)

    _patch(RouteBackend, "associate_route_table", associate_route_table)

    original_filter_value = RouteTable.get_filter_value

    def get_filter_value(self: Any, filter_name: str, method_name: str | None = None) -> Any:
        if filter_name == "association.gateway-id":  # not implemented by moto (FilterNotImplementedError)
            return [target for target in self._associations.values() if not target.startswith("subnet-")]
        return original_filter_value(self, filter_name, method_name)

    _patch(RouteTable, "get_filter_value", get_filter_value)


def _validate_route_targets(
    backend: Any, route_table_id: str, nat_gateway_id: str | None, transit_gateway_id: str | None
) -> None:
    # moto stored routes to unknown NAT/TGW ids with no target; AWS rejects them.
    if nat_gateway_id is not None:
        nat = backend.nat_gateways.get(nat_gateway_id)
        if nat is None or nat.state in _GONE | {"deleting"}:
            raise _error("InvalidNatGatewayID.NotFound", f"The natGateway ID '{nat_gateway_id}' does not exist")
    if transit_gateway_id is not None:
        tgw = backend.transit_gateways.get(transit_gateway_id)
        table = backend.route_tables.get(route_table_id)
        # AWS also needs the route table's VPC attached to the TGW (a classic failure when routes are created
        # before the attachment); a pending attachment is accepted here.
        attached = table is not None and any(
            attachment.transit_gateway_id == transit_gateway_id
            and attachment.resource_type == "vpc"
            and attachment.resource_id == table.vpc_id
            and attachment.state not in _GONE | {"deleting"}
            for attachment in backend.transit_gateway_attachments.values()
        )
        if tgw is None or tgw.state in ("deleting", "deleted") or (table is not None and not attached):
            raise InvalidTransitGatewayID(transit_gateway_id)


# --------------------------------------------------------------------------------------------------- dependencies


def _install_dependency_checks() -> None:
    original_release = ElasticAddressBackend.release_address

    def release_address(self: Any, address: str | None = None, allocation_id: str | None = None) -> None:
        eips = []
        if address:
            eips = self.address_by_ip([address])
        elif allocation_id:
            eips = self.address_by_allocation([allocation_id])
        for eip in eips:
            for nat in self.nat_gateways.values():
                if nat.state in _GONE:
                    continue
                if any(
                    entry.get("allocationId") == eip.allocation_id and eip.allocation_id for entry in nat.address_set
                ):
                    # moto released the address from under the NAT gateway.
                    raise _error("InvalidIPAddress.InUse", f"Address {eip.public_ip} is in use by {nat.id}.")
            if eip.allocation_id and _fire(self, "release_auth_failure", eip.allocation_id):
                raise _error("AuthFailure", "You do not have permission to access the specified resource.")
        original_release(self, address=address, allocation_id=allocation_id)

    _patch(ElasticAddressBackend, "release_address", release_address)

    original_allocate = ElasticAddressBackend.allocate_address

    def allocate_address(self: Any, *args: Any, **kwargs: Any) -> Any:
        address = original_allocate(self, *args, **kwargs)
        if address.allocation_id:  # a classic (EC2-Classic domain) address has none
            _arm(self, "new_allocation_not_found", address.allocation_id)
        return address

    _patch(ElasticAddressBackend, "allocate_address", allocate_address)

    original_delete_subnet = SubnetBackend.delete_subnet

    def delete_subnet(self: Any, subnet_id: str) -> Any:
        self.get_subnet(subnet_id)
        users = [nat.id for nat in self.nat_gateways.values() if nat.subnet_id == subnet_id and nat.state not in _GONE]
        users += [
            endpoint.id
            for endpoint in self.vpc_end_points.values()
            if subnet_id in (endpoint.subnet_ids or []) and endpoint.state not in _GONE
        ]
        users += [
            attachment.id
            for attachment in self.transit_gateway_attachments.values()
            if subnet_id in (getattr(attachment, "subnet_ids", None) or []) and attachment.state not in _GONE
        ]
        if users:
            # AWS refuses while network interfaces (NAT, endpoint, TGW attachment) remain; moto never did.
            raise DependencyViolationError(
                f"The subnet '{subnet_id}' has dependencies and cannot be deleted (in use by {', '.join(users)})."
            )
        return original_delete_subnet(self, subnet_id)

    _patch(SubnetBackend, "delete_subnet", delete_subnet)

    original_delete_vpc = VPCBackend.delete_vpc

    def delete_vpc(self: Any, vpc_id: str) -> Any:
        self.get_vpc(vpc_id)
        users = [igw.id for igw in self.internet_gateways.values() if igw.vpc is not None and igw.vpc.id == vpc_id]
        users += [group.id for group in self.groups.get(vpc_id, {}).values() if not group.is_default]
        users += [
            endpoint.id
            for endpoint in self.vpc_end_points.values()
            if endpoint.vpc_id == vpc_id and endpoint.state not in _GONE
        ]
        users += [
            attachment.id
            for attachment in self.transit_gateway_attachments.values()
            if attachment.resource_type == "vpc" and attachment.resource_id == vpc_id and attachment.state not in _GONE
        ]
        if users:
            # moto deleted the VPC and left these behind, still pointing at it.
            raise DependencyViolationError(
                f"The vpc '{vpc_id}' has dependencies and cannot be deleted (in use by {', '.join(users)})."
            )
        return original_delete_vpc(self, vpc_id)

    _patch(VPCBackend, "delete_vpc", delete_vpc)

    original_delete_group = SecurityGroupBackend.delete_security_group

    def delete_security_group(self: Any, name: str | None = None, group_id: str | None = None) -> None:
        group = (
            self.get_security_group_from_id(group_id)
            if group_id
            else (self.get_security_group_by_name_or_id(name) if name else None)
        )
        if group is not None:
            users = [
                endpoint.id
                for endpoint in self.vpc_end_points.values()
                if group.id in endpoint.security_group_ids and endpoint.state not in _GONE
            ]
            users += [eni.id for eni in self.enis.values() if any(g.id == group.id for g in eni._group_set)]
            for groups in self.groups.values():
                for other in groups.values():
                    if other.id != group.id and any(
                        rule.source_group.get("GroupId") == group.id
                        for rule in other.ingress_rules + other.egress_rules
                    ):
                        users.append(other.id)
            if users:
                # moto deleted groups still used by endpoints or referenced by other groups' rules.
                raise DependencyViolationError(
                    f"resource {group.id} has a dependent object (used by {', '.join(sorted(set(users)))})"
                )
        original_delete_group(self, name=name, group_id=group_id)

    _patch(SecurityGroupBackend, "delete_security_group", delete_security_group)


# --------------------------------------------------------------------------------------------------- flow logs

# The service that assumes a flow log's delivery role, and the flow log ID its trust conditions are checked with
# (AWS checks before the flow log has its ID; a condition naming one ID is unsatisfiable then).
_FLOW_LOGS_SERVICE: Final = "vpc-flow-logs.amazonaws.com"
_NEW_FLOW_LOG_ID: Final = "fl-0123456789abcdef0"


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _condition_holds(operator: str, wanted: list[str], actual: str) -> bool:
    base = operator.removesuffix("IfExists")
    if base in ("StringEquals", "ArnEquals"):
        return actual in wanted
    if base in ("StringLike", "ArnLike"):
        return any(fnmatch.fnmatchcase(actual, pattern) for pattern in wanted)
    if base in ("StringNotEquals", "ArnNotEquals"):
        return actual not in wanted
    if base in ("StringNotLike", "ArnNotLike"):
        return not any(fnmatch.fnmatchcase(actual, pattern) for pattern in wanted)
    return True  # an operator not modelled here is given the benefit of the doubt


def _statement_applies(statement: dict[str, Any], context: dict[str, str]) -> bool:
    """Whether a trust-policy statement covers vpc-flow-logs.amazonaws.com calling sts:AssumeRole in `context`."""
    if not any(action in ("sts:AssumeRole", "sts:*", "*") for action in _as_list(statement.get("Action"))):
        return False
    principal = statement.get("Principal")
    if principal != "*" and not (
        isinstance(principal, dict)
        and (_FLOW_LOGS_SERVICE in _as_list(principal.get("Service")) or "*" in _as_list(principal.get("AWS")))
    ):
        return False
    for operator, keys in (statement.get("Condition") or {}).items():
        for key, values in (keys or {}).items():
            actual = context.get(key.lower())
            if actual is not None and not _condition_holds(operator, [str(v) for v in _as_list(values)], actual):
                return False
    return True


def _flow_logs_may_assume(trust_policy: Any, context: dict[str, str]) -> bool:
    try:
        policy = json.loads(trust_policy) if isinstance(trust_policy, str) else trust_policy
    except ValueError:
        return False
    statements = [s for s in _as_list((policy or {}).get("Statement")) if isinstance(s, dict)]
    if any(s.get("Effect") == "Deny" and _statement_applies(s, context) for s in statements):
        return False
    return any(s.get("Effect") == "Allow" and _statement_applies(s, context) for s in statements)


def _require_flow_logs_role(backend: Any, role_arn: str) -> None:
    """AWS assumes DeliverLogsPermissionArn when the flow log is created: the role must exist in this account and
    trust vpc-flow-logs.amazonaws.com (with its conditions, e.g. aws:SourceAccount / aws:SourceArn, met).

    The refusal is AWS's: InvalidParameter "Unable to assume given IAM role" for the whole call (seen in
    hashicorp/terraform-provider-aws#29323). moto accepted any ARN.
    """
    refusal = _error("InvalidParameter", f"Unable to assume given IAM role: '{role_arn}'")
    parts = role_arn.split(":", 5)
    if len(parts) != 6 or parts[2] != "iam" or parts[4] != backend.account_id or not parts[5].startswith("role/"):
        raise refusal
    try:
        role = iam_backends[backend.account_id][backend.partition].get_role_by_arn(role_arn)
    except IamNotFound:
        raise refusal from None
    context = {
        "aws:sourceaccount": backend.account_id,
        "aws:sourcearn": (
            f"arn:{backend.partition}:ec2:{backend.region_name}:{backend.account_id}:vpc-flow-log/{_NEW_FLOW_LOG_ID}"
        ),
    }
    if not _flow_logs_may_assume(role.assume_role_policy_document, context):
        raise refusal


def _install_flow_logs() -> None:
    original_create = FlowLogResponses.create_flow_logs

    def create_flow_logs(self: Any) -> ActionResult:
        backend = self.ec2_backend
        token = self._get_param("ClientToken")
        destination_type = self._get_param("LogDestinationType") or "cloud-watch-logs"
        role_arn = self._get_param("DeliverLogsPermissionArn")
        request = (
            self._get_param("ResourceType"),
            tuple(self._get_param("ResourceIds", [])),
            self._get_param("TrafficType"),
            destination_type,
            self._get_param("LogDestination"),
            self._get_param("LogGroupName"),
            role_arn,
            self._get_param("LogFormat"),
            self._get_param("MaxAggregationInterval"),
        )
        tokens = _store(backend, "flow_log_tokens")
        if token and token in tokens:
            # AWS answers a known ClientToken with the flow logs it made then; moto made new ones.
            known_request, answer = tokens[token]
            if known_request != request:
                raise _error("IdempotentParameterMismatch", f"ClientToken {token} was used with other parameters.")
            return ActionResult({**answer, "ClientToken": token})
        if destination_type == "s3" and role_arn:
            raise InvalidParameter("DeliverLogsPermissionArn is not applicable for s3 delivery")
        if destination_type == "cloud-watch-logs" and role_arn:
            _require_flow_logs_role(backend, role_arn)
        result = original_create(self)
        answer = dict(result.result)  # type: ignore[call-overload]
        if token:
            tokens[token] = (request, answer)
            answer = {**answer, "ClientToken": token}
        return ActionResult(answer)

    _patch(FlowLogResponses, "create_flow_logs", create_flow_logs)

    def delete_flow_logs(self: Any) -> ActionResult:
        # AWS deletes the flow logs it knows and lists the others as Unsuccessful; moto failed the whole call.
        backend = self.ec2_backend
        flow_log_ids = self._get_param("FlowLogIds", [])
        self.error_on_dryrun()
        known = [flow_log_id for flow_log_id in flow_log_ids if flow_log_id in backend.flow_logs]
        unknown = [flow_log_id for flow_log_id in flow_log_ids if flow_log_id not in backend.flow_logs]
        if known:
            backend.delete_flow_logs(known)
        listed = " ".join(unknown)
        message = f"These flow log ids in the input list are not found: [TotalCount: {len(unknown)}] {listed}"
        unsuccessful = [
            {"ResourceId": flow_log_id, "Error": {"Code": "InvalidFlowLogId.NotFound", "Message": message}}
            for flow_log_id in unknown
        ]
        return ActionResult({"Unsuccessful": unsuccessful})

    _patch(FlowLogResponses, "delete_flow_logs", delete_flow_logs)

    original_filter_value = FlowLog.get_filter_value

    def get_filter_value(self: Any, filter_name: str, method_name: str | None = None) -> Any:
        if filter_name == "deliver-log-status":  # moto answered SUCCESS for every flow log
            return self.deliver_logs_status
        return original_filter_value(self, filter_name, method_name)

    _patch(FlowLog, "get_filter_value", get_filter_value)
