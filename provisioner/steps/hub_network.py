"""The hub VPC: where every spoke's internet traffic leaves, through a NAT gateway and the firewall of its AZ.

Owns, for the hub: the VPC and its internet gateway; per hub AZ a TGW-attachment subnet, a public NAT subnet,
a firewall subnet, an Elastic IP and a NAT gateway; the route tables of design/routes.py (TGW subnet[az],
firewall subnet[az], NAT subnet[az]). The routes through the firewall endpoints, and the NAT subnet's way out
to the IGW, are the firewall family's; it finds these tables with `ctx.output("hub/<what>-route-table/<az>")`.
A deployment built NAT-before-firewall is converted in place: its shared firewall-subnet table and IGW edge
table are retired once every AZ's new routes are in place.

Found by recorded ID, then by the `provisioner:deployment` + `provisioner:component` tags (live states
only: a deleted NAT gateway stays listed as `deleted` for an hour). Deleted in reverse: route tables, NAT
gateways (waited out, since AWS keeps their addresses until they are gone), Elastic IPs, subnets, the
internet gateway (detached first), the VPC.
"""

from __future__ import annotations

import json
from typing import Any

from provisioner.aws.errors import CloudError, applied, gone_if_missing, translate
from provisioner.context import Context
from provisioner.design import routes as rt
from provisioner.design.cidr import HubAzCidrs
from provisioner.design.config import Config
from provisioner.design.layout import layout
from provisioner.design.naming import COMPONENT_TAG, resource_name, tag_map
from provisioner.steps import keys
from provisioner.steps.base import Check, Resource, Retired, Step, aspect, cannot_fix
from provisioner.steps.ec2_common import (
    ADDRESS,
    INTERNET_GATEWAY,
    NAT_GATEWAY,
    ROUTE_TABLE,
    Ec2Step,
    client_token,
    create_once,
    deployment_items,
    listed_by_tags,
    retry_while,
)
from provisioner.steps.vpc import RouteTable, Subnet, Vpc

# AWS releases a deleted NAT gateway's address (and the VPC's "mapped public addresses" that block detaching
# its internet gateway) a little after the NAT reports `deleted`.
ADDRESS_RELEASE_DEADLINE = 300.0
# Until it has, ReleaseAddress answers InvalidIPAddress.InUse, or AuthFailure ("You do not have permission to
# access the specified resource") while it detaches the NAT's network interface. AuthFailure is retried only
# here, right after calls with the same credentials worked: bad credentials fail the first call of the run, and
# a missing permission is UnauthorizedOperation, which is not retried.
ADDRESS_RELEASE_CODES = ("InvalidIPAddress.InUse", "AuthFailure")
# CreateNatGateway right after AllocateAddress can answer InvalidElasticIpID.NotFound: the new address is not
# visible to it yet (hashicorp/terraform-provider-aws#27087). AWS makes nothing on that answer, and the retry
# carries the same ClientToken, so retrying cannot make a second NAT gateway.
ALLOCATION_VISIBLE_CODES = ("InvalidElasticIpID.NotFound",)
ALLOCATION_VISIBLE_DEADLINE = 120.0


