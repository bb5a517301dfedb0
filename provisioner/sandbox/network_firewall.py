"""AWS Network Firewall for the sandbox: what moto 5.2.5 lacks, patched into moto's own classes.

moto 5.2.5 implements only create/describe/list firewall and describe/update logging, and those without the parts
a provisioner depends on: no rule groups or policies, no PROVISIONING phase, no SyncStates or endpoint IDs, no
validation of the policy, subnets or name, logging changes of any size in one call, no way to change a firewall's
subnets, policy or protections, and all three protections on when the request omits them (AWS turns them off).
`install()` adds them.

The technique is moto's own structure: response methods are looked up by action name on
`NetworkFirewallResponse` at dispatch time, so new methods set on that class serve both `mock_aws()` and an
in-process `ThreadedMotoServer`. Extra state lives in attributes created lazily on the backend instance;
`BaseBackend.reset()` replaces the instance `__dict__`, so `mock_aws` stop and `POST /moto-api/reset` clear it
together with moto's own state.

Lifecycle timing uses moto's `ManagedState`. Both models below are registered with the default progression
"immediate", so a firewall is READY on its first describe and gone on the first describe after delete. A test or
the sandbox's latency model opts into visible pending states with
`state_manager.set_transition(FIREWALL_MODEL, {"progression": "manual", "times": n})`, which keeps the firewall
PROVISIONING for `n` describes (likewise DELETING for `FIREWALL_DELETE_MODEL`), or with
`{"progression": "time", "seconds": s}`. The same two models time the endpoint of a subnet added by AssociateSubnets
(CREATING), of a subnet removed by DisassociateSubnets (DELETING) and the sync of a policy set by
AssociateFirewallPolicy (PENDING); meanwhile the firewall is PROVISIONING, as AWS reports it.

`SyncStates[az].Config` lists, by name, the policy the firewall runs and every rule group it references, each with
its current UpdateToken. An update of one of them (UpdateRuleGroup, UpdateFirewallPolicy) leaves that object
PENDING until its sync is done (`CONFIG_SYNC_MODEL`, immediate by default, advanced by describe_firewall); so is
the firewall's summary, and the firewall is PROVISIONING meanwhile.
"""

from __future__ import annotations

import copy
import inspect
import re
import secrets
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import moto
from moto.core.exceptions import JsonRESTError
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.core.resource_tagging import TaggableResourcesMixin, TaggedResource
from moto.core.responses import ActionResult
from moto.ec2.exceptions import InvalidSubnetIdError, InvalidVPCIdError
from moto.ec2.models import EC2Backend, ec2_backends
from moto.moto_api import state_manager
from moto.moto_api._internal.managed_state_model import ManagedState
from moto.networkfirewall import models as _nfw_models
from moto.networkfirewall import responses as _nfw_responses
from moto.networkfirewall.models import NetworkFirewallBackend, NetworkFirewallModel, networkfirewall_backends
from moto.networkfirewall.responses import NetworkFirewallResponse, _firewall

from provisioner.sandbox import suricata
from provisioner.sandbox.moto_source import class_members

__all__ = [
    "ADDED_ACTIONS",
    "CONFIG_SYNC_MODEL",
    "FIREWALL_DELETE_MODEL",
    "FIREWALL_FAULTS",
    "FIREWALL_MODEL",
    "REPLACED_ACTIONS",
    "SUPPORTED_MOTO_VERSION",
    "compatibility_problems",
    "install",
    "set_firewall_fault",
    "set_in_use_after_release",
]

#: ManagedState model of a firewall's creation: PROVISIONING -> READY, advanced by each describe_firewall.
FIREWALL_MODEL = "network-firewall::firewall"
#: ManagedState model of a firewall's deletion: DELETING -> gone (describe raises ResourceNotFoundException).
FIREWALL_DELETE_MODEL = "network-firewall::firewall_delete"
#: ManagedState model of the sync of an updated rule group or policy to the firewalls that run it: PENDING -> IN_SYNC.
CONFIG_SYNC_MODEL = "network-firewall::configuration_sync"

#: The patches reach into moto's internal names; they were written against this release only.
SUPPORTED_MOTO_VERSION = "5.2.5"

# AWS caps the capacity a rule group may reserve at 30,000; it is fixed at creation (UpdateRuleGroup has no Capacity).
_MAX_CAPACITY = 30_000
_RULE_GROUP_TYPES = {"STATEFUL": "stateful-rulegroup", "STATELESS": "stateless-rulegroup"}
_RULE_ORDERS = ("DEFAULT_ACTION_ORDER", "STRICT_ORDER")
_STATELESS_STANDARD_ACTIONS = {"aws:pass", "aws:drop", "aws:forward_to_sfe"}
_RULES_SOURCE_KINDS = ("RulesString", "RulesSourceList", "StatefulRules", "StatelessRulesAndCustomActions")
_STATEFUL_ACTIONS = {"PASS", "DROP", "ALERT", "REJECT"}
_GENERATED_RULES_TYPES = {"ALLOWLIST", "DENYLIST", "ALERTLIST", "REJECTLIST"}
_DOMAIN_TARGET_TYPES = {"TLS_SNI", "HTTP_HOST"}
_LOG_TYPES = {"ALERT", "FLOW", "TLS"}
# The LogDestination key each destination type needs (API reference, LogDestinationConfig).
_LOG_DESTINATION_KEYS = {"S3": "bucketName", "CloudWatchLogs": "logGroup", "KinesisDataFirehose": "deliveryStream"}
_NAME_PATTERN = re.compile(r"^[a-zA-Z0-9-]{1,128}$")


# ---------------------------------------------------------------------------------------------------------------
# Errors: the codes AWS Network Firewall returns (all HTTP 400).


def _invalid_request(message: str) -> JsonRESTError:
    return JsonRESTError("InvalidRequestException", message)


def _invalid_operation(message: str) -> JsonRESTError:
    return JsonRESTError("InvalidOperationException", message)


# AWS's answer to deleting a policy or rule group it still counts as in use.
_STILL_IN_USE = "Unable to delete the object because it is still in use"


def _not_found(what: str) -> JsonRESTError:
    return JsonRESTError("ResourceNotFoundException", f"{what} not found")


def _stale_token() -> JsonRESTError:
    return JsonRESTError("InvalidTokenException", "The update token is stale or invalid; describe the resource again")


# ---------------------------------------------------------------------------------------------------------------
# State kept beside moto's: records for rule groups and policies, extras for moto's firewall models.


def _new_token() -> str:
    return str(uuid4())


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class _RuleGroup:
    arn: str
    name: str
    type: str
    capacity: int
    rule_group: dict[str, Any]
    description: str | None
    encryption: dict[str, Any]
    group_id: str = field(default_factory=_new_token)
    update_token: str = field(default_factory=_new_token)
    last_modified: datetime = field(default_factory=_now)

    @property
    def rule_order(self) -> str:
        return _rule_order_of_group(self.rule_group)


@dataclass
class _Policy:
    arn: str
    name: str
    firewall_policy: dict[str, Any]
    description: str | None
    encryption: dict[str, Any]
    policy_id: str = field(default_factory=_new_token)
    update_token: str = field(default_factory=_new_token)
    last_modified: datetime = field(default_factory=_now)

    def referenced_group_arns(self) -> list[str]:
        refs = (self.firewall_policy.get("StatelessRuleGroupReferences") or []) + (
            self.firewall_policy.get("StatefulRuleGroupReferences") or []
        )
        return [ref["ResourceArn"] for ref in refs]


@dataclass
class _FirewallExtras:
    """What moto's NetworkFirewallModel lacks: its ID, one endpoint per AZ, and its lifecycle.

    Subnets associated after creation come up on their own (`added`, FIREWALL_MODEL), subnets being disassociated
    go on their own (`removing`, FIREWALL_DELETE_MODEL), and a newly associated policy syncs to the endpoints
    (`policy_sync`, FIREWALL_MODEL): each is a ManagedState advanced by describe_firewall.
    """

    firewall_id: str
    endpoints: dict[str, tuple[str, str]]  # AZ -> (subnet ID, GWLB VPC endpoint ID)
    creation: ManagedState
    deletion: ManagedState | None = None
    added: dict[str, ManagedState] = field(default_factory=dict)
    removing: dict[str, ManagedState] = field(default_factory=dict)
    policy_sync: ManagedState | None = None
    service_name: str = ""  # the GWLB endpoint service its endpoints connect to
    # AZ (or "" for the firewall itself) -> (fault, StatusMessage), from set_firewall_fault().
    faults: dict[str, tuple[str, str]] = field(default_factory=dict)

    def lifecycles(self) -> list[ManagedState]:
        states = [self.creation, *self.added.values(), *self.removing.values()]
        return states + ([self.policy_sync] if self.policy_sync is not None else [])


def _store(backend: NetworkFirewallBackend, key: str) -> dict[str, Any]:
    # An attribute of the backend instance, so that moto's reset (which replaces __dict__) clears it.
    store: dict[str, Any] = backend.__dict__.setdefault(key, {})
    return store


def _rule_groups(backend: NetworkFirewallBackend) -> dict[str, _RuleGroup]:
    return _store(backend, "_sandbox_rule_groups")


def _policies(backend: NetworkFirewallBackend) -> dict[str, _Policy]:
    return _store(backend, "_sandbox_firewall_policies")


def _all_firewall_extras(backend: NetworkFirewallBackend) -> dict[str, _FirewallExtras]:
    return _store(backend, "_sandbox_firewall_extras")


