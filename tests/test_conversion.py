"""A deployment built NAT-before-firewall is converted in place by `up`, and at no moment on the way can a spoke
flow reach the internet gateway without passing a firewall endpoint.

The old layout is made from a fresh deployment by hand, with plain boto3, exactly as the earlier design built it
(TGW subnet `0/0 -> NAT`, NAT subnet `0/0 -> endpoint`, one shared firewall-subnet table `0/0 -> IGW`, an IGW
edge table sending each NAT subnet back through its endpoint, no blackholes between spokes). Then `up` runs with a
hook after every route change it makes that reads the network back and walks every spoke subnet's egress.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from provisioner import steps
from provisioner.aws import clients
from provisioner.design.config import build_config, parse_toml
from provisioner.design.layout import layout
from provisioner.design.naming import tag_list, tags
from provisioner.egress import FIREWALL_ENDPOINT, INTERNET, Source, read_network, trace_egress
from provisioner.steps import firewall, hub_network, spoke_network, transit_gateway
from tests.conftest import client, config_text

SPOKES = (("sales", "10.20.0.0/16"), ("finance", "10.30.0.0/16"))
ROUTE_CHANGES = {"CreateRoute", "ReplaceRoute", "DeleteRoute", "AssociateRouteTable", "ReplaceRouteTableAssociation",
                 "DisassociateRouteTable", "DeleteRouteTable", "CreateTransitGatewayRoute",
                 "DeleteTransitGatewayRoute", "ReplaceTransitGatewayRoute", "AssociateTransitGatewayRouteTable",
                 "DisassociateTransitGatewayRouteTable"}


@pytest.fixture
def network_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(steps, "FAMILIES", (hub_network, transit_gateway, spoke_network, firewall))


def _state_path(workdir: Any, deployment: str) -> Any:
    return workdir.path / "state" / f"{deployment}.json"


def _ids(workdir: Any, deployment: str) -> dict[str, str]:
    doc = json.loads(_state_path(workdir, deployment).read_text())
    return {key: entry["id"] for key, entry in doc["resources"].items()}


def _outputs(workdir: Any, deployment: str, key: str) -> dict[str, Any]:
    doc = json.loads(_state_path(workdir, deployment).read_text())
    return dict(doc["resources"][key].get("outputs", {}))


def _uninspected(deployment: str, ids: dict[str, str], config: Any) -> list[str]:
    """Every spoke egress path that reaches an internet gateway without a firewall endpoint on it."""
    lay = layout(config)
    vpcs = [ids["hub/vpc"], *(ids[f"spoke/{s.name}/vpc"] for s in lay.spokes)]
    data = read_network(client("ec2"), vpcs, ids["hub/transit-gateway"])
    sources = [Source(f"spoke {s.name} {az}", ids[f"spoke/{s.name}/workspace-subnet/{az}"])
               for s in lay.spokes for az in s.azs]
    report = trace_egress(data, sources)
    return [str(t.egress) for t in report.traces if t.egress.end == INTERNET and not t.egress.of(FIREWALL_ENDPOINT)]


def _make_old_layout(deployment: str, ids: dict[str, str], endpoints: dict[str, str], config: Any) -> dict[str, str]:
    """Rewrite a fresh deployment's hub into the NAT-before-firewall layout; the old tables' IDs by step key."""
    ec2 = client("ec2")
    lay = layout(config)
    tgw = ids["hub/transit-gateway"]
    igw = ids["hub/igw"]

    def tagged(key: str) -> list[dict[str, Any]]:
        return [{"ResourceType": "route-table", "Tags": tag_list(tags(deployment, key, f"{deployment}-{key}"))}]

    shared = ec2.create_route_table(VpcId=ids["hub/vpc"], TagSpecifications=tagged("hub/firewall-subnet-route-table"))
    shared_id = shared["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=shared_id, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
    edge = ec2.create_route_table(VpcId=ids["hub/vpc"], TagSpecifications=tagged("hub/igw-route-table"))
    edge_id = edge["RouteTable"]["RouteTableId"]
    for hub in lay.hub_azs:
        az = hub.az
        nat, endpoint = ids[f"hub/nat/{az}"], endpoints[az]
        tgw_rt, nat_rt = ids[f"hub/tgw-subnet-route-table/{az}"], ids[f"hub/nat-subnet-route-table/{az}"]
        # NAT subnet: out through the endpoint, spokes back through the TGW.
        ec2.replace_route(RouteTableId=nat_rt, DestinationCidrBlock="0.0.0.0/0", VpcEndpointId=endpoint)
        for cidr in lay.spoke_cidrs:
            ec2.replace_route(RouteTableId=nat_rt, DestinationCidrBlock=cidr, TransitGatewayId=tgw)
        # TGW subnet: out through the NAT first.
        ec2.replace_route(RouteTableId=tgw_rt, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat)
        for cidr in lay.spoke_cidrs:
            ec2.create_route(RouteTableId=tgw_rt, DestinationCidrBlock=cidr, TransitGatewayId=tgw)
        # The firewall subnet of every AZ shares one table; the per-AZ table goes.
        fw_rt = ids[f"hub/firewall-subnet-route-table/{az}"]
        table = ec2.describe_route_tables(RouteTableIds=[fw_rt])["RouteTables"][0]
        for assoc in table["Associations"]:
            ec2.replace_route_table_association(AssociationId=assoc["RouteTableAssociationId"], RouteTableId=shared_id)
        ec2.delete_route_table(RouteTableId=fw_rt)
        ec2.create_route(RouteTableId=edge_id, DestinationCidrBlock=hub.cidrs.nat_subnet, VpcEndpointId=endpoint)
    ec2.associate_route_table(RouteTableId=edge_id, GatewayId=igw)
    spokes_table = ids["hub/tgw-route-table/spokes"]
    for cidr in lay.spoke_cidrs:
        ec2.delete_transit_gateway_route(TransitGatewayRouteTableId=spokes_table, DestinationCidrBlock=cidr)
    return {"hub/firewall-subnet-route-table": shared_id, "hub/igw-route-table": edge_id}


def _rewrite_state(path: Any, config: Any, old_tables: dict[str, str]) -> None:
    doc = json.loads(path.read_text())
    for hub in layout(config).hub_azs:
        doc["resources"].pop(f"hub/firewall-subnet-route-table/{hub.az}")
    for key, table_id in old_tables.items():
        doc["resources"][key] = {"id": table_id}
    path.write_text(json.dumps(doc))


def test_up_converts_nat_before_firewall_without_an_uninspected_moment(aws, workdir, monkeypatch, network_only):
    deployment = "convert"
    text = config_text(deployment, spokes=SPOKES, hub_azs=2)
    config = build_config(parse_toml(text, "test"))
    workdir.write_config(text)
    assert workdir.run("up").code == 0
    ids = _ids(workdir, deployment)
    endpoints = _outputs(workdir, deployment, "hub/firewall")["endpoints"]
    old_tables = _make_old_layout(deployment, ids, endpoints, config)
    _rewrite_state(_state_path(workdir, deployment), config, old_tables)

    # The old layout inspects every flow, but after the NAT: status says so.
    assert _uninspected(deployment, _ids(workdir, deployment), config) == []
    status = workdir.run("status")
    assert status.code == 3
    assert "passes the NAT gateway before the firewall" in status.out + status.err

    plan = workdir.run("plan")
    assert plan.code == 0
    for key in old_tables:
        assert key in plan.out
    assert "to delete" in plan.out

    seen: list[str] = []
    violations: list[str] = []
    lock = threading.Lock()

    def after_route_change(model: Any, **kwargs: Any) -> None:
        if model.name not in ROUTE_CHANGES:
            return
        with lock:
            seen.append(model.name)
            found = _uninspected(deployment, {**ids, **old_tables}, config)
            violations.extend(f"after {model.name}: {path}" for path in found)

    monkeypatch.setattr(clients, "SESSION_HOOKS", [("after-call.ec2.*", after_route_change)])
    converted = workdir.run("up")
    monkeypatch.setattr(clients, "SESSION_HOOKS", [])
    assert converted.code == 0, converted.err
    assert len(seen) >= 8, seen  # routes replaced and added in each AZ, associations moved, old tables deleted
    assert violations == []

    ec2 = client("ec2")
    for table_id in old_tables.values():
        assert ec2.describe_route_tables(Filters=[{"Name": "route-table-id", "Values": [table_id]}])[
            "RouteTables"] == []
    assert workdir.run("status").code == 0
    assert workdir.run("down", "--yes").code == 0