class InternetGateway(Ec2Step):
    kind = "internet gateway"
    resource = INTERNET_GATEWAY
    exists_waiter = "InternetGatewayExists"

    def __init__(self, config: Config) -> None:
        super().__init__(keys.hub("igw"), resource_name(config.deployment, "hub-igw"), (keys.hub("vpc"),))

    def find(self, ctx: Context) -> Resource | None:
        """Without a describe of its own when the hub's route tables (read anyway) route to the recorded gateway
        and AWS calls that route active: a route to a gateway detached from its VPC, or deleted, is a blackhole.
        Its tags then come from the Tagging API's one read (`listed_by_tags`); anything short of that proof
        describes it."""
        with translate(f"read {self.kind} {self.key}"):
            proven = self._proven(ctx)
        return proven if proven is not None else super().find(ctx)

    def _proven(self, ctx: Context) -> Resource | None:
        vpc_id = ctx.state.resource_id(keys.hub("vpc"))
        listed = listed_by_tags(ctx, self, INTERNET_GATEWAY) if vpc_id else None
        if listed is None:
            return None
        routes = [r for t in deployment_items(ctx, ROUTE_TABLE) if t.get("VpcId") == vpc_id
                  for r in t.get("Routes", [])]
        if not any(r.get("GatewayId") == listed["InternetGatewayId"] and r.get("State") == "active" for r in routes):
            return None
        return self.found({**listed, "Attachments": [{"VpcId": vpc_id, "State": "available"}]})

    def create(self, ctx: Context) -> Resource:
        igw = create_once(ctx, self, INTERNET_GATEWAY, lambda ec2: ec2.create_internet_gateway(
            TagSpecifications=self.tag_specifications(ctx))["InternetGateway"])
        return self.created(ctx, igw)

    def ensure_aspects(self, ctx: Context, res: Resource, apply: bool, changes: list[str]) -> None:
        vpc_id = ctx.output(keys.hub("vpc"))
        attached = [a["VpcId"] for a in res.live.get("Attachments", []) if a.get("State") in ("available", "attached")]
        if aspect(changes, apply, f"not attached to {vpc_id}", vpc_id not in attached):
            for other in attached:  # an internet gateway attaches to one VPC at most
                ctx.aws.ec2.detach_internet_gateway(InternetGatewayId=res.id, VpcId=other)
            if not applied(("Resource.AlreadyAssociated",), ctx.aws.ec2.attach_internet_gateway,
                           InternetGatewayId=res.id, VpcId=vpc_id):
                now = self.reread(ctx, res).live.get("Attachments", [])
                if not any(a.get("VpcId") == vpc_id for a in now):
                    raise CloudError(f"internet gateway {res.id} is attached to another VPC ({now})")

    def delete_owned(self, ctx: Context, res: Resource) -> None:
        ec2 = ctx.aws.ec2
        for attachment in res.live.get("Attachments", []):
            # AWS refuses while the VPC still has public addresses mapped (a NAT gateway's, just deleted).
            retry_while(ctx, ("DependencyViolation",), ADDRESS_RELEASE_DEADLINE, self._detach, ec2, res.id,
                        attachment["VpcId"])
        self.gone_if_missing(ec2.delete_internet_gateway, InternetGatewayId=res.id)

    def _detach(self, ec2: Any, igw_id: str, vpc_id: str) -> None:
        gone_if_missing((*self.resource.missing, "Gateway.NotAttached"), ec2.detach_internet_gateway,
                        InternetGatewayId=igw_id, VpcId=vpc_id)


class ElasticIp(Ec2Step):
    """The NAT gateway's public address. It needs the internet gateway only so that `down` releases it before
    detaching the gateway (AWS refuses to detach while the VPC has public addresses mapped)."""

    kind = "Elastic IP"
    resource = ADDRESS
    exists_waiter = "AddressExists"

    def __init__(self, config: Config, az: str) -> None:
        self.az = az
        super().__init__(keys.hub("eip", az), resource_name(config.deployment, "hub-nat", az), (keys.hub("igw"),))

    def details(self) -> dict[str, Any]:
        return {"az": self.az}

    def outputs(self, item: Any) -> dict[str, Any]:
        return {"public_ip": item.get("PublicIp")}

    def find(self, ctx: Context) -> Resource | None:
        """Without a describe of its own when this AZ's NAT gateway (read anyway) is live with the recorded
        address: AWS releases no address a NAT gateway holds. Its tags then come from the Tagging API's one read
        (`listed_by_tags`); anything short of that proof describes it."""
        with translate(f"read {self.kind} {self.key}"):
            proven = self._proven(ctx)
        return proven if proven is not None else super().find(ctx)

    def _proven(self, ctx: Context) -> Resource | None:
        listed = listed_by_tags(ctx, self, ADDRESS)
        if listed is None:
            return None
        nat_key = keys.hub("nat", self.az)
        held = [a for n in deployment_items(ctx, NAT_GATEWAY)
                if tag_map(n.get("Tags")).get(COMPONENT_TAG) == nat_key and NAT_GATEWAY.is_live(n)
                for a in n.get("NatGatewayAddresses", []) if a.get("AllocationId") == listed["AllocationId"]]
        return self.found({**listed, "PublicIp": held[0].get("PublicIp")}) if held else None

    def create(self, ctx: Context) -> Resource:
        got = create_once(ctx, self, ADDRESS, lambda ec2: ec2.allocate_address(
            Domain="vpc", TagSpecifications=self.tag_specifications(ctx)))
        return self.created(ctx, {"AllocationId": got["AllocationId"], "PublicIp": got.get("PublicIp")})

    def delete_owned(self, ctx: Context, res: Resource) -> None:
        retry_while(ctx, ADDRESS_RELEASE_CODES, ADDRESS_RELEASE_DEADLINE, self.gone_if_missing,
                    ctx.aws.ec2.release_address, AllocationId=res.id)


