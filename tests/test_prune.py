"""Changing a live deployment: `up --prune` deletes a removed spoke or hub AZ; without it, orphans are listed."""

import json

import pytest
from botocore.exceptions import ClientError

from provisioner.state import load
from tests.conftest import client, config_text, live_tagged

TWO = (("bu1", "10.1.0.0/16"), ("bu2", "10.2.0.0/16"))


def _ids(workdir, deployment):
    return {k: v["id"] for k, v in load(workdir.path / "state", deployment).resources().items()}


def _nat_routes(ids):
    tables = [v for k, v in ids.items() if k.startswith("hub/nat-subnet-route-table/")]
    found = client("ec2").describe_route_tables(RouteTableIds=tables)["RouteTables"]
    return {r.get("DestinationCidrBlock") for t in found for r in t["Routes"]}


def test_a_removed_spoke_is_listed_until_up_prune_deletes_it_and_its_routes(aws, databricks, workdir):
    workdir.write_config(config_text("prn", spokes=TWO))
    assert workdir.run("up").code == 0
    before = _ids(workdir, "prn")
    assert "10.2.0.0/16" in _nat_routes(before)

    workdir.write_config(config_text("prn", spokes=TWO[:1]))
    plan = workdir.run("plan")
    assert plan.code == 0 and "up --prune" in plan.err
    orphans = {r["key"] for r in json.loads(workdir.run("plan", "--json").out)["resources"]
               if r["action"] == "orphan"}
    assert {"spoke/bu2/vpc", "spoke/bu2/workspace", "spoke/bu2/tgw-attachment"} <= orphans
    assert all(k.startswith("spoke/bu2/") for k in orphans)
    assert workdir.run("plan", "--prune").code == 2

    kept = workdir.run("up")  # without --prune nothing of bu2 goes, and it says so
    assert kept.code == 0 and "up --prune" in kept.err
    assert client("ec2").describe_vpcs(VpcIds=[before["spoke/bu2/vpc"]])["Vpcs"]
    status = workdir.run("status")
    assert "up --prune" in status.err

    refused = workdir.run("up", "--prune")  # no terminal to ask on: refused, nothing deleted
    assert refused.code == 2 and "--yes" in refused.err and len(refused.err.strip().splitlines()) == 1
    assert client("ec2").describe_vpcs(VpcIds=[before["spoke/bu2/vpc"]])["Vpcs"]

    pruned = workdir.run("up", "--prune", "--yes")
    assert pruned.code == 0, pruned.err
    after = _ids(workdir, "prn")
    assert not [k for k in after if k.startswith("spoke/bu2/")]
    assert {k for k in before if not k.startswith("spoke/bu2/")} == set(after)
    # Nothing else was replaced (the firewall routes' ID lists the routes it holds, one fewer now).
    assert [k for k in after if before[k] != after[k]] == ["hub/firewall/routes/eu-central-1a",
                                                           "hub/firewall/routes/eu-central-1b"]
    vpcs = {v["VpcId"] for v in client("ec2").describe_vpcs()["Vpcs"]}
    assert before["spoke/bu2/vpc"] not in vpcs and before["spoke/bu1/vpc"] in vpcs
    assert "10.2.0.0/16" not in _nat_routes(after) and "10.1.0.0/16" in _nat_routes(after)
    assert not [a for a in live_tagged("prn") if "bu2" in a]
    names = {w.workspace_name for w in databricks.account_client().workspaces.list()}
    assert names == {"prn-bu1"}

    plan = workdir.run("plan", "--json")
    assert "no longer has" not in plan.err
    assert {r["action"] for r in json.loads(plan.out)["resources"]} == {"nothing"}
    status = workdir.run("status")
    assert status.code == 0, status.out + status.err

    assert workdir.run("down", "--yes").code == 0
    assert [a for a in live_tagged("prn") if ":logs:" not in a] == []