def _object_syncs(backend: NetworkFirewallBackend) -> dict[str, ManagedState]:
    """Rule group or policy ARN -> the sync of its last update to the firewalls that run it (CONFIG_SYNC_MODEL)."""
    return _store(backend, "_sandbox_object_syncs")


def _start_sync(backend: NetworkFirewallBackend, arn: str) -> None:
    _object_syncs(backend)[arn] = ManagedState(CONFIG_SYNC_MODEL, [("PENDING", "IN_SYNC")])


def _extras(backend: NetworkFirewallBackend, firewall: NetworkFirewallModel) -> _FirewallExtras:
    extras = _all_firewall_extras(backend)
    if firewall.arn not in extras:
        # A firewall made by moto's unpatched code path: treat it as ready, with no endpoints to report.
        ready = ManagedState(FIREWALL_MODEL, [("READY", "READY")])
        extras[firewall.arn] = _FirewallExtras(firewall_id=_new_token(), endpoints={}, creation=ready)
    return extras[firewall.arn]


def _ec2(backend: NetworkFirewallBackend) -> EC2Backend:
    return ec2_backends[backend.account_id][backend.region_name]


def _arn(backend: NetworkFirewallBackend, kind: str, name: str) -> str:
    return f"arn:aws:network-firewall:{backend.region_name}:{backend.account_id}:{kind}/{name}"


def _tags(backend: NetworkFirewallBackend, arn: str) -> list[dict[str, str]]:
    return backend.tagger.list_tags_for_resource(arn)["Tags"]


def _check_name(name: Any, what: str) -> str:
    if not isinstance(name, str) or not _NAME_PATTERN.match(name):
        raise _invalid_request(f"{what} must match ^[a-zA-Z0-9-]+$ (1-128 characters), got {name!r}")
    return name


def _paginate(items: list[dict[str, str]], next_token: str | None, max_results: int | None) -> dict[str, Any]:
    try:
        start = int(next_token) if next_token else 0
    except ValueError:
        raise _invalid_request("NextToken is not valid") from None
    end = start + (max_results or 100)
    page: dict[str, Any] = {"Items": items[start:end]}
    if end < len(items):
        page["NextToken"] = str(end)
    return page


# ---------------------------------------------------------------------------------------------------------------
# Injectable AWS behaviour: lingering use after a release, and firewalls that fail.

# How many delete calls AWS still answers "in use" (InvalidOperationException) after the last user let go: a
# policy after its firewall is deleted (or moved to another policy), a rule group after its policy is deleted (or
# stops referencing it). AWS frees them a little after the user is gone; 0 frees them at once. Global, like
# moto's transitions, and not cleared by a reset: set_in_use_after_release() with no arguments puts it back.
_IN_USE_AFTER_RELEASE = {"firewall_policy": 0, "rule_group": 0}

#: The states set_firewall_fault() can put a firewall or one AZ into (botocore's service model:
#: FirewallStatusValue / AttachmentStatus FAILED, AttachmentStatus ERROR, ConfigurationSyncState and
#: PerObjectSyncStatus CAPACITY_CONSTRAINED).
FIREWALL_FAULTS = ("FAILED", "ERROR", "CAPACITY_CONSTRAINED")
_FAULT_MESSAGES = {
    "FAILED": "Network Firewall could not create the firewall endpoint in this subnet.",
    "ERROR": "The subnet has no free IP addresses for the firewall endpoint. Free some, or use another subnet.",
    "CAPACITY_CONSTRAINED": "The firewall's rule groups and reference sets exceed the capacity of the firewall.",
}


_WHOLE_FIREWALL = ""  # the key of a fault of the firewall itself, beside those of its AZs


def set_in_use_after_release(*, firewall_policy: int = 0, rule_group: int = 0) -> None:
    """Make DeleteFirewallPolicy answer InvalidOperationException `firewall_policy` times after the policy's last
    firewall is gone, and DeleteRuleGroup `rule_group` times after the group's last policy let go of it."""
    _IN_USE_AFTER_RELEASE.update(firewall_policy=firewall_policy, rule_group=rule_group)


def _released(backend: NetworkFirewallBackend) -> dict[str, int]:
    """ARN -> delete calls still to refuse as "in use"."""
    return _store(backend, "_sandbox_released")


def _release(backend: NetworkFirewallBackend, arns: Any, kind: str) -> None:
    for arn in arns:
        if _IN_USE_AFTER_RELEASE[kind] > 0:
            _released(backend)[arn] = _IN_USE_AFTER_RELEASE[kind]


def _refuse_while_released(backend: NetworkFirewallBackend, arn: str) -> None:
    left = _released(backend).get(arn, 0)
    if left > 0:
        _released(backend)[arn] = left - 1
        raise _invalid_operation(_STILL_IN_USE)


def set_firewall_fault(
    firewall: str,
    fault: str | None,
    *,
    region: str,
    az: str | None = None,
    message: str | None = None,
    account_id: str = DEFAULT_ACCOUNT_ID,
) -> None:
    """Put a firewall (named by name or ARN) into a state AWS reports when waiting will not make it ready.

    - "FAILED": with `az`, that AZ's endpoint (attachment) FAILED; without, the firewall and every endpoint. The
      firewall's Status is then FAILED.
    - "ERROR": the endpoint of `az` (or of every AZ) in ERROR, an issue the owner can fix; Status PROVISIONING.
    - "CAPACITY_CONSTRAINED": the configuration of `az` (or of every AZ) cannot be applied: its SyncStates Config
      objects and ConfigurationSyncStateSummary say CAPACITY_CONSTRAINED; Status PROVISIONING.

    Each affected attachment carries `message` (or a typical one) in its StatusMessage. `fault` None clears the
    faults of `az` (or all of them). DeleteFirewall clears them; set while the firewall is DELETING, FAILED or
    ERROR shows an endpoint AWS could not delete (the firewall stays DELETING).
    """
    if fault is not None and fault not in FIREWALL_FAULTS:
        raise ValueError(f"unknown fault {fault!r}; expected one of {FIREWALL_FAULTS}")
    backend = networkfirewall_backends[account_id][region]
    found = _get_firewall(backend, firewall if firewall.startswith("arn:") else None,
                          None if firewall.startswith("arn:") else firewall)
    extras = _extras(backend, found)
    if az is not None and az not in extras.endpoints:
        raise ValueError(f"firewall {found.firewall_name} has no endpoint in {az}; it has {sorted(extras.endpoints)}")
    if fault is None:
        if az is None:
            extras.faults.clear()
        else:
            extras.faults.pop(az, None)
        return
    for zone in [az] if az is not None else list(extras.endpoints):
        extras.faults[zone] = (fault, message or _FAULT_MESSAGES[fault])
    if fault == "FAILED" and az is None:
        extras.faults[_WHOLE_FIREWALL] = (fault, message or _FAULT_MESSAGES[fault])


# ---------------------------------------------------------------------------------------------------------------
# Rule groups.


def _rule_order_of_group(rule_group: dict[str, Any]) -> str:
    return str((rule_group.get("StatefulRuleOptions") or {}).get("RuleOrder") or "DEFAULT_ACTION_ORDER")


def _rule_group_content(rule_group: dict[str, Any] | None, rules: str | None) -> dict[str, Any]:
    # AWS takes the rules either as a RuleGroup or as a bare Suricata string in Rules, never both.
    if rule_group is not None and rules is None:
        return copy.deepcopy(rule_group)
    if rules is not None and rule_group is None:
        return {"RulesSource": {"RulesString": rules}}
    raise _invalid_request("Provide exactly one of RuleGroup and Rules")


def _validate_rule_group(rule_type: str, rule_group: dict[str, Any]) -> None:
    source = rule_group.get("RulesSource") or {}
    kinds = [kind for kind in _RULES_SOURCE_KINDS if source.get(kind)]
    if len(kinds) != 1:
        raise _invalid_request(f"RulesSource must hold exactly one of {', '.join(_RULES_SOURCE_KINDS)}")
    kind = kinds[0]
    if rule_type == "STATELESS":
        if kind != "StatelessRulesAndCustomActions":
            raise _invalid_request(f"A STATELESS rule group takes StatelessRulesAndCustomActions, not {kind}")
        if rule_group.get("StatefulRuleOptions"):
            raise _invalid_request("StatefulRuleOptions is only valid for STATEFUL rule groups")
        return
    if kind == "StatelessRulesAndCustomActions":
        raise _invalid_request("A STATEFUL rule group can't hold StatelessRulesAndCustomActions")
    if _rule_order_of_group(rule_group) not in _RULE_ORDERS:
        raise _invalid_request(f"parameter is invalid, parameter: [{_rule_order_of_group(rule_group)}]")
    if kind == "RulesSourceList":
        domains = source["RulesSourceList"]
        if not domains.get("Targets"):
            raise _invalid_request("RulesSourceList.Targets must not be empty")
        target_types = set(domains.get("TargetTypes") or [])
        if not target_types or not target_types <= _DOMAIN_TARGET_TYPES:
            raise _invalid_request(f"RulesSourceList.TargetTypes must be a non-empty subset of {_DOMAIN_TARGET_TYPES}")
        if domains.get("GeneratedRulesType") not in _GENERATED_RULES_TYPES:
            raise _invalid_request(f"RulesSourceList.GeneratedRulesType must be one of {_GENERATED_RULES_TYPES}")
    if kind == "StatefulRules":
        for index, rule in enumerate(source["StatefulRules"]):
            if rule.get("Action") not in _STATEFUL_ACTIONS:
                raise _invalid_request(f"StatefulRules[{index}].Action must be one of {_STATEFUL_ACTIONS}")
            if not rule.get("Header"):
                raise _invalid_request(f"StatefulRules[{index}].Header is required")


