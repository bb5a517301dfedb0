"""The egress firewall: AWS Network Firewall in the hub's firewall subnets, default-deny, with ALERT and FLOW logs.

What it owns, in `up` order (the documents come from `provisioner.design.firewall`):

- `hub/firewall/rule-group/<role>`: the stateful rule groups (deny, control-plane, metastore when the legacy Hive
  metastore is on, allowlist). The metastore group pins the addresses the metastore host resolves to at `up`.
- `hub/firewall/policy`: the STRICT_ORDER, default-deny policy referencing them.
- `hub/firewall/log-group/alert`, `hub/firewall/log-group/flow`: CloudWatch log groups with the configured retention.
- `hub/firewall`: the firewall, one endpoint per hub AZ; `up` waits for READY and IN_SYNC and records each AZ's
  endpoint from `SyncStates`.
- `hub/firewall/logging`: ALERT and FLOW logs to those groups, one destination change per call.
- `hub/firewall/routes/<az>`: TGW subnet route table[az] `0/0 -> endpoint[az]`, NAT subnet route table[az]
  `spoke CIDRs -> endpoint[az]` and then `0/0 -> IGW`: the same endpoint both ways, never one in another AZ,
  and the NAT's way out only once nothing reaches the NAT uninspected.

Updates to rule groups and the policy carry the UpdateToken of the describe they were compared with, so a change
made meanwhile by someone else fails (InvalidTokenException) instead of being overwritten unseen.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from botocore.exceptions import ClientError

from provisioner.aws.errors import CloudError, error_code, gone_if_missing, none_if_missing, translate
from provisioner.context import Context
from provisioner.design import firewall as design
from provisioner.design.config import Config
from provisioner.design.layout import layout
from provisioner.design.naming import COMPONENT_TAG, is_owned, tag_list, tag_map
from provisioner.design.routes import route_target
from provisioner.poll import Read, block, poll_once
from provisioner.steps import keys
from provisioner.steps.base import Check, Resource, Step, aspect
from provisioner.steps.ec2_common import create_route, retry_while, route_tables
from provisioner.steps.logs import LogGroup

T = TypeVar("T")

NOT_FOUND = ("ResourceNotFoundException",)
ROUTE_NOT_FOUND = ("InvalidRoute.NotFound",)
OBSERVATIONS = "observations"
METASTORE_OBSERVATION = "metastore-addresses"
# Creating or deleting a firewall takes several minutes (often 5-10); AWS documents no upper bound.
FIREWALL_POLL_SECONDS = 15
FIREWALL_DEADLINE_SECONDS = 30 * 60
POLICY_POLL_SECONDS = 5
# Each protection the firewall keeps on, and how `status` names it when off.
PROTECTIONS = {"DeleteProtection": "delete protection off",
               "SubnetChangeProtection": "subnet change protection off",
               "FirewallPolicyChangeProtection": "policy change protection off"}
POLICY_DEADLINE_SECONDS = 10 * 60
# DeleteFirewallPolicy and DeleteRuleGroup answer InvalidOperationException ("still in use") for a while after the
# firewall or policy that used them is gone: AWS frees them a little later.
IN_USE = ("InvalidOperationException",)
IN_USE_DEADLINE_SECONDS = 5 * 60
# Firewall states that waiting does not end (botocore's network-firewall model): a firewall or endpoint
# (attachment) FAILED cannot recover; an endpoint in ERROR has an issue its owner must fix (the StatusMessage says
# which); a configuration CAPACITY_CONSTRAINED does not fit the firewall.
FAILED_FIREWALL_STATUSES = ("FAILED",)
FAILED_ATTACHMENT_STATUSES = ("FAILED", "ERROR")
CAPACITY_CONSTRAINED = "CAPACITY_CONSTRAINED"


def rule_group_key(role: str) -> str:
    return keys.hub("firewall/rule-group", role)


POLICY_KEY = keys.hub("firewall/policy")
FIREWALL_KEY = keys.hub("firewall")
LOGGING_KEY = keys.hub("firewall/logging")


def log_group_key(log_type: str) -> str:
    return keys.hub("firewall/log-group", log_type.lower())


def routes_key(az: str) -> str:
    return keys.hub("firewall/routes", az)


# -- shared helpers ---------------------------------------------------------------------------------------------


def _wait_gone(ctx: Context, key: str, what: str, describe: Callable[[], Any],
               status: Callable[[Any], str] = lambda got: "DELETING", poll: float = POLICY_POLL_SECONDS,
               deadline: float = POLICY_DEADLINE_SECONDS,
               failed: Callable[[Any], str | None] = lambda got: None) -> None:
    """Poll `describe` until it finds nothing (deletes in Network Firewall are asynchronous)."""
    with translate(f"wait for {what} to go"):
        _poll(ctx, key, f"{what} to go", describe, lambda got: got is None, status, poll, deadline, failed)


def _describe_recorded(ctx: Context, key: str, describe: Callable[..., Any], arn_param: str) -> Any:
    """Describe the resource by the ARN the state file recorded; None when none is recorded or it is gone."""
    arn = ctx.state.resource_id(key)
    return none_if_missing(NOT_FOUND, describe, **{arn_param: arn}) if arn else None


def _described_firewall(ctx: Context, arn: str | None, keep: bool = True) -> Any:
    """The recorded firewall described, once per command for the steps that find it (None: none recorded, or
    gone). Its waits read it again. Not `keep`: a read the caller's changes would leave stale (logging changes
    the firewall's update token) is not kept for the firewall's own step."""
    if not arn:
        return None
    nfw = ctx.aws.network_firewall
    key = f"describe_firewall {arn}"

    def load() -> Any:
        return none_if_missing(NOT_FOUND, nfw.describe_firewall, FirewallArn=arn)

    return ctx.reads.get(key, load) if keep else ctx.reads.peek(key, load)


def _require_owned(ctx: Context, what: str, tags: dict[str, str]) -> None:
    if not is_owned(tags, ctx.deployment):
        raise CloudError(f"{what} exists but is not tagged as part of deployment {ctx.deployment}; provision will "
                         "not adopt it: delete it or choose another deployment name")


def _missing_tags(ctx: Context, step: Step, have: dict[str, str], name: str | None = None) -> dict[str, str]:
    return {k: v for k, v in ctx.tags(step, name).items() if have.get(k) != v}


def _recorded(ctx: Context, key: str, what: str, output: str = "id") -> Any:
    """Another step's recorded ID or output; a CloudError (which `status` reports) when there is none."""
    entry = ctx.state.resource(key)
    value = None if entry is None else (entry.get("id") if output == "id" else entry.get("outputs", {}).get(output))
    if not value:
        raise CloudError(f"{what} ({key}) is not in the state file; run `provision up`")
    return value


