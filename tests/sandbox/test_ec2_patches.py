"""The EC2 patches make moto behave as AWS where the provisioner's find / wait / teardown logic depends on it.

Every behavioural test runs twice: in-process under `mock_aws()`, and over HTTP against a `ThreadedMotoServer`,
because the sandbox serves moto over HTTP.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3
import moto
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, WaiterError
from moto import mock_aws
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.ec2.models import ec2_backends
from moto.ec2.models.route_tables import RouteBackend
from moto.moto_api import state_manager
from moto.server import ThreadedMotoServer

from provisioner.sandbox import ec2_patches
from provisioner.sandbox.ec2_patches import MODEL_NAMES, fail_nat_gateway, install, set_transition

REGION = "eu-west-1"
AZ_A, AZ_B = f"{REGION}a", f"{REGION}b"
FAST = {"Delay": 0, "MaxAttempts": 6}

install()


# --------------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def ec2_server() -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


_SESSION = boto3.Session()  # one session, so the EC2 service model is loaded once


def _client(endpoint_url: str | None = None) -> Any:
    return _SESSION.client(
        "ec2",
        region_name=REGION,
        endpoint_url=endpoint_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"total_max_attempts": 1}),
    )


@pytest.fixture(params=["decorator", "server"])
def ec2(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    # Loading moto's thousands of default AMIs dominates every backend reset; these tests use none.
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)  # decorator-mode clients must not go elsewhere
    try:
        if request.param == "decorator":
            with mock_aws():
                yield _client()
        else:
            url = request.getfixturevalue("ec2_server")
            urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST")).close()
            yield _client(url)
    finally:
        ec2_patches.unset_transitions()
        ec2_patches.reset_faults()


def _backend() -> Any:
    return ec2_backends[DEFAULT_ACCOUNT_ID][REGION]


def _code(excinfo: pytest.ExceptionInfo[ClientError]) -> str:
    return str(excinfo.value.response["Error"]["Code"])


# --------------------------------------------------------------------------------------------------- builders


def _tags(resource_type: str, **tags: str) -> list[dict[str, Any]]:
    return [{"ResourceType": resource_type, "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}]


def _vpc(ec2: Any, cidr: str = "10.0.0.0/16", dns: bool = False) -> str:
    vpc_id: str = ec2.create_vpc(CidrBlock=cidr)["Vpc"]["VpcId"]
    if dns:
        ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsHostnames={"Value": True})
    return vpc_id


def _subnet(ec2: Any, vpc_id: str, cidr: str, az: str = AZ_A) -> str:
    subnet_id: str = ec2.create_subnet(VpcId=vpc_id, CidrBlock=cidr, AvailabilityZone=az)["Subnet"]["SubnetId"]
    return subnet_id


def _tgw(ec2: Any, defaults: str = "disable", **tags: str) -> str:
    options = {"DefaultRouteTableAssociation": defaults, "DefaultRouteTablePropagation": defaults}
    kwargs: dict[str, Any] = {"Options": options}
    if tags:
        kwargs["TagSpecifications"] = _tags("transit-gateway", **tags)
    tgw_id: str = ec2.create_transit_gateway(**kwargs)["TransitGateway"]["TransitGatewayId"]
    return tgw_id


def _attach(ec2: Any, tgw_id: str, vpc_id: str, subnet_ids: list[str], **tags: str) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"TransitGatewayId": tgw_id, "VpcId": vpc_id, "SubnetIds": subnet_ids}
    if tags:
        kwargs["TagSpecifications"] = _tags("transit-gateway-attachment", **tags)
    attachment: dict[str, Any] = ec2.create_transit_gateway_vpc_attachment(**kwargs)["TransitGatewayVpcAttachment"]
    return attachment


def _attachment_state(ec2: Any, attachment_id: str) -> str:
    found = ec2.describe_transit_gateway_vpc_attachments(TransitGatewayAttachmentIds=[attachment_id])
    return str(found["TransitGatewayVpcAttachments"][0]["State"])


def _tgw_table_and_attachment(ec2: Any) -> tuple[str, str, str, str]:
    """A Transit Gateway with one route table and one VPC's attachment (available, associated with nothing)."""
    tgw_id = _tgw(ec2)
    table_id: str = ec2.create_transit_gateway_route_table(TransitGatewayId=tgw_id)["TransitGatewayRouteTable"][
        "TransitGatewayRouteTableId"
    ]
    vpc_id = _vpc(ec2)
    attachment_id: str = _attach(ec2, tgw_id, vpc_id, [_subnet(ec2, vpc_id, "10.0.0.0/24")])[
        "TransitGatewayAttachmentId"
    ]
    return tgw_id, table_id, vpc_id, attachment_id


def _nat_state(ec2: Any, nat_id: str) -> str:
    return str(ec2.describe_nat_gateways(NatGatewayIds=[nat_id])["NatGateways"][0]["State"])


def _private_nat(ec2: Any, subnet_id: str, **tags: str) -> str:
    kwargs: dict[str, Any] = {"SubnetId": subnet_id, "ConnectivityType": "private"}
    if tags:
        kwargs["TagSpecifications"] = _tags("natgateway", **tags)
    nat_id: str = ec2.create_nat_gateway(**kwargs)["NatGateway"]["NatGatewayId"]
    return nat_id


def _interface_endpoint(ec2: Any, vpc_id: str, subnet_ids: list[str], **kwargs: Any) -> dict[str, Any]:
    endpoint: dict[str, Any] = ec2.create_vpc_endpoint(
        **{"VpcEndpointType": "Interface", "VpcId": vpc_id, "ServiceName": f"com.amazonaws.{REGION}.sts",
           "SubnetIds": subnet_ids, **kwargs})["VpcEndpoint"]
    return endpoint


# --------------------------------------------------------------------------------------------------- guard


def test_moto_is_the_version_the_patches_were_written_for() -> None:
    assert moto.__version__ == ec2_patches.MOTO_VERSION, "moto changed: re-check every patch in ec2_patches"
    assert ec2_patches.missing_internals() == []


def test_install_twice_patches_once() -> None:
    patched = RouteBackend.create_route
    originals = dict(ec2_patches._ORIGINALS)
    install()
    assert RouteBackend.create_route is patched
    assert originals == ec2_patches._ORIGINALS
    assert set(MODEL_NAMES.values()) <= set(state_manager.get_registered_models())


# --------------------------------------------------------------------------------------------------- NAT gateways


