"""Route 53 Resolver DNS Firewall and query logging for the sandbox: what moto 5.2.5 lacks, patched into moto's classes.

moto 5.2.5 has Resolver endpoints, rules and query logging configurations, but no DNS Firewall at all (domain lists,
rule groups, rules, VPC associations, the per-VPC fail-open setting), and its query logging lacks
DeleteResolverQueryLogConfig and DisassociateResolverQueryLogConfig, refuses a repeated CreatorRequestId instead of
answering with what the first request made, cannot tag or list the tags of a configuration, answers a
duplicate VPC association with the wrong error, and takes no part in the Resource Groups Tagging API (GetResources
never lists a Resolver object). `install()` adds and corrects these, with the validation AWS applies and its error
codes.

The technique is network_firewall.py's: moto looks response methods up by action name on
`Route53ResolverResponse` at dispatch time, so methods set on that class serve both `mock_aws()` and an
in-process `ThreadedMotoServer`. Extra state lives in an attribute created lazily on the backend instance;
`BaseBackend.reset()` replaces the instance `__dict__`, so `mock_aws` stop and `POST /moto-api/reset` clear it
together with moto's own state.

Lifecycles use moto's `ManagedState`, registered with the progression "immediate": an association answers
UPDATING (AWS's status while it is applied) and is COMPLETE on the next read; a disassociated one answers DELETING
and is gone on the next read; a domain list answers UPDATING to UpdateFirewallDomains and is COMPLETE on the next
read. A test or the sandbox's latency model makes these visible with
`state_manager.set_transition(ASSOCIATION_MODEL, {"progression": "manual", "times": n})` (n reads UPDATING), likewise
ASSOCIATION_DELETE_MODEL and DOMAIN_LIST_MODEL, or `{"progression": "time", "seconds": s}`.

Not emulated: DNS resolution itself (no query is ever filtered), rules of the FirewallRuleType kinds (partner,
content-category and auto-allowlist rules; refused with a ValidationException that says so), ImportFirewallDomains,
the Batch*FirewallRule calls, sharing through RAM, and service quotas.
"""

from __future__ import annotations

import copy
import re
import secrets
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import moto
from moto.core.exceptions import JsonRESTError
from moto.core.resource_tagging import TaggableResourcesMixin, TaggedResource
from moto.core.responses import ActionResult
from moto.ec2.exceptions import InvalidVPCIdError
from moto.ec2.models import ec2_backends
from moto.moto_api import state_manager
from moto.moto_api._internal.managed_state_model import ManagedState
from moto.route53resolver import models as _resolver_models
from moto.route53resolver import responses as _resolver_responses
from moto.route53resolver.exceptions import RRValidationException
from moto.route53resolver.models import (
    ResolverQueryLogConfig,
    ResolverQueryLogConfigAssociation,
    Route53ResolverBackend,
)
from moto.route53resolver.responses import Route53ResolverResponse

from provisioner.sandbox.moto_source import class_members

__all__ = [
    "ADDED_ACTIONS",
    "ASSOCIATION_DELETE_MODEL",
    "ASSOCIATION_MODEL",
    "DOMAIN_LIST_MODEL",
    "MANAGED_DOMAIN_LISTS",
    "SUPPORTED_MOTO_VERSION",
    "TaggableRoute53ResolverBackend",
    "compatibility_problems",
    "install",
]

#: ManagedState model of a rule group association being applied: UPDATING -> COMPLETE, advanced by each read.
ASSOCIATION_MODEL = "route53resolver::firewall_rule_group_association"
#: ManagedState model of a disassociation: DELETING -> gone (reads raise ResourceNotFoundException).
ASSOCIATION_DELETE_MODEL = "route53resolver::firewall_rule_group_association_delete"
#: ManagedState model of a domain list update: UPDATING -> COMPLETE, advanced by each GetFirewallDomainList.
DOMAIN_LIST_MODEL = "route53resolver::firewall_domain_list"

#: The patches reach into moto's internal names; they were written against this release only.
SUPPORTED_MOTO_VERSION = "5.2.5"

#: The AWS-managed threat lists every account sees in ListFirewallDomainLists (usable in rules, read-only).
MANAGED_DOMAIN_LISTS = (
    "AWSManagedDomainsAggregateThreatList",
    "AWSManagedDomainsAmazonGuardDutyThreatList",
    "AWSManagedDomainsBotnetCommandandControl",
    "AWSManagedDomainsMalwareDomainList",
)
_MANAGED_OWNER = "Route 53 Resolver DNS Firewall"

# The API's shapes (botocore's route53resolver service model): botocore checks required members and minimums on
# the client; maximums, patterns and enums are the service's to check.
_NAME_PATTERN = r"(?!^[0-9]+$)([a-zA-Z0-9\-_' ']+)"
_NAME = re.compile(rf"^{_NAME_PATTERN}$")
_NAME_MAX = 64
_ACTIONS = ("ALLOW", "BLOCK", "ALERT")
_BLOCK_RESPONSES = ("NODATA", "NXDOMAIN", "OVERRIDE")
_BLOCK_OVERRIDE_DNS_TYPES = ("CNAME",)
_BLOCK_OVERRIDE_TTL_MAX = 604_800
_BLOCK_OVERRIDE_DOMAIN_MAX = 255
_REDIRECTION_ACTIONS = ("INSPECT_REDIRECTION_DOMAIN", "TRUST_REDIRECTION_DOMAIN")
_THREAT_PROTECTIONS = ("DGA", "DNS_TUNNELING", "DICTIONARY_DGA")
_CONFIDENCE_THRESHOLDS = ("LOW", "MEDIUM", "HIGH")
_QTYPES = ("A", "AAAA", "CAA", "CNAME", "DS", "MX", "NAPTR", "NS", "PTR", "SOA", "SPF", "SRV", "TXT")
_QTYPE_NUMBER = re.compile(r"^TYPE([1-9][0-9]{0,4})$")
_MUTATION_PROTECTIONS = ("ENABLED", "DISABLED")
_FAIL_OPEN = ("ENABLED", "DISABLED", "USE_LOCAL_RESOURCE_SETTING")
_ASSOCIATION_STATUSES = ("COMPLETE", "DELETING", "UPDATING")
_DOMAIN_OPERATIONS = ("ADD", "REMOVE", "REPLACE", "DENY")
_MAX_TAGS = 200
# UpdateFirewallDomains takes at most 1,000 domains a call; each domain is 1-255 characters, letters, digits and
# hyphens in dot-separated labels, optionally after a leading "*." wildcard; "*" alone matches every name.
_DOMAINS_PER_CALL = 1000
_DOMAIN_MAX = 255
_DOMAIN = re.compile(r"^(\*|(\*\.)?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.?)$")
# AWS refuses 100 ("reserved") and answers "Provide a number between 100 and 9900" (hashicorp/
# terraform-provider-aws#43694): only the numbers strictly between the two are taken.
_ASSOCIATION_PRIORITIES = range(101, 9900)
_PAGE_DEFAULT = 100


# ---------------------------------------------------------------------------------------------------------------
# Errors: AWS's codes (all HTTP 400); the messages follow AWS's "[RSLVR-nnnnn] ... Trace Id" form.


def _trace_id() -> str:
    return f"1-{secrets.token_hex(4)}-{secrets.token_hex(12)}"


def _validation(message: str) -> JsonRESTError:
    return JsonRESTError("ValidationException", f"{message} Trace Id: '{_trace_id()}'")


def _conflict(message: str) -> JsonRESTError:
    return JsonRESTError("ConflictException", f"{message} Trace Id: '{_trace_id()}'")


def _not_found(resource_id: Any) -> JsonRESTError:
    return JsonRESTError(
        "ResourceNotFoundException",
        f"[RSLVR-00908] Can't find the resource with ID '{resource_id}'. Trace Id: '{_trace_id()}'",
    )


def _constraint(member: str, value: Any, constraint: str) -> RRValidationException:
    """A shape constraint broken: AWS's "1 validation error detected: Value ... at ... failed to satisfy"."""
    return RRValidationException([(member, value, constraint)])


