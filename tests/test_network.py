"""The hub-and-spoke network end to end: `provision` against emulated AWS over HTTP, read back through the EC2 API.

What is checked is what a user would notice: the resources exist with the planned CIDRs and AZs, every hub AZ
has its own TGW subnet, firewall subnet and NAT subnet route table with exactly the designed routes (and there is
no IGW edge table), the Transit Gateway blackholes every spoke CIDR for the spokes, every VPC's default security
group is empty, a packet from every workspace subnet follows the designed hops (traced over the route tables EC2
reports), a second `up` changes nothing, `status` reports what was deleted or changed behind the tool's back,
`down` removes it all in an order AWS accepts, and a crash or a failed NAT gateway is recovered from without
duplicates. The firewall family is not run here: where its routes matter they are made by hand.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from provisioner import steps
from provisioner.aws import clients
from provisioner.design.layout import Layout, layout
from provisioner.design.naming import root_bucket_name
from provisioner.design.policies import kinesis_endpoint_policy, s3_endpoint_policy, sts_endpoint_policy
from provisioner.design.routes import RETIRED_HUB_ROUTE_TABLES
from provisioner.design.security_group import EGRESS, INGRESS, rules_from_permissions, workspace_rules
from provisioner.egress import (
    DELIVERED,
    DROPPED,
    FIREWALL_ENDPOINT,
    INTERNET_GATEWAY,
    NAT_GATEWAY,
    ROUTE_TABLE,
    SUBNET,
    TGW_ATTACHMENT,
    TGW_ROUTE_TABLE,
    TRANSIT_GATEWAY,
    Hop,
    NetworkData,
    Source,
    follow,
    isolation_problems,
    read_network,
    trace_egress,
)
from provisioner.sandbox import ec2_patches
from provisioner.steps import hub_network, spoke_network, transit_gateway, vpc
from tests.conftest import REGION, client, config_text
from tests.hub_readback import (
    assert_default_groups_empty,
    assert_hub_route_tables,
    assert_spokes_blackholed,
    default_groups,
    unhealthy,
)
from tests.hub_readback import config as _config
from tests.hub_readback import read_status as _status
from tests.hub_readback import recorded_ids as _ids

SPOKES = (("bu1", "10.1.0.0/16"), ("bu2", "10.2.0.0/16"), ("bu3", "10.3.0.0/16"))
# From a workspace subnet to the hub's TGW subnet table, where the firewall family's `0/0 -> endpoint` goes.
TO_HUB = [SUBNET, ROUTE_TABLE, TRANSIT_GATEWAY, TGW_ROUTE_TABLE, TGW_ATTACHMENT, SUBNET, ROUTE_TABLE]
# Then, with the firewall: endpoint -> firewall subnet table -> NAT -> NAT subnet table -> IGW.
THROUGH_FIREWALL = [FIREWALL_ENDPOINT, ROUTE_TABLE, NAT_GATEWAY, ROUTE_TABLE, INTERNET_GATEWAY]
LEGACY_OFF = "[firewall]\nlegacy_hive_metastore = false\n"


@pytest.fixture(autouse=True)
def network_only(monkeypatch):
    """These tests are about the network families alone: the firewall, the Databricks objects and the rest are
    tested with their own families (the routes the firewall adds are made by hand below where it matters)."""
    monkeypatch.setattr(steps, "FAMILIES", (hub_network, transit_gateway, spoke_network))


# -- helpers ------------------------------------------------------------------------------------------------------


def _read(ids: dict[str, str], lay: Layout) -> NetworkData:
    vpcs = [ids["hub/vpc"], *(ids[f"spoke/{s.name}/vpc"] for s in lay.spokes)]
    return read_network(client("ec2"), vpcs, ids["hub/transit-gateway"])


def _sources(ids: dict[str, str], lay: Layout) -> list[Source]:
    return [Source(f"spoke {s.name} {az}", ids[f"spoke/{s.name}/workspace-subnet/{az}"])
            for s in lay.spokes for az in s.azs]


OWNED_KINDS = {
    # describe operation, result list, filter parameter
    "vpc": ("describe_vpcs", "Vpcs", "Filters"),
    "subnet": ("describe_subnets", "Subnets", "Filters"),
    "route-table": ("describe_route_tables", "RouteTables", "Filters"),
    "igw": ("describe_internet_gateways", "InternetGateways", "Filters"),
    "eip": ("describe_addresses", "Addresses", "Filters"),
    "nat": ("describe_nat_gateways", "NatGateways", "Filter"),
    "sg": ("describe_security_groups", "SecurityGroups", "Filters"),
    "endpoint": ("describe_vpc_endpoints", "VpcEndpoints", "Filters"),
    "tgw": ("describe_transit_gateways", "TransitGateways", "Filters"),
    "attachment": ("describe_transit_gateway_vpc_attachments", "TransitGatewayVpcAttachments", "Filters"),
    "tgw-route-table": ("describe_transit_gateway_route_tables", "TransitGatewayRouteTables", "Filters"),
}


def _owned(deployment: str) -> dict[str, int]:
    """How many live EC2 resources of each kind carry the deployment's tag."""
    ec2 = client("ec2")
    counts = {}
    for kind, (operation, result, param) in OWNED_KINDS.items():
        items = getattr(ec2, operation)(**{param: [{"Name": "tag:provisioner:deployment", "Values": [deployment]}]})
        counts[kind] = sum(1 for i in items[result] if str(i.get("State", "available")).lower()
                           not in ("deleted", "deleting", "failed"))
    return counts


def _expected(spokes: int, azs: int, kinesis: bool = True) -> dict[str, int]:
    # Route tables: one per spoke, three per hub AZ (TGW, firewall and NAT subnets), none shared, no edge table.
    return {"vpc": spokes + 1, "subnet": 4 * spokes + 3 * azs, "route-table": spokes + 3 * azs, "igw": 1,
            "eip": azs, "nat": azs, "sg": spokes, "endpoint": (3 if kinesis else 2) * spokes, "tgw": 1,
            "attachment": spokes + 1, "tgw-route-table": 2}


# -- what `up` builds ---------------------------------------------------------------------------------------------