def test_nat_gateway_is_pending_until_described_and_the_waiter_sees_it_become_available(ec2: Any) -> None:
    set_transition("nat_gateway", times=2)
    vpc_id = _vpc(ec2)
    subnet_id = _subnet(ec2, vpc_id, "10.0.0.0/24")
    allocation_id = ec2.allocate_address(Domain="vpc")["AllocationId"]

    nat = ec2.create_nat_gateway(SubnetId=subnet_id, AllocationId=allocation_id)["NatGateway"]

    assert nat["State"] == "pending"
    assert _nat_state(ec2, nat["NatGatewayId"]) == "pending"
    ec2.get_waiter("nat_gateway_available").wait(NatGatewayIds=[nat["NatGatewayId"]], WaiterConfig=FAST)
    assert _nat_state(ec2, nat["NatGatewayId"]) == "available"


def test_time_based_transition_makes_a_nat_gateway_available_after_the_delay(ec2: Any) -> None:
    set_transition("nat_gateway", seconds=0.3)
    nat_id = _private_nat(ec2, _subnet(ec2, _vpc(ec2), "10.0.0.0/24"))

    assert _nat_state(ec2, nat_id) == "pending"
    time.sleep(0.4)
    assert _nat_state(ec2, nat_id) == "available"


def test_deleting_nat_gateway_holds_its_subnet_and_eip_until_deleted(ec2: Any) -> None:
    set_transition("nat_gateway_delete", times=2)
    vpc_id = _vpc(ec2)
    subnet_id = _subnet(ec2, vpc_id, "10.0.0.0/24")
    allocation_id = ec2.allocate_address(Domain="vpc")["AllocationId"]
    nat_id = ec2.create_nat_gateway(SubnetId=subnet_id, AllocationId=allocation_id)["NatGateway"]["NatGatewayId"]

    with pytest.raises(ClientError) as in_use:
        ec2.release_address(AllocationId=allocation_id)
    assert _code(in_use) == "InvalidIPAddress.InUse"

    ec2.delete_nat_gateway(NatGatewayId=nat_id)
    assert _nat_state(ec2, nat_id) == "deleting"
    with pytest.raises(ClientError) as busy:
        ec2.delete_subnet(SubnetId=subnet_id)
    assert _code(busy) == "DependencyViolation"

    ec2.get_waiter("nat_gateway_deleted").wait(NatGatewayIds=[nat_id], WaiterConfig=FAST)
    nat = ec2.describe_nat_gateways(NatGatewayIds=[nat_id])["NatGateways"][0]
    assert nat["State"] == "deleted"
    assert "DeleteTime" in nat
    ec2.release_address(AllocationId=allocation_id)
    ec2.delete_subnet(SubnetId=subnet_id)


def test_failed_nat_gateway_fails_the_waiter_and_explains_why(ec2: Any) -> None:
    set_transition("nat_gateway", times=5)
    subnet_id = _subnet(ec2, _vpc(ec2), "10.0.0.0/24")
    nat_id = _private_nat(ec2, subnet_id)
    other_id = _private_nat(ec2, subnet_id)

    fail_nat_gateway(nat_id, region=REGION, failure_code="Gateway.NotAttached", failure_message="no IGW")
    _backend().nat_gateways[other_id].state = "failed"

    with pytest.raises(WaiterError):
        ec2.get_waiter("nat_gateway_available").wait(NatGatewayIds=[nat_id], WaiterConfig=FAST)
    nats = {n["NatGatewayId"]: n for n in ec2.describe_nat_gateways(NatGatewayIds=[nat_id, other_id])["NatGateways"]}
    assert nats[nat_id]["State"] == "failed"
    assert (nats[nat_id]["FailureCode"], nats[nat_id]["FailureMessage"]) == ("Gateway.NotAttached", "no IGW")
    assert nats[other_id]["FailureMessage"]


