"""Service Quotas and IAM policy simulation in the sandbox: what `provision preflight` asks and moto 5.2.5 lacks.

- Service Quotas: moto answers `GetServiceQuota` for a few `vpc` codes only. Here every quota preflight reads has
  AWS's default value, and a test can lower (or raise) one for an account and region with `set_quota`.
- IAM `SimulatePrincipalPolicy` does not exist in moto. Here every action is `allowed`, unless a test names it
  with `deny_actions` (then `implicitDeny`, as for an action no policy grants).

What a test sets lives on moto's backends, so moto's reset between tests clears it.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from moto.core.responses import ActionResult
from moto.iam.models import iam_backends
from moto.iam.responses import IamResponse
from moto.servicequotas.exceptions import NoSuchResource
from moto.servicequotas.models import ServiceQuotasBackend, servicequotas_backends
from moto.servicequotas.responses import ServiceQuotasResponse

_INSTALLED_MARKER = "_provisioner_sandbox_quotas"
_lock = threading.Lock()

# (service code, quota code) -> (quota name, AWS's default value)
DEFAULT_QUOTAS: dict[tuple[str, str], tuple[str, float]] = {
    ("vpc", "L-F678F1CE"): ("VPCs per Region", 5.0),
    ("ec2", "L-0263D0A3"): ("EC2-VPC Elastic IPs", 5.0),
    ("vpc", "L-FE5A380F"): ("NAT gateways per Availability Zone", 5.0),
    ("ec2", "L-A2478D36"): ("Transit gateways per account", 5.0),
    ("vpc", "L-29B6F2EB"): ("Interface and Gateway Load Balancer endpoints per VPC", 50.0),
    # The sandbox's own code: preflight finds the firewall quota by its name (ListServiceQuotas), not by code.
    ("network-firewall", "L-SANDBOX1"): ("Firewalls per account per Region", 5.0),
}


# Quotas given another value in every region (`provision sandbox --quota`); a region's own override wins.
_EVERYWHERE: dict[tuple[str, str], float] = {}


def _quota(backend: ServiceQuotasBackend, service: str, code: str) -> dict[str, Any]:
    name, value = DEFAULT_QUOTAS[(service, code)]
    value = _EVERYWHERE.get((service, code), value)
    value = getattr(backend, "provision_overrides", {}).get((service, code), value)
    return {"ServiceCode": service, "QuotaCode": code, "QuotaName": name, "Value": value, "Unit": "None",
            "Adjustable": True, "GlobalQuota": False,
            "QuotaArn": f"arn:aws:servicequotas:{backend.region_name}:{backend.account_id}:{service}/{code}"}


def _get_service_quota(self: ServiceQuotasBackend, service_code: str, quota_code: str) -> dict[str, Any]:
    if (service_code, quota_code) in DEFAULT_QUOTAS:
        return _quota(self, service_code, quota_code)
    return _ORIGINAL_GET(self, service_code, quota_code)


def _list_service_quotas(self: ServiceQuotasResponse) -> str:
    service = str(json.loads(self.body).get("ServiceCode"))
    quotas = [_quota(self.backend, s, c) for (s, c) in DEFAULT_QUOTAS if s == service]
    if not quotas:
        raise NoSuchResource
    return json.dumps({"Quotas": quotas})


def parse_quota(text: str) -> tuple[str, str, float]:
    """`SERVICE/CODE=VALUE` (`ec2/L-0263D0A3=2`), one of the quotas the sandbox answers; ValueError says why not."""
    where, _, value = text.partition("=")
    service, _, code = where.partition("/")
    known = ", ".join(f"{s}/{c} ({name})" for (s, c), (name, _) in DEFAULT_QUOTAS.items())
    if (service, code) not in DEFAULT_QUOTAS:
        raise ValueError(f"--quota {text}: not a quota the sandbox answers; use SERVICE/CODE=VALUE with one of: "
                         f"{known}")
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"--quota {text}: the value must be a number, as in {service}/{code}=2") from None
    if number < 0:
        raise ValueError(f"--quota {text}: a quota cannot be negative")
    return service, code, number


def set_quota_everywhere(service: str, code: str, value: float) -> None:
    """Give a quota another value in every region of the sandbox (`provision sandbox --quota`)."""
    with _lock:
        _EVERYWHERE[(service, code)] = float(value)


def set_quota(service: str, code: str, value: float, account_id: str = "123456789012",
              region: str = "eu-central-1") -> None:
    """Give a quota another value in the sandbox (a test lowering the Elastic IP quota, say)."""
    backend = servicequotas_backends[account_id][region]
    if not hasattr(backend, "provision_overrides"):
        backend.provision_overrides = {}  # type: ignore[attr-defined]
    backend.provision_overrides[(service, code)] = float(value)  # type: ignore[attr-defined]


def deny_actions(*actions: str, account_id: str = "123456789012") -> None:
    """Make the policy simulation answer `implicitDeny` for these actions (as `service:Action`)."""
    backend = iam_backends[account_id]["aws"]
    denied: set[str] = getattr(backend, "provision_denied", set())
    denied.update(a.lower() for a in actions)
    backend.provision_denied = denied  # type: ignore[attr-defined]


def _simulate_principal_policy(self: IamResponse) -> ActionResult:
    actions = self._get_param("ActionNames", [])
    denied: set[str] = getattr(self.backend, "provision_denied", set())
    results = [{"EvalActionName": action, "EvalResourceName": "*",
                "EvalDecision": "implicitDeny" if action.lower() in denied else "allowed",
                "MatchedStatements": [], "MissingContextValues": []} for action in actions]
    return ActionResult({"EvaluationResults": results, "IsTruncated": False})


def install() -> None:
    global _ORIGINAL_GET
    with _lock:
        if getattr(ServiceQuotasBackend, _INSTALLED_MARKER, False):
            return
        _ORIGINAL_GET = ServiceQuotasBackend.get_service_quota
        ServiceQuotasBackend.get_service_quota = _get_service_quota  # type: ignore[method-assign]
        ServiceQuotasResponse.list_service_quotas = _list_service_quotas  # type: ignore[attr-defined]
        IamResponse.simulate_principal_policy = _simulate_principal_policy  # type: ignore[attr-defined]
        setattr(ServiceQuotasBackend, _INSTALLED_MARKER, True)


_ORIGINAL_GET = ServiceQuotasBackend.get_service_quota
