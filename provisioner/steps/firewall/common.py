"""What the firewall's steps share: state keys, deadlines, and the helpers every resource of the family uses
(finding by the recorded ARN, ownership, polling, creating by name, UpdateTokens, the content the firewall proves)."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from typing import Any, TypeVar

from botocore.exceptions import ClientError

from provisioner.aws.errors import CloudError, error_code, gone_if_missing, none_if_missing, translate
from provisioner.aws.paging import next_token_pages
from provisioner.aws.tagging import tags_of
from provisioner.context import Context
from provisioner.design import firewall as design
from provisioner.design.naming import is_owned, tag_list, tag_map
from provisioner.poll import Read, block, poll_once
from provisioner.steps import keys
from provisioner.steps.base import Resource, Step, aspect
from provisioner.steps.ec2_common import retry_while

T = TypeVar("T")

NOT_FOUND = ("ResourceNotFoundException",)
ROUTE_NOT_FOUND = ("InvalidRoute.NotFound",)
OBSERVATIONS = "observations"
METASTORE_OBSERVATION = "metastore-addresses"
# Creating or deleting a firewall takes several minutes (often 5-10); AWS documents no upper bound.
FIREWALL_POLL_SECONDS = 15
FIREWALL_DEADLINE_SECONDS = 30 * 60
POLICY_POLL_SECONDS = 5
POLICY_FIRST_POLL_SECONDS = 1.0
# Each protection the firewall keeps on, and how `status` names it when off.
PROTECTIONS = {"DeleteProtection": "delete protection off",
               "SubnetChangeProtection": "subnet change protection off",
               "FirewallPolicyChangeProtection": "policy change protection off"}
POLICY_DEADLINE_SECONDS = 10 * 60
# DeleteFirewallPolicy and DeleteRuleGroup answer InvalidOperationException ("still in use") for a while after the
# firewall or policy that used them is gone: AWS frees them a little later.
IN_USE = ("InvalidOperationException",)
IN_USE_DEADLINE_SECONDS = 5 * 60
# Firewall states that waiting does not end (botocore's network-firewall model): a firewall or endpoint
# (attachment) FAILED cannot recover; an endpoint in ERROR has an issue its owner must fix (the StatusMessage says
# which); a configuration CAPACITY_CONSTRAINED does not fit the firewall.
FAILED_FIREWALL_STATUSES = ("FAILED",)
FAILED_ATTACHMENT_STATUSES = ("FAILED", "ERROR")
CAPACITY_CONSTRAINED = "CAPACITY_CONSTRAINED"


def rule_group_key(role: str) -> str:
    return keys.hub("firewall/rule-group", role)


POLICY_KEY = keys.hub("firewall/policy")
FIREWALL_KEY = keys.hub("firewall")
FIREWALL_SUBNET_PREFIX = keys.hub("firewall-subnet") + "/"


def dropped_az_subnets(ctx: Context, azs: tuple[str, ...]) -> set[str]:
    """The firewall subnets of hub AZs the state file still records but `azs` (the config's) no longer has: the
    firewall keeps them mapped until `up --prune` removes them (`subnets.DroppedAzEndpoint`)."""
    return {str(entry["id"]) for key, entry in ctx.state.resources().items()
            if key.startswith(FIREWALL_SUBNET_PREFIX) and key[len(FIREWALL_SUBNET_PREFIX):] not in azs
            and entry.get("id")}


LOGGING_KEY = keys.hub("firewall/logging")


def log_group_key(log_type: str) -> str:
    return keys.hub("firewall/log-group", log_type.lower())


def routes_key(az: str) -> str:
    return keys.hub("firewall/routes", az)


# -- shared helpers ---------------------------------------------------------------------------------------------


def _wait_gone(ctx: Context, key: str, what: str, describe: Callable[[], Any],
               status: Callable[[Any], str] = lambda got: "DELETING", poll: float = POLICY_POLL_SECONDS,
               deadline: float = POLICY_DEADLINE_SECONDS,
               failed: Callable[[Any], str | None] = lambda got: None) -> None:
    """Poll `describe` until it finds nothing (deletes in Network Firewall are asynchronous)."""
    with translate(f"wait for {what} to go"):
        _poll(ctx, key, f"{what} to go", describe, lambda got: got is None, status, poll, deadline, failed)


def _describe_recorded(ctx: Context, key: str, describe: Callable[..., Any], arn_param: str) -> Any:
    """Describe the resource by the ARN the state file recorded; None when none is recorded or it is gone."""
    arn = ctx.state.resource_id(key)
    return none_if_missing(NOT_FOUND, describe, **{arn_param: arn}) if arn else None


def _described_firewall(ctx: Context, arn: str | None) -> Any:
    """The recorded firewall described, once per command for every step that looks at it (None: none recorded, or
    gone), and once more after each change this command made to it or to what it runs (`firewall_changed`): the
    step after a change sees it as it is then. Its waits read it again."""
    if not arn:
        return None
    nfw = ctx.aws.network_firewall

    def load() -> Any:
        return none_if_missing(NOT_FOUND, nfw.describe_firewall, FirewallArn=arn)

    return ctx.reads.get(_firewall_read_key(ctx, arn), load)


# The changes this command made to the firewall, its policy or its rule groups (a list shared through `ctx.reads`):
# each makes the next look at the firewall a new describe.
FIREWALL_CHANGES = "network firewall changes"


def _firewall_read_key(ctx: Context, arn: str) -> str:
    return f"describe_firewall {arn} after {len(ctx.reads.get(FIREWALL_CHANGES, list))} changes"


def firewall_changed(ctx: Context) -> None:
    """This command changed the firewall (its subnets, protections, policy association or logging), its policy or
    one of its rule groups: the next step that looks at the firewall describes it again."""
    ctx.reads.get(FIREWALL_CHANGES, list).append(None)


def firewall_gone(ctx: Context, arn: str) -> None:
    """The firewall `arn` was just deleted and is gone: the steps after it know so without a describe."""
    firewall_changed(ctx)
    ctx.reads.get(_firewall_read_key(ctx, arn), lambda: None)


# -- content the firewall proves --------------------------------------------------------------------------------
#
# DescribeFirewall's SyncStates[az].Config names each object the firewall runs (its policy and every rule group the
# policy references) with the UpdateToken of its version in force, and AWS gives an object a new UpdateToken with
# every update. A policy or rule group whose content a step read and found as designed, or wrote, is recorded with
# that token and a digest of the design (`verified`); while every AZ runs it IN_SYNC at exactly that token, its
# content is still that design, and the step does not describe it again. Anything else reads it as before.

VERIFIED = "verified"  # in a policy's or rule group's recorded outputs: {"token": ..., "digest": ...}
PROVEN = "proven"  # in `Resource.live`: found through the firewall's sync state, content not read
IN_SYNC = "IN_SYNC"


def content_digest(document: Any) -> str:
    """A digest of a policy or rule group document as designed: what a recorded token was verified against."""
    return hashlib.sha256(json.dumps(document, sort_keys=True, default=str).encode()).hexdigest()[:16]


def verified(token: str, document: Any) -> dict[str, str]:
    return {"token": token, "digest": content_digest(document)}


def verified_if_designed(res: Resource, document: Any, member: str) -> Resource:
    """`res` (a policy or rule group whose content, as read or written, is `res.live[member]`) with its UpdateToken
    recorded as verified when that content is `document`, the design; left unverified when not."""
    if not design.differences(document, res.live.get(member)):
        res.outputs[VERIFIED] = verified(res.live["UpdateToken"], document)
    return res


def read_unless_proven(res: Resource, document: Any, describe: Callable[[], Any]) -> bool:
    """True when `res` is proven as `document` (`proven_as`): nothing to compare. A resource proven at a content
    other than `document` (the design changed since) gets its content read now, for the caller to compare."""
    if proven_as(res, document):
        return True
    if res.live.get(PROVEN):
        res.live = describe()
    return False


def proven_by_firewall(ctx: Context, key: str) -> Resource | None:
    """The policy or rule group recorded under `key`, unread, when the recorded firewall runs it (by its recorded
    name) in every AZ IN_SYNC at exactly the UpdateToken recorded with its verified content; its `live` then holds
    PROVEN and that token. None when there is no such proof: nothing verified recorded, no firewall (yet, or any
    more, or being deleted), an object the firewall does not run, PENDING, or another token (changed since)."""
    entry = ctx.state.resource(key) or {}
    outputs = entry.get("outputs") or {}
    token = (outputs.get(VERIFIED) or {}).get("token")
    name = outputs.get("name")
    if not (entry.get("id") and token and name):
        return None
    status = (_described_firewall(ctx, ctx.state.resource_id(FIREWALL_KEY)) or {}).get("FirewallStatus") or {}
    states = (status.get("SyncStates") or {}).values()
    if status.get("Status") == "DELETING" or not states:
        return None
    for state in states:
        config = (state.get("Config") or {}).get(name) or {}
        if config.get("SyncStatus") != IN_SYNC or config.get("UpdateToken") != token:
            return None
    return Resource(str(entry["id"]), outputs=outputs, live={PROVEN: True, "UpdateToken": token})


def proven_as(res: Resource, document: Any) -> bool:
    """`res` was found through the firewall's sync state and the content verified at its token is `document`: the
    live object is as designed, without a read."""
    return bool(res.live.get(PROVEN)) and (res.outputs.get(VERIFIED) or {}).get("digest") == content_digest(document)


def record_verified(ctx: Context, key: str, token: str, document: Any) -> None:
    """Record the token of another step's policy or rule group, just written with `document`."""
    entry = ctx.state.resource(key)
    if entry is not None:
        ctx.state.record(key, entry.get("id", ""), outputs={**(entry.get("outputs") or {}),
                                                            VERIFIED: verified(token, document)})


def _require_owned(ctx: Context, what: str, tags: dict[str, str]) -> None:
    if not is_owned(tags, ctx.deployment):
        raise CloudError(f"{what} exists but is not tagged as part of deployment {ctx.deployment}; provision will "
                         "not adopt it: delete it or choose another deployment name")


def ensure_tags(ctx: Context, step: Step, arn: str, have: dict[str, str], changes: list[str], apply: bool,
                name: str | None = None) -> None:
    """Put back the ownership tags a Network Firewall resource (`have`: its tags now) lacks."""
    missing = {k: v for k, v in ctx.tags(step, name).items() if have.get(k) != v}
    if aspect(changes, apply, "tags", bool(missing)):
        with translate(f"tag {step.kind} {name or step.name}"):
            ctx.aws.network_firewall.tag_resource(ResourceArn=arn, Tags=tag_list(missing))


def ensure_proven_tags(ctx: Context, step: Step, res: Resource, changes: list[str], apply: bool,
                       name: str | None = None) -> None:
    """The tags of a policy or rule group proven by the firewall (its content unread: a tag change gives it no new
    UpdateToken): from the command's one Tagging API read when that lists it, else its own ListTagsForResource."""
    nfw = ctx.aws.network_firewall

    def read() -> dict[str, str]:
        return tag_map(list(next_token_pages(nfw.list_tags_for_resource, "Tags", ResourceArn=res.id)))

    ensure_tags(ctx, step, res.id, tags_of(ctx, res.id, read), changes, apply, name)


def _recorded(ctx: Context, key: str, what: str, output: str = "id") -> Any:
    """Another step's recorded ID or output; a CloudError (which `status` reports) when there is none."""
    entry = ctx.state.resource(key)
    value = None if entry is None else (entry.get("id") if output == "id" else entry.get("outputs", {}).get(output))
    if not value:
        raise CloudError(f"{what} ({key}) is not in the state file; run `provision up`")
    return value


def _poll(ctx: Context, key: str, what: str, read: Callable[[], T], done: Callable[[T], bool],
          describe: Callable[[T], str], delay: float, deadline: float,
          failed: Callable[[T], str | None] = lambda value: None) -> T:
    """Read until `done`; at most `deadline / delay` reads, each `delay` apart (scaled by the poll scale). A read
    for which `failed` gives a reason ends the wait at once with that reason: waiting would not change it."""
    last: list[T] = []

    def once() -> Read:
        last[:] = [read()]
        ready = done(last[0])
        return Read(ready, note=describe(last[0]), failed=None if ready else failed(last[0]))

    reads = Resource("")  # counts the reads towards the deadline
    block(ctx, key, lambda: poll_once(reads, what, once, every=delay, deadline=deadline))
    return last[0]


def _create_or_adopt(ctx: Context, what: str, create: Callable[[], dict[str, Any]],
                     describe: Callable[[], dict[str, Any]], member: str) -> dict[str, Any]:
    """Create a named Network Firewall resource; when the name is taken (botocore retried a create whose reply
    was lost, and the first attempt made it), adopt what is there if it carries this deployment's tags."""
    try:
        return create()
    except ClientError as e:
        if error_code(e) != "InvalidRequestException" or "already exist" not in str(e):
            raise
    got = describe()
    _require_owned(ctx, what, tag_map(got[member].get("Tags")))
    return got


def _token(token: str | None) -> dict[str, str]:
    """The UpdateToken argument: optional in the firewall's update calls, and botocore refuses None."""
    return {"UpdateToken": token} if token else {}


def _delete_once_released(ctx: Context, delete: Callable[..., Any], **params: Any) -> bool:
    """Delete a policy or rule group whose user (firewall, policy) has just gone: AWS still answers "in use" for
    a while, so that answer is retried within IN_USE_DEADLINE_SECONDS. False when it was already gone."""
    return bool(retry_while(ctx, IN_USE, IN_USE_DEADLINE_SECONDS, gone_if_missing, NOT_FOUND, delete, **params))


def _utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

