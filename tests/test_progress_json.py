"""`--progress json`: one JSON object per line on stdout for pipelines, on up, status and down."""

import json

from tests.conftest import config_text


def _lines(text):
    return [json.loads(line) for line in text.splitlines()]


def test_up_status_down_with_json_progress_write_only_json_lines_to_stdout(aws, workdir):
    workdir.write_config(config_text("pipe"))

    up = workdir.run("up", "--progress", "json")
    assert up.code == 0, up.err
    lines = _lines(up.out)  # every stdout line is a JSON object
    assert all(set(doc) == {"step", "state", "elapsed", "message"} for doc in lines)
    assert {"step": "hub/vpc", "state": "done"}.items() <= next(
        d for d in lines if d["step"] == "hub/vpc" and d["state"] == "done").items()
    assert all(isinstance(d["elapsed"], float) and d["elapsed"] >= 0 for d in lines)
    assert lines[-1]["step"] is None and lines[-1]["state"] == "finished"
    assert "created" in lines[-1]["message"]
    assert "Deployment pipe" in up.err  # what people read goes to stderr

    status = workdir.run("status", "--progress", "json")
    assert status.code == 0, status.out
    lines = _lines(status.out)
    assert {d["state"] for d in lines[:-1]} <= {"present", "ok"}
    assert lines[-1] == {"step": None, "state": "healthy", "elapsed": 0.0,
                         "message": f"0 of {len(lines) - 1} resources missing or drifted"}

    down = workdir.run("down", "--yes", "--progress", "json")
    assert down.code == 0, down.err
    lines = _lines(down.out)
    assert {d["state"] for d in lines if d["step"] == "hub/vpc"} >= {"deleting", "deleted"}
    assert lines[-1]["state"] == "finished"


def test_unknown_progress_kind_is_bad_input(workdir):
    result = workdir.run("up", "--progress", "xml")
    assert result.code == 2 and "--progress" in result.err
