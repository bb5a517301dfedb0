"""Every step of a deployment, family by family, in the order `plan` lists them."""

from __future__ import annotations

from provisioner.design.config import Config
from provisioner.steps import bucket, iam
from provisioner.steps.base import Step

FAMILIES = (iam, bucket)


def all_steps(config: Config) -> list[Step]:
    return [step for family in FAMILIES for step in family.steps(config)]