def _poll(ctx: Context, key: str, what: str, read: Callable[[], T], done: Callable[[T], bool],
          describe: Callable[[T], str], delay: float, deadline: float,
          failed: Callable[[T], str | None] = lambda value: None) -> T:
    """Read until `done`; at most `deadline / delay` reads, each `delay` apart (scaled by the poll scale). A read
    for which `failed` gives a reason ends the wait at once with that reason: waiting would not change it."""
    last: list[T] = []

    def once() -> Read:
        last[:] = [read()]
        ready = done(last[0])
        return Read(ready, note=describe(last[0]), failed=None if ready else failed(last[0]))

    reads = Resource("")  # counts the reads towards the deadline
    block(ctx, key, lambda: poll_once(reads, what, once, every=delay, deadline=deadline))
    return last[0]


def _create_or_adopt(ctx: Context, what: str, create: Callable[[], dict[str, Any]],
                     describe: Callable[[], dict[str, Any]], member: str) -> dict[str, Any]:
    """Create a named Network Firewall resource; when the name is taken (botocore retried a create whose reply
    was lost, and the first attempt made it), adopt what is there if it carries this deployment's tags."""
    try:
        return create()
    except ClientError as e:
        if error_code(e) != "InvalidRequestException" or "already exist" not in str(e):
            raise
    got = describe()
    _require_owned(ctx, what, tag_map(got[member].get("Tags")))
    return got


def _token(token: str | None) -> dict[str, str]:
    """The UpdateToken argument: optional in the firewall's update calls, and botocore refuses None."""
    return {"UpdateToken": token} if token else {}


def _delete_once_released(ctx: Context, delete: Callable[..., Any], **params: Any) -> bool:
    """Delete a policy or rule group whose user (firewall, policy) has just gone: AWS still answers "in use" for
    a while, so that answer is retried within IN_USE_DEADLINE_SECONDS. False when it was already gone."""
    return bool(retry_while(ctx, IN_USE, IN_USE_DEADLINE_SECONDS, gone_if_missing, NOT_FOUND, delete, **params))


def _utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# -- rule groups ------------------------------------------------------------------------------------------------


