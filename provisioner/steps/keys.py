"""Step keys: the state file's keys and the `provisioner:component` tag of what each step makes.

The keys every family relies on (other families read their IDs with `ctx.output(key)`):

Spoke `s` (AZs `az` are the layout's two spoke AZs):
    spoke/s/role, spoke/s/root-bucket
    spoke/s/vpc, spoke/s/workspace-subnet/az, spoke/s/tgw-subnet/az, spoke/s/route-table,
    spoke/s/security-group, spoke/s/s3-endpoint, spoke/s/sts-endpoint, spoke/s/kinesis-endpoint,
    spoke/s/tgw-attachment
    spoke/s/credentials, spoke/s/storage, spoke/s/network, spoke/s/workspace, spoke/s/token
    with back-end PrivateLink: spoke/s/privatelink-subnet/az, spoke/s/privatelink-route-table,
    spoke/s/privatelink-security-group, spoke/s/{workspace,relay}-endpoint,
    spoke/s/{workspace,relay}-endpoint-registration, spoke/s/private-access-settings
Hub (AZs `az` are the layout's hub AZs):
    hub/vpc, hub/igw, hub/tgw-subnet/az, hub/nat-subnet/az, hub/firewall-subnet/az, hub/eip/az, hub/nat/az,
    hub/tgw-subnet-route-table/az, hub/firewall-subnet-route-table/az, hub/nat-subnet-route-table/az,
    hub/transit-gateway, hub/tgw-attachment, hub/tgw-route-table/spokes,
    hub/tgw-route-table/hub
    (retired: hub/firewall-subnet-route-table and hub/igw-route-table, the NAT-before-firewall layout's)
Firewall:
    hub/firewall[/policy|/logging], hub/firewall/rule-group/role, hub/firewall/log-group/type, hub/firewall/routes/az
    (only deleted, by `up --prune`: hub/firewall/endpoint/az, the firewall's endpoint in a dropped hub AZ)
DNS Firewall and logs:
    hub/dns-firewall/domain-list/{allowed,blocked}, hub/dns-firewall/rule-group, spoke/s/dns-firewall,
    hub/dns-query-logging[/log-group], spoke/s/dns-query-logging,
    hub/flow-logs/log-group, hub/flow-logs/role, hub/flow-log, spoke/s/flow-log
"""

from __future__ import annotations


def spoke(spoke_name: str, what: str, az: str | None = None) -> str:
    return f"spoke/{spoke_name}/{what}/{az}" if az else f"spoke/{spoke_name}/{what}"


def hub(what: str, az: str | None = None) -> str:
    return f"hub/{what}/{az}" if az else f"hub/{what}"
