"""Back-end PrivateLink (`private_link = true`; Databricks Enterprise tier): clusters reach the workspace's REST
API and the secure cluster connectivity relay through interface endpoints in their own spoke, not through the hub.

Owns, per spoke: a PrivateLink subnet per workspace AZ, with a route table of its own (the VPC's local route
only); a security group for the endpoints (in from the workspace group on 443, 2443, 6666 and 8443-8451; nothing
out); two interface endpoints with private DNS, to the region's Databricks workspace (REST API) and relay
endpoint services (design/regions.json); in the Databricks account, a registration of each endpoint and the
spoke's private access settings (`public_access_enabled` from `[private_link] public_access`, access level
ACCOUNT). The spoke's network configuration names the registrations (`vpc_endpoints.rest_api`,
`.dataplane_relay`) and its workspace takes the private access settings (steps/databricks.py).

Found by recorded ID, then by tags (AWS) or by name (Databricks). The endpoints are created with a ClientToken;
the security group and subnets once, then looked for by tags after a fault (docs/reliability.md); the
Databricks objects by their unique names. `down` deletes the other way: the workspace, the network
configuration, the registrations and settings, then the endpoints, their group, table and subnets.

Switching PrivateLink on or off for a deployment whose workspace exists is refused before anything is written
(`check_switch`): Databricks cannot take PrivateLink away from a workspace, and adding it to a running one needs
all its compute stopped and a new network configuration, whose subnets and security group cannot be those of the
one in use (docs/privatelink.md): `provision` does not do that in place.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from provisioner.aws.errors import CloudError, translate
from provisioner.context import Context
from provisioner.design import routes as rt
from provisioner.design.config import Config
from provisioner.design.layout import SpokeLayout, layout
from provisioner.design.naming import resource_name
from provisioner.design.security_group import Rule, privatelink_endpoint_rules
from provisioner.errors import UsageError
from provisioner.state import State
from provisioner.steps import keys
from provisioner.steps.base import Check, Resource, Step, aspect, cannot_fix
from provisioner.steps.databricks import AccountObject, calling
from provisioner.steps.spoke_network import InterfaceEndpoint, VpcEndpoint, WorkspaceSecurityGroup
from provisioner.steps.vpc import RouteTable, Subnet

# Which endpoint serves which part of the network configuration's `vpc_endpoints`, and the use Databricks
# reports for a registration of it (`use_case`).
WORKSPACE, RELAY = "workspace", "relay"
NETWORK_FIELD = {WORKSPACE: "rest_api", RELAY: "dataplane_relay"}
USE_CASE = {WORKSPACE: "WORKSPACE_ACCESS", RELAY: "DATAPLANE_RELAY_ACCESS"}
# A registration's `state` mirrors the AWS endpoint's ("derived from AWS"): usable once `available`.
REGISTRATION_READY = "available"
REGISTRATION_FAILED = ("rejected", "failed", "deleted", "deleting", "expired")
REGISTRATION_TIMEOUT = 10 * 60
# The AWS endpoint's states that are not a fault: accepted, or waiting for its registration to be accepted.
ENDPOINT_USABLE = ("available", "pendingacceptance")
ACCESS_LEVEL = "ACCOUNT"


def endpoint_key(spoke: str, which: str) -> str:
    return keys.spoke(spoke, f"{which}-endpoint")


def registration_key(spoke: str, which: str) -> str:
    return keys.spoke(spoke, f"{which}-endpoint-registration")


def private_access_key(spoke: str) -> str:
    return keys.spoke(spoke, "private-access-settings")


# -- AWS: subnets, route table, security group, endpoints ----------------------------------------------------


class EndpointSecurityGroup(WorkspaceSecurityGroup):
    """In from the spoke's workspace group on the Databricks ports, nothing else (AWS's allow-all egress goes)."""

    description = "Databricks PrivateLink endpoints"

    def __init__(self, config: Config, spoke: str) -> None:
        self.spoke = spoke
        self.rules = frozenset()  # they name the workspace group, known once it exists: `wanted_rules`
        Step.__init__(self, keys.spoke(spoke, "privatelink-security-group"),
                      resource_name(config.deployment, spoke, "privatelink-sg"),
                      (keys.spoke(spoke, "vpc"), keys.spoke(spoke, "security-group")))

    def details(self) -> dict[str, Any]:
        rules = sorted(privatelink_endpoint_rules("<workspace-sg>"))
        return {"rules": "; ".join(r.describe() for r in rules)}

    def wanted_rules(self, ctx: Context) -> frozenset[Rule]:
        return privatelink_endpoint_rules(ctx.output(keys.spoke(self.spoke, "security-group")))


class DatabricksEndpoint(InterfaceEndpoint):
    """An interface endpoint to one of the region's Databricks endpoint services, in the spoke's PrivateLink
    subnets, behind the endpoints' group, with private DNS on: inside the VPC the workspace and relay names
    resolve to it. Databricks' services take no endpoint policy: none is sent (AWS then attaches full access).

    AWS keeps it `pendingAcceptance` until it is registered with the Databricks account, whose endpoint service
    then accepts it ("Within AWS, your VPC endpoint stays in `pendingAcceptance` state until you register it",
    Account API, create VPC endpoint configuration): the step is done once the endpoint is made, and the
    registration's wait is the one for `available`."""

    available_waiter = "VpcEndpointCreated"

    def __init__(self, config: Config, spoke: SpokeLayout, which: str, service_name: str) -> None:
        self.which = which
        self.full_service_name = service_name
        self._offered: frozenset[str] | None = None
        self.azs = spoke.azs
        VpcEndpoint.__init__(self, config, spoke.name, f"{which}-endpoint", service_name,
                             (*(keys.spoke(spoke.name, "privatelink-subnet", az) for az in spoke.azs),
                              keys.spoke(spoke.name, "privatelink-security-group")))

    def service_name(self) -> str:
        return self.full_service_name

    def details(self) -> dict[str, Any]:
        return {**super().details(), "private_dns": True,
                "subnets": ", ".join(keys.spoke(self.spoke, "privatelink-subnet", az) for az in self.azs)}

    def policy(self, ctx: Context) -> dict[str, Any] | None:
        return None

    def outputs(self, item: Any) -> dict[str, Any]:
        return {"service": item.get("ServiceName"), "state": str(item.get("State", "")).lower()}

    def _subnets(self, ctx: Context) -> list[str]:
        """The PrivateLink subnets of the AZs the service is offered in (AWS refuses a subnet of another AZ; the
        region's services are not in every AZ everywhere: us-west-1, terraform-databricks-sra #216)."""
        offered = self._offered_azs(ctx)
        azs = [az for az in self.azs if az in offered]
        if not azs:
            raise CloudError(f"{self.name}: endpoint service {self.full_service_name} is offered in "
                             f"{', '.join(sorted(offered)) or 'no AZ'}, none of the spoke's AZs "
                             f"({', '.join(self.azs)}); set private_link = false for this region")
        return [ctx.output(keys.spoke(self.spoke, "privatelink-subnet", az)) for az in azs]

    def _offered_azs(self, ctx: Context) -> frozenset[str]:
        if self._offered is None:
            with translate(f"read VPC endpoint service {self.full_service_name}"):
                got = ctx.aws.ec2.describe_vpc_endpoint_services(ServiceNames=[self.full_service_name])
            self._offered = frozenset(az for d in got.get("ServiceDetails") or [] for az in d.get("AvailabilityZones")
                                      or [])
        return self._offered

    def _groups(self, ctx: Context) -> list[str]:
        return [ctx.output(keys.spoke(self.spoke, "privatelink-security-group"))]

    def ensure_placement(self, ctx: Context, res: Resource, apply: bool, changes: list[str],
                         modify: dict[str, Any]) -> None:
        # Waiting for its registration (`pendingAcceptance`) or usable; anything else (rejected, failed,
        # expired) Databricks will not accept.
        state = str(res.live.get("State", "")).lower()
        if state not in ENDPOINT_USABLE:
            cannot_fix(changes, apply, self.name, f"is {state or 'in no state'}, not available")
        super().ensure_placement(ctx, res, apply, changes, modify)


