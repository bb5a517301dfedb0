"""Route 53 Resolver DNS Firewall on every spoke, and Resolver query logging (design/dns_firewall.py says what
and why).

Owns, for the deployment: the "allowed" and "blocked" domain lists, the rule group (ALLOW the allowed list, then
BLOCK with NXDOMAIN, or ALERT in `alert` mode, everything else), the query log group and the query logging
configuration; per spoke: the rule group's association with the spoke VPC (mutation protection on) together with
the VPC's DNS Firewall setting (fail closed: when the DNS Firewall cannot answer, queries are refused, not let
through), and the query logging association.

Creates carry a `CreatorRequestId` derived from the deployment and the step, so a create retried after a lost
reply gets back what the first attempt made. Found by recorded ID, then by name and the ownership tags (rule
group associations and query logging associations by the VPC they are on: there is one per VPC and group); by
recorded ID without a Get where the read that compares its content proves it is there (`_Named`), and its tags
from the deployment's one Tagging API read (aws/tagging.py) where that lists it.
With `dns_firewall.mode = "off"` the lists, the group and the associations are retired (query logging stays).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from botocore.exceptions import ClientError

from provisioner.aws.errors import CloudError, error_code, gone_if_missing, none_if_missing, translate
from provisioner.aws.paging import next_token_pages
from provisioner.aws.tagging import tags_of
from provisioner.context import Context
from provisioner.design import dns_firewall as design
from provisioner.design.config import Config
from provisioner.design.layout import layout
from provisioner.design.naming import is_owned, resource_name, tag_list, tag_map
from provisioner.poll import Pending, Read, block, poll_once
from provisioner.steps import keys
from provisioner.steps.base import Resource, Retired, Step, aspect, cannot_fix
from provisioner.steps.ec2_common import client_token
from provisioner.steps.logs import LogGroup

NOT_FOUND = ("ResourceNotFoundException",)
# UpdateFirewallDomains takes at most this many domains a call.
DOMAINS_PER_CALL = 1000
RULE_GROUP_KEY = keys.hub("dns-firewall/rule-group")
QUERY_LOG_GROUP_KEY = keys.hub("dns-query-logging/log-group")
QUERY_LOG_CONFIG_KEY = keys.hub("dns-query-logging")
ASSOCIATION_POLL_SECONDS = 5
ASSOCIATION_FIRST_POLL_SECONDS = 1
ASSOCIATION_DEADLINE_SECONDS = 10 * 60


def domain_list_key(role: str) -> str:
    return keys.hub("dns-firewall/domain-list", role)


def _tags(ctx: Context, arn: str) -> dict[str, str]:
    """From the deployment's one tag read when it lists `arn`, else this resource's own ListTagsForResource."""
    return tags_of(ctx, arn, lambda: tag_map(list(next_token_pages(
        ctx.aws.route53resolver.list_tags_for_resource, "Tags", ResourceArn=arn))))


def _require_owned(ctx: Context, what: str, arn: str) -> dict[str, str]:
    tags = _tags(ctx, arn)
    if not is_owned(tags, ctx.deployment):
        raise CloudError(f"{what} exists but is not tagged as part of deployment {ctx.deployment}; provision will "
                         "not adopt it: delete it or choose another deployment name")
    return tags


def _ensure_tags(ctx: Context, step: Step, arn: str, have: dict[str, str], changes: list[str], apply: bool) -> None:
    missing = {k: v for k, v in ctx.tags(step).items() if have.get(k) != v}
    if aspect(changes, apply, "tags", bool(missing)):
        ctx.aws.route53resolver.tag_resource(ResourceArn=arn, Tags=tag_list(missing))


def _association(ctx: Context, res: Resource, what: str, done: Callable[[dict[str, Any] | None], bool]) -> Read:
    """One read of a rule group association (None once gone), kept in `res.live`, and whether it is `done`."""
    got = none_if_missing(NOT_FOUND, ctx.aws.route53resolver.get_firewall_rule_group_association,
                          FirewallRuleGroupAssociationId=res.id)
    item = got["FirewallRuleGroupAssociation"] if got else None
    if item is not None:
        res.live.update(item)
    return Read(done(item), note=what)


def _rules(ctx: Context, group_id: str) -> list[dict[str, Any]] | None:
    """The rules of the rule group `group_id` (None when there is no such group), listed once per command for
    the rule group and the domain lists."""
    def load() -> list[dict[str, Any]] | None:
        return none_if_missing(NOT_FOUND, lambda: list(next_token_pages(
            ctx.aws.route53resolver.list_firewall_rules, "FirewallRules", FirewallRuleGroupId=group_id)))

    rules: list[dict[str, Any]] | None = ctx.reads.get(f"dns firewall rules {group_id}", load)
    return rules


def _query_log_associations(ctx: Context, config_id: str, fresh: bool = False) -> list[dict[str, Any]]:
    """The VPC associations of the query logging configuration `config_id`, listed once per command for it and
    every spoke; `fresh`: what is there now."""
    associations: list[dict[str, Any]] = ctx.reads.get(
        f"query logging associations {config_id}", lambda: list(next_token_pages(
            ctx.aws.route53resolver.list_resolver_query_log_config_associations, "ResolverQueryLogConfigAssociations",
            Filters=[{"Name": "ResolverQueryLogConfigId", "Values": [config_id]}])), fresh=fresh)
    return associations


def _live(association: dict[str, Any]) -> bool:
    return association.get("Status") not in ("DELETING", "FAILED")


def _alive(item: dict[str, Any] | None) -> dict[str, Any] | None:
    """The object unless it is being deleted: one in DELETING is as good as gone (and `up` makes another)."""
    return item if item is not None and item.get("Status") != "DELETING" else None


class _Named(Step):
    """A resolver object with a unique name in this deployment: found by recorded ID, then by name + tags.

    By recorded ID, a subclass's `read_recorded` may prove the object exists (and is not being deleted) from a read
    its steps need anyway; then its ARN (and what else cannot change) comes from the state file's outputs, and the
    Get is skipped. Without that proof it is read with the Get, as by name."""

    get_call: str
    list_call: str
    list_result: str
    id_param: str
    answer: str  # the member of a Get/Create answer holding the object
    delete_call: str

    # Recorded outputs, by the member of the object's description they copy: what a proven object is described
    # from without the Get (none of it can change).
    kept: ClassVar[dict[str, str]] = {"arn": "Arn"}

    def read_recorded(self, ctx: Context, recorded: str) -> tuple[bool | None, dict[str, Any]]:
        """Whether the recorded object exists, as proven by a read its steps need anyway (True; False: that read
        found it gone; None: no proof, ask the Get), and what that read saw of it, kept in `live` for `ensure`."""
        return None, {}

    def outputs(self, item: dict[str, Any]) -> dict[str, Any]:
        return {"name": self.name, **{output: item[member] for output, member in self.kept.items()}}

    def _by_id(self, ctx: Context, recorded: str) -> dict[str, Any] | None:
        exists, seen = self.read_recorded(ctx, recorded)
        if exists is False:
            return None
        outputs = (ctx.state.resource(self.key) or {}).get("outputs") or {}
        if exists and all(outputs.get(output) for output in self.kept):
            return {"Id": recorded, **{member: outputs[output] for output, member in self.kept.items()}, **seen}
        got = none_if_missing(NOT_FOUND, getattr(ctx.aws.route53resolver, self.get_call), **{self.id_param: recorded})
        item = _alive(got[self.answer] if got else None)
        return None if item is None else {**item, **seen}

    def find(self, ctx: Context) -> Resource | None:
        r53 = ctx.aws.route53resolver
        with translate(f"read {self.kind} {self.name}"):
            recorded = ctx.state.resource_id(self.key)
            item = self._by_id(ctx, recorded) if recorded else None
            if item is None:
                listed = next_token_pages(getattr(r53, self.list_call), self.list_result)
                named = [i for i in listed if i.get("Name") == self.name and _alive(i)]
                owned = [i for i in named if is_owned(_tags(ctx, i["Arn"]), ctx.deployment)]
                if named and not owned:
                    _require_owned(ctx, f"{self.kind} {self.name}", named[0]["Arn"])
                if len(owned) > 1:
                    ids = ", ".join(sorted(i["Id"] for i in owned))
                    raise CloudError(f"found {len(owned)} {self.kind}s named {self.name} in deployment "
                                     f"{ctx.deployment} ({ids}); delete all but one, then rerun")
                item = owned[0] if owned else None
                if item is not None:
                    item = _alive(getattr(r53, self.get_call)(**{self.id_param: item["Id"]})[self.answer])
            if item is None:
                return None
            tags = _tags(ctx, item["Arn"])
        return Resource(item["Id"], outputs=self.outputs(item), live={**item, "Tags": tags})


    def delete(self, ctx: Context, res: Resource) -> None:
        with translate(f"delete {self.kind} {self.name}"):
            gone_if_missing(NOT_FOUND, getattr(ctx.aws.route53resolver, self.delete_call), **{self.id_param: res.id})

class DomainList(_Named):
    kind = "DNS Firewall domain list"
    get_call, list_call, list_result = "get_firewall_domain_list", "list_firewall_domain_lists", "FirewallDomainLists"
    id_param, answer, delete_call = "FirewallDomainListId", "FirewallDomainList", "delete_firewall_domain_list"

    def __init__(self, config: Config, role: str) -> None:
        self.config = config
        self.role = role
        super().__init__(domain_list_key(role), design.domain_list_name(config.deployment, role))

    def domains(self) -> tuple[str, ...]:
        if self.role == design.ALLOWED:
            return design.allowed_domains(self.config, layout(self.config))
        return design.BLOCKED_DOMAINS

    def details(self) -> dict[str, Any]:
        return {"domains": len(self.domains())}

    def spec(self) -> dict[str, Any]:
        return {"name": self.name, "domains": list(self.domains())}

    def read_recorded(self, ctx: Context, recorded: str) -> tuple[bool | None, dict[str, Any]]:
        """Its domains, which `ensure` compares: ListFirewallDomains answers ResourceNotFoundException for a list
        that does not exist, so an answer proves it exists. Not that it is not being deleted (the answer has no
        status): that is proven by a rule of our rule group using it, as AWS refuses to delete a domain list a
        rule uses; without such a rule the Get reads its status."""
        domains = none_if_missing(NOT_FOUND, lambda: list(next_token_pages(
            ctx.aws.route53resolver.list_firewall_domains, "Domains", FirewallDomainListId=recorded)))
        if domains is None:
            return False, {}
        group_id = ctx.state.resource_id(RULE_GROUP_KEY)
        rules = (_rules(ctx, group_id) if group_id else None) or []
        used = any(rule.get("FirewallDomainListId") == recorded for rule in rules)
        return (True if used else None), {"domains": domains}

    def create(self, ctx: Context) -> Resource:
        with translate(f"create DNS Firewall domain list {self.name}"):
            item = ctx.aws.route53resolver.create_firewall_domain_list(
                CreatorRequestId=client_token(ctx, self), Name=self.name,
                Tags=tag_list(ctx.tags(self)))["FirewallDomainList"]
        return Resource(item["Id"], outputs=self.outputs(item),
                        live={**item, "Tags": ctx.tags(self), "fresh": True})

    def ensure(self, ctx: Context, res: Resource, apply: bool) -> list[str]:
        changes: list[str] = []
        r53 = ctx.aws.route53resolver
        wanted = self.domains()
        with translate(f"update DNS Firewall domain list {self.name}"):
            if res.live.get("fresh"):
                have = set()
            elif "domains" in res.live:  # read by `find`
                have = set(res.live["domains"])
            else:
                have = set(next_token_pages(r53.list_firewall_domains, "Domains", FirewallDomainListId=res.id))
            # AWS keeps domains with a trailing dot or not as given; compare without it.
            have = {d.rstrip(".") for d in have}
            added, removed = sorted(set(wanted) - have), sorted(have - set(wanted))
            if aspect(changes, apply, f"domains ({len(added)} to add, {len(removed)} to remove)",
                      bool(added or removed)):
                # One REPLACE when it fits in a call; otherwise the differences, additions first (a moment with a
                # name too many is safe; one with a needed name missing would break a workspace).
                if len(wanted) <= DOMAINS_PER_CALL:
                    r53.update_firewall_domains(FirewallDomainListId=res.id, Operation="REPLACE",
                                                Domains=list(wanted))
                else:
                    for operation, names in (("ADD", added), ("REMOVE", removed)):
                        for i in range(0, len(names), DOMAINS_PER_CALL):
                            r53.update_firewall_domains(FirewallDomainListId=res.id, Operation=operation,
                                                        Domains=names[i:i + DOMAINS_PER_CALL])
            _ensure_tags(ctx, self, res.outputs["arn"], res.live.get("Tags", {}), changes, apply)
        res.live.pop("fresh", None)
        return changes



class RuleGroup(_Named):
    kind = "DNS Firewall rule group"
    get_call, list_call, list_result = "get_firewall_rule_group", "list_firewall_rule_groups", "FirewallRuleGroups"
    id_param, answer, delete_call = "FirewallRuleGroupId", "FirewallRuleGroup", "delete_firewall_rule_group"

    def __init__(self, config: Config) -> None:
        self.config = config
        self.rules = design.rules(config.deployment, config.dns_firewall_mode)
        super().__init__(RULE_GROUP_KEY, design.rule_group_name(config.deployment),
                         tuple(domain_list_key(role) for role in (design.ALLOWED, design.BLOCKED)))

    def details(self) -> dict[str, Any]:
        return {"rules": ", ".join(f"{r.priority} {r.action} {r.domain_list}" for r in self.rules)}

    def read_recorded(self, ctx: Context, recorded: str) -> tuple[bool | None, dict[str, Any]]:
        """Its rules, which `ensure` compares: ListFirewallRules answers ResourceNotFoundException for a group that
        does not exist, and AWS deletes only a group without rules, so rules listed prove it exists and is not
        being deleted; an empty group is read with the Get."""
        rules = _rules(ctx, recorded)
        if rules is None:
            return False, {}
        return (True if rules else None), {"rules": rules}

    def create(self, ctx: Context) -> Resource:
        with translate(f"create DNS Firewall rule group {self.name}"):
            item = ctx.aws.route53resolver.create_firewall_rule_group(
                CreatorRequestId=client_token(ctx, self), Name=self.name,
                Tags=tag_list(ctx.tags(self)))["FirewallRuleGroup"]
        return Resource(item["Id"], outputs=self.outputs(item),
                        live={**item, "Tags": ctx.tags(self), "rules": []})

    def ensure(self, ctx: Context, res: Resource, apply: bool) -> list[str]:
        changes: list[str] = []
        r53 = ctx.aws.route53resolver
        lists = {r.domain_list: str(ctx.output(domain_list_key(r.domain_list))) for r in self.rules}
        with translate(f"update DNS Firewall rule group {self.name}"):
            rules = res.live.get("rules")  # read by `find`, or none in a group just made
            if rules is None:
                rules = list(next_token_pages(r53.list_firewall_rules, "FirewallRules", FirewallRuleGroupId=res.id))
            live = {r["FirewallDomainListId"]: r for r in rules}
            wanted = {lists[r.domain_list]: r for r in self.rules}
            for list_id in sorted(set(live) - set(wanted)):
                if aspect(changes, apply, f"unexpected rule {live[list_id].get('Name')}", True):
                    r53.delete_firewall_rule(FirewallRuleGroupId=res.id, FirewallDomainListId=list_id)
            # Priorities are unique in a group: settle changed ones after the removals, in priority order.
            for list_id, rule in sorted(wanted.items(), key=lambda item: item[1].priority):
                fields = rule.api_fields()
                have = live.get(list_id)
                if have is None:
                    if aspect(changes, apply, f"rule {rule.name} missing", True):
                        r53.create_firewall_rule(CreatorRequestId=client_token(ctx, self, list_id),
                                                 FirewallRuleGroupId=res.id, FirewallDomainListId=list_id, **fields)
                    continue
                wrong = sorted(k for k, v in fields.items() if have.get(k) != v)
                if "BlockResponse" in have and "BlockResponse" not in fields and have.get("Action") == "BLOCK":
                    wrong.append("BlockResponse")
                if aspect(changes, apply, f"rule {rule.name} ({', '.join(wrong)})", bool(wrong)):
                    r53.update_firewall_rule(FirewallRuleGroupId=res.id, FirewallDomainListId=list_id, **fields)
            _ensure_tags(ctx, self, res.outputs["arn"], res.live.get("Tags", {}), changes, apply)
        return changes

    def delete(self, ctx: Context, res: Resource) -> None:
        r53 = ctx.aws.route53resolver
        with translate(f"delete the rules of DNS Firewall rule group {self.name}"):  # AWS keeps a group with rules
            for rule in list(next_token_pages(r53.list_firewall_rules, "FirewallRules", FirewallRuleGroupId=res.id)):
                gone_if_missing(NOT_FOUND, r53.delete_firewall_rule, FirewallRuleGroupId=res.id,
                                FirewallDomainListId=rule["FirewallDomainListId"])
        super().delete(ctx, res)


class SpokeDnsFirewall(Step):
    """The rule group associated with one spoke VPC (mutation protection on), and that VPC failing closed."""

    kind = "DNS Firewall association"

    def __init__(self, config: Config, spoke: str) -> None:
        self.config = config
        self.spoke = spoke
        self.vpc_key = keys.spoke(spoke, "vpc")
        super().__init__(keys.spoke(spoke, "dns-firewall"), resource_name(config.deployment, spoke, "dns-firewall"),
                         (RULE_GROUP_KEY, self.vpc_key))

    def details(self) -> dict[str, Any]:
        return {"priority": design.ASSOCIATION_PRIORITY, "fail_open": "DISABLED", "mode": self.config.dns_firewall_mode}

    def find(self, ctx: Context) -> Resource | None:
        r53 = ctx.aws.route53resolver
        vpc_id = ctx.state.resource_id(self.vpc_key)
        group_id = ctx.state.resource_id(RULE_GROUP_KEY)
        if not vpc_id or not group_id:
            return None
        with translate(f"read the DNS Firewall association of {vpc_id}"):
            # The group's associations, listed once per command for every spoke. (The VPC's setting is read for
            # this VPC alone: ListFirewallConfigs pages 10 VPCs of the whole account at a time.)
            associations = ctx.reads.get(f"dns firewall associations {group_id}", lambda: list(next_token_pages(
                r53.list_firewall_rule_group_associations, "FirewallRuleGroupAssociations",
                FirewallRuleGroupId=group_id)))
            found = [a for a in associations if a.get("VpcId") == vpc_id and a.get("Status") != "DELETING"]
            if not found:
                return None
            config = r53.get_firewall_config(ResourceId=vpc_id)["FirewallConfig"]
        item = found[0]
        return Resource(item["Id"], outputs={"vpc": vpc_id}, live={**item, "FirewallConfig": config})

    def create(self, ctx: Context) -> Resource:
        r53 = ctx.aws.route53resolver
        vpc_id, group_id = ctx.output(self.vpc_key), ctx.output(RULE_GROUP_KEY)
        with translate(f"associate the DNS Firewall with {vpc_id}"):
            item = r53.associate_firewall_rule_group(
                CreatorRequestId=client_token(ctx, self, vpc_id, group_id), FirewallRuleGroupId=group_id,
                VpcId=vpc_id, Priority=design.ASSOCIATION_PRIORITY, Name=self.name, MutationProtection="ENABLED",
                Tags=tag_list(ctx.tags(self)))["FirewallRuleGroupAssociation"]
        return Resource(item["Id"], outputs={"vpc": vpc_id}, live={**item, "FirewallConfig": {}})

    def poll(self, ctx: Context, res: Resource) -> Resource | Pending:
        if res.live.get("Status") in ("COMPLETE", None):
            return res
        what = f"DNS Firewall association {res.id}"
        with translate(f"wait for the DNS Firewall association {res.id}"):
            return poll_once(res, what, lambda: _association(ctx, res, what, lambda a: (a or {}).get("Status")
                                                                == "COMPLETE"),
                             every=ASSOCIATION_POLL_SECONDS, deadline=ASSOCIATION_DEADLINE_SECONDS,
                             first=ASSOCIATION_FIRST_POLL_SECONDS)

    def wait(self, ctx: Context, res: Resource) -> Resource:
        return block(ctx, self.key, lambda: self.poll(ctx, res))

    def ensure(self, ctx: Context, res: Resource, apply: bool) -> list[str]:
        changes: list[str] = []
        r53 = ctx.aws.route53resolver
        vpc_id = ctx.output(self.vpc_key)
        with translate(f"update the DNS Firewall of {vpc_id}"):
            live = res.live
            moved = aspect(changes, apply, f"priority {live.get('Priority')} (should be "
                           f"{design.ASSOCIATION_PRIORITY})", live.get("Priority") != design.ASSOCIATION_PRIORITY)
            unprotected = aspect(changes, apply, "mutation protection off", live.get("MutationProtection") != "ENABLED")
            if moved and live.get("MutationProtection") == "ENABLED":
                # The protection refuses a change of priority: lifted for it, and put back by the same call below.
                r53.update_firewall_rule_group_association(FirewallRuleGroupAssociationId=res.id,
                                                           MutationProtection="DISABLED")
            if moved or unprotected:
                r53.update_firewall_rule_group_association(
                    FirewallRuleGroupAssociationId=res.id, Priority=design.ASSOCIATION_PRIORITY,
                    MutationProtection="ENABLED")
            fail_open = (live.get("FirewallConfig") or {}).get("FirewallFailOpen")
            if not live.get("FirewallConfig"):  # just created: read the VPC's setting now
                fail_open = r53.get_firewall_config(ResourceId=vpc_id)["FirewallConfig"].get("FirewallFailOpen")
            if aspect(changes, apply, f"fails open ({fail_open}); should fail closed", fail_open != "DISABLED"):
                r53.update_firewall_config(ResourceId=vpc_id, FirewallFailOpen="DISABLED")
        return changes

    def delete(self, ctx: Context, res: Resource) -> None:
        r53 = ctx.aws.route53resolver
        with translate(f"remove the DNS Firewall association {res.id}"):
            if res.live.get("MutationProtection") == "ENABLED":
                r53.update_firewall_rule_group_association(FirewallRuleGroupAssociationId=res.id,
                                                           MutationProtection="DISABLED")
            gone_if_missing(NOT_FOUND, r53.disassociate_firewall_rule_group, FirewallRuleGroupAssociationId=res.id)

    def wait_deleted(self, ctx: Context, res: Resource) -> None:
        # The rule group can be deleted only once no VPC is associated with it.
        what = f"DNS Firewall association {res.id} to go"
        with translate(f"wait for the DNS Firewall association {res.id} to go"):
            block(ctx, self.key, lambda: poll_once(res, what, lambda: _association(ctx, res, what,
                                                                                     lambda a: a is None),
                                                   every=ASSOCIATION_POLL_SECONDS,
                                                   deadline=ASSOCIATION_DEADLINE_SECONDS))


class QueryLogConfig(_Named):
    kind = "Resolver query logging"
    get_call, list_call = "get_resolver_query_log_config", "list_resolver_query_log_configs"
    list_result, id_param, answer = "ResolverQueryLogConfigs", "ResolverQueryLogConfigId", "ResolverQueryLogConfig"
    delete_call = "delete_resolver_query_log_config"

    kept: ClassVar[dict[str, str]] = {"arn": "Arn", "destination": "DestinationArn"}

    def __init__(self, config: Config) -> None:
        super().__init__(QUERY_LOG_CONFIG_KEY, design.query_log_config_name(config.deployment), (QUERY_LOG_GROUP_KEY,))

    def read_recorded(self, ctx: Context, recorded: str) -> tuple[bool | None, dict[str, Any]]:
        """A live association with a spoke's VPC (the spokes' read) proves it exists: AWS deletes only a
        configuration without associations. Its destination cannot change, so the recorded one still holds."""
        return (True if any(_live(a) for a in _query_log_associations(ctx, recorded)) else None), {}

    def create(self, ctx: Context) -> Resource:
        with translate(f"create Resolver query logging {self.name}"):
            item = ctx.aws.route53resolver.create_resolver_query_log_config(
                Name=self.name, DestinationArn=ctx.output(QUERY_LOG_GROUP_KEY, "arn"),
                CreatorRequestId=client_token(ctx, self), Tags=tag_list(ctx.tags(self)))["ResolverQueryLogConfig"]
        return Resource(item["Id"], outputs=self.outputs(item), live={**item, "Tags": ctx.tags(self)})

    def ensure(self, ctx: Context, res: Resource, apply: bool) -> list[str]:
        changes: list[str] = []
        destination = ctx.output(QUERY_LOG_GROUP_KEY, "arn")
        if res.live.get("DestinationArn") != destination:
            cannot_fix(changes, apply, f"Resolver query logging {self.name}",
                       f"logs to {res.live.get('DestinationArn')}, not {destination} (delete it, then `up`)")
        with translate(f"tag Resolver query logging {self.name}"):
            _ensure_tags(ctx, self, res.outputs["arn"], res.live.get("Tags", {}), changes, apply)
        return changes



class SpokeQueryLogging(Step):
    kind = "Resolver query logging association"

    def __init__(self, config: Config, spoke: str) -> None:
        self.vpc_key = keys.spoke(spoke, "vpc")
        super().__init__(keys.spoke(spoke, "dns-query-logging"), resource_name(config.deployment, spoke,
                                                                                "dns-query-logs"),
                         (QUERY_LOG_CONFIG_KEY, self.vpc_key))

    def find(self, ctx: Context, fresh: bool = False) -> Resource | None:
        """The association of this spoke's VPC; `fresh`: what is there now, not at the command's start."""
        vpc_id = ctx.state.resource_id(self.vpc_key)
        config_id = ctx.state.resource_id(QUERY_LOG_CONFIG_KEY)
        if not vpc_id or not config_id:
            return None
        with translate(f"read the query logging of {vpc_id}"):
            found = [a for a in _query_log_associations(ctx, config_id, fresh=fresh)
                     if a.get("ResourceId") == vpc_id and _live(a)]
        if not found:
            return None
        return Resource(found[0]["Id"], outputs={"vpc": vpc_id}, live=found[0])

    def create(self, ctx: Context) -> Resource:
        vpc_id = ctx.output(self.vpc_key)
        with translate(f"turn on query logging for {vpc_id}"):
            try:
                item = ctx.aws.route53resolver.associate_resolver_query_log_config(
                    ResolverQueryLogConfigId=ctx.output(QUERY_LOG_CONFIG_KEY),
                    ResourceId=vpc_id)["ResolverQueryLogConfigAssociation"]
            except ClientError as e:
                # Associated by our own attempt whose reply was lost (botocore retried it): adopt it.
                found = self.find(ctx, fresh=True) if error_code(e) == "InvalidRequestException" else None
                if found is None:
                    raise
                return found
        return Resource(item["Id"], outputs={"vpc": vpc_id}, live=item)

    def delete(self, ctx: Context, res: Resource) -> None:
        with translate(f"turn off query logging for {res.live.get('ResourceId')}"):
            gone_if_missing(NOT_FOUND, ctx.aws.route53resolver.disassociate_resolver_query_log_config,
                            ResolverQueryLogConfigId=res.live["ResolverQueryLogConfigId"],
                            ResourceId=res.live["ResourceId"])


def steps(config: Config) -> list[Step]:
    d = config.deployment
    firewall: list[Step] = [DomainList(config, design.ALLOWED), DomainList(config, design.BLOCKED),
                            RuleGroup(config)]
    firewall += [SpokeDnsFirewall(config, s.name) for s in config.spokes]
    if config.dns_firewall_mode == design.OFF:
        # Retired in reverse order of need: associations first, the lists last.
        reason = 'dns_firewall.mode = "off"'
        associations = tuple(s.key for s in firewall if isinstance(s, SpokeDnsFirewall))
        firewall = [Retired(s, associations if not isinstance(s, SpokeDnsFirewall) else (), reason) for s in firewall]
        firewall = _retire_in_order(firewall)
    logging: list[Step] = [LogGroup(QUERY_LOG_GROUP_KEY, design.query_log_group_name(d),
                                    config.firewall_log_retention_days), QueryLogConfig(config)]
    logging += [SpokeQueryLogging(config, s.name) for s in config.spokes]
    return [*firewall, *logging]


def _retire_in_order(retired: list[Step]) -> list[Step]:
    """Retired steps run in `up` order, so their `needs` are reversed: what depended on a step goes first."""
    rule_group = [s.key for s in retired if s.key == RULE_GROUP_KEY]
    ordered: list[Step] = []
    for step in retired:
        assert isinstance(step, Retired)
        if step.key.startswith(domain_list_key("")):
            ordered.append(Retired(step.step, tuple(rule_group), step.reason))
        else:
            ordered.append(step)
    return ordered