def _check_content(rule_type: str, capacity: int, rule_group: dict[str, Any]) -> None:
    """What AWS checks of a group's rules beyond their shape: a stateful group's rules must load in Suricata (a
    real parser, where installed: see `suricata`), and the content must fit the group's capacity."""
    if rule_type == "STATEFUL":
        try:
            problems = suricata.check(rule_group)
        except ValueError as e:  # rule variables AWS refuses
            raise _invalid_request(str(e)) from None
        if problems:
            raise _invalid_request(
                f"The rule group's Suricata rules are invalid ({len(problems)} rule(s) failed to load): "
                + suricata.problems_text(problems)
            )
    needed = suricata.capacity_needed(rule_type, rule_group)
    if needed > capacity:
        kind = "StatefulRules" if rule_type == "STATEFUL" else "StatelessRules"
        raise _invalid_request(
            f"{kind} capacity exceeded: the rules need a capacity of {needed}, and the rule group's capacity is "
            f"{capacity} (fixed at creation)"
        )


def _find_rule_group(
    backend: NetworkFirewallBackend, arn: str | None, name: str | None, rule_type: str | None
) -> _RuleGroup:
    groups = _rule_groups(backend)
    if arn:
        if arn not in groups:
            raise _not_found(f"Rule group {arn}")
        return groups[arn]
    if not name:
        raise _invalid_request("Provide RuleGroupArn or RuleGroupName")
    # AWS needs Type whenever the ARN is absent: a stateful and a stateless group may share a name.
    if rule_type not in _RULE_GROUP_TYPES:
        raise _invalid_request("Type (STATEFUL or STATELESS) is required when RuleGroupArn is not given")
    by_name = _arn(backend, _RULE_GROUP_TYPES[rule_type], name)
    if by_name not in groups:
        raise _not_found(f"Rule group {name} ({rule_type})")
    return groups[by_name]


def _policies_referencing(backend: NetworkFirewallBackend, group_arn: str) -> list[_Policy]:
    return [policy for policy in _policies(backend).values() if group_arn in policy.referenced_group_arns()]


def _rule_group_response(backend: NetworkFirewallBackend, group: _RuleGroup, status: str = "ACTIVE") -> dict[str, Any]:
    response: dict[str, Any] = {
        "RuleGroupArn": group.arn,
        "RuleGroupName": group.name,
        "RuleGroupId": group.group_id,
        "Type": group.type,
        "Capacity": group.capacity,
        "ConsumedCapacity": suricata.capacity_needed(group.type, group.rule_group),
        "RuleGroupStatus": status,
        "Tags": _tags(backend, group.arn),
        "NumberOfAssociations": len(_policies_referencing(backend, group.arn)),
        "EncryptionConfiguration": group.encryption,
        "LastModifiedTime": group.last_modified,
    }
    if group.description is not None:
        response["Description"] = group.description
    return response


def _create_rule_group(
    backend: NetworkFirewallBackend,
    name: Any,
    rule_type: Any,
    capacity: Any,
    rule_group: dict[str, Any] | None,
    rules: str | None,
    description: str | None = None,
    tags: list[dict[str, str]] | None = None,
    encryption: dict[str, Any] | None = None,
    dry_run: bool = False,
) -> _RuleGroup:
    """CreateRuleGroup: validate and store; a duplicate name of the same type is InvalidRequestException."""
    _check_name(name, "RuleGroupName")
    if rule_type not in _RULE_GROUP_TYPES:
        raise _invalid_request(f"Type must be one of {sorted(_RULE_GROUP_TYPES)}, got {rule_type!r}")
    if not isinstance(capacity, int) or isinstance(capacity, bool):
        raise _invalid_request("Capacity is required")
    if not 1 <= capacity <= _MAX_CAPACITY:
        raise _invalid_request(f"Capacity must be between 1 and {_MAX_CAPACITY}, got {capacity}")
    content = _rule_group_content(rule_group, rules)
    _validate_rule_group(rule_type, content)
    _check_content(rule_type, capacity, content)
    arn = _arn(backend, _RULE_GROUP_TYPES[rule_type], name)
    if arn in _rule_groups(backend):
        raise _invalid_request(f"A resource with the name {name} already exists")
    group = _RuleGroup(
        arn=arn,
        name=name,
        type=rule_type,
        capacity=capacity,
        rule_group=content,
        description=description,
        encryption=copy.deepcopy(encryption or {"Type": "AWS_OWNED_KMS_KEY"}),
    )
    if not dry_run:
        _rule_groups(backend)[arn] = group
        backend.tagger.tag_resource(arn, tags or [])
    return group


def _update_rule_group(
    backend: NetworkFirewallBackend,
    arn: str | None,
    name: str | None,
    rule_type: str | None,
    update_token: str | None,
    rule_group: dict[str, Any] | None,
    rules: str | None,
    description: str | None = None,
    encryption: dict[str, Any] | None = None,
    dry_run: bool = False,
) -> _RuleGroup:
    """UpdateRuleGroup: optimistic locking on UpdateToken; the stateful rule order is fixed at creation."""
    group = _find_rule_group(backend, arn, name, rule_type)
    if update_token != group.update_token:
        raise _stale_token()
    content = _rule_group_content(rule_group, rules)
    _validate_rule_group(group.type, content)
    # The rule order can't change after creation, so an update that omits StatefulRuleOptions on a STRICT_ORDER
    # group is refused (aws/aws-cli#7301).
    if group.type == "STATEFUL" and _rule_order_of_group(content) != group.rule_order:
        raise _invalid_request(f"parameter is invalid, parameter: [{_rule_order_of_group(content)}]")
    _check_content(group.type, group.capacity, content)
    if dry_run:
        return group
    group.rule_group = content
    if description is not None:
        group.description = description
    if encryption:
        group.encryption = copy.deepcopy(encryption)
    group.update_token = _new_token()
    group.last_modified = _now()
    _start_sync(backend, group.arn)
    return group


def _delete_rule_group(
    backend: NetworkFirewallBackend, arn: str | None, name: str | None, rule_type: str | None
) -> _RuleGroup:
    """DeleteRuleGroup: refused with InvalidOperationException while a firewall policy references the group."""
    group = _find_rule_group(backend, arn, name, rule_type)
    users = _policies_referencing(backend, group.arn)
    if users:
        raise _invalid_operation(f"Rule group {group.name} is in use by firewall policy {users[0].name}")
    _refuse_while_released(backend, group.arn)
    del _rule_groups(backend)[group.arn]
    _object_syncs(backend).pop(group.arn, None)
    backend.tagger.delete_all_tags_for_resource(group.arn)
    return group


# ---------------------------------------------------------------------------------------------------------------
# Firewall policies.


def _policy_rule_order(firewall_policy: dict[str, Any]) -> str:
    return str((firewall_policy.get("StatefulEngineOptions") or {}).get("RuleOrder") or "DEFAULT_ACTION_ORDER")


def _validate_stateless_actions(firewall_policy: dict[str, Any]) -> None:
    custom = {action.get("ActionName") for action in firewall_policy.get("StatelessCustomActions") or []}
    for key in ("StatelessDefaultActions", "StatelessFragmentDefaultActions"):
        actions = firewall_policy.get(key)
        if not actions:
            raise _invalid_request(f"{key} is required")
        standard = [action for action in actions if action in _STATELESS_STANDARD_ACTIONS]
        unknown = [action for action in actions if action not in _STATELESS_STANDARD_ACTIONS and action not in custom]
        # Exactly one standard action, optionally with custom actions defined in the same policy.
        if len(standard) != 1 or unknown:
            raise _invalid_request(f"{key} needs exactly one of {sorted(_STATELESS_STANDARD_ACTIONS)}, got {actions}")


def _validate_references(
    backend: NetworkFirewallBackend, references: list[dict[str, Any]], rule_type: str, policy_order: str
) -> None:
    groups = _rule_groups(backend)
    key = f"{rule_type.capitalize()}RuleGroupReferences"
    seen_arns: set[str] = set()
    seen_priorities: set[int] = set()
    for index, reference in enumerate(references):
        arn = reference.get("ResourceArn")
        group = groups.get(arn or "")
        if group is None:
            raise _invalid_request(f"{key}[{index}]: rule group {arn} does not exist")
        if group.type != rule_type:
            raise _invalid_request(f"{key}[{index}]: {arn} is a {group.type} rule group")
        if arn in seen_arns:
            raise _invalid_request(f"{key}[{index}]: {arn} is referenced twice")
        seen_arns.add(group.arn)
        priority = reference.get("Priority")
        if rule_type == "STATEFUL":
            # Policy and rule groups must share the rule order, and Priority exists only under STRICT_ORDER:
            # AWS answers "Priority cannot be provided" otherwise.
            if group.rule_order != policy_order:
                raise _invalid_request(
                    f"{key}[{index}]: rule group {group.name} uses {group.rule_order}, the policy {policy_order}"
                )
            if policy_order != "STRICT_ORDER" and priority is not None:
                raise _invalid_request(f"Priority cannot be provided, parameter: [{priority}], context: {key}[{index}]")
            if policy_order == "STRICT_ORDER" and priority is None:
                raise _invalid_request(f"{key}[{index}]: Priority is required with STRICT_ORDER")
        if priority is not None:
            if priority in seen_priorities:
                raise _invalid_request(f"{key}[{index}]: Priority {priority} is used twice")
            seen_priorities.add(priority)


