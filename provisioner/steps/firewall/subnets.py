"""The firewall's endpoint in a hub AZ the config no longer has, until `up --prune` removes it.

A hub AZ dropped from the config (fewer `hub_availability_zones`) keeps its endpoint while its routes may still
point at it: `up` leaves its subnet mapped to the firewall (`dropped_az_subnets`), and `up --prune` deletes the
mapping only after that AZ's firewall routes are gone (prune.py orders it so), and before its subnets go, which
AWS refuses while the endpoint's interface is in them. The firewall keeps subnet-change protection on: it is
lifted for the one DisassociateSubnets call and put back at once, as `Firewall.ensure` does for its own changes.
The endpoint then goes on its own; the step waits until `SyncStates` no longer lists the AZ.
"""

from __future__ import annotations

from typing import Any

from provisioner.aws.errors import none_if_missing, translate
from provisioner.context import Context
from provisioner.design import firewall as design
from provisioner.design.config import Config
from provisioner.steps import keys
from provisioner.steps.base import Resource, Step
from provisioner.steps.firewall.common import (
    FIREWALL_DEADLINE_SECONDS,
    FIREWALL_KEY,
    FIREWALL_POLL_SECONDS,
    NOT_FOUND,
    _poll,
    firewall_changed,
)
from provisioner.steps.firewall.firewall import Firewall


def endpoint_key(az: str) -> str:
    return keys.hub("firewall/endpoint", az)


class DroppedAzEndpoint(Step):
    """The firewall's subnet mapping (and so its endpoint) in one dropped hub AZ. Never made by `up`: only found
    and deleted."""

    kind = "firewall endpoint"

    def __init__(self, config: Config, az: str) -> None:
        self.az = az
        # On the firewall too: `down`, deleting both, removes the endpoint before the firewall goes.
        super().__init__(endpoint_key(az), f"{design.firewall_name(config.deployment)} endpoint in {az}",
                         (keys.hub("firewall-subnet", az), FIREWALL_KEY))

    def details(self) -> dict[str, Any]:
        return {"az": self.az}

    def _describe(self, ctx: Context) -> Any:
        arn = ctx.state.resource_id(FIREWALL_KEY)
        if not arn:
            return None
        return none_if_missing(NOT_FOUND, ctx.aws.network_firewall.describe_firewall, FirewallArn=arn)

    def find(self, ctx: Context) -> Resource | None:
        subnet = ctx.state.resource_id(keys.hub("firewall-subnet", self.az))
        with translate(f"read the network firewall's endpoint in {self.az}"):
            got = self._describe(ctx)
        if not subnet or got is None:
            return None
        mapped = subnet in {m["SubnetId"] for m in got["Firewall"].get("SubnetMappings", [])}
        attachment = got.get("FirewallStatus", {}).get("SyncStates", {}).get(self.az, {}).get("Attachment", {})
        if not mapped and attachment.get("SubnetId") != subnet:
            return None
        return Resource(subnet, live={"firewall": got, "mapped": mapped})

    def create(self, ctx: Context) -> Resource:
        raise NotImplementedError("a dropped AZ's endpoint is only ever deleted")

    def delete(self, ctx: Context, res: Resource) -> None:
        if not res.live["mapped"]:
            return  # already disassociated: the endpoint is on its way out
        nfw = ctx.aws.network_firewall
        got = res.live["firewall"]
        arn = got["Firewall"]["FirewallArn"]
        token = got.get("UpdateToken")
        with translate(f"remove the network firewall's endpoint in {self.az}"):
            # AWS refuses subnet changes while SubnetChangeProtection is on: off for this call, on again after it.
            if got["Firewall"].get("SubnetChangeProtection"):
                token = Firewall._protect(nfw, arn, "SubnetChangeProtection", False, token)
            answer = nfw.disassociate_subnets(FirewallArn=arn, SubnetIds=[res.id],
                                              **({"UpdateToken": token} if token else {}))
            Firewall._protect(nfw, arn, "SubnetChangeProtection", True, answer.get("UpdateToken"))
        firewall_changed(ctx)

    def wait_deleted(self, ctx: Context, res: Resource) -> None:
        """Until the firewall no longer lists the AZ: its endpoint's interface then no longer holds the subnet."""
        def gone(got: Any) -> bool:
            return got is None or self.az not in got.get("FirewallStatus", {}).get("SyncStates", {})

        with translate(f"wait for the network firewall's endpoint in {self.az} to go"):
            _poll(ctx, self.key, f"the network firewall's endpoint in {self.az} to go", lambda: self._describe(ctx),
                  gone, lambda got: "DELETING", FIREWALL_POLL_SECONDS, FIREWALL_DEADLINE_SECONDS)
