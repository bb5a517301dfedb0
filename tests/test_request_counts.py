"""What a command asks the clouds while nothing changes: a no-op `up` and `status` of a whole deployment, counted
request by request (benchmarks/run.py prints the same figures against the sandbox's latency model).

The bounds are the ones docs/performance.md gives; a change that adds a read per resource shows up here.
"""

from __future__ import annotations

from collections import Counter

import pytest

from tests.conftest import config_text

# A no-op `up` of one spoke and two hub AZs, and `status` of it: AWS requests, Databricks requests.
UP_BOUND = (35, 6)
STATUS_BOUND = (40, 6)
# Each further spoke, in a no-op `up`.
PER_SPOKE_AWS = 11

ONE_SPOKE = (("main", "10.173.0.0/16"),)
TWO_SPOKES = (("main", "10.173.0.0/16"), ("bu2", "10.174.0.0/16"))


def _measure(workdir, calls, databricks, *args: str) -> tuple[Counter[str], int]:
    calls.clear()
    mark = len(databricks.requests)
    done = workdir.run(*args)
    assert done.code == 0, done.out + done.err
    return Counter(calls.calls), len(databricks.requests) - mark


def _report(counts: Counter[str]) -> str:
    return ", ".join(f"{op} x{n}" for op, n in sorted(counts.items()))


@pytest.fixture
def built(aws, databricks, dns, workdir, calls):
    def build(spokes: tuple[tuple[str, str], ...]) -> None:
        workdir.write_config(config_text("counted", spokes=spokes))
        first = workdir.run("up")
        assert first.code == 0, first.out + first.err

    return build


def test_a_no_op_up_and_status_stay_within_their_reads_and_write_nothing(built, workdir, calls, databricks):
    built(ONE_SPOKE)

    aws, dbx = _measure(workdir, calls, databricks, "up")
    assert calls.mutating == []
    assert sum(aws.values()) <= UP_BOUND[0], _report(aws)
    assert dbx <= UP_BOUND[1]

    aws, dbx = _measure(workdir, calls, databricks, "status")
    assert calls.mutating == []
    assert sum(aws.values()) <= STATUS_BOUND[0], _report(aws)
    assert dbx <= STATUS_BOUND[1]


def test_each_further_spoke_adds_at_most_a_few_reads(built, workdir, calls, databricks):
    built(ONE_SPOKE)
    one, _ = _measure(workdir, calls, databricks, "up")

    workdir.write_config(config_text("counted", spokes=TWO_SPOKES))
    assert workdir.run("up").code == 0
    two, _ = _measure(workdir, calls, databricks, "up")
    assert calls.mutating == []
    assert sum(two.values()) - sum(one.values()) <= PER_SPOKE_AWS, _report(two - one)