def _check_enum(member: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise _constraint(member, value, f"satisfy enum value set: [{', '.join(allowed)}]")


def _check_name(value: Any, member: str = "name") -> str:
    if not isinstance(value, str) or len(value) > _NAME_MAX:
        raise _constraint(member, value, f"have length less than or equal to {_NAME_MAX}")
    if not _NAME.match(value):
        raise _constraint(member, value, f"satisfy regular expression pattern: {_NAME_PATTERN}")
    return value


def _check_max_results(value: Any, minimum: int, maximum: int) -> int:
    if value is None:
        return min(_PAGE_DEFAULT, maximum)
    if not isinstance(value, int) or not minimum <= value <= maximum:
        raise _constraint("maxResults", value, f"have value between {minimum} and {maximum}")
    return value


# ---------------------------------------------------------------------------------------------------------------
# State kept beside moto's, on the backend instance.


def _now() -> str:
    # Rfc3339TimeString, as AWS writes it.
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _new_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(9)[:17]}"


def _drop_none(item: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in item.items() if value is not None}


@dataclass
class _DomainList:
    id: str
    arn: str
    name: str
    creator_request_id: str | None
    domains: list[str] = field(default_factory=list)
    managed: bool = False
    created: str = field(default_factory=_now)
    modified: str = field(default_factory=_now)
    update: ManagedState | None = None

    @property
    def status(self) -> str:
        return "UPDATING" if self.update is not None and self.update.status != "COMPLETE" else "COMPLETE"

    def status_message(self, status: str) -> str:
        if status == "UPDATING":
            return "Updating the Firewall Domain List"
        return "Finished domain list update" if self.update is not None else "Created Firewall Domain List"

    def describe(self, status: str | None = None) -> dict[str, Any]:
        status = status or self.status
        described = {
            "Id": self.id,
            "Arn": self.arn,
            "Name": self.name,
            "DomainCount": None if self.managed else len(self.domains),
            "Status": status,
            "StatusMessage": self.status_message(status),
            "CreatorRequestId": self.creator_request_id,
            "CreationTime": self.created,
            "ModificationTime": self.modified,
        }
        if self.managed:
            described.update(ManagedOwnerName=_MANAGED_OWNER, ManagedListType="THREAT")
        return _drop_none(described)

    def metadata(self) -> dict[str, Any]:
        described = self.describe()
        keys = ("Id", "Arn", "Name", "CreatorRequestId", "ManagedOwnerName", "ManagedListType", "Status")
        return {key: described[key] for key in keys if key in described}


@dataclass
class _Rule:
    group_id: str
    name: str
    priority: int
    action: str
    creator_request_id: str
    domain_list_id: str | None = None
    threat_protection_id: str | None = None
    dns_threat_protection: str | None = None
    confidence_threshold: str | None = None
    block_response: str | None = None
    block_override_domain: str | None = None
    block_override_dns_type: str | None = None
    block_override_ttl: int | None = None
    redirection_action: str = "INSPECT_REDIRECTION_DOMAIN"
    qtype: str | None = None
    created: str = field(default_factory=_now)
    modified: str = field(default_factory=_now)

    @property
    def source(self) -> str:
        return str(self.domain_list_id or self.threat_protection_id)

    def describe(self) -> dict[str, Any]:
        return _drop_none(
            {
                "FirewallRuleGroupId": self.group_id,
                "FirewallDomainListId": self.domain_list_id,
                "FirewallThreatProtectionId": self.threat_protection_id,
                "Name": self.name,
                "Priority": self.priority,
                "Action": self.action,
                "BlockResponse": self.block_response,
                "BlockOverrideDomain": self.block_override_domain,
                "BlockOverrideDnsType": self.block_override_dns_type,
                "BlockOverrideTtl": self.block_override_ttl,
                "CreatorRequestId": self.creator_request_id,
                "CreationTime": self.created,
                "ModificationTime": self.modified,
                "FirewallDomainRedirectionAction": self.redirection_action,
                "Qtype": self.qtype,
                "DnsThreatProtection": self.dns_threat_protection,
                "ConfidenceThreshold": self.confidence_threshold,
                "Status": "COMPLETE",
            }
        )


@dataclass
class _RuleGroup:
    id: str
    arn: str
    name: str
    owner_id: str
    creator_request_id: str
    rules: list[_Rule] = field(default_factory=list)
    created: str = field(default_factory=_now)
    modified: str = field(default_factory=_now)

    def describe(self, status: str = "COMPLETE") -> dict[str, Any]:
        return {
            "Id": self.id,
            "Arn": self.arn,
            "Name": self.name,
            "RuleCount": len(self.rules),
            "Status": status,
            "StatusMessage": "Deleting Firewall Rule Group" if status == "DELETING" else "Created Firewall Rule Group",
            "OwnerId": self.owner_id,
            "CreatorRequestId": self.creator_request_id,
            "ShareStatus": "NOT_SHARED",
            "CreationTime": self.created,
            "ModificationTime": self.modified,
        }

    def metadata(self) -> dict[str, Any]:
        keys = ("Id", "Arn", "Name", "OwnerId", "CreatorRequestId", "ShareStatus")
        described = self.describe()
        return {key: described[key] for key in keys}


@dataclass
class _Association:
    id: str
    arn: str
    group_id: str
    vpc_id: str
    name: str
    priority: int
    mutation_protection: str
    creator_request_id: str
    change: ManagedState
    deletion: ManagedState | None = None
    created: str = field(default_factory=_now)
    modified: str = field(default_factory=_now)

    @property
    def status(self) -> str:
        if self.deletion is not None:
            return "DELETING"
        return "COMPLETE" if self.change.status == "COMPLETE" else "UPDATING"

    def describe(self, status: str | None = None) -> dict[str, Any]:
        status = status or self.status
        messages = {
            "UPDATING": "Creating Firewall Rule Group Association",
            "COMPLETE": "Finished rule group association update",
            "DELETING": "Deleting the Firewall Rule Group Association",
        }
        return {
            "Id": self.id,
            "Arn": self.arn,
            "FirewallRuleGroupId": self.group_id,
            "VpcId": self.vpc_id,
            "Name": self.name,
            "Priority": self.priority,
            "MutationProtection": self.mutation_protection,
            "Status": status,
            "StatusMessage": messages[status],
            "CreatorRequestId": self.creator_request_id,
            "CreationTime": self.created,
            "ModificationTime": self.modified,
        }

    def advance(self) -> None:
        self.change.advance()
        if self.deletion is not None:
            self.deletion.advance()


@dataclass
class _FirewallConfig:
    id: str
    vpc_id: str
    owner_id: str
    fail_open: str = "DISABLED"

    def describe(self) -> dict[str, Any]:
        return {"Id": self.id, "ResourceId": self.vpc_id, "OwnerId": self.owner_id, "FirewallFailOpen": self.fail_open}


@dataclass
class _State:
    domain_lists: dict[str, _DomainList] = field(default_factory=dict)
    rule_groups: dict[str, _RuleGroup] = field(default_factory=dict)
    associations: dict[str, _Association] = field(default_factory=dict)
    configs: dict[str, _FirewallConfig] = field(default_factory=dict)  # by VPC ID
    # (kind, CreatorRequestId) -> (the request, the ID of what it made)
    requests: dict[tuple[str, str], tuple[Any, str]] = field(default_factory=dict)

    def arns(self) -> set[str]:
        """The DNS Firewall ARNs this account may tag (AWS-managed domain lists are not its own)."""
        return (
            {d.arn for d in self.domain_lists.values() if not d.managed}
            | {g.arn for g in self.rule_groups.values()}
            | {a.arn for a in self.associations.values()}
        )


def _arn(backend: Route53ResolverBackend, kind: str, resource_id: str) -> str:
    return f"arn:aws:route53resolver:{backend.region_name}:{backend.account_id}:{kind}/{resource_id}"


def _state(backend: Route53ResolverBackend) -> _State:
    # An attribute of the backend instance, so that moto's reset (which replaces __dict__) clears it.
    state = backend.__dict__.get("_sandbox_dns_firewall")
    if state is None:
        state = _State()
        for name in MANAGED_DOMAIN_LISTS:
            list_id = _new_id("rslvr-fdl")
            state.domain_lists[list_id] = _DomainList(
                id=list_id,
                arn=_arn(backend, "firewall-domain-list", list_id),
                name=name,
                creator_request_id=None,
                managed=True,
            )
        backend.__dict__["_sandbox_dns_firewall"] = state
    assert isinstance(state, _State)
    return state


