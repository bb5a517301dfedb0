"""What people read: the progress lines, the plan and status tables."""

import io

from rich.console import Console

from provisioner.engine import PlanItem, StatusItem
from provisioner.render import ProgressView, plan_summary, status_problems


def test_progress_without_a_terminal_is_one_line_per_state_change_with_elapsed_time():
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=False, width=120)
    with ProgressView(console, ["hub/vpc", "hub/nat/a"]) as view:
        view.report("hub/vpc", "checking", "")
        view.report("hub/vpc", "creating", "")
        view.report("hub/vpc", "waiting", "pending")
        view.report("hub/vpc", "done", "created")
        view.report("hub/nat/a", "retrying", "NoSuchEntity; retrying for up to 60 s")
        view.report("hub/nat/a", "failed", "create NAT gateway failed: quota")
    lines = buffer.getvalue().splitlines()
    assert [line.split()[:2] for line in lines] == [["hub/vpc", "creating"], ["hub/vpc", "waiting"],
                                                    ["hub/vpc", "done"], ["hub/nat/a", "retrying"],
                                                    ["hub/nat/a", "failed"]]
    assert all(line.split()[2].endswith("s") for line in lines)
    assert lines[-1].endswith("create NAT gateway failed: quota")


def test_live_view_shows_work_under_way_when_not_everything_fits():
    console = Console(file=io.StringIO(), force_terminal=True, width=100, height=8)
    keys = [f"step/{i}" for i in range(30)]
    view = ProgressView(console, keys)
    for key in keys[:20]:
        view.report(key, "done", "created")
    view.report("step/25", "waiting", "PROVISIONING")
    rows, summary = view._rows(5)
    assert "step/25" in rows and len(rows) <= 5
    assert summary.startswith("20 finished, 1 under way, 9 pending")


def test_plan_summary_and_status_problems():
    items = [PlanItem("a", "VPC", "n", "nothing"), PlanItem("b", "VPC", "m", "create")]
    assert plan_summary(items) == "1 to create, 0 to update, 0 to recreate, 1 unchanged."
    assert plan_summary(items[:1]).startswith("Nothing to do")
    status = [StatusItem("a", "VPC", "n", "present"), StatusItem("b", "bucket", "m", "drifted", "m", ["bucket policy"]),
              StatusItem("c", "role", "r", "missing")]
    assert status_problems(status) == ["b: bucket policy", "c: missing"]


def test_cloud_messages_are_not_read_as_markup():
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=False, width=200)
    with ProgressView(console, ["k"]) as view:
        view.report("k", "failed", "AccessDenied: not allowed on [/arn:aws:iam::1:role/x] [bold]")
    assert "[/arn:aws:iam::1:role/x] [bold]" in buffer.getvalue()


def test_up_summary_wraps_the_allowlist_at_the_terminals_width(tmp_path):
    """Not at the width of the spoke names' column: `up` printed one domain a line."""
    from provisioner.design.config import build_config
    from provisioner.render import allowlist_lines, up_summary
    from provisioner.state import load
    from tests.conftest import ACCOUNT_ID

    config = build_config({"databricks_account_id": ACCOUNT_ID, "deployment": "wide"})
    lines = up_summary(config, load(tmp_path, "wide"), width=160)
    listed = lines[lines.index("Allowed through the firewall (TLS SNI / HTTP Host):"):-1]
    assert listed == allowlist_lines(config, 160)
    assert len(listed) < 6 and max(len(line) for line in listed) > 100
