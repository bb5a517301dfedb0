"""Operating the egress firewall end to end, in the sandbox: `egress check` decides flows from what AWS has,
`sandbox traffic` sends flows through the sandbox's firewall into CloudWatch Logs, `egress blocked` reads them
back and says what would allow them, and `status --report` draws the deployment.

Two spokes over two hub AZs; `research` alone may reach repo1.maven.org. The AWS side only (the Databricks steps
are left out), built with `up --sandbox` against the test's emulators, which play the sandbox.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from provisioner import steps
from provisioner.sandbox import server
from provisioner.steps import dns_firewall, firewall, flow_logs, hub_network, spoke_network, transit_gateway
from tests.conftest import client, config_text

SPOKES = (("main", "10.173.0.0/16"), ("research", "10.20.0.0/16"))
RESEARCH_ONLY = "repo1.maven.org"


def _config(deployment: str) -> str:
    text = config_text(deployment, spokes=SPOKES, hub_azs=2)
    # research's own domain, in its [[spokes]] table (the last one)
    return text + f'extra_allowed_fqdns = ["{RESEARCH_ONLY}"]\n'


@pytest.fixture
def sandbox_like(aws: str, databricks: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The test's emulators as the sandbox: `--sandbox` exports the sandbox's identity, so the emulated
    Databricks account takes it; every variable `--sandbox` sets is restored afterwards."""
    info = server.SandboxInfo(0, aws, databricks.url, 0.0, "")
    for key, value in info.exports().items():
        monkeypatch.setenv(key, value)
    databricks.settings.account_id = server.SANDBOX_ACCOUNT_ID
    databricks.settings.client_id = server.SANDBOX_CLIENT_ID
    databricks.settings.client_secret = server.SANDBOX_CLIENT_SECRET
    monkeypatch.setattr(steps, "FAMILIES", (hub_network, transit_gateway, spoke_network, firewall, dns_firewall,
                                            flow_logs))


def _json(result: Any) -> Any:
    assert result.out, result.err
    return json.loads(result.out)