# -- Databricks: endpoint registrations, private access settings ---------------------------------------------


class EndpointRegistration(AccountObject):
    """The endpoint registered in the Databricks account (`/vpc-endpoints`), named `<deployment>-<spoke>-
    <workspace|relay>-vpce`. Databricks accepts only an endpoint that exists and is available; the registration
    is usable once its own `state` (AWS's, as Databricks last saw it) is `available`."""

    kind = "Databricks VPC endpoint"
    noun = "VPC endpoint registration"
    replace_on = ("name",)
    api, id_field, name_field = "vpc_endpoints", "vpc_endpoint_id", "vpc_endpoint_name"

    def __init__(self, config: Config, spoke: str, which: str) -> None:
        self.which = which
        super().__init__(config, spoke, registration_key(spoke, which),
                         resource_name(config.deployment, spoke, f"{which}-vpce"), (endpoint_key(spoke, which),))

    def details(self) -> dict[str, Any]:
        return {"endpoint": endpoint_key(self.spoke, self.which), "use": USE_CASE[self.which]}

    def resource(self, ctx: Context, obj: Any) -> Resource:
        use = getattr(obj.use_case, "value", obj.use_case)
        live = {"aws_vpc_endpoint_id": obj.aws_vpc_endpoint_id, "region": obj.region,
                "state": str(obj.state or "").lower(), "use_case": use}
        return Resource(obj.vpc_endpoint_id,
                        outputs={"name": self.name, "aws_vpc_endpoint_id": obj.aws_vpc_endpoint_id}, live=live)

    def wanted(self, ctx: Context) -> dict[str, Any]:
        return {"aws_vpc_endpoint_id": ctx.output(endpoint_key(self.spoke, self.which)), "region": self.config.region}

    def make(self, ctx: Context, wanted: dict[str, Any]) -> Any:
        return self.account(ctx).vpc_endpoints.create(vpc_endpoint_name=self.name, region=wanted["region"],
                                                      aws_vpc_endpoint_id=wanted["aws_vpc_endpoint_id"])

    def wait(self, ctx: Context, res: Resource) -> Resource:
        from provisioner.databricks.retry import WaitTimeout, wait_until

        if res.live.get("state") == REGISTRATION_READY:
            return res
        api = self.account(ctx).vpc_endpoints
        seen: dict[str, str] = {}

        def check() -> tuple[bool, Any]:
            from provisioner.databricks.errors import none_if_missing

            obj = none_if_missing(api.get, res.id)
            if obj is None:
                raise CloudError(f"Databricks VPC endpoint registration {self.name} ({res.id}) disappeared; run "
                                 "`provision up` again")
            state = str(obj.state or "").lower()
            if seen.get("state") != state:
                seen["state"] = state
                ctx.report(self.key, "waiting", f"registration {state or 'without a state yet'}")
            if state in REGISTRATION_FAILED:
                raise CloudError(f"Databricks VPC endpoint registration {self.name} is {state}: check AWS endpoint "
                                 f"{obj.aws_vpc_endpoint_id} (`provision status`)")
            return state == REGISTRATION_READY, obj

        with calling(f"wait for Databricks VPC endpoint registration {self.name}"):
            try:
                obj = wait_until(check, clock=ctx.clock, timeout_seconds=REGISTRATION_TIMEOUT,
                                 what=f"registration {self.name} to be available", scale=ctx.poll_scale)
            except WaitTimeout as e:
                raise CloudError(f"{e} (state {seen.get('state', 'unknown')}); run `provision up` again to keep "
                                 "waiting") from e
        return self.resource(ctx, obj)

    def ensure(self, ctx: Context, res: Resource, apply: bool) -> list[str]:
        changes: list[str] = []
        wanted = self.recorded(ctx, endpoint_key(self.spoke, self.which))
        have = res.live.get("aws_vpc_endpoint_id")
        self.immutable(changes, apply, [f"registers {have}, not {wanted}"] if wanted and have != wanted else [])
        if res.live.get("state") != REGISTRATION_READY:
            if apply:
                raise CloudError(f"Databricks VPC endpoint registration {self.name} is {res.live.get('state')}, not "
                                 "available")
            changes.append(f"state {res.live.get('state') or 'unknown'}, not available")
        return changes