class FirewallRuleGroup(Step):
    """One stateful rule group. Its capacity is in its name (AWS cannot change it): content that outgrows the
    live group gets a new group, the policy moves to it, and the policy step deletes the old one."""

    kind = "firewall rule group"

    def __init__(self, config: Config, role: str) -> None:
        self.config = config
        self.role = role
        self._addresses: tuple[str, ...] | None = None
        nominal = design.rule_group(config, layout(config), role, design.NOMINAL_METASTORE_ADDRESSES)
        super().__init__(rule_group_key(role), design.rule_group_name(config.deployment, role, nominal.capacity))

    def details(self) -> dict[str, Any]:
        lay = layout(self.config)
        if self.role == design.ALLOWLIST:
            return {"domains": len(design.allowed_fqdns(self.config, lay))}
        if self.role == design.CONTROL_PLANE:
            return {"cidr": lay.region.control_plane_cidr}
        if self.role == design.METASTORE:
            return {"host": lay.region.legacy_metastore_host}
        return {}

    # -- what it should be ---------------------------------------------------------------------------------
    def wanted(self, ctx: Context, resolve: bool) -> design.RuleGroupDesign:
        """The group as it should be. The metastore group pins addresses: resolved now during `up`
        (`resolve`), else the ones recorded at the last `up`, so `status` compares with what was meant."""
        addresses: tuple[str, ...] = ()
        if self.role == design.METASTORE:
            addresses = self._metastore_addresses(ctx, resolve)
        return design.rule_group(self.config, layout(self.config), self.role, addresses)

    def _metastore_addresses(self, ctx: Context, resolve: bool) -> tuple[str, ...]:
        host = layout(self.config).region.legacy_metastore_host
        if not resolve:
            seen = recorded_metastore(ctx)
            if seen is not None and seen["host"] == host:
                return tuple(seen["addresses"])
        if self._addresses is None:
            self._addresses = resolve_metastore(ctx, host)
        return self._addresses

    def _remember_addresses(self, ctx: Context, group: design.RuleGroupDesign) -> None:
        if self.role != design.METASTORE or self._addresses is None:
            return
        seen = recorded_metastore(ctx)
        host = layout(self.config).region.legacy_metastore_host
        if seen is None or seen.get("host") != host or tuple(seen.get("addresses", ())) != self._addresses:
            ctx.state.put(OBSERVATIONS, METASTORE_OBSERVATION,
                          {"host": host, "addresses": list(self._addresses), "resolved_at": _utc_now()})

    # -- lifecycle -----------------------------------------------------------------------------------------
    def find(self, ctx: Context) -> Resource | None:
        nfw = ctx.aws.network_firewall
        with translate(f"read firewall rule group {self.name}"):
            got = _describe_recorded(ctx, self.key, nfw.describe_rule_group, "RuleGroupArn") or self._find_by_name(ctx)
        if got is None:
            return None
        _require_owned(ctx, f"firewall rule group {got['RuleGroupResponse']['RuleGroupName']}",
                       tag_map(got["RuleGroupResponse"].get("Tags")))
        return _rule_group_resource(got)

    def _candidates(self, ctx: Context) -> list[dict[str, Any]]:
        """Every group named like this step's (any capacity), described."""
        nfw = ctx.aws.network_firewall
        prefix = design.rule_group_name_prefix(ctx.deployment, self.role)
        found = []
        for page in nfw.get_paginator("list_rule_groups").paginate(Scope="ACCOUNT", Type="STATEFUL"):
            for item in page.get("RuleGroups", []):
                if item["Name"].startswith(prefix) and item["Name"][len(prefix):].isdigit():
                    got = none_if_missing(NOT_FOUND, nfw.describe_rule_group, RuleGroupArn=item["Arn"])
                    if got is not None:
                        found.append(got)
        return found

    def _find_by_name(self, ctx: Context) -> dict[str, Any] | None:
        ours = []
        for got in self._candidates(ctx):
            response = got["RuleGroupResponse"]
            tags = tag_map(response.get("Tags"))
            if is_owned(tags, ctx.deployment) and tags.get(COMPONENT_TAG) == self.key:
                ours.append(got)
            elif response["RuleGroupName"] == self.name:
                _require_owned(ctx, f"firewall rule group {self.name}", tags)
        # After an interrupted replacement two generations exist: the bigger one is the newer.
        return max(ours, key=lambda g: g["RuleGroupResponse"]["Capacity"], default=None)

    def create(self, ctx: Context) -> Resource:
        group = self.wanted(ctx, resolve=True)
        res = self._create(ctx, group)
        self._remember_addresses(ctx, group)
        return res

    def _create(self, ctx: Context, group: design.RuleGroupDesign) -> Resource:
        name = design.rule_group_name(ctx.deployment, self.role, group.capacity)
        nfw = ctx.aws.network_firewall
        with translate(f"create firewall rule group {name}"):
            created = _create_or_adopt(
                ctx, f"firewall rule group {name}",
                lambda: nfw.create_rule_group(
                    RuleGroupName=name, Type="STATEFUL", Capacity=group.capacity, RuleGroup=dict(group.rule_group),
                    Description=group.description, Tags=tag_list(ctx.tags(self, name))),
                lambda: nfw.describe_rule_group(RuleGroupName=name, Type="STATEFUL"), "RuleGroupResponse")
        return _rule_group_resource({"RuleGroup": dict(group.rule_group), **created})

    def ensure(self, ctx: Context, res: Resource, apply: bool) -> list[str]:
        changes: list[str] = []
        group = self.wanted(ctx, resolve=apply)
        response = res.live["RuleGroupResponse"]
        name = response["RuleGroupName"]
        capacity = int(response["Capacity"])
        outgrown = capacity < group.needed_capacity
        if aspect(changes, apply, f"capacity {capacity} < {group.needed_capacity} needed (a new group replaces it)",
                  outgrown):
            new = self._create(ctx, group)
            ctx.record(self, new)  # at once: a crash now must not leave the state pointing at the old group
            res.id, res.outputs, res.live = new.id, new.outputs, new.live
            self._remember_addresses(ctx, group)
            return changes
        if outgrown:
            return changes
        diff = design.differences(group.rule_group, res.live.get("RuleGroup"))
        if aspect(changes, apply, f"rules ({', '.join(diff)})", bool(diff)):
            with translate(f"update firewall rule group {name}"):
                updated = ctx.aws.network_firewall.update_rule_group(
                    RuleGroupArn=res.id, UpdateToken=res.live["UpdateToken"], RuleGroup=dict(group.rule_group),
                    Description=group.description)
            res.live["UpdateToken"] = updated["UpdateToken"]
        missing = _missing_tags(ctx, self, tag_map(response.get("Tags")), name)
        if aspect(changes, apply, "tags", bool(missing)):
            with translate(f"tag firewall rule group {name}"):
                ctx.aws.network_firewall.tag_resource(ResourceArn=res.id, Tags=tag_list(missing))
        if apply:
            self._remember_addresses(ctx, group)
        return changes

    def delete(self, ctx: Context, res: Resource) -> None:
        nfw = ctx.aws.network_firewall
        with translate(f"delete firewall rule group {res.outputs.get('name', res.id)}"):
            _delete_once_released(ctx, nfw.delete_rule_group, RuleGroupArn=res.id)
            # Earlier generations (a replacement interrupted before the policy step removed the old group).
            for got in self._candidates(ctx):
                response = got["RuleGroupResponse"]
                tags = tag_map(response.get("Tags"))
                if response["RuleGroupArn"] != res.id and is_owned(tags, ctx.deployment) \
                        and tags.get(COMPONENT_TAG) == self.key:
                    _delete_once_released(ctx, nfw.delete_rule_group, RuleGroupArn=response["RuleGroupArn"])

    def wait_deleted(self, ctx: Context, res: Resource) -> None:
        _wait_gone(ctx, self.key, f"firewall rule group {res.outputs.get('name', res.id)}",
                   lambda: none_if_missing(NOT_FOUND, ctx.aws.network_firewall.describe_rule_group,
                                           RuleGroupArn=res.id))


def _rule_group_resource(got: dict[str, Any]) -> Resource:
    response = got["RuleGroupResponse"]
    outputs = {"arn": response["RuleGroupArn"], "name": response["RuleGroupName"], "capacity": response["Capacity"]}
    return Resource(response["RuleGroupArn"], outputs=outputs, live=got)


def resolve_metastore(ctx: Context, host: str) -> tuple[str, ...]:
    """The legacy metastore host's IPv4 addresses now, through the context's (injectable) resolver."""
    try:
        return design.metastore_addresses(ctx.resolver(host))
    except (OSError, ValueError) as e:
        raise CloudError(f"cannot resolve the legacy Hive metastore host {host} ({e}); the firewall pins TCP 3306 to "
                         "its addresses. If your workspaces use Unity Catalog only, set "
                         "firewall.legacy_hive_metastore = false") from e


def recorded_metastore(ctx: Context) -> dict[str, Any] | None:
    seen = ctx.state.get(OBSERVATIONS, METASTORE_OBSERVATION)
    return seen if isinstance(seen, dict) else None


