"""The control-plane range: the workspace hosts the firewall learns once the workspaces exist, and, with back-end
PrivateLink, the check that the firewall passes nothing there.

`hub/firewall/workspace-hosts` is its own family (registered after the Databricks one), since it stands on both
the control-plane rule group and every spoke's workspace. The rule group is made early with what is known then
(the web application and the relay, and the hosts of workspaces that already exist): the firewall, minutes to
READY, never waits for a workspace. Once every workspace is RUNNING, this step updates the group in place, with
its UpdateToken, to pass each workspace's host from its own spoke. Nothing is ever passed before it is needed,
and no flow already allowed is interrupted. A crash between the workspace and this step leaves the host
recorded: the next `up` adds it (the rule group step does, first thing).
"""

from __future__ import annotations

from typing import Any

from provisioner.aws.errors import CloudError, none_if_missing, translate
from provisioner.context import Context
from provisioner.design import firewall as design
from provisioner.design.config import Config
from provisioner.design.layout import layout
from provisioner.steps import keys
from provisioner.steps.base import Check, Resource, Retired, Step, aspect
from provisioner.steps.firewall.common import (
    NOT_FOUND,
    POLICY_KEY,
    PROVEN,
    proven_as,
    proven_by_firewall,
    record_verified,
    rule_group_key,
)
from provisioner.steps.firewall.rule_groups import recorded_workspace_hosts, update_rules

HOSTS_KEY = keys.hub("firewall/workspace-hosts")


class FirewallWorkspaceHosts(Step):
    """The workspace hosts in the control-plane rule group, added once the workspaces exist. It owns no resource
    of its own: its rules go with the group (`down` deletes the group), so deleting it changes nothing."""

    kind = "firewall workspace hosts"
    writes_in = True

    def __init__(self, config: Config) -> None:
        self.config = config
        self.group_key = rule_group_key(design.CONTROL_PLANE)
        spokes = tuple(s.name for s in layout(config).spokes)
        group = design.rule_group(config, layout(config), design.CONTROL_PLANE)
        # Named after the group it writes in: `plan` shows "firewall workspace hosts <group>".
        super().__init__(HOSTS_KEY, design.rule_group_name(config.deployment, design.CONTROL_PLANE, group.capacity),
                         (self.group_key, *(keys.spoke(s, "workspace") for s in spokes)))

    def details(self) -> dict[str, Any]:
        return {"spokes": ", ".join(s.name for s in layout(self.config).spokes)}

    def _wanted(self, ctx: Context) -> tuple[dict[str, str], design.RuleGroupDesign]:
        hosts = recorded_workspace_hosts(ctx, self.config)
        return hosts, design.rule_group(self.config, layout(self.config), design.CONTROL_PLANE,
                                        workspace_hosts=hosts)

    def find(self, ctx: Context) -> Resource | None:
        """The group, unread while the firewall proves it holds every recorded host (the rule group step verified
        or wrote it with them: `proven_by_firewall`); else described."""
        arn = ctx.state.resource_id(self.group_key)
        if not arn:
            return None
        hosts, group = self._wanted(ctx)
        proven = proven_by_firewall(ctx, self.group_key)
        if proven is not None and proven_as(proven, group.rule_group):
            return Resource(arn, outputs={"hosts": sorted(hosts.values())}, live=proven.live)
        with translate("read the control-plane firewall rule group"):
            got = none_if_missing(NOT_FOUND, ctx.aws.network_firewall.describe_rule_group, RuleGroupArn=arn)
        if got is None:
            return None
        missing = design.missing_workspace_hosts(group.rule_group, got.get("RuleGroup"), hosts)
        passed = sorted(host for spoke, host in hosts.items() if spoke not in missing)
        return Resource(arn, outputs={"hosts": passed}, live=got)

    def create(self, ctx: Context) -> Resource:
        # `find` finds the group whenever it exists, and `up` makes the group before this step runs.
        raise CloudError("the control-plane firewall rule group does not exist; run `provision up`")

    def ensure(self, ctx: Context, res: Resource, apply: bool) -> list[str]:
        changes: list[str] = []
        if res.live.get(PROVEN):  # `find` proved the group as designed, every host in it
            return changes
        hosts, group = self._wanted(ctx)
        missing = design.missing_workspace_hosts(group.rule_group, res.live.get("RuleGroup"), hosts)
        described = "workspace hosts not passed yet: " + ", ".join(f"{s} ({h})" for s, h in sorted(missing.items()))
        if aspect(changes, apply, described, bool(missing)):
            update_rules(ctx, res, group)
            res.outputs["hosts"] = sorted(hosts.values())
            # The group's new version, for the rule group step and the next command.
            record_verified(ctx, self.group_key, res.live["UpdateToken"], group.rule_group)
        return changes

    def delete(self, ctx: Context, res: Resource) -> None:
        return None


def steps(config: Config) -> list[Step]:
    """The family: the hosts step, or with back-end PrivateLink (no control-plane group at all) its retirement,
    once the policy no longer references the group."""
    hosts = FirewallWorkspaceHosts(config)
    if config.private_link:
        return [Retired(hosts, (POLICY_KEY,), "with PrivateLink the firewall passes nothing to the control plane")]
    return [hosts]


class ControlPlaneClosedCheck(Check):
    """With back-end PrivateLink the spokes reach the workspace API and the relay through their interface
    endpoints; the firewall passes nothing to the public control-plane range. Read from the live policy."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.cidr = layout(config).region.control_plane_cidr
        super().__init__(keys.hub("firewall/control-plane-closed"),
                         f"firewall passes nothing to the control-plane range {self.cidr} (PrivateLink)")

    def run(self, ctx: Context) -> list[str]:
        from provisioner.egress_live import read_firewall

        policy = read_firewall(ctx).policy
        groups = sorted(policy.stateful, key=lambda g: (g.priority is None, g.priority or 0))
        return [f"passes to {self.cidr}: {found}; `provision up` puts the designed rules back"
                for found in design.passes_to_range([g.document for g in groups], self.cidr)]
