"""What every EC2-backed step shares: finding by recorded ID then by tags, tag diffing, idempotency tokens,
route and association diffing, and the waits and retries around deletes.

The network steps (hub, spokes, Transit Gateway) differ only in what they create and which aspects they
compare; everything here is written once. Each `ensure_*` function compares one aspect, records the
difference with `aspect()` and fixes it only when asked, so `status` and a second `up` share the code.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from botocore.exceptions import BotoCoreError, ClientError

from provisioner.aws import waiters
from provisioner.aws.errors import (
    CloudError,
    applied,
    error_code,
    error_message,
    gone_if_missing,
    is_transient,
    none_if_missing,
    translate,
)
from provisioner.aws.tagging import tags_by_arn
from provisioner.design.naming import COMPONENT_TAG, DEPLOYMENT_TAG, is_owned, tag_list, tag_map
from provisioner.poll import Backoff, Pending, block, retry
from provisioner.steps.base import Resource, Step, aspect

if TYPE_CHECKING:
    from provisioner.context import Context
from provisioner.design.routes import route_target

# -- kinds of EC2 resources: how each is described, identified and told apart from its deleted remains ----------


@dataclass(frozen=True)
class Ec2Kind:
    noun: str
    describe: str           # the describe operation (python name)
    ids_param: str          # its list-of-IDs parameter
    result: str             # the list in its answer
    id_field: str
    missing: tuple[str, ...]  # error codes meaning "no such ID"
    tag_type: str           # TagSpecifications ResourceType
    filters_param: str = "Filters"
    # For a kind that lives in a VPC or on a Transit Gateway: which ("vpc", "tgw", see PARENTS). Such a kind is read
    # for the deployment's VPCs (or Transit Gateways), whoever tagged what is in them; the others by their tag.
    within: str = ""
    # States in which the resource exists and is ours to use; empty when the kind has no state. A deleted NAT
    # gateway (or VPC endpoint, TGW...) stays listed for a while: it must not be mistaken for a live one.
    live_states: tuple[str, ...] = ()

    def is_live(self, item: Mapping[str, Any]) -> bool:
        if not self.live_states:
            return True
        return str(item.get("State", "")).lower() in self.live_states


VPC = Ec2Kind("VPC", "describe_vpcs", "VpcIds", "Vpcs", "VpcId", ("InvalidVpcID.NotFound",), "vpc",
              live_states=("pending", "available"))
SUBNET = Ec2Kind("subnet", "describe_subnets", "SubnetIds", "Subnets", "SubnetId", ("InvalidSubnetID.NotFound",),
                 "subnet", live_states=("pending", "available"), within="vpc")
ROUTE_TABLE = Ec2Kind("route table", "describe_route_tables", "RouteTableIds", "RouteTables", "RouteTableId",
                      ("InvalidRouteTableID.NotFound",), "route-table", within="vpc")
INTERNET_GATEWAY = Ec2Kind("internet gateway", "describe_internet_gateways", "InternetGatewayIds",
                           "InternetGateways", "InternetGatewayId", ("InvalidInternetGatewayID.NotFound",),
                           "internet-gateway")
ADDRESS = Ec2Kind("Elastic IP", "describe_addresses", "AllocationIds", "Addresses", "AllocationId",
                  ("InvalidAllocationID.NotFound",), "elastic-ip")
NAT_GATEWAY = Ec2Kind("NAT gateway", "describe_nat_gateways", "NatGatewayIds", "NatGateways", "NatGatewayId",
                      ("NatGatewayNotFound", "InvalidNatGatewayID.NotFound"), "natgateway", filters_param="Filter",
                      live_states=("pending", "available"), within="vpc")
SECURITY_GROUP = Ec2Kind("security group", "describe_security_groups", "GroupIds", "SecurityGroups", "GroupId",
                         ("InvalidGroup.NotFound", "InvalidGroupId.NotFound"), "security-group", within="vpc")
VPC_ENDPOINT = Ec2Kind("VPC endpoint", "describe_vpc_endpoints", "VpcEndpointIds", "VpcEndpoints", "VpcEndpointId",
                       ("InvalidVpcEndpointId.NotFound",), "vpc-endpoint",
                       live_states=("pendingacceptance", "pending", "available", "modifying"), within="vpc")
TRANSIT_GATEWAY = Ec2Kind("Transit Gateway", "describe_transit_gateways", "TransitGatewayIds", "TransitGateways",
                          "TransitGatewayId", ("InvalidTransitGatewayID.NotFound",), "transit-gateway",
                          live_states=("pending", "available", "modifying"))
TGW_ATTACHMENT = Ec2Kind("TGW attachment", "describe_transit_gateway_vpc_attachments", "TransitGatewayAttachmentIds",
                         "TransitGatewayVpcAttachments", "TransitGatewayAttachmentId",
                         ("InvalidTransitGatewayAttachmentID.NotFound",), "transit-gateway-attachment",
                         live_states=("initiating", "initiatingrequest", "pendingacceptance", "pending", "available",
                                      "modifying"), within="tgw")
TGW_ROUTE_TABLE = Ec2Kind("TGW route table", "describe_transit_gateway_route_tables", "TransitGatewayRouteTableIds",
                          "TransitGatewayRouteTables", "TransitGatewayRouteTableId",
                          ("InvalidRouteTableID.NotFound", "InvalidTransitGatewayRouteTableID.NotFound"),
                          "transit-gateway-route-table", live_states=("pending", "available"), within="tgw")
# Every attachment of the Transit Gateway, of any type, with its route table association (`Association`): the
# VPC attachments' describe has no association, and GetTransitGatewayRouteTableAssociations reads one table.
TGW_ANY_ATTACHMENT = Ec2Kind("TGW attachment", "describe_transit_gateway_attachments", "TransitGatewayAttachmentIds",
                             "TransitGatewayAttachments", "TransitGatewayAttachmentId",
                             ("InvalidTransitGatewayAttachmentID.NotFound",), "transit-gateway-attachment",
                             live_states=TGW_ATTACHMENT.live_states, within="tgw")
# What a kind's `within` names: the kind of its parents, how their IDs begin (`tgw-attach-...` is not a TGW) and
# the describe filter that names them.
PARENTS = {"vpc": (VPC, "vpc-", "vpc-id"), "tgw": (TRANSIT_GATEWAY, "tgw-", "transit-gateway-id")}


def describe(ec2: Any, kind: Ec2Kind, **params: Any) -> list[dict[str, Any]]:
    """Every item the describe call returns, over all pages."""
    if ec2.can_paginate(kind.describe):
        return [item for page in ec2.get_paginator(kind.describe).paginate(**params) for item in page[kind.result]]
    return list(getattr(ec2, kind.describe)(**params)[kind.result])


def describe_one(ec2: Any, kind: Ec2Kind, resource_id: str) -> dict[str, Any] | None:
    got = none_if_missing(kind.missing, describe, ec2, kind, **{kind.ids_param: [resource_id]})
    return got[0] if got else None


# Where `find_owned` puts the other live resources that carry the same step's tags (twins), beside the one kept.
TWINS = "_twins"


def _preference(kind: Ec2Kind, item: Mapping[str, Any]) -> tuple[bool, str]:
    """Among twins, keep an available one first, then the lowest ID (a stable choice between runs)."""
    return (str(item.get("State", "available")).lower() != "available", str(item[kind.id_field]))


def find_owned(ctx: Context, step: Step, kind: Ec2Kind, fresh: bool = False) -> dict[str, Any] | None:
    """The live resource this step made: the recorded one, else the one its ownership tags find.

    A recorded ID is proof enough that the resource is ours (its tags may have been edited: `ensure` puts them
    back); the tag search finds what a run that crashed before saving its ID made, and twins: other live
    resources with this step's tags (a create whose reply was lost, then made again). The twins come back under
    `TWINS` in the item: `status` reports them, `up` and `down` delete them.

    The search is in the command's one read of the kind (`deployment_items`), shared by every step of the kind;
    `fresh` reads again (after a create that may have taken effect).
    """
    ec2 = ctx.aws.ec2
    with translate(f"read {kind.noun} {step.key}"):
        tagged = [item for item in deployment_items(ctx, kind, fresh)
                  if tag_map(item.get("Tags")).get(COMPONENT_TAG) == step.key and kind.is_live(item)]
        recorded = ctx.state.resource_id(step.key)
        keep = next((item for item in tagged if item[kind.id_field] == recorded), None)
        if keep is None and recorded:
            item = describe_one(ec2, kind, recorded)
            if item is not None and kind.is_live(item):
                keep = item
    if keep is None and tagged:
        keep = min(tagged, key=lambda item: _preference(kind, item))
    if keep is None:
        return None
    twins = [item for item in tagged if item[kind.id_field] != keep[kind.id_field]]
    return {**keep, TWINS: twins} if twins else keep


def deployment_items(ctx: Context, kind: Ec2Kind, fresh: bool = False) -> list[dict[str, Any]]:
    """Every resource of `kind` tagged with this deployment, from one paginated describe per kind and command:
    of the deployment's VPCs (or Transit Gateways) for a kind that lives in one (`within_deployment`), else by
    the tag."""
    if kind.within:
        return [item for item in within_deployment(ctx, kind, fresh=fresh)
                if tag_map(item.get("Tags")).get(DEPLOYMENT_TAG) == ctx.deployment]
    filters = [{"Name": f"tag:{DEPLOYMENT_TAG}", "Values": [ctx.deployment]}]
    items: list[dict[str, Any]] = ctx.reads.get(
        kind.describe, lambda: describe(ctx.aws.ec2, kind, **{kind.filters_param: filters}), fresh=fresh)
    return items


def recorded_ids(ctx: Context, kind: Ec2Kind) -> set[str]:
    """The IDs of this kind (a parent kind of PARENTS) that the state file records, under any key."""
    prefix = next(p for parent, p, _ in PARENTS.values() if parent is kind)
    return {str(entry["id"]) for entry in ctx.state.resources().values()
            if str(entry.get("id", "")).startswith(prefix) and "-" not in str(entry["id"])[len(prefix):]}


# EC2 takes at most 200 values in one filter.
FILTER_VALUES = 200


def within_deployment(ctx: Context, kind: Ec2Kind, fresh: bool = False, covering: Iterable[str] = ()) \
        -> list[dict[str, Any]]:
    """Every resource of `kind` (one that lives in a VPC or on a Transit Gateway) in the deployment's VPCs (or on
    its Transit Gateways), whoever made it: one paginated describe per kind and command, shared by the steps of
    the kind (which keep what the deployment tags) and by `status`'s egress check (which must see everything).

    The deployment's VPCs are those it tags, as read once, and those the state file records. A VPC made in this
    run after the read holds only what this run makes, which its steps look for with a fresh read; `covering`
    names parents the answer must include (read again if the shared one does not).
    """
    parent, _, filter_name = PARENTS[kind.within]
    wanted = set(covering)

    def load() -> tuple[frozenset[str], list[dict[str, Any]]]:
        parents = sorted({str(item[parent.id_field]) for item in deployment_items(ctx, parent)}
                         | recorded_ids(ctx, parent) | wanted)
        items = [item for at in range(0, len(parents), FILTER_VALUES)
                 for item in describe(ctx.aws.ec2, kind, **{kind.filters_param: [
                     {"Name": filter_name, "Values": parents[at:at + FILTER_VALUES]}]})]
        return frozenset(parents), items

    key = f"{kind.describe} within the deployment"
    parents, items = ctx.reads.get(key, load, fresh=fresh)
    if not wanted <= parents:
        parents, items = ctx.reads.get(key, load, fresh=True)
    return list(items)


def listed_by_tags(ctx: Context, step: Step, kind: Ec2Kind) -> dict[str, Any] | None:
    """The resource recorded for `step`, as the command's one Tagging API read lists it (its ID and tags, no
    describe), when it alone carries the step's tags there. None when nothing is recorded, the answer does not
    list it (that API lags behind creates and tag changes), or lists another resource with the step's tags (a
    twin: the step's own describe then finds and handles it), or the command describes everything (`down`)."""
    recorded = ctx.state.resource_id(step.key)
    if not recorded or not ctx.proofs:
        return None
    ours = {arn.rsplit("/", 1)[1]: tags for arn, tags in tags_by_arn(ctx).items()
            if arn.split(":", 5)[2] == "ec2" and arn.split(":", 5)[5].split("/", 1)[0] == kind.tag_type
            and tags.get(COMPONENT_TAG) == step.key}
    if set(ours) != {recorded}:
        return None
    return {kind.id_field: recorded, "Tags": tag_list(ours[recorded])}