class PrivateAccessSettings(AccountObject):
    """The spoke's private access settings (`<deployment>-<spoke>-pas`), given to its workspace: region, public
    access as configured, access level ACCOUNT (any registered endpoint of this account may reach the workspace).
    Unlike other account objects they can be replaced in place (PUT), so a changed `public_access` is fixed."""

    kind = "Databricks private access settings"
    noun = "private access settings"
    replace_on = ("name",)
    api, id_field, name_field = "private_access", "private_access_settings_id", "private_access_settings_name"

    def __init__(self, config: Config, spoke: str) -> None:
        super().__init__(config, spoke, private_access_key(spoke), resource_name(config.deployment, spoke, "pas"), ())

    def details(self) -> dict[str, Any]:
        return {"public_access": self.config.private_link_public_access, "level": ACCESS_LEVEL}

    def resource(self, ctx: Context, obj: Any) -> Resource:
        level = getattr(obj.private_access_level, "value", obj.private_access_level)
        live = {"region": obj.region, "public_access_enabled": bool(obj.public_access_enabled),
                "private_access_level": level}
        return Resource(obj.private_access_settings_id, outputs={"name": self.name}, live=live)

    def wanted(self, ctx: Context) -> dict[str, Any]:
        return {"region": self.config.region, "public_access_enabled": self.config.private_link_public_access,
                "private_access_level": ACCESS_LEVEL}

    def make(self, ctx: Context, wanted: dict[str, Any]) -> Any:
        from databricks.sdk.service.provisioning import PrivateAccessLevel

        return self.account(ctx).private_access.create(
            private_access_settings_name=self.name, region=wanted["region"],
            public_access_enabled=wanted["public_access_enabled"],
            private_access_level=PrivateAccessLevel(wanted["private_access_level"]))

    def ensure(self, ctx: Context, res: Resource, apply: bool) -> list[str]:
        from databricks.sdk.service.provisioning import PrivateAccessLevel
        from databricks.sdk.service.provisioning import PrivateAccessSettings as Settings

        changes: list[str] = []
        wanted = self.wanted(ctx)
        if res.live.get("region") != wanted["region"]:
            # Settings serve workspaces of one region; the workspace uses them, so they cannot move.
            self.immutable(changes, apply, [f"are for {res.live.get('region')}, not {wanted['region']}"])
            return changes
        differs = [f"{k} {res.live.get(k)}, not {v}" for k, v in wanted.items() if res.live.get(k) != v]
        if aspect(changes, apply, "; ".join(differs), bool(differs)):
            with calling(f"replace Databricks private access settings {self.name}"):
                self.account(ctx).private_access.replace(res.id, Settings(
                    private_access_settings_name=self.name, region=wanted["region"],
                    public_access_enabled=wanted["public_access_enabled"],
                    private_access_level=PrivateAccessLevel(wanted["private_access_level"])))
        return changes


