"""`provision preflight` (and the first thing `up` does): would `up` fail for a reason known in advance?

Each check reads, never writes, and gives one finding: the region and its AZs offer what the hub needs; the
Service Quotas cover what the plan creates beside what the account already uses; the operator may call every
action in docs/operator-policy.json (IAM policy simulation of the caller); the Databricks credentials sign in to
the account. A check that cannot be made (say, the caller may not simulate policies) is a warning, not a failure:
only what would make `up` fail stops it.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from botocore.exceptions import ConnectionError as AwsConnectionError

from provisioner.design.config import Config
from provisioner.design.layout import layout
from provisioner.engine import PlanItem
from provisioner.errors import CloudError, UsageError

OK, WARN, FAIL = "ok", "warn", "fail"
AWS_ERRORS = (ClientError, BotoCoreError)


@dataclass
class Finding:
    check: str
    result: str  # ok | warn | fail
    detail: str
    fix: str = ""

    def line(self) -> str:
        return f"{self.result:<4}  {self.check}: {self.detail}" + (f"; {self.fix}" if self.fix else "")


@dataclass(frozen=True)
class Quota:
    service: str
    code: str | None  # None: found by name (ListServiceQuotas)
    name: str
    default: float  # AWS's documented default, used only when Service Quotas cannot be read


# The quotas `up` can run into, with their Service Quotas codes.
VPCS = Quota("vpc", "L-F678F1CE", "VPCs per Region", 5)
ELASTIC_IPS = Quota("ec2", "L-0263D0A3", "EC2-VPC Elastic IPs", 5)
NAT_PER_AZ = Quota("vpc", "L-FE5A380F", "NAT gateways per Availability Zone", 5)
TRANSIT_GATEWAYS = Quota("ec2", "L-A2478D36", "Transit gateways per account", 5)
ENDPOINTS_PER_VPC = Quota("vpc", "L-29B6F2EB", "Interface and Gateway Load Balancer endpoints per VPC", 50)
FIREWALLS = Quota("network-firewall", None, "Firewalls per account per Region", 5)


@dataclass
class Needs:
    """What the plan creates, by quota."""

    vpcs: int = 0
    elastic_ips: int = 0
    transit_gateways: int = 0
    firewalls: int = 0
    nat_per_az: Counter[str] | None = None
    endpoints_per_new_vpc: int = 0


def needs(items: Sequence[PlanItem], config: Config) -> Needs:
    created = [i for i in items if i.action == "create"]
    kinds = Counter(i.kind for i in created)
    nat = Counter(i.key.rsplit("/", 1)[1] for i in created if i.kind == "NAT gateway")
    # A new spoke VPC holds its interface endpoints; the new hub VPC holds one firewall endpoint per AZ (Gateway
    # Load Balancer endpoints count against the same quota).
    per_vpc = Counter(i.key.split("/")[1] for i in created if i.kind == "VPC endpoint" and "s3-endpoint" not in i.key
                      and i.key.startswith("spoke/"))
    hub_endpoints = len(layout(config).hub_azs) if kinds["network firewall"] else 0
    return Needs(vpcs=kinds["VPC"], elastic_ips=kinds["Elastic IP"], transit_gateways=kinds["Transit Gateway"],
                 firewalls=kinds["network firewall"], nat_per_az=nat,
                 endpoints_per_new_vpc=max([hub_endpoints, *per_vpc.values()]))


def operator_actions(path: Path | None = None) -> list[str]:
    """Every action named in docs/operator-policy.json (wildcards cannot be simulated, so they are left out)."""
    text = path.read_text() if path is not None else _policy_text()
    doc = json.loads(text)
    actions: list[str] = []
    for statement in doc.get("Statement", []):
        if statement.get("Effect", "Allow") != "Allow":
            continue
        named = statement.get("Action", [])
        for action in [named] if isinstance(named, str) else named:
            if "*" not in action and action not in actions:
                actions.append(action)
    return actions


def _policy_text() -> str:
    here = Path(__file__).resolve().parent.parent / "docs" / "operator-policy.json"
    if here.exists():
        return here.read_text()
    return resources.files("provisioner").joinpath("operator-policy.json").read_text()


def _error_code(e: Exception) -> str:
    response = getattr(e, "response", None) or {}
    return str(response.get("Error", {}).get("Code", type(e).__name__))


def _fix(e: Exception, otherwise: str) -> str:
    """The fix for a failed read: AWS not reached at all is the network's or the endpoint's, whatever was asked."""
    if isinstance(e, AwsConnectionError):
        where = getattr(e, "kwargs", {}).get("endpoint_url")
        return (f"AWS could not be reached{f' at {where}' if where else ''}: check the network, and "
                "AWS_ENDPOINT_URL if it is set")
    return otherwise


class Preflight:
    def __init__(self, config: Config, aws: Any, databricks_check: Callable[[], object] | None = None) -> None:
        self.config = config
        self.aws = aws
        self.databricks_check = databricks_check

    def run(self, items: Sequence[PlanItem]) -> list[Finding]:
        """Every check, at once (each only reads; `up` waits for them all before its first write), reported in
        a fixed order."""
        need = needs(items, self.config)
        with ThreadPoolExecutor(max_workers=4, thread_name_prefix="preflight") as pool:
            region = pool.submit(self.region)
            quotas = pool.submit(self.quotas, need)
            permissions = pool.submit(self.permissions)
            databricks = pool.submit(self.databricks) if self.databricks_check is not None else None
            found = [region.result(), *quotas.result(), permissions.result()]
            if databricks is not None:
                found.append(databricks.result())
        return found

    # -- the region --------------------------------------------------------------------------------------------
    def region(self) -> Finding:
        check = f"region {self.config.region}"
        wanted = [h.az for h in layout(self.config).hub_azs]
        try:
            zones = self.aws.ec2.describe_availability_zones(
                Filters=[{"Name": "zone-type", "Values": ["availability-zone"]}])["AvailabilityZones"]
            self.aws.network_firewall.list_firewalls(MaxResults=1)
        except AWS_ERRORS as e:
            return Finding(check, FAIL, f"Network Firewall or EC2 does not answer there ({_error_code(e)})",
                           _fix(e, "choose a region that offers AWS Network Firewall"))
        available = {z["ZoneName"] for z in zones if z.get("State") == "available"}
        missing = [az for az in wanted if az not in available]
        if missing:
            return Finding(check, FAIL, f"availability zones {', '.join(missing)} are not available to this account",
                           "lower hub_availability_zones, or choose another region")
        return Finding(check, OK, f"Network Firewall answers; hub AZs {', '.join(wanted)} available")

    # -- quotas -----------------------------------------------------------------------------------------------
    def _quota_value(self, quota: Quota) -> tuple[float, str]:
        sq = self.aws.client("service-quotas")
        try:
            if quota.code is not None:
                quota_doc = sq.get_service_quota(ServiceCode=quota.service, QuotaCode=quota.code)["Quota"]
                return float(quota_doc["Value"]), ""
            pages = sq.get_paginator("list_service_quotas").paginate(ServiceCode=quota.service)
            for page in pages:
                for q in page["Quotas"]:
                    if q.get("QuotaName", "").lower().startswith(quota.name.lower().split(" per ")[0]):
                        return float(q["Value"]), ""
        except AWS_ERRORS as e:
            return float(quota.default), f" (Service Quotas unreadable: {_error_code(e)}; AWS's default assumed)"
        return float(quota.default), " (not listed by Service Quotas; AWS's default assumed)"

    def _quota(self, quota: Quota, used: int, need: int, where: str = "") -> Finding:
        limit, note = self._quota_value(quota)
        code = f" ({quota.service} {quota.code})" if quota.code else f" ({quota.service})"
        check = f"quota {quota.name}{code}{where}"
        detail = f"{used} used + {need} to create, quota {limit:g}{note}"
        if need and used + need > limit:
            return Finding(check, FAIL, detail, f"request an increase to {used + need} in the Service Quotas console, "
                           "or free some")
        return Finding(check, OK, detail)

    def quotas(self, need: Needs) -> list[Finding]:
        ec2 = self.aws.ec2
        try:
            vpcs = len(ec2.describe_vpcs()["Vpcs"])
            eips = len([a for a in ec2.describe_addresses()["Addresses"] if a.get("Domain", "vpc") == "vpc"])
            tgws = len([t for t in ec2.describe_transit_gateways()["TransitGateways"]
                        if t.get("State") not in ("deleted", "deleting")])
            nats = [n for n in ec2.describe_nat_gateways(
                Filters=[{"Name": "state", "Values": ["pending", "available"]}])["NatGateways"]]
            subnets = {s["SubnetId"]: s["AvailabilityZone"] for s in ec2.describe_subnets(
                Filters=[{"Name": "subnet-id", "Values": sorted({n["SubnetId"] for n in nats})}])["Subnets"]} \
                if nats else {}
            firewalls = len(self.aws.network_firewall.list_firewalls()["Firewalls"])
        except AWS_ERRORS as e:
            return [Finding("quotas", WARN, f"cannot read what the account uses ({_error_code(e)})",
                            _fix(e, "grant the read actions of docs/operator-policy.json"))]
        nat_used = Counter(subnets.get(n["SubnetId"], "") for n in nats)
        wanted: list[tuple[Quota, int, int, str]] = [(VPCS, vpcs, need.vpcs, ""),
                                                     (ELASTIC_IPS, eips, need.elastic_ips, "")]
        wanted += [(NAT_PER_AZ, nat_used[az], count, f" in {az}")
                   for az, count in sorted((need.nat_per_az or Counter()).items())]
        wanted += [(TRANSIT_GATEWAYS, tgws, need.transit_gateways, ""), (FIREWALLS, firewalls, need.firewalls, ""),
                   (ENDPOINTS_PER_VPC, 0, need.endpoints_per_new_vpc, " (a new VPC)")]
        with ThreadPoolExecutor(max_workers=len(wanted), thread_name_prefix="preflight-quota") as pool:
            return list(pool.map(lambda w: self._quota(*w), wanted))

    # -- permissions ----------------------------------------------------------------------------------------
    def permissions(self) -> Finding:
        check = "operator permissions (docs/operator-policy.json)"
        try:
            arn = principal_arn(self.aws.client("sts").get_caller_identity()["Arn"])
            actions = operator_actions()
            denied = []
            iam = self.aws.iam
            for start in range(0, len(actions), 50):
                result = iam.simulate_principal_policy(PolicySourceArn=arn, ActionNames=actions[start:start + 50])
                denied += [r["EvalActionName"] for r in result["EvaluationResults"] if r["EvalDecision"] != "allowed"]
        except (*AWS_ERRORS, OSError, ValueError) as e:
            return Finding(check, WARN, f"cannot simulate the caller's policies ({_error_code(e)})",
                           _fix(e, "grant iam:SimulatePrincipalPolicy and sts:GetCallerIdentity to check in advance"))
        if denied:
            shown = ", ".join(denied[:6]) + (f" and {len(denied) - 6} more" if len(denied) > 6 else "")
            return Finding(check, FAIL, f"{arn} may not call {shown}",
                           "attach docs/operator-policy.json to it (docs/real-account.md)")
        return Finding(check, OK, f"{arn} may call all {len(actions)} actions")

    # -- Databricks -----------------------------------------------------------------------------------------
    def databricks(self) -> Finding:
        check = f"Databricks account {self.config.databricks_account_id}"
        try:
            if self.databricks_check is not None:
                self.databricks_check()
        except (UsageError, CloudError) as e:
            return Finding(check, FAIL, str(e).split("\n")[0], "fix the Databricks credentials (docs/databricks.md)")
        return Finding(check, OK, "credentials sign in")


def principal_arn(caller: str) -> str:
    """The IAM ARN to simulate for the caller: an assumed role's session ARN names its role."""
    parts = caller.split(":")
    if len(parts) == 6 and parts[2] == "sts" and parts[5].startswith("assumed-role/"):
        role = parts[5].split("/")[1]
        return f"arn:{parts[1]}:iam::{parts[4]}:role/{role}"
    return caller