def route_tables(ctx: Context, table_ids: Iterable[str]) -> list[dict[str, Any]]:
    """The deployment's route tables with these IDs: from the command's one read of the route tables of its VPCs
    when that has them all (a table made later in the run is not in it), else read now. A table deleted outside
    provision is absent, not an error."""
    wanted = sorted(set(table_ids))
    shared = {t["RouteTableId"]: t for t in within_deployment(ctx, ROUTE_TABLE)}
    if all(t in shared for t in wanted):
        return [shared[t] for t in wanted]
    return describe(ctx.aws.ec2, ROUTE_TABLE, Filters=[{"Name": "route-table-id", "Values": wanted}])


def default_security_groups(ctx: Context, vpc_id: str) -> list[dict[str, Any]]:
    """The default security group of a VPC, from the command's one read of the security groups of the
    deployment's VPCs (read again when that does not cover this VPC: one made in this run)."""
    return [g for g in within_deployment(ctx, SECURITY_GROUP, covering=[vpc_id])
            if g.get("VpcId") == vpc_id and g.get("GroupName") == "default"]


# After a create that may have taken effect, how long (seconds, at full speed) to keep looking for what it made
# before trying again: EC2 lists a new resource within seconds, not always at once.
LOOK_AGAIN_SECONDS = (1.0, 2.0, 4.0)
# How long to keep trying a create whose every attempt met a transient fault.
CREATE_DEADLINE_SECONDS = 120.0
# Answers to a create that mean "it exists already": after a lost reply, the first attempt may have made it.
ALREADY_EXISTS = ("InvalidGroup.Duplicate", "InvalidSubnet.Conflict", "DuplicateTransitGatewayAttachment",
                  "RouteAlreadyExists", "Resource.AlreadyAssociated")