def _assert_subnets_and_vpcs(ids: dict[str, str], lay: Layout) -> None:
    ec2 = client("ec2")
    planned = {}
    for spoke in lay.spokes:
        for i, az in enumerate(spoke.azs):
            planned[f"spoke/{spoke.name}/workspace-subnet/{az}"] = (spoke.cidrs.workspace_subnets[i], az)
            planned[f"spoke/{spoke.name}/tgw-subnet/{az}"] = (spoke.cidrs.tgw_subnets[i], az)
        vpc_id = ids[f"spoke/{spoke.name}/vpc"]
        for attribute, field in (("enableDnsSupport", "EnableDnsSupport"),
                                 ("enableDnsHostnames", "EnableDnsHostnames")):
            assert ec2.describe_vpc_attribute(VpcId=vpc_id, Attribute=attribute)[field]["Value"] is True
    for hub_az in lay.hub_azs:
        c = hub_az.cidrs
        for what, cidr in (("tgw-subnet", c.tgw_subnet), ("nat-subnet", c.nat_subnet),
                           ("firewall-subnet", c.firewall_subnet)):
            planned[f"hub/{what}/{hub_az.az}"] = (cidr, hub_az.az)
    found = ec2.describe_subnets(SubnetIds=[ids[k] for k in planned])["Subnets"]
    by_id = {s["SubnetId"]: (s["CidrBlock"], s["AvailabilityZone"]) for s in found}
    assert {k: by_id[ids[k]] for k in planned} == planned


def _assert_hub(ids: dict[str, str], lay: Layout) -> None:
    ec2 = client("ec2")
    for hub_az in lay.hub_azs:
        az = hub_az.az
        nat = ec2.describe_nat_gateways(NatGatewayIds=[ids[f"hub/nat/{az}"]])["NatGateways"][0]
        assert nat["State"] == "available" and nat["SubnetId"] == ids[f"hub/nat-subnet/{az}"]
        assert nat["NatGatewayAddresses"][0]["AllocationId"] == ids[f"hub/eip/{az}"]
    igw = ec2.describe_internet_gateways(InternetGatewayIds=[ids["hub/igw"]])["InternetGateways"][0]
    assert [a["VpcId"] for a in igw["Attachments"]] == [ids["hub/vpc"]]
    # The network family's routes alone: the firewall family adds the endpoint routes and the NAT's way out.
    assert_hub_route_tables(ids, lay)

    tgw = ec2.describe_transit_gateways(TransitGatewayIds=[ids["hub/transit-gateway"]])["TransitGateways"][0]
    assert tgw["Options"]["DefaultRouteTableAssociation"] == "disable"
    assert tgw["Options"]["DefaultRouteTablePropagation"] == "disable"
    hub_attachment = ec2.describe_transit_gateway_vpc_attachments(
        TransitGatewayAttachmentIds=[ids["hub/tgw-attachment"]])["TransitGatewayVpcAttachments"][0]
    assert hub_attachment["Options"]["ApplianceModeSupport"] == "enable"
    assert sorted(hub_attachment["SubnetIds"]) == sorted(ids[f"hub/tgw-subnet/{h.az}"] for h in lay.hub_azs)
    spoke_attachments = {ids[f"spoke/{s.name}/tgw-attachment"] for s in lay.spokes}

    def associated(table: str) -> set[str]:
        got = ec2.get_transit_gateway_route_table_associations(TransitGatewayRouteTableId=ids[table])
        return {a["TransitGatewayAttachmentId"] for a in got["Associations"]}

    def propagating(table: str) -> set[str]:
        got = ec2.get_transit_gateway_route_table_propagations(TransitGatewayRouteTableId=ids[table])
        return {p["TransitGatewayAttachmentId"] for p in got["TransitGatewayRouteTablePropagations"]}

    assert associated("hub/tgw-route-table/spokes") == spoke_attachments
    assert propagating("hub/tgw-route-table/spokes") == set()
    assert associated("hub/tgw-route-table/hub") == {ids["hub/tgw-attachment"]}
    assert propagating("hub/tgw-route-table/hub") == spoke_attachments
    assert_spokes_blackholed(ids, lay)
    assert_default_groups_empty(ids, lay)


def _assert_spoke_edges(ids: dict[str, str], config: Any, lay: Layout) -> None:
    ec2 = client("ec2")
    for spoke in lay.spokes:
        s = spoke.name
        group = ec2.describe_security_groups(GroupIds=[ids[f"spoke/{s}/security-group"]])["SecurityGroups"][0]
        have = (rules_from_permissions(INGRESS, group["IpPermissions"], group["GroupId"])
                | rules_from_permissions(EGRESS, group["IpPermissionsEgress"], group["GroupId"]))
        assert have == workspace_rules(config.legacy_hive_metastore)
        endpoints = {e["VpcEndpointId"]: e for e in ec2.describe_vpc_endpoints(VpcEndpointIds=[
            ids[f"spoke/{s}/{what}"] for what in ("s3-endpoint", "sts-endpoint", "kinesis-endpoint")])["VpcEndpoints"]}
        s3 = endpoints[ids[f"spoke/{s}/s3-endpoint"]]
        region = lay.region
        assert s3["VpcEndpointType"] == "Gateway" and s3["RouteTableIds"] == [ids[f"spoke/{s}/route-table"]]
        assert json.loads(s3["PolicyDocument"]) == s3_endpoint_policy(
            root_bucket_name(config.deployment, s),
            (*region.artifact_buckets, region.system_tables_bucket, region.datasets_bucket), region.log_bucket)
        workspace = sorted(ids[f"spoke/{s}/workspace-subnet/{az}"] for az in spoke.azs)
        for what, service in (("sts-endpoint", "sts"), ("kinesis-endpoint", "kinesis-streams")):
            endpoint = endpoints[ids[f"spoke/{s}/{what}"]]
            assert endpoint["ServiceName"] == f"com.amazonaws.{REGION}.{service}"
            assert endpoint["PrivateDnsEnabled"] is True and sorted(endpoint["SubnetIds"]) == workspace
            assert [g["GroupId"] for g in endpoint["Groups"]] == [group["GroupId"]]
        kinesis = endpoints[ids[f"spoke/{s}/kinesis-endpoint"]]
        assert json.loads(kinesis["PolicyDocument"]) == kinesis_endpoint_policy(REGION)
        sts = endpoints[ids[f"spoke/{s}/sts-endpoint"]]
        assert json.loads(sts["PolicyDocument"]) == sts_endpoint_policy("123456789012")  # moto's account
        main = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [ids[f"spoke/{s}/vpc"]]},
                                                  {"Name": "association.main", "Values": ["true"]}])
        assert [t["RouteTableId"] for t in main["RouteTables"]] == [ids[f"spoke/{s}/route-table"]]