# -- policy -----------------------------------------------------------------------------------------------------


class FirewallPolicy(Step):
    kind = "firewall policy"

    def __init__(self, config: Config) -> None:
        self.config = config
        self.roles = design.rule_group_roles(config)
        super().__init__(POLICY_KEY, design.policy_name(config.deployment),
                         tuple(rule_group_key(role) for role in self.roles))

    def details(self) -> dict[str, Any]:
        return {"rule_order": design.RULE_ORDER, "groups": ", ".join(self.roles)}

    def wanted(self, ctx: Context) -> dict[str, Any]:
        refs = {role: _recorded(ctx, rule_group_key(role), f"the {role} rule group") for role in self.roles}
        return design.firewall_policy(layout(self.config), refs)

    def find(self, ctx: Context) -> Resource | None:
        nfw = ctx.aws.network_firewall
        with translate(f"read firewall policy {self.name}"):
            got = (_describe_recorded(ctx, self.key, nfw.describe_firewall_policy, "FirewallPolicyArn")
                   or none_if_missing(NOT_FOUND, nfw.describe_firewall_policy, FirewallPolicyName=self.name))
        if got is None:
            return None
        response = got["FirewallPolicyResponse"]
        _require_owned(ctx, f"firewall policy {self.name}", tag_map(response.get("Tags")))
        return _policy_resource(got)

    def create(self, ctx: Context) -> Resource:
        policy = self.wanted(ctx)
        nfw = ctx.aws.network_firewall
        with translate(f"create firewall policy {self.name}"):
            created = _create_or_adopt(
                ctx, f"firewall policy {self.name}",
                lambda: nfw.create_firewall_policy(
                    FirewallPolicyName=self.name, FirewallPolicy=policy,
                    Description="Default-deny egress for the Databricks spokes (strict order)",
                    Tags=tag_list(ctx.tags(self))),
                lambda: nfw.describe_firewall_policy(FirewallPolicyName=self.name), "FirewallPolicyResponse")
        return _policy_resource({"FirewallPolicy": policy, **created})

    def wait(self, ctx: Context, res: Resource) -> Resource:
        if res.live["FirewallPolicyResponse"].get("FirewallPolicyStatus", "ACTIVE") == "ACTIVE":
            return res
        nfw = ctx.aws.network_firewall
        with translate(f"wait for firewall policy {self.name}"):
            got = _poll(ctx, self.key, f"firewall policy {self.name}",
                        lambda: nfw.describe_firewall_policy(FirewallPolicyArn=res.id),
                        lambda g: g["FirewallPolicyResponse"].get("FirewallPolicyStatus") == "ACTIVE",
                        lambda g: str(g["FirewallPolicyResponse"].get("FirewallPolicyStatus")),
                        POLICY_POLL_SECONDS, POLICY_DEADLINE_SECONDS)
        return _policy_resource(got)

    def ensure(self, ctx: Context, res: Resource, apply: bool) -> list[str]:
        changes: list[str] = []
        nfw = ctx.aws.network_firewall
        policy = self.wanted(ctx)
        live = res.live.get("FirewallPolicy") or {}
        diff = design.differences(policy, live)
        if aspect(changes, apply, f"policy ({', '.join(diff)})", bool(diff)):
            with translate(f"update firewall policy {self.name}"):
                updated = nfw.update_firewall_policy(FirewallPolicyArn=res.id, UpdateToken=res.live["UpdateToken"],
                                                     FirewallPolicy=policy)
                res.live["UpdateToken"] = updated["UpdateToken"]
                before = {r["ResourceArn"] for r in live.get("StatefulRuleGroupReferences") or []}
                after = {r["ResourceArn"] for r in policy["StatefulRuleGroupReferences"]}
                self._delete_superseded(ctx, sorted(before - after))
        missing = _missing_tags(ctx, self, tag_map(res.live["FirewallPolicyResponse"].get("Tags")))
        if aspect(changes, apply, "tags", bool(missing)):
            with translate(f"tag firewall policy {self.name}"):
                nfw.tag_resource(ResourceArn=res.id, Tags=tag_list(missing))
        return changes

    def _delete_superseded(self, ctx: Context, arns: list[str]) -> None:
        """Delete our rule groups the policy no longer references (replaced by bigger ones, or the metastore
        group once the legacy metastore is off). Groups that are not ours are only dereferenced."""
        nfw = ctx.aws.network_firewall
        for arn in arns:
            got = none_if_missing(NOT_FOUND, nfw.describe_rule_group, RuleGroupArn=arn)
            if got is None:
                continue
            tags = tag_map(got["RuleGroupResponse"].get("Tags"))
            if not (is_owned(tags, ctx.deployment)
                    and tags.get(COMPONENT_TAG, "").startswith(rule_group_key(""))):
                continue
            if got["RuleGroupResponse"].get("NumberOfAssociations"):
                continue  # still referenced by another policy: leave it; `down` sweeps earlier generations
            try:
                # No policy references it any more, yet AWS answers "in use" until the firewall has synced
                # the policy update: retried within the deadline.
                _delete_once_released(ctx, nfw.delete_rule_group, RuleGroupArn=arn)
            except ClientError as e:
                # Still in use after the deadline: leave it; `down` sweeps earlier generations.
                if error_code(e) not in IN_USE:
                    raise
            # A group whose step is gone (the metastore group, legacy metastore now off) leaves the state too.
            if tags[COMPONENT_TAG] not in self.needs:
                ctx.state.forget(tags[COMPONENT_TAG])
                if tags[COMPONENT_TAG] == rule_group_key(design.METASTORE):
                    ctx.state.drop(OBSERVATIONS, METASTORE_OBSERVATION)

    def delete(self, ctx: Context, res: Resource) -> None:
        with translate(f"delete firewall policy {self.name}"):
            # Runs once the firewall is gone (its wait_deleted), when AWS may still count the policy in use.
            _delete_once_released(ctx, ctx.aws.network_firewall.delete_firewall_policy, FirewallPolicyArn=res.id)

    def wait_deleted(self, ctx: Context, res: Resource) -> None:
        # The rule groups can go only once no policy references them, i.e. once this one is gone.
        _wait_gone(ctx, self.key, f"firewall policy {self.name}",
                   lambda: none_if_missing(NOT_FOUND, ctx.aws.network_firewall.describe_firewall_policy,
                                           FirewallPolicyArn=res.id))