def look_for_owned(ctx: Context, step: Step, kind: Ec2Kind) -> dict[str, Any] | None:
    """What this step's tags find now, asked a few times while EC2 may not list a new resource yet."""
    for pause in LOOK_AGAIN_SECONDS:
        found = find_owned(ctx, step, kind, fresh=True)
        if found is not None:
            return found
        ctx.clock.sleep(ctx.poll_delay(pause))
    return None


def create_once(ctx: Context, step: Step, kind: Ec2Kind, call: Callable[[Any], Mapping[str, Any]]) -> dict[str, Any]:
    """Make a resource AWS cannot make idempotent (its create takes no ClientToken) without ever a twin.

    `call(ec2)` makes it with a client that does not retry on its own: botocore would send the create again
    after a lost reply. After any transient fault (or an "already exists"), the tags are searched first, and
    what they find is adopted; only when nothing is there is the create tried again, with backoff, within a
    deadline. Should EC2 list the first attempt's resource too late, the twin is seen by `find` and deleted.
    """
    started = ctx.clock.now()
    delay = 1.0
    while True:
        try:
            return dict(call(ctx.aws.once("ec2")))
        except (ClientError, BotoCoreError) as e:
            if not is_transient(e) and error_code(e) not in ALREADY_EXISTS:
                raise
            found = look_for_owned(ctx, step, kind)
            if found is not None:
                ctx.report(step.key, "creating",
                           f"adopted {found[kind.id_field]}, made by an attempt whose reply was lost")
                return found
            if not is_transient(e) or ctx.clock.now() - started >= CREATE_DEADLINE_SECONDS:
                raise
            ctx.report(step.key, "retrying", f"{error_message(e)}; nothing was made, trying again")
            ctx.clock.sleep(ctx.poll_delay(delay))
            delay = min(delay * 2, 20.0)


