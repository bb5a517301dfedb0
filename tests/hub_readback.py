"""What the network and firewall tests read back after `provision` ran: the state file, `status --json`, and the
hub-and-spoke network itself through plain boto3 (route tables, TGW routes, default security groups), each
compared with DESIGN.md's "Routing" table written out here by hand, not computed by the code under test."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from provisioner.design.config import build_config, parse_toml
from provisioner.design.layout import Layout
from tests.conftest import client

ANYWHERE = "0.0.0.0/0"
# describe_route_tables names a route's target in one of these (a Gateway Load Balancer endpoint in GatewayId).
TARGET_FIELDS = ("GatewayId", "NatGatewayId", "TransitGatewayId", "VpcEndpointId", "NetworkInterfaceId")


def config(text: str) -> Any:
    return build_config(parse_toml(text, "test"))


def recorded_state(workdir: Any, deployment: str) -> dict[str, Any]:
    return json.loads((workdir.path / "state" / f"{deployment}.json").read_text())


def recorded_ids(workdir: Any, deployment: str) -> dict[str, str]:
    return {key: entry["id"] for key, entry in recorded_state(workdir, deployment)["resources"].items()}


def read_status(workdir: Any) -> tuple[int, dict[str, dict[str, Any]]]:
    result = workdir.run("status", "--json")
    return result.code, {item["key"]: item for item in json.loads(result.out)["resources"]}


def unhealthy(items: Mapping[str, Mapping[str, Any]]) -> dict[str, tuple[str, str]]:
    """Every status item that is not fine, as (status, its drift lines joined)."""
    return {key: (item["status"], "; ".join(item["drift"])) for key, item in items.items()
            if item["status"] not in ("present", "ok")}


# -- VPC route tables ---------------------------------------------------------------------------------------------


def routes(table: Mapping[str, Any]) -> dict[str, str]:
    """A route table's routes as destination -> target, without the VPC's `local` route."""
    found = {}
    for route in table.get("Routes", []):
        destination = route.get("DestinationCidrBlock") or route.get("DestinationPrefixListId")
        target = next((str(route[f]) for f in TARGET_FIELDS if route.get(f)), "?")
        if target != "local":
            found[destination] = target
    return found


def hub_tables(ids: Mapping[str, str], lay: Layout) -> dict[str, dict[str, Any]]:
    """The hub VPC's route tables as EC2 reports them, by table ID."""
    got = client("ec2", lay.region.name).describe_route_tables(
        Filters=[{"Name": "vpc-id", "Values": [ids["hub/vpc"]]}])["RouteTables"]
    return {t["RouteTableId"]: t for t in got}


def designed_hub_routes(ids: Mapping[str, str], lay: Layout,
                        endpoints: Mapping[str, str] | None) -> dict[str, dict[str, str]]:
    """DESIGN.md's hub rows per AZ, as IDs. Without `endpoints` (the firewall family not run), only the network
    family's routes: the TGW subnet's `0/0 -> endpoint` and the NAT subnet's routes come with the firewall."""
    tgw = ids["hub/transit-gateway"]
    wanted = {}
    for hub_az in lay.hub_azs:
        az = hub_az.az
        wanted[f"hub/tgw-subnet-route-table/{az}"] = {ANYWHERE: endpoints[az]} if endpoints else {}
        wanted[f"hub/firewall-subnet-route-table/{az}"] = {ANYWHERE: ids[f"hub/nat/{az}"],
                                                           **{cidr: tgw for cidr in lay.spoke_cidrs}}
        wanted[f"hub/nat-subnet-route-table/{az}"] = (
            {ANYWHERE: ids["hub/igw"], **{cidr: endpoints[az] for cidr in lay.spoke_cidrs}} if endpoints else {})
    return wanted


