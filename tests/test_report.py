"""`status --report`: the page, rendered from hand-made data (the egress walk over the unit tests' network), and
opened in headless Chromium where it is installed (Debian's `chromium`; `.ci/run` installs it)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from provisioner import egress, report
from provisioner.engine import StatusItem
from provisioner.steps import keys
from tests.unit.test_egress import AZS, SPOKES, _set_route, topology

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHECKS = ("network/egress", "hub/firewall/metastore-addresses")


def _data(broken: bool = False) -> report.ReportData:
    network = topology(spokes=("main", "other"))
    if broken:
        _set_route(network, "rtb-htgw-b", "0.0.0.0/0")
    sources = [egress.Source(f"spoke {s} {az}", f"subnet-ws-{s}-{az}") for s in ("main", "other") for az in AZS]
    traces = egress.trace_egress(network, sources)
    items = [StatusItem(keys.hub("vpc"), "vpc", "t-hub", "present", "vpc-hub"),
             StatusItem(keys.hub("nat", "a"), "nat gateway", "t-hub-nat-a", "present", "nat-a"),
             StatusItem(keys.hub("firewall/routes", "b"), "firewall routes", "t-firewall routes in b",
                        "drifted" if broken else "present", "rtb-htgw-b:0.0.0.0/0",
                        ["hub/tgw-subnet-route-table/b route 0.0.0.0/0 -> nothing (should be vpce-fw-b)"] if broken
                        else []),
             StatusItem(CHECKS[0], "check", "egress forced through the firewall; spokes isolated",
                        "failed" if broken else "ok", None, traces.problems()),
             StatusItem(CHECKS[1], "check", "legacy Hive metastore addresses pinned in 3306", "ok")]
    hub_ids = {keys.hub("vpc"): "vpc-hub", keys.hub("igw"): "igw-1", keys.hub("transit-gateway"): "tgw-1"}
    for az in AZS:
        hub_ids.update({keys.hub("tgw-subnet", az): f"subnet-htgw-{az}", keys.hub("nat-subnet", az): f"subnet-nat-{az}",
                        keys.hub("firewall-subnet", az): f"subnet-fw-{az}", keys.hub("nat", az): f"nat-{az}",
                        f"endpoint/{az}": f"vpce-fw-{az}"})
    spokes = [report.SpokeView(s, SPOKES[s], f"vpc-{s}", {az: f"subnet-ws-{s}-{az}" for az in AZS},
                               f"https://t-{s}.cloud.databricks.com",
                               [("pypi.org", "pass"), ("files.pythonhosted.org", "pass")])
              for s in ("main", "other")]
    return report.ReportData("t", "eu-central-1", "2024-01-01 00:00:00 UTC", "10.10.0.0/16", list(AZS), hub_ids,
                             spokes, items, traces.traces, "t-egress-policy",
                             ["aws:drop_established", "aws:alert_established"], "STRICT_ORDER")


def test_the_page_has_the_picture_every_spoke_and_every_check_and_fetches_nothing():
    page = report.render(_data())
    svg = page.split('<svg', 1)[1].split("</svg>", 1)[0]
    for az in AZS:
        for node in ("endpoint", "nat", "hub-tgw"):
            assert f'data-key="{node}/{az}"' in svg
    for spoke in ("main", "other"):
        assert f'data-key="spoke/{spoke}"' in svg and f'data-spoke="{spoke}"' in page
        assert f"https://t-{spoke}.cloud.databricks.com" in svg
    for check in CHECKS:
        assert f'data-check="{check}"' in page
    # one line per path walked (2 spokes x 2 AZs x 2 hub AZs), all green
    assert svg.count('class="path"') == 8 and 'class="path-group broken"' not in svg
    assert "Evidence: 8 paths walked out along the routes read back, and 8 ways back" in page and "Healthy" in page
    assert "hub 10.10.0.0/16 over 2 AZs, 2 spokes;" in page
    assert not re.search(r"(src|href)=|url\(|@import|https?://(?!www\.w3\.org/2000/svg|t-\w+\.cloud)", page)


def test_one_spoke_is_counted_in_the_singular():
    data = _data()
    data.spokes = data.spokes[:1]
    assert ", 1 spoke; read from AWS" in report.render(data)


def test_what_is_broken_is_red():
    page = report.render(_data(broken=True))
    svg = page.split('<svg', 1)[1].split("</svg>", 1)[0]
    broken_paths = re.findall(r'<g class="path-group broken" data-source="([^"]+)"', svg)
    assert sorted(broken_paths) == sorted(f"spoke {s} {az} via hub b" for s in ("main", "other") for az in AZS)
    assert 'data-key="endpoint/b"' in svg and re.search(r'class="node broken" data-key="endpoint/b"', svg)
    assert re.search(r'class="subnet broken" data-key="hub-tgw/b"', svg)
    assert 'class="check failed" data-check="network/egress"' in page and "egress stops at route-table" in page
    assert "3 of 5 missing, drifted or failed" not in page and "2 of 5 missing, drifted or failed" in page


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install chromium; "
                                             ".ci/run installs it when run as root)")
def test_the_page_opens_in_chromium(tmp_path: Path):
    path = tmp_path / "status.html"
    path.write_text(report.render(_data(broken=True)))
    base = [str(CHROMIUM), "--headless", "--disable-gpu", "--no-sandbox", "--hide-scrollbars",
            f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*base, "--dump-dom", path.as_uri()], capture_output=True, text=True, timeout=60,
                         check=True).stdout
    assert '<svg xmlns="http://www.w3.org/2000/svg" id="picture"' in dom
    assert re.search(r'<g class="container" data-key="hub">', dom)
    for spoke in ("main", "other"):
        assert f'data-key="spoke/{spoke}"' in dom
    for check in CHECKS:
        assert f'data-check="{check}"' in dom
    shot = tmp_path / "status.png"
    subprocess.run([*base, "--window-size=1300,1400", f"--screenshot={shot}", path.as_uri()], capture_output=True,
                   timeout=60, check=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
