"""What `status` asks Databricks: each spoke's network verdict comes from one list of the account's networks, not
one read per spoke."""

from __future__ import annotations

import json

from tests.conftest import config_text
from tests.test_databricks import databricks_branch, families  # noqa: F401  (autouse: the spokes' branch only)


def test_status_reads_every_spokes_network_verdict_from_one_list(aws, databricks, workdir):
    workdir.write_config(config_text("verdicts", spokes=(("bu1", "10.1.0.0/16"), ("bu2", "10.2.0.0/16"))))
    assert workdir.run("up").code == 0
    state = json.loads((workdir.path / "state" / "verdicts.json").read_text())
    # Databricks' verdict on bu2's network after a validation that found its security group gone.
    broken = databricks.emulator._networks[state["resources"]["spoke/bu2/network"]["id"]]
    broken.vpc_status = "BROKEN"
    broken.error_messages = [{"error_type": "securityGroup", "error_message": "Security group sg-1 does not exist."}]
    databricks.requests.clear()

    status = workdir.run("status", "--json")
    assert status.code == 3, status.out
    networks = [r for r in databricks.requests if "/networks" in r.split()[1]]
    assert [r.split()[0] + " " + r.split()[1].rsplit("/", 1)[1] for r in networks] == ["GET networks"], networks
    items = {r["key"]: r for r in json.loads(status.out)["resources"]}
    assert items["spoke/bu1/network"]["status"] == "present"
    assert items["spoke/bu2/network"]["drift"] == [
        "Databricks reports the network BROKEN: error securityGroup: Security group sg-1 does not exist."]