def test_nat_gateway_client_token_returns_the_same_gateway(ec2: Any) -> None:
    vpc_id = _vpc(ec2)
    subnet_id = _subnet(ec2, vpc_id, "10.0.0.0/24")
    allocation_id = ec2.allocate_address(Domain="vpc")["AllocationId"]

    first = ec2.create_nat_gateway(SubnetId=subnet_id, AllocationId=allocation_id, ClientToken="nat-hub-a")
    again = ec2.create_nat_gateway(SubnetId=subnet_id, AllocationId=allocation_id, ClientToken="nat-hub-a")

    assert again["NatGateway"]["NatGatewayId"] == first["NatGateway"]["NatGatewayId"]
    assert len(ec2.describe_nat_gateways(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["NatGateways"]) == 1
    other_subnet = _subnet(ec2, vpc_id, "10.0.1.0/24", AZ_B)
    with pytest.raises(ClientError) as mismatch:
        ec2.create_nat_gateway(SubnetId=other_subnet, AllocationId=allocation_id, ClientToken="nat-hub-a")
    assert _code(mismatch) == "IdempotentParameterMismatch"


@pytest.mark.parametrize("change", ["subnet", "allocation", "connectivity type", "tags"])
def test_nat_gateway_client_token_with_other_parameters_is_refused(ec2: Any, change: str) -> None:
    vpc_id = _vpc(ec2)
    subnet_id = _subnet(ec2, vpc_id, "10.0.0.0/24")
    allocation_id = ec2.allocate_address(Domain="vpc")["AllocationId"]
    request = {"SubnetId": subnet_id, "AllocationId": allocation_id, "ConnectivityType": "public",
               "TagSpecifications": _tags("natgateway", Name="hub-nat", team="blue"), "ClientToken": "nat-hub-a"}
    first = ec2.create_nat_gateway(**request)["NatGateway"]["NatGatewayId"]
    # The same parameters, tags in another order: the same NAT gateway, as AWS answers a known token.
    reordered = _tags("natgateway", team="blue", Name="hub-nat")
    assert ec2.create_nat_gateway(**{**request, "TagSpecifications": reordered})["NatGateway"]["NatGatewayId"] == first

    other = {
        "subnet": {"SubnetId": _subnet(ec2, vpc_id, "10.0.1.0/24", AZ_B)},
        "allocation": {"AllocationId": ec2.allocate_address(Domain="vpc")["AllocationId"]},
        "connectivity type": {"ConnectivityType": "private"},
        "tags": {"TagSpecifications": _tags("natgateway", Name="hub-nat", team="green")},
    }[change]
    with pytest.raises(ClientError) as mismatch:
        ec2.create_nat_gateway(**{**request, **other})
    assert _code(mismatch) == "IdempotentParameterMismatch"
    assert len(ec2.describe_nat_gateways(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["NatGateways"]) == 1


def test_address_of_a_deleted_nat_gateway_answers_auth_failure_for_a_while(ec2: Any) -> None:
    ec2_patches.set_fault("release_auth_failure", 2)
    subnet_id = _subnet(ec2, _vpc(ec2), "10.0.0.0/24")
    allocation_id = ec2.allocate_address(Domain="vpc")["AllocationId"]
    untouched = ec2.allocate_address(Domain="vpc")["AllocationId"]
    nat_id = ec2.create_nat_gateway(SubnetId=subnet_id, AllocationId=allocation_id)["NatGateway"]["NatGatewayId"]
    ec2.delete_nat_gateway(NatGatewayId=nat_id)
    assert _nat_state(ec2, nat_id) == "deleted"

    for _ in range(2):
        with pytest.raises(ClientError) as refused:
            ec2.release_address(AllocationId=allocation_id)
        assert _code(refused) == "AuthFailure"
        assert "permission to access the specified resource" in str(refused.value)
    ec2.release_address(AllocationId=allocation_id)
    assert ec2.describe_addresses(Filters=[{"Name": "allocation-id", "Values": [allocation_id]}])["Addresses"] == []
    # An address no NAT gateway used is released at once.
    ec2.release_address(AllocationId=untouched)


def test_a_new_address_is_not_found_by_create_nat_gateway_for_a_while(ec2: Any) -> None:
    vpc_id = _vpc(ec2)
    subnet_id = _subnet(ec2, vpc_id, "10.0.0.0/24")
    older = ec2.allocate_address(Domain="vpc")["AllocationId"]
    ec2_patches.set_fault("new_allocation_not_found", 2)
    allocation_id = ec2.allocate_address(Domain="vpc")["AllocationId"]

    for _ in range(2):
        with pytest.raises(ClientError) as missing:
            ec2.create_nat_gateway(SubnetId=subnet_id, AllocationId=allocation_id, ClientToken="nat-a")
        assert _code(missing) == "InvalidElasticIpID.NotFound"
        assert allocation_id in str(missing.value)
    made = ec2.create_nat_gateway(SubnetId=subnet_id, AllocationId=allocation_id, ClientToken="nat-a")["NatGateway"]
    assert made["NatGatewayAddresses"][0]["AllocationId"] == allocation_id
    # Nothing was made by the refused calls, and an address allocated before the fault was set is seen at once.
    other_subnet = _subnet(ec2, vpc_id, "10.0.1.0/24", AZ_B)
    ec2.create_nat_gateway(SubnetId=other_subnet, AllocationId=older)
    assert len(ec2.describe_nat_gateways()["NatGateways"]) == 2


def test_faults_are_named() -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        ec2_patches.set_fault("throttle", 1)


def test_nat_gateway_tag_filters_select_only_matching_gateways(ec2: Any) -> None:
    subnet_id = _subnet(ec2, _vpc(ec2), "10.0.0.0/24")
    nat_a = _private_nat(ec2, subnet_id, Name="hub-nat-a", component="nat")
    nat_b = _private_nat(ec2, subnet_id, Name="hub-nat-b")

    def found(*filters: tuple[str, list[str]]) -> set[str]:
        response = ec2.describe_nat_gateways(Filters=[{"Name": n, "Values": v} for n, v in filters])
        return {nat["NatGatewayId"] for nat in response["NatGateways"]}

    assert found(("tag:Name", ["hub-nat-a"])) == {nat_a}
    assert found(("tag:Name", ["hub-nat-*"])) == {nat_a, nat_b}
    assert found(("tag-key", ["component"])) == {nat_a}
    assert found(("tag-value", ["hub-nat-b"])) == {nat_b}
    assert found(("tag:Name", ["hub-nat-a"]), ("tag-key", ["missing"])) == set()
    assert found(("tag:Name", ["other"])) == set()


def test_unknown_nat_gateway_is_reported_not_found(ec2: Any) -> None:
    with pytest.raises(ClientError) as deleting:
        ec2.delete_nat_gateway(NatGatewayId="nat-0123456789abcdef0")
    assert _code(deleting) == "NatGatewayNotFound"
    with pytest.raises(ClientError) as describing:
        ec2.describe_nat_gateways(NatGatewayIds=["nat-0123456789abcdef0"])
    assert _code(describing) == "NatGatewayNotFound"


# --------------------------------------------------------------------------------------------------- Transit Gateway


def test_transit_gateway_is_pending_and_refuses_attachments_until_available(ec2: Any) -> None:
    set_transition("transit_gateway", times=2)
    vpc_id = _vpc(ec2)
    subnet_id = _subnet(ec2, vpc_id, "10.0.0.0/24")

    created = ec2.create_transit_gateway(Options={"DefaultRouteTableAssociation": "disable"})["TransitGateway"]
    tgw_id = created["TransitGatewayId"]

    assert created["State"] == "pending"
    with pytest.raises(ClientError) as early:
        _attach(ec2, tgw_id, vpc_id, [subnet_id])
    assert _code(early) == "IncorrectState"
    states = [ec2.describe_transit_gateways(TransitGatewayIds=[tgw_id])["TransitGateways"][0]["State"] for _ in "ab"]
    assert states == ["pending", "available"]
    assert _attach(ec2, tgw_id, vpc_id, [subnet_id])["TransitGatewayId"] == tgw_id


def test_transit_gateway_delete_waits_for_attachments_and_stays_listed_as_deleted(ec2: Any) -> None:
    vpc_id = _vpc(ec2)
    tgw_id = _tgw(ec2)
    attachment_id = _attach(ec2, tgw_id, vpc_id, [_subnet(ec2, vpc_id, "10.0.0.0/24")])["TransitGatewayAttachmentId"]

    with pytest.raises(ClientError) as attached:
        ec2.delete_transit_gateway(TransitGatewayId=tgw_id)
    assert _code(attached) == "IncorrectState"

    ec2.delete_transit_gateway_vpc_attachment(TransitGatewayAttachmentId=attachment_id)
    ec2.delete_transit_gateway(TransitGatewayId=tgw_id)

    listed = ec2.describe_transit_gateways(Filters=[{"Name": "state", "Values": ["deleted"]}])["TransitGateways"]
    assert [t["TransitGatewayId"] for t in listed] == [tgw_id]
    with pytest.raises(ClientError) as again:
        ec2.delete_transit_gateway(TransitGatewayId=tgw_id)
    assert _code(again) == "InvalidTransitGatewayID.NotFound"


def test_transit_gateway_tag_filters_combine_without_crashing(ec2: Any) -> None:
    tgw_id = _tgw(ec2, Name="hub-tgw", deployment="prod")
    _tgw(ec2, Name="other-tgw")

    def found(filters: dict[str, list[str]]) -> list[str]:
        response = ec2.describe_transit_gateways(Filters=[{"Name": k, "Values": v} for k, v in filters.items()])
        return [t["TransitGatewayId"] for t in response["TransitGateways"]]

    assert found({"tag:Name": ["nope"], "tag:deployment": ["nope"]}) == []
    assert found({"tag:Name": ["hub-tgw"], "tag:deployment": ["prod"]}) == [tgw_id]
    with pytest.raises(ClientError) as unknown:
        ec2.describe_transit_gateways(TransitGatewayIds=["tgw-0123456789abcdef0"])
    assert _code(unknown) == "InvalidTransitGatewayID.NotFound"


def test_without_default_route_table_nothing_is_associated_or_created(ec2: Any) -> None:
    vpc_id = _vpc(ec2)
    subnet_id = _subnet(ec2, vpc_id, "10.0.0.0/24")
    bare_tgw = _tgw(ec2, defaults="disable")
    default_tgw = _tgw(ec2, defaults="enable")

    bare = _attach(ec2, bare_tgw, vpc_id, [subnet_id])["TransitGatewayAttachmentId"]
    with_default = _attach(ec2, default_tgw, vpc_id, [subnet_id])["TransitGatewayAttachmentId"]

    tables = ec2.describe_transit_gateway_route_tables(Filters=[{"Name": "transit-gateway-id", "Values": [bare_tgw]}])
    assert tables["TransitGatewayRouteTables"] == []
    attachments = {
        a["TransitGatewayAttachmentId"]: a
        for a in ec2.describe_transit_gateway_attachments()["TransitGatewayAttachments"]
    }
    assert "Association" not in attachments[bare]
    default_rt = ec2.describe_transit_gateways(TransitGatewayIds=[default_tgw])["TransitGateways"][0]["Options"][
        "AssociationDefaultRouteTableId"
    ]
    assert attachments[with_default]["Association"]["TransitGatewayRouteTableId"] == default_rt


# --------------------------------------------------------------------------------------------------- TGW attachments


def test_attachment_keeps_its_tags_and_tag_filters_find_it(ec2: Any) -> None:
    tgw_id = _tgw(ec2)
    hub_vpc, spoke_vpc = _vpc(ec2, "10.0.0.0/16"), _vpc(ec2, "10.1.0.0/16")
    hub = _attach(ec2, tgw_id, hub_vpc, [_subnet(ec2, hub_vpc, "10.0.0.0/24")], Name="hub-attachment", role="hub")
    _attach(ec2, tgw_id, spoke_vpc, [_subnet(ec2, spoke_vpc, "10.1.0.0/24")], Name="spoke-attachment")
    hub_id = hub["TransitGatewayAttachmentId"]

    assert {"Key": "role", "Value": "hub"} in hub["Tags"]
    by_name = [{"Name": "tag:Name", "Values": ["hub-attachment"]}]
    vpc_attachments = ec2.describe_transit_gateway_vpc_attachments(Filters=by_name)["TransitGatewayVpcAttachments"]
    assert [a["TransitGatewayAttachmentId"] for a in vpc_attachments] == [hub_id]
    by_key = [{"Name": "tag-key", "Values": ["role"]}, {"Name": "state", "Values": ["available"]}]
    attachments = ec2.describe_transit_gateway_attachments(Filters=by_key)["TransitGatewayAttachments"]
    assert [a["TransitGatewayAttachmentId"] for a in attachments] == [hub_id]
    nothing = [{"Name": "tag:Name", "Values": ["x"]}, {"Name": "tag:role", "Values": ["x"]}]
    assert ec2.describe_transit_gateway_attachments(Filters=nothing)["TransitGatewayAttachments"] == []


def test_attachment_lifecycle_is_pending_then_deleting_and_stays_listed(ec2: Any) -> None:
    set_transition("transit_gateway_attachment", times=2)
    set_transition("transit_gateway_attachment_delete", times=2)
    tgw_id = _tgw(ec2)
    table_id = ec2.create_transit_gateway_route_table(TransitGatewayId=tgw_id)["TransitGatewayRouteTable"][
        "TransitGatewayRouteTableId"
    ]
    vpc_id = _vpc(ec2)
    subnet_id = _subnet(ec2, vpc_id, "10.0.0.0/24")

    attachment = _attach(ec2, tgw_id, vpc_id, [subnet_id])
    attachment_id = attachment["TransitGatewayAttachmentId"]
    assert attachment["State"] == "pending"
    with pytest.raises(ClientError) as early:
        ec2.associate_transit_gateway_route_table(
            TransitGatewayRouteTableId=table_id, TransitGatewayAttachmentId=attachment_id
        )
    assert _code(early) == "IncorrectState"
    assert [_attachment_state(ec2, attachment_id) for _ in "ab"] == ["pending", "available"]

    ec2.delete_transit_gateway_vpc_attachment(TransitGatewayAttachmentId=attachment_id)
    assert _attachment_state(ec2, attachment_id) == "deleting"
    with pytest.raises(ClientError) as busy:
        ec2.delete_subnet(SubnetId=subnet_id)
    assert _code(busy) == "DependencyViolation"
    assert _attachment_state(ec2, attachment_id) == "deleted"
    ec2.delete_subnet(SubnetId=subnet_id)


@pytest.mark.parametrize(
    ("layout", "code"),
    [
        ("unknown-subnet", "InvalidSubnetID.NotFound"),
        ("same-az", "DuplicateSubnetsInSameZone"),
        ("other-vpc", "InvalidParameterValue"),
    ],
)
def test_attachment_subnets_are_validated(ec2: Any, layout: str, code: str) -> None:
    tgw_id = _tgw(ec2)
    vpc_id, other_vpc = _vpc(ec2, "10.0.0.0/16"), _vpc(ec2, "10.9.0.0/16")
    first = _subnet(ec2, vpc_id, "10.0.0.0/24", AZ_A)
    second = {
        "unknown-subnet": "subnet-0123456789abcdef0",
        "same-az": _subnet(ec2, vpc_id, "10.0.1.0/24", AZ_A),
        "other-vpc": _subnet(ec2, other_vpc, "10.9.0.0/24", AZ_B),
    }[layout]

    with pytest.raises(ClientError) as refused:
        _attach(ec2, tgw_id, vpc_id, [first, second])
    assert _code(refused) == code
    assert ec2.describe_transit_gateway_vpc_attachments()["TransitGatewayVpcAttachments"] == []


def test_attachment_can_be_associated_with_one_route_table_only(ec2: Any) -> None:
    tgw_id = _tgw(ec2)
    spokes_rt, hub_rt = (
        ec2.create_transit_gateway_route_table(TransitGatewayId=tgw_id)["TransitGatewayRouteTable"][
            "TransitGatewayRouteTableId"
        ]
        for _ in "ab"
    )
    vpc_id = _vpc(ec2)
    attachment_id = _attach(ec2, tgw_id, vpc_id, [_subnet(ec2, vpc_id, "10.0.0.0/24")])["TransitGatewayAttachmentId"]

    ec2.associate_transit_gateway_route_table(
        TransitGatewayRouteTableId=spokes_rt, TransitGatewayAttachmentId=attachment_id
    )
    for table_id in (hub_rt, spokes_rt):
        with pytest.raises(ClientError) as twice:
            ec2.associate_transit_gateway_route_table(
                TransitGatewayRouteTableId=table_id, TransitGatewayAttachmentId=attachment_id
            )
        assert _code(twice) == "Resource.AlreadyAssociated"

    described = ec2.describe_transit_gateway_attachments(TransitGatewayAttachmentIds=[attachment_id])
    assert described["TransitGatewayAttachments"][0]["Association"]["TransitGatewayRouteTableId"] == spokes_rt
    ec2.disassociate_transit_gateway_route_table(
        TransitGatewayRouteTableId=spokes_rt, TransitGatewayAttachmentId=attachment_id
    )
    ec2.associate_transit_gateway_route_table(
        TransitGatewayRouteTableId=hub_rt, TransitGatewayAttachmentId=attachment_id
    )
    associations = ec2.get_transit_gateway_route_table_associations(TransitGatewayRouteTableId=hub_rt)["Associations"]
    assert [a["TransitGatewayAttachmentId"] for a in associations] == [attachment_id]


def test_attachment_reports_its_association_while_modifying(ec2: Any) -> None:
    tgw_id, table_id, _, attachment_id = _tgw_table_and_attachment(ec2)
    ec2.associate_transit_gateway_route_table(
        TransitGatewayRouteTableId=table_id, TransitGatewayAttachmentId=attachment_id
    )
    # As AWS lists it while ModifyTransitGatewayVpcAttachment takes effect.
    _backend().transit_gateway_attachments[attachment_id].state = "modifying"

    on_tgw = ec2.describe_transit_gateway_attachments(Filters=[{"Name": "transit-gateway-id", "Values": [tgw_id]}])
    (listed,) = on_tgw["TransitGatewayAttachments"]
    assert listed["State"] == "modifying"
    assert listed["Association"] == {"State": "associated", "TransitGatewayRouteTableId": table_id}


# --------------------------------------------------------------------------------------------------- TGW route tables


def test_tgw_route_table_tag_filters(ec2: Any) -> None:
    tgw_id = _tgw(ec2)
    spokes = ec2.create_transit_gateway_route_table(
        TransitGatewayId=tgw_id, TagSpecifications=_tags("transit-gateway-route-table", Name="spokes")
    )["TransitGatewayRouteTable"]["TransitGatewayRouteTableId"]
    ec2.create_transit_gateway_route_table(
        TransitGatewayId=tgw_id, TagSpecifications=_tags("transit-gateway-route-table", Name="hub")
    )

    found = ec2.describe_transit_gateway_route_tables(Filters=[{"Name": "tag:Name", "Values": ["spokes"]}])
    assert [t["TransitGatewayRouteTableId"] for t in found["TransitGatewayRouteTables"]] == [spokes]


def test_static_route_reports_its_attachment_and_cannot_be_duplicated(ec2: Any) -> None:
    _, table_id, vpc_id, attachment_id = _tgw_table_and_attachment(ec2)
    route = {"TransitGatewayRouteTableId": table_id, "DestinationCidrBlock": "0.0.0.0/0"}

    created = ec2.create_transit_gateway_route(**route, TransitGatewayAttachmentId=attachment_id)["Route"]
    with pytest.raises(ClientError) as duplicate:
        ec2.create_transit_gateway_route(**route, TransitGatewayAttachmentId=attachment_id)

    assert _code(duplicate) == "RouteAlreadyExists"
    assert created["TransitGatewayAttachments"][0]["TransitGatewayAttachmentId"] == attachment_id
    searched = ec2.search_transit_gateway_routes(
        TransitGatewayRouteTableId=table_id, Filters=[{"Name": "type", "Values": ["static"]}]
    )["Routes"]
    assert [(r["DestinationCidrBlock"], r["TransitGatewayAttachments"][0]["ResourceId"]) for r in searched] == [
        ("0.0.0.0/0", vpc_id)
    ]
    ec2.delete_transit_gateway_vpc_attachment(TransitGatewayAttachmentId=attachment_id)
    after = ec2.search_transit_gateway_routes(
        TransitGatewayRouteTableId=table_id, Filters=[{"Name": "type", "Values": ["static"]}]
    )["Routes"]
    assert [(r["DestinationCidrBlock"], r["State"]) for r in after] == [("0.0.0.0/0", "blackhole")]


def test_propagation_adds_and_removes_the_vpc_cidr_route(ec2: Any) -> None:
    tgw_id = _tgw(ec2)
    table_id = ec2.create_transit_gateway_route_table(TransitGatewayId=tgw_id)["TransitGatewayRouteTable"][
        "TransitGatewayRouteTableId"
    ]
    vpc_id = _vpc(ec2, "10.20.0.0/16")
    attachment_id = _attach(ec2, tgw_id, vpc_id, [_subnet(ec2, vpc_id, "10.20.0.0/24")])["TransitGatewayAttachmentId"]

    def propagated() -> list[tuple[str, str]]:
        routes = ec2.search_transit_gateway_routes(
            TransitGatewayRouteTableId=table_id, Filters=[{"Name": "type", "Values": ["propagated"]}]
        )["Routes"]
        return [
            (r["DestinationCidrBlock"], r["TransitGatewayAttachments"][0]["TransitGatewayAttachmentId"]) for r in routes
        ]

    propagation = {"TransitGatewayRouteTableId": table_id, "TransitGatewayAttachmentId": attachment_id}
    assert propagated() == []
    ec2.enable_transit_gateway_route_table_propagation(**propagation)
    assert propagated() == [("10.20.0.0/16", attachment_id)]
    ec2.disable_transit_gateway_route_table_propagation(**propagation)
    assert propagated() == []


# --------------------------------------------------------------------------------------------------- VPC endpoints


def test_vpc_endpoint_client_token_returns_the_same_endpoint(ec2: Any) -> None:
    vpc_id = _vpc(ec2)
    rt_id = ec2.create_route_table(VpcId=vpc_id)["RouteTable"]["RouteTableId"]
    request = {
        "VpcId": vpc_id,
        "ServiceName": f"com.amazonaws.{REGION}.s3",
        "RouteTableIds": [rt_id],
        "ClientToken": "s3-endpoint",
    }

    first = ec2.create_vpc_endpoint(**request)["VpcEndpoint"]["VpcEndpointId"]
    again = ec2.create_vpc_endpoint(**request)["VpcEndpoint"]["VpcEndpointId"]

    assert again == first
    endpoints = ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["VpcEndpoints"]
    assert [e["VpcEndpointId"] for e in endpoints] == [first]


def test_interface_endpoint_is_pending_until_described(ec2: Any) -> None:
    set_transition("vpc_endpoint", times=2)
    vpc_id = _vpc(ec2, dns=True)
    subnets = [_subnet(ec2, vpc_id, "10.0.0.0/24", AZ_A), _subnet(ec2, vpc_id, "10.0.1.0/24", AZ_B)]

    endpoint = _interface_endpoint(ec2, vpc_id, subnets, PrivateDnsEnabled=True)

    assert endpoint["State"] == "pending"
    states = [
        ec2.describe_vpc_endpoints(VpcEndpointIds=[endpoint["VpcEndpointId"]])["VpcEndpoints"][0]["State"] for _ in "ab"
    ]
    assert states == ["pending", "available"]


def test_interface_endpoint_private_dns_needs_dns_hostnames(ec2: Any) -> None:
    vpc_id = _vpc(ec2, dns=False)
    subnet_id = _subnet(ec2, vpc_id, "10.0.0.0/24")

    with pytest.raises(ClientError) as refused:
        _interface_endpoint(ec2, vpc_id, [subnet_id], PrivateDnsEnabled=True)

    assert _code(refused) == "InvalidParameter"
    assert _interface_endpoint(ec2, vpc_id, [subnet_id], PrivateDnsEnabled=False)["State"] == "available"


def test_interface_endpoint_refuses_two_subnets_in_one_zone(ec2: Any) -> None:
    vpc_id = _vpc(ec2, dns=True)
    subnets = [_subnet(ec2, vpc_id, "10.0.0.0/24", AZ_A), _subnet(ec2, vpc_id, "10.0.1.0/24", AZ_A)]

    with pytest.raises(ClientError) as refused:
        _interface_endpoint(ec2, vpc_id, subnets)

    assert _code(refused) == "DuplicateSubnetsInSameZone"
    assert ec2.describe_vpc_endpoints()["VpcEndpoints"] == []


def test_interface_endpoint_to_a_privatelink_service_needs_a_databricks_service_of_the_region(ec2: Any) -> None:
    vpc_id = _vpc(ec2, dns=True)
    subnet_id = _subnet(ec2, vpc_id, "10.0.0.0/24")
    for unknown in ("com.amazonaws.vpce.eu-west-1.vpce-svc-0123456789abcdef0",
                    "com.amazonaws.vpce.eu-west-1.vpce-svc-081f78503812597f7"):  # eu-central-1's, not eu-west-1's
        with pytest.raises(ClientError) as refused:
            _interface_endpoint(ec2, vpc_id, [subnet_id], ServiceName=unknown)
        assert _code(refused) == "InvalidServiceName"
    workspace = "com.amazonaws.vpce.eu-west-1.vpce-svc-0da6ebf1461278016"  # the region table's REST API service
    # AWS holds it for the service to accept, which Databricks does once it is registered with the account.
    assert _interface_endpoint(ec2, vpc_id, [subnet_id], ServiceName=workspace, PrivateDnsEnabled=True)["State"] \
        == "pendingAcceptance"


# --------------------------------------------------------------------------------------------------- route tables


def test_route_table_client_token_returns_the_same_table(ec2: Any) -> None:
    vpc_id = _vpc(ec2)

    first = ec2.create_route_table(VpcId=vpc_id, ClientToken="rt-hub-a")["RouteTable"]["RouteTableId"]
    again = ec2.create_route_table(VpcId=vpc_id, ClientToken="rt-hub-a")["RouteTable"]["RouteTableId"]

    assert again == first
    tables = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["RouteTables"]
    assert len(tables) == 2  # the main table and this one


def test_the_main_route_table_is_not_deleted_until_the_vpc_goes(ec2: Any) -> None:
    vpc_id = _vpc(ec2)
    main = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc_id]},
                                              {"Name": "association.main", "Values": ["true"]}])["RouteTables"][0]
    other = ec2.create_route_table(VpcId=vpc_id)["RouteTable"]["RouteTableId"]

    with pytest.raises(ClientError) as refused:
        ec2.delete_route_table(RouteTableId=main["RouteTableId"])

    assert _code(refused) == "DependencyViolation"
    # Handing the main role to another table frees the old one; the new main table goes with the VPC.
    ec2.replace_route_table_association(AssociationId=main["Associations"][0]["RouteTableAssociationId"],
                                        RouteTableId=other)
    ec2.delete_route_table(RouteTableId=main["RouteTableId"])
    ec2.delete_vpc(VpcId=vpc_id)
    assert ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["RouteTables"] == []


