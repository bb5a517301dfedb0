"""The STRICT_ORDER, default-deny firewall policy (`hub/firewall/policy`) referencing the rule groups."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from provisioner.aws.errors import error_code, none_if_missing, translate
from provisioner.context import Context
from provisioner.design import firewall as design
from provisioner.design.config import Config
from provisioner.design.layout import layout
from provisioner.design.naming import COMPONENT_TAG, is_owned, tag_list, tag_map
from provisioner.poll import Pending, Read, block, poll_once
from provisioner.steps.base import Resource, Step, aspect
from provisioner.steps.firewall.common import (
    IN_USE,
    METASTORE_OBSERVATION,
    NOT_FOUND,
    OBSERVATIONS,
    POLICY_DEADLINE_SECONDS,
    POLICY_FIRST_POLL_SECONDS,
    POLICY_KEY,
    POLICY_POLL_SECONDS,
    PROVEN,
    _create_or_adopt,
    _delete_once_released,
    _describe_recorded,
    _recorded,
    _require_owned,
    _wait_gone,
    ensure_proven_tags,
    ensure_tags,
    firewall_changed,
    proven_by_firewall,
    read_unless_proven,
    rule_group_key,
    verified_if_designed,
)

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
        """The recorded policy, unread while the firewall proves its content (`proven_by_firewall`); else
        described by the recorded ARN, else by name."""
        proven = proven_by_firewall(ctx, self.key)
        if proven is not None:
            return proven
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
        return verified_if_designed(_policy_resource({"FirewallPolicy": policy, **created}), policy, "FirewallPolicy")

    def poll(self, ctx: Context, res: Resource) -> Resource | Pending:
        """One read of the wait for the policy to be ACTIVE (seconds after its create), scheduled by the engine:
        it sits on the firewall's path, so no worker is held and the first read comes after a second."""
        if res.live.get(PROVEN) or res.live["FirewallPolicyResponse"].get("FirewallPolicyStatus", "ACTIVE") == "ACTIVE":
            return res
        nfw = ctx.aws.network_firewall
        got: list[dict[str, Any]] = []

        def read() -> Read:
            got[:] = [nfw.describe_firewall_policy(FirewallPolicyArn=res.id)]
            status = got[0]["FirewallPolicyResponse"].get("FirewallPolicyStatus")
            return Read(status == "ACTIVE", note=f"policy {status}")

        with translate(f"wait for firewall policy {self.name}"):
            waited = poll_once(res, f"firewall policy {self.name}", read, every=POLICY_POLL_SECONDS,
                               deadline=POLICY_DEADLINE_SECONDS, first=POLICY_FIRST_POLL_SECONDS)
        if isinstance(waited, Pending):
            return waited
        return verified_if_designed(_policy_resource(got[0]), self.wanted(ctx), "FirewallPolicy")

    def wait(self, ctx: Context, res: Resource) -> Resource:
        return block(ctx, self.key, lambda: self.poll(ctx, res))

    def ensure(self, ctx: Context, res: Resource, apply: bool) -> list[str]:
        changes: list[str] = []
        nfw = ctx.aws.network_firewall
        policy = self.wanted(ctx)
        with translate(f"read firewall policy {self.name}"):
            if read_unless_proven(res, policy, lambda: nfw.describe_firewall_policy(FirewallPolicyArn=res.id)):
                ensure_proven_tags(ctx, self, res, changes, apply)
                return changes
        live = res.live.get("FirewallPolicy") or {}
        diff = design.differences(policy, live)
        if aspect(changes, apply, f"policy ({', '.join(diff)})", bool(diff)):
            with translate(f"update firewall policy {self.name}"):
                updated = nfw.update_firewall_policy(FirewallPolicyArn=res.id, UpdateToken=res.live["UpdateToken"],
                                                     FirewallPolicy=policy)
                firewall_changed(ctx)
                res.live["UpdateToken"] = updated["UpdateToken"]
                res.live["FirewallPolicy"] = policy
                before = {r["ResourceArn"] for r in live.get("StatefulRuleGroupReferences") or []}
                after = {r["ResourceArn"] for r in policy["StatefulRuleGroupReferences"]}
                self._delete_superseded(ctx, sorted(before - after))
        ensure_tags(ctx, self, res.id, tag_map(res.live["FirewallPolicyResponse"].get("Tags")), changes, apply)
        verified_if_designed(res, policy, "FirewallPolicy")
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

