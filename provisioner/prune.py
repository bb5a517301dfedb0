"""`up --prune`: delete what the state file records that no step of the current config owns (a spoke removed,
fewer hub AZs), rebuilt from the config that made it (the state file keeps it), in `down`'s safe order.

Beside whole resources, a shared step can own less than it did: the NAT subnet route tables keep a
`<removed spoke CIDR> -> firewall endpoint` route the current firewall routes step no longer knows. Such
leftovers become steps of their own that own only the difference.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

from provisioner.design.config import Config
from provisioner.errors import UsageError
from provisioner.settings import config_doc, config_from_doc
from provisioner.state import State
from provisioner.steps.base import Step

LEFTOVER_SUFFIX = "#removed"


def orphan_keys(state: State, steps: Sequence[Step]) -> list[str]:
    """Resources the state file records that no step of the current config owns."""
    return sorted(set(state.resources()) - {s.key for s in steps})


MAX_RECORDED_CONFIGS = 20


def recorded_configs(state: State) -> list[Config]:
    """The configs `up` ran with that still own something, newest first."""
    docs = state.get_meta("configs") or []
    return [config_from_doc(doc) for doc in reversed(docs) if isinstance(doc, dict)]


def remember_config(state: State, config: Config, pruned: bool) -> None:
    """Record the config `up` runs with. Older ones stay while resources they made are still recorded (a spoke
    removed from the config without --prune), so a later `up --prune` can still rebuild how to delete them."""
    doc = config_doc(config)
    docs = [] if pruned else [d for d in state.get_meta("configs") or [] if d != doc]
    state.set_meta(configs=[*docs, doc][-MAX_RECORDED_CONFIGS:])


def removed_steps(state: State, steps: Sequence[Step], build: Callable[[Config], list[Step]]) -> list[Step]:
    """The steps that delete what the config no longer has, each rebuilt from the newest recorded config that had
    it; raises UsageError (nothing deleted) when they cannot all be rebuilt."""
    orphans = set(orphan_keys(state, steps))
    current = {s.key: s for s in steps}
    removed: dict[str, Step] = {}
    leftovers: dict[str, Step] = {}
    for old_config in recorded_configs(state):
        old_steps = build(old_config)
        for old in old_steps:
            if old.key in orphans and old.key not in removed:
                removed[old.key] = old
            elif old.key in current:
                left = leftover(old, current[old.key])
                if left is not None:
                    leftovers[left.key] = merge_leftover(leftovers.get(left.key), left)
    unknown = sorted(orphans - set(removed))
    if unknown:
        raise UsageError(f"the state file records no config that made {', '.join(unknown[:3])}"
                         f"{', ...' if len(unknown) > 3 else ''}, so --prune cannot rebuild how to delete them; "
                         "remove them with `provision down` under the config that made them")
    # The graph of removed steps among themselves: what they stand on that the config still has is not theirs.
    return [*removed.values(), *leftovers.values()]


def merge_leftover(first: Step | None, second: Step) -> Step:
    """One step for the leftovers of the same shared step under several older configs: the union of routes."""
    if first is None:
        return second
    seen = {(r.table, r.destination) for r in first.routes}  # type: ignore[attr-defined]
    extra = tuple(r for r in second.routes if (r.table, r.destination) not in seen)  # type: ignore[attr-defined]
    first.routes = (*first.routes, *extra)  # type: ignore[attr-defined]
    return first


def leftover(old: Step, new: Step) -> Step | None:
    """What `old` owns that `new`, the same step under the current config, does not: routes to removed spokes."""
    from provisioner.steps.firewall import FirewallRoutes

    if not (isinstance(old, FirewallRoutes) and isinstance(new, FirewallRoutes)):
        return None
    wanted = {(r.table, r.destination) for r in new.routes}
    gone = tuple(r for r in old.routes if (r.table, r.destination) not in wanted)
    if not gone:
        return None
    step = copy.copy(old)
    step.routes = gone
    step.key = old.key + LEFTOVER_SUFFIX  # its own key: forgetting it never forgets the current routes
    step.needs = ()
    step.name = f"{old.name}: routes to {', '.join(sorted({r.destination for r in gone}))}"
    return step