def test_a_state_file_without_a_recorded_config_cannot_prune_and_says_so(tmp_path):
    import pytest

    from provisioner import steps
    from provisioner.design.config import build_config
    from provisioner.errors import UsageError
    from provisioner.prune import removed_steps

    state = load(tmp_path, "old")
    state.record("spoke/gone/vpc", "vpc-1")
    current = steps.all_steps(build_config({"deployment": "old"}))
    with pytest.raises(UsageError, match="records no config that made spoke/gone/vpc"):
        removed_steps(state, current, steps.all_steps)


def test_recorded_configs_rebuild_routes_of_every_spoke_removed_since(tmp_path):
    from provisioner import steps
    from provisioner.design.config import build_config
    from provisioner.prune import remember_config, removed_steps

    def cfg(*names):
        every = (*TWO, ("bu3", "10.3.0.0/16"))
        return build_config({"deployment": "hist", "spokes": [{"name": n, "cidr": c} for n, c in every
                                                              if n in names]})

    state = load(tmp_path, "hist")
    for config in (cfg("bu1", "bu2", "bu3"), cfg("bu1", "bu2")):  # bu3 removed without --prune first
        remember_config(state, config, pruned=False)
        for step in steps.all_steps(config):
            state.record(step.key, "id")
    current = steps.all_steps(cfg("bu1"))
    removed = removed_steps(state, current, steps.all_steps)
    keys = {s.key for s in removed}
    assert "spoke/bu3/vpc" in keys and "spoke/bu2/workspace" in keys
    routes = [s for s in removed if s.key.endswith("#removed")]
    assert len(routes) == 2  # one per AZ, each with the routes to both removed spokes
    assert all({r.destination for r in s.routes} == {"10.2.0.0/16", "10.3.0.0/16"} for s in routes)


def test_prune_keeps_a_removed_spokes_root_bucket_with_data_unless_delete_data(aws, workdir):
    workdir.write_config(config_text("prnd", spokes=TWO))
    assert workdir.run("up").code == 0
    client("s3").put_object(Bucket="prnd-bu2-rootbucket", Key="user/table.parquet", Body=b"data")
    vpc = _ids(workdir, "prnd")["spoke/bu2/vpc"]

    workdir.write_config(config_text("prnd", spokes=TWO[:1]))
    kept = workdir.run("up", "--prune", "--yes")
    assert kept.code == 0, kept.err
    assert "1 kept" in kept.out
    assert client("s3").head_bucket(Bucket="prnd-bu2-rootbucket")
    assert [k for k in _ids(workdir, "prnd") if k.startswith("spoke/bu2/")] == ["spoke/bu2/root-bucket"]
    assert vpc not in {v["VpcId"] for v in client("ec2").describe_vpcs()["Vpcs"]}  # the network went

    gone = workdir.run("up", "--prune", "--yes", "--delete-data")
    assert gone.code == 0, gone.err
    assert not [k for k in _ids(workdir, "prnd") if k.startswith("spoke/bu2/")]
    with pytest.raises(ClientError):
        client("s3").head_bucket(Bucket="prnd-bu2-rootbucket")


def test_down_also_takes_down_a_spoke_removed_from_the_config_without_prune(aws, databricks, workdir):
    workdir.write_config(config_text("dnr", spokes=TWO))
    assert workdir.run("up").code == 0
    before = _ids(workdir, "dnr")

    workdir.write_config(config_text("dnr", spokes=TWO[:1]))
    down = workdir.run("down", "--yes")
    assert down.code == 0, down.out + down.err
    left = set(_ids(workdir, "dnr"))
    assert left and all("/log-group" in k for k in left), left  # only the log groups, kept on purpose
    vpcs = {v["VpcId"] for v in client("ec2").describe_vpcs()["Vpcs"]}
    assert before["spoke/bu2/vpc"] not in vpcs and before["spoke/bu1/vpc"] not in vpcs
    assert not list(databricks.account_client().workspaces.list())