def _assert_paths(ids: dict[str, str], lay: Layout) -> None:
    """Every hop that exists without the firewall, traced over what EC2 reports."""
    data = _read(ids, lay)
    report = trace_egress(data, _sources(ids, lay))
    hub_azs = [h.az for h in lay.hub_azs]
    for spoke in lay.spokes:
        for az in spoke.azs:
            source = f"spoke {spoke.name} {az}"
            paths = report.paths(source)
            # The hub attachment runs in appliance mode: the TGW may hand a flow to any hub AZ.
            assert sorted(paths) == hub_azs
            for hub_az, trace in paths.items():
                path = trace.egress
                assert path.kinds == TO_HUB, str(path)
                assert [h.id for h in path.hops] == [
                    ids[f"spoke/{spoke.name}/workspace-subnet/{az}"], ids[f"spoke/{spoke.name}/route-table"],
                    ids["hub/transit-gateway"], ids["hub/tgw-route-table/spokes"], ids["hub/tgw-attachment"],
                    ids[f"hub/tgw-subnet/{hub_az}"], ids[f"hub/tgw-subnet-route-table/{hub_az}"]]
                # The TGW subnet's 0/0 -> firewall endpoint[az] comes with the firewall: until then nothing
                # reaches the NAT, let alone the internet.
                assert path.end == DROPPED and "no route to 0.0.0.0/0" in path.reason
            # Back from the firewall subnet of every hub AZ to this subnet: firewall subnet RT -> TGW -> hub TGW
            # RT -> the spoke. (A hub AZ the spoke does not use hands the flow to either spoke AZ: one path each.)
            for hub_az in hub_azs:
                backs = follow(data, ids[f"hub/firewall-subnet/{hub_az}"], spoke.cidrs.workspace_subnets[0])
                assert len(backs) == (1 if hub_az in spoke.azs else 2)
                for back in backs:
                    assert back.end == DELIVERED and back.vpc == ids[f"spoke/{spoke.name}/vpc"], str(back)
                    assert back.hops[1] == Hop(ROUTE_TABLE, ids[f"hub/firewall-subnet-route-table/{hub_az}"])
                    assert back.hops[3:5] == [Hop(TGW_ROUTE_TABLE, ids["hub/tgw-route-table/hub"]),
                                              Hop(TGW_ATTACHMENT, ids[f"spoke/{spoke.name}/tgw-attachment"])]
    # Spoke to spoke: the spokes table blackholes every spoke CIDR, so the TGW itself drops such a flow; it never
    # reaches the hub.
    for a in lay.spokes:
        for b in lay.spokes:
            if a is b:
                continue
            (path,) = follow(data, ids[f"spoke/{a.name}/workspace-subnet/{a.azs[0]}"], b.cidrs.workspace_subnets[0])
            assert path.end == DROPPED and "blackhole" in path.reason, str(path)
            assert path.hops[-1] == Hop(TGW_ROUTE_TABLE, ids["hub/tgw-route-table/spokes"])
    cidrs = {s.name: s.cidrs.vpc for s in lay.spokes}
    assert isolation_problems(data, _sources(ids, lay), cidrs) == []
    # Inspected traffic goes from the firewall subnet to the NAT of its AZ, and no further until the firewall
    # family adds the NAT subnet's 0/0 -> IGW.
    for hub_az in hub_azs:
        (out,) = follow(data, ids[f"hub/firewall-subnet/{hub_az}"], "0.0.0.0/0")
        assert [(h.id, h.az) for h in out.of(NAT_GATEWAY)] == [(ids[f"hub/nat/{hub_az}"], hub_az)]
        assert out.hops[-1] == Hop(ROUTE_TABLE, ids[f"hub/nat-subnet-route-table/{hub_az}"])
        assert out.end == DROPPED and "no route to 0.0.0.0/0" in out.reason


@pytest.mark.parametrize(("spokes", "azs", "extra"), [
    (1, 1, LEGACY_OFF),
    (1, 2, ""),
    (3, 3, ""),
])
def test_up_builds_the_network_status_reads_it_down_removes_it(aws, workdir, calls, spokes, azs, extra):
    deployment = f"net{spokes}x{azs}"
    text = config_text(deployment, spokes=SPOKES[:spokes], hub_azs=azs, extra=extra)
    workdir.write_config(text)
    config, lay = _config(text), layout(_config(text))

    first = workdir.run("up")
    assert first.code == 0, first.err
    # Route tables of an earlier design this deployment never had are not worth a line.
    assert [line for line in first.out.splitlines() if line.split(" ")[0] in RETIRED_HUB_ROUTE_TABLES] == []
    ids = _ids(workdir, deployment)
    assert _owned(deployment) == _expected(spokes, azs)
    _assert_subnets_and_vpcs(ids, lay)
    _assert_hub(ids, lay)
    _assert_spoke_edges(ids, config, lay)
    _assert_paths(ids, lay)

    calls.clear()
    assert workdir.run("up").code == 0
    assert calls.mutating == []

    code, items = _status(workdir)
    assert code == 3  # egress is not forced through a firewall: that comes with the firewall
    assert {i["status"] for k, i in items.items() if k != "network/egress"} == {"present"}
    assert items["network/egress"]["status"] == "failed"
    assert items["network/egress"]["drift"][0].startswith("egress is not forced through the firewall")
    # ...but the spokes are isolated already: the check finds no spoke reaching another.
    assert not [p for p in items["network/egress"]["drift"] if "reaches spoke" in p or "not blackholed" in p]
    # The NAT-before-firewall layout's tables were never made, so status does not list them.
    assert "hub/igw-route-table" not in items and "hub/firewall-subnet-route-table" not in items

    assert workdir.run("down", "--yes").code == 0
    assert set(_owned(deployment).values()) == {0}


# -- plan and bad input -------------------------------------------------------------------------------------------


