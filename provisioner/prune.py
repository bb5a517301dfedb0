"""`up --prune`: delete what the state file records that no step of the current config owns (a spoke removed,
fewer hub AZs), rebuilt from the config that made it (the state file keeps it), in `down`'s safe order.

Beside whole resources, a shared step can own less than it did: the NAT subnet route tables keep a
`<removed spoke CIDR> -> firewall endpoint` route the current firewall routes step no longer knows, and the
firewall keeps its endpoint in a dropped hub AZ (`up` leaves it mapped while that AZ's routes point at it). Such
leftovers become steps of their own that own only the difference.

A dropped hub AZ goes in this order: `up` first takes its Transit Gateway subnet out of the hub attachment (no
flow enters the AZ any more); then its firewall routes (the way out to the internet gateway first, the endpoint
routes last), so that nothing ever leaves the AZ around the firewall; then its route tables, NAT gateway and
Elastic IP, and the firewall's endpoint there; its subnets last.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Sequence

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
                for left in leftover(old, current[old.key]):
                    leftovers[left.key] = merge_leftover(leftovers.get(left.key), left)
    unknown = sorted(orphans - set(removed))
    if unknown:
        raise UsageError(f"the state file records no config that made {', '.join(unknown[:3])}"
                         f"{', ...' if len(unknown) > 3 else ''}, so --prune cannot rebuild how to delete them; "
                         "remove them with `provision down` under the config that made them")
    _endpoint_after_routes(removed.values(), leftovers)
    # The graph of removed steps among themselves: what they stand on that the config still has is not theirs.
    return [*removed.values(), *leftovers.values()]


def _endpoint_after_routes(removed: Iterable[Step], leftovers: dict[str, Step]) -> None:
    """A dropped AZ's firewall endpoint goes only once its routes are gone (prune runs in `down`'s order, so a
    step is deleted after the steps that need it)."""
    from provisioner.steps.firewall import FirewallRoutes
    from provisioner.steps.firewall.subnets import endpoint_key

    for step in removed:
        if isinstance(step, FirewallRoutes) and endpoint_key(step.az) in leftovers:
            step.needs = (*step.needs, endpoint_key(step.az))


def merge_leftover(first: Step | None, second: Step) -> Step:
    """One step for the leftovers of the same shared step under several older configs: the union of routes."""
    from provisioner.steps.firewall import FirewallRoutes

    if first is None:
        return second
    if not (isinstance(first, FirewallRoutes) and isinstance(second, FirewallRoutes)):
        return first  # a dropped AZ's endpoint: the same under every config that had the AZ
    seen = {(r.table, r.destination) for r in first.routes}
    extra = tuple(r for r in second.routes if (r.table, r.destination) not in seen)
    first.routes = (*first.routes, *extra)
    return first


def leftover(old: Step, new: Step) -> list[Step]:
    """What `old` owns that `new`, the same step under the current config, does not: routes to removed spokes, the
    firewall's endpoints in dropped hub AZs."""
    from provisioner.steps.firewall import Firewall, FirewallRoutes
    from provisioner.steps.firewall.subnets import DroppedAzEndpoint

    if isinstance(old, Firewall) and isinstance(new, Firewall):
        return [DroppedAzEndpoint(old.config, az) for az in old.azs if az not in new.azs]
    if not (isinstance(old, FirewallRoutes) and isinstance(new, FirewallRoutes)):
        return []
    wanted = {(r.table, r.destination) for r in new.routes}
    gone = tuple(r for r in old.routes if (r.table, r.destination) not in wanted)
    if not gone:
        return []
    step = copy.copy(old)
    step.routes = gone
    step.key = old.key + LEFTOVER_SUFFIX  # its own key: forgetting it never forgets the current routes
    step.needs = ()
    step.name = f"{old.name}: routes to {', '.join(sorted({r.destination for r in gone}))}"
    return [step]


def orphan_steps_for_down(state: State, steps: Sequence[Step],
                          build: Callable[[Config], list[Step]]) -> tuple[list[Step], str | None]:
    """What `down` deletes beside the current config's steps: the resources the config no longer has (a spoke
    removed, fewer hub AZs, without `up --prune` since), rebuilt as `up --prune` rebuilds them. Not the routes
    to removed spokes that shared route tables keep: those tables go whole. The second value says what cannot be
    rebuilt (no recorded config made it), for `down` to report; None when everything can."""
    if not orphan_keys(state, steps):
        return [], None
    try:
        removed = removed_steps(state, steps, build)
    except UsageError as e:
        return [], str(e)
    return [s for s in removed if not s.key.endswith(LEFTOVER_SUFFIX)], None