def test_routes_to_missing_nat_or_transit_gateway_are_refused(ec2: Any) -> None:
    vpc_id = _vpc(ec2)
    subnet_id = _subnet(ec2, vpc_id, "10.0.0.0/24")
    rt_id = ec2.create_route_table(VpcId=vpc_id)["RouteTable"]["RouteTableId"]
    tgw_id = _tgw(ec2)

    with pytest.raises(ClientError) as no_nat:
        ec2.create_route(RouteTableId=rt_id, DestinationCidrBlock="0.0.0.0/0", NatGatewayId="nat-0123456789abcdef0")
    with pytest.raises(ClientError) as no_tgw:
        ec2.create_route(RouteTableId=rt_id, DestinationCidrBlock="0.0.0.0/0", TransitGatewayId="tgw-0123456789abcdef0")
    with pytest.raises(ClientError) as not_attached:
        ec2.create_route(RouteTableId=rt_id, DestinationCidrBlock="0.0.0.0/0", TransitGatewayId=tgw_id)

    assert _code(no_nat) == "InvalidNatGatewayID.NotFound"
    assert _code(no_tgw) == "InvalidTransitGatewayID.NotFound"
    assert _code(not_attached) == "InvalidTransitGatewayID.NotFound"
    _attach(ec2, tgw_id, vpc_id, [subnet_id])
    ec2.create_route(RouteTableId=rt_id, DestinationCidrBlock="0.0.0.0/0", TransitGatewayId=tgw_id)
    routes = ec2.describe_route_tables(RouteTableIds=[rt_id])["RouteTables"][0]["Routes"]
    assert [r.get("TransitGatewayId") for r in routes if r["DestinationCidrBlock"] == "0.0.0.0/0"] == [tgw_id]


