"""The waiters written as data, against canned EC2 answers (botocore's Stubber: no emulator, no sleeping)."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from provisioner.aws import waiters
from provisioner.aws.errors import CloudError


class _Ctx:
    def poll_delay(self, seconds: float) -> float:
        return 0


@pytest.fixture
def ec2() -> Any:
    return boto3.client("ec2", region_name="eu-central-1", aws_access_key_id="x", aws_secret_access_key="x")


def test_a_tgw_route_table_whose_associations_are_all_disassociated_is_unassociated(ec2: Any) -> None:
    params = {"TransitGatewayRouteTableId": "tgw-rtb-1"}
    with Stubber(ec2) as stub:
        stub.add_response("get_transit_gateway_route_table_associations", {"Associations": [
            {"TransitGatewayAttachmentId": "tgw-attach-1", "State": "disassociating"}]}, params)
        stub.add_response("get_transit_gateway_route_table_associations", {"Associations": [
            {"TransitGatewayAttachmentId": "tgw-attach-1", "State": "disassociated"}]}, params)
        waiters.wait(_Ctx(), ec2, "TransitGatewayRouteTableUnassociated", "table", **params)  # type: ignore[arg-type]
        stub.assert_no_pending_responses()


@pytest.mark.parametrize(("name", "operation", "ids", "items", "code"), [
    ("RouteTableExists", "describe_route_tables", "RouteTableIds", "RouteTables", "InvalidRouteTableID.NotFound"),
    ("SecurityGroupExists", "describe_security_groups", "GroupIds", "SecurityGroups", "InvalidGroup.NotFound"),
    ("InternetGatewayExists", "describe_internet_gateways", "InternetGatewayIds", "InternetGateways",
     "InvalidInternetGatewayID.NotFound"),
    ("AddressExists", "describe_addresses", "AllocationIds", "Addresses", "InvalidAllocationID.NotFound"),
])
def test_a_new_resource_not_listed_yet_is_waited_for(ec2: Any, name: str, operation: str, ids: str, items: str,
                                                     code: str) -> None:
    with Stubber(ec2) as stub:
        stub.add_client_error(operation, code, expected_params={ids: ["x-1"]})
        stub.add_response(operation, {items: [{}]}, {ids: ["x-1"]})
        waiters.wait(_Ctx(), ec2, name, "thing", **{ids: ["x-1"]})  # type: ignore[arg-type]
        stub.assert_no_pending_responses()


def test_a_resource_never_listed_fails_at_the_deadline_with_the_aws_error(ec2: Any,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(waiters.WAITERS, "RouteTableExists", {**waiters.WAITERS["RouteTableExists"], "maxAttempts": 2})
    monkeypatch.setattr(waiters, "MODEL", waiters.WaiterModel({"version": 2, "waiters": waiters.WAITERS}))
    with Stubber(ec2) as stub:
        for _ in range(2):
            stub.add_client_error("describe_route_tables", "InvalidRouteTableID.NotFound")
        with pytest.raises(CloudError, match=r"InvalidRouteTableID\.NotFound"):
            waiters.wait(_Ctx(), ec2, "RouteTableExists", "route table rtb-1", RouteTableIds=["rtb-1"])  # type: ignore[arg-type]