def _policy_resource(got: dict[str, Any]) -> Resource:
    response = got["FirewallPolicyResponse"]
    return Resource(response["FirewallPolicyArn"],
                    outputs={"arn": response["FirewallPolicyArn"], "name": response["FirewallPolicyName"]}, live=got)


# -- log groups -------------------------------------------------------------------------------------------------


class FirewallLogGroup(LogGroup):
    def __init__(self, config: Config, log_type: str) -> None:
        self.log_type = log_type
        super().__init__(log_group_key(log_type), design.log_group_name(config.deployment, log_type),
                         config.firewall_log_retention_days)


# -- the firewall -----------------------------------------------------------------------------------------------


class Firewall(Step):
    kind = "network firewall"

    def __init__(self, config: Config) -> None:
        self.config = config
        self.azs = tuple(h.az for h in layout(config).hub_azs)
        needs = (POLICY_KEY, keys.hub("vpc"), *(keys.hub("firewall-subnet", az) for az in self.azs))
        super().__init__(FIREWALL_KEY, design.firewall_name(config.deployment), needs)

    def details(self) -> dict[str, Any]:
        return {"azs": ", ".join(self.azs)}

    def _subnets(self, ctx: Context) -> list[str]:
        return [_recorded(ctx, keys.hub("firewall-subnet", az), f"hub firewall subnet in {az}") for az in self.azs]

    def find(self, ctx: Context) -> Resource | None:
        nfw = ctx.aws.network_firewall
        with translate(f"read network firewall {self.name}"):
            got = (_described_firewall(ctx, ctx.state.resource_id(self.key))
                   or none_if_missing(NOT_FOUND, nfw.describe_firewall, FirewallName=self.name))
        if got is None:
            return None
        _require_owned(ctx, f"network firewall {self.name}", tag_map(got["Firewall"].get("Tags")))
        return self._resource(got)

    def _resource(self, got: dict[str, Any]) -> Resource:
        fw = got["Firewall"]
        return Resource(fw["FirewallArn"], outputs={"arn": fw["FirewallArn"], "name": fw["FirewallName"],
                                                    "endpoints": endpoints_by_az(got)}, live=got)

    def create(self, ctx: Context) -> Resource:
        nfw = ctx.aws.network_firewall
        with translate(f"create network firewall {self.name}"):
            created = _create_or_adopt(
                ctx, f"network firewall {self.name}",
                lambda: nfw.create_firewall(
                    FirewallName=self.name,
                    FirewallPolicyArn=_recorded(ctx, POLICY_KEY, "the firewall policy"),
                    VpcId=_recorded(ctx, keys.hub("vpc"), "the hub VPC"),
                    SubnetMappings=[{"SubnetId": s} for s in self._subnets(ctx)],
                    # Nobody deletes it, moves its endpoints or swaps its policy by accident: `up` lifts a
                    # protection only for the one change it guards, and `down` lifts the delete protection just
                    # before deleting.
                    DeleteProtection=True, SubnetChangeProtection=True, FirewallPolicyChangeProtection=True,
                    Description=f"Egress firewall of deployment {ctx.deployment}",
                    Tags=tag_list(ctx.tags(self))),
                lambda: nfw.describe_firewall(FirewallName=self.name), "Firewall")
        return self._resource(created)

    def wait(self, ctx: Context, res: Resource) -> Resource:
        """Until READY and IN_SYNC with an endpoint in every hub AZ: routes can then point at the endpoints."""
        status = res.live.get("FirewallStatus", {})
        if status.get("Status") == "DELETING":
            raise CloudError(f"network firewall {self.name} is being deleted; wait until it is gone (a few minutes), "
                             "then rerun `provision up`")
        if self._ready(res.live):
            return res
        nfw = ctx.aws.network_firewall
        with translate(f"wait for network firewall {self.name}"):
            got = _poll(ctx, self.key, f"network firewall {self.name}",
                        lambda: nfw.describe_firewall(FirewallArn=res.id), self._ready, _describe_status,
                        FIREWALL_POLL_SECONDS, FIREWALL_DEADLINE_SECONDS, failed=_failure)
        return self._resource(got)

    def _ready(self, got: dict[str, Any]) -> bool:
        status = got.get("FirewallStatus", {})
        endpoints = endpoints_by_az(got)
        return (status.get("Status") == "READY" and status.get("ConfigurationSyncStateSummary") == "IN_SYNC"
                and all(az in endpoints for az in self.azs))

    def ensure(self, ctx: Context, res: Resource, apply: bool) -> list[str]:
        changes: list[str] = []
        nfw = ctx.aws.network_firewall
        fw = res.live["Firewall"]
        token = res.live.get("UpdateToken")
        with translate(f"update network firewall {self.name}"):
            policy = _recorded(ctx, POLICY_KEY, "the firewall policy")
            if aspect(changes, apply, "firewall policy", fw.get("FirewallPolicyArn") != policy):
                # The policy-change protection refuses the association: lifted for this call, put back below.
                if fw.get("FirewallPolicyChangeProtection"):
                    token = self._protect(nfw, res.id, "FirewallPolicyChangeProtection", False, token)
                    fw["FirewallPolicyChangeProtection"] = False
                token = nfw.associate_firewall_policy(FirewallArn=res.id, FirewallPolicyArn=policy,
                                                      **_token(token))["UpdateToken"]
            wanted = set(self._subnets(ctx))
            have = {m["SubnetId"] for m in fw.get("SubnetMappings", [])}
            add = aspect(changes, apply, "subnets (added)", bool(wanted - have))
            remove = aspect(changes, apply, "subnets (removed)", bool(have - wanted))
            if (add or remove) and fw.get("SubnetChangeProtection"):
                token = self._protect(nfw, res.id, "SubnetChangeProtection", False, token)
                fw["SubnetChangeProtection"] = False
            if add:
                token = nfw.associate_subnets(FirewallArn=res.id, **_token(token),
                                              SubnetMappings=[{"SubnetId": s} for s in sorted(wanted - have)]
                                              )["UpdateToken"]
            if remove:
                token = nfw.disassociate_subnets(FirewallArn=res.id, **_token(token),
                                                 SubnetIds=sorted(have - wanted))["UpdateToken"]
            for flag in PROTECTIONS:
                if aspect(changes, apply, PROTECTIONS[flag], not fw.get(flag)):
                    token = self._protect(nfw, res.id, flag, True, token)
            missing = _missing_tags(ctx, self, tag_map(fw.get("Tags")))
            if aspect(changes, apply, "tags", bool(missing)):
                nfw.tag_resource(ResourceArn=res.id, Tags=tag_list(missing))
        # In `up`, wait() has made it READY; in `status`, a firewall still provisioning or syncing a policy change
        # is reported, since until then its endpoints or rules are not in force.
        if not apply and not self._ready(res.live):
            changes.append(f"not ready ({_describe_status(res.live)})")
        return changes

    def delete(self, ctx: Context, res: Resource) -> None:
        nfw = ctx.aws.network_firewall
        fw = res.live["Firewall"]
        if res.live.get("FirewallStatus", {}).get("Status") == "DELETING":
            return
        with translate(f"delete network firewall {self.name}"):
            if fw.get("DeleteProtection"):
                self._protect(nfw, res.id, "DeleteProtection", False, res.live.get("UpdateToken"))
            gone_if_missing(NOT_FOUND, nfw.delete_firewall, FirewallArn=res.id)

    def wait_deleted(self, ctx: Context, res: Resource) -> None:
        # Its endpoints go with it; the policy can be deleted only once no firewall uses it.
        _wait_gone(ctx, self.key, f"network firewall {self.name}",
                   lambda: none_if_missing(NOT_FOUND, ctx.aws.network_firewall.describe_firewall, FirewallArn=res.id),
                   status=lambda got: _describe_status(got or {}), poll=FIREWALL_POLL_SECONDS,
                   deadline=FIREWALL_DEADLINE_SECONDS, failed=lambda got: _deletion_failure(got or {}))


    @staticmethod
    def _protect(nfw: Any, arn: str, flag: str, on: bool, token: str | None) -> str | None:
        call = {"DeleteProtection": nfw.update_firewall_delete_protection,
                "SubnetChangeProtection": nfw.update_subnet_change_protection,
                "FirewallPolicyChangeProtection": nfw.update_firewall_policy_change_protection}[flag]
        try:
            answer = call(FirewallArn=arn, **{flag: on}, **_token(token))
        except ClientError as e:
            if error_code(e) != "InvalidTokenException":
                raise
            # The token is stale: someone changed the firewall, or our own attempt whose reply was lost did
            # (botocore retried it). Read it again: done if the flag is already so, else once more, up to date.
            got = nfw.describe_firewall(FirewallArn=arn)
            if bool(got["Firewall"].get(flag)) == on:
                return str(got.get("UpdateToken") or "") or None
            answer = call(FirewallArn=arn, **{flag: on}, **_token(got.get("UpdateToken")))
        return str(answer["UpdateToken"]) if answer.get("UpdateToken") else token