def client_token(ctx: Context, step: Step, *parents: str) -> str:
    """The idempotency token of one create: the same deployment, step and parents give the same token, so a
    create retried after a crash gets back what the first attempt made instead of a second one.

    The parents (the VPC, subnet, address... it is made in) and the ID the step last recorded are part of it:
    AWS answers a known token with the resource it made then, even once that is deleted or failed, so a
    deployment brought up again, or a NAT gateway that failed or was deleted behind our back, needs a new one.
    Once `down` or `--prune` deleted it, the ID it had takes the recorded one's place: a resource made again in a
    parent that was kept (a VPC whose `down` failed) must not get back the deleted one.
    """
    recorded = ctx.state.resource_id(step.key) or ctx.state.get("deleted", step.key) or ""
    digest = hashlib.sha256("\x1f".join((ctx.deployment, step.key, recorded, *parents)).encode()).hexdigest()
    return f"prov-{digest[:40]}"


def ensure_tags(ctx: Context, step: Step, resource_id: str, live_tags: list[dict[str, str]] | None,
                changes: list[str], apply: bool) -> None:
    have = tag_map(live_tags)
    wanted = ctx.tags(step)
    wrong = {k: v for k, v in wanted.items() if have.get(k) != v}
    if aspect(changes, apply, f"tags ({', '.join(sorted(wrong))})", bool(wrong)):
        ctx.aws.ec2.create_tags(Resources=[resource_id], Tags=tag_list(wrong))


