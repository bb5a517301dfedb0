"""The deployment's settings: the TOML schema, defaults, and validation.

Everything a user can get wrong is checked here, before any cloud call, and reported as one
`ConfigError` line that names the setting and says how to fix it.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
import secrets
import string
import tomllib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from provisioner.design.regions import all_regions

DEFAULT_REGION = "eu-central-1"
DEFAULT_HUB_CIDR = "10.10.0.0/16"
DEFAULT_SPOKE = {"name": "main", "cidr": "10.173.0.0/16"}
# Exact package hosts: a leading-dot wildcard such as `.pypi.org` would also reach `upload.pypi.org`, a public
# write endpoint (docs/security.md, "Package hosts").
DEFAULT_EXTRA_FQDNS = ("pypi.org", "files.pythonhosted.org", "cran.r-project.org")
DNS_FIREWALL_MODES = ("block", "alert", "off")
SERVERLESS_EGRESS = ("restricted", "full")
# CloudWatch Logs accepts only these retention periods (PutRetentionPolicy).
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
                      2922, 3288, 3653)
POLICY_TYPES = ("customer", "restricted")
MAX_HUB_AZS = 4
# Databricks accepts workspace subnets with netmasks /17 to /26; spokes are split with 3 extra bits.
SPOKE_NEWBITS = 3
DATABRICKS_SUBNET_PREFIXES = range(17, 27)
RESERVED_TAG_KEYS = ("Name", "ManagedBy", "provisioner:deployment", "provisioner:component")

NAME_RE = re.compile(r"^[a-z]([a-z0-9-]*[a-z0-9])?$")
FQDN_RE = re.compile(r"^\.?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


class ConfigError(ValueError):
    """A setting is wrong. The message is one line naming the setting and the fix."""


@dataclass(frozen=True)
class Spoke:
    name: str
    cidr: str
    # Domains this spoke alone may reach, beside the deployment-wide `firewall.extra_allowed_fqdns`.
    extra_allowed_fqdns: tuple[str, ...] = ()


@dataclass(frozen=True)
class Config:
    """A validated deployment configuration."""

    deployment: str
    deployment_generated: bool
    region: str
    databricks_account_id: str | None
    spokes: tuple[Spoke, ...]
    hub_cidr: str
    hub_availability_zones: int
    tags: Mapping[str, str] = field(default_factory=dict)
    extra_allowed_fqdns: tuple[str, ...] = DEFAULT_EXTRA_FQDNS
    legacy_hive_metastore: bool = True
    firewall_log_retention_days: int = 365
    pat_lifetime_seconds: int = 86400
    crossaccount_policy_type: str = "restricted"
    root_bucket_versioning: bool = False
    credential_validation_timeout_seconds: int = 300
    dns_firewall_mode: str = "block"
    # Serverless compute's egress (an account network policy per spoke): "restricted" to the allowlist and the
    # spoke's root bucket, or "full".
    serverless_egress: str = "restricted"
    # Back-end PrivateLink (steps/privatelink.py; needs the Databricks Enterprise tier).
    private_link: bool = False
    private_link_public_access: bool = True
    # The hub's subnet split (cidr.py) kept from when its subnets were made, never set by the user: 0 for a hub not
    # made yet, whose split follows hub_availability_zones.
    hub_subnet_bits: int = 0

    @property
    def warnings(self) -> tuple[str, ...]:
        """Settings that are valid but weaken the deployment: said before `plan` and `up`, not refused."""
        found = []
        if self.hub_availability_zones == 1:
            found.append("hub_availability_zones = 1: all egress leaves through one NAT gateway and one firewall "
                         "endpoint, so an outage of that availability zone cuts every workspace off; use 2 or more")
        if self.dns_firewall_mode == "alert":
            found.append('dns_firewall.mode = "alert": DNS queries for names off the allowlist are logged, not '
                         "refused, so DNS stays a way out; use \"block\" once the logs are clean")
        elif self.dns_firewall_mode == "off":
            found.append('dns_firewall.mode = "off": the spokes resolve any name, so data can leave as DNS queries')
        if self.serverless_egress == "full":
            found.append('serverless.egress = "full": serverless compute runs in Databricks\' network, not behind '
                         "the firewall, and may reach any host on the internet")
        return tuple(found)


# The schema: section -> key -> (type, default). `None` as a section means the top level.
SCHEMA: dict[str | None, dict[str, tuple[type | tuple[type, ...], Any]]] = {
    None: {
        "deployment": (str, None),
        "region": (str, DEFAULT_REGION),
        "databricks_account_id": (str, None),
        "hub_cidr": (str, DEFAULT_HUB_CIDR),
        "hub_availability_zones": (int, 2),
        "spokes": (list, [DEFAULT_SPOKE]),
        "tags": (dict, {}),
    },
    "firewall": {
        "extra_allowed_fqdns": (list, list(DEFAULT_EXTRA_FQDNS)),
        "legacy_hive_metastore": (bool, True),
        "log_retention_days": (int, 365),
    },
    "workspace": {
        "pat_lifetime_seconds": (int, 86400),
        "crossaccount_policy_type": (str, "restricted"),
        "root_bucket_versioning": (bool, False),
        "credential_validation_timeout_seconds": (int, 300),
    },
    "dns_firewall": {
        "mode": (str, "block"),
    },
    "serverless": {
        "egress": (str, "restricted"),
    },
    "state": {
        "backend": (str, None),
    },
    # `private_link = true` at the top level is short for `[private_link] enabled = true` (TOML cannot have both
    # a key and a table of one name).
    "private_link": {
        "enabled": (bool, False),
        "public_access": (bool, True),
    },
}
SPOKE_KEYS = ("name", "cidr", "extra_allowed_fqdns")
REQUIRED_SPOKE_KEYS = ("name", "cidr")


def generate_deployment_name() -> str:
    alphabet = string.ascii_lowercase + string.digits
    return "demo" + "".join(secrets.choice(alphabet) for _ in range(6))


def parse_toml(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{source}: not valid TOML ({e}); fix the syntax "
                          "(`provision init` writes a template)") from e


def _suggest(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    return f"; did you mean `{close[0]}`?" if close else f"; known settings: {', '.join(sorted(known))}"


def _type_name(t: type | tuple[type, ...]) -> str:
    names = {str: "a string", int: "a whole number", bool: "true or false", list: "a list", dict: "a table"}
    return names.get(t, str(t)) if isinstance(t, type) else " or ".join(names[x] for x in t)


def _check_type(where: str, value: Any, expected: type | tuple[type, ...]) -> None:
    # bool is a subclass of int in Python; TOML keeps them apart, and so do we.
    if expected is int and isinstance(value, bool):
        raise ConfigError(f"{where} must be {_type_name(expected)}, not {value!r}")
    if not isinstance(value, expected):
        raise ConfigError(f"{where} must be {_type_name(expected)}, not {value!r}")


def _flatten(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Check keys and types against SCHEMA; return `section.key` -> value with defaults filled in."""
    top_known = [k for k in SCHEMA[None]] + [s for s in SCHEMA if s]
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in top_known:
            nested = [f"{s}.{k}" for s, keys in SCHEMA.items() if s for k in keys if k == key]
            hint = f"; `{key}` belongs in the [{nested[0].split('.')[0]}] table" if nested else _suggest(key, top_known)
            raise ConfigError(f"unknown setting `{key}`{hint}")
        if key in SCHEMA and key is not None:
            _check_type(f"[{key}]", value, dict)
            for sub, subvalue in value.items():
                known = list(SCHEMA[key])
                if sub not in known:
                    raise ConfigError(f"unknown setting `{key}.{sub}`{_suggest(sub, known)}")
                _check_type(f"{key}.{sub}", subvalue, SCHEMA[key][sub][0])
                values[f"{key}.{sub}"] = subvalue
        else:
            _check_type(key, value, SCHEMA[None][key][0])
            values[key] = value
    for section, keys in SCHEMA.items():
        for key, (_, default) in keys.items():
            values.setdefault(f"{section}.{key}" if section else key, default)
    return values