def endpoints_by_az(got: dict[str, Any]) -> dict[str, str]:
    """AZ -> firewall endpoint ID, from DescribeFirewall's SyncStates (AZs whose endpoint exists yet)."""
    states = got.get("FirewallStatus", {}).get("SyncStates", {}) or {}
    return {az: s["Attachment"]["EndpointId"] for az, s in sorted(states.items())
            if s.get("Attachment", {}).get("EndpointId")}


def _describe_status(got: dict[str, Any]) -> str:
    status = got.get("FirewallStatus", {})
    summary = f"{status.get('Status', 'unknown')}, {status.get('ConfigurationSyncStateSummary', 'unknown')}"
    problems = firewall_problems(got)
    return f"{summary}: {'; '.join(problems)}" if problems else summary


def firewall_problems(got: dict[str, Any]) -> list[str]:
    """What keeps the firewall from becoming ready that waiting will not fix, in AWS's words: FAILED or ERROR
    endpoints with their StatusMessage, CAPACITY_CONSTRAINED configuration, a FAILED firewall."""
    status = got.get("FirewallStatus", {})
    problems = []
    constrained = False
    for az, sync in sorted((status.get("SyncStates") or {}).items()):
        attachment = sync.get("Attachment") or {}
        if attachment.get("Status") in FAILED_ATTACHMENT_STATUSES:
            problems.append(f"its endpoint in {az} is {attachment['Status']}: "
                            f"{attachment.get('StatusMessage') or 'AWS gives no reason'}")
        objects = [arn.rsplit("/", 1)[-1] for arn, config in sorted((sync.get("Config") or {}).items())
                   if config.get("SyncStatus") == CAPACITY_CONSTRAINED]
        if objects:
            constrained = True
            message = attachment.get("StatusMessage") if attachment.get("Status") not in FAILED_ATTACHMENT_STATUSES \
                else None
            problems.append(f"in {az}, {', '.join(objects)} {'is' if len(objects) == 1 else 'are'} "
                            f"{CAPACITY_CONSTRAINED}{': ' + message if message else ''}")
    if status.get("ConfigurationSyncStateSummary") == CAPACITY_CONSTRAINED and not constrained:
        problems.append(f"its configuration is {CAPACITY_CONSTRAINED}")
    if status.get("Status") in FAILED_FIREWALL_STATUSES and not problems:
        problems.append(f"it is {status['Status']} (AWS gives no reason in its endpoints' status)")
    return problems