def require_owned(ctx: Context, step: Step, res: Resource) -> None:
    """`delete` touches only what carries this deployment's ownership tags."""
    if not is_owned(tag_map(res.live.get("Tags")), ctx.deployment):
        raise CloudError(f"{step.kind} {res.id} ({step.key}) is not tagged as part of deployment {ctx.deployment}; "
                         "not deleting it (`provision up` restores the tags of what it recorded)")


def retry_while(ctx: Context, codes: tuple[str, ...], deadline: float, fn: Callable[..., Any], *args: Any,
                **kwargs: Any) -> Any:
    """Call `fn`, retrying while AWS answers one of `codes` (a dependency AWS releases a little later).

    `provisioner.poll.retry`: pauses from 5 s doubling to 30 s at the context's poll scale, on its clock, for at
    most `deadline` seconds (and as many tries as that allows at full speed, so a scaled-down poll cannot spin
    for the whole deadline).
    """
    return retry(lambda: fn(*args, **kwargs), when=lambda e: isinstance(e, ClientError) and error_code(e) in codes,
                 backoff=Backoff(30.0, first=5.0, growth=2.0), deadline=deadline, clock=ctx.clock,
                 scale=ctx.poll_scale)


# -- routes and route table associations -------------------------------------------------------------------------


def create_route(ec2: Any, table_id: str, destination: str, param: str, target: str) -> None:
    """CreateRoute; when the route exists already (our own attempt whose reply was lost, or a route made
    meanwhile), it is pointed at `target` (ReplaceRoute is idempotent)."""
    if not applied(("RouteAlreadyExists",), ec2.create_route, RouteTableId=table_id, DestinationCidrBlock=destination,
                   **{param: target}):
        ec2.replace_route(RouteTableId=table_id, DestinationCidrBlock=destination, **{param: target})

def _is_ours_to_remove(route: Mapping[str, Any]) -> bool:
    """Routes another party owns are never removed: the VPC's local route, propagated routes, endpoint routes
    (a gateway endpoint's prefix-list route, the firewall's routes to its `vpce-` endpoints)."""
    target = route_target(route)
    return (route.get("Origin") == "CreateRoute" and "DestinationCidrBlock" in route
            and target != "local" and not target.startswith("vpce-"))


