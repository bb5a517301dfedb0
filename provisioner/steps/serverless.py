"""Serverless egress: an account network policy per spoke, bound to the spoke's workspace.

Serverless compute (SQL warehouses, notebooks, jobs, model serving) runs in Databricks' network, not in the
spoke, so the firewall never sees it. Its way out is governed by the account's network policies: with
`[serverless] egress = "restricted"` (the default) each spoke's policy is RESTRICTED_ACCESS and allows the
deployment's allowlist (`firewall.extra_allowed_fqdns` and the spoke's own `extra_allowed_fqdns`) and the
spoke's root bucket, nothing else; with `"full"` it is FULL_ACCESS.

One policy per spoke, always (docs/decisions.md): spokes are isolated from each other, and a policy shared by
every spoke would have to allow every spoke's root bucket and domains to each of them.

Owns: the policy `<deployment>-<spoke>-egress` (`spoke/s/network-policy`) and the workspace's binding to it
(`spoke/s/serverless-egress`). A policy can be changed in place (PUT), so a difference is fixed by `up`.
`down` binds the workspace back to the account's `default-policy`, then deletes the policy.
"""

from __future__ import annotations

import hashlib
from typing import Any

from provisioner.context import Context
from provisioner.databricks.errors import gone_if_missing, none_if_missing
from provisioner.design.config import Config, Spoke
from provisioner.design.naming import root_bucket_name
from provisioner.errors import CloudError
from provisioner.steps import keys
from provisioner.steps.base import Resource, aspect
from provisioner.steps.databricks import DatabricksStep, calling, may_be_name_conflict

DEFAULT_POLICY = "default-policy"
# network_policy_id: ^[a-zA-Z0-9_.-]{1,32}$ (Account API reference, network-policies).
MAX_POLICY_ID = 32


def policy_id(deployment: str, spoke: str) -> str:
    """`<deployment>-<spoke>-egress`, or `<deployment>-<hash of spoke>` where that exceeds 32 characters."""
    name = f"{deployment}-{spoke}-egress"
    if len(name) <= MAX_POLICY_ID:
        return name
    return f"{deployment}-{hashlib.sha256(spoke.encode()).hexdigest()[:8]}"


def allowed_domains(config: Config, spoke: Spoke) -> list[str]:
    """The spoke's allowlist as network policy destinations: a leading-dot domain (`.example.com`, the domain
    and its subdomains on the firewall) becomes `*.example.com` and `example.com`."""
    out: list[str] = []
    for fqdn in (*config.extra_allowed_fqdns, *spoke.extra_allowed_fqdns):
        for name in ((f"*{fqdn}", fqdn[1:]) if fqdn.startswith(".") else (fqdn,)):
            if name not in out:
                out.append(name)
    return out


def network_access(config: Config, spoke: Spoke) -> dict[str, Any]:
    """The policy's `egress.network_access`, as the Account API returns it (the SDK's dataclass shape)."""
    if config.serverless_egress == "full":
        return {"restriction_mode": "FULL_ACCESS"}
    access: dict[str, Any] = {"restriction_mode": "RESTRICTED_ACCESS"}
    domains = allowed_domains(config, spoke)
    if domains:
        access["allowed_internet_destinations"] = [
            {"destination": d, "internet_destination_type": "DNS_NAME"} for d in domains]
    access["allowed_storage_destinations"] = [
        {"bucket_name": root_bucket_name(config.deployment, spoke.name), "region": config.region,
         "storage_destination_type": "AWS_S3"}]
    return access


def _spoke(config: Config, name: str) -> Spoke:
    return next(s for s in config.spokes if s.name == name)


