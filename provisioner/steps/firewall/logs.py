"""The firewall's log groups (`hub/firewall/log-group/<type>`) and its ALERT and FLOW logs (`hub/firewall/logging`)."""

from __future__ import annotations

from typing import Any

from provisioner.aws.errors import CloudError, none_if_missing, translate
from provisioner.context import Context
from provisioner.design import firewall as design
from provisioner.design.config import Config
from provisioner.design.naming import tag_map
from provisioner.steps.base import Resource, Step, aspect
from provisioner.steps.firewall.common import (
    FIREWALL_KEY,
    LOGGING_KEY,
    NOT_FOUND,
    _described_firewall,
    _require_owned,
    firewall_changed,
    log_group_key,
)
from provisioner.steps.logs import LogGroup

# -- log groups -------------------------------------------------------------------------------------------------


class FirewallLogGroup(LogGroup):
    def __init__(self, config: Config, log_type: str) -> None:
        self.log_type = log_type
        super().__init__(log_group_key(log_type), design.log_group_name(config.deployment, log_type),
                         config.firewall_log_retention_days)


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
        got = _described_firewall(ctx, arn)
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
            firewall_changed(ctx)  # a logging change gives the firewall a new UpdateToken

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


