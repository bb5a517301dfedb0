"""Databricks clients: the account client, its credentials checked before anything is built, and workspace
clients for the personal access token.

Authentication uses the SDK's unified auth; the first of these that is set wins (so two set at once never
confuse the SDK):

1. OAuth machine-to-machine: `DATABRICKS_CLIENT_ID` and `DATABRICKS_CLIENT_SECRET` (a service principal that
   is an account admin). The recommended way.
2. A profile of `~/.databrickscfg` (or `DATABRICKS_CONFIG_FILE`) named by `DATABRICKS_CONFIG_PROFILE`.
3. `DATABRICKS_USERNAME` and `DATABRICKS_PASSWORD` (the Terraform guide's way), with a warning: Databricks
   retired password authentication on 2024-07-10.
4. The `DEFAULT` profile of the config file, when the file has one.

The account host is `DATABRICKS_HOST` (default https://accounts.cloud.databricks.com, or the profile's host);
the account ID comes from the config (`databricks_account_id`, or `DATABRICKS_ACCOUNT_ID`).

A workspace's URL is `PROVISION_WORKSPACE_URL_TEMPLATE` with `{deployment_name}` filled in; the default is the
real service's `https://{deployment_name}.cloud.databricks.com`. The sandbox sets it to its emulator's
`<url>/ws/{deployment_name}`.
"""

from __future__ import annotations

import configparser
import os
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provisioner.databricks.secrets import remember_secret, scrub
from provisioner.design.config import Config
from provisioner.errors import UsageError

DEFAULT_ACCOUNT_HOST = "https://accounts.cloud.databricks.com"
WORKSPACE_URL_TEMPLATE_VAR = "PROVISION_WORKSPACE_URL_TEMPLATE"
DEFAULT_WORKSPACE_URL_TEMPLATE = "https://{deployment_name}.cloud.databricks.com"
DEFAULT_CONFIG_FILE = "~/.databrickscfg"
# The credential check at start-up gives up after this long, so a wrong host fails in seconds, not after the
# SDK's 5-minute retry budget (which the real client keeps, for throttling and 5xx).
CHECK_RETRY_SECONDS = 20

BASIC_AUTH_WARNING = (
    "warning: authenticating with DATABRICKS_USERNAME/DATABRICKS_PASSWORD; Databricks retired password "
    "authentication for the account API on 2024-07-10, so expect it to be refused. Use a service principal: "
    "set DATABRICKS_CLIENT_ID and DATABRICKS_CLIENT_SECRET (its OAuth secret) instead."
)
NO_CREDENTIALS = (
    "no Databricks credentials found; set DATABRICKS_CLIENT_ID and DATABRICKS_CLIENT_SECRET (an account-admin "
    "service principal's OAuth secret), or DATABRICKS_CONFIG_PROFILE (a profile in ~/.databrickscfg)"
)

# Settings (and `~/.databrickscfg` keys) that are secrets.
_SECRET_SETTINGS = ("client_secret", "password", "token")


@dataclass(frozen=True)
class Auth:
    """Which authentication the environment asks for, as keyword arguments for the SDK's `Config`."""

    method: str  # "oauth-m2m", "profile" or "basic"
    source: str  # what the user set, named in messages
    settings: Mapping[str, Any] = field(default_factory=dict, repr=False)  # holds the secret: never in a repr

    def __post_init__(self) -> None:
        for name in _SECRET_SETTINGS:
            remember_secret(self.settings.get(name))

    def __repr__(self) -> str:
        shown = {k: ("***" if k in _SECRET_SETTINGS else v) for k, v in self.settings.items()}
        return f"Auth(method={self.method!r}, source={self.source!r}, settings={shown!r})"

    def sdk_kwargs(self) -> dict[str, Any]:
        return dict(self.settings)



def _env(environ: Mapping[str, str], name: str) -> str | None:
    return environ.get(name) or None


def _config_file(environ: Mapping[str, str]) -> Path:
    return Path(environ.get("DATABRICKS_CONFIG_FILE") or DEFAULT_CONFIG_FILE).expanduser()


def _read_profiles(path: Path) -> configparser.ConfigParser | None:
    if not path.is_file():
        return None
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path)
    except configparser.Error as e:
        raise UsageError(f"{path} is not a valid Databricks config file ({e.__class__.__name__}); fix it or unset "
                         "DATABRICKS_CONFIG_PROFILE") from None
    return parser


def _both(first: str | None, second: str | None, first_name: str, second_name: str, method: str,
          hint: str) -> None:
    """Credentials that come in pairs: one without the other is a UsageError naming the missing variable."""
    if not (first and second):
        missing = second_name if first else first_name
        raise UsageError(f"{missing} is not set; {method} needs both {first_name} and {second_name} ({hint})")


