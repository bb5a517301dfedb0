"""Route replacement in the sandbox: what moto 5.2.5 gets wrong or lacks.

- `ReplaceRoute` ignores `VpcEndpointId` (the route is left with no target at all) and keeps an endpoint target
  when the route is replaced to a gateway, NAT or TGW (moto's `Route.gateway_id` prefers it). AWS accepts only a
  Gateway Load Balancer endpoint (how Network Firewall endpoints appear) as a route target, as moto's CreateRoute
  already checks.
- `DeleteVpcEndpoints` of a gateway endpoint already being deleted removes its prefix-list routes a second time
  and fails with `InvalidRoute.NotFound` (AWS answers a repeated delete as done): a delete retried after a lost
  reply would fail.
- `ReplaceTransitGatewayRoute` does not exist. AWS replaces the target of an existing static route (to an
  attachment, or a blackhole); a route that does not exist is `InvalidRoute.NotFound`.

- A route to an internet gateway stays `active` in moto after the gateway is detached from the route table's VPC
  (or deleted); AWS reports it `blackhole`, and `up` takes an active route as proof the gateway is attached.

The first two matter to the firewall-before-NAT conversion, which moves default routes from a NAT to a firewall endpoint
and from an endpoint to the internet gateway with single ReplaceRoute calls (never a delete and a create, which
would leave a moment with no route).
"""

from __future__ import annotations

import threading
from typing import Any

from moto.core.responses import ActionResult
from moto.ec2.exceptions import EC2ClientError
from moto.ec2.models.route_tables import Route, RouteBackend
from moto.ec2.models.transit_gateway_route_tables import TransitGatewayRouteTableBackend
from moto.ec2.models.vpcs import VPCBackend
from moto.ec2.responses.route_tables import RouteTables
from moto.ec2.responses.transit_gateway_route_tables import TransitGatewayRouteTable
from moto.ec2.utils import generate_route_id

_INSTALLED_MARKER = "_provisioner_sandbox_ec2_routes"
_lock = threading.Lock()


def _error(code: str, message: str) -> EC2ClientError:
    return EC2ClientError(code, message)


def _replace_route(self: Any) -> ActionResult:
    endpoint_id = self._get_param("VpcEndpointId")
    table_id = self._get_param("RouteTableId")
    cidr = self._get_param("DestinationCidrBlock")
    backend = self.ec2_backend
    if endpoint_id:
        found = backend.describe_vpc_endpoints(vpc_end_point_ids=[endpoint_id])
        if not found or found[0].vpc_endpoint_type != "GatewayLoadBalancer":
            raise _error("RouteNotSupported", f"Route table {table_id} does not support endpoint {endpoint_id}")
    result: ActionResult = _ORIGINAL_REPLACE(self)
    table = backend.get_route_table(table_id)
    route = table._routes.get(generate_route_id(table.id, cidr, None))
    if route is not None:
        route.vpc_endpoint_id = endpoint_id or None
    return result


def _replace_transit_gateway_route(self: Any) -> ActionResult:
    cidr = self._get_param("DestinationCidrBlock")
    table_id = self._get_param("TransitGatewayRouteTableId")
    attachment_id = self._get_param("TransitGatewayAttachmentId")
    blackhole = str(self._get_param("Blackhole") or "false").lower() == "true"
    if bool(attachment_id) == blackhole:
        raise _error("InvalidParameterCombination",
                     "Exactly one of TransitGatewayAttachmentId and Blackhole must be specified")
    backend: TransitGatewayRouteTableBackend = self.ec2_backend
    table = backend.transit_gateways_route_tables.get(table_id)
    if table is None:
        raise _error("InvalidRouteTableID.NotFound", f"Transit Gateway Route Table {table_id} was deleted or does "
                                                     "not exist.")
    if cidr not in table.routes:
        raise _error("InvalidRoute.NotFound", f"No route with destination-cidr-block {cidr} in Transit Gateway "
                                              f"Route Table {table_id}")
    # The sandbox's create validates the attachment and stores the target as AWS shows it.
    del table.routes[cidr]
    route = backend.create_transit_gateway_route(table_id, cidr, attachment_id, blackhole)
    return ActionResult({"route": route})


_ORIGINAL_REPLACE: Any = None
_ORIGINAL_DELETE_ENDPOINTS: Any = None


def _delete_vpc_endpoints(self: Any, vpce_ids: list[str] | None = None) -> None:
    pending = []
    for vpce_id in vpce_ids or []:
        endpoint = self.vpc_end_points.get(vpce_id)
        if endpoint is not None and str(endpoint.state).lower() in ("deleting", "deleted"):
            continue  # already on its way out: nothing more to do, as AWS answers
        pending.append(vpce_id)
    _ORIGINAL_DELETE_ENDPOINTS(self, pending)


def _route_state(self: Route) -> str:
    """`blackhole` for a route to an internet gateway no longer attached to the table's VPC, as AWS reports it."""
    gateway = self.gateway
    if gateway is not None and str(gateway.id).startswith("igw-"):
        attached = getattr(gateway, "vpc", None)
        if attached is None or attached.id != self.route_table.vpc_id:
            return "blackhole"
    return "active"


def install() -> None:
    """Patch moto in this process; safe to call more than once."""
    global _ORIGINAL_REPLACE, _ORIGINAL_DELETE_ENDPOINTS
    with _lock:
        if getattr(RouteTables, _INSTALLED_MARKER, False):
            return
        if hasattr(TransitGatewayRouteTable, "replace_transit_gateway_route"):
            raise RuntimeError("moto now implements ReplaceTransitGatewayRoute: revisit provisioner.sandbox.ec2_routes")
        if not hasattr(RouteBackend, "replace_route"):
            raise RuntimeError("moto's RouteBackend no longer has replace_route")
        _ORIGINAL_REPLACE = RouteTables.replace_route
        RouteTables.replace_route = _replace_route  # type: ignore[method-assign]
        _ORIGINAL_DELETE_ENDPOINTS = VPCBackend.delete_vpc_endpoints
        VPCBackend.delete_vpc_endpoints = _delete_vpc_endpoints  # type: ignore[method-assign]
        if not isinstance(getattr(Route, "state", None), property):
            raise RuntimeError("moto's Route no longer has a state property")
        Route.state = property(_route_state)  # type: ignore[method-assign,assignment]
        tgw_responses: Any = TransitGatewayRouteTable
        tgw_responses.replace_transit_gateway_route = _replace_transit_gateway_route
        setattr(RouteTables, _INSTALLED_MARKER, True)