def ensure_routes(ec2: Any, table_id: str, live_routes: Sequence[Mapping[str, Any]],
                  wanted: Mapping[str, tuple[str, str]], changes: list[str], apply: bool,
                  others: Iterable[str] = ()) -> None:
    """Make the table's CIDR routes exactly `wanted` (destination -> (CreateRoute parameter, target ID)),
    leaving alone the routes others own: by their target, and the destinations in `others` (another family
    replaces whatever is there, in its own safe order)."""
    skip = set(others)
    live = {str(r["DestinationCidrBlock"]): r for r in live_routes
            if r.get("DestinationCidrBlock") and r["DestinationCidrBlock"] not in skip}
    for destination, (param, target) in wanted.items():
        have = live.get(destination)
        if have is None:
            if aspect(changes, apply, f"route {destination} -> {target} missing", True):
                create_route(ec2, table_id, destination, param, target)
        elif aspect(changes, apply, f"route {destination} goes to {route_target(have)}, not {target}",
                    route_target(have) != target):
            ec2.replace_route(RouteTableId=table_id, DestinationCidrBlock=destination, **{param: target})
    for destination, route in live.items():
        unexpected = destination not in wanted and _is_ours_to_remove(route)
        if aspect(changes, apply, f"unexpected route {destination} -> {route_target(route)}", unexpected):
            ec2.delete_route(RouteTableId=table_id, DestinationCidrBlock=destination)


def replace_association(ec2: Any, association_id: str, table_id: str, where: list[dict[str, Any]]) -> None:
    """ReplaceRouteTableAssociation, which gives the association a new ID: a retry after a lost reply finds the
    old ID gone. Then the association is looked up again (`where`: filters that find it): if it is now this
    table's, the first attempt did it."""
    if applied(("InvalidAssociationID.NotFound",), ec2.replace_route_table_association,
               AssociationId=association_id, RouteTableId=table_id):
        return
    now = [t["RouteTableId"] for t in describe(ec2, ROUTE_TABLE, Filters=where)]
    if table_id not in now:
        raise CloudError(f"route table association {association_id} is gone and {table_id} did not take it over; "
                         "rerun `provision up`")


def _associations(table: Mapping[str, Any]) -> list[dict[str, Any]]:
    # A disassociated entry lingers for a moment in state `disassociating`/`disassociated`.
    return [a for a in table.get("Associations", [])
            if a.get("AssociationState", {}).get("State", "associated") in ("associated", "associating")]


def ensure_subnet_associations(ec2: Any, table_id: str, live: Mapping[str, Any], subnet_ids: Iterable[str],
                               changes: list[str], apply: bool) -> None:
    wanted = list(subnet_ids)
    have = {a["SubnetId"]: a for a in _associations(live) if a.get("SubnetId")}
    for subnet in wanted:
        if subnet in have or not aspect(changes, apply, f"subnet {subnet} not associated", True):
            continue
        # A subnet has one explicit association at most: move it if another table holds it.
        other = [a for t in describe(ec2, ROUTE_TABLE, Filters=[{"Name": "association.subnet-id", "Values": [subnet]}])
                 for a in _associations(t) if a.get("SubnetId") == subnet]
        if other:
            replace_association(ec2, other[0]["RouteTableAssociationId"], table_id,
                                [{"Name": "association.subnet-id", "Values": [subnet]}])
        elif not applied(("Resource.AlreadyAssociated",), ec2.associate_route_table, RouteTableId=table_id,
                         SubnetId=subnet):
            # Associated meanwhile (our own attempt whose reply was lost, or another table): make it this one.
            now = [a for t in describe(ec2, ROUTE_TABLE, Filters=[{"Name": "association.subnet-id",
                                                                     "Values": [subnet]}])
                   for a in _associations(t) if a.get("SubnetId") == subnet]
            if now and now[0].get("RouteTableId") != table_id:
                replace_association(ec2, now[0]["RouteTableAssociationId"], table_id,
                                    [{"Name": "association.subnet-id", "Values": [subnet]}])
    for subnet, assoc in have.items():
        if subnet not in wanted and aspect(changes, apply, f"unexpected subnet {subnet} associated", True):
            ec2.disassociate_route_table(AssociationId=assoc["RouteTableAssociationId"])


