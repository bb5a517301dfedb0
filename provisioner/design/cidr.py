"""The address plan: the Terraform guide's `cidrsubnet(cidr, 3, n)` layout, extended to N hub AZs.

Spoke (two AZs, as Databricks needs): workspace subnets n=0,1; Transit Gateway subnets n=2,3; the PrivateLink
endpoint subnets are the two halves of n=4 (added later, so nothing existing moves; n=5..7 stay free).
Hub, per AZ i: Transit Gateway subnet n=3i, NAT (public) subnet n=3i+1, firewall subnet n=3i+2. With one
AZ this is exactly the guide (0, 1, 2). Three slots per AZ fit in 8 (3 new bits) for up to two AZs; more
AZs take 4 new bits (16 slots).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

SPOKE_NEWBITS = 3


def cidrsubnet(cidr: str, newbits: int, netnum: int) -> str:
    """Terraform's cidrsubnet() for IPv4."""
    net = ipaddress.IPv4Network(cidr)
    subnets = list(net.subnets(prefixlen_diff=newbits))
    if not 0 <= netnum < len(subnets):
        raise ValueError(f"cidrsubnet({cidr}, {newbits}, {netnum}): netnum out of range")
    return str(subnets[netnum])


def hub_newbits(azs: int) -> int:
    return 3 if 3 * azs <= 8 else 4


@dataclass(frozen=True)
class SpokeCidrs:
    vpc: str
    workspace_subnets: tuple[str, str]
    tgw_subnets: tuple[str, str]
    privatelink_subnets: tuple[str, str] = ("", "")


@dataclass(frozen=True)
class HubAzCidrs:
    tgw_subnet: str
    nat_subnet: str
    firewall_subnet: str


def spoke_cidrs(cidr: str) -> SpokeCidrs:
    return SpokeCidrs(
        vpc=cidr,
        workspace_subnets=(cidrsubnet(cidr, SPOKE_NEWBITS, 0), cidrsubnet(cidr, SPOKE_NEWBITS, 1)),
        tgw_subnets=(cidrsubnet(cidr, SPOKE_NEWBITS, 2), cidrsubnet(cidr, SPOKE_NEWBITS, 3)),
        privatelink_subnets=(cidrsubnet(cidrsubnet(cidr, SPOKE_NEWBITS, 4), 1, 0),
                             cidrsubnet(cidrsubnet(cidr, SPOKE_NEWBITS, 4), 1, 1)),
    )


def hub_cidrs(cidr: str, azs: int) -> tuple[HubAzCidrs, ...]:
    bits = hub_newbits(azs)
    return tuple(
        HubAzCidrs(
            tgw_subnet=cidrsubnet(cidr, bits, 3 * i),
            nat_subnet=cidrsubnet(cidr, bits, 3 * i + 1),
            firewall_subnet=cidrsubnet(cidr, bits, 3 * i + 2),
        )
        for i in range(azs)
    )