def _validate_policy(backend: NetworkFirewallBackend, firewall_policy: dict[str, Any] | None) -> dict[str, Any]:
    if not firewall_policy:
        raise _invalid_request("FirewallPolicy is required")
    _validate_stateless_actions(firewall_policy)
    order = _policy_rule_order(firewall_policy)
    if order not in _RULE_ORDERS:
        raise _invalid_request(f"parameter is invalid, parameter: [{order}]")
    default_actions = firewall_policy.get("StatefulDefaultActions") or []
    # Stateful default actions only exist under strict order (API reference, FirewallPolicy.StatefulDefaultActions).
    if default_actions and order != "STRICT_ORDER":
        raise _invalid_request(
            "StatefulDefaultActions can only be set when StatefulEngineOptions.RuleOrder is STRICT_ORDER"
        )
    if len([action for action in default_actions if action.startswith("aws:drop")]) > 1:
        raise _invalid_request(f"StatefulDefaultActions may hold only one drop action, got {default_actions}")
    _validate_references(backend, firewall_policy.get("StatelessRuleGroupReferences") or [], "STATELESS", order)
    _validate_references(backend, firewall_policy.get("StatefulRuleGroupReferences") or [], "STATEFUL", order)
    return copy.deepcopy(firewall_policy)


def _find_policy(backend: NetworkFirewallBackend, arn: str | None, name: str | None) -> _Policy:
    policies = _policies(backend)
    if arn:
        if arn not in policies:
            raise _not_found(f"Firewall policy {arn}")
        return policies[arn]
    if not name:
        raise _invalid_request("Provide FirewallPolicyArn or FirewallPolicyName")
    by_name = _arn(backend, "firewall-policy", name)
    if by_name not in policies:
        raise _not_found(f"Firewall policy {name}")
    return policies[by_name]


def _firewalls_using(backend: NetworkFirewallBackend, policy_arn: str) -> list[NetworkFirewallModel]:
    return [firewall for firewall in backend.firewalls.values() if firewall.firewall_policy_arn == policy_arn]


def _policy_response(backend: NetworkFirewallBackend, policy: _Policy, status: str = "ACTIVE") -> dict[str, Any]:
    groups = _rule_groups(backend)
    referenced = [groups[arn] for arn in policy.referenced_group_arns() if arn in groups]
    response: dict[str, Any] = {
        "FirewallPolicyName": policy.name,
        "FirewallPolicyArn": policy.arn,
        "FirewallPolicyId": policy.policy_id,
        "FirewallPolicyStatus": status,
        "Tags": _tags(backend, policy.arn),
        "ConsumedStatelessRuleCapacity": sum(g.capacity for g in referenced if g.type == "STATELESS"),
        "ConsumedStatefulRuleCapacity": sum(g.capacity for g in referenced if g.type == "STATEFUL"),
        "NumberOfAssociations": len(_firewalls_using(backend, policy.arn)),
        "EncryptionConfiguration": policy.encryption,
        "LastModifiedTime": policy.last_modified,
    }
    if policy.description is not None:
        response["Description"] = policy.description
    return response


def _create_firewall_policy(
    backend: NetworkFirewallBackend,
    name: Any,
    firewall_policy: dict[str, Any] | None,
    description: str | None = None,
    tags: list[dict[str, str]] | None = None,
    encryption: dict[str, Any] | None = None,
    dry_run: bool = False,
) -> _Policy:
    """CreateFirewallPolicy: referenced rule groups must exist and agree with the policy's rule order."""
    _check_name(name, "FirewallPolicyName")
    content = _validate_policy(backend, firewall_policy)
    arn = _arn(backend, "firewall-policy", name)
    if arn in _policies(backend):
        raise _invalid_request(f"A resource with the name {name} already exists")
    policy = _Policy(
        arn=arn,
        name=name,
        firewall_policy=content,
        description=description,
        encryption=copy.deepcopy(encryption or {"Type": "AWS_OWNED_KMS_KEY"}),
    )
    if not dry_run:
        _policies(backend)[arn] = policy
        backend.tagger.tag_resource(arn, tags or [])
    return policy


def _update_firewall_policy(
    backend: NetworkFirewallBackend,
    arn: str | None,
    name: str | None,
    update_token: str | None,
    firewall_policy: dict[str, Any] | None,
    description: str | None = None,
    encryption: dict[str, Any] | None = None,
    dry_run: bool = False,
) -> _Policy:
    """UpdateFirewallPolicy: optimistic locking on UpdateToken; the stateful rule order is fixed at creation."""
    policy = _find_policy(backend, arn, name)
    if update_token != policy.update_token:
        raise _stale_token()
    content = _validate_policy(backend, firewall_policy)
    if _policy_rule_order(content) != _policy_rule_order(policy.firewall_policy):
        raise _invalid_request(f"parameter is invalid, parameter: [{_policy_rule_order(content)}]")
    if dry_run:
        return policy
    before = set(policy.referenced_group_arns())
    policy.firewall_policy = content
    _release(backend, sorted(before - set(policy.referenced_group_arns())), "rule_group")
    if description is not None:
        policy.description = description
    if encryption:
        policy.encryption = copy.deepcopy(encryption)
    policy.update_token = _new_token()
    policy.last_modified = _now()
    _start_sync(backend, policy.arn)
    return policy


def _delete_firewall_policy(backend: NetworkFirewallBackend, arn: str | None, name: str | None) -> _Policy:
    """DeleteFirewallPolicy: refused with InvalidOperationException while a firewall uses the policy."""
    _finish_deletions(backend)
    policy = _find_policy(backend, arn, name)
    users = _firewalls_using(backend, policy.arn)
    if users:
        raise _invalid_operation(f"Firewall policy {policy.name} is in use by firewall {users[0].firewall_name}")
    _refuse_while_released(backend, policy.arn)
    del _policies(backend)[policy.arn]
    _object_syncs(backend).pop(policy.arn, None)
    _release(backend, policy.referenced_group_arns(), "rule_group")
    backend.tagger.delete_all_tags_for_resource(policy.arn)
    return policy


# ---------------------------------------------------------------------------------------------------------------
# Firewalls: validation, GWLB endpoints in moto's EC2 backend, and the PROVISIONING/DELETING lifecycle.


def _finish_deletions(backend: NetworkFirewallBackend) -> None:
    """Apply every lifecycle that has run its course: deleted firewalls go with their endpoints and tags, and so
    do the endpoints of disassociated subnets; added subnets and policy changes that are done are forgotten."""
    ec2 = _ec2(backend)
    for arn, extras in list(_all_firewall_extras(backend).items()):
        if extras.deletion is not None and extras.deletion.status == "DELETED":
            ec2.delete_vpc_endpoints([endpoint_id for _, endpoint_id in extras.endpoints.values()])
            gone = backend.firewalls.pop(arn, None)
            if gone is not None:
                _release(backend, [gone.firewall_policy_arn], "firewall_policy")
            backend.tagger.delete_all_tags_for_resource(arn)
            del _all_firewall_extras(backend)[arn]
            continue
        for az, removal in list(extras.removing.items()):
            if removal.status == "DELETED":
                ec2.delete_vpc_endpoints([extras.endpoints.pop(az)[1]])
                del extras.removing[az]
        for az, addition in list(extras.added.items()):
            if addition.status == "READY":
                del extras.added[az]
        if extras.policy_sync is not None and extras.policy_sync.status == "IN_SYNC":
            extras.policy_sync = None


def _get_firewall(
    self: NetworkFirewallBackend, firewall_arn: str | None, firewall_name: str | None
) -> NetworkFirewallModel:
    """Replaces moto's lookup: an ARN wins over a name, and a finished deletion is applied first."""
    _finish_deletions(self)
    if firewall_arn:
        if firewall_arn in self.firewalls:
            return self.firewalls[firewall_arn]
        raise _not_found(f"Firewall {firewall_arn}")
    if not firewall_name:
        raise _invalid_request("Provide FirewallArn or FirewallName")
    for firewall in self.firewalls.values():
        if firewall.firewall_name == firewall_name:
            return firewall
    raise _not_found(f"Firewall {firewall_name}")


def _list_firewalls(self: NetworkFirewallBackend, **kwargs: Any) -> Any:
    _finish_deletions(self)
    return _ORIGINALS["list_firewalls"](self, **kwargs)


def _subnets_by_az(
    backend: NetworkFirewallBackend, vpc_id: str, subnet_ids: list[str], taken: dict[str, str] | None = None
) -> dict[str, str]:
    """AZ -> subnet for subnets that must exist, lie in the VPC and each take an AZ not yet `taken` (AZ -> subnet)."""
    ec2 = _ec2(backend)
    subnet_by_az: dict[str, str] = {}
    used = dict(taken or {})
    for subnet_id in subnet_ids:
        try:
            subnet = ec2.get_subnet(subnet_id)
        except InvalidSubnetIdError:
            raise _invalid_request(f"Subnet {subnet_id} does not exist") from None
        if subnet.vpc_id != vpc_id:
            raise _invalid_request(f"Subnet {subnet.id} is not in VPC {vpc_id}")
        # A firewall has one endpoint per Availability Zone.
        if subnet.availability_zone in used:
            raise _invalid_request(
                f"Subnets {used[subnet.availability_zone]} and {subnet.id} are both in "
                f"{subnet.availability_zone}: a firewall takes at most one subnet per Availability Zone"
            )
        used[subnet.availability_zone] = subnet_by_az[subnet.availability_zone] = subnet.id
    return subnet_by_az