def _network(where: str, text: str) -> ipaddress.IPv4Network:
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError as e:
        raise ConfigError(f"{where} `{text}` is not a CIDR block; write it like 10.173.0.0/16") from e
    if not isinstance(net, ipaddress.IPv4Network):
        raise ConfigError(f"{where} `{text}` is IPv6; VPC primary CIDR blocks are IPv4, like 10.173.0.0/16")
    if str(net) != text:
        raise ConfigError(f"{where} `{text}` has host bits set; did you mean `{net}`?")
    if not net.is_private:
        raise ConfigError(f"{where} `{text}` is not a private range; use one inside 10.0.0.0/8, 172.16.0.0/12 "
                          "or 192.168.0.0/16")
    return net


def _name(where: str, value: str, max_len: int) -> str:
    if not NAME_RE.match(value) or "--" in value:
        raise ConfigError(f"{where} `{value}` must be lowercase letters, digits and single hyphens, starting with a "
                          "letter (it becomes part of S3 bucket and IAM role names)")
    if len(value) > max_len:
        raise ConfigError(f"{where} `{value}` is {len(value)} characters; at most {max_len} keep the names derived "
                          "from it within AWS limits (S3 bucket names: 63)")
    return value


def _spokes(raw: list[Any]) -> tuple[Spoke, ...]:
    if not raw:
        raise ConfigError("spokes is empty; add at least one [[spokes]] table with `name` and `cidr`")
    spokes = []
    for i, item in enumerate(raw):
        where = f"spokes[{i}]"
        _check_type(where, item, dict)
        for key in item:
            if key not in SPOKE_KEYS:
                raise ConfigError(f"unknown setting `{where}.{key}`{_suggest(key, list(SPOKE_KEYS))}")
        for key in REQUIRED_SPOKE_KEYS:
            if key not in item:
                raise ConfigError(f"{where} has no `{key}`; each spoke needs `name` and `cidr`")
            _check_type(f"{where}.{key}", item[key], str)
        extras = item.get("extra_allowed_fqdns", [])
        _check_type(f"{where}.extra_allowed_fqdns", extras, list)
        spokes.append(Spoke(name=item["name"], cidr=item["cidr"],
                            extra_allowed_fqdns=_fqdns(extras, f"{where}.extra_allowed_fqdns")))
    return tuple(spokes)