def resolve_auth(config: Config, environ: Mapping[str, str] | None = None) -> Auth:
    """Pick the authentication from the environment (module docstring); UsageError naming what to set."""
    env = os.environ if environ is None else environ
    account_id = config.databricks_account_id
    if not account_id:
        raise UsageError("databricks_account_id is not set; set it in the config file or export DATABRICKS_ACCOUNT_ID")
    host = _env(env, "DATABRICKS_HOST")
    client_id, client_secret = _env(env, "DATABRICKS_CLIENT_ID"), _env(env, "DATABRICKS_CLIENT_SECRET")
    if client_id or client_secret:
        _both(client_id, client_secret, "DATABRICKS_CLIENT_ID", "DATABRICKS_CLIENT_SECRET",
              "OAuth machine-to-machine", "the service principal's OAuth secret")
        return Auth("oauth-m2m", "DATABRICKS_CLIENT_ID/DATABRICKS_CLIENT_SECRET", {
            "host": host or DEFAULT_ACCOUNT_HOST, "account_id": account_id, "auth_type": "oauth-m2m",
            "client_id": client_id, "client_secret": client_secret})

    profile = _env(env, "DATABRICKS_CONFIG_PROFILE")
    if profile:
        return _profile_auth(env, profile, host, account_id, explicit=True)

    username, password = _env(env, "DATABRICKS_USERNAME"), _env(env, "DATABRICKS_PASSWORD")
    if username or password:
        _both(username, password, "DATABRICKS_USERNAME", "DATABRICKS_PASSWORD", "password authentication",
              "better: DATABRICKS_CLIENT_ID and DATABRICKS_CLIENT_SECRET")
        return Auth("basic", "DATABRICKS_USERNAME/DATABRICKS_PASSWORD", {
            "host": host or DEFAULT_ACCOUNT_HOST, "account_id": account_id, "auth_type": "basic",
            "username": username, "password": password})

    profiles = _read_profiles(_config_file(env))
    if profiles is not None and profiles.defaults():
        return _profile_auth(env, "DEFAULT", host, account_id, explicit=False)
    raise UsageError(NO_CREDENTIALS)


def _profile_auth(env: Mapping[str, str], profile: str, host: str | None, account_id: str, *,
                  explicit: bool) -> Auth:
    path = _config_file(env)
    profiles = _read_profiles(path)
    if profiles is None:
        raise UsageError(f"DATABRICKS_CONFIG_PROFILE={profile} but {path} does not exist; create the profile "
                         "(`databricks auth login --account-id ...`) or set DATABRICKS_CLIENT_ID and "
                         "DATABRICKS_CLIENT_SECRET")
    if profile != "DEFAULT" and not profiles.has_section(profile):
        raise UsageError(f"{path} has no profile [{profile}]; fix DATABRICKS_CONFIG_PROFILE (profiles there: "
                         f"{', '.join(profiles.sections()) or 'none'})")
    section = profiles.defaults() if profile == "DEFAULT" else profiles[profile]
    for name in _SECRET_SETTINGS:
        remember_secret(section.get(name))  # read by the SDK, not by us: scrub them from messages all the same
    settings: dict[str, Any] = {"profile": profile, "account_id": account_id, "config_file": str(path)}
    settings["host"] = host or section.get("host") or DEFAULT_ACCOUNT_HOST
    # The SDK also reads DATABRICKS_USERNAME/PASSWORD/TOKEN from the environment; with a profile's credentials
    # beside them and no auth_type it refuses ("more than one authorization method configured"). The profile
    # was chosen, so its credentials are the ones to use.
    if not section.get("auth_type"):
        if section.get("client_id") and section.get("client_secret"):
            settings["auth_type"] = "oauth-m2m"
        elif section.get("username") and section.get("password"):
            settings["auth_type"] = "basic"
    source = f"profile [{profile}] of {path}" if explicit else f"the DEFAULT profile of {path}"
    return Auth("profile", source, settings)