def _repeated(state: _State, kind: str, creator_request_id: Any, request: Any, live: dict[str, Any]) -> Any | None:
    """What an earlier create with this CreatorRequestId made, if it still exists (AWS answers a retried request
    with it instead of making a second one); None when the request is new. The same ID with another request is
    refused."""
    if not isinstance(creator_request_id, str):
        raise _constraint("creatorRequestId", creator_request_id, "have length greater than or equal to 1")
    known = state.requests.get((kind, creator_request_id))
    if known is None or known[1] not in live:
        return None
    if known[0] != request:
        raise _validation(
            f"[RSLVR-00906] The CreatorRequestId '{creator_request_id}' was already used for a different request."
        )
    return live[known[1]]


def _remember(state: _State, kind: str, creator_request_id: str, request: Any, resource_id: str) -> None:
    state.requests[(kind, creator_request_id)] = (request, resource_id)


def _checked_tags(backend: Route53ResolverBackend, tags: Any) -> list[dict[str, str]]:
    tags = tags or []
    problem = backend.tagger.validate_tags(tags, limit=_MAX_TAGS)
    if problem:
        raise JsonRESTError("ValidationException", problem)
    return list(tags)


def _require_vpc(backend: Route53ResolverBackend, vpc_id: Any) -> str:
    try:
        ec2_backends[backend.account_id][backend.region_name].get_vpc(vpc_id)
    except InvalidVPCIdError:
        raise _validation(f"[RSLVR-02025] Can't find the resource with ID : '{vpc_id}'.") from None
    return str(vpc_id)


def _page(items: list[Any], next_token: Any, max_results: int) -> tuple[list[Any], str | None]:
    try:
        start = int(next_token) if next_token else 0
    except ValueError:
        raise _validation("[RSLVR-00101] The NextToken is not valid.") from None
    end = start + max_results
    return items[start:end], (str(end) if end < len(items) else None)


# ---------------------------------------------------------------------------------------------------------------
# Domain lists.


def _domain_list(state: _State, list_id: Any) -> _DomainList:
    if list_id not in state.domain_lists:
        raise _not_found(list_id)
    return state.domain_lists[list_id]


def _create_domain_list(backend: Route53ResolverBackend, creator_request_id: Any, name: Any, tags: Any) -> _DomainList:
    state = _state(backend)
    request = (name,)
    repeated = _repeated(state, "domain-list", creator_request_id, request, state.domain_lists)
    if repeated is not None:
        return repeated  # type: ignore[no-any-return]
    _check_name(name)
    tags = _checked_tags(backend, tags)
    list_id = _new_id("rslvr-fdl")
    domain_list = _DomainList(
        id=list_id, arn=_arn(backend, "firewall-domain-list", list_id), name=name, creator_request_id=creator_request_id
    )
    state.domain_lists[list_id] = domain_list
    backend.tagger.tag_resource(domain_list.arn, tags)
    _remember(state, "domain-list", creator_request_id, request, list_id)
    return domain_list


def _check_domain(domain: Any) -> str:
    if not isinstance(domain, str) or not 1 <= len(domain) <= _DOMAIN_MAX or not _DOMAIN.match(domain):
        raise _validation(
            f"[RSLVR-02505] The domain '{domain}' isn't valid. A domain is 1-255 characters: letters, digits and "
            "hyphens in labels separated by dots, optionally starting with '*.'; '*' alone matches every domain."
        )
    return domain


def _update_domains(backend: Route53ResolverBackend, list_id: Any, operation: Any, domains: Any) -> _DomainList:
    """UpdateFirewallDomains: ADD, REMOVE or REPLACE up to 1,000 valid domains; the list is UPDATING meanwhile."""
    domain_list = _domain_list(_state(backend), list_id)
    _check_enum("operation", operation, _DOMAIN_OPERATIONS)
    if domain_list.managed:
        raise _validation(f"[RSLVR-02512] The domain list '{list_id}' is managed by AWS: its domains can't change.")
    if operation == "DENY":
        raise _validation("[RSLVR-02513] DENY applies only to the domain list of an AutoAllowlist rule.")
    if not isinstance(domains, list):
        raise _constraint("domains", domains, "not be null")
    if len(domains) > _DOMAINS_PER_CALL:
        raise JsonRESTError(
            "LimitExceededException",
            f"[RSLVR-02511] An UpdateFirewallDomains request takes at most {_DOMAINS_PER_CALL} domains; this one "
            f"has {len(domains)}.",
        )
    wanted = list(dict.fromkeys(_check_domain(domain) for domain in domains))
    if operation == "ADD":
        domain_list.domains += [domain for domain in wanted if domain not in domain_list.domains]
    elif operation == "REMOVE":
        unknown = [domain for domain in wanted if domain not in domain_list.domains]
        if unknown:
            raise _validation(
                f"[RSLVR-02502] The following domains don't exist in the DNS Firewall domain list '{list_id}'. You "
                f"can't delete a domain that isn't in a domain list. Example unknown domain: '{unknown[0]}'."
            )
        domain_list.domains = [domain for domain in domain_list.domains if domain not in wanted]
    else:
        domain_list.domains = wanted
    domain_list.modified = _now()
    domain_list.update = ManagedState(DOMAIN_LIST_MODEL, [("UPDATING", "COMPLETE")])
    return domain_list


def _rules_using(state: _State, list_id: str) -> list[_Rule]:
    return [rule for group in state.rule_groups.values() for rule in group.rules if rule.domain_list_id == list_id]


def _delete_domain_list(backend: Route53ResolverBackend, list_id: Any) -> _DomainList:
    """DeleteFirewallDomainList: refused with ConflictException while a rule uses the list."""
    state = _state(backend)
    domain_list = _domain_list(state, list_id)
    if domain_list.managed:
        raise _validation(f"[RSLVR-02512] The domain list '{list_id}' is managed by AWS and can't be deleted.")
    users = _rules_using(state, domain_list.id)
    if users:
        raise _conflict(
            f"[RSLVR-02604] The domain list '{list_id}' is in use by rule '{users[0].name}' of rule group "
            f"'{users[0].group_id}'. Delete the rules that use it first."
        )
    del state.domain_lists[domain_list.id]
    backend.tagger.delete_all_tags_for_resource(domain_list.arn)
    return domain_list


# ---------------------------------------------------------------------------------------------------------------
# Rule groups and their rules.


def _rule_group(state: _State, group_id: Any) -> _RuleGroup:
    if group_id not in state.rule_groups:
        raise _not_found(group_id)
    return state.rule_groups[group_id]


def _create_rule_group(backend: Route53ResolverBackend, creator_request_id: Any, name: Any, tags: Any) -> _RuleGroup:
    state = _state(backend)
    request = (name,)
    repeated = _repeated(state, "rule-group", creator_request_id, request, state.rule_groups)
    if repeated is not None:
        return repeated  # type: ignore[no-any-return]
    _check_name(name)
    tags = _checked_tags(backend, tags)
    group_id = _new_id("rslvr-frg")
    group = _RuleGroup(
        id=group_id,
        arn=_arn(backend, "firewall-rule-group", group_id),
        name=name,
        owner_id=backend.account_id,
        creator_request_id=creator_request_id,
    )
    state.rule_groups[group_id] = group
    backend.tagger.tag_resource(group.arn, tags)
    _remember(state, "rule-group", creator_request_id, request, group_id)
    return group