def test_plan_lists_every_network_resource_per_spoke_and_az_with_cidrs(workdir, calls):
    workdir.write_config(config_text("plan3", spokes=SPOKES, hub_azs=3))
    result = workdir.run("plan", "--json")
    assert result.code == 0 and calls.calls == []
    items = {r["key"]: r for r in json.loads(result.out)["resources"]}
    lay = layout(_config(config_text("plan3", spokes=SPOKES, hub_azs=3)))
    for hub_az in lay.hub_azs:
        az, c = hub_az.az, hub_az.cidrs
        assert items[f"hub/tgw-subnet/{az}"]["details"] == {"cidr": c.tgw_subnet, "az": az,
                                                             "role": "Transit Gateway attachment"}
        assert items[f"hub/nat-subnet/{az}"]["details"]["cidr"] == c.nat_subnet
        assert items[f"hub/firewall-subnet/{az}"]["details"]["cidr"] == c.firewall_subnet
        assert items[f"hub/nat/{az}"]["details"] == {"az": az, "subnet": c.nat_subnet}
        assert items[f"hub/eip/{az}"]["action"] == "create"
        # Firewall before NAT, per AZ; the routes through the endpoint and the NAT's way out are the firewall's.
        to_spokes = [f"{cidr} -> hub/transit-gateway" for cidr in lay.spoke_cidrs]
        through_endpoint = [f"{cidr} -> firewall-endpoint/{az}" for cidr in lay.spoke_cidrs]
        assert items[f"hub/tgw-subnet-route-table/{az}"]["details"] == {
            "routes": "", "firewall_routes": f"0.0.0.0/0 -> firewall-endpoint/{az}", "subnets": f"hub/tgw-subnet/{az}"}
        assert items[f"hub/firewall-subnet-route-table/{az}"]["details"] == {
            "routes": ", ".join([f"0.0.0.0/0 -> hub/nat/{az}", *to_spokes]), "subnets": f"hub/firewall-subnet/{az}"}
        assert items[f"hub/nat-subnet-route-table/{az}"]["details"] == {
            "routes": "", "firewall_routes": ", ".join(["0.0.0.0/0 -> hub/igw", *through_endpoint]),
            "subnets": f"hub/nat-subnet/{az}"}
    assert items["hub/vpc"]["details"] == {"cidr": "10.10.0.0/16"}
    # No shared firewall-subnet table, no IGW edge table: the retired steps are listed only while recorded.
    assert "hub/firewall-subnet-route-table" not in items and "hub/igw-route-table" not in items
    assert not [key for key, item in items.items() if "edge" in item["details"]]
    assert items["hub/tgw-route-table/spokes"]["details"]["routes"] == ", ".join(
        ["0.0.0.0/0 -> hub/tgw-attachment", *(f"{cidr} -> blackhole" for _, cidr in SPOKES)])
    for name, cidr in SPOKES:
        spoke = next(s for s in lay.spokes if s.name == name)
        assert items[f"spoke/{name}/vpc"]["details"] == {"cidr": cidr}
        for i, az in enumerate(spoke.azs):
            assert items[f"spoke/{name}/workspace-subnet/{az}"]["details"]["cidr"] == spoke.cidrs.workspace_subnets[i]
            assert items[f"spoke/{name}/tgw-subnet/{az}"]["details"]["cidr"] == spoke.cidrs.tgw_subnets[i]
        assert items[f"spoke/{name}/route-table"]["details"]["routes"] == "0.0.0.0/0 -> hub/transit-gateway"
        for what in ("security-group", "s3-endpoint", "sts-endpoint", "kinesis-endpoint", "tgw-attachment"):
            assert items[f"spoke/{name}/{what}"]["action"] == "create"
    for key in ("hub/transit-gateway", "hub/tgw-attachment", "hub/igw", "hub/tgw-route-table/spokes",
                "hub/tgw-route-table/hub"):
        assert items[key]["action"] == "create"


@pytest.mark.parametrize(("extra", "spokes", "message"), [
    ('hub_cidr = "10.1.0.0/16"\n', SPOKES[:1], "overlaps"),
    ("", (("a", "10.1.0.0/16"), ("b", "10.1.128.0/17")), "overlaps"),
    ('region = "us-west-1"\n', SPOKES[:1], "us-west-1 has 2 availability zones"),
])
def test_bad_network_input_is_refused_before_any_call(aws, workdir, calls, extra, spokes, message):
    azs = 3 if "us-west-1" in extra else 2
    workdir.write_config(config_text("bad", spokes=spokes, hub_azs=azs, extra=extra))
    for command in (("plan",), ("up",)):
        result = workdir.run(*command)
        assert result.code == 2 and message in result.err
    assert calls.calls == []


# -- waits, failures, crashes -------------------------------------------------------------------------------------


@pytest.fixture
def slow_aws(aws):
    """NAT gateways, TGWs, attachments and interface endpoints take a few polls each way, as on AWS."""
    for model in ("nat_gateway", "nat_gateway_delete", "transit_gateway", "transit_gateway_delete",
                  "transit_gateway_attachment", "transit_gateway_attachment_delete", "vpc_endpoint",
                  "vpc_endpoint_delete"):
        ec2_patches.set_transition(model, times=3)
    yield aws
    ec2_patches.unset_transitions()


def test_pending_resources_are_waited_for_and_deletes_wait_for_what_aws_needs(slow_aws, workdir, calls):
    workdir.write_config(config_text("slow", hub_azs=2))
    result = workdir.run("up")
    assert result.code == 0, result.err
    # Each pending resource was polled until available before anything used it.
    assert calls.calls.count("DescribeNatGateways") >= 2 * 3
    assert calls.calls.count("DescribeTransitGateways") >= 3
    assert calls.calls.count("DescribeTransitGatewayVpcAttachments") >= 2 * 3
    assert calls.calls.count("DescribeVpcEndpoints") >= 2 * 3

    calls.clear()
    result = workdir.run("down", "--yes")
    assert result.code == 0, result.err
    # Deleted in an order AWS accepts, each delete made once: no DependencyViolation, address still in use,
    # or TGW with attachments had to be retried.
    deletes = [c for c in calls.calls if c.startswith(("Delete", "Release", "Detach"))]
    assert deletes.count("ReleaseAddress") == 2 and deletes.count("DeleteSubnet") == 4 + 6
    assert deletes.count("DeleteVpc") == 2 and deletes.count("DeleteTransitGateway") == 1
    assert deletes.count("DeleteSecurityGroup") == 1 and deletes.count("DetachInternetGateway") == 1
    for before, after in (("DeleteNatGateway", "ReleaseAddress"), ("DeleteTransitGatewayVpcAttachment",
                                                                   "DeleteTransitGateway"),
                          ("DeleteVpcEndpoints", "DeleteSecurityGroup"), ("ReleaseAddress", "DetachInternetGateway")):
        last_before = max(i for i, c in enumerate(calls.calls) if c == before)
        first_after = calls.calls.index(after)
        assert last_before < first_after, (before, after)
        waited = "DescribeNatGateways" if before == "DeleteNatGateway" else None
        if waited:
            assert waited in calls.calls[last_before:first_after]
    assert set(_owned("slow").values()) == {0}