def _new_endpoint(backend: NetworkFirewallBackend, extras: _FirewallExtras, vpc_id: str, subnet_id: str) -> str:
    # A real GatewayLoadBalancer endpoint, so that ec2.create_route(VpcEndpointId=...) to it is accepted as on AWS.
    endpoint = _ec2(backend).create_vpc_endpoint(
        vpc_id=vpc_id,
        service_name=extras.service_name,
        endpoint_type="GatewayLoadBalancer",
        policy_document=None,
        route_table_ids=[],
        subnet_ids=[subnet_id],
    )
    return str(endpoint.id)


def _create_firewall(
    self: NetworkFirewallBackend,
    firewall_name: str,
    firewall_policy_arn: str,
    vpc_id: str,
    subnet_mappings: list[dict[str, str]],
    **kwargs: Any,
) -> NetworkFirewallModel:
    """Wraps moto's create_firewall with AWS's checks and one real GWLB endpoint per subnet."""
    _finish_deletions(self)
    _check_name(firewall_name, "FirewallName")
    # moto would silently replace a firewall of the same name.
    if any(firewall.firewall_name == firewall_name for firewall in self.firewalls.values()):
        raise _invalid_request(f"A resource with the name {firewall_name} already exists")
    if firewall_policy_arn not in _policies(self):
        raise _invalid_request(f"Firewall policy {firewall_policy_arn} does not exist")
    try:
        _ec2(self).get_vpc(vpc_id)
    except InvalidVPCIdError:
        raise _invalid_request(f"VPC {vpc_id} does not exist") from None
    if not subnet_mappings:
        raise _invalid_request("SubnetMappings must name at least one subnet")
    subnet_by_az = _subnets_by_az(self, vpc_id, [mapping["SubnetId"] for mapping in subnet_mappings])
    # Omitted, the three protections are off: AWS answers false for them, whatever its API reference says about
    # TRUE (moto followed the reference and turned all three on).
    for protection in ("delete_protection", "subnet_change_protection", "firewall_policy_change_protection"):
        kwargs[protection] = bool(kwargs.get(protection))

    firewall: NetworkFirewallModel = _ORIGINALS["create_firewall"](
        self,
        firewall_name=firewall_name,
        firewall_policy_arn=firewall_policy_arn,
        vpc_id=vpc_id,
        subnet_mappings=copy.deepcopy(subnet_mappings),
        **kwargs,
    )
    firewall.update_token = _new_token()
    firewall.logging_configs = {"LogDestinationConfigs": []}
    extras = _FirewallExtras(
        firewall_id=_new_token(),
        endpoints={},
        creation=ManagedState(FIREWALL_MODEL, [("PROVISIONING", "READY")]),
        service_name=f"com.amazonaws.vpce.{self.region_name}.vpce-svc-{secrets.token_hex(9)[:17]}",
    )
    for az, subnet_id in subnet_by_az.items():
        extras.endpoints[az] = (subnet_id, _new_endpoint(self, extras, vpc_id, subnet_id))
    _all_firewall_extras(self)[firewall.arn] = extras
    return firewall


def _start_deletion(backend: NetworkFirewallBackend, firewall: NetworkFirewallModel) -> _FirewallExtras:
    """DeleteFirewall: refused while DeleteProtection is on; otherwise DELETING until FIREWALL_DELETE_MODEL ends.

    The caller renders its answer from the returned extras, then calls _finish_deletions(): with the default
    "immediate" progression that removes the firewall at once, while the answer still says DELETING, as on AWS.
    """
    if firewall.delete_protection:
        raise _invalid_operation(f"Firewall {firewall.firewall_name} has DeleteProtection enabled")
    extras = _extras(backend, firewall)
    if extras.deletion is None:
        extras.deletion = ManagedState(FIREWALL_DELETE_MODEL, [("DELETING", "DELETED")])
        extras.faults.clear()  # a failed firewall can be deleted; a fault set from now on is the deletion's
    return extras


# The protection flags and the attribute of moto's NetworkFirewallModel each one sets.
_PROTECTIONS = {
    "DeleteProtection": "delete_protection",
    "SubnetChangeProtection": "subnet_change_protection",
    "FirewallPolicyChangeProtection": "firewall_policy_change_protection",
}


def _checked_for_update(
    backend: NetworkFirewallBackend, arn: str | None, name: str | None, update_token: str | None
) -> NetworkFirewallModel:
    """The firewall an update call names, after AWS's optimistic locking: the UpdateToken is optional, but a stale
    one is refused."""
    firewall = _get_firewall(backend, arn, name)
    if update_token is not None and update_token != firewall.update_token:
        raise _stale_token()
    return firewall


def _update_protection(
    backend: NetworkFirewallBackend,
    arn: str | None,
    name: str | None,
    flag: str,
    value: Any,
    update_token: str | None,
) -> NetworkFirewallModel:
    """UpdateFirewallDeleteProtection, UpdateSubnetChangeProtection and UpdateFirewallPolicyChangeProtection."""
    firewall = _checked_for_update(backend, arn, name, update_token)
    if not isinstance(value, bool):
        raise _invalid_request(f"{flag} is required")
    setattr(firewall, _PROTECTIONS[flag], value)
    firewall.update_token = _new_token()
    return firewall


def _require_not_deleting(backend: NetworkFirewallBackend, firewall: NetworkFirewallModel) -> _FirewallExtras:
    extras = _extras(backend, firewall)
    if extras.deletion is not None:
        raise _invalid_operation(f"Firewall {firewall.firewall_name} is being deleted")
    return extras


def _associate_subnets(
    backend: NetworkFirewallBackend,
    arn: str | None,
    name: str | None,
    subnet_mappings: list[dict[str, str]] | None,
    update_token: str | None,
) -> NetworkFirewallModel:
    """AssociateSubnets: refused while SubnetChangeProtection is on; one subnet per AZ of the firewall's VPC.

    Each new subnet gets its endpoint, which comes up on its own (FIREWALL_MODEL): its AZ shows CREATING and the
    firewall PROVISIONING until then.
    """
    firewall = _checked_for_update(backend, arn, name, update_token)
    extras = _require_not_deleting(backend, firewall)
    if firewall.subnet_change_protection:
        raise _invalid_operation(
            f"Firewall {firewall.firewall_name} has SubnetChangeProtection enabled: turn it off to change subnets"
        )
    if not subnet_mappings:
        raise _invalid_request("SubnetMappings must name at least one subnet")
    taken = {az: subnet_id for az, (subnet_id, _) in extras.endpoints.items()}
    subnet_by_az = _subnets_by_az(backend, firewall.vpc_id, [m["SubnetId"] for m in subnet_mappings], taken)
    for az, subnet_id in subnet_by_az.items():
        extras.endpoints[az] = (subnet_id, _new_endpoint(backend, extras, firewall.vpc_id, subnet_id))
        extras.added[az] = ManagedState(FIREWALL_MODEL, [("PROVISIONING", "READY")])
    firewall.subnet_mappings = firewall.subnet_mappings + copy.deepcopy(subnet_mappings)
    firewall.update_token = _new_token()
    return firewall


def _disassociate_subnets(
    backend: NetworkFirewallBackend,
    arn: str | None,
    name: str | None,
    subnet_ids: list[str] | None,
    update_token: str | None,
) -> NetworkFirewallModel:
    """DisassociateSubnets: refused while SubnetChangeProtection is on; the subnets must be the firewall's.

    The subnets leave SubnetMappings at once; their AZs show DELETING in SyncStates until FIREWALL_DELETE_MODEL
    ends, when their endpoints are deleted.
    """
    firewall = _checked_for_update(backend, arn, name, update_token)
    extras = _require_not_deleting(backend, firewall)
    if firewall.subnet_change_protection:
        raise _invalid_operation(
            f"Firewall {firewall.firewall_name} has SubnetChangeProtection enabled: turn it off to change subnets"
        )
    if not subnet_ids:
        raise _invalid_request("SubnetIds must name at least one subnet")
    az_of = {subnet_id: az for az, (subnet_id, _) in extras.endpoints.items() if az not in extras.removing}
    unknown = [subnet_id for subnet_id in subnet_ids if subnet_id not in az_of]
    if unknown:
        raise _invalid_request(f"Subnet {unknown[0]} is not associated with firewall {firewall.firewall_name}")
    if set(subnet_ids) >= set(az_of):
        # A firewall keeps at least one endpoint: the last one goes with the firewall (DeleteFirewall).
        raise _invalid_request(f"Firewall {firewall.firewall_name} can't lose all of its subnets; delete it instead")
    for subnet_id in subnet_ids:
        extras.added.pop(az_of[subnet_id], None)
        extras.removing[az_of[subnet_id]] = ManagedState(FIREWALL_DELETE_MODEL, [("DELETING", "DELETED")])
    firewall.subnet_mappings = [m for m in firewall.subnet_mappings if m["SubnetId"] not in subnet_ids]
    firewall.update_token = _new_token()
    return firewall