def test_subnet_already_associated_elsewhere_is_refused(ec2: Any) -> None:
    vpc_id = _vpc(ec2)
    subnet_id = _subnet(ec2, vpc_id, "10.0.0.0/24")
    first, second = (ec2.create_route_table(VpcId=vpc_id)["RouteTable"]["RouteTableId"] for _ in "ab")
    ec2.associate_route_table(RouteTableId=first, SubnetId=subnet_id)

    with pytest.raises(ClientError) as twice:
        ec2.associate_route_table(RouteTableId=second, SubnetId=subnet_id)

    assert _code(twice) == "Resource.AlreadyAssociated"
    owners = ec2.describe_route_tables(Filters=[{"Name": "association.subnet-id", "Values": [subnet_id]}])
    assert [t["RouteTableId"] for t in owners["RouteTables"]] == [first]


def test_route_tables_can_be_found_by_gateway_association(ec2: Any) -> None:
    vpc_id = _vpc(ec2)
    igw_id = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw_id, VpcId=vpc_id)
    edge_rt, _ = (ec2.create_route_table(VpcId=vpc_id)["RouteTable"]["RouteTableId"] for _ in "ab")
    ec2.associate_route_table(RouteTableId=edge_rt, GatewayId=igw_id)

    found = ec2.describe_route_tables(Filters=[{"Name": "association.gateway-id", "Values": [igw_id]}])

    assert [t["RouteTableId"] for t in found["RouteTables"]] == [edge_rt]


