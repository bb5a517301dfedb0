"""The network firewall itself (`hub/firewall`): one endpoint per hub AZ, READY and IN_SYNC before routes use it."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from provisioner.aws.errors import CloudError, error_code, gone_if_missing, none_if_missing, translate
from provisioner.context import Context
from provisioner.design import firewall as design
from provisioner.design.config import Config
from provisioner.design.layout import layout
from provisioner.design.naming import tag_list, tag_map
from provisioner.poll import Pending, Read, block, poll_once
from provisioner.steps import keys
from provisioner.steps.base import Resource, Step, aspect
from provisioner.steps.firewall.common import (
    CAPACITY_CONSTRAINED,
    FAILED_ATTACHMENT_STATUSES,
    FAILED_FIREWALL_STATUSES,
    FIREWALL_DEADLINE_SECONDS,
    FIREWALL_KEY,
    FIREWALL_POLL_SECONDS,
    NOT_FOUND,
    POLICY_KEY,
    PROTECTIONS,
    _create_or_adopt,
    _described_firewall,
    _poll,
    _recorded,
    _require_owned,
    _token,
    _wait_gone,
    dropped_az_subnets,
    ensure_tags,
    firewall_changed,
    firewall_gone,
)

# -- the firewall -----------------------------------------------------------------------------------------------


class Firewall(Step):
    kind = "network firewall"

    def __init__(self, config: Config) -> None:
        self.config = config
        self.azs = tuple(h.az for h in layout(config).hub_azs)
        needs = (POLICY_KEY, keys.hub("vpc"), *(keys.hub("firewall-subnet", az) for az in self.azs))
        super().__init__(FIREWALL_KEY, design.firewall_name(config.deployment), needs)

    def details(self) -> dict[str, Any]:
        return {"azs": ", ".join(self.azs)}

    def _subnets(self, ctx: Context) -> list[str]:
        return [_recorded(ctx, keys.hub("firewall-subnet", az), f"hub firewall subnet in {az}") for az in self.azs]

    def find(self, ctx: Context) -> Resource | None:
        nfw = ctx.aws.network_firewall
        with translate(f"read network firewall {self.name}"):
            got = (_described_firewall(ctx, ctx.state.resource_id(self.key))
                   or none_if_missing(NOT_FOUND, nfw.describe_firewall, FirewallName=self.name))
        if got is None:
            return None
        _require_owned(ctx, f"network firewall {self.name}", tag_map(got["Firewall"].get("Tags")))
        return self._resource(got)

    def _resource(self, got: dict[str, Any]) -> Resource:
        fw = got["Firewall"]
        return Resource(fw["FirewallArn"], outputs={"arn": fw["FirewallArn"], "name": fw["FirewallName"],
                                                    "endpoints": endpoints_by_az(got)}, live=got)

    def create(self, ctx: Context) -> Resource:
        nfw = ctx.aws.network_firewall
        with translate(f"create network firewall {self.name}"):
            created = _create_or_adopt(
                ctx, f"network firewall {self.name}",
                lambda: nfw.create_firewall(
                    FirewallName=self.name,
                    FirewallPolicyArn=_recorded(ctx, POLICY_KEY, "the firewall policy"),
                    VpcId=_recorded(ctx, keys.hub("vpc"), "the hub VPC"),
                    SubnetMappings=[{"SubnetId": s} for s in self._subnets(ctx)],
                    # Nobody deletes it, moves its endpoints or swaps its policy by accident: `up` lifts a
                    # protection only for the one change it guards, and `down` lifts the delete protection just
                    # before deleting.
                    DeleteProtection=True, SubnetChangeProtection=True, FirewallPolicyChangeProtection=True,
                    Description=f"Egress firewall of deployment {ctx.deployment}",
                    Tags=tag_list(ctx.tags(self))),
                lambda: nfw.describe_firewall(FirewallName=self.name), "Firewall")
        firewall_changed(ctx)  # a firewall of this name (and so ARN) may have been read as gone
        return self._resource(created)

    def poll(self, ctx: Context, res: Resource) -> Resource | Pending:
        """One read of the wait until READY and IN_SYNC with an endpoint in every hub AZ (routes can then point at
        the endpoints); the engine schedules the next read, so the minutes of the firewall's creation hold no
        worker. An AZ added to the config has no subnet on the firewall until `ensure` maps it, and then waits
        for it."""
        status = res.live.get("FirewallStatus", {})
        if status.get("Status") == "DELETING":
            raise CloudError(f"network firewall {self.name} is being deleted; wait until it is gone (a few minutes), "
                             "then rerun `provision up`")
        mapped = {m["SubnetId"] for m in res.live.get("Firewall", {}).get("SubnetMappings", [])}
        azs = tuple(az for az, subnet in zip(self.azs, self._subnets(ctx), strict=True) if subnet in mapped)
        if self._ready(res.live, azs):
            return res
        nfw = ctx.aws.network_firewall

        def read() -> Read:
            got = nfw.describe_firewall(FirewallArn=res.id)
            res.live = got  # the next poll starts from what this one saw
            ready = self._ready(got, azs)
            return Read(ready, note=_describe_status(got), failed=None if ready else _failure(got))

        with translate(f"wait for network firewall {self.name}"):
            got = poll_once(res, f"network firewall {self.name}", read, every=FIREWALL_POLL_SECONDS,
                            deadline=FIREWALL_DEADLINE_SECONDS)
        return got if isinstance(got, Pending) else self._resource(res.live)

    def wait(self, ctx: Context, res: Resource) -> Resource:
        return block(ctx, self.key, lambda: self.poll(ctx, res))

    def _wait_ready(self, ctx: Context, res: Resource, azs: tuple[str, ...] | None = None) -> Resource:
        def ready(got: dict[str, Any]) -> bool:
            return self._ready(got, azs)

        if ready(res.live):
            return res
        nfw = ctx.aws.network_firewall
        with translate(f"wait for network firewall {self.name}"):
            got = _poll(ctx, self.key, f"network firewall {self.name}",
                        lambda: nfw.describe_firewall(FirewallArn=res.id), ready, _describe_status,
                        FIREWALL_POLL_SECONDS, FIREWALL_DEADLINE_SECONDS, failed=_failure)
        return self._resource(got)

    def _ready(self, got: dict[str, Any], azs: tuple[str, ...] | None = None) -> bool:
        """READY and IN_SYNC with an endpoint in every hub AZ (or in `azs`)."""
        status = got.get("FirewallStatus", {})
        endpoints = endpoints_by_az(got)
        return (status.get("Status") == "READY" and status.get("ConfigurationSyncStateSummary") == "IN_SYNC"
                and all(az in endpoints for az in (self.azs if azs is None else azs)))

    def ensure(self, ctx: Context, res: Resource, apply: bool) -> list[str]:
        changes: list[str] = []
        nfw = ctx.aws.network_firewall
        fw = res.live["Firewall"]
        token = res.live.get("UpdateToken")
        with translate(f"update network firewall {self.name}"):
            policy = _recorded(ctx, POLICY_KEY, "the firewall policy")
            if aspect(changes, apply, "firewall policy", fw.get("FirewallPolicyArn") != policy):
                # The policy-change protection refuses the association: lifted for this call, put back below.
                if fw.get("FirewallPolicyChangeProtection"):
                    token = self._protect(nfw, res.id, "FirewallPolicyChangeProtection", False, token)
                    fw["FirewallPolicyChangeProtection"] = False
                token = nfw.associate_firewall_policy(FirewallArn=res.id, FirewallPolicyArn=policy,
                                                      **_token(token))["UpdateToken"]
            wanted = set(self._subnets(ctx))
            # A hub AZ dropped from the config keeps its endpoint until `up --prune` has removed its routes.
            have = {m["SubnetId"] for m in fw.get("SubnetMappings", [])} - dropped_az_subnets(ctx, self.azs)
            add = aspect(changes, apply, "subnets (added)", bool(wanted - have))
            remove = aspect(changes, apply, "subnets (removed)", bool(have - wanted))
            if (add or remove) and fw.get("SubnetChangeProtection"):
                token = self._protect(nfw, res.id, "SubnetChangeProtection", False, token)
                fw["SubnetChangeProtection"] = False
            if add:
                token = nfw.associate_subnets(FirewallArn=res.id, **_token(token),
                                              SubnetMappings=[{"SubnetId": s} for s in sorted(wanted - have)]
                                              )["UpdateToken"]
            if remove:
                token = nfw.disassociate_subnets(FirewallArn=res.id, **_token(token),
                                                 SubnetIds=sorted(have - wanted))["UpdateToken"]
            for flag in PROTECTIONS:
                if aspect(changes, apply, PROTECTIONS[flag], not fw.get(flag)):
                    token = self._protect(nfw, res.id, flag, True, token)
            ensure_tags(ctx, self, res.id, tag_map(fw.get("Tags")), changes, apply)
        if apply and changes:
            firewall_changed(ctx)
        if add:  # the new AZs' endpoints, which their routes need (the engine records `res` after ensure)
            ready = self._wait_ready(ctx, self._resource(nfw.describe_firewall(FirewallArn=res.id)))
            res.outputs, res.live = ready.outputs, ready.live
        # In `up`, wait() has made it READY; in `status`, a firewall still provisioning or syncing a policy change
        # is reported, since until then its endpoints or rules are not in force.
        if not apply and not self._ready(res.live):
            changes.append(f"not ready ({_describe_status(res.live)})")
        return changes

    def delete(self, ctx: Context, res: Resource) -> None:
        nfw = ctx.aws.network_firewall
        fw = res.live["Firewall"]
        if res.live.get("FirewallStatus", {}).get("Status") == "DELETING":
            return
        with translate(f"delete network firewall {self.name}"):
            if fw.get("DeleteProtection"):
                self._protect(nfw, res.id, "DeleteProtection", False, res.live.get("UpdateToken"))
            gone_if_missing(NOT_FOUND, nfw.delete_firewall, FirewallArn=res.id)
        firewall_changed(ctx)

    def wait_deleted(self, ctx: Context, res: Resource) -> None:
        # Its endpoints go with it; the policy can be deleted only once no firewall uses it.
        _wait_gone(ctx, self.key, f"network firewall {self.name}",
                   lambda: none_if_missing(NOT_FOUND, ctx.aws.network_firewall.describe_firewall, FirewallArn=res.id),
                   status=lambda got: _describe_status(got or {}), poll=FIREWALL_POLL_SECONDS,
                   deadline=FIREWALL_DEADLINE_SECONDS, failed=lambda got: _deletion_failure(got or {}))
        firewall_gone(ctx, res.id)


    @staticmethod
    def _protect(nfw: Any, arn: str, flag: str, on: bool, token: str | None) -> str | None:
        call = {"DeleteProtection": nfw.update_firewall_delete_protection,
                "SubnetChangeProtection": nfw.update_subnet_change_protection,
                "FirewallPolicyChangeProtection": nfw.update_firewall_policy_change_protection}[flag]
        try:
            answer = call(FirewallArn=arn, **{flag: on}, **_token(token))
        except ClientError as e:
            if error_code(e) != "InvalidTokenException":
                raise
            # The token is stale: someone changed the firewall, or our own attempt whose reply was lost did
            # (botocore retried it). Read it again: done if the flag is already so, else once more, up to date.
            got = nfw.describe_firewall(FirewallArn=arn)
            if bool(got["Firewall"].get(flag)) == on:
                return str(got.get("UpdateToken") or "") or None
            answer = call(FirewallArn=arn, **{flag: on}, **_token(got.get("UpdateToken")))
        return str(answer["UpdateToken"]) if answer.get("UpdateToken") else token


def endpoints_by_az(got: dict[str, Any]) -> dict[str, str]:
    """AZ -> firewall endpoint ID, from DescribeFirewall's SyncStates (AZs whose endpoint exists yet)."""
    states = got.get("FirewallStatus", {}).get("SyncStates", {}) or {}
    return {az: s["Attachment"]["EndpointId"] for az, s in sorted(states.items())
            if s.get("Attachment", {}).get("EndpointId")}


