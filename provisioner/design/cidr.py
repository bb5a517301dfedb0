"""The address plan: the Terraform guide's `cidrsubnet(cidr, 3, n)` layout, extended to N hub AZs.

Spoke (two AZs, as Databricks needs): workspace subnets n=0,1; Transit Gateway subnets n=2,3; the PrivateLink
endpoint subnets are the two halves of n=4 (added later, so nothing existing moves; n=5..7 stay free).
Hub, per AZ i: Transit Gateway subnet n=3i, NAT (public) subnet n=3i+1, firewall subnet n=3i+2. With one
AZ this is exactly the guide (0, 1, 2). Three slots per AZ fit in 8 (3 new bits) for up to two AZs; more
AZs take 4 new bits (16 slots). The split is chosen when the hub's subnets are made and kept for the hub's life:
fewer AZs later keep theirs where they are (the retained AZs' subnets do not move), and more AZs fit only
while the split has room for them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
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
    """The split a new hub of `azs` AZs gets."""
    return 3 if 3 * azs <= 8 else 4


def hub_azs_room(newbits: int) -> int:
    """How many AZs a hub split with `newbits` new bits has room for (three subnets each)."""
    return (1 << newbits) // 3


def recorded_hub_newbits(hub_cidr: str, subnet_cidrs: Iterable[str]) -> int | None:
    """The split of a hub whose subnets already exist, read from their CIDRs (None: none lies in `hub_cidr`,
    so there is no split to keep)."""
    hub = ipaddress.IPv4Network(hub_cidr)
    for cidr in subnet_cidrs:
        try:
            net = ipaddress.IPv4Network(cidr)
        except ValueError:
            continue
        if net.subnet_of(hub) and net.prefixlen > hub.prefixlen:
            return net.prefixlen - hub.prefixlen
    return None


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


def hub_cidrs(cidr: str, azs: int, newbits: int = 0) -> tuple[HubAzCidrs, ...]:
    """Per hub AZ, its three subnets; `newbits` is a split kept from when the hub was made (0: a new hub's)."""
    bits = newbits or hub_newbits(azs)
    if azs > hub_azs_room(bits):
        raise ValueError(f"a hub split with {bits} new bits has room for {hub_azs_room(bits)} AZs, not {azs}")
    return tuple(
        HubAzCidrs(
            tgw_subnet=cidrsubnet(cidr, bits, 3 * i),
            nat_subnet=cidrsubnet(cidr, bits, 3 * i + 1),
            firewall_subnet=cidrsubnet(cidr, bits, 3 * i + 2),
        )
        for i in range(azs)
    )