def assert_hub_route_tables(ids: Mapping[str, str], lay: Layout, endpoints: Mapping[str, str] | None = None) -> None:
    """Per hub AZ one TGW subnet, one firewall subnet and one NAT subnet table, each with exactly its designed
    routes and associated with exactly its AZ's subnet; besides them only the VPC's own main table (empty); no
    table shared between AZs, and no IGW edge (gateway) route table."""
    tables = hub_tables(ids, lay)
    wanted = designed_hub_routes(ids, lay, endpoints)
    for key, expected in wanted.items():
        table = tables[ids[key]]
        assert routes(table) == expected, key
        az = key.rsplit("/", 1)[1]
        subnet_key = key.split("/")[1].replace("-route-table", "")
        associated = [a.get("SubnetId") for a in table["Associations"] if not a.get("Main")]
        assert associated == [ids[f"hub/{subnet_key}/{az}"]], key
    others = [t for table_id, t in tables.items() if table_id not in {ids[k] for k in wanted}]
    assert len(others) == 1, [t["RouteTableId"] for t in others]
    assert [a.get("Main") for a in others[0]["Associations"]] == [True] and routes(others[0]) == {}
    assert not [a for t in tables.values() for a in t["Associations"] if a.get("GatewayId")]
    edge = client("ec2", lay.region.name).describe_route_tables(
        Filters=[{"Name": "association.gateway-id", "Values": [ids["hub/igw"]]}])["RouteTables"]
    assert edge == []
    assert "hub/igw-route-table" not in ids and "hub/firewall-subnet-route-table" not in ids


# -- Transit Gateway route tables ---------------------------------------------------------------------------------


def tgw_routes(table_id: str, route_state: str, region: str) -> list[dict[str, Any]]:
    return list(client("ec2", region).search_transit_gateway_routes(
        TransitGatewayRouteTableId=table_id, Filters=[{"Name": "state", "Values": [route_state]}])["Routes"])


def assert_spokes_blackholed(ids: Mapping[str, str], lay: Layout) -> None:
    """The "spokes" table: `0/0 -> hub attachment` and a static blackhole for every spoke CIDR (its own too);
    the "hub" table: each spoke CIDR propagated from that spoke's attachment, and no blackhole."""
    region = lay.region.name
    spokes_table, hub_table = ids["hub/tgw-route-table/spokes"], ids["hub/tgw-route-table/hub"]
    blackholes = tgw_routes(spokes_table, "blackhole", region)
    assert sorted(r["DestinationCidrBlock"] for r in blackholes) == sorted(lay.spoke_cidrs)
    for route in blackholes:
        assert route["Type"] == "static" and not route.get("TransitGatewayAttachments"), route
    active = tgw_routes(spokes_table, "active", region)
    assert [(r["DestinationCidrBlock"], [a["TransitGatewayAttachmentId"] for a in r["TransitGatewayAttachments"]])
            for r in active] == [(ANYWHERE, [ids["hub/tgw-attachment"]])]
    assert tgw_routes(hub_table, "blackhole", region) == []
    propagated = {r["DestinationCidrBlock"]: [a["TransitGatewayAttachmentId"] for a in r["TransitGatewayAttachments"]]
                  for r in tgw_routes(hub_table, "active", region)}
    assert propagated == {s.cidrs.vpc: [ids[f"spoke/{s.name}/tgw-attachment"]] for s in lay.spokes}


# -- default security groups --------------------------------------------------------------------------------------


def vpc_ids(ids: Mapping[str, str], lay: Layout) -> list[str]:
    return [ids["hub/vpc"], *(ids[f"spoke/{s.name}/vpc"] for s in lay.spokes)]


def default_groups(vpcs: Iterable[str], region: str) -> dict[str, dict[str, Any]]:
    """Each VPC's default security group, by VPC ID."""
    got = client("ec2", region).describe_security_groups(Filters=[
        {"Name": "vpc-id", "Values": list(vpcs)}, {"Name": "group-name", "Values": ["default"]}])["SecurityGroups"]
    return {g["VpcId"]: g for g in got}


def assert_default_groups_empty(ids: Mapping[str, str], lay: Layout) -> None:
    vpcs = vpc_ids(ids, lay)
    groups = default_groups(vpcs, lay.region.name)
    assert sorted(groups) == sorted(vpcs)
    for vpc, group in groups.items():
        assert (group["IpPermissions"], group["IpPermissionsEgress"]) == ([], []), vpc