def _describe_status(got: dict[str, Any]) -> str:
    status = got.get("FirewallStatus", {})
    summary = f"{status.get('Status', 'unknown')}, {status.get('ConfigurationSyncStateSummary', 'unknown')}"
    problems = firewall_problems(got)
    return f"{summary}: {'; '.join(problems)}" if problems else summary


def firewall_problems(got: dict[str, Any]) -> list[str]:
    """What keeps the firewall from becoming ready that waiting will not fix, in AWS's words: FAILED or ERROR
    endpoints with their StatusMessage, CAPACITY_CONSTRAINED configuration, a FAILED firewall."""
    status = got.get("FirewallStatus", {})
    problems = []
    constrained = False
    for az, sync in sorted((status.get("SyncStates") or {}).items()):
        attachment = sync.get("Attachment") or {}
        if attachment.get("Status") in FAILED_ATTACHMENT_STATUSES:
            problems.append(f"its endpoint in {az} is {attachment['Status']}: "
                            f"{attachment.get('StatusMessage') or 'AWS gives no reason'}")
        objects = [name for name, config in sorted((sync.get("Config") or {}).items())
                   if config.get("SyncStatus") == CAPACITY_CONSTRAINED]
        if objects:
            constrained = True
            message = attachment.get("StatusMessage") if attachment.get("Status") not in FAILED_ATTACHMENT_STATUSES \
                else None
            problems.append(f"in {az}, {', '.join(objects)} {'is' if len(objects) == 1 else 'are'} "
                            f"{CAPACITY_CONSTRAINED}{': ' + message if message else ''}")
    if status.get("ConfigurationSyncStateSummary") == CAPACITY_CONSTRAINED and not constrained:
        problems.append(f"its configuration is {CAPACITY_CONSTRAINED}")
    if status.get("Status") in FAILED_FIREWALL_STATUSES and not problems:
        problems.append(f"it is {status['Status']} (AWS gives no reason in its endpoints' status)")
    return problems