def _check_cidr_plan(hub_cidr: str, spokes: tuple[Spoke, ...], hub_azs: int) -> None:
    from provisioner.design.cidr import hub_newbits

    hub = _network("hub_cidr", hub_cidr)
    smallest_hub = 28 - hub_newbits(hub_azs)
    if hub.prefixlen < 16 or hub.prefixlen > smallest_hub:
        raise ConfigError(f"hub_cidr `{hub_cidr}` must be between /16 and /{smallest_hub}: AWS VPCs are /16 at most "
                          f"and the {hub_azs}-AZ hub splits it into subnets of at least /28")
    seen: dict[str, ipaddress.IPv4Network] = {"hub_cidr": hub}
    for i, spoke in enumerate(spokes):
        where = f"spokes[{i}].cidr"
        net = _network(where, spoke.cidr)
        subnet_prefix = net.prefixlen + SPOKE_NEWBITS
        if net.prefixlen < 16:
            raise ConfigError(f"{where} `{spoke.cidr}` is larger than a VPC can be: AWS VPCs are /16 at most, so use "
                              f"a /16 to /{DATABRICKS_SUBNET_PREFIXES[-1] - SPOKE_NEWBITS}")
        if subnet_prefix not in DATABRICKS_SUBNET_PREFIXES:
            lo, hi = 16, DATABRICKS_SUBNET_PREFIXES[-1] - SPOKE_NEWBITS
            raise ConfigError(f"{where} `{spoke.cidr}` would give /{subnet_prefix} workspace subnets; Databricks "
                              f"needs /17 to /26 and AWS VPCs are /16 at most, so use a /{lo} to /{hi}")
        for other_where, other in seen.items():
            if net.overlaps(other):
                raise ConfigError(f"{where} `{spoke.cidr}` overlaps {other_where} `{other}`; every spoke and the hub "
                                  "need their own address range")
        seen[where] = net


