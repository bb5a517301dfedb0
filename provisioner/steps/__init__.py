"""Every step of a deployment, family by family, in the order `plan` lists them.

The families are imported when `FAMILIES` is first used, not with this package: the engine imports
`provisioner.steps.base`, and the families bring in the AWS and Databricks SDKs' exceptions.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from provisioner.design.config import Config
    from provisioner.steps.base import Check, Step


def _families() -> tuple[ModuleType, ...]:
    from provisioner.steps import (
        bucket,
        databricks,
        dns_firewall,
        firewall,
        flow_logs,
        hub_network,
        iam,
        privatelink,
        spoke_network,
        transit_gateway,
    )
    from provisioner.steps.firewall import control_plane

    # control_plane: the workspace hosts the firewall learns once the workspaces exist (it needs both families).
    return (hub_network, transit_gateway, spoke_network, privatelink, firewall, dns_firewall, flow_logs, iam, bucket,
            databricks, control_plane)


def __getattr__(name: str) -> Any:
    if name == "FAMILIES":
        families = globals()["FAMILIES"] = _families()
        return families
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _registered() -> tuple[Any, ...]:
    return tuple(sys.modules[__name__].FAMILIES)  # FAMILIES as set (or monkeypatched), else made now


def all_steps(config: Config) -> list[Step]:
    return [step for family in _registered() for step in family.steps(config)]


def all_checks(config: Config) -> list[Check]:
    """Deployment-wide checks `status` runs after reading every resource (families may define `checks`)."""
    return [check for family in _registered() for check in getattr(family, "checks", lambda c: [])(config)]