def test_failed_nat_gateway_reports_aws_message_and_next_up_replaces_it(aws, workdir, monkeypatch):
    workdir.write_config(config_text("natfail", hub_azs=1))
    real_create = hub_network.NatGateway.create

    def create_then_fail(self, ctx):
        res = real_create(self, ctx)
        ec2_patches.fail_nat_gateway(res.id, region=REGION, failure_code="InsufficientFreeAddressesInSubnet",
                                     failure_message="Subnet has insufficient free addresses to create this NAT")
        return res

    monkeypatch.setattr(hub_network.NatGateway, "create", create_then_fail)
    ec2_patches.set_transition("nat_gateway", times=3)  # pending at first, as on AWS; then it fails
    try:
        failed = workdir.run("up")
    finally:
        ec2_patches.unset_transitions()
    assert failed.code == 1
    assert "InsufficientFreeAddressesInSubnet: Subnet has insufficient free addresses to create this NAT" in failed.err
    # What needs the NAT did not run; what does not, did.
    done = _ids(workdir, "natfail")
    assert "hub/firewall-subnet-route-table/eu-central-1a" not in done and "spoke/main/sts-endpoint" in done
    assert "hub/tgw-subnet-route-table/eu-central-1a" in done  # it routes to the firewall, not the NAT

    monkeypatch.setattr(hub_network.NatGateway, "create", real_create)
    assert workdir.run("up").code == 0
    nats = client("ec2").describe_nat_gateways(
        Filter=[{"Name": "tag:provisioner:deployment", "Values": ["natfail"]}])["NatGateways"]
    assert sorted(n["State"] for n in nats) == ["available", "failed"]
    assert _ids(workdir, "natfail")["hub/nat/eu-central-1a"] == next(
        n["NatGatewayId"] for n in nats if n["State"] == "available")


def test_a_wait_has_a_deadline(aws, workdir):
    workdir.write_config(config_text("stuck", hub_azs=1))
    ec2_patches.set_transition("nat_gateway", times=10_000)  # never becomes available
    try:
        result = workdir.run("up")
    finally:
        ec2_patches.unset_transitions()
    err = " ".join(result.err.split())  # as one line, however the terminal wrapped it
    assert result.code == 1
    assert "waiting for NAT gateway" in err and "(hub/nat/eu-central-1a) failed: still state pending after 60 polls " \
        "(the deadline: 15 minutes at full polling speed); rerun the command" in err
    # The next `up` finds the same (now available) gateway and waits for it, rather than making another.
    assert workdir.run("up").code == 0
    nats = client("ec2").describe_nat_gateways(
        Filter=[{"Name": "tag:provisioner:deployment", "Values": ["stuck"]}])["NatGateways"]
    assert [n["State"] for n in nats] == ["available"]


class NotListedYet:
    """AWS's eventual consistency after a create: the first calls naming a new route table, internet gateway,
    security group or Elastic IP answer NotFound (botocore hooks on the provisioner's session)."""

    CREATES = {"CreateRouteTable": ("RouteTable", "RouteTableId", "InvalidRouteTableID.NotFound"),
               "CreateInternetGateway": ("InternetGateway", "InternetGatewayId", "InvalidInternetGatewayID.NotFound"),
               "CreateSecurityGroup": (None, "GroupId", "InvalidGroup.NotFound"),
               "AllocateAddress": (None, "AllocationId", "InvalidAllocationID.NotFound")}

    def __init__(self, times: int) -> None:
        self.times = times
        self.pending: dict[str, list[Any]] = {}  # new ID -> [error code, NotFound answers left]
        self.refused: list[str] = []

    def created(self, model: Any, parsed: dict[str, Any], **kwargs: Any) -> None:
        member, field, code = self.CREATES[model.name]
        new_id = (parsed.get(member) if member else parsed or {}).get(field)
        if new_id:
            self.pending[new_id] = [code, self.times]

    def before(self, model: Any, params: dict[str, Any], **kwargs: Any) -> Any:
        from botocore.awsrequest import AWSResponse

        text = json.dumps(params, default=str)
        for new_id, left in self.pending.items():
            if left[1] > 0 and new_id in text:
                left[1] -= 1
                self.refused.append(f"{model.name} {new_id}")
                error = {"Error": {"Code": left[0], "Message": f"The ID '{new_id}' does not exist"},
                         "ResponseMetadata": {"HTTPStatusCode": 400}}
                return AWSResponse("https://ec2", 400, {}, None), error
        return None

    def hooks(self) -> list[tuple[str, Any]]:
        return [*((f"after-call.ec2.{op}", self.created) for op in self.CREATES), ("before-call.ec2.*", self.before)]


def test_a_resource_aws_does_not_list_yet_right_after_its_create_is_waited_for(aws, workdir, monkeypatch):
    lagging = NotListedYet(times=2)
    monkeypatch.setattr(clients, "SESSION_HOOKS", lagging.hooks())
    workdir.write_config(config_text("lag", hub_azs=1))
    result = workdir.run("up")
    assert result.code == 0, result.err
    refused = {call.split()[0] for call in lagging.refused}
    # Each kind was asked about before AWS listed it, and the wait absorbed it: nothing failed.
    assert {"DescribeRouteTables", "DescribeInternetGateways", "DescribeSecurityGroups",
            "DescribeAddresses"} <= refused
    assert _owned("lag") == _expected(1, 1)


def test_a_route_table_still_disassociating_is_deleted_once_aws_lets_go(aws, workdir, monkeypatch):
    workdir.write_config(config_text("unassoc", hub_azs=1))
    assert workdir.run("up").code == 0
    refused: list[str] = []

    def still_associated(model: Any, params: dict[str, Any], **kwargs: Any) -> Any:
        from botocore.awsrequest import AWSResponse

        # AWS answers DependencyViolation while a just-removed association is still `disassociating`.
        table = params["body"]["RouteTableId"]
        if table not in refused:
            refused.append(table)
            error = {"Error": {"Code": "DependencyViolation", "Message": "The routeTable has dependencies"},
                     "ResponseMetadata": {"HTTPStatusCode": 400}}
            return AWSResponse("https://ec2", 400, {}, None), error
        return None

    monkeypatch.setattr(clients, "SESSION_HOOKS", [("before-call.ec2.DeleteRouteTable", still_associated)])
    result = workdir.run("down", "--yes")
    assert result.code == 0, result.err
    assert len(refused) == 4  # the spoke's table and the hub's three (one AZ)
    assert set(_owned("unassoc").values()) == {0}