# -- the family ----------------------------------------------------------------------------------------------


def spoke_steps(config: Config, spoke: SpokeLayout) -> list[Step]:
    s, d = spoke.name, config.deployment
    region = layout(config).region
    vpc = keys.spoke(s, "vpc")
    found: list[Step] = [Subnet(keys.spoke(s, "privatelink-subnet", az), resource_name(d, s, "privatelink", az), vpc,
                                cidr, az, "Databricks PrivateLink endpoints")
                         for az, cidr in zip(spoke.azs, spoke.cidrs.privatelink_subnets, strict=True)]
    found += [
        RouteTable(rt.privatelink_route_table(spoke), resource_name(d, s, "privatelink-rt")),
        EndpointSecurityGroup(config, s),
        DatabricksEndpoint(config, spoke, WORKSPACE, region.privatelink_workspace_service),
        DatabricksEndpoint(config, spoke, RELAY, region.privatelink_relay_service),
        EndpointRegistration(config, s, WORKSPACE),
        EndpointRegistration(config, s, RELAY),
        PrivateAccessSettings(config, s),
    ]
    return found


def steps(config: Config) -> list[Step]:
    if not config.private_link:
        return []
    return [step for spoke in layout(config).spokes for step in spoke_steps(config, spoke)]


def as_built(config: Config, state: State) -> Config:
    """The config `down` takes down: with PrivateLink on when the state file records any of its resources, even if
    the setting has since been turned off (else its endpoints would keep the spoke VPC from being deleted); and off
    when workspaces were made without it, even if the setting has since been turned on (else what only a deployment
    without PrivateLink has, the firewall's control-plane group, would be left behind)."""
    recorded = set(state.resources())
    built = {key for spoke in layout(config).spokes for key in _keys(spoke)} & recorded
    if config.private_link:
        workspaces = {keys.spoke(spoke.name, "workspace") for spoke in config.spokes} & recorded
        return dataclasses.replace(config, private_link=False) if workspaces and not built else config
    return dataclasses.replace(config, private_link=True) if built else config


def _keys(spoke: SpokeLayout) -> list[str]:
    s = spoke.name
    return [*(keys.spoke(s, "privatelink-subnet", az) for az in spoke.azs), keys.spoke(s, "privatelink-route-table"),
            keys.spoke(s, "privatelink-security-group"), *(endpoint_key(s, w) for w in (WORKSPACE, RELAY)),
            *(registration_key(s, w) for w in (WORKSPACE, RELAY)), private_access_key(s)]


def check_switch(config: Config, state: State) -> None:
    """Refuse (bad input, before anything is written) to switch PrivateLink on or off for a spoke whose workspace
    the state file records: Databricks cannot remove PrivateLink from a workspace, and adds it to a running one
    only through a new network configuration once all its compute is stopped, which `provision` does not do."""
    for spoke in config.spokes:
        if state.resource(keys.spoke(spoke.name, "workspace")) is None:
            _check_network_switch(config, state, spoke.name)
            continue
        has = state.resource(private_access_key(spoke.name)) is not None
        name = resource_name(config.deployment, spoke.name)
        if has and not config.private_link:
            raise UsageError(f"private_link is off, but workspace {name} has back-end PrivateLink, which Databricks "
                             "cannot take away from a workspace: set private_link = true again, or `provision down` "
                             "then `provision up` to make the workspace anew without it")
        if config.private_link and not has:
            raise UsageError(f"private_link = true, but workspace {name} exists without it: Databricks adds "
                             "PrivateLink to a running workspace only through a new network configuration once all "
                             "its compute is stopped, which provision does not do in place: set private_link = "
                             "false, or `provision down` then `provision up` to make the workspace anew with it")