def _failure(got: dict[str, Any]) -> str | None:
    """Why waiting for this firewall is pointless, with what to do; None while it may still get there."""
    problems = firewall_problems(got)
    if not problems:
        return None
    status = got.get("FirewallStatus", {})
    attachments = [s.get("Attachment", {}).get("Status") for s in (status.get("SyncStates") or {}).values()]
    if status.get("Status") == "FAILED" or "FAILED" in attachments:
        advice = ("AWS cannot recover a failed firewall: delete it (`provision down`, or turn its delete protection "
                  "off and delete it in the console), then run `provision up`")
    elif "ERROR" in attachments:
        advice = "fix what AWS says, then rerun the command: it waits for the firewall again"
    else:
        advice = ("the firewall policy's rule groups do not fit the firewall's capacity: lower what the rules need "
                  "(fewer domains or rules), then run `provision up`")
    return f"{'; '.join(problems)}. {advice}"


def _deletion_failure(got: dict[str, Any]) -> str | None:
    """Why waiting for this firewall to go is pointless: an endpoint AWS failed to delete (FAILED or ERROR)."""
    states = (got.get("FirewallStatus", {}).get("SyncStates") or {}).items()
    problems = [f"its endpoint in {az} is {s['Attachment']['Status']}: "
                f"{s['Attachment'].get('StatusMessage') or 'AWS gives no reason'}"
                for az, s in sorted(states) if (s.get("Attachment") or {}).get("Status") in FAILED_ATTACHMENT_STATUSES]
    if not problems:
        return None
    return f"{'; '.join(problems)}. Fix what AWS says (or ask AWS Support), then rerun `provision down`"


# -- logging ----------------------------------------------------------------------------------------------------


class FirewallLogging(Step):
    kind = "firewall logging"

    def __init__(self, config: Config) -> None:
        self.config = config
        super().__init__(LOGGING_KEY, f"{design.firewall_name(config.deployment)} ALERT+FLOW logs",
                         (FIREWALL_KEY, *(log_group_key(t) for t in design.LOG_TYPES)))

    def wanted(self) -> list[dict[str, Any]]:
        return design.log_destinations({t: design.log_group_name(self.config.deployment, t)
                                        for t in design.LOG_TYPES})

    def _firewall_arn(self, ctx: Context) -> str | None:
        """Our firewall's ARN: the recorded one, else found by name and checked for our tags."""
        nfw = ctx.aws.network_firewall
        name = design.firewall_name(ctx.deployment)
        arn = ctx.state.resource_id(FIREWALL_KEY)
        got = _described_firewall(ctx, arn, keep=False)
        if got is None:
            got = none_if_missing(NOT_FOUND, nfw.describe_firewall, FirewallName=name)
        if got is None:
            return None
        _require_owned(ctx, f"network firewall {name}", tag_map(got["Firewall"].get("Tags")))
        return str(got["Firewall"]["FirewallArn"])

    def find(self, ctx: Context) -> Resource | None:
        with translate(f"read logging of {design.firewall_name(ctx.deployment)}"):
            arn = self._firewall_arn(ctx)
            if arn is None:
                return None
            got = none_if_missing(NOT_FOUND, ctx.aws.network_firewall.describe_logging_configuration,
                                  FirewallArn=arn)
        configs = ((got or {}).get("LoggingConfiguration") or {}).get("LogDestinationConfigs") or []
        if not configs:
            return None
        return Resource(arn, outputs={"log_types": [c["LogType"] for c in configs]}, live={"configs": configs})

    def _apply(self, ctx: Context, arn: str, calls: list[list[dict[str, Any]]]) -> None:
        for configs in calls:
            ctx.aws.network_firewall.update_logging_configuration(
                FirewallArn=arn, LoggingConfiguration={"LogDestinationConfigs": configs})

    def create(self, ctx: Context) -> Resource:
        wanted = self.wanted()
        with translate(f"turn on logging of {design.firewall_name(ctx.deployment)}"):
            # `find` has just checked the firewall is ours, and the engine records its ARN before this step runs.
            arn = ctx.state.resource_id(FIREWALL_KEY) or self._firewall_arn(ctx)
            if arn is None:
                raise CloudError(f"network firewall {design.firewall_name(ctx.deployment)} does not exist")
            self._apply(ctx, arn, design.logging_changes([], wanted))
        return Resource(arn, outputs={"log_types": [c["LogType"] for c in wanted]}, live={"configs": wanted})

    def ensure(self, ctx: Context, res: Resource, apply: bool) -> list[str]:
        changes: list[str] = []
        wanted = self.wanted()
        calls = design.logging_changes(res.live["configs"], wanted)
        if aspect(changes, apply, f"log destinations ({len(calls)} change{'s' if len(calls) > 1 else ''})",
                  bool(calls)):
            with translate(f"update logging of {design.firewall_name(ctx.deployment)}"):
                self._apply(ctx, res.id, calls)
            res.live["configs"] = wanted
        return changes

    def delete(self, ctx: Context, res: Resource) -> None:
        # Off before the firewall and the log groups go: one destination per call, as AWS requires.
        with translate(f"turn off logging of {design.firewall_name(ctx.deployment)}"):
            self._apply(ctx, res.id, design.logging_changes(res.live["configs"], []))


# -- routes to the endpoints ------------------------------------------------------------------------------------