def _delete_rule_group(backend: Route53ResolverBackend, group_id: Any) -> _RuleGroup:
    """DeleteFirewallRuleGroup: refused with ConflictException while a VPC is associated (until a
    disassociation is done) or the group still holds rules."""
    state = _state(backend)
    _settle(state)
    group = _rule_group(state, group_id)
    associated = [a for a in state.associations.values() if a.group_id == group.id]
    if associated:
        raise _conflict(
            f"[RSLVR-02306] The rule group '{group.id}' is associated with VPC '{associated[0].vpc_id}' "
            f"({associated[0].id}, {associated[0].status}). Disassociate it first."
        )
    if group.rules:
        raise _conflict(
            f"[RSLVR-02305] The rule group '{group.id}' still has {len(group.rules)} rule(s). Delete them first."
        )
    del state.rule_groups[group.id]
    backend.tagger.delete_all_tags_for_resource(group.arn)
    return group


def _check_qtype(qtype: Any) -> str | None:
    if qtype is None:
        return None
    number = _QTYPE_NUMBER.match(qtype) if isinstance(qtype, str) else None
    if qtype not in _QTYPES and not (number and 1 <= int(number.group(1)) <= 65534):
        raise _validation(
            f"[RSLVR-02040] The query type '{qtype}' isn't valid: use one of {', '.join(_QTYPES)} or TYPE<n> "
            "with n from 1 to 65534."
        )
    return str(qtype)


_BLOCK_FIELDS = ("BlockResponse", "BlockOverrideDomain", "BlockOverrideDnsType", "BlockOverrideTtl")
_OVERRIDE_FIELDS = _BLOCK_FIELDS[1:]


def _apply_action(rule: _Rule, request: dict[str, Any], action: str, previous_action: str | None) -> None:
    """Set the action and its block settings on `rule`, as AWS requires them together.

    BLOCK needs a BlockResponse, and OVERRIDE all three BlockOverride* settings; ALLOW and ALERT take none of
    them, and NODATA / NXDOMAIN no override. On an update, settings the request leaves out are kept when they
    still apply and dropped when the new action or response no longer takes them.
    """
    _check_enum("action", action, _ACTIONS)
    given = {key: request.get(key) for key in _BLOCK_FIELDS if request.get(key) is not None}
    if action != "BLOCK":
        if given:
            raise _validation(
                f"[RSLVR-02005] {', '.join(given)} can be set only for a rule whose action is BLOCK, not {action}."
            )
        rule.action = action
        rule.block_response = rule.block_override_domain = rule.block_override_dns_type = None
        rule.block_override_ttl = None
        return
    kept = previous_action == "BLOCK"
    response = given.get("BlockResponse", rule.block_response if kept else None)
    if response is None:
        raise _validation("[RSLVR-02006] A rule whose action is BLOCK needs a BlockResponse.")
    _check_enum("blockResponse", response, _BLOCK_RESPONSES)
    if response != "OVERRIDE":
        overrides = [key for key in _OVERRIDE_FIELDS if key in given]
        if overrides:
            raise _validation(f"[RSLVR-02007] {', '.join(overrides)} can be set only with the BlockResponse OVERRIDE.")
        domain = dns_type = ttl = None
    else:
        kept = kept and rule.block_response == "OVERRIDE"
        domain = given.get("BlockOverrideDomain", rule.block_override_domain if kept else None)
        dns_type = given.get("BlockOverrideDnsType", rule.block_override_dns_type if kept else None)
        ttl = given.get("BlockOverrideTtl", rule.block_override_ttl if kept else None)
        missing = [key for key, value in zip(_OVERRIDE_FIELDS, (domain, dns_type, ttl), strict=True) if value is None]
        if missing:
            raise _validation(f"[RSLVR-02008] The BlockResponse OVERRIDE needs {', '.join(missing)}.")
        if not isinstance(domain, str) or len(domain) > _BLOCK_OVERRIDE_DOMAIN_MAX:
            raise _constraint("blockOverrideDomain", domain, "have length less than or equal to 255")
        _check_enum("blockOverrideDnsType", dns_type, _BLOCK_OVERRIDE_DNS_TYPES)
        if not isinstance(ttl, int) or not 0 <= ttl <= _BLOCK_OVERRIDE_TTL_MAX:
            raise _constraint("blockOverrideTtl", ttl, f"have value between 0 and {_BLOCK_OVERRIDE_TTL_MAX}")
    rule.action, rule.block_response = action, response
    rule.block_override_domain, rule.block_override_dns_type, rule.block_override_ttl = domain, dns_type, ttl


def _check_priority_free(group: _RuleGroup, priority: Any, rule: _Rule | None = None) -> int:
    if not isinstance(priority, int) or isinstance(priority, bool):
        raise _constraint("priority", priority, "not be null")
    taken = [other for other in group.rules if other.priority == priority and other is not rule]
    if taken:
        raise _validation(
            f"[RSLVR-02021] The priority {priority} is already used by rule '{taken[0].name}' in rule group "
            f"'{group.id}'. Each rule in a rule group needs its own priority."
        )
    return priority


def _create_rule(backend: Route53ResolverBackend, request: dict[str, Any]) -> _Rule:
    """CreateFirewallRule: one match source (a domain list, or a DNS Firewall Advanced threat), a priority unique
    in the group, one rule per domain list and query type, and the action's block settings."""
    state = _state(backend)
    group = _rule_group(state, request.get("FirewallRuleGroupId"))
    creator_request_id = request.get("CreatorRequestId")
    fingerprint = tuple(sorted((k, repr(v)) for k, v in request.items() if k != "CreatorRequestId"))
    by_token = {f"{group.id}/{rule.source}/{rule.qtype}": rule for rule in group.rules}
    repeated = _repeated(state, "rule", creator_request_id, fingerprint, by_token)
    if repeated is not None:
        return repeated  # type: ignore[no-any-return]

    list_id = request.get("FirewallDomainListId")
    threat = request.get("DnsThreatProtection")
    if request.get("FirewallRuleType") is not None:
        raise _validation("[RSLVR-09999] The sandbox does not emulate FirewallRuleType rules.")
    if (list_id is None) == (threat is None):
        raise _validation(
            "[RSLVR-02001] A rule matches either a domain list (FirewallDomainListId) or a DNS Firewall Advanced "
            "threat (DnsThreatProtection): provide exactly one."
        )
    rule = _Rule(
        group_id=group.id,
        name=_check_name(request.get("Name")),
        priority=0,
        action="ALLOW",
        creator_request_id=str(creator_request_id),
        qtype=_check_qtype(request.get("Qtype")),
    )
    if list_id is not None:
        rule.domain_list_id = _domain_list(state, list_id).id
        if request.get("ConfidenceThreshold") is not None:
            raise _validation("[RSLVR-02003] ConfidenceThreshold applies only to DNS Firewall Advanced rules.")
        same = [r for r in group.rules if r.domain_list_id == list_id and r.qtype == rule.qtype]
        if same:
            raise _validation(
                f"[RSLVR-02022] Rule group '{group.id}' already has a rule for domain list '{list_id}'"
                + (f" and query type {rule.qtype}." if rule.qtype else ".")
            )
    else:
        _check_enum("dnsThreatProtection", threat, _THREAT_PROTECTIONS)
        _check_enum("confidenceThreshold", request.get("ConfidenceThreshold"), _CONFIDENCE_THRESHOLDS)
        if request.get("Action") == "ALLOW":
            raise _validation("[RSLVR-02004] ALLOW isn't available for DNS Firewall Advanced rules.")
        rule.dns_threat_protection, rule.confidence_threshold = threat, request["ConfidenceThreshold"]
        rule.threat_protection_id = _new_id("rslvr-ftp")
    redirection = request.get("FirewallDomainRedirectionAction")
    if redirection is not None:
        _check_enum("firewallDomainRedirectionAction", redirection, _REDIRECTION_ACTIONS)
        rule.redirection_action = redirection
    _apply_action(rule, request, str(request.get("Action")), None)
    rule.priority = _check_priority_free(group, request.get("Priority"))
    group.rules.append(rule)
    group.modified = _now()
    _remember(state, "rule", str(creator_request_id), fingerprint, f"{group.id}/{rule.source}/{rule.qtype}")
    return rule


