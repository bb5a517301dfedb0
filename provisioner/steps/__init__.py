"""Every step of a deployment, family by family, in the order `plan` lists them."""

from __future__ import annotations

from provisioner.design.config import Config
from provisioner.steps import (
    bucket,
    databricks,
    dns_firewall,
    firewall,
    flow_logs,
    hub_network,
    iam,
    spoke_network,
    transit_gateway,
)
from provisioner.steps.base import Check, Step

FAMILIES = (hub_network, transit_gateway, spoke_network, firewall, dns_firewall, flow_logs, iam, bucket, databricks)


def all_steps(config: Config) -> list[Step]:
    return [step for family in FAMILIES for step in family.steps(config)]


def all_checks(config: Config) -> list[Check]:
    """Deployment-wide checks `status` runs after reading every resource (families may define `checks`)."""
    return [check for family in FAMILIES for check in getattr(family, "checks", lambda c: [])(config)]
