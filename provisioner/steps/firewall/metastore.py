"""The legacy Hive metastore's addresses: resolved for the 3306 rule, recorded, and checked by `status`."""

from __future__ import annotations

from typing import Any

from provisioner.aws.errors import CloudError
from provisioner.context import Context
from provisioner.design import firewall as design
from provisioner.design.config import Config
from provisioner.design.layout import layout
from provisioner.steps import keys
from provisioner.steps.base import Check
from provisioner.steps.firewall.common import (
    METASTORE_OBSERVATION,
    OBSERVATIONS,
)


def resolve_metastore(ctx: Context, host: str) -> tuple[str, ...]:
    """The legacy metastore host's IPv4 addresses now, through the context's (injectable) resolver."""
    try:
        return design.metastore_addresses(ctx.resolver(host))
    except (OSError, ValueError) as e:
        raise CloudError(f"cannot resolve the legacy Hive metastore host {host} ({e}); the firewall pins TCP 3306 to "
                         "its addresses. If your workspaces use Unity Catalog only, set "
                         "firewall.legacy_hive_metastore = false") from e


def recorded_metastore(ctx: Context) -> dict[str, Any] | None:
    seen = ctx.state.get(OBSERVATIONS, METASTORE_OBSERVATION)
    return seen if isinstance(seen, dict) else None


# -- status check: the metastore's addresses --------------------------------------------------------------------


class MetastoreAddressesCheck(Check):
    """The 3306 rule pins the addresses the metastore host had at `up`; RDS addresses change (failover,
    maintenance), and then the workspaces lose their metastore until `up` pins the new ones."""

    def __init__(self, config: Config) -> None:
        self.config = config
        super().__init__(keys.hub("firewall/metastore-addresses"), "legacy Hive metastore addresses pinned in 3306")

    def run(self, ctx: Context) -> list[str]:
        host = layout(self.config).region.legacy_metastore_host
        seen = recorded_metastore(ctx)
        if seen is None or seen.get("host") != host:
            return [f"no addresses of {host} recorded; `provision up` resolves and pins them"]
        now = resolve_metastore(ctx, host)
        pinned = tuple(seen.get("addresses", ()))
        if now != pinned:
            return [f"{host} now resolves to {', '.join(now)}; the firewall passes 3306 only to "
                    f"{', '.join(pinned)} (resolved {seen.get('resolved_at', 'at the last up')}): run `provision up`"]
        return []