# --------------------------------------------------------------------------------------------------- teardown order


def test_vpc_cannot_be_deleted_before_its_dependents(ec2: Any) -> None:
    vpc_id = _vpc(ec2, dns=True)
    tgw_id = _tgw(ec2)
    igw_id = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw_id, VpcId=vpc_id)
    group_id = ec2.create_security_group(GroupName="workspace", Description="d", VpcId=vpc_id)["GroupId"]
    subnet_a = _subnet(ec2, vpc_id, "10.0.0.0/24", AZ_A)
    subnet_b = _subnet(ec2, vpc_id, "10.0.1.0/24", AZ_B)
    endpoint_id = _interface_endpoint(ec2, vpc_id, [subnet_a], SecurityGroupIds=[group_id])["VpcEndpointId"]
    attachment_id = _attach(ec2, tgw_id, vpc_id, [subnet_b])["TransitGatewayAttachmentId"]

    def refused(call: Any, **kwargs: Any) -> str:
        with pytest.raises(ClientError) as excinfo:
            call(**kwargs)
        return _code(excinfo)

    assert refused(ec2.delete_subnet, SubnetId=subnet_a) == "DependencyViolation"  # endpoint ENI
    assert refused(ec2.delete_subnet, SubnetId=subnet_b) == "DependencyViolation"  # TGW attachment
    assert refused(ec2.delete_security_group, GroupId=group_id) == "DependencyViolation"  # endpoint uses it
    ec2.delete_vpc_endpoints(VpcEndpointIds=[endpoint_id])
    ec2.delete_transit_gateway_vpc_attachment(TransitGatewayAttachmentId=attachment_id)
    ec2.delete_subnet(SubnetId=subnet_a)
    ec2.delete_subnet(SubnetId=subnet_b)

    assert refused(ec2.delete_vpc, VpcId=vpc_id) == "DependencyViolation"  # IGW and security group
    ec2.detach_internet_gateway(InternetGatewayId=igw_id, VpcId=vpc_id)
    assert refused(ec2.delete_vpc, VpcId=vpc_id) == "DependencyViolation"  # security group
    ec2.delete_security_group(GroupId=group_id)
    ec2.delete_vpc(VpcId=vpc_id)
    assert ec2.describe_vpcs(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Vpcs"] == []


def test_security_group_referenced_by_another_group_cannot_be_deleted(ec2: Any) -> None:
    vpc_id = _vpc(ec2)
    target = ec2.create_security_group(GroupName="target", Description="d", VpcId=vpc_id)["GroupId"]
    source = ec2.create_security_group(GroupName="source", Description="d", VpcId=vpc_id)["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=target, IpPermissions=[{"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": target}]}]
    )
    ec2.authorize_security_group_egress(
        GroupId=source, IpPermissions=[{"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": target}]}]
    )

    with pytest.raises(ClientError) as referenced:
        ec2.delete_security_group(GroupId=target)

    assert _code(referenced) == "DependencyViolation"
    ec2.delete_security_group(GroupId=source)
    ec2.delete_security_group(GroupId=target)  # its own self-reference does not hold it


