"""Where the settings come from: the TOML file, the environment, and the state directory.

File first, then environment overrides (`PROVISION_DEPLOYMENT`, `PROVISION_REGION`, `DATABRICKS_ACCOUNT_ID`).
A config without a deployment name uses the generated name kept in the state directory (generated at the
first `up`).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, fields
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
from provisioner.state import generated_deployments

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
