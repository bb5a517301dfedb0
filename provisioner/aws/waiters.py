"""Waiters botocore lacks (Transit Gateway, its attachments and route tables, VPC endpoints), written as data.

Each waiter is a botocore WaiterModel entry: one describe call polled every `delay` seconds, at most
`maxAttempts` times (so `delay * maxAttempts` is its deadline), with acceptor tables saying which answers
mean done, failed or keep waiting. `wait()` scales the delay by the context's poll scale (0 in tests, so no
test sleeps) and keeps the number of attempts, and turns a failure into a `CloudError` that says why, with
AWS's own failure message where AWS gives one (a NAT gateway's `FailureMessage`).

NAT gateway, VPC and subnet waiters exist in botocore; they are restated here so every wait has the same
deadlines and error messages, and so "not found yet" right after a create is retried (EC2 is eventually
consistent: https://docs.aws.amazon.com/ec2/latest/devguide/eventual-consistency.html).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import WaiterError
from botocore.waiter import WaiterModel, create_waiter_with_client

from provisioner.poll import Pending, Read, block, poll_once

if TYPE_CHECKING:
    from provisioner.context import Context
    from provisioner.steps.base import Resource


def _state_waiter(operation: str, path: str, *, success: list[str], failure: list[str], not_found: str,
                  delay: int, max_attempts: int) -> dict[str, Any]:
    acceptors: list[dict[str, Any]] = [
        {"state": "success", "matcher": "pathAll", "argument": path, "expected": s} for s in success]
    acceptors += [{"state": "failure", "matcher": "pathAny", "argument": path, "expected": f} for f in failure]
    acceptors.append({"state": "retry", "matcher": "error", "expected": not_found})
    return {"operation": operation, "delay": delay, "maxAttempts": max_attempts, "acceptors": acceptors}


def _gone_waiter(operation: str, items: str, path: str, *, gone: list[str], not_found: str, delay: int,
                 max_attempts: int) -> dict[str, Any]:
    # AWS lists a deleted resource as `deleted` for a while, then answers NotFound; both mean gone, and so does an
    # empty answer (a filter-based describe, or a resource that vanished at once).
    acceptors: list[dict[str, Any]] = [
        {"state": "success", "matcher": "pathAll", "argument": path, "expected": g} for g in gone]
    acceptors += [
        {"state": "success", "matcher": "error", "expected": not_found},
        {"state": "success", "matcher": "path", "argument": f"length({items}[]) == `0`", "expected": True},
    ]
    return {"operation": operation, "delay": delay, "maxAttempts": max_attempts, "acceptors": acceptors}


def _exists_waiter(operation: str, items: str, *, not_found: str, delay: int, max_attempts: int) -> dict[str, Any]:
    # For resources without a lifecycle state: done as soon as a describe by ID lists it.
    return {"operation": operation, "delay": delay, "maxAttempts": max_attempts, "acceptors": [
        {"state": "success", "matcher": "path", "argument": f"length({items}[]) > `0`", "expected": True},
        {"state": "retry", "matcher": "error", "expected": not_found},
    ]}


WAITERS: dict[str, dict[str, Any]] = {
    "VpcAvailable": _state_waiter(
        "DescribeVpcs", "Vpcs[].State", success=["available"], failure=[],
        not_found="InvalidVpcID.NotFound", delay=2, max_attempts=60),
    "SubnetAvailable": _state_waiter(
        "DescribeSubnets", "Subnets[].State", success=["available"], failure=[],
        not_found="InvalidSubnetID.NotFound", delay=2, max_attempts=60),
    # Route tables, internet gateways, security groups and Elastic IPs have no state: right after the create,
    # AWS may still answer NotFound to calls that name the new ID (the eventual-consistency page above names
    # InvalidGroup.NotFound after CreateSecurityGroup), so the first use waits until a describe lists it.
    "RouteTableExists": _exists_waiter(
        "DescribeRouteTables", "RouteTables", not_found="InvalidRouteTableID.NotFound", delay=2, max_attempts=60),
    "InternetGatewayExists": _exists_waiter(
        "DescribeInternetGateways", "InternetGateways", not_found="InvalidInternetGatewayID.NotFound", delay=2,
        max_attempts=60),
    "SecurityGroupExists": _exists_waiter(
        "DescribeSecurityGroups", "SecurityGroups", not_found="InvalidGroup.NotFound", delay=2, max_attempts=60),
    "AddressExists": _exists_waiter(
        "DescribeAddresses", "Addresses", not_found="InvalidAllocationID.NotFound", delay=2, max_attempts=60),
    # A NAT gateway takes a few minutes; a failed one says why in FailureCode / FailureMessage.
    "NatGatewayAvailable": _state_waiter(
        "DescribeNatGateways", "NatGateways[].State", success=["available"], failure=["failed", "deleting", "deleted"],
        not_found="NatGatewayNotFound", delay=15, max_attempts=60),
    "NatGatewayDeleted": _gone_waiter(
        "DescribeNatGateways", "NatGateways", "NatGateways[].State", gone=["deleted"],
        not_found="NatGatewayNotFound", delay=15, max_attempts=60),
    # A Transit Gateway takes several minutes to become available.
    "TransitGatewayAvailable": _state_waiter(
        "DescribeTransitGateways", "TransitGateways[].State", success=["available"], failure=["deleting", "deleted"],
        not_found="InvalidTransitGatewayID.NotFound", delay=15, max_attempts=80),
    "TransitGatewayDeleted": _gone_waiter(
        "DescribeTransitGateways", "TransitGateways", "TransitGateways[].State", gone=["deleted"],
        not_found="InvalidTransitGatewayID.NotFound", delay=15, max_attempts=80),
    "TransitGatewayAttachmentAvailable": _state_waiter(
        "DescribeTransitGatewayVpcAttachments", "TransitGatewayVpcAttachments[].State", success=["available"],
        failure=["failed", "failing", "rejected", "rejecting", "deleting", "deleted"],
        not_found="InvalidTransitGatewayAttachmentID.NotFound", delay=10, max_attempts=90),
    "TransitGatewayAttachmentDeleted": _gone_waiter(
        "DescribeTransitGatewayVpcAttachments", "TransitGatewayVpcAttachments", "TransitGatewayVpcAttachments[].State",
        gone=["deleted"], not_found="InvalidTransitGatewayAttachmentID.NotFound", delay=10, max_attempts=90),
    "TransitGatewayRouteTableAvailable": _state_waiter(
        "DescribeTransitGatewayRouteTables", "TransitGatewayRouteTables[].State", success=["available"],
        failure=["deleting", "deleted"], not_found="InvalidRouteTableID.NotFound", delay=5, max_attempts=60),
    "TransitGatewayRouteTableDeleted": _gone_waiter(
        "DescribeTransitGatewayRouteTables", "TransitGatewayRouteTables", "TransitGatewayRouteTables[].State",
        gone=["deleted"], not_found="InvalidRouteTableID.NotFound", delay=5, max_attempts=60),
    # Disassociation is asynchronous, and AWS refuses to delete a TGW route table that still has associations; an
    # entry already `disassociated` no longer counts.
    "TransitGatewayRouteTableUnassociated": {
        "operation": "GetTransitGatewayRouteTableAssociations", "delay": 5, "maxAttempts": 60,
        "acceptors": [{"state": "success", "matcher": "path",
                       "argument": "length(Associations[?State != 'disassociated']) == `0`", "expected": True}]},
    # Interface endpoints take a minute or two; AWS reports states in lower case although the API's enum is
    # capitalised, so both spellings are accepted.
    "VpcEndpointAvailable": _state_waiter(
        "DescribeVpcEndpoints", "VpcEndpoints[].State", success=["available", "Available"],
        failure=["failed", "Failed", "rejected", "Rejected", "deleting", "Deleting", "deleted", "Deleted"],
        not_found="InvalidVpcEndpointId.NotFound", delay=10, max_attempts=60),
    # An endpoint to a service that accepts endpoints itself (Databricks' accepts one once it is registered with
    # the Databricks account) waits in `pendingAcceptance` until then: created, for the step that makes it.
    "VpcEndpointCreated": _state_waiter(
        "DescribeVpcEndpoints", "VpcEndpoints[].State",
        success=["available", "Available", "pendingAcceptance", "PendingAcceptance"],
        failure=["failed", "Failed", "rejected", "Rejected", "deleting", "Deleting", "deleted", "Deleted",
                 "expired", "Expired"],
        not_found="InvalidVpcEndpointId.NotFound", delay=10, max_attempts=60),
    "VpcEndpointDeleted": _gone_waiter(
        "DescribeVpcEndpoints", "VpcEndpoints", "VpcEndpoints[].State", gone=["deleted", "Deleted"],
        not_found="InvalidVpcEndpointId.NotFound", delay=10, max_attempts=60),
}
MODEL = WaiterModel({"version": 2, "waiters": WAITERS})

# Where each waiter's answer says what went wrong: (list member, fields naming the failure).
_ITEMS = {
    "DescribeVpcs": "Vpcs", "DescribeSubnets": "Subnets", "DescribeNatGateways": "NatGateways",
    "DescribeRouteTables": "RouteTables", "DescribeInternetGateways": "InternetGateways",
    "DescribeSecurityGroups": "SecurityGroups", "DescribeAddresses": "Addresses",
    "DescribeTransitGateways": "TransitGateways",
    "DescribeTransitGatewayVpcAttachments": "TransitGatewayVpcAttachments",
    "DescribeTransitGatewayRouteTables": "TransitGatewayRouteTables", "DescribeVpcEndpoints": "VpcEndpoints",
    "GetTransitGatewayRouteTableAssociations": "Associations",
}


def deadline(name: str) -> float:
    """How long the waiter waits at most (seconds, before the poll scale)."""
    config = WAITERS[name]
    return float(config["delay"] * config["maxAttempts"])


def read(client: Any, name: str, **params: Any) -> Read:
    """One read of waiter `name`: its acceptors say ready, failed (with AWS's reason) or not yet (with the state)."""
    waiter = create_waiter_with_client(name, MODEL, client)
    try:
        waiter.wait(**params, WaiterConfig={"Delay": 0, "MaxAttempts": 1})
    except WaiterError as e:
        if "Max attempts exceeded" in str(e):
            response = e.last_response if isinstance(e.last_response, dict) else {}
            if "Error" in response:  # not listed yet (eventual consistency): AWS's answer says so
                error = response["Error"]
                return Read(False, note=f"{error.get('Code', 'Error')}: {error.get('Message', '')}".strip())
            return Read(False, note=", ".join(_reasons(name, e)) or "not ready")
        return Read(False, failed=failure_reason(name, e))
    return Read(True)


def poll(res: Resource, client: Any, name: str, what: str, first: float | None = None,
         **params: Any) -> Resource | Pending:
    """One read of a wait for waiter `name`'s success state, with its delay and deadline (`provisioner.poll`)."""
    config = WAITERS[name]
    return poll_once(res, what, lambda: read(client, name, **params), every=float(config["delay"]),
                     deadline=deadline(name), first=first)


def wait(ctx: Context, client: Any, name: str, what: str, **params: Any) -> None:
    """Poll until `name`'s success state, here; a failure or the deadline raises CloudError naming `what` and
    why."""
    from provisioner.steps.base import Resource

    waiting = Resource("")
    block(ctx, "", lambda: poll(waiting, client, name, what, **params))


def _reasons(name: str, error: WaiterError) -> list[str]:
    """Each item's failure message, else its state, from the waiter's last answer."""
    response = error.last_response if isinstance(error.last_response, dict) else {}
    reasons = []
    for item in response.get(_ITEMS.get(WAITERS[name]["operation"], ""), []) or []:
        if item.get("FailureMessage"):
            reasons.append(f"{item.get('FailureCode', 'Failed')}: {item['FailureMessage']}")
        elif item.get("State") is not None:
            reasons.append(f"state {item['State']}")
    return reasons


def failure_reason(name: str, error: WaiterError) -> str:
    """AWS's explanation of a failed wait: the resource's failure message, its last state, or the error."""
    response = error.last_response if isinstance(error.last_response, dict) else {}
    if "Error" in response:
        err = response["Error"]
        return f"{err.get('Code', 'Error')}: {err.get('Message', '')}".strip()
    reasons = _reasons(name, error)
    if "Max attempts exceeded" in str(error):
        polls = WAITERS[name]["maxAttempts"]
        return (f"still {', '.join(reasons) or 'not ready'} after {polls} polls (the deadline: "
                f"{deadline(name) / 60:g} minutes at full polling speed); "
                "rerun the command (`provision up` or `provision down`) to keep waiting")
    return "; ".join(reasons) or str(error)