# --------------------------------------------------------------------------------------------------- flow logs

_FLOW_LOGS_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "vpc-flow-logs.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {
                "StringEquals": {"aws:SourceAccount": DEFAULT_ACCOUNT_ID},
                "ArnLike": {"aws:SourceArn": f"arn:aws:ec2:{REGION}:{DEFAULT_ACCOUNT_ID}:vpc-flow-log/*"},
            },
        }
    ],
}


def _iam(ec2: Any) -> Any:
    url = ec2.meta.endpoint_url
    return _SESSION.client(
        "iam",
        region_name=REGION,
        endpoint_url=None if url.endswith("amazonaws.com") else url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"total_max_attempts": 1}),
    )


def _flow_logs_role(ec2: Any, name: str = "flowlogs", trust: dict[str, Any] | None = None) -> str:
    role = _iam(ec2).create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust or _FLOW_LOGS_TRUST))
    arn: str = role["Role"]["Arn"]
    return arn


def _flow_log(ec2: Any, vpc_id: str, role_arn: str, **kwargs: Any) -> dict[str, Any]:
    request = {
        "ResourceType": "VPC",
        "ResourceIds": [vpc_id],
        "TrafficType": "ALL",
        "LogDestinationType": "cloud-watch-logs",
        "LogGroupName": "/provision/test/vpc-flow-logs",
        "DeliverLogsPermissionArn": role_arn,
    }
    answer: dict[str, Any] = ec2.create_flow_logs(**{**request, **kwargs})
    return answer