def _associate_firewall_policy(
    backend: NetworkFirewallBackend,
    arn: str | None,
    name: str | None,
    policy_arn: str | None,
    update_token: str | None,
) -> NetworkFirewallModel:
    """AssociateFirewallPolicy: refused while FirewallPolicyChangeProtection is on; the policy must exist.

    The new policy syncs to the endpoints (FIREWALL_MODEL): ConfigurationSyncStateSummary is PENDING until then.
    """
    firewall = _checked_for_update(backend, arn, name, update_token)
    extras = _require_not_deleting(backend, firewall)
    if firewall.firewall_policy_change_protection:
        raise _invalid_operation(
            f"Firewall {firewall.firewall_name} has FirewallPolicyChangeProtection enabled: turn it off to change "
            "its policy"
        )
    if not policy_arn or policy_arn not in _policies(backend):
        raise _invalid_request(f"Firewall policy {policy_arn} does not exist")
    if policy_arn != firewall.firewall_policy_arn:
        _release(backend, [firewall.firewall_policy_arn], "firewall_policy")
        firewall.firewall_policy_arn = policy_arn
        extras.policy_sync = ManagedState(FIREWALL_MODEL, [("PENDING", "IN_SYNC")])
    firewall.update_token = _new_token()
    return firewall


def _attachment_status(extras: _FirewallExtras, az: str, status: str) -> str:
    """One AZ's attachment, given the firewall-wide status of create, describe or delete."""
    if status == "DELETING" or az in extras.removing:
        return "DELETING"
    if status == "PROVISIONING" or (az in extras.added and extras.added[az].status != "READY"):
        return "CREATING"
    return "READY"


def _firewall_status(
    backend: NetworkFirewallBackend, firewall: NetworkFirewallModel, extras: _FirewallExtras, status: str
) -> dict[str, Any]:
    """FirewallStatus: READY only when every attachment is READY and every AZ has the current configuration.

    Faults set by set_firewall_fault() show as AWS shows them: a FAILED or ERROR attachment (no endpoint ID) with
    its StatusMessage, CAPACITY_CONSTRAINED configuration objects, and a firewall that is FAILED, or not READY."""
    # Config lists the policy and each rule group it references by name (botocore: SyncStateConfig is keyed by
    # ResourceName), each at its current UpdateToken, PENDING while its last update syncs.
    syncs = _object_syncs(backend)
    objects = {obj.name: (obj.update_token, obj.arn in syncs and syncs[obj.arn].status != "IN_SYNC")
               for obj in _objects_run(backend, firewall)}
    policy_pending = extras.policy_sync is not None and extras.policy_sync.status != "IN_SYNC"
    sync_states = {}
    all_in_sync = status != "PROVISIONING"
    all_ready = True
    constrained = failed = False
    for az, (subnet_id, endpoint_id) in extras.endpoints.items():
        attachment_status = _attachment_status(extras, az, status)
        fault, message = extras.faults.get(az, (None, ""))
        if fault in ("FAILED", "ERROR"):
            attachment_status = fault  # during a deletion too: AWS failed to delete the endpoint
            failed = failed or fault == "FAILED"
        attachment: dict[str, str] = {"SubnetId": subnet_id, "Status": attachment_status}
        if attachment_status in ("READY", "DELETING") or status == "DELETING":
            # AWS reports the endpoint ID only once the endpoint exists (and until it is gone).
            attachment["EndpointId"] = endpoint_id
        if fault is not None:
            attachment["StatusMessage"] = message
        sync = "PENDING" if attachment_status == "CREATING" or (policy_pending and status != "DELETING") else "IN_SYNC"
        if fault == "CAPACITY_CONSTRAINED" and status != "DELETING":
            sync = "CAPACITY_CONSTRAINED"
            constrained = True
        config = {name: {"SyncStatus": "PENDING" if sync == "IN_SYNC" and updating and status != "DELETING" else sync,
                         "UpdateToken": token} for name, (token, updating) in objects.items()}
        all_in_sync = all_in_sync and sync == "IN_SYNC" and all(c["SyncStatus"] == "IN_SYNC" for c in config.values())
        all_ready = all_ready and attachment_status == "READY"
        sync_states[az] = {"Attachment": attachment, "Config": config}
    if status == "READY" and not (all_ready and all_in_sync):
        status = "PROVISIONING"
    if status != "DELETING" and (failed or _WHOLE_FIREWALL in extras.faults):
        status = "FAILED"
    summary = "CAPACITY_CONSTRAINED" if constrained else "IN_SYNC" if all_in_sync else "PENDING"
    return {"Status": status, "ConfigurationSyncStateSummary": summary, "SyncStates": sync_states}


def _objects_run(backend: NetworkFirewallBackend, firewall: NetworkFirewallModel) -> list[_Policy | _RuleGroup]:
    """The firewall's policy and every rule group the policy references (none while the policy is unknown)."""
    policy = _policies(backend).get(firewall.firewall_policy_arn)
    if policy is None:
        return []
    groups = _rule_groups(backend)
    return [policy, *(groups[arn] for arn in policy.referenced_group_arns() if arn in groups)]


def _firewall_answer(
    backend: NetworkFirewallBackend, firewall: NetworkFirewallModel, extras: _FirewallExtras, status: str
) -> dict[str, Any]:
    """The Firewall and FirewallStatus members shared by create, describe and delete."""
    body = _firewall(firewall)
    body["FirewallId"] = extras.firewall_id
    body["Tags"] = _tags(backend, firewall.arn)
    return {"Firewall": body, "FirewallStatus": _firewall_status(backend, firewall, extras, status)}


def _observe_status(extras: _FirewallExtras) -> str:
    """The status one describe_firewall sees; each describe then moves the lifecycles one tick on."""
    if extras.deletion is not None:
        extras.deletion.advance()
        return "DELETING"
    return str(extras.creation.status)


def _advance(extras: _FirewallExtras) -> None:
    for state in extras.lifecycles():
        state.advance()


# ---------------------------------------------------------------------------------------------------------------
# Logging: AWS applies at most one LogDestinationConfig change per call; moto would replace the whole list.


def _update_logging_configuration(
    self: NetworkFirewallBackend,
    firewall_arn: str | None,
    firewall_name: str | None,
    logging_configuration: dict[str, Any] | None,
) -> NetworkFirewallModel:
    firewall = _get_firewall(self, firewall_arn, firewall_name)
    wanted = copy.deepcopy((logging_configuration or {}).get("LogDestinationConfigs") or [])
    new_by_type: dict[str, dict[str, Any]] = {}
    for index, config in enumerate(wanted):
        log_type = config.get("LogType")
        destination_type = config.get("LogDestinationType")
        if log_type not in _LOG_TYPES:
            raise _invalid_request(f"LogDestinationConfigs[{index}].LogType must be one of {sorted(_LOG_TYPES)}")
        if destination_type not in _LOG_DESTINATION_KEYS:
            raise _invalid_request(f"LogDestinationConfigs[{index}].LogDestinationType {destination_type!r} is invalid")
        if _LOG_DESTINATION_KEYS[destination_type] not in (config.get("LogDestination") or {}):
            raise _invalid_request(
                f"LogDestinationConfigs[{index}].LogDestination needs {_LOG_DESTINATION_KEYS[destination_type]}"
            )
        if log_type in new_by_type:
            raise _invalid_request(f"LogDestinationConfigs holds two {log_type} destinations")
        new_by_type[log_type] = config

    current = (firewall.logging_configs or {}).get("LogDestinationConfigs") or []
    old_by_type = {config["LogType"]: config for config in current}
    added = new_by_type.keys() - old_by_type.keys()
    removed = old_by_type.keys() - new_by_type.keys()
    kept = new_by_type.keys() & old_by_type.keys()
    for log_type in kept:
        if new_by_type[log_type]["LogDestinationType"] != old_by_type[log_type]["LogDestinationType"]:
            raise _invalid_request(
                f"The LogDestinationType of the {log_type} destination can't change: remove it and add it back, "
                "in two calls"
            )
    changed = [t for t in kept if new_by_type[t]["LogDestination"] != old_by_type[t]["LogDestination"]]
    if len(added) + len(removed) + len(changed) > 1:
        raise _invalid_request(
            "UpdateLoggingConfiguration can add, remove or change only one LogDestinationConfig per call "
            f"(this call adds {sorted(added)}, removes {sorted(removed)}, changes {sorted(changed)})"
        )
    firewall.logging_configs = {"LogDestinationConfigs": wanted}
    return firewall


# ---------------------------------------------------------------------------------------------------------------
# Tags, for firewalls, policies and rule groups alike.


def _require_taggable(backend: NetworkFirewallBackend, arn: Any) -> str:
    _finish_deletions(backend)
    if not isinstance(arn, str) or not (
        arn in backend.firewalls or arn in _policies(backend) or arn in _rule_groups(backend)
    ):
        raise _not_found(f"Resource {arn}")
    return arn


# ---------------------------------------------------------------------------------------------------------------
# Response methods: parse the request, call the functions above, shape the answer. Set on NetworkFirewallResponse,
# where moto's dispatcher finds them by action name.


