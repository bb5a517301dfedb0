"""Which ready step starts first: the one with the longest typical path to the end of the run."""

from __future__ import annotations

from provisioner.engine import remaining_seconds, up
from provisioner.steps.base import Step
from tests.unit.test_engine import FakeStep, ctx  # noqa: F401 (a fixture)


class Slow(FakeStep):
    kind = "network firewall"


def test_remaining_seconds_follow_the_longest_chain_of_dependants():
    steps: list[Step] = [FakeStep("vpc"), FakeStep("subnet", ["vpc"]), Slow("firewall", ["subnet"]),
                         FakeStep("routes", ["firewall"]), FakeStep("bucket")]
    ahead = remaining_seconds(steps)
    assert ahead["routes"] == 1.0
    assert ahead["firewall"] == 391.0
    assert ahead["vpc"] == 393.0 and ahead["bucket"] == 1.0
    behind = remaining_seconds(steps, reverse=True)  # `down`: what a step stands on comes after it
    assert behind["routes"] == 393.0 and behind["vpc"] == 1.0


def test_with_one_worker_the_step_on_the_critical_path_starts_first(ctx):  # noqa: F811
    cloud: dict[str, str] = {}
    log: list[tuple[str, str]] = []
    steps = [FakeStep(f"bucket-{i}", cloud=cloud, log=log) for i in range(3)]
    steps += [Slow("firewall", cloud=cloud, log=log), FakeStep("routes", ["firewall"], cloud=cloud, log=log)]
    result = up(ctx, steps, workers=1)
    assert not result.failures
    assert log[0] == ("create", "firewall")  # before the buckets listed ahead of it