def _find_rule(group: _RuleGroup, list_id: Any, threat_id: Any, qtype: Any) -> _Rule:
    """The rule a Delete/UpdateFirewallRule names: by its domain list (or threat protection ID) and query type.

    Without a Qtype, the one rule of that list is meant; with one that no rule has, the one rule of the list is
    the rule whose query type changes (update only; the caller checks)."""
    source = list_id if list_id is not None else threat_id
    if source is None:
        raise _validation("[RSLVR-02001] Name the rule by FirewallDomainListId or FirewallThreatProtectionId.")
    candidates = [rule for rule in group.rules if rule.source == source]
    exact = [rule for rule in candidates if rule.qtype == qtype]
    if exact:
        return exact[0]
    if len(candidates) == 1 and (qtype is None or candidates[0].qtype is None):
        return candidates[0]
    raise _not_found(source)


def _update_rule(backend: Route53ResolverBackend, request: dict[str, Any]) -> _Rule:
    """UpdateFirewallRule: the match source can't change; priority stays unique; block settings as on create."""
    state = _state(backend)
    group = _rule_group(state, request.get("FirewallRuleGroupId"))
    qtype = _check_qtype(request.get("Qtype"))
    rule = _find_rule(group, request.get("FirewallDomainListId"), request.get("FirewallThreatProtectionId"), qtype)
    if request.get("FirewallRuleType") is not None or (
        request.get("DnsThreatProtection") is not None and request["DnsThreatProtection"] != rule.dns_threat_protection
    ):
        raise _validation("[RSLVR-02002] The match source of a rule can't change; delete the rule and create it anew.")
    if (
        qtype is not None
        and qtype != rule.qtype
        and any(r.source == rule.source and r.qtype == qtype for r in group.rules)
    ):
        raise _validation(f"[RSLVR-02022] Rule group '{group.id}' already has that rule for query type {qtype}.")
    updated = copy.copy(rule)
    if request.get("Name") is not None:
        updated.name = _check_name(request["Name"])
    if request.get("Priority") is not None:
        updated.priority = _check_priority_free(group, request["Priority"], rule)
    if request.get("FirewallDomainRedirectionAction") is not None:
        _check_enum("firewallDomainRedirectionAction", request["FirewallDomainRedirectionAction"], _REDIRECTION_ACTIONS)
        updated.redirection_action = request["FirewallDomainRedirectionAction"]
    if request.get("ConfidenceThreshold") is not None:
        if rule.threat_protection_id is None:
            raise _validation("[RSLVR-02003] ConfidenceThreshold applies only to DNS Firewall Advanced rules.")
        _check_enum("confidenceThreshold", request["ConfidenceThreshold"], _CONFIDENCE_THRESHOLDS)
        updated.confidence_threshold = request["ConfidenceThreshold"]
    action = request.get("Action") or rule.action
    if action == "ALLOW" and rule.threat_protection_id is not None:
        raise _validation("[RSLVR-02004] ALLOW isn't available for DNS Firewall Advanced rules.")
    _apply_action(updated, request, action, rule.action)
    if qtype is not None:
        updated.qtype = qtype
    updated.modified = _now()
    group.rules[group.rules.index(rule)] = updated
    group.modified = updated.modified
    return updated


def _delete_rule(backend: Route53ResolverBackend, request: dict[str, Any]) -> _Rule:
    state = _state(backend)
    group = _rule_group(state, request.get("FirewallRuleGroupId"))
    qtype = request.get("Qtype")
    rule = _find_rule(group, request.get("FirewallDomainListId"), request.get("FirewallThreatProtectionId"), qtype)
    if qtype is not None and rule.qtype != qtype:
        raise _not_found(rule.source)
    group.rules.remove(rule)
    group.modified = _now()
    return rule


# ---------------------------------------------------------------------------------------------------------------
# Rule group associations with VPCs.


def _settle(state: _State) -> None:
    """Forget every association whose disassociation has run its course."""
    for association in list(state.associations.values()):
        if association.deletion is not None and association.deletion.status == "DELETED":
            del state.associations[association.id]


def _association(state: _State, association_id: Any) -> _Association:
    _settle(state)
    if association_id not in state.associations:
        raise _not_found(association_id)
    return state.associations[association_id]


def _check_association_priority(state: _State, vpc_id: str, priority: Any, association: _Association | None) -> int:
    if not isinstance(priority, int) or isinstance(priority, bool) or priority not in _ASSOCIATION_PRIORITIES:
        raise _validation(
            '[RSLVR-02017] The priority value you provided is reserved. Provide a number between "100" and "9900".'
        )
    taken = [
        other
        for other in state.associations.values()
        if other.vpc_id == vpc_id and other.priority == priority and other is not association
    ]
    if taken:
        raise _conflict(
            f"[RSLVR-02303] The priority {priority} is already used by rule group '{taken[0].group_id}' on VPC "
            f"'{vpc_id}'. Each rule group associated with a VPC needs its own priority."
        )
    return priority


def _associate(backend: Route53ResolverBackend, request: dict[str, Any]) -> tuple[_Association, bool]:
    """AssociateFirewallRuleGroup: the group and the VPC exist, the priority is free on the VPC, and the group is
    not associated with the VPC yet (ConflictException). Returns the association and whether it is new."""
    state = _state(backend)
    _settle(state)
    group_id, vpc_id = request.get("FirewallRuleGroupId"), request.get("VpcId")
    mutation_protection = request.get("MutationProtection") or "DISABLED"
    fingerprint = (group_id, vpc_id, request.get("Priority"), request.get("Name"), mutation_protection)
    repeated = _repeated(state, "association", request.get("CreatorRequestId"), fingerprint, state.associations)
    if repeated is not None:
        return repeated, False
    name = _check_name(request.get("Name"))
    _check_enum("mutationProtection", mutation_protection, _MUTATION_PROTECTIONS)
    group = _rule_group(state, group_id)
    vpc_id = _require_vpc(backend, vpc_id)
    tags = _checked_tags(backend, request.get("Tags"))
    existing = [a for a in state.associations.values() if a.group_id == group.id and a.vpc_id == vpc_id]
    if existing:
        raise _conflict(
            f"[RSLVR-02302] The rule group '{group.id}' is already associated with VPC '{vpc_id}' ({existing[0].id})."
        )
    priority = _check_association_priority(state, vpc_id, request.get("Priority"), None)
    association_id = _new_id("rslvr-frgassoc")
    association = _Association(
        id=association_id,
        arn=_arn(backend, "firewall-rule-group-association", association_id),
        group_id=group.id,
        vpc_id=vpc_id,
        name=name,
        priority=priority,
        mutation_protection=mutation_protection,
        creator_request_id=request["CreatorRequestId"],
        change=ManagedState(ASSOCIATION_MODEL, [("UPDATING", "COMPLETE")]),
    )
    state.associations[association_id] = association
    backend.tagger.tag_resource(association.arn, tags)
    _remember(state, "association", request["CreatorRequestId"], fingerprint, association_id)
    return association, True


def _protected(association: _Association) -> JsonRESTError:
    return _validation(
        "[RSLVR-02307] The DNS Firewall rule group association is under mutation protection. Remove the mutation "
        "protection and try again."
    )


def _update_association(backend: Route53ResolverBackend, request: dict[str, Any]) -> _Association:
    """UpdateFirewallRuleGroupAssociation: while MutationProtection is ENABLED only the protection may change."""
    state = _state(backend)
    association = _association(state, request.get("FirewallRuleGroupAssociationId"))
    if association.deletion is not None:
        raise _conflict(f"[RSLVR-02308] The association '{association.id}' is being deleted.")
    protection = request.get("MutationProtection") or association.mutation_protection
    _check_enum("mutationProtection", protection, _MUTATION_PROTECTIONS)
    name = association.name if request.get("Name") is None else _check_name(request["Name"])
    priority = association.priority
    if request.get("Priority") is not None:
        priority = _check_association_priority(state, association.vpc_id, request["Priority"], association)
    changes_more = (name, priority) != (association.name, association.priority)
    if association.mutation_protection == "ENABLED" and protection == "ENABLED" and changes_more:
        raise _protected(association)
    association.name, association.priority, association.mutation_protection = name, priority, protection
    association.modified = _now()
    association.change = ManagedState(ASSOCIATION_MODEL, [("UPDATING", "COMPLETE")])
    return association


