"""The per-region Databricks facts, read from the data file shipped beside this module."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources


@dataclass(frozen=True)
class Region:
    """What a firewall and an S3 endpoint policy need to know about one AWS region."""

    name: str
    webapp: str
    scc_relay: str
    legacy_metastore_host: str
    control_plane_cidr: str
    artifact_buckets: tuple[str, ...]
    log_bucket: str
    system_tables_bucket: str
    datasets_bucket: str
    kinesis_region: str
    availability_zones: tuple[str, ...]
    # Back-end PrivateLink endpoint services (regions.json `_privatelink_source`); empty where there are none.
    privatelink_workspace_service: str = ""
    privatelink_relay_service: str = ""

    @property
    def has_privatelink(self) -> bool:
        return bool(self.privatelink_workspace_service and self.privatelink_relay_service)

    @property
    def databricks_buckets(self) -> tuple[str, ...]:
        """Every Databricks-owned bucket a workspace in this region reads or writes."""
        return (*self.artifact_buckets, self.log_bucket, self.system_tables_bucket, self.datasets_bucket)


@cache
def all_regions() -> dict[str, Region]:
    raw = json.loads(resources.files(__package__).joinpath("regions.json").read_text())
    table: dict[str, dict[str, object]] = raw["regions"]
    return {
        name: Region(
            name=name,
            webapp=str(row["webapp"]),
            scc_relay=str(row["scc_relay"]),
            legacy_metastore_host=str(row["legacy_metastore_host"]),
            control_plane_cidr=str(row["control_plane_cidr"]),
            artifact_buckets=tuple(row["artifact_buckets"]),  # type: ignore[arg-type]
            log_bucket=str(row["log_bucket"]),
            system_tables_bucket=str(row["system_tables_bucket"]),
            datasets_bucket=str(row["datasets_bucket"]),
            kinesis_region=str(row["kinesis_region"]),
            availability_zones=tuple(row["availability_zones"]),  # type: ignore[arg-type]
            privatelink_workspace_service=str(row.get("privatelink", {}).get("workspace", "")),  # type: ignore[attr-defined]
            privatelink_relay_service=str(row.get("privatelink", {}).get("scc_relay", "")),  # type: ignore[attr-defined]
        )
        for name, row in table.items()
    }


def region(name: str) -> Region:
    return all_regions()[name]
