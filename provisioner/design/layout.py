"""Where everything goes: the deployment's spokes and hub laid out over availability zones and CIDRs.

Pure data derived from the config; the steps build exactly this, and `plan` prints it.
"""

from __future__ import annotations

from dataclasses import dataclass

from provisioner.design.cidr import HubAzCidrs, SpokeCidrs, hub_cidrs, spoke_cidrs
from provisioner.design.config import Config
from provisioner.design.regions import Region, region


@dataclass(frozen=True)
class SpokeLayout:
    name: str
    cidrs: SpokeCidrs
    azs: tuple[str, str]


@dataclass(frozen=True)
class HubAz:
    az: str
    cidrs: HubAzCidrs


@dataclass(frozen=True)
class Layout:
    region: Region
    hub_cidr: str
    hub_azs: tuple[HubAz, ...]
    spokes: tuple[SpokeLayout, ...]

    @property
    def spoke_cidrs(self) -> tuple[str, ...]:
        return tuple(s.cidrs.vpc for s in self.spokes)

    @property
    def hub_nat_subnet_cidrs(self) -> tuple[str, ...]:
        return tuple(h.cidrs.nat_subnet for h in self.hub_azs)


def layout(config: Config) -> Layout:
    """Spokes take the region's first two AZs (Databricks needs two); the hub its first N."""
    reg = region(config.region)
    zones = reg.availability_zones
    return Layout(
        region=reg,
        hub_cidr=config.hub_cidr,
        hub_azs=tuple(HubAz(az, c) for az, c in zip(
            zones, hub_cidrs(config.hub_cidr, config.hub_availability_zones, config.hub_subnet_bits), strict=False)),
        spokes=tuple(SpokeLayout(s.name, spoke_cidrs(s.cidr), (zones[0], zones[1])) for s in config.spokes),
    )