def _failure(got: dict[str, Any]) -> str | None:
    """Why waiting for this firewall is pointless, with what to do; None while it may still get there."""
    problems = firewall_problems(got)
    if not problems:
        return None
    status = got.get("FirewallStatus", {})
    attachments = [s.get("Attachment", {}).get("Status") for s in (status.get("SyncStates") or {}).values()]
    if status.get("Status") == "FAILED" or "FAILED" in attachments:
        advice = ("AWS cannot recover a failed firewall: delete it (`provision down`, or turn its delete protection "
                  "off and delete it in the console), then run `provision up`")
    elif "ERROR" in attachments:
        advice = "fix what AWS says, then rerun the command: it waits for the firewall again"
    else:
        advice = ("the firewall policy's rule groups do not fit the firewall's capacity: lower what the rules need "
                  "(fewer domains or rules), then run `provision up`")
    return f"{'; '.join(problems)}. {advice}"


def _deletion_failure(got: dict[str, Any]) -> str | None:
    """Why waiting for this firewall to go is pointless: an endpoint AWS failed to delete (FAILED or ERROR)."""
    states = (got.get("FirewallStatus", {}).get("SyncStates") or {}).items()
    problems = [f"its endpoint in {az} is {s['Attachment']['Status']}: "
                f"{s['Attachment'].get('StatusMessage') or 'AWS gives no reason'}"
                for az, s in sorted(states) if (s.get("Attachment") or {}).get("Status") in FAILED_ATTACHMENT_STATUSES]
    if not problems:
        return None
    return f"{'; '.join(problems)}. Fix what AWS says (or ask AWS Support), then rerun `provision down`"