class FirewallRoutes(Step):
    """One AZ's routes through its firewall endpoint (and the NAT subnet's way out, which must come after them),
    in route tables the network steps own. Made in `design.firewall_routes` order, removed in the reverse."""

    kind = "firewall routes"

    def __init__(self, config: Config, az: str) -> None:
        self.config = config
        self.az = az
        lay = layout(config)
        self.routes = design.firewall_routes(lay, az)
        needs = (FIREWALL_KEY, keys.hub("igw"), *dict.fromkeys(r.table for r in self.routes))
        super().__init__(routes_key(az), f"{design.firewall_name(config.deployment)} routes in {az}", needs)

    def details(self) -> dict[str, Any]:
        return {"az": self.az, "routes": "; ".join(f"{r.table.split('/')[1]}: {r.destination} -> "
                                                   f"{'endpoint' if r.to_endpoint else 'IGW'}" for r in self.routes)}

    @staticmethod
    def _slot(route: design.FirewallRoute) -> str:
        return f"{route.table} {route.destination}"

    def _table(self, ctx: Context, route: design.FirewallRoute) -> str:
        return str(_recorded(ctx, route.table, "a hub route table"))

    def _endpoint(self, ctx: Context) -> str:
        endpoints = _recorded(ctx, FIREWALL_KEY, "the network firewall", "endpoints")
        if self.az not in endpoints:
            raise CloudError(f"the network firewall has no endpoint in {self.az}; run `provision up`")
        return str(endpoints[self.az])

    def _targets(self, ctx: Context) -> dict[str, tuple[str, str]]:
        """Each route's wanted target: (CreateRoute parameter, ID)."""
        endpoint = self._endpoint(ctx)
        igw = str(_recorded(ctx, keys.hub("igw"), "the internet gateway"))
        return {self._slot(r): ("VpcEndpointId", endpoint) if r.to_endpoint else ("GatewayId", igw)
                for r in self.routes}

    def find(self, ctx: Context) -> Resource | None:
        if any(ctx.state.resource_id(route.table) is None for route in self.routes):
            return None  # the network has no such tables (yet, or any more): no route of ours can be in them
        tables = {self._slot(route): self._table(ctx, route) for route in self.routes}
        with translate(f"read hub route tables for {self.az}"):
            # A filter, not RouteTableIds: a table deleted outside provision is then simply absent, not an error
            # that would stop `down` for good.
            described = route_tables(ctx, tables.values())
        by_id = {t["RouteTableId"]: t for t in described}
        targets: dict[str, str | None] = {}
        for route in self.routes:
            live = next((r for r in by_id.get(tables[self._slot(route)], {}).get("Routes", [])
                         if r.get("DestinationCidrBlock") == route.destination), None)
            targets[self._slot(route)] = route_target(live) if live else None
        if not any(targets.values()):
            return None
        return self._resource(tables, targets)

    def _resource(self, tables: dict[str, str], targets: dict[str, str | None]) -> Resource:
        by_table = {r.table: tables[self._slot(r)] for r in self.routes}
        return Resource(",".join(f"{tables[self._slot(r)]}:{r.destination}" for r in self.routes),
                        outputs={"route_tables": by_table}, live={"targets": targets, "tables": tables})

    def create(self, ctx: Context) -> Resource:
        tables = {self._slot(r): self._table(ctx, r) for r in self.routes}
        res = self._resource(tables, {self._slot(r): None for r in self.routes})
        self._fix(ctx, res, self._targets(ctx))
        return res

    def _fix(self, ctx: Context, res: Resource, wanted: dict[str, tuple[str, str]]) -> None:
        ec2 = ctx.aws.ec2
        for route in self.routes:  # in order: the way out to the IGW only once the endpoint routes are in place
            slot = self._slot(route)
            table, current = res.live["tables"][slot], res.live["targets"][slot]
            param, target = wanted[slot]
            if current == target:
                continue
            with translate(f"route {route.destination} in {table} to {target}"):
                if current is None:
                    create_route(ec2, table, route.destination, param, target)
                else:
                    ec2.replace_route(RouteTableId=table, DestinationCidrBlock=route.destination, **{param: target})
            res.live["targets"][slot] = target

    def ensure(self, ctx: Context, res: Resource, apply: bool) -> list[str]:
        changes: list[str] = []
        wanted = self._targets(ctx)
        wrong = [f"{r.table} route {r.destination} -> {res.live['targets'][self._slot(r)] or 'nothing'} "
                 f"(should be {wanted[self._slot(r)][1]})"
                 for r in self.routes if res.live["targets"][self._slot(r)] != wanted[self._slot(r)][1]]
        if aspect(changes, apply, "; ".join(wrong), bool(wrong)):
            self._fix(ctx, res, wanted)
        return changes

    def delete(self, ctx: Context, res: Resource) -> None:
        ec2 = ctx.aws.ec2
        for route in reversed(self.routes):  # the way out first, the endpoint routes last
            slot = self._slot(route)
            table = res.live["tables"][slot]
            if res.live["targets"][slot] is None:
                continue
            with translate(f"delete route {route.destination} from {table}"):
                gone_if_missing(ROUTE_NOT_FOUND, ec2.delete_route, RouteTableId=table,
                                DestinationCidrBlock=route.destination)


# -- status check: the metastore's addresses --------------------------------------------------------------------


class MetastoreAddressesCheck(Check):
    """The 3306 rule pins the addresses the metastore host had at `up`; RDS addresses change (failover,
    maintenance), and then the workspaces lose their metastore until `up` pins the new ones."""

    def __init__(self, config: Config) -> None:
        self.config = config
        super().__init__(keys.hub("firewall/metastore-addresses"), "legacy Hive metastore addresses pinned in 3306")

    def run(self, ctx: Context) -> list[str]:
        host = layout(self.config).region.legacy_metastore_host
        seen = recorded_metastore(ctx)
        if seen is None or seen.get("host") != host:
            return [f"no addresses of {host} recorded; `provision up` resolves and pins them"]
        now = resolve_metastore(ctx, host)
        pinned = tuple(seen.get("addresses", ()))
        if now != pinned:
            return [f"{host} now resolves to {', '.join(now)}; the firewall passes 3306 only to "
                    f"{', '.join(pinned)} (resolved {seen.get('resolved_at', 'at the last up')}): run `provision up`"]
        return []


# -- the family -------------------------------------------------------------------------------------------------


def steps(config: Config) -> list[Step]:
    roles = design.rule_group_roles(config)
    found: list[Step] = [FirewallRuleGroup(config, role) for role in roles]
    found += [FirewallPolicy(config), *(FirewallLogGroup(config, t) for t in design.LOG_TYPES), Firewall(config),
              FirewallLogging(config)]
    found += [FirewallRoutes(config, h.az) for h in layout(config).hub_azs]
    return found


def checks(config: Config) -> list[Check]:
    return [MetastoreAddressesCheck(config)] if config.legacy_hive_metastore else []