def _disassociate(backend: Route53ResolverBackend, association_id: Any) -> _Association:
    """DisassociateFirewallRuleGroup: refused while MutationProtection is ENABLED; DELETING until
    ASSOCIATION_DELETE_MODEL ends, and the rule group stays in use until then."""
    state = _state(backend)
    association = _association(state, association_id)
    if association.mutation_protection == "ENABLED":
        raise _protected(association)
    if association.deletion is None:
        association.deletion = ManagedState(ASSOCIATION_DELETE_MODEL, [("DELETING", "DELETED")])
        backend.tagger.delete_all_tags_for_resource(association.arn)
    return association


# ---------------------------------------------------------------------------------------------------------------
# The per-VPC DNS Firewall configuration (fail open or closed).


def _firewall_config(backend: Route53ResolverBackend, vpc_id: Any) -> _FirewallConfig:
    """The VPC's configuration; a VPC never configured has one that fails closed, as on AWS."""
    vpc_id = _require_vpc(backend, vpc_id)
    configs = _state(backend).configs
    if vpc_id not in configs:
        configs[vpc_id] = _FirewallConfig(id=_new_id("rslvr-fc"), vpc_id=vpc_id, owner_id=backend.account_id)
    return configs[vpc_id]


def _live_configs(backend: Route53ResolverBackend) -> list[_FirewallConfig]:
    vpcs = ec2_backends[backend.account_id][backend.region_name].vpcs
    return [config for config in _state(backend).configs.values() if config.vpc_id in vpcs]


# ---------------------------------------------------------------------------------------------------------------
# Query logging: what moto's implementation lacks or gets wrong.


def _create_resolver_query_log_config(
    self: Route53ResolverBackend,
    name: str,
    destination_arn: str,
    creator_request_id: str,
    tags: list[dict[str, str]] | None = None,
) -> ResolverQueryLogConfig:
    """Wraps moto's create: a repeated CreatorRequestId answers with what the first request made (moto refused it
    with ResourceExistsException); with other parameters it is still refused."""
    for known in self.resolver_query_log_configs.values():
        if known.creator_request_id == creator_request_id and (known.name, known.destination_arn) == (
            name,
            destination_arn,
        ):
            return known
    config: ResolverQueryLogConfig = _ORIGINALS["create_resolver_query_log_config"](
        self, name=name, destination_arn=destination_arn, creator_request_id=creator_request_id, tags=tags
    )
    return config


def _associate_resolver_query_log_config(
    self: Route53ResolverBackend, resolver_query_log_config_id: str, resource_id: str
) -> ResolverQueryLogConfigAssociation:
    """Wraps moto's associate: a VPC already associated with the configuration is AWS's InvalidRequestException
    (moto answered ResourceExistsException)."""
    for known in self.resolver_query_log_config_associations.values():
        if (known.resolver_query_log_config_id, known.resource_id) == (resolver_query_log_config_id, resource_id):
            raise JsonRESTError(
                "InvalidRequestException",
                f"[RSLVR-01615] The VPC '{resource_id}' is already associated with query logging configuration "
                f"'{resolver_query_log_config_id}' ({known.id}). Trace Id: '{_trace_id()}'",
            )
    association: ResolverQueryLogConfigAssociation = _ORIGINALS["associate_resolver_query_log_config"](
        self, resolver_query_log_config_id=resolver_query_log_config_id, resource_id=resource_id
    )
    return association


def _delete_resolver_query_log_config(backend: Route53ResolverBackend, config_id: Any) -> dict[str, Any]:
    """DeleteResolverQueryLogConfig: refused with InvalidRequestException while a VPC is associated."""
    config = backend.get_resolver_query_log_config(config_id)
    associations = backend.resolver_query_log_config_associations.values()
    associated = [a for a in associations if a.resolver_query_log_config_id == config.id]
    if associated:
        raise JsonRESTError(
            "InvalidRequestException",
            f"[RSLVR-01611] The query logging configuration '{config.id}' is associated with VPC "
            f"'{associated[0].resource_id}'. Disassociate every VPC before deleting it. Trace Id: '{_trace_id()}'",
        )
    del backend.resolver_query_log_configs[config.id]
    backend.tagger.delete_all_tags_for_resource(config.arn)
    return {**config.description(), "Status": "DELETING"}


def _disassociate_resolver_query_log_config(
    backend: Route53ResolverBackend, config_id: Any, resource_id: Any
) -> dict[str, Any]:
    """DisassociateResolverQueryLogConfig: ResourceNotFoundException when the VPC is not associated with it."""
    config = backend.get_resolver_query_log_config(config_id)
    for association in list(backend.resolver_query_log_config_associations.values()):
        if (association.resolver_query_log_config_id, association.resource_id) == (config.id, resource_id):
            del backend.resolver_query_log_config_associations[association.id]
            config.association_count = max(0, config.association_count - 1)
            return {**association.description(), "Status": "DELETING"}
    raise JsonRESTError(
        "ResourceNotFoundException",
        f"[RSLVR-01602] The VPC '{resource_id}' is not associated with query logging configuration '{config.id}'. "
        f"Trace Id: '{_trace_id()}'",
    )


def _matched_arn(self: Route53ResolverBackend, resource_arn: str) -> None:
    """Replaces moto's check behind the tag calls, which knew only Resolver endpoints and rules: DNS Firewall
    objects and query logging configurations can be tagged too."""
    config_arns = {config.arn for config in self.resolver_query_log_configs.values()}
    if resource_arn in config_arns or resource_arn in _state(self).arns():
        return
    _ORIGINALS["_matched_arn"](self, resource_arn)


# ---------------------------------------------------------------------------------------------------------------
# The Resource Groups Tagging API: moto's GetResources asks every backend that mixes in TaggableResourcesMixin
# (moto/core/resource_tagging.py) for its resources; Route53ResolverBackend does not, so install() makes the
# service's backends instances of this subclass.


def _taggable_arns(backend: Route53ResolverBackend) -> list[str]:
    """Every Resolver object of this account and region that can carry tags (not AWS's managed domain lists)."""
    return sorted(
        _state(backend).arns()
        | {config.arn for config in backend.resolver_query_log_configs.values()}
        | {endpoint.arn for endpoint in backend.resolver_endpoints.values()}
        | {rule.arn for rule in backend.resolver_rules.values()}
    )


def _resource_type(arn: str) -> str:
    """`route53resolver:<type>`, the type as the ARN writes it (`...:firewall-rule-group/rslvr-frg-...`), which is
    how GetResources' ResourceTypeFilters name it."""
    return "route53resolver:" + arn.split(":", 5)[5].split("/", 1)[0]


class TaggableRoute53ResolverBackend(Route53ResolverBackend, TaggableResourcesMixin):
    """moto's Route 53 Resolver backend, taking part in GetResources (and TagResources / UntagResources)."""

    SERVICE_NAMESPACE = "route53resolver"
    # moto finds a backend's URL table by the module its class is defined in (BaseBackend._url_module).
    __module__ = Route53ResolverBackend.__module__

    def iter_tagged_resources(self) -> Iterator[TaggedResource]:
        for arn in _taggable_arns(self):
            yield TaggedResource(arn=arn, tags=self.tagger.get_tag_dict_for_resource(arn),
                                 resource_type=_resource_type(arn))

    def tag_resource(self, resource_arn: str, tags: Any) -> None:
        # The Tagging API's TagResources gives a map; the service's own TagResource a list of Key/Value.
        if isinstance(tags, dict):
            tags = [{"Key": key, "Value": value} for key, value in tags.items()]
        super().tag_resource(resource_arn, tags)


def _make_taggable() -> None:
    """New backends of the service are made of the taggable class; ones made before install() become it."""
    backends = _resolver_models.route53resolver_backends
    backends.backend = TaggableRoute53ResolverBackend
    for account_backends in backends.values():
        account_backends.backend = TaggableRoute53ResolverBackend
        for backend in account_backends.values():
            backend.__class__ = TaggableRoute53ResolverBackend


# ---------------------------------------------------------------------------------------------------------------
# Response methods: parse the request, call the functions above, shape the answer. Set on Route53ResolverResponse,
# where moto's dispatcher finds them by action name.


