"""The step contract (DESIGN.md): what one piece of infrastructure owns, how it is found, made and removed.

A step is one resource (or one tightly bound group, such as a role and its inline policy):

- `find` asks the cloud: the recorded ID first, then the ownership tags (AWS) or the deterministic name
  (Databricks). It returns only what this deployment owns; a foreign resource in the way is an error.
- `create` makes the one call that brings the resource into being and returns as soon as the API gives an
  ID; the engine records it before anything waits. What it needs from another party that is not there yet (a
  new workspace's API, which answers a while after the workspace is RUNNING) is `poll_ready`'s to wait for.
- `wait` polls until the resource is usable. A step may instead define `poll`, one read that answers the
  resource (ready) or `poll.Pending` (ask again in N seconds): the engine then schedules the next read and no
  worker is held meanwhile. A step with only a blocking `wait` still works (the default `poll` calls it).
- `ensure` compares each aspect of the live resource with what it should be (policies, tags, routes...) and,
  with `apply`, fixes it; it returns what differed, so `status` reports drift and a second `up` makes no call.
- `delete` removes it (ownership already checked by `find`); already gone is success. `wait_deleted` waits
  until it is gone (what stands on it can go only then); a step may instead define `poll_deleted`, one read
  that answers None (gone) or `poll.Pending`, and `down` then holds no worker while it waits.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from provisioner.errors import CloudError

if TYPE_CHECKING:
    from provisioner.context import Context
    from provisioner.poll import Pending


@dataclass
class Resource:
    """A live resource as found in the cloud."""

    id: str
    outputs: dict[str, Any] = field(default_factory=dict)
    # What was read while finding it, for `ensure` to compare without a second read.
    live: dict[str, Any] = field(default_factory=dict)
    # Made by `create` in this run: AWS may not answer calls naming it yet (eventual consistency).
    fresh: bool = False
    # Reads made so far by the wait under way, and when it began (`provisioner.poll`): for its deadline.
    polls: int = 0
    waited_since: float | None = None


class Kept(Exception):
    """`delete` leaves the resource in place on purpose (say, a bucket that holds the user's data)."""


class Step:
    """Base class; subclasses set the class attributes and override what they need."""

    kind: ClassVar[str] = "resource"
    # Spec keys AWS cannot change in place: a change there needs the resource made anew.
    replace_on: ClassVar[tuple[str, ...]] = ()
    # A step that makes nothing of its own but writes in another step's resource: `plan` calls its first run an
    # update of that resource, as `up` reports it, not a create.
    writes_in: ClassVar[bool] = False

    def __init__(self, key: str, name: str, needs: tuple[str, ...] = ()) -> None:
        self.key = key
        self.name = name
        self.needs = needs

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.key}>"

    # -- what it should be ---------------------------------------------------------------------
    def details(self) -> dict[str, Any]:
        """What `plan` shows beside the name (CIDRs, AZ...)."""
        return {}

    def spec(self) -> dict[str, Any]:
        """Everything that decides what the resource looks like; hashed into the state for `plan`."""
        return {"name": self.name, **self.details()}

    def spec_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.spec(), sort_keys=True, default=str).encode()).hexdigest()[:16]

    # -- lifecycle -----------------------------------------------------------------------------
    def find(self, ctx: Context) -> Resource | None:
        raise NotImplementedError

    def create(self, ctx: Context) -> Resource:
        raise NotImplementedError

    def poll_ready(self, ctx: Context) -> Pending | None:
        """Before `create`: one read of what it needs from another party, None once that is there, or `Pending`
        (read again later; its `res` is any placeholder). By default nothing is needed."""
        return None

    def wait(self, ctx: Context, res: Resource) -> Resource:
        return res

    def poll(self, ctx: Context, res: Resource) -> Resource | Pending:
        """One read of the wait for `res` to be usable: the resource, or `Pending` (read again later). By
        default the whole (blocking) `wait`."""
        return self.wait(ctx, res)

    def ensure(self, ctx: Context, res: Resource, apply: bool) -> list[str]:
        return []

    def delete(self, ctx: Context, res: Resource) -> None:
        raise NotImplementedError

    def wait_deleted(self, ctx: Context, res: Resource) -> None:
        return None

    def poll_deleted(self, ctx: Context, res: Resource) -> Pending | None:
        """One read of the wait for `res` to be gone: None once it is, or `Pending` (read again later). By
        default the whole (blocking) `wait_deleted`."""
        self.wait_deleted(ctx, res)
        return None


class Retired(Step):
    """Something earlier versions of the design (or settings since changed) made that the deployment no longer
    has: `up` deletes it once what replaces it is in place (`needs`), `status` reports it while it exists, `plan`
    lists it while the state file records it. Finding and deleting are the wrapped step's."""

    def __init__(self, step: Step, needs: tuple[str, ...], reason: str) -> None:
        self.step = step
        self.reason = reason
        self.kind = step.kind  # type: ignore[misc]
        super().__init__(step.key, step.name, needs)

    def find(self, ctx: Context) -> Resource | None:
        return self.step.find(ctx)

    def delete(self, ctx: Context, res: Resource) -> None:
        self.step.delete(ctx, res)

    def wait_deleted(self, ctx: Context, res: Resource) -> None:
        self.step.wait_deleted(ctx, res)

    def poll_deleted(self, ctx: Context, res: Resource) -> Pending | None:
        return self.step.poll_deleted(ctx, res)


class Check:
    """A property of the whole deployment that `status` verifies from the cloud (say, that egress is forced
    through the firewall). `run` returns the problems found; empty means healthy."""

    def __init__(self, key: str, name: str) -> None:
        self.key = key
        self.name = name

    def run(self, ctx: Context) -> list[str]:
        raise NotImplementedError


def cannot_fix(changes: list[str], apply: bool, what: str, description: str) -> None:
    """A difference AWS cannot change in place: drift for `status`; during `up`, a failure that says so (never
    "updated" with the difference still there)."""
    if apply:
        raise CloudError(f"{what} {description}")
    changes.append(description)


def aspect(changes: list[str], apply: bool, description: str, differs: bool) -> bool:
    """Record one aspect's difference; True when the caller should fix it now."""
    if differs:
        changes.append(description)
    return differs and apply
