"""The routes through each AZ's firewall endpoint (`hub/firewall/routes/<az>`)."""

from __future__ import annotations

from typing import Any

from provisioner.aws.errors import CloudError, gone_if_missing, translate
from provisioner.context import Context
from provisioner.design import firewall as design
from provisioner.design.config import Config
from provisioner.design.layout import layout
from provisioner.design.routes import route_target
from provisioner.steps import keys
from provisioner.steps.base import Resource, Step, aspect
from provisioner.steps.ec2_common import create_route, route_tables
from provisioner.steps.firewall.common import (
    FIREWALL_KEY,
    ROUTE_NOT_FOUND,
    _recorded,
    routes_key,
)

# -- routes to the endpoints ------------------------------------------------------------------------------------


class FirewallRoutes(Step):
    """One AZ's routes through its firewall endpoint (and the NAT subnet's way out, which must come after them),
    in route tables the network steps own. Made in `design.firewall_routes` order, removed in the reverse."""

    kind = "firewall routes"

    def __init__(self, config: Config, az: str) -> None:
        self.config = config
        self.az = az
        lay = layout(config)
        self.routes = design.firewall_routes(lay, az)
        needs = (FIREWALL_KEY, keys.hub("igw"), *dict.fromkeys(r.table for r in self.routes))
        super().__init__(routes_key(az), f"{design.firewall_name(config.deployment)} routes in {az}", needs)

    def details(self) -> dict[str, Any]:
        return {"az": self.az, "routes": "; ".join(f"{r.table.split('/')[1]}: {r.destination} -> "
                                                   f"{'endpoint' if r.to_endpoint else 'IGW'}" for r in self.routes)}

    @staticmethod
    def _slot(route: design.FirewallRoute) -> str:
        return f"{route.table} {route.destination}"

    def _table(self, ctx: Context, route: design.FirewallRoute) -> str:
        return str(_recorded(ctx, route.table, "a hub route table"))

    def _endpoint(self, ctx: Context) -> str:
        endpoints = _recorded(ctx, FIREWALL_KEY, "the network firewall", "endpoints")
        if self.az not in endpoints:
            raise CloudError(f"the network firewall has no endpoint in {self.az}; run `provision up`")
        return str(endpoints[self.az])

    def _targets(self, ctx: Context) -> dict[str, tuple[str, str]]:
        """Each route's wanted target: (CreateRoute parameter, ID)."""
        endpoint = self._endpoint(ctx)
        igw = str(_recorded(ctx, keys.hub("igw"), "the internet gateway"))
        return {self._slot(r): ("VpcEndpointId", endpoint) if r.to_endpoint else ("GatewayId", igw)
                for r in self.routes}

    def find(self, ctx: Context) -> Resource | None:
        if any(ctx.state.resource_id(route.table) is None for route in self.routes):
            return None  # the network has no such tables (yet, or any more): no route of ours can be in them
        tables = {self._slot(route): self._table(ctx, route) for route in self.routes}
        with translate(f"read hub route tables for {self.az}"):
            # A filter, not RouteTableIds: a table deleted outside provision is then simply absent, not an error
            # that would stop `down` for good.
            described = route_tables(ctx, tables.values())
        by_id = {t["RouteTableId"]: t for t in described}
        targets: dict[str, str | None] = {}
        for route in self.routes:
            live = next((r for r in by_id.get(tables[self._slot(route)], {}).get("Routes", [])
                         if r.get("DestinationCidrBlock") == route.destination), None)
            targets[self._slot(route)] = route_target(live) if live else None
        if not any(targets.values()):
            return None
        return self._resource(tables, targets)

    def _resource(self, tables: dict[str, str], targets: dict[str, str | None]) -> Resource:
        by_table = {r.table: tables[self._slot(r)] for r in self.routes}
        return Resource(",".join(f"{tables[self._slot(r)]}:{r.destination}" for r in self.routes),
                        outputs={"route_tables": by_table}, live={"targets": targets, "tables": tables})

    def create(self, ctx: Context) -> Resource:
        tables = {self._slot(r): self._table(ctx, r) for r in self.routes}
        res = self._resource(tables, {self._slot(r): None for r in self.routes})
        self._fix(ctx, res, self._targets(ctx))
        return res

    def _fix(self, ctx: Context, res: Resource, wanted: dict[str, tuple[str, str]]) -> None:
        ec2 = ctx.aws.ec2
        for route in self.routes:  # in order: the way out to the IGW only once the endpoint routes are in place
            slot = self._slot(route)
            table, current = res.live["tables"][slot], res.live["targets"][slot]
            param, target = wanted[slot]
            if current == target:
                continue
            with translate(f"route {route.destination} in {table} to {target}"):
                if current is None:
                    create_route(ec2, table, route.destination, param, target)
                else:
                    ec2.replace_route(RouteTableId=table, DestinationCidrBlock=route.destination, **{param: target})
            res.live["targets"][slot] = target

    def ensure(self, ctx: Context, res: Resource, apply: bool) -> list[str]:
        changes: list[str] = []
        wanted = self._targets(ctx)
        wrong = [f"{r.table} route {r.destination} -> {res.live['targets'][self._slot(r)] or 'nothing'} "
                 f"(should be {wanted[self._slot(r)][1]})"
                 for r in self.routes if res.live["targets"][self._slot(r)] != wanted[self._slot(r)][1]]
        if aspect(changes, apply, "; ".join(wrong), bool(wrong)):
            self._fix(ctx, res, wanted)
        return changes

    def delete(self, ctx: Context, res: Resource) -> None:
        ec2 = ctx.aws.ec2
        for route in reversed(self.routes):  # the way out first, the endpoint routes last
            slot = self._slot(route)
            table = res.live["tables"][slot]
            if res.live["targets"][slot] is None:
                continue
            with translate(f"delete route {route.destination} from {table}"):
                gone_if_missing(ROUTE_NOT_FOUND, ec2.delete_route, RouteTableId=table,
                                DestinationCidrBlock=route.destination)