def _check_network_switch(config: Config, state: State, spoke: str) -> None:
    """No workspace yet, but a network configuration made with PrivateLink on while it is now off, or the other way
    round: Databricks cannot change a network configuration, and `up` would stop on it after other writes."""
    network = state.resource(keys.spoke(spoke, "network"))
    if network is None or not network.get("spec_values"):
        return  # not made, or made by a run that stopped before saying how (the step itself compares then)
    had = "vpc_endpoints" in network["spec_values"]
    if had != config.private_link:
        name = resource_name(config.deployment, spoke, "network")
        raise UsageError(f"private_link is {'on' if config.private_link else 'off'}, but network configuration "
                         f"{name} was made {'without' if config.private_link else 'with'} it, and Databricks cannot "
                         "change a network configuration: revert private_link, or `provision down` then "
                         "`provision up`")


class PrivateLinkCheck(Check):
    """`status`: in every spoke, both endpoints are available with private DNS on, each is registered with
    Databricks, and the workspace's network configuration names those registrations, with the workspace's
    private access settings the spoke's own. Read from the clouds, by the IDs the state file records."""

    def __init__(self, config: Config) -> None:
        self.config = config
        super().__init__("privatelink/endpoints", "back-end PrivateLink endpoints registered and in use")

    def run(self, ctx: Context) -> list[str]:
        problems: list[str] = []
        for spoke in self.config.spokes:
            problems += [f"{spoke.name}: {p}" for p in self._spoke(ctx, spoke.name)]
        return problems

    def _spoke(self, ctx: Context, spoke: str) -> list[str]:
        from provisioner.databricks.errors import none_if_missing
        from provisioner.steps.ec2_common import VPC_ENDPOINT, describe_one

        problems: list[str] = []
        account = ctx.databricks
        registered: dict[str, str] = {}
        for which in (WORKSPACE, RELAY):
            endpoint_id = ctx.state.resource_id(endpoint_key(spoke, which))
            reg_id = ctx.state.resource_id(registration_key(spoke, which))
            if not endpoint_id or not reg_id:
                problems.append(f"the {which} endpoint or its registration is not recorded")
                continue
            with translate(f"read VPC endpoint {endpoint_id}"):
                item = describe_one(ctx.aws.ec2, VPC_ENDPOINT, endpoint_id)
            if item is None or str(item.get("State", "")).lower() != "available":
                problems.append(f"{which} endpoint {endpoint_id} is {item.get('State') if item else 'gone'}")
            elif not item.get("PrivateDnsEnabled"):
                problems.append(f"{which} endpoint {endpoint_id} has private DNS off")
            with calling(f"read Databricks VPC endpoint {reg_id}"):
                reg = none_if_missing(account.vpc_endpoints.get, reg_id)
            if reg is None or reg.aws_vpc_endpoint_id != endpoint_id:
                problems.append(f"{which} endpoint {endpoint_id} is not registered with Databricks")
            else:
                registered[NETWORK_FIELD[which]] = reg_id
        workspace_id = ctx.state.resource_id(keys.spoke(spoke, "workspace"))
        if not workspace_id:
            return [*problems, "no workspace recorded"]
        with calling(f"read Databricks workspace {workspace_id}"):
            ws = none_if_missing(account.workspaces.get, int(workspace_id))
            network = none_if_missing(account.networks.get, ws.network_id) if ws and ws.network_id else None
        if ws is None or network is None:
            return [*problems, "the workspace or its network configuration is gone"]
        named = network.vpc_endpoints
        for field, reg_id in registered.items():
            if reg_id not in (getattr(named, field, None) or []):
                problems.append(f"network configuration {network.network_name} does not name {reg_id} in "
                                f"vpc_endpoints.{field}")
        if ws.private_access_settings_id != ctx.state.resource_id(private_access_key(spoke)):
            problems.append(f"workspace {ws.workspace_name} has private access settings "
                            f"{ws.private_access_settings_id}, not the spoke's")
        return problems


def checks(config: Config) -> list[Check]:
    return [PrivateLinkCheck(config)] if config.private_link else []