def ensure_main(ec2: Any, table_id: str, vpc_id: str, live: Mapping[str, Any], changes: list[str],
                apply: bool) -> None:
    is_main = any(a.get("Main") for a in _associations(live))
    if aspect(changes, apply, "not the VPC's main route table", not is_main):
        main = [a for t in describe(ec2, ROUTE_TABLE, Filters=[{"Name": "vpc-id", "Values": [vpc_id]},
                                                                {"Name": "association.main", "Values": ["true"]}])
                for a in _associations(t) if a.get("Main")]
        if not main:
            raise CloudError(f"VPC {vpc_id} has no main route table association to replace")
        replace_association(ec2, main[0]["RouteTableAssociationId"], table_id,
                            [{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "association.main", "Values": ["true"]}])


def ensure_gateway_association(ec2: Any, table_id: str, live: Mapping[str, Any], gateway_id: str,
                               changes: list[str], apply: bool) -> None:
    """An edge association: traffic entering through the gateway is routed by this table."""
    have = [a for a in _associations(live) if a.get("GatewayId")]
    if not any(a["GatewayId"] == gateway_id for a in have) and aspect(
            changes, apply, f"gateway {gateway_id} not associated", True):
        other = [a for t in describe(ec2, ROUTE_TABLE, Filters=[{"Name": "association.gateway-id",
                                                                  "Values": [gateway_id]}])
                 for a in _associations(t) if a.get("GatewayId") == gateway_id]
        if other:
            ec2.replace_route_table_association(AssociationId=other[0]["RouteTableAssociationId"],
                                                RouteTableId=table_id)
        else:
            applied(("Resource.AlreadyAssociated",), ec2.associate_route_table, RouteTableId=table_id,
                    GatewayId=gateway_id)
    for assoc in have:
        if assoc["GatewayId"] != gateway_id and aspect(
                changes, apply, f"unexpected gateway {assoc['GatewayId']} associated", True):
            ec2.disassociate_route_table(AssociationId=assoc["RouteTableAssociationId"])


def policy_differs(live_document: str | None, wanted: Mapping[str, Any]) -> bool:
    """Endpoint policies come back as JSON text, not necessarily as sent: compare the documents."""
    try:
        return live_document is None or json.loads(live_document) != wanted
    except ValueError:
        return True


# -- the step base class ------------------------------------------------------------------------------------------


def _first_poll(waiter: str) -> float:
    return float(waiters.WAITERS[waiter]["delay"]) / 5


