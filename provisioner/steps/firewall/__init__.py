"""The egress firewall: AWS Network Firewall in the hub's firewall subnets, default-deny, with ALERT and FLOW logs.

What it owns, in `up` order (the documents come from `provisioner.design.firewall`):

- `hub/firewall/rule-group/<role>`: the stateful rule groups (deny, control-plane unless back-end PrivateLink is
  on, metastore when the legacy Hive metastore is on, spoke-allowlist, allowlist). The metastore group pins the
  addresses the metastore host resolves to at `up`; the control-plane group passes by SNI, the workspace hosts
  once known (`hub/firewall/workspace-hosts`, in `control_plane`).
- `hub/firewall/policy`: the STRICT_ORDER, default-deny policy referencing them.
- `hub/firewall/log-group/alert`, `hub/firewall/log-group/flow`: CloudWatch log groups with the configured retention.
- `hub/firewall`: the firewall, one endpoint per hub AZ; `up` waits for READY and IN_SYNC and records each AZ's
  endpoint from `SyncStates`.
- `hub/firewall/logging`: ALERT and FLOW logs to those groups, one destination change per call.
- `hub/firewall/routes/<az>`: TGW subnet route table[az] `0/0 -> endpoint[az]`, NAT subnet route table[az]
  `spoke CIDRs -> endpoint[az]` and then `0/0 -> IGW`: the same endpoint both ways, never one in another AZ,
  and the NAT's way out only once nothing reaches the NAT uninspected.

One module per resource: `rule_groups`, `policy`, `firewall`, `subnets` (the endpoint of a hub AZ dropped from the
config), `logs` (log groups and logging), `routes`, `metastore` (the 3306 addresses and their status check),
`control_plane` (the workspace hosts learnt once the workspaces exist, a family of its own, and the PrivateLink
check), and `common` (keys, deadlines, shared helpers).

Updates to rule groups and the policy carry the UpdateToken of the describe they were compared with, so a change
made meanwhile by someone else fails (InvalidTokenException) instead of being overwritten unseen. The token of
each version the tool wrote or read as designed is recorded: while the firewall runs that very version in every AZ
(`common.proven_by_firewall`), the policy or group is not described again.
"""

from __future__ import annotations

from provisioner.design import firewall as design
from provisioner.design.config import Config
from provisioner.design.layout import layout
from provisioner.steps.base import Check, Step
from provisioner.steps.firewall.common import (
    FIREWALL_KEY,
    LOGGING_KEY,
    POLICY_KEY,
    log_group_key,
    routes_key,
    rule_group_key,
)
from provisioner.steps.firewall.control_plane import HOSTS_KEY, ControlPlaneClosedCheck, FirewallWorkspaceHosts
from provisioner.steps.firewall.firewall import Firewall, endpoints_by_az, firewall_problems
from provisioner.steps.firewall.logs import FirewallLogging, FirewallLogGroup
from provisioner.steps.firewall.metastore import (
    MetastoreAddressesCheck,
    recorded_metastore,
    resolve_metastore,
)
from provisioner.steps.firewall.policy import FirewallPolicy
from provisioner.steps.firewall.routes import FirewallRoutes
from provisioner.steps.firewall.rule_groups import FirewallRuleGroup

# -- the family -------------------------------------------------------------------------------------------------


def steps(config: Config) -> list[Step]:
    roles = design.rule_group_roles(config)
    found: list[Step] = [FirewallRuleGroup(config, role) for role in roles]
    found += [FirewallPolicy(config), *(FirewallLogGroup(config, t) for t in design.LOG_TYPES), Firewall(config),
              FirewallLogging(config)]
    found += [FirewallRoutes(config, h.az) for h in layout(config).hub_azs]
    return found


def checks(config: Config) -> list[Check]:
    found: list[Check] = [MetastoreAddressesCheck(config)] if config.legacy_hive_metastore else []
    if config.private_link:
        found.append(ControlPlaneClosedCheck(config))
    return found


__all__ = [
    "FIREWALL_KEY", "HOSTS_KEY", "LOGGING_KEY", "POLICY_KEY", "ControlPlaneClosedCheck", "Firewall",
    "FirewallLogGroup", "FirewallLogging", "FirewallPolicy", "FirewallRoutes", "FirewallRuleGroup",
    "FirewallWorkspaceHosts", "MetastoreAddressesCheck", "checks", "endpoints_by_az", "firewall_problems",
    "log_group_key", "recorded_metastore", "resolve_metastore", "routes_key", "rule_group_key", "steps",
]