def _r_create_rule_group(self: NetworkFirewallResponse) -> ActionResult:
    backend = self.networkfirewall_backend
    group = _create_rule_group(
        backend,
        name=self._get_param("RuleGroupName"),
        rule_type=self._get_param("Type"),
        capacity=self._get_param("Capacity"),
        rule_group=self._get_param("RuleGroup"),
        rules=self._get_param("Rules"),
        description=self._get_param("Description"),
        tags=self._get_param("Tags"),
        encryption=self._get_param("EncryptionConfiguration"),
        dry_run=bool(self._get_param("DryRun")),
    )
    return ActionResult({"UpdateToken": group.update_token, "RuleGroupResponse": _rule_group_response(backend, group)})


def _r_describe_rule_group(self: NetworkFirewallResponse) -> ActionResult:
    backend = self.networkfirewall_backend
    group = _find_rule_group(
        backend, self._get_param("RuleGroupArn"), self._get_param("RuleGroupName"), self._get_param("Type")
    )
    return ActionResult(
        {
            "UpdateToken": group.update_token,
            "RuleGroup": copy.deepcopy(group.rule_group),
            "RuleGroupResponse": _rule_group_response(backend, group),
        }
    )


def _r_update_rule_group(self: NetworkFirewallResponse) -> ActionResult:
    backend = self.networkfirewall_backend
    group = _update_rule_group(
        backend,
        arn=self._get_param("RuleGroupArn"),
        name=self._get_param("RuleGroupName"),
        rule_type=self._get_param("Type"),
        update_token=self._get_param("UpdateToken"),
        rule_group=self._get_param("RuleGroup"),
        rules=self._get_param("Rules"),
        description=self._get_param("Description"),
        encryption=self._get_param("EncryptionConfiguration"),
        dry_run=bool(self._get_param("DryRun")),
    )
    return ActionResult({"UpdateToken": group.update_token, "RuleGroupResponse": _rule_group_response(backend, group)})


def _r_delete_rule_group(self: NetworkFirewallResponse) -> ActionResult:
    backend = self.networkfirewall_backend
    group = _delete_rule_group(
        backend, self._get_param("RuleGroupArn"), self._get_param("RuleGroupName"), self._get_param("Type")
    )
    return ActionResult({"RuleGroupResponse": _rule_group_response(backend, group, status="DELETING")})


def _r_list_rule_groups(self: NetworkFirewallResponse) -> ActionResult:
    backend = self.networkfirewall_backend
    rule_type = self._get_param("Type")
    # Only the account's own groups are modelled; AWS-managed groups (Scope=MANAGED) are not.
    groups = [] if self._get_param("Scope") == "MANAGED" else list(_rule_groups(backend).values())
    items = [
        {"Name": g.name, "Arn": g.arn}
        for g in sorted(groups, key=lambda g: (g.name, g.type))
        if rule_type is None or g.type == rule_type
    ]
    page = _paginate(items, self._get_param("NextToken"), self._get_param("MaxResults"))
    return ActionResult({"RuleGroups": page["Items"], "NextToken": page.get("NextToken")})


def _r_create_firewall_policy(self: NetworkFirewallResponse) -> ActionResult:
    backend = self.networkfirewall_backend
    policy = _create_firewall_policy(
        backend,
        name=self._get_param("FirewallPolicyName"),
        firewall_policy=self._get_param("FirewallPolicy"),
        description=self._get_param("Description"),
        tags=self._get_param("Tags"),
        encryption=self._get_param("EncryptionConfiguration"),
        dry_run=bool(self._get_param("DryRun")),
    )
    return ActionResult(
        {"UpdateToken": policy.update_token, "FirewallPolicyResponse": _policy_response(backend, policy)}
    )


def _r_describe_firewall_policy(self: NetworkFirewallResponse) -> ActionResult:
    backend = self.networkfirewall_backend
    _finish_deletions(backend)
    policy = _find_policy(backend, self._get_param("FirewallPolicyArn"), self._get_param("FirewallPolicyName"))
    return ActionResult(
        {
            "UpdateToken": policy.update_token,
            "FirewallPolicy": copy.deepcopy(policy.firewall_policy),
            "FirewallPolicyResponse": _policy_response(backend, policy),
        }
    )


def _r_update_firewall_policy(self: NetworkFirewallResponse) -> ActionResult:
    backend = self.networkfirewall_backend
    policy = _update_firewall_policy(
        backend,
        arn=self._get_param("FirewallPolicyArn"),
        name=self._get_param("FirewallPolicyName"),
        update_token=self._get_param("UpdateToken"),
        firewall_policy=self._get_param("FirewallPolicy"),
        description=self._get_param("Description"),
        encryption=self._get_param("EncryptionConfiguration"),
        dry_run=bool(self._get_param("DryRun")),
    )
    return ActionResult(
        {"UpdateToken": policy.update_token, "FirewallPolicyResponse": _policy_response(backend, policy)}
    )


def _r_delete_firewall_policy(self: NetworkFirewallResponse) -> ActionResult:
    backend = self.networkfirewall_backend
    policy = _delete_firewall_policy(
        backend, self._get_param("FirewallPolicyArn"), self._get_param("FirewallPolicyName")
    )
    return ActionResult({"FirewallPolicyResponse": _policy_response(backend, policy, status="DELETING")})


def _r_list_firewall_policies(self: NetworkFirewallResponse) -> ActionResult:
    backend = self.networkfirewall_backend
    items = [{"Name": p.name, "Arn": p.arn} for p in sorted(_policies(backend).values(), key=lambda p: p.name)]
    page = _paginate(items, self._get_param("NextToken"), self._get_param("MaxResults"))
    return ActionResult({"FirewallPolicies": page["Items"], "NextToken": page.get("NextToken")})


def _r_create_firewall(self: NetworkFirewallResponse) -> ActionResult:
    backend = self.networkfirewall_backend
    firewall = backend.create_firewall(
        firewall_name=self._get_param("FirewallName"),
        firewall_policy_arn=self._get_param("FirewallPolicyArn"),
        vpc_id=self._get_param("VpcId"),
        subnet_mappings=self._get_param("SubnetMappings") or [],
        delete_protection=self._get_bool_param("DeleteProtection"),
        subnet_change_protection=self._get_bool_param("SubnetChangeProtection"),
        firewall_policy_change_protection=self._get_bool_param("FirewallPolicyChangeProtection"),
        description=self._get_param("Description"),
        tags=self._get_param("Tags"),
        encryption_configuration=self._get_param("EncryptionConfiguration"),
        enabled_analysis_types=self._get_param("EnabledAnalysisTypes"),
    )
    # AWS answers a create with PROVISIONING and no endpoint IDs, whatever the progression: callers must describe.
    return ActionResult(_firewall_answer(backend, firewall, _extras(backend, firewall), "PROVISIONING"))


def _r_describe_firewall(self: NetworkFirewallResponse) -> ActionResult:
    backend = self.networkfirewall_backend
    firewall = _get_firewall(backend, self._get_param("FirewallArn"), self._get_param("FirewallName"))
    extras = _extras(backend, firewall)
    answer = _firewall_answer(backend, firewall, extras, _observe_status(extras))
    _advance(extras)
    syncs = _object_syncs(backend)
    for obj in _objects_run(backend, firewall):
        if obj.arn in syncs:
            syncs[obj.arn].advance()
    return ActionResult({"UpdateToken": firewall.update_token, **answer})


def _r_delete_firewall(self: NetworkFirewallResponse) -> ActionResult:
    backend = self.networkfirewall_backend
    firewall = _get_firewall(backend, self._get_param("FirewallArn"), self._get_param("FirewallName"))
    extras = _start_deletion(backend, firewall)
    answer = _firewall_answer(backend, firewall, extras, "DELETING")
    _finish_deletions(backend)
    return ActionResult(answer)


def _protection_updater(flag: str) -> Callable[[NetworkFirewallResponse], ActionResult]:
    """The response method of the Update...Protection action that sets `flag`."""

    def update(self: NetworkFirewallResponse) -> ActionResult:
        firewall = _update_protection(
            self.networkfirewall_backend,
            arn=self._get_param("FirewallArn"),
            name=self._get_param("FirewallName"),
            flag=flag,
            value=self._get_param(flag),
            update_token=self._get_param("UpdateToken"),
        )
        return ActionResult(
            {
                "FirewallArn": firewall.arn,
                "FirewallName": firewall.firewall_name,
                flag: getattr(firewall, _PROTECTIONS[flag]),
                "UpdateToken": firewall.update_token,
            }
        )

    return update


def _subnets_answer(firewall: NetworkFirewallModel) -> ActionResult:
    return ActionResult(
        {
            "FirewallArn": firewall.arn,
            "FirewallName": firewall.firewall_name,
            "SubnetMappings": firewall.subnet_mappings,
            "UpdateToken": firewall.update_token,
        }
    )


def _r_associate_subnets(self: NetworkFirewallResponse) -> ActionResult:
    firewall = _associate_subnets(
        self.networkfirewall_backend,
        arn=self._get_param("FirewallArn"),
        name=self._get_param("FirewallName"),
        subnet_mappings=self._get_param("SubnetMappings"),
        update_token=self._get_param("UpdateToken"),
    )
    return _subnets_answer(firewall)


def _r_disassociate_subnets(self: NetworkFirewallResponse) -> ActionResult:
    firewall = _disassociate_subnets(
        self.networkfirewall_backend,
        arn=self._get_param("FirewallArn"),
        name=self._get_param("FirewallName"),
        subnet_ids=self._get_param("SubnetIds"),
        update_token=self._get_param("UpdateToken"),
    )
    return _subnets_answer(firewall)