def test_flow_log_to_cloudwatch_needs_a_role_the_service_can_assume(ec2: Any) -> None:
    vpc_id = _vpc(ec2)
    missing = f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:role/not-there"
    other_account = "arn:aws:iam::210987654321:role/flowlogs"
    trust = json.dumps(_FLOW_LOGS_TRUST)
    wrong_service = _flow_logs_role(ec2, "lambda", json.loads(trust.replace("vpc-flow-logs.", "lambda.")))
    # A confused-deputy condition naming another region: the service can't assume the role for this flow log.
    wrong_region = _flow_logs_role(ec2, "other-region", json.loads(trust.replace(f"ec2:{REGION}:", "ec2:us-east-1:")))

    for role_arn in (missing, other_account, wrong_service, wrong_region):
        with pytest.raises(ClientError) as refused:
            _flow_log(ec2, vpc_id, role_arn)
        assert _code(refused) == "InvalidParameter", role_arn
        assert role_arn in refused.value.response["Error"]["Message"]
    assert ec2.describe_flow_logs()["FlowLogs"] == []

    created = _flow_log(ec2, vpc_id, _flow_logs_role(ec2))
    assert created["Unsuccessful"] == []
    assert len(created["FlowLogIds"]) == 1


def test_flow_log_to_s3_takes_no_delivery_role(ec2: Any) -> None:
    vpc_id = _vpc(ec2)
    with pytest.raises(ClientError) as refused:
        ec2.create_flow_logs(
            ResourceType="VPC",
            ResourceIds=[vpc_id],
            TrafficType="ALL",
            LogDestinationType="s3",
            LogDestination="arn:aws:s3:::flow-logs-bucket",
            DeliverLogsPermissionArn=_flow_logs_role(ec2),
        )
    assert _code(refused) == "InvalidParameter"


def test_flow_log_keeps_its_tags_and_is_found_by_resource_and_tag(ec2: Any) -> None:
    role_arn = _flow_logs_role(ec2)
    hub, spoke = _vpc(ec2, "10.0.0.0/16"), _vpc(ec2, "10.1.0.0/16")
    hub_log = _flow_log(ec2, hub, role_arn, TagSpecifications=_tags("vpc-flow-log", Name="hub", deployment="dev"))
    spoke_log = _flow_log(ec2, spoke, role_arn, TagSpecifications=_tags("vpc-flow-log", Name="spoke"))

    def found(*filters: tuple[str, list[str]]) -> list[str]:
        flow_logs = ec2.describe_flow_logs(Filters=[{"Name": n, "Values": v} for n, v in filters])["FlowLogs"]
        return sorted(f["FlowLogId"] for f in flow_logs)

    assert found(("resource-id", [hub])) == hub_log["FlowLogIds"]
    assert found(("tag:Name", ["spoke"])) == spoke_log["FlowLogIds"]
    assert found(("tag-key", ["deployment"])) == hub_log["FlowLogIds"]
    assert found(("tag:Name", ["hub", "spoke"]), ("resource-id", [spoke])) == spoke_log["FlowLogIds"]
    assert found(("tag:Name", ["nope"])) == []
    (described,) = ec2.describe_flow_logs(FlowLogIds=hub_log["FlowLogIds"])["FlowLogs"]
    assert {t["Key"]: t["Value"] for t in described["Tags"]} == {"Name": "hub", "deployment": "dev"}
    assert described["DeliverLogsPermissionArn"] == role_arn


def test_flow_log_client_token_returns_the_same_flow_log(ec2: Any) -> None:
    role_arn = _flow_logs_role(ec2)
    vpc_id = _vpc(ec2)

    first = _flow_log(ec2, vpc_id, role_arn, ClientToken="flow-hub")
    again = _flow_log(ec2, vpc_id, role_arn, ClientToken="flow-hub")

    assert again["FlowLogIds"] == first["FlowLogIds"]
    assert again["ClientToken"] == "flow-hub"
    assert len(ec2.describe_flow_logs()["FlowLogs"]) == 1
    with pytest.raises(ClientError) as mismatch:
        _flow_log(ec2, vpc_id, role_arn, ClientToken="flow-hub", TrafficType="REJECT")
    assert _code(mismatch) == "IdempotentParameterMismatch"
    # Without a token, a second identical flow log is refused as a duplicate.
    with pytest.raises(ClientError) as duplicate:
        _flow_log(ec2, vpc_id, role_arn)
    assert _code(duplicate) == "FlowLogAlreadyExists"


def test_deleting_unknown_flow_logs_reports_them_and_deletes_the_rest(ec2: Any) -> None:
    vpc_id = _vpc(ec2)
    (flow_log_id,) = _flow_log(ec2, vpc_id, _flow_logs_role(ec2))["FlowLogIds"]
    unknown = "fl-0123456789abcdef0"

    answer = ec2.delete_flow_logs(FlowLogIds=[flow_log_id, unknown])

    assert [(u["ResourceId"], u["Error"]["Code"]) for u in answer["Unsuccessful"]] == [
        (unknown, "InvalidFlowLogId.NotFound")
    ]
    assert ec2.describe_flow_logs()["FlowLogs"] == []
    again = ec2.delete_flow_logs(FlowLogIds=[flow_log_id])
    assert [u["ResourceId"] for u in again["Unsuccessful"]] == [flow_log_id]


def test_flow_logs_are_found_by_delivery_status(ec2: Any) -> None:
    role_arn = _flow_logs_role(ec2)
    vpc_id = _vpc(ec2)
    # moto fails delivery to a log group that does not exist; the filter must see that.
    (failing,) = _flow_log(ec2, vpc_id, role_arn)["FlowLogIds"]

    def found(status: str) -> list[str]:
        flow_logs = ec2.describe_flow_logs(Filters=[{"Name": "deliver-log-status", "Values": [status]}])["FlowLogs"]
        return [f["FlowLogId"] for f in flow_logs]

    assert found("FAILED") == [failing]
    assert found("SUCCESS") == []