def _params(response: Route53ResolverResponse, *names: str) -> dict[str, Any]:
    return {name: response._get_param(name) for name in names if response._get_param(name) is not None}


def _backend(response: Route53ResolverResponse) -> Route53ResolverBackend:
    return response.route53resolver_backend


def _r_create_firewall_domain_list(self: Route53ResolverResponse) -> ActionResult:
    domain_list = _create_domain_list(
        _backend(self), self._get_param("CreatorRequestId"), self._get_param("Name"), self._get_param("Tags")
    )
    return ActionResult({"FirewallDomainList": domain_list.describe()})


def _r_get_firewall_domain_list(self: Route53ResolverResponse) -> ActionResult:
    domain_list = _domain_list(_state(_backend(self)), self._get_param("FirewallDomainListId"))
    answer = domain_list.describe()
    if domain_list.update is not None:
        domain_list.update.advance()
    return ActionResult({"FirewallDomainList": answer})


def _r_list_firewall_domain_lists(self: Route53ResolverResponse) -> ActionResult:
    max_results = _check_max_results(self._get_param("MaxResults"), 1, 100)
    items = [domain_list.metadata() for domain_list in _state(_backend(self)).domain_lists.values()]
    page, next_token = _page(items, self._get_param("NextToken"), max_results)
    return ActionResult(_drop_none({"FirewallDomainLists": page, "NextToken": next_token}))


def _r_update_firewall_domains(self: Route53ResolverResponse) -> ActionResult:
    domain_list = _update_domains(
        _backend(self),
        self._get_param("FirewallDomainListId"),
        self._get_param("Operation"),
        self._get_param("Domains"),
    )
    described = domain_list.describe(status="UPDATING")
    return ActionResult({key: described[key] for key in ("Id", "Name", "Status", "StatusMessage")})


def _r_list_firewall_domains(self: Route53ResolverResponse) -> ActionResult:
    domain_list = _domain_list(_state(_backend(self)), self._get_param("FirewallDomainListId"))
    if domain_list.managed:
        raise _validation(f"[RSLVR-02512] The domains of the AWS-managed list '{domain_list.id}' can't be listed.")
    max_results = _check_max_results(self._get_param("MaxResults"), 1, 5000)
    page, next_token = _page(domain_list.domains, self._get_param("NextToken"), max_results)
    return ActionResult(_drop_none({"Domains": page, "NextToken": next_token}))


def _r_delete_firewall_domain_list(self: Route53ResolverResponse) -> ActionResult:
    domain_list = _delete_domain_list(_backend(self), self._get_param("FirewallDomainListId"))
    described = domain_list.describe()
    return ActionResult({"FirewallDomainList": {**described, "Status": "DELETING", "StatusMessage": "Deleting"}})


def _r_create_firewall_rule_group(self: Route53ResolverResponse) -> ActionResult:
    group = _create_rule_group(
        _backend(self), self._get_param("CreatorRequestId"), self._get_param("Name"), self._get_param("Tags")
    )
    return ActionResult({"FirewallRuleGroup": group.describe()})


def _r_get_firewall_rule_group(self: Route53ResolverResponse) -> ActionResult:
    group = _rule_group(_state(_backend(self)), self._get_param("FirewallRuleGroupId"))
    return ActionResult({"FirewallRuleGroup": group.describe()})


def _r_list_firewall_rule_groups(self: Route53ResolverResponse) -> ActionResult:
    max_results = _check_max_results(self._get_param("MaxResults"), 1, 100)
    items = [group.metadata() for group in _state(_backend(self)).rule_groups.values()]
    page, next_token = _page(items, self._get_param("NextToken"), max_results)
    return ActionResult(_drop_none({"FirewallRuleGroups": page, "NextToken": next_token}))


def _r_delete_firewall_rule_group(self: Route53ResolverResponse) -> ActionResult:
    group = _delete_rule_group(_backend(self), self._get_param("FirewallRuleGroupId"))
    return ActionResult({"FirewallRuleGroup": group.describe(status="DELETING")})


_RULE_MEMBERS = (
    "CreatorRequestId",
    "FirewallRuleGroupId",
    "FirewallDomainListId",
    "FirewallThreatProtectionId",
    "Priority",
    "Action",
    "BlockResponse",
    "BlockOverrideDomain",
    "BlockOverrideDnsType",
    "BlockOverrideTtl",
    "Name",
    "FirewallDomainRedirectionAction",
    "Qtype",
    "DnsThreatProtection",
    "ConfidenceThreshold",
    "FirewallRuleType",
)


def _r_create_firewall_rule(self: Route53ResolverResponse) -> ActionResult:
    rule = _create_rule(_backend(self), _params(self, *_RULE_MEMBERS))
    return ActionResult({"FirewallRule": rule.describe()})


def _r_update_firewall_rule(self: Route53ResolverResponse) -> ActionResult:
    rule = _update_rule(_backend(self), _params(self, *_RULE_MEMBERS))
    return ActionResult({"FirewallRule": rule.describe()})


def _r_delete_firewall_rule(self: Route53ResolverResponse) -> ActionResult:
    rule = _delete_rule(_backend(self), _params(self, *_RULE_MEMBERS))
    return ActionResult({"FirewallRule": rule.describe()})


def _r_list_firewall_rules(self: Route53ResolverResponse) -> ActionResult:
    group = _rule_group(_state(_backend(self)), self._get_param("FirewallRuleGroupId"))
    max_results = _check_max_results(self._get_param("MaxResults"), 1, 100)
    priority, action = self._get_param("Priority"), self._get_param("Action")
    if action is not None:
        _check_enum("action", action, _ACTIONS)
    rules = [
        rule.describe()
        for rule in sorted(group.rules, key=lambda r: r.priority)
        if (priority is None or rule.priority == priority) and (action is None or rule.action == action)
    ]
    page, next_token = _page(rules, self._get_param("NextToken"), max_results)
    return ActionResult(_drop_none({"FirewallRules": page, "NextToken": next_token}))


_ASSOCIATION_MEMBERS = (
    "CreatorRequestId",
    "FirewallRuleGroupId",
    "FirewallRuleGroupAssociationId",
    "VpcId",
    "Priority",
    "Name",
    "MutationProtection",
    "Tags",
)


def _r_associate_firewall_rule_group(self: Route53ResolverResponse) -> ActionResult:
    association, new = _associate(_backend(self), _params(self, *_ASSOCIATION_MEMBERS))
    # AWS answers UPDATING while it applies a new association, whatever the progression: callers must read again.
    return ActionResult({"FirewallRuleGroupAssociation": association.describe(status="UPDATING" if new else None)})


def _r_get_firewall_rule_group_association(self: Route53ResolverResponse) -> ActionResult:
    association = _association(_state(_backend(self)), self._get_param("FirewallRuleGroupAssociationId"))
    answer = association.describe()
    association.advance()
    return ActionResult({"FirewallRuleGroupAssociation": answer})


def _r_list_firewall_rule_group_associations(self: Route53ResolverResponse) -> ActionResult:
    state = _state(_backend(self))
    _settle(state)
    max_results = _check_max_results(self._get_param("MaxResults"), 1, 100)
    status = self._get_param("Status")
    if status is not None:
        _check_enum("status", status, _ASSOCIATION_STATUSES)
    wanted = _params(self, "FirewallRuleGroupId", "VpcId", "Priority")
    listed = [
        association
        for association in state.associations.values()
        if all(association.describe()[key] == value for key, value in wanted.items())
        and (status is None or association.status == status)
    ]
    page, next_token = _page([a.describe() for a in listed], self._get_param("NextToken"), max_results)
    for association in listed:
        association.advance()
    return ActionResult(_drop_none({"FirewallRuleGroupAssociations": page, "NextToken": next_token}))


def _r_update_firewall_rule_group_association(self: Route53ResolverResponse) -> ActionResult:
    association = _update_association(_backend(self), _params(self, *_ASSOCIATION_MEMBERS))
    return ActionResult({"FirewallRuleGroupAssociation": association.describe(status="UPDATING")})