def _r_associate_firewall_policy(self: NetworkFirewallResponse) -> ActionResult:
    firewall = _associate_firewall_policy(
        self.networkfirewall_backend,
        arn=self._get_param("FirewallArn"),
        name=self._get_param("FirewallName"),
        policy_arn=self._get_param("FirewallPolicyArn"),
        update_token=self._get_param("UpdateToken"),
    )
    return ActionResult(
        {
            "FirewallArn": firewall.arn,
            "FirewallName": firewall.firewall_name,
            "FirewallPolicyArn": firewall.firewall_policy_arn,
            "UpdateToken": firewall.update_token,
        }
    )


def _r_tag_resource(self: NetworkFirewallResponse) -> ActionResult:
    backend = self.networkfirewall_backend
    arn = _require_taggable(backend, self._get_param("ResourceArn"))
    backend.tagger.tag_resource(arn, self._get_param("Tags") or [])
    return ActionResult({})


def _r_untag_resource(self: NetworkFirewallResponse) -> ActionResult:
    backend = self.networkfirewall_backend
    arn = _require_taggable(backend, self._get_param("ResourceArn"))
    backend.tagger.untag_resource_using_names(arn, self._get_param("TagKeys") or [])
    return ActionResult({})


def _r_list_tags_for_resource(self: NetworkFirewallResponse) -> ActionResult:
    backend = self.networkfirewall_backend
    arn = _require_taggable(backend, self._get_param("ResourceArn"))
    return ActionResult({"Tags": _tags(backend, arn)})


# ---------------------------------------------------------------------------------------------------------------
# Installation and the compatibility check behind the guard test.

_RESPONSE_PATCHES: dict[str, Callable[[NetworkFirewallResponse], ActionResult]] = {
    "create_rule_group": _r_create_rule_group,
    "describe_rule_group": _r_describe_rule_group,
    "update_rule_group": _r_update_rule_group,
    "delete_rule_group": _r_delete_rule_group,
    "list_rule_groups": _r_list_rule_groups,
    "create_firewall_policy": _r_create_firewall_policy,
    "describe_firewall_policy": _r_describe_firewall_policy,
    "update_firewall_policy": _r_update_firewall_policy,
    "delete_firewall_policy": _r_delete_firewall_policy,
    "list_firewall_policies": _r_list_firewall_policies,
    "delete_firewall": _r_delete_firewall,
    "update_firewall_delete_protection": _protection_updater("DeleteProtection"),
    "update_subnet_change_protection": _protection_updater("SubnetChangeProtection"),
    "update_firewall_policy_change_protection": _protection_updater("FirewallPolicyChangeProtection"),
    "associate_subnets": _r_associate_subnets,
    "disassociate_subnets": _r_disassociate_subnets,
    "associate_firewall_policy": _r_associate_firewall_policy,
    "tag_resource": _r_tag_resource,
    "untag_resource": _r_untag_resource,
    "list_tags_for_resource": _r_list_tags_for_resource,
    "create_firewall": _r_create_firewall,
    "describe_firewall": _r_describe_firewall,
}
_BACKEND_PATCHES: dict[str, Callable[..., Any]] = {
    "create_firewall": _create_firewall,
    "_get_firewall": _get_firewall,
    "list_firewalls": _list_firewalls,
    "update_logging_configuration": _update_logging_configuration,
}

#: Response methods moto 5.2.5 has and install() replaces.
REPLACED_ACTIONS = ("create_firewall", "describe_firewall")
#: Response methods (actions) moto 5.2.5 lacks and install() adds.
ADDED_ACTIONS = tuple(name for name in _RESPONSE_PATCHES if name not in REPLACED_ACTIONS)

# Attributes of moto's NetworkFirewallModel that this module reads or writes.
_MODEL_ATTRIBUTES = (
    "firewall_name",
    "arn",
    "firewall_policy_arn",
    "vpc_id",
    "subnet_mappings",
    "delete_protection",
    "subnet_change_protection",
    "firewall_policy_change_protection",
    "update_token",
    "logging_configs",
)
_EC2_CREATE_ENDPOINT_PARAMS = (
    "vpc_id",
    "service_name",
    "endpoint_type",
    "policy_document",
    "route_table_ids",
    "subnet_ids",
)

_ORIGINALS: dict[str, Any] = {}
_INSTALLED_MARKER = "_provisioner_sandbox_network_firewall"
_install_lock = threading.Lock()


def _missing_internals() -> list[str]:
    problems = []
    response_methods, _ = class_members(_nfw_responses, "NetworkFirewallResponse")
    backend_methods, backend_attributes = class_members(_nfw_models, "NetworkFirewallBackend")
    _, model_attributes = class_members(_nfw_models, "NetworkFirewallModel")
    for name in REPLACED_ACTIONS:
        if name not in response_methods:
            problems.append(f"moto's NetworkFirewallResponse no longer defines {name}")
    for name in _BACKEND_PATCHES:
        if name not in backend_methods:
            problems.append(f"moto's NetworkFirewallBackend no longer defines {name}")
    for name in ("firewalls", "tagger"):
        if name not in backend_attributes:
            problems.append(f"moto's NetworkFirewallBackend no longer sets self.{name}")
    for name in _MODEL_ATTRIBUTES:
        if name not in model_attributes:
            problems.append(f"moto's NetworkFirewallModel no longer sets self.{name}")
    endpoint_params = inspect.signature(EC2Backend.create_vpc_endpoint).parameters
    for name in _EC2_CREATE_ENDPOINT_PARAMS:
        if name not in endpoint_params:
            problems.append(f"moto's EC2Backend.create_vpc_endpoint no longer takes {name}")
    for name in ("delete_vpc_endpoints", "get_vpc", "get_subnet"):
        if not hasattr(EC2Backend, name):
            problems.append(f"moto's EC2Backend no longer has {name}")
    if not hasattr(ManagedState, "advance"):
        problems.append("moto's ManagedState no longer has advance()")
    return problems


def compatibility_problems() -> list[str]:
    """Why this module may no longer fit the installed moto; empty when it was written for exactly this one.

    Checks the pinned version, that moto still defines every internal name patched here, and that moto has not
    started implementing an action added here (then the emulation should be revisited, not stacked on top).
    """
    problems = []
    if moto.__version__ != SUPPORTED_MOTO_VERSION:
        problems.append(f"moto is {moto.__version__}; this module was written against {SUPPORTED_MOTO_VERSION}")
    response_methods, _ = class_members(_nfw_responses, "NetworkFirewallResponse")
    problems += [f"moto now implements {name} itself" for name in ADDED_ACTIONS if name in response_methods]
    return problems + _missing_internals()


# -- the Resource Groups Tagging API -----------------------------------------------------------------------------
# moto's GetResources asks every backend that mixes in TaggableResourcesMixin (moto/core/resource_tagging.py) for
# its resources; NetworkFirewallBackend does not, so install() makes the service's backends instances of this
# subclass. AWS names the types as the ARNs write them: `network-firewall:stateful-rulegroup`, `:firewall-policy`,
# `:firewall`.


class TaggableNetworkFirewallBackend(NetworkFirewallBackend, TaggableResourcesMixin):
    """moto's Network Firewall backend (with this module's rule groups and policies), taking part in GetResources."""

    SERVICE_NAMESPACE = "network-firewall"
    # moto finds a backend's URL table by the module its class is defined in (BaseBackend._url_module).
    __module__ = NetworkFirewallBackend.__module__

    def iter_tagged_resources(self) -> Iterator[TaggedResource]:
        arns = [*(g.arn for g in _rule_groups(self).values()), *(p.arn for p in _policies(self).values()),
                *self.firewalls]
        for arn in sorted(arns):
            yield TaggedResource(arn=arn, tags=self.tagger.get_tag_dict_for_resource(arn),
                                 resource_type="network-firewall:" + arn.split(":", 5)[5].split("/", 1)[0])


def _make_taggable() -> None:
    """New backends of the service are made of the taggable class; ones made before install() become it."""
    networkfirewall_backends.backend = TaggableNetworkFirewallBackend
    for account_backends in networkfirewall_backends.values():
        account_backends.backend = TaggableNetworkFirewallBackend
        for backend in account_backends.values():
            backend.__class__ = TaggableNetworkFirewallBackend


def install() -> None:
    """Patch moto's Network Firewall in this process; safe to call more than once.

    Call it before the first request: in `mock_aws()` tests, or in the process that runs a ThreadedMotoServer or
    `moto.server.main`. Raises RuntimeError if moto lacks an internal name the patches need.
    """
    with _install_lock:
        if getattr(NetworkFirewallResponse, _INSTALLED_MARKER, False):
            return
        problems = _missing_internals()
        if problems:
            raise RuntimeError("cannot emulate Network Firewall on this moto: " + "; ".join(problems))
        for name, function in _BACKEND_PATCHES.items():
            _ORIGINALS[name] = getattr(NetworkFirewallBackend, name)
            setattr(NetworkFirewallBackend, name, function)
        for name, method in _RESPONSE_PATCHES.items():
            setattr(NetworkFirewallResponse, name, method)
        state_manager.register_default_transition(FIREWALL_MODEL, {"progression": "immediate"})
        state_manager.register_default_transition(FIREWALL_DELETE_MODEL, {"progression": "immediate"})
        state_manager.register_default_transition(CONFIG_SYNC_MODEL, {"progression": "immediate"})
        _make_taggable()
        setattr(NetworkFirewallResponse, _INSTALLED_MARKER, True)
