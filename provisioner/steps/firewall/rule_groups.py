"""The stateful rule groups (`hub/firewall/rule-group/<role>`), sized, named and replaced by capacity."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from provisioner.aws.errors import error_code, none_if_missing, translate
from provisioner.context import Context
from provisioner.design import firewall as design
from provisioner.design.config import Config
from provisioner.design.layout import layout
from provisioner.design.naming import COMPONENT_TAG, is_owned, tag_list, tag_map
from provisioner.steps.base import Resource, Step, aspect
from provisioner.steps.firewall.common import (
    METASTORE_OBSERVATION,
    NOT_FOUND,
    OBSERVATIONS,
    _create_or_adopt,
    _delete_once_released,
    _describe_recorded,
    _require_owned,
    _utc_now,
    _wait_gone,
    ensure_proven_tags,
    ensure_tags,
    firewall_changed,
    proven_by_firewall,
    read_unless_proven,
    rule_group_key,
    verified_if_designed,
)
from provisioner.steps.firewall.metastore import recorded_metastore, resolve_metastore

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
        (`resolve`), else the ones recorded at the last `up`, so `status` compares with what was meant. The
        control-plane group passes the workspace hosts recorded so far (`recorded_workspace_hosts`)."""
        addresses: tuple[str, ...] = ()
        if self.role == design.METASTORE:
            addresses = self._metastore_addresses(ctx, resolve)
        hosts = recorded_workspace_hosts(ctx, self.config) if self.role == design.CONTROL_PLANE else None
        return design.rule_group(self.config, layout(self.config), self.role, addresses, hosts)

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
        """The recorded group, unread while the firewall proves its content (`proven_by_firewall`); else
        described by the recorded ARN, else found by name and tags."""
        proven = proven_by_firewall(ctx, self.key)
        if proven is not None:
            return proven
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
        # An adopted group (the name was taken) carries its own content: verified only if it is the design.
        return verified_if_designed(_rule_group_resource({"RuleGroup": dict(group.rule_group), **created}),
                                    group.rule_group, "RuleGroup")

    def ensure(self, ctx: Context, res: Resource, apply: bool) -> list[str]:
        changes: list[str] = []
        group = self.wanted(ctx, resolve=apply)
        with translate(f"read firewall rule group {res.outputs.get('name', res.id)}"):
            if read_unless_proven(res, group.rule_group,
                                  lambda: ctx.aws.network_firewall.describe_rule_group(RuleGroupArn=res.id)):
                ensure_proven_tags(ctx, self, res, changes, apply, res.outputs.get("name"))
                if apply:
                    self._remember_addresses(ctx, group)
                return changes
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
        wider = design.extra_passes(group.rule_group, res.live.get("RuleGroup"))
        described = f"rules ({', '.join(diff)})" + (
            f"; passes what the design does not: {' | '.join(wider)}" if wider else "")
        if aspect(changes, apply, described, bool(diff)):
            update_rules(ctx, res, group)
        ensure_tags(ctx, self, res.id, tag_map(response.get("Tags")), changes, apply, name)
        verified_if_designed(res, group.rule_group, "RuleGroup")
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


def update_rules(ctx: Context, res: Resource, group: design.RuleGroupDesign) -> None:
    """Send `group` to the live rule group `res` with the UpdateToken of the describe it was compared with: a
    change made meanwhile by someone else fails instead of being overwritten unseen. AWS applies the update to
    the firewall in place: flows keep passing under the old rules until the new ones are in force."""
    nfw = ctx.aws.network_firewall
    name = res.live.get("RuleGroupResponse", {}).get("RuleGroupName", res.id)
    with translate(f"update firewall rule group {name}"):
        try:
            updated = nfw.update_rule_group(RuleGroupArn=res.id, UpdateToken=res.live["UpdateToken"],
                                            RuleGroup=dict(group.rule_group), Description=group.description)
        except ClientError as e:
            if error_code(e) != "InvalidTokenException":
                raise
            # The token is stale: our own update whose reply was lost took effect (botocore retried it), or
            # someone else changed the group. Read it again: done if it is now as designed; else not ours.
            got = nfw.describe_rule_group(RuleGroupArn=res.id)
            if design.differences(group.rule_group, got.get("RuleGroup")):
                raise
            res.live.update(got)
            firewall_changed(ctx)
            return
    firewall_changed(ctx)
    res.live["UpdateToken"] = updated["UpdateToken"]
    res.live["RuleGroup"] = dict(group.rule_group)


def recorded_workspace_hosts(ctx: Context, config: Config) -> dict[str, str]:
    """Spoke name -> the host of its workspace URL as the state file records it (`provision output`): published
    once the workspace is RUNNING, dropped once it is deleted."""
    from provisioner.steps.databricks import workspace_url_output

    lay = layout(config)
    return design.workspace_hosts(lay, {s.name: ctx.state.get("outputs", workspace_url_output(s.name))
                                        for s in lay.spokes})


def _rule_group_resource(got: dict[str, Any]) -> Resource:
    response = got["RuleGroupResponse"]
    outputs = {"arn": response["RuleGroupArn"], "name": response["RuleGroupName"], "capacity": response["Capacity"]}
    return Resource(response["RuleGroupArn"], outputs=outputs, live=got)