def _fqdns(raw: list[Any], setting: str = "firewall.extra_allowed_fqdns") -> tuple[str, ...]:
    out = []
    for i, item in enumerate(raw):
        where = f"{setting}[{i}]"
        _check_type(where, item, str)
        if not FQDN_RE.match(item):
            raise ConfigError(f"{where} `{item}` is not a domain name; write `example.com`, or `.example.com` for it "
                              "and all its subdomains")
        if len(item.lstrip(".")) > 253:
            raise ConfigError(f"{where} is {len(item)} characters long; a domain name has at most 253")
        if item not in out:
            out.append(item)
    return tuple(out)


def _tags(raw: Mapping[str, Any]) -> dict[str, str]:
    for key, value in raw.items():
        _check_type(f"tags.{key}", value, str)
        if key in RESERVED_TAG_KEYS or key.lower().startswith("aws:"):
            raise ConfigError(f"tags.{key} is set by provision itself (or reserved by AWS); choose another key")
        if len(key) > 128 or len(value) > 256:
            raise ConfigError(f"tags.{key} is too long; AWS allows 128-character keys and 256-character values")
    if len(raw) > 50 - len(RESERVED_TAG_KEYS):
        raise ConfigError(f"tags has {len(raw)} entries; AWS allows 50 tags a resource and provision sets "
                          f"{len(RESERVED_TAG_KEYS)}, so keep at most {50 - len(RESERVED_TAG_KEYS)}")
    return dict(raw)


def _private_link_shorthand(raw: Mapping[str, Any]) -> Mapping[str, Any]:
    value = raw.get("private_link")
    if isinstance(value, bool):
        return {**raw, "private_link": {"enabled": value}}
    if value is not None and not isinstance(value, dict):
        raise ConfigError(f"private_link must be true, false or a [private_link] table, not {value!r}")
    return raw