def _r_disassociate_firewall_rule_group(self: Route53ResolverResponse) -> ActionResult:
    state = _state(_backend(self))
    association = _disassociate(_backend(self), self._get_param("FirewallRuleGroupAssociationId"))
    answer = association.describe(status="DELETING")
    _settle(state)
    return ActionResult({"FirewallRuleGroupAssociation": answer})


def _r_get_firewall_config(self: Route53ResolverResponse) -> ActionResult:
    return ActionResult({"FirewallConfig": _firewall_config(_backend(self), self._get_param("ResourceId")).describe()})


def _r_update_firewall_config(self: Route53ResolverResponse) -> ActionResult:
    fail_open = self._get_param("FirewallFailOpen")
    _check_enum("firewallFailOpen", fail_open, _FAIL_OPEN)
    config = _firewall_config(_backend(self), self._get_param("ResourceId"))
    config.fail_open = fail_open
    return ActionResult({"FirewallConfig": config.describe()})


def _r_list_firewall_configs(self: Route53ResolverResponse) -> ActionResult:
    max_results = _check_max_results(self._get_param("MaxResults"), 5, 10)
    items = [config.describe() for config in _live_configs(_backend(self))]
    page, next_token = _page(items, self._get_param("NextToken"), max_results)
    return ActionResult(_drop_none({"FirewallConfigs": page, "NextToken": next_token}))


def _r_delete_resolver_query_log_config(self: Route53ResolverResponse) -> ActionResult:
    described = _delete_resolver_query_log_config(_backend(self), self._get_param("ResolverQueryLogConfigId"))
    return ActionResult({"ResolverQueryLogConfig": described})


def _r_disassociate_resolver_query_log_config(self: Route53ResolverResponse) -> ActionResult:
    described = _disassociate_resolver_query_log_config(
        _backend(self), self._get_param("ResolverQueryLogConfigId"), self._get_param("ResourceId")
    )
    return ActionResult({"ResolverQueryLogConfigAssociation": described})


# ---------------------------------------------------------------------------------------------------------------
# Installation and the compatibility check behind the guard test.

_RESPONSE_PATCHES: dict[str, Callable[[Route53ResolverResponse], ActionResult]] = {
    "create_firewall_domain_list": _r_create_firewall_domain_list,
    "get_firewall_domain_list": _r_get_firewall_domain_list,
    "list_firewall_domain_lists": _r_list_firewall_domain_lists,
    "update_firewall_domains": _r_update_firewall_domains,
    "list_firewall_domains": _r_list_firewall_domains,
    "delete_firewall_domain_list": _r_delete_firewall_domain_list,
    "create_firewall_rule_group": _r_create_firewall_rule_group,
    "get_firewall_rule_group": _r_get_firewall_rule_group,
    "list_firewall_rule_groups": _r_list_firewall_rule_groups,
    "delete_firewall_rule_group": _r_delete_firewall_rule_group,
    "create_firewall_rule": _r_create_firewall_rule,
    "update_firewall_rule": _r_update_firewall_rule,
    "delete_firewall_rule": _r_delete_firewall_rule,
    "list_firewall_rules": _r_list_firewall_rules,
    "associate_firewall_rule_group": _r_associate_firewall_rule_group,
    "get_firewall_rule_group_association": _r_get_firewall_rule_group_association,
    "list_firewall_rule_group_associations": _r_list_firewall_rule_group_associations,
    "update_firewall_rule_group_association": _r_update_firewall_rule_group_association,
    "disassociate_firewall_rule_group": _r_disassociate_firewall_rule_group,
    "get_firewall_config": _r_get_firewall_config,
    "update_firewall_config": _r_update_firewall_config,
    "list_firewall_configs": _r_list_firewall_configs,
    "delete_resolver_query_log_config": _r_delete_resolver_query_log_config,
    "disassociate_resolver_query_log_config": _r_disassociate_resolver_query_log_config,
}
_BACKEND_PATCHES: dict[str, Callable[..., Any]] = {
    "create_resolver_query_log_config": _create_resolver_query_log_config,
    "associate_resolver_query_log_config": _associate_resolver_query_log_config,
    "_matched_arn": _matched_arn,
}

#: Response methods (actions) moto 5.2.5 lacks and install() adds.
ADDED_ACTIONS = tuple(_RESPONSE_PATCHES)

# What this module reads or writes on moto's objects.
_BACKEND_ATTRIBUTES = (
    "tagger",
    "resolver_query_log_configs",
    "resolver_query_log_config_associations",
    "resolver_endpoints",
    "resolver_rules",
)
_BACKEND_METHODS = ("get_resolver_query_log_config",)
_MODEL_ATTRIBUTES = {
    "ResolverQueryLogConfig": ("name", "destination_arn", "creator_request_id", "association_count", "id"),
    "ResolverQueryLogConfigAssociation": ("resolver_query_log_config_id", "resource_id", "id"),
}

_ORIGINALS: dict[str, Any] = {}
_INSTALLED_MARKER = "_provisioner_sandbox_dns_firewall"
_install_lock = threading.Lock()


def _missing_internals() -> list[str]:
    problems = []
    backend_methods, backend_attributes = class_members(_resolver_models, "Route53ResolverBackend")
    for name in (*_BACKEND_PATCHES, *_BACKEND_METHODS):
        if name not in backend_methods:
            problems.append(f"moto's Route53ResolverBackend no longer defines {name}")
    for name in _BACKEND_ATTRIBUTES:
        if name not in backend_attributes:
            problems.append(f"moto's Route53ResolverBackend no longer sets self.{name}")
    for class_name, attributes in _MODEL_ATTRIBUTES.items():
        _, model_attributes = class_members(_resolver_models, class_name)
        problems += [
            f"moto's {class_name} no longer sets self.{name}" for name in attributes if name not in model_attributes
        ]
    response_methods, _ = class_members(_resolver_responses, "Route53ResolverResponse")
    if "route53resolver_backend" not in response_methods:
        problems.append("moto's Route53ResolverResponse no longer has route53resolver_backend")
    if not hasattr(ManagedState, "advance"):
        problems.append("moto's ManagedState no longer has advance()")
    if not hasattr(_resolver_models, "route53resolver_backends"):
        problems.append("moto's route53resolver.models no longer has route53resolver_backends")
    return problems


def compatibility_problems() -> list[str]:
    """Why this module may no longer fit the installed moto; empty when it was written for exactly this one.

    Checks the pinned version, that moto still defines every internal name used here, and that moto has not
    started implementing an action added here (then the emulation should be revisited, not stacked on top).
    """
    problems = []
    if moto.__version__ != SUPPORTED_MOTO_VERSION:
        problems.append(f"moto is {moto.__version__}; this module was written against {SUPPORTED_MOTO_VERSION}")
    response_methods, _ = class_members(_resolver_responses, "Route53ResolverResponse")
    problems += [f"moto now implements {name} itself" for name in ADDED_ACTIONS if name in response_methods]
    if issubclass(Route53ResolverBackend, TaggableResourcesMixin):
        problems.append("moto's Route53ResolverBackend now takes part in the Resource Groups Tagging API itself")
    return problems + _missing_internals()


def install() -> None:
    """Patch moto's Route 53 Resolver in this process; safe to call more than once.

    Call it before the first request: in `mock_aws()` tests, or in the process that runs a ThreadedMotoServer or
    `moto.server.main`. Raises RuntimeError if moto lacks an internal name the patches need.
    """
    with _install_lock:
        if getattr(Route53ResolverResponse, _INSTALLED_MARKER, False):
            return
        problems = _missing_internals()
        if problems:
            raise RuntimeError("cannot emulate Route 53 Resolver DNS Firewall on this moto: " + "; ".join(problems))
        for name, function in _BACKEND_PATCHES.items():
            _ORIGINALS[name] = getattr(Route53ResolverBackend, name)
            setattr(Route53ResolverBackend, name, function)
        for name, method in _RESPONSE_PATCHES.items():
            setattr(Route53ResolverResponse, name, method)
        for model in (ASSOCIATION_MODEL, ASSOCIATION_DELETE_MODEL, DOMAIN_LIST_MODEL):
            state_manager.register_default_transition(model, {"progression": "immediate"})
        _make_taggable()
        setattr(Route53ResolverResponse, _INSTALLED_MARKER, True)