@pytest.mark.slow
def test_check_traffic_blocked_and_report(workdir, sandbox_like, tmp_path: Path):
    deployment = "egops"
    workdir.write_config(_config(deployment))
    assert workdir.run("up", "--sandbox").code == 0

    # pypi.org passes, and the deciding rule is named: the deployment-wide allowlist's generated pass rule.
    result = workdir.run("egress", "check", "pypi.org", "--sandbox")
    assert result.code == 0, result.out + result.err
    assert f"{deployment}-allowlist-cap" in result.out and "pypi.org on its domain list (TLS_SNI)" in result.out
    assert "ALLOW by rule" in result.out
    doc = _json(workdir.run("egress", "check", "pypi.org", "--sandbox", "--json"))
    assert doc["verdict"] == "pass" and [s["spoke"] for s in doc["spokes"]] == ["main", "research"]
    for spoke in doc["spokes"]:
        assert spoke["firewall"]["rule"]["group"].startswith(f"{deployment}-allowlist-cap")
        assert spoke["dns"]["action"] == "ALLOW"
        # every path: through the endpoint of its hub AZ, then the NAT, then the internet
        assert len(spoke["routes"]) == 4 and all(r["leaves"] and r["inspected"] for r in spoke["routes"])

    # example.com: NXDOMAIN from the DNS Firewall, and the allowlist's generated drop behind it.
    result = workdir.run("egress", "check", "example.com", "--spoke", "main", "--sandbox")
    assert result.code == 4, result.out + result.err
    assert "BLOCK by rule" in result.out and "not on its domain list" in result.out and "dropped" in result.out
    doc = _json(workdir.run("egress", "check", "example.com", "--spoke", "main", "--sandbox", "--json"))
    firewall_doc = doc["spokes"][0]["firewall"]
    assert firewall_doc["verdict"] == "drop" and firewall_doc["logged"]
    # its address is unknown, yet it is dropped even inside the control-plane range: that passes by name
    assert firewall_doc["alternatives"] == []

    # UDP to port 53 of an outside resolver: the deny group drops it at its first datagram.
    result = workdir.run("egress", "check", "8.8.8.8", "--protocol", "udp", "--port", "53", "--sandbox")
    assert result.code == 4 and "UDP to the internet is blocked" in result.out

    # A host only research may reach: passes from research, dropped from main.
    result = workdir.run("egress", "check", RESEARCH_ONLY, "--spoke", "research", "--sandbox")
    assert result.code == 0 and f"{deployment}-spoke-allowlist-cap" in result.out
    result = workdir.run("egress", "check", RESEARCH_ONLY, "--spoke", "main", "--sandbox")
    assert result.code == 4 and "not on its domain list" in result.out
    assert workdir.run("egress", "check", RESEARCH_ONLY, "--sandbox").code == 4  # every spoke: one drops it

    # Flows through the sandbox's firewall: logged as AWS logs them.
    result = workdir.run("sandbox", "traffic", "--spoke", "main", "pypi.org", "blocked.example.com",
                         f"{RESEARCH_ONLY}:443", "--json")
    assert result.code == 0, result.err
    sent = {f["target"]: f for f in _json(result)["flows"]}
    assert sent["pypi.org:443"]["verdict"] == "pass"
    assert sent["blocked.example.com:443"]["dns"] == "BLOCK" and "NXDOMAIN" in sent["blocked.example.com:443"][
        "reason"]
    assert sent[f"{RESEARCH_ONLY}:443"]["verdict"] == "drop"
    assert workdir.run("sandbox", "traffic", "--spoke", "research", "blocked.example.com",
                       "also.example.net").code == 0
    logs = client("logs")
    alerts = [json.loads(e["message"]) for e in logs.filter_log_events(
        logGroupName=f"/aws/vendedlogs/network-firewall/{deployment}/alert")["events"]]
    assert [a["event"]["tls"]["sni"] for a in alerts] == [RESEARCH_ONLY]
    record = alerts[0]
    assert record["firewall_name"] == f"{deployment}-firewall" and record["event"]["event_type"] == "alert"
    assert record["event"]["alert"]["action"] == "blocked" and record["event"]["src_ip"].startswith("10.173.")
    assert set(record["event"]) >= {"timestamp", "flow_id", "src_ip", "src_port", "dest_ip", "dest_port", "proto",
                                    "app_proto", "tls", "alert"}
    flows = [json.loads(e["message"]) for e in logs.filter_log_events(
        logGroupName=f"/aws/vendedlogs/network-firewall/{deployment}/flow")["events"]]
    assert {f["event"]["event_type"] for f in flows} == {"netflow"} and len(flows) == 4  # two flows, both ways
    queries = [json.loads(e["message"]) for e in logs.filter_log_events(
        logGroupName=f"/aws/vendedlogs/route53resolver/{deployment}/queries")["events"]]
    blocked_queries = [q for q in queries if q.get("firewall_rule_action") == "BLOCK"]
    assert sorted(q["query_name"] for q in blocked_queries) == [
        "also.example.net.", "blocked.example.com.", "blocked.example.com."]
    assert all(q["rcode"] == "NXDOMAIN" and q["answers"] == [] for q in blocked_queries)

    # What was refused, per spoke, and the lines that would allow it.
    result = workdir.run("egress", "blocked", "--since", "1h", "--sandbox")
    assert result.code == 0, result.err
    assert re.search(r"main\s+blocked\.example\.com\s+DNS block\s+1", result.out)
    assert re.search(rf"main\s+{re.escape(RESEARCH_ONLY)}\s+firewall drop\s+1", result.out)
    lines = result.out.split("then run `provision up --sandbox`:")[1].splitlines()
    assert ('  extra_allowed_fqdns = ["pypi.org", "files.pythonhosted.org", "cran.r-project.org", '
            '"blocked.example.com"]') in lines
    assert '  name = "main"' in lines and f'  extra_allowed_fqdns = ["{RESEARCH_ONLY}"]' in lines
    assert '  name = "research"' in lines and '  extra_allowed_fqdns = ["repo1.maven.org", "also.example.net"]' in lines
    doc = _json(workdir.run("egress", "blocked", "--spoke", "research", "--sandbox", "--json"))
    assert {r["target"] for r in doc["refused"]} == {"blocked.example.com", "also.example.net"}
    assert doc["allow"] == {"firewall": [], "spokes": {"research": ["also.example.net", "blocked.example.com"]}}

    # The report: the picture, every spoke, every check.
    report = tmp_path / "status.html"
    result = workdir.run("status", "--sandbox", "--report", str(report))
    assert result.code == 0, result.out + result.err
    page = report.read_text()
    assert "<svg" in page and 'data-check="network/egress"' in page
    assert page.count('class="path"') >= 4 and "#cf222e\"/>" not in page.split("</svg>")[0].split("polyline")[-1]
    for spoke, _ in SPOKES:
        assert f'data-spoke="{spoke}"' in page
    assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", page)  # nothing fetched


def test_egress_commands_read_the_state_where_the_backend_keeps_it(workdir, sandbox_like, monkeypatch):
    s3 = client("s3")
    s3.create_bucket(Bucket="egress-state", CreateBucketConfiguration={"LocationConstraint": "eu-central-1"})
    s3.put_bucket_versioning(Bucket="egress-state", VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_encryption(Bucket="egress-state", ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    monkeypatch.setenv("PROVISION_STATE", "s3://egress-state/team")
    workdir.write_config(config_text("egs3"))
    built = workdir.run("up", "--sandbox")
    assert built.code == 0, built.err
    assert not (workdir.path / "state" / "egs3.json").exists()

    result = workdir.run("egress", "check", "pypi.org", "--sandbox", "--json")
    assert result.code == 0, result.err
    assert _json(result)["verdict"] == "pass"
    assert workdir.run("egress", "check", "example.com", "--sandbox").code == 4
    assert workdir.run("sandbox", "traffic", "--spoke", "main", "blocked.example.com").code == 0
    result = workdir.run("egress", "blocked", "--since", "1h", "--sandbox", "--json")
    assert result.code == 0, result.err
    assert {r["target"] for r in _json(result)["refused"]} == {"blocked.example.com"}