def build_config(raw: Mapping[str, Any], *, deployment: str | None = None, account_id: str | None = None,
                 region: str | None = None) -> Config:
    """Validate raw settings (a parsed TOML document) with overrides from the environment or flags.

    `deployment` is the name to use when the file sets none (a generated one, kept in the state file).
    """
    raw = _private_link_shorthand(raw)
    v = _flatten(raw)
    regions = all_regions()
    region_name = region or v["region"]
    if region_name not in regions:
        raise ConfigError(f"region `{region_name}` is not supported; use one of: {', '.join(sorted(regions))}")

    account = account_id or v["databricks_account_id"]
    if account is not None:
        try:
            if str(uuid.UUID(account)) != account.lower():
                raise ValueError(account)
        except ValueError as e:
            raise ConfigError(f"databricks_account_id `{account}` is not a UUID; copy it from the account console "
                              "(top right menu), like 0d4f7b3a-1c2e-4b5a-9f8e-7d6c5b4a3f2e") from e
        account = account.lower()

    if v["deployment"] is not None and not v["deployment"].strip():
        raise ConfigError("deployment is empty; name the deployment (lowercase letters, digits, hyphens), or remove "
                          "the line to have a name generated")
    generated = v["deployment"] is None
    name = v["deployment"] or deployment or generate_deployment_name()
    spokes = _spokes(v["spokes"])
    # Longest derived name: "<deployment>-<spoke>-rootbucket" must stay a valid 63-character bucket name.
    _name("deployment", name, 20)
    # It also starts the security group names (AWS refuses a GroupName starting with `sg-`) and the bucket names
    # (S3 refuses names starting with `sthree-` or `amzn-s3-demo-`).
    reserved = next((p for p in ("sg-", "sthree-", "amzn-s3-demo-") if name.startswith(p)), None)
    if reserved:
        raise ConfigError(f"deployment `{name}` starts with `{reserved}`, which AWS reserves for its own names "
                          "(security groups, S3 buckets); choose another name")
    names_seen: set[str] = set()
    for i, spoke in enumerate(spokes):
        # "<deployment>-<spoke>-rootbucket" is an S3 bucket (63 characters at most) and
        # "<deployment>-<spoke>-crossaccount" an IAM role (64 at most).
        _name(f"spokes[{i}].name", spoke.name,
              min(63 - len(name) - len("--rootbucket"), 64 - len(name) - len("--crossaccount")))
        if spoke.name in names_seen:
            raise ConfigError(f"spokes[{i}].name `{spoke.name}` is used twice; spoke names must be unique")
        names_seen.add(spoke.name)

    azs = v["hub_availability_zones"]
    available = len(regions[region_name].availability_zones)
    limit = min(MAX_HUB_AZS, available)
    if not 1 <= azs <= limit:
        raise ConfigError(f"hub_availability_zones = {azs} is out of range; {region_name} has {available} "
                          f"availability zones, so use 1 to {limit}")
    _check_cidr_plan(v["hub_cidr"], spokes, azs)

    retention = v["firewall.log_retention_days"]
    if retention not in LOG_RETENTION_DAYS:
        raise ConfigError(f"firewall.log_retention_days = {retention} is not a CloudWatch retention period; use one "
                          f"of {', '.join(map(str, LOG_RETENTION_DAYS))}")
    lifetime = v["workspace.pat_lifetime_seconds"]
    if not 300 <= lifetime <= 730 * 86400:
        raise ConfigError(f"workspace.pat_lifetime_seconds = {lifetime} is out of range; use 300 (5 minutes) to "
                          f"{730 * 86400} (two years)")
    policy_type = v["workspace.crossaccount_policy_type"]
    if policy_type not in POLICY_TYPES:
        raise ConfigError(f"workspace.crossaccount_policy_type `{policy_type}` is not one of: "
                          f"{', '.join(POLICY_TYPES)}")
    timeout = v["workspace.credential_validation_timeout_seconds"]
    if not 10 <= timeout <= 3600:
        raise ConfigError(f"workspace.credential_validation_timeout_seconds = {timeout} is out of range; use 10 to "
                          "3600 (default 300)")

    mode = v["dns_firewall.mode"]
    if mode not in DNS_FIREWALL_MODES:
        raise ConfigError(f"dns_firewall.mode `{mode}` is not one of: {', '.join(DNS_FIREWALL_MODES)} "
                          '(default "block")')

    egress = v["serverless.egress"]
    if egress not in SERVERLESS_EGRESS:
        raise ConfigError(f"serverless.egress `{egress}` is not one of: {', '.join(SERVERLESS_EGRESS)} "
                          '(default "restricted")')

    private_link = v["private_link.enabled"]
    if "public_access" in raw.get("private_link", {}) and not private_link:
        raise ConfigError("private_link.public_access is set but PrivateLink is off; add `enabled = true` to "
                          "[private_link] (or remove public_access)")
    if private_link and not regions[region_name].has_privatelink:
        with_services = sorted(r for r, row in regions.items() if row.has_privatelink)
        raise ConfigError(f"private_link: {region_name} has no Databricks PrivateLink endpoint services in the "
                          f"region table; use one of: {', '.join(with_services)}, or private_link = false")

    return Config(
        deployment=name,
        deployment_generated=generated,
        region=region_name,
        databricks_account_id=account,
        spokes=spokes,
        hub_cidr=v["hub_cidr"],
        hub_availability_zones=azs,
        tags=_tags(v["tags"]),
        extra_allowed_fqdns=_fqdns(v["firewall.extra_allowed_fqdns"]),
        legacy_hive_metastore=v["firewall.legacy_hive_metastore"],
        firewall_log_retention_days=retention,
        pat_lifetime_seconds=lifetime,
        crossaccount_policy_type=policy_type,
        root_bucket_versioning=v["workspace.root_bucket_versioning"],
        credential_validation_timeout_seconds=timeout,
        dns_firewall_mode=mode,
        serverless_egress=egress,
        private_link=private_link,
        private_link_public_access=v["private_link.public_access"],
    )