def workspace_url_template(environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    template = env.get(WORKSPACE_URL_TEMPLATE_VAR) or DEFAULT_WORKSPACE_URL_TEMPLATE
    if "{deployment_name}" not in template:
        raise UsageError(f"{WORKSPACE_URL_TEMPLATE_VAR}={template!r} has no {{deployment_name}}; use the default "
                         f"{DEFAULT_WORKSPACE_URL_TEMPLATE} (unset it) or the sandbox's <url>/ws/{{deployment_name}}")
    try:
        template.format(deployment_name="x")
    except (KeyError, IndexError, ValueError):
        raise UsageError(f"{WORKSPACE_URL_TEMPLATE_VAR}={template!r} may only contain the placeholder "
                         "{deployment_name}") from None
    return template


def workspace_url(deployment_name: str, environ: Mapping[str, str] | None = None) -> str:
    """The URL of the workspace with this deployment name (`https://<name>.cloud.databricks.com` by default)."""
    return workspace_url_template(environ).format(deployment_name=deployment_name)


def _build(auth: Auth, **extra: Any) -> Any:
    from databricks.sdk import AccountClient
    from databricks.sdk.config import Config as SdkConfig

    return AccountClient(config=SdkConfig(**auth.sdk_kwargs(), **extra))


def _first_line(message: str) -> str:
    """The SDK appends its whole configuration (`. Config: host=..., client_secret=***`): keep the cause."""
    return scrub(message.split(". Config:")[0].split(" Config:")[0].strip())


def check_credentials(auth: Auth) -> None:
    """One cheap authenticated call (list credential configurations): bad credentials become a UsageError."""
    from databricks.sdk.errors import (
        DeadlineExceeded,
        InternalError,
        PermissionDenied,
        RequestLimitExceeded,
        TemporarilyUnavailable,
        TooManyRequests,
        Unauthenticated,
    )
    from databricks.sdk.errors.base import DatabricksError

    from provisioner.errors import CloudError

    host, account = auth.settings.get("host"), auth.settings.get("account_id")
    try:
        client = _build(auth, retry_timeout_seconds=CHECK_RETRY_SECONDS)
        client.credentials.list()
    except Unauthenticated as e:
        raise UsageError(f"Databricks at {host} rejected the credentials from {auth.source} ({_first_line(str(e))}); "
                         "check them, or set DATABRICKS_CLIENT_ID and DATABRICKS_CLIENT_SECRET") from None
    except PermissionDenied as e:
        raise UsageError(f"the credentials from {auth.source} cannot use Databricks account {account} "
                         f"({_first_line(str(e))}); check databricks_account_id and that the principal is an "
                         "account admin") from None
    except ValueError as e:
        # Raised while configuring auth or fetching the OAuth token: wrong secret, unknown account, no OIDC.
        if "Invalid URL 'None'" in str(e):
            # OAuth found no discovery document: the host did not answer /.well-known/databricks-config.
            raise UsageError(f"cannot reach the Databricks account API at {host} (no answer from "
                             f"{host}/.well-known/databricks-config); check DATABRICKS_HOST (default "
                             f"{DEFAULT_ACCOUNT_HOST})") from None
        raise UsageError(f"cannot authenticate to Databricks at {host} with {auth.source}: {_first_line(str(e))}; "
                         "check the credentials, DATABRICKS_HOST and databricks_account_id") from None
    except (InternalError, TemporarilyUnavailable, TooManyRequests, RequestLimitExceeded, DeadlineExceeded) as e:
        # The service answered but is failing or throttling (after the SDK's own retries): a cloud failure, not
        # bad input (exit 1, and a rerun may well succeed).
        raise CloudError(f"the Databricks account API at {host} is failing ({_first_line(str(e))}); try again "
                         "later") from None
    except (DatabricksError, OSError, TimeoutError) as e:
        raise UsageError(f"cannot reach the Databricks account API at {host} ({_first_line(str(e))}); check "
                         "DATABRICKS_HOST (default https://accounts.cloud.databricks.com)") from None


def _warn_stderr(message: str) -> None:
    print(message, file=sys.stderr)


def account_client_factory(config: Config, warn: Callable[[str], None] = _warn_stderr) -> Callable[[], Any]:
    """Check the Databricks environment and credentials now (before any AWS call); return a factory that builds
    the `AccountClient` on first use. Missing or wrong credentials raise `UsageError` (exit 2)."""
    auth = resolve_auth(config)
    workspace_url_template()
    if auth.method == "basic" or auth.settings.get("auth_type") == "basic":  # the environment's, or a profile's
        warn(BASIC_AUTH_WARNING)
    check_credentials(auth)
    lock = threading.Lock()
    built: list[Any] = []

    def factory() -> Any:
        with lock:
            if not built:
                built.append(_build(auth))
            return built[0]

    return factory


# Credential attributes carried from the account client's configuration to a workspace client.
_CARRIED = ("auth_type", "client_id", "client_secret", "username", "password", "token", "profile", "config_file")


def workspace_client(account: Any, host: str) -> Any:
    """A `WorkspaceClient` for the workspace at `host`, authenticated as the account client is."""
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.config import Config as SdkConfig

    cfg = account.config
    carried = {name: getattr(cfg, name) for name in _CARRIED if getattr(cfg, name, None)}
    if cfg.auth_type in ("oauth-m2m", "basic"):
        carried.pop("profile", None)  # credentials are given: the profile's account host must not win
    return WorkspaceClient(config=SdkConfig(host=host, **carried))