CRASH_POINTS = [
    (vpc.Vpc, "create"), (vpc.Subnet, "create"), (hub_network.InternetGateway, "create"),
    (hub_network.ElasticIp, "create"), (hub_network.NatGateway, "create"), (transit_gateway.TransitGateway, "create"),
    (transit_gateway.VpcAttachment, "create"), (transit_gateway.TgwRouteTable, "create"),
    (transit_gateway.TgwRouteTable, "ensure"), (vpc.RouteTable, "create"), (vpc, "ensure_subnet_associations"),
    (vpc, "ensure_routes"), (spoke_network.WorkspaceSecurityGroup, "create"),
    (spoke_network.S3GatewayEndpoint, "create"), (spoke_network.InterfaceEndpoint, "create"),
]


def test_crash_anywhere_then_rerun_completes_without_duplicates(aws, workdir, calls, monkeypatch):
    """Every kind of step loses the answer to its create (or dies halfway through fixing routes and associations)
    once: the resource exists but its ID was never saved. Reruns adopt each one by its tags (or get it back by
    its idempotency token) and finish; nothing is made twice. The first loss kills the process outright."""
    workdir.write_config(config_text("crashy", hub_azs=2))
    lost: list[tuple[Any, str]] = []

    def losing(point: tuple[Any, str], real: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            result = real(*args, **kwargs)
            if point not in lost:
                lost.append(point)
                if len(lost) == 1:
                    raise KeyboardInterrupt
                raise ConnectionError("connection reset before the answer arrived")
            return result
        return call

    for point in CRASH_POINTS:
        monkeypatch.setattr(*point, losing(point, getattr(*point)))
    assert workdir.run("up").code == 130
    for _ in range(len(CRASH_POINTS)):
        before = len(lost)
        result = workdir.run("up")
        if result.code == 0 and len(lost) == before:
            break
        assert result.code == 1 and "ConnectionError" in result.err
    assert sorted(map(str, lost)) == sorted(map(str, CRASH_POINTS))
    assert _owned("crashy") == _expected(1, 2)
    calls.clear()
    assert workdir.run("up").code == 0
    assert calls.mutating == []
    assert workdir.run("down", "--yes").code == 0
    assert set(_owned("crashy").values()) == {0}


# -- drift --------------------------------------------------------------------------------------------------------


def test_status_reports_network_drift_and_up_repairs_it(aws, workdir, calls):
    text = config_text("drifty", hub_azs=2)
    workdir.write_config(text)
    lay = layout(_config(text))
    assert workdir.run("up").code == 0
    ids = _ids(workdir, "drifty")
    ec2 = client("ec2")
    az = "eu-central-1a"
    hub_default = default_groups([ids["hub/vpc"]], REGION)[ids["hub/vpc"]]["GroupId"]
    spoke_default = default_groups([ids["spoke/main/vpc"]], REGION)[ids["spoke/main/vpc"]]["GroupId"]
    ec2.delete_route(RouteTableId=ids["spoke/main/route-table"], DestinationCidrBlock="0.0.0.0/0")
    ec2.create_route(RouteTableId=ids["spoke/main/route-table"], DestinationCidrBlock="8.8.8.0/24",
                     TransitGatewayId=ids["hub/transit-gateway"])
    ec2.delete_nat_gateway(NatGatewayId=ids[f"hub/nat/{az}"])
    ec2.authorize_security_group_egress(GroupId=ids["spoke/main/security-group"], IpPermissions=[
        {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    full_access = {"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}
    ec2.modify_vpc_endpoint(VpcEndpointId=ids["spoke/main/s3-endpoint"],
                            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [full_access]}))
    ec2.modify_vpc_attribute(VpcId=ids["spoke/main/vpc"], EnableDnsHostnames={"Value": False})
    ec2.enable_transit_gateway_route_table_propagation(TransitGatewayRouteTableId=ids["hub/tgw-route-table/spokes"],
                                                       TransitGatewayAttachmentId=ids["spoke/main/tgw-attachment"])
    ec2.delete_tags(Resources=[ids["hub/igw"]], Tags=[{"Key": "Name"}])
    # The spoke's own CIDR no longer dropped by the TGW, and the default security groups given back AWS's rules.
    ec2.delete_transit_gateway_route(TransitGatewayRouteTableId=ids["hub/tgw-route-table/spokes"],
                                     DestinationCidrBlock="10.173.0.0/16")
    ec2.authorize_security_group_egress(GroupId=hub_default, IpPermissions=[
        {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    ec2.authorize_security_group_ingress(GroupId=spoke_default, IpPermissions=[
        {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": spoke_default}]}])

    code, items = _status(workdir)
    assert code == 3
    drift = unhealthy(items)
    assert drift[f"hub/nat/{az}"] == ("missing", "")
    assert drift["spoke/main/route-table"][0] == "drifted"
    assert "route 0.0.0.0/0 -> tgw-" in drift["spoke/main/route-table"][1]
    assert "unexpected route 8.8.8.0/24" in drift["spoke/main/route-table"][1]
    assert "egress all traffic to 0.0.0.0/0" in drift["spoke/main/security-group"][1]
    assert drift["spoke/main/s3-endpoint"] == ("drifted", "endpoint policy")
    assert drift["spoke/main/vpc"] == (
        "drifted", f"enableDnsHostnames off; default security group {spoke_default} has 1 ingress rule")
    assert drift["hub/vpc"] == ("drifted", f"default security group {hub_default} has 1 egress rule")
    assert "unexpected propagation" in drift["hub/tgw-route-table/spokes"][1]
    assert "route 10.173.0.0/16 -> a blackhole missing" in drift["hub/tgw-route-table/spokes"][1]
    assert drift["hub/igw"] == ("drifted", "tags (Name)")

    repaired = workdir.run("up")
    assert repaired.code == 0, repaired.err
    code, items = _status(workdir)
    assert {i["status"] for k, i in items.items() if k != "network/egress"} == {"present"}
    new_ids = _ids(workdir, "drifty")
    assert new_ids[f"hub/nat/{az}"] != ids[f"hub/nat/{az}"]
    # The firewall subnet's way out now goes to the new NAT; every table is as designed again.
    assert_hub_route_tables(new_ids, lay)
    assert_spokes_blackholed(new_ids, lay)
    assert_default_groups_empty(new_ids, lay)
    calls.clear()
    assert workdir.run("up").code == 0
    assert calls.mutating == []


def test_an_attachment_moved_to_the_wrong_tgw_route_table_is_moved_back(aws, workdir):
    workdir.write_config(config_text("moved", hub_azs=1))
    assert workdir.run("up").code == 0
    ids = _ids(workdir, "moved")
    ec2 = client("ec2")
    spoke, spokes_table, hub_table = (ids["spoke/main/tgw-attachment"], ids["hub/tgw-route-table/spokes"],
                                      ids["hub/tgw-route-table/hub"])
    # Associated with the hub table, the spoke would reach every other spoke through the TGW.
    ec2.disassociate_transit_gateway_route_table(TransitGatewayRouteTableId=spokes_table,
                                                 TransitGatewayAttachmentId=spoke)
    ec2.associate_transit_gateway_route_table(TransitGatewayRouteTableId=hub_table, TransitGatewayAttachmentId=spoke)
    code, items = _status(workdir)
    assert code == 3
    assert items["hub/tgw-route-table/spokes"]["drift"] == ["spoke/main/tgw-attachment not associated"]
    assert items["hub/tgw-route-table/hub"]["drift"] == [f"unexpected attachment {spoke} associated"]
    assert workdir.run("up").code == 0
    for table, attachment in ((spokes_table, spoke), (hub_table, ids["hub/tgw-attachment"])):
        got = ec2.get_transit_gateway_route_table_associations(TransitGatewayRouteTableId=table)["Associations"]
        assert [a["TransitGatewayAttachmentId"] for a in got] == [attachment]


# -- with the firewall's routes -----------------------------------------------------------------------------------


def _add_firewall_routes(ids: dict[str, str], lay: Layout) -> dict[str, str]:
    """What the firewall family adds, by hand: a Gateway Load Balancer endpoint per AZ in its firewall subnet, the
    TGW subnet's 0/0 to it, then the NAT subnet's spoke CIDRs to it and its 0/0 to the IGW."""
    ec2 = client("ec2")
    endpoints = {}
    for hub_az in lay.hub_azs:
        az = hub_az.az
        endpoint = ec2.create_vpc_endpoint(
            VpcEndpointType="GatewayLoadBalancer", VpcId=ids["hub/vpc"], SubnetIds=[ids[f"hub/firewall-subnet/{az}"]],
            ServiceName=f"com.amazonaws.vpce.{REGION}.vpce-svc-0123456789abcdef0")["VpcEndpoint"]["VpcEndpointId"]
        endpoints[az] = endpoint
        ec2.create_route(RouteTableId=ids[f"hub/tgw-subnet-route-table/{az}"], DestinationCidrBlock="0.0.0.0/0",
                         VpcEndpointId=endpoint)
        for cidr in lay.spoke_cidrs:
            ec2.create_route(RouteTableId=ids[f"hub/nat-subnet-route-table/{az}"], DestinationCidrBlock=cidr,
                             VpcEndpointId=endpoint)
        ec2.create_route(RouteTableId=ids[f"hub/nat-subnet-route-table/{az}"], DestinationCidrBlock="0.0.0.0/0",
                         GatewayId=ids["hub/igw"])
    return endpoints


def test_with_the_firewall_routes_egress_is_forced_through_the_endpoint_of_its_az(aws, workdir, calls):
    text = config_text("walled", spokes=SPOKES[:2], hub_azs=2)
    workdir.write_config(text)
    lay = layout(_config(text))
    assert workdir.run("up").code == 0
    ids = _ids(workdir, "walled")
    endpoints = _add_firewall_routes(ids, lay)
    assert_hub_route_tables(ids, lay, endpoints)

    report = trace_egress(_read(ids, lay), _sources(ids, lay))
    assert report.problems() == []
    assert len(report.traces) == 2 * 2 * 2  # spokes x spoke AZs x hub AZs
    for trace in report.traces:
        hub_az = trace.hub_az
        # The firewall sees the spoke's own address: its endpoint comes before the NAT, both in the AZ of entry.
        assert trace.egress.kinds == [*TO_HUB, *THROUGH_FIREWALL]
        assert [h.id for h in trace.egress.hops[-5:]] == [
            endpoints[hub_az], ids[f"hub/firewall-subnet-route-table/{hub_az}"], ids[f"hub/nat/{hub_az}"],
            ids[f"hub/nat-subnet-route-table/{hub_az}"], ids["hub/igw"]]
        # Back: no IGW edge table, so straight to the NAT; then the NAT subnet hands the reply to the same endpoint.
        (back,) = trace.returns
        spoke = trace.source.label.split()[1]
        assert back.end == DELIVERED and back.vpc == ids[f"spoke/{spoke}/vpc"], str(back)
        assert back.kinds[:6] == [INTERNET_GATEWAY, NAT_GATEWAY, ROUTE_TABLE, FIREWALL_ENDPOINT, ROUTE_TABLE,
                                  TRANSIT_GATEWAY]
        assert [h.id for h in back.hops[1:5]] == [
            ids[f"hub/nat/{hub_az}"], ids[f"hub/nat-subnet-route-table/{hub_az}"], endpoints[hub_az],
            ids[f"hub/firewall-subnet-route-table/{hub_az}"]]

    # The network steps leave the firewall's routes alone, and `status` now finds egress forced through it.
    calls.clear()
    assert workdir.run("up").code == 0
    assert calls.mutating == []
    code, items = _status(workdir)
    assert code == 0, items["network/egress"]
    assert items["network/egress"]["status"] == "ok"

    # Replies to a spoke sent through the other AZ's endpoint are reported.
    ec2 = client("ec2")
    a, b = (h.az for h in lay.hub_azs)
    cidr = lay.spoke_cidrs[0]
    ec2.delete_route(RouteTableId=ids[f"hub/nat-subnet-route-table/{a}"], DestinationCidrBlock=cidr)
    ec2.create_route(RouteTableId=ids[f"hub/nat-subnet-route-table/{a}"], DestinationCidrBlock=cidr,
                     VpcEndpointId=endpoints[b])
    code, items = _status(workdir)
    assert code == 3
    assert any(f"return path uses firewall-endpoint {endpoints[b]} ({b}), in another AZ than {a}" in p
               for p in items["network/egress"]["drift"])
    # ...and only that: the network family does not own the route, so no table is drifted.
    assert set(unhealthy(items)) == {"network/egress"}
    # The firewall family removes its endpoints and routes before the network goes.
    ec2.delete_vpc_endpoints(VpcEndpointIds=list(endpoints.values()))
    assert workdir.run("down", "--yes").code == 0
    assert set(_owned("walled").values()) == {0}


def test_down_deletes_only_what_this_deployment_tagged(aws, workdir):
    ec2 = client("ec2")
    theirs = ec2.create_vpc(CidrBlock="10.50.0.0/16", TagSpecifications=[{"ResourceType": "vpc", "Tags": [
        {"Key": "provisioner:deployment", "Value": "other"}, {"Key": "provisioner:component", "Value": "hub/vpc"},
        {"Key": "ManagedBy", "Value": "provisioner"}]}])["Vpc"]["VpcId"]
    workdir.write_config(config_text("mine", hub_azs=1))
    assert workdir.run("up").code == 0
    ids = _ids(workdir, "mine")
    assert ids["hub/vpc"] != theirs
    # Already gone is success.
    ec2.delete_vpc_endpoints(VpcEndpointIds=[ids["spoke/main/sts-endpoint"]])
    ec2.delete_nat_gateway(NatGatewayId=ids["hub/nat/eu-central-1a"])
    down = workdir.run("down", "--yes")
    assert down.code == 0, down.err
    assert "absent" in down.out
    assert [v["VpcId"] for v in ec2.describe_vpcs(VpcIds=[theirs])["Vpcs"]] == [theirs]
    assert set(_owned("mine").values()) == {0}


def test_a_recorded_resource_whose_tags_were_removed_is_not_deleted(aws, workdir):
    workdir.write_config(config_text("untag", hub_azs=1))
    assert workdir.run("up").code == 0
    ids = _ids(workdir, "untag")
    ec2 = client("ec2")
    ec2.delete_tags(Resources=[ids["hub/igw"]], Tags=[{"Key": "provisioner:deployment"}])
    down = workdir.run("down", "--yes")
    assert down.code == 1 and "not tagged as part of deployment untag" in down.err
    assert ec2.describe_internet_gateways(InternetGatewayIds=[ids["hub/igw"]])["InternetGateways"]
    # `up` puts the tags back on what it recorded; then `down` can finish.
    assert workdir.run("up").code == 0
    assert workdir.run("down", "--yes").code == 0



# -- reads: each EC2 kind once per command ------------------------------------------------------------------------


def _ec2_reads(calls: Any) -> dict[str, int]:
    ec2 = {operation for service, operation in calls.operations if service == "ec2"}
    counts: dict[str, int] = {}
    for call in calls.calls:
        if call in ec2 and not clients.is_mutating(call):
            counts[call] = counts.get(call, 0) + 1
    return counts


def test_a_no_op_up_and_status_read_each_ec2_kind_once(aws, workdir, calls, monkeypatch):
    # The whole deployment (firewall, DNS Firewall, flow logs, Databricks...), not the network families alone.
    monkeypatch.setattr(steps, "FAMILIES", steps._families())
    workdir.write_config(config_text("reads", spokes=SPOKES[:2], hub_azs=2))
    assert workdir.run("up").code == 0
    once = {"DescribeVpcs", "DescribeSubnets", "DescribeRouteTables", "DescribeSecurityGroups", "DescribeNatGateways",
            "DescribeVpcEndpoints", "DescribeFlowLogs", "DescribeTransitGateways", "DescribeTransitGatewayRouteTables",
            "DescribeTransitGatewayVpcAttachments", "DescribeTransitGatewayAttachments"}
    # Per spoke VPC its two DNS attributes (none for the hub's); per TGW route table its routes. Nothing else: the
    # routes show the propagations as they should be, and one describe of the attachments has every association.
    # The NAT gateways' addresses and the internet gateway are proven by the NAT gateways and an active route
    # (tests/test_proven_reads.py); `status`'s egress walk reads the internet gateways all the same.
    expected = {**dict.fromkeys(once, 1), "DescribeVpcAttribute": 2 * 2, "SearchTransitGatewayRoutes": 2}
    for command in ("up", "status"):
        calls.clear()
        result = workdir.run(command)
        assert result.code == 0, result.out + result.err
        assert _ec2_reads(calls) == {**expected, **({"DescribeInternetGateways": 1} if command == "status" else {})}, \
            command
        assert calls.mutating == []


def test_propagations_are_read_only_when_the_routes_do_not_show_exactly_the_wanted_ones(aws, workdir, calls):
    workdir.write_config(config_text("propagate", spokes=SPOKES[:2], hub_azs=1))
    assert workdir.run("up").code == 0
    ids = _ids(workdir, "propagate")
    ec2 = client("ec2")
    hub_table, hub_attachment = ids["hub/tgw-route-table/hub"], ids["hub/tgw-attachment"]
    # The hub's own CIDR propagated into the hub table (a route the design does not have), and bu2's CIDR no longer
    # propagated there (the hub could not answer bu2).
    ec2.enable_transit_gateway_route_table_propagation(TransitGatewayRouteTableId=hub_table,
                                                       TransitGatewayAttachmentId=hub_attachment)
    ec2.disable_transit_gateway_route_table_propagation(TransitGatewayRouteTableId=hub_table,
                                                        TransitGatewayAttachmentId=ids["spoke/bu2/tgw-attachment"])
    calls.clear()
    code, items = _status(workdir)
    assert code == 3
    assert items["hub/tgw-route-table/hub"]["drift"] == [
        "spoke/bu2/tgw-attachment not propagating", f"unexpected propagation from {hub_attachment}"]
    assert calls.calls.count("GetTransitGatewayRouteTablePropagations") == 1  # the hub table's; not the spokes'

    assert workdir.run("up").code == 0
    got = ec2.get_transit_gateway_route_table_propagations(TransitGatewayRouteTableId=hub_table)
    assert sorted(p["TransitGatewayAttachmentId"] for p in got["TransitGatewayRouteTablePropagations"]) == sorted(
        ids[f"spoke/{s}/tgw-attachment"] for s in ("bu1", "bu2"))
    calls.clear()
    assert workdir.run("up").code == 0
    assert calls.mutating == []
    assert "GetTransitGatewayRouteTablePropagations" not in calls.calls