TEMPLATE = """\
# provision.toml: the settings of one Databricks-on-AWS deployment behind a hub-and-spoke firewall.
# Every setting is shown with its default. Uncomment and change what you need.
# Environment overrides: PROVISION_DEPLOYMENT, PROVISION_REGION, DATABRICKS_ACCOUNT_ID.

# Name of the deployment: prefixes every AWS and Databricks name. Lowercase letters, digits, hyphens.
# Default: "demo" + 6 random characters, generated at the first `provision up` and kept in the state file.
# deployment = "demo1a2b3c"

# AWS region (one with a Databricks control plane).
# region = "eu-central-1"

# Your Databricks account ID (a UUID, from the account console). Required for `up`, `down` and `status`.
# databricks_account_id = "00000000-0000-0000-0000-000000000000"

# The hub VPC's range, and how many availability zones it spans (one NAT and one firewall endpoint per AZ).
# hub_cidr = "10.10.0.0/16"
# hub_availability_zones = 2

# One spoke VPC per business unit, each with its own workspace. Ranges must not overlap each other or the hub.
# A /16 to /23 range: it is split into /19../26 workspace subnets, the sizes Databricks accepts.
# [[spokes]]
# name = "main"
# cidr = "10.173.0.0/16"
# Domains this spoke alone may reach (its CIDR only), beside [firewall] extra_allowed_fqdns.
# extra_allowed_fqdns = []

# Tags added to every AWS resource, beside Name, ManagedBy and provisioner:* which provision sets itself.
# [tags]
# CostCenter = "data-platform"

# [firewall]
# Domains the workspaces may reach beside the Databricks control plane. A leading dot allows subdomains.
# Exact host names by default: `.pypi.org` would also allow upload.pypi.org, a public write endpoint.
# extra_allowed_fqdns = ["pypi.org", "files.pythonhosted.org", "cran.r-project.org"]
# Allow TCP 3306 to the region's legacy Hive metastore (its current addresses only).
# legacy_hive_metastore = true
# How long CloudWatch keeps the firewall's ALERT and FLOW logs, the DNS query log and the VPC flow logs
# (a CloudWatch retention period). `provision down` keeps these log groups unless told `--delete-logs`.
# log_retention_days = 365

# [workspace]
# Lifetime of the personal access token created in each new workspace.
# pat_lifetime_seconds = 86400
# Cross-account IAM policy: "restricted" (instances, volumes and security-group changes scoped to this spoke's
# VPC, security group, region and AWS account) or "customer" (the same actions on any resource).
# crossaccount_policy_type = "restricted"
# Keep old object versions in the workspace root bucket.
# root_bucket_versioning = false
# How long to keep retrying while a new IAM role propagates ("Failed credentials validation checks").
# credential_validation_timeout_seconds = 300

# [dns_firewall]
# Route 53 Resolver DNS Firewall on every spoke: "block" answers NXDOMAIN for every name off the allowlist,
# "alert" only logs them (for a trial period), "off" leaves DNS open.
# mode = "block"

# [serverless]
# Serverless compute runs in Databricks' network, not behind the firewall. "restricted": an account network
# policy per spoke lets it reach only the allowlist (extra_allowed_fqdns, the deployment's and the spoke's) and
# the spoke's root bucket; "full": anywhere.
# egress = "restricted"

# [private_link]
# Back-end PrivateLink (needs the Databricks Enterprise tier): clusters reach the workspace's REST API and the
# secure cluster connectivity relay through interface endpoints in their spoke, not through the hub and firewall.
# Only in regions with Databricks endpoint services; set it before the first `up` (a workspace cannot be
# switched later). With it on, public_access (default true) says whether the workspace is also reachable from
# the internet (users' browsers, the API). A top-level `private_link` true or false is short for this table.
# enabled = false
"""