class NatGateway(Ec2Step):
    """A public NAT gateway in the NAT subnet of one AZ. A NAT that fails says why (its FailureMessage); the
    next `up` makes a new one (the failed one's ID, recorded, changes the idempotency token)."""

    kind = "NAT gateway"
    resource = NAT_GATEWAY
    available_waiter = "NatGatewayAvailable"
    deleted_waiter = "NatGatewayDeleted"

    def __init__(self, config: Config, az: str, subnet_cidr: str) -> None:
        self.az = az
        self.subnet_cidr = subnet_cidr
        super().__init__(keys.hub("nat", az), resource_name(config.deployment, "hub-nat", az),
                         (keys.hub("nat-subnet", az), keys.hub("eip", az), keys.hub("igw")))

    def details(self) -> dict[str, Any]:
        return {"az": self.az, "subnet": self.subnet_cidr}

    def outputs(self, item: Any) -> dict[str, Any]:
        addresses = item.get("NatGatewayAddresses") or [{}]
        return {"private_ip": addresses[0].get("PrivateIp"), "public_ip": addresses[0].get("PublicIp")}

    def create(self, ctx: Context) -> Resource:
        subnet, allocation = ctx.output(keys.hub("nat-subnet", self.az)), ctx.output(keys.hub("eip", self.az))
        params = {"SubnetId": subnet, "AllocationId": allocation, "ConnectivityType": "public",
                  "TagSpecifications": self.tag_specifications(ctx)}
        # The token covers every parameter: AWS compares them all (tags included) for a token it knows, and answers
        # IdempotentParameterMismatch to a rerun whose user tags changed since a create whose NAT is gone.
        token = client_token(ctx, self, json.dumps(params, sort_keys=True))
        nat = retry_while(ctx, ALLOCATION_VISIBLE_CODES, ALLOCATION_VISIBLE_DEADLINE, ctx.aws.ec2.create_nat_gateway,
                          ClientToken=token, **params)["NatGateway"]
        return self.created(ctx, nat)

    def ensure_aspects(self, ctx: Context, res: Resource, apply: bool, changes: list[str]) -> None:
        subnet, allocation = ctx.output(keys.hub("nat-subnet", self.az)), ctx.output(keys.hub("eip", self.az))
        allocations = [a.get("AllocationId") for a in res.live.get("NatGatewayAddresses", [])]
        if res.live.get("SubnetId") != subnet or allocation not in allocations:
            cannot_fix(changes, apply, self.name, f"uses subnet {res.live.get('SubnetId')} and addresses "
                       f"{allocations}, not {subnet} and {allocation} (delete the NAT gateway, then `up`)")

    def delete_owned(self, ctx: Context, res: Resource) -> None:
        self.gone_if_missing(ctx.aws.ec2.delete_nat_gateway, NatGatewayId=res.id)


def _subnets(config: Config, az: str, cidrs: HubAzCidrs) -> list[Step]:
    d = config.deployment
    return [
        Subnet(keys.hub("tgw-subnet", az), resource_name(d, "hub-tgw", az), keys.hub("vpc"), cidrs.tgw_subnet, az,
               "Transit Gateway attachment"),
        Subnet(keys.hub("nat-subnet", az), resource_name(d, "hub-nat", az), keys.hub("vpc"), cidrs.nat_subnet, az,
               "public (NAT gateway)"),
        Subnet(keys.hub("firewall-subnet", az), resource_name(d, "hub-firewall", az), keys.hub("vpc"),
               cidrs.firewall_subnet, az, "firewall endpoint"),
    ]


def _route_table_name(deployment: str, table: rt.RouteTable) -> str:
    # hub/tgw-subnet-route-table/<az> -> <deployment>-hub-tgw-subnet-rt-<az>
    what = table.key.split("/")[1].replace("-route-table", "-rt")
    return resource_name(deployment, "hub", what, *([table.az] if table.az else []))


def steps(config: Config) -> list[Step]:
    plan = layout(config)
    d = config.deployment
    found: list[Step] = [Vpc(keys.hub("vpc"), resource_name(d, "hub"), config.hub_cidr, dns=False),
                         InternetGateway(config)]
    for hub_az in plan.hub_azs:
        found += _subnets(config, hub_az.az, hub_az.cidrs)
        found += [ElasticIp(config, hub_az.az), NatGateway(config, hub_az.az, hub_az.cidrs.nat_subnet)]
    found += [RouteTable(table, _route_table_name(d, table)) for table in rt.hub_route_tables(plan)]
    # The NAT-before-firewall layout's shared firewall-subnet table and IGW edge table go once every AZ's
    # routes are converted (the firewall subnets have moved to their AZ's table by then).
    converted = (*(keys.hub("firewall/routes", h.az) for h in plan.hub_azs),
                 *(keys.hub("firewall-subnet-route-table", h.az) for h in plan.hub_azs))
    for key in rt.RETIRED_HUB_ROUTE_TABLES:
        table = rt.RouteTable(key=key, vpc=rt.HUB_VPC_KEY, routes=())
        found.append(Retired(RouteTable(table, _route_table_name(d, table)), converted,
                             "the NAT-before-firewall layout's route table"))
    return found


def checks(config: Config) -> list[Check]:
    from provisioner.egress import EgressCheck

    return [EgressCheck(config)]

