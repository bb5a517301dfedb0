"""Where the settings come from: the TOML file, the environment, and the state directory.

File first, then environment overrides (`PROVISION_DEPLOYMENT`, `PROVISION_REGION`, `DATABRICKS_ACCOUNT_ID`).
A config without a deployment name uses the generated name kept in the state directory (generated at the
first `up`).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, fields, replace
from pathlib import Path
from typing import Any

from provisioner.design.config import (
    Config,
    ConfigError,
    Spoke,
    build_config,
    generate_deployment_name,
    parse_toml,
)
from provisioner.state import State, generated_deployments

DEFAULT_CONFIG = "provision.toml"
DEFAULT_STATE_DIR = "state"


def read_raw(path: Path, explicit: bool) -> dict[str, Any]:
    if not path.exists():
        if explicit:
            raise ConfigError(f"config file {path} does not exist; run `provision init -c {path}` to write one")
        return {}
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror}") from e
    return parse_toml(text, str(path))


def load_config(path: Path, explicit: bool, state_dir: Path) -> Config:
    raw = read_raw(path, explicit)
    env_deployment = os.environ.get("PROVISION_DEPLOYMENT") or None
    if env_deployment is not None:
        raw = {**raw, "deployment": env_deployment}  # the environment overrides the file, as for the region
    fallback = None
    if raw.get("deployment") is None:
        generated = generated_deployments(state_dir) if state_dir.is_dir() else []
        if len(generated) > 1:
            raise ConfigError(f"{state_dir} holds several deployments with generated names ({', '.join(generated)}); "
                              "set `deployment` in the config (or PROVISION_DEPLOYMENT) to pick one")
        fallback = generated[0] if generated else generate_deployment_name()
    return build_config(raw, deployment=fallback, account_id=os.environ.get("DATABRICKS_ACCOUNT_ID") or None,
                        region=os.environ.get("PROVISION_REGION") or None)


HUB_SUBNET_KEYS = ("hub/tgw-subnet/", "hub/nat-subnet/", "hub/firewall-subnet/")


def with_hub_split(config: Config, state: State, fit: bool = False) -> Config:
    """The config as it applies to this deployment's hub: with the subnet split its subnets were made with
    (design/cidr.py), read from their recorded CIDRs, so a change in the number of hub AZs never moves the subnets
    of the AZs kept. A hub with no subnets yet gets the split of its AZ count. ConfigError when the AZs asked for
    no longer fit the hub's split; with `fit` (for `down`), as many as fit instead: the others never existed."""
    from provisioner.design.cidr import hub_azs_room, recorded_hub_newbits

    recorded = [(entry.get("outputs") or {}).get("cidr") or (entry.get("spec_values") or {}).get("cidr")
                for key, entry in state.resources().items() if key.startswith(HUB_SUBNET_KEYS)]
    bits = recorded_hub_newbits(config.hub_cidr, [str(c) for c in recorded if c])
    if bits is None:
        return config
    room = hub_azs_room(bits)
    if config.hub_availability_zones > room and fit:
        return replace(config, hub_subnet_bits=bits, hub_availability_zones=room)
    if config.hub_availability_zones > room:
        raise ConfigError(f"hub_availability_zones = {config.hub_availability_zones} does not fit the hub: its subnets "
                          f"were made with room for {room} AZs, which keep their addresses; use {room} or fewer, or "
                          f"`provision down` and `up` again to rebuild the hub for {config.hub_availability_zones}")
    return replace(config, hub_subnet_bits=bits)


def state_backend_url(path: Path, explicit: bool) -> str | None:
    """`[state] backend` of the config file (validated with the rest by `load_config`)."""
    value = read_raw(path, explicit).get("state", {}).get("backend")
    return str(value) if value else None


def fingerprint(config: Config) -> str:
    return hashlib.sha256(json.dumps(asdict(config), sort_keys=True, default=str).encode()).hexdigest()[:16]


def config_doc(config: Config) -> dict[str, Any]:
    """The config as the state file keeps it: what `up --prune` rebuilds the steps of removed parts from."""
    doc: dict[str, Any] = json.loads(json.dumps(asdict(config), default=str))
    return doc


def config_from_doc(doc: dict[str, Any]) -> Config:
    """The config a state file recorded (fields added since take their defaults; ones since removed are ignored)."""
    known = {f.name for f in fields(Config)}
    values = {k: v for k, v in doc.items() if k in known}
    values["spokes"] = tuple(Spoke(str(s["name"]), str(s["cidr"]), tuple(s.get("extra_allowed_fqdns") or ()))
                             for s in doc.get("spokes", ()))
    for name, value in list(values.items()):
        if isinstance(value, list):
            values[name] = tuple(value)
    return Config(**values)