class Ec2Step(Step):
    """An EC2 resource found by ID then tags, created tagged, waited for, tag-checked and deleted by ownership.

    Subclasses set `resource` (its Ec2Kind), write `create` and `delete_owned`, and may add `ensure_aspects`,
    `outputs` and waiter names.
    """

    resource: ClassVar[Ec2Kind]
    available_waiter: ClassVar[str | None] = None
    # For kinds without a state: waited for once after the create, until a describe lists the new ID.
    exists_waiter: ClassVar[str | None] = None
    deleted_waiter: ClassVar[str | None] = None

    # -- finding -------------------------------------------------------------------------------------------------
    def find(self, ctx: Context) -> Resource | None:
        item = find_owned(ctx, self, self.resource)
        return None if item is None else self.found(item)

    def found(self, item: dict[str, Any]) -> Resource:
        return Resource(str(item[self.resource.id_field]), outputs=self.outputs(item), live=item)

    def outputs(self, item: Mapping[str, Any]) -> dict[str, Any]:
        return {}

    def reread(self, ctx: Context, res: Resource) -> Resource:
        with translate(f"read {self.kind} {res.id}"):
            item = describe_one(ctx.aws.ec2, self.resource, res.id)
        if item is None:
            raise CloudError(f"{self.kind} {res.id} ({self.key}) vanished just after it was created")
        return self.found(item)

    # -- creating ------------------------------------------------------------------------------------------------
    def tag_specifications(self, ctx: Context) -> list[dict[str, Any]]:
        return [{"ResourceType": self.resource.tag_type, "Tags": tag_list(ctx.tags(self))}]

    def created(self, ctx: Context, item: Mapping[str, Any]) -> Resource:
        """The resource as a create call returned it; tags were set by the same call (TagSpecifications)."""
        live = dict(item)
        live.setdefault("Tags", tag_list(ctx.tags(self)))
        res = self.found(live)
        res.fresh = True
        return res

    def poll(self, ctx: Context, res: Resource) -> Resource | Pending:
        """One read of the wait: listed at all (kinds without a state, once after the create), then available.
        The first read after a create comes after a fifth of the waiter's delay: most resources are quick."""
        ids = {self.resource.ids_param: [res.id]}
        if res.fresh and self.exists_waiter is not None:
            listed = waiters.poll(res, ctx.aws.ec2, self.exists_waiter, f"{self.kind} {res.id} ({self.key}) to be "
                                  "listed", first=_first_poll(self.exists_waiter), **ids)
            if isinstance(listed, Pending):
                return listed
            res.fresh = False
        if self.available_waiter is None or str(res.live.get("State", "")).lower() == "available":
            return res
        got = waiters.poll(res, ctx.aws.ec2, self.available_waiter, f"{self.kind} {res.id} ({self.key})",
                           first=_first_poll(self.available_waiter), **ids)
        return got if isinstance(got, Pending) else self.reread(ctx, res)

    def wait(self, ctx: Context, res: Resource) -> Resource:
        return block(ctx, self.key, lambda: self.poll(ctx, res))

    # -- comparing -----------------------------------------------------------------------------------------------
    def ensure(self, ctx: Context, res: Resource, apply: bool) -> list[str]:
        changes: list[str] = []
        try:
            with translate(f"update {self.kind} {res.id} ({self.key})"):
                twins = res.live.get(TWINS) or []
                ids = ", ".join(str(t[self.resource.id_field]) for t in twins)
                if aspect(changes, apply, f"twin {self.kind} {ids} also tagged as {self.key} (kept {res.id}; `up` "
                          "deletes the twin)", bool(twins)):
                    self._delete_twins(ctx, res)
                ensure_tags(ctx, self, res.id, res.live.get("Tags"), changes, apply)
                self.ensure_aspects(ctx, res, apply, changes)
        except RuntimeError as e:
            # `status` compares even when something this step refers to is gone from the state file.
            raise CloudError(f"cannot compare {self.kind} {res.id} ({self.key}): {e}") from e
        return changes

    def ensure_aspects(self, ctx: Context, res: Resource, apply: bool, changes: list[str]) -> None:
        return None

    # -- deleting ------------------------------------------------------------------------------------------------
    def delete(self, ctx: Context, res: Resource) -> None:
        require_owned(ctx, self, res)
        self._delete_twins(ctx, res)
        with translate(f"delete {self.kind} {res.id} ({self.key})"):
            self.delete_owned(ctx, res)

    def _delete_twins(self, ctx: Context, res: Resource) -> None:
        """Every other live resource with this step's tags goes: made by a create whose reply was lost."""
        for twin in res.live.pop(TWINS, None) or []:
            other = self.found(twin)
            with translate(f"delete twin {self.kind} {other.id} ({self.key})"):
                self.delete_owned(ctx, other)
            self.wait_deleted(ctx, other)

    def delete_owned(self, ctx: Context, res: Resource) -> None:
        raise NotImplementedError

    def gone_if_missing(self, fn: Callable[..., Any], **params: Any) -> bool:
        return gone_if_missing(self.resource.missing, fn, **params)

    def wait_deleted(self, ctx: Context, res: Resource) -> None:
        if self.deleted_waiter is not None:
            waiters.wait(ctx, ctx.aws.ec2, self.deleted_waiter, f"{self.kind} {res.id} ({self.key}) to go",
                         **{self.resource.ids_param: [res.id]})

    def poll_deleted(self, ctx: Context, res: Resource) -> Pending | None:
        """One read of the wait for `res` to go (`deleted_waiter`): `down` holds no worker meanwhile."""
        if self.deleted_waiter is None:
            return None
        got = waiters.poll(res, ctx.aws.ec2, self.deleted_waiter, f"{self.kind} {res.id} ({self.key}) to go", None,
                           **{self.resource.ids_param: [res.id]})
        return got if isinstance(got, Pending) else None