class NetworkPolicy(DatabricksStep):
    kind = "Databricks network policy"
    noun = "network policy"
    replace_on = ("name",)

    def __init__(self, config: Config, spoke: str) -> None:
        super().__init__(config, spoke, keys.spoke(spoke, "network-policy"), policy_id(config.deployment, spoke),
                         (keys.spoke(spoke, "root-bucket"),))

    def details(self) -> dict[str, Any]:
        return {"egress": self.config.serverless_egress}

    def wanted(self) -> dict[str, Any]:
        return network_access(self.config, _spoke(self.config, self.spoke))

    def resource(self, obj: Any) -> Resource:
        access = obj.egress.network_access.as_dict() if obj.egress and obj.egress.network_access else {}
        return Resource(obj.network_policy_id, outputs={"name": obj.network_policy_id}, live={"access": access})

    def sdk_policy(self) -> Any:
        from databricks.sdk.service.settings import (
            AccountNetworkPolicy,
            EgressNetworkPolicyNetworkAccessPolicy,
            NetworkPolicyEgress,
        )

        return AccountNetworkPolicy(network_policy_id=self.name, egress=NetworkPolicyEgress(
            network_access=EgressNetworkPolicyNetworkAccessPolicy.from_dict(self.wanted())))

    def find(self, ctx: Context) -> Resource | None:
        with calling(f"read Databricks network policy {self.name}"):
            obj = none_if_missing(self.account(ctx).network_policies.get_network_policy_rpc, self.name)
        return None if obj is None else self.resource(obj)

    def create(self, ctx: Context) -> Resource:
        api = self.account(ctx).network_policies
        with calling(f"create Databricks network policy {self.name}"):
            try:
                return self.resource(api.create_network_policy_rpc(self.sdk_policy()))
            except Exception as e:
                # A create sent again after its reply was lost: the policy of our ID is there; `ensure` makes it
                # what we want (a policy can be changed in place).
                found = self.find(ctx) if may_be_name_conflict(e) else None
                if found is None:
                    raise
                return found

    def ensure(self, ctx: Context, res: Resource, apply: bool) -> list[str]:
        changes: list[str] = []
        wanted = self.wanted()
        if aspect(changes, apply, f"egress {wanted['restriction_mode']}", _normal(res.live.get("access")) !=
                  _normal(wanted)):
            with calling(f"update Databricks network policy {self.name}"):
                self.account(ctx).network_policies.update_network_policy_rpc(self.name, self.sdk_policy())
        return changes

    def delete(self, ctx: Context, res: Resource) -> None:
        with calling(f"delete Databricks network policy {self.name}"):
            self.delete_in_use(ctx, self.account(ctx).network_policies.delete_network_policy_rpc, self.name)


def _normal(access: Any) -> Any:
    """Destinations compared as sets: the service need not keep their order."""
    if not isinstance(access, dict):
        return access
    return {k: sorted(map(repr, v)) if isinstance(v, list) else v for k, v in access.items()}


class WorkspacePolicyBinding(DatabricksStep):
    """The workspace's network option: which network policy its serverless compute follows."""

    kind = "Databricks workspace network option"
    noun = "workspace network option"

    def __init__(self, config: Config, spoke: str) -> None:
        self.policy = policy_id(config.deployment, spoke)
        super().__init__(config, spoke, keys.spoke(spoke, "serverless-egress"), f"{config.deployment}-{spoke}",
                         (keys.spoke(spoke, "workspace"), keys.spoke(spoke, "network-policy")))

    def details(self) -> dict[str, Any]:
        return {"network_policy": self.policy}

    def workspace_id(self, ctx: Context) -> int | None:
        recorded = self.recorded(ctx, keys.spoke(self.spoke, "workspace"))
        return int(recorded) if recorded and str(recorded).isdigit() else None

    def find(self, ctx: Context) -> Resource | None:
        workspace_id = self.workspace_id(ctx)
        if workspace_id is None:
            return None
        with calling(f"read the network option of Databricks workspace {self.name}"):
            got = none_if_missing(self.account(ctx).workspace_network_configuration.get_workspace_network_option_rpc,
                                  workspace_id)
        if got is None:
            return None
        # Bound to another policy (the default one, or someone else's): not ours yet; `create` binds it.
        if got.network_policy_id != self.policy:
            return None
        return Resource(str(workspace_id), outputs={"network_policy_id": got.network_policy_id},
                        live={"network_policy_id": got.network_policy_id})

    def bind(self, ctx: Context, workspace_id: int, policy: str) -> Any:
        from databricks.sdk.service.settings import WorkspaceNetworkOption

        return self.account(ctx).workspace_network_configuration.update_workspace_network_option_rpc(
            workspace_id, WorkspaceNetworkOption(workspace_id=workspace_id, network_policy_id=policy))

    def create(self, ctx: Context) -> Resource:
        workspace_id = self.workspace_id(ctx)
        if workspace_id is None:
            raise CloudError(f"workspace {self.name} is not recorded; run `provision up` again")
        with calling(f"bind Databricks workspace {self.name} to network policy {self.policy}"):
            got = self.bind(ctx, workspace_id, self.policy)  # a PUT: sending it twice is harmless
        return Resource(str(workspace_id), outputs={"network_policy_id": got.network_policy_id},
                        live={"network_policy_id": got.network_policy_id})

    def delete(self, ctx: Context, res: Resource) -> None:
        with calling(f"bind Databricks workspace {self.name} back to {DEFAULT_POLICY}"):
            gone_if_missing(self.bind, ctx, int(res.id), DEFAULT_POLICY)


def steps(config: Config) -> list[Any]:
    out: list[Any] = []
    for spoke in config.spokes:
        out += [NetworkPolicy(config, spoke.name), WorkspacePolicyBinding(config, spoke.name)]
    return out
