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
import math
import os
import socket
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provisioner.databricks.secrets import remember_secret, scrub
from provisioner.design.config import Config
from provisioner.errors import CloudError, UsageError

DEFAULT_ACCOUNT_HOST = "https://accounts.cloud.databricks.com"
WORKSPACE_URL_TEMPLATE_VAR = "PROVISION_WORKSPACE_URL_TEMPLATE"
DEFAULT_WORKSPACE_URL_TEMPLATE = "https://{deployment_name}.cloud.databricks.com"
DEFAULT_CONFIG_FILE = "~/.databrickscfg"
# The credential check at start-up (the sign-in included) retries throttling, 5xx and connection faults for this
# long, so an outage fails in seconds, not after the SDK's 5-minute retry budget; the command's own calls then
# get that budget (for throttling and 503).
CHECK_RETRY_SECONDS = 30
RUN_RETRY_SECONDS = 300
SIGN_IN_HTTP_TIMEOUT_SECONDS = 30
# The attribute of a checked `AccountClient` holding the workspaces its check listed.
CHECKED_WORKSPACES = "provision_checked_workspaces"

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

    class _AccountConfig(SdkConfig):
        _attributes = SdkConfig.attributes()  # the SDK's settings, which a subclass would not see by itself

        def _resolve_host_metadata(self) -> None:  # databricks-sdk 0.162 (pinned)
            # OAuth machine-to-machine is our sign-in (`_SignIn`), which knows the account's documented OIDC
            # endpoints: the host's metadata would be a request of every command for nothing. Other
            # authentication is the SDK's, with its metadata.
            if self.auth_type != "oauth-m2m":
                super()._resolve_host_metadata()

    return AccountClient(config=_AccountConfig(**auth.sdk_kwargs(), **extra))


def _first_line(message: str) -> str:
    """The SDK appends its whole configuration (`. Config: host=..., client_secret=***`): keep the cause."""
    return scrub(message.split(". Config:")[0].split(" Config:")[0].strip())


# -- signing in -----------------------------------------------------------------------------------------------


class SignInError(CloudError):
    """Signing in to Databricks failed. `transient`: throttling (429), a 5xx or a connection fault that outlasted
    the retries, which a rerun may well not meet; otherwise an answer the user must act on (a wrong secret, an
    unknown account, a host that is not Databricks). A CloudError, so a token refresh that fails mid-run fails
    its step like any other Databricks call."""

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(scrub(message))
        self.transient = transient


class _Transient(Exception):
    """One request to a sign-in endpoint met a fault worth another try."""


def _is_transient(e: BaseException) -> bool:
    return isinstance(e, _Transient)


def _causes(e: BaseException) -> Iterator[BaseException]:
    """`e` and everything it wraps: causes, contexts, and urllib3's `reason`."""
    seen: set[int] = set()
    todo = [e]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        wrapped = [current.__cause__, current.__context__, getattr(current, "reason", None),
                   *(a for a in current.args if isinstance(a, BaseException))]
        todo.extend(w for w in wrapped if isinstance(w, BaseException))


def _unresolvable(e: BaseException) -> bool:
    """The host name does not exist (not: DNS is unreachable for now, which is worth another try)."""
    missing = {socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)}
    return any(isinstance(c, socket.gaierror) and c.errno in missing for c in _causes(e))


class _SdkClock:
    """Our injectable clock as the SDK's `Clock` (`time()`, `sleep()`): the SDK's own retries of the account API
    wait on it too."""

    def __init__(self, clock: Any) -> None:
        self._clock = clock

    def time(self) -> float:
        return float(self._clock.now())

    def sleep(self, seconds: float) -> None:
        self._clock.sleep(seconds)


class _SignIn:
    """OAuth machine-to-machine sign-in to the account, for the SDK's `AccountClient` (its credentials strategy).

    The SDK's own sign-in cannot tell a fault that passes from a mistake: a throttled or failing token endpoint
    comes out as a ValueError without its status (read as bad credentials), and a throttled discovery document
    is retried for five minutes on a clock tests cannot move. Here the host's metadata (when the SDK could not
    read it), the OIDC discovery document and the token are fetched directly (the token from the endpoint
    Databricks documents for an account, `{host}/oidc/accounts/{account_id}/v1/token`, with no discovery request
    first; the discovery document is read when that endpoint is not found, or when a discovery URL is
    configured): 429, 5xx and connection faults
    are retried with backoff on the injectable clock until `deadline_seconds` have passed, and then reported as
    transient (`SignInError`, exit 1); any other answer is reported at once as the user's to fix (exit 2). The
    token is kept and renewed 40 s before it expires, so a command signs in once.

    Other authentication (a password, a profile with another auth type) is left to the SDK's default chain.
    """

    def __init__(self, auth: Auth, clock: Any, deadline_seconds: float) -> None:
        import requests

        self.auth, self.clock, self.deadline_seconds = auth, clock, deadline_seconds
        self.host = str(auth.settings.get("host") or DEFAULT_ACCOUNT_HOST).rstrip("/")
        self._http = requests.Session()
        self._lock = threading.Lock()
        self._token: Any = None
        self._token_url: str | None = None
        # The token endpoint is where Databricks documents it (no discovery request) until it answers 404.
        self._documented = False
        self._auth_type = "oauth-m2m"
        self._deadline: float | None = None

    # -- as the SDK's credentials strategy ------------------------------------------------------------------
    def auth_type(self) -> str:
        return self._auth_type

    def __call__(self, cfg: Any) -> Any:
        if cfg.auth_type != "oauth-m2m":
            from databricks.sdk.credentials_provider import DefaultCredentials

            default = DefaultCredentials()
            provider = default(cfg)
            self._auth_type = default.auth_type()
            return provider
        from databricks.sdk.credentials_provider import OAuthCredentialsProvider

        if cfg.discovery_url:
            self._token_url = self._token_endpoint(cfg)
        elif self._token_url is None:  # (set by `check`, whose token this provider then uses)
            self._token_url, self._documented = f"{self.host}/oidc/accounts/{cfg.account_id or ''}/v1/token", True

        def headers() -> dict[str, str]:
            token = self.token(cfg)
            return {"Authorization": f"{token.token_type or 'Bearer'} {token.access_token}"}

        return OAuthCredentialsProvider(headers, lambda: self.token(cfg).for_sdk())

    # -- the sign-in itself ---------------------------------------------------------------------------------
    def start(self) -> None:
        """The credential check begins: its retries, all together, stop `deadline_seconds` from now."""
        self._deadline = self.clock.now() + self.deadline_seconds

    def finish(self) -> None:
        """Later renewals each get `deadline_seconds` of their own."""
        self._deadline = None

    def token(self, cfg: Any) -> Any:
        with self._lock:
            if self._token is None or self._token.expired:
                self._token = self._retrying(f"cannot reach the Databricks account API at {self.host} to sign in",
                                             lambda: self._fetch_token(cfg))
            return self._token

    def _retrying(self, what: str, attempt: Callable[[], Any]) -> Any:
        from provisioner.databricks.retry import Condition, call_with_retry

        deadline = self._deadline if self._deadline is not None else self.clock.now() + self.deadline_seconds
        try:
            return call_with_retry(attempt, condition=Condition("a transient sign-in fault", _is_transient),
                                   clock=self.clock, deadline_seconds=max(0.0, deadline - self.clock.now()),
                                   initial=1.0, maximum=10.0)
        except _Transient as e:
            from provisioner.databricks.retry import duration

            raise SignInError(f"{what} ({e}, still after {duration(self.deadline_seconds)} of retries): a transient "
                              "fault of the network or of Databricks' sign-in service; rerun the command to resume "
                              f"(and if DATABRICKS_HOST is wrong, fix it: the default is {DEFAULT_ACCOUNT_HOST})",
                              transient=True) from None

    def _request(self, method: str, url: str, **kwargs: Any) -> Any:
        """One request; `_Transient` for what may pass, `SignInError` for a host name that does not exist."""
        import requests

        try:
            response = self._http.request(method, url, timeout=SIGN_IN_HTTP_TIMEOUT_SECONDS, **kwargs)
        except requests.RequestException as e:
            if _unresolvable(e):
                raise SignInError(f"cannot reach the Databricks account API at {self.host}: its host name does not "
                                  f"resolve; check DATABRICKS_HOST (default {DEFAULT_ACCOUNT_HOST})",
                                  transient=False) from None
            kind = "no answer in time" if isinstance(e, requests.Timeout) else "cannot connect"
            raise _Transient(f"{kind} to {url}") from None
        if response.status_code == 429 or response.status_code >= 500:
            raise _Transient(f"{url} answered HTTP {response.status_code}")
        return response

    def _json(self, response: Any) -> dict[str, Any]:
        try:
            doc = response.json()
        except ValueError:
            doc = None
        return doc if isinstance(doc, dict) else {}

    def _discovery_url(self, cfg: Any) -> str:
        """The account's OIDC discovery document: as configured, else where Databricks documents it for an
        account host (`{host}/oidc/accounts/{account_id}/.well-known/oauth-authorization-server`), without
        reading the host's metadata first."""
        if cfg.discovery_url:
            return str(cfg.discovery_url)
        return f"{self.host}/oidc/accounts/{cfg.account_id or ''}/.well-known/oauth-authorization-server"

    def _metadata_discovery_url(self, cfg: Any) -> str:
        """The discovery document's URL as the host's metadata gives it; a SignInError when the host serves no
        Databricks account metadata (a wrong DATABRICKS_HOST)."""
        url = f"{self.host}/.well-known/databricks-config"
        response = self._request("GET", url)
        oidc = self._json(response).get("oidc_endpoint") if response.ok else None
        if not oidc:
            raise SignInError(f"cannot reach the Databricks account API at {self.host} ({url} answered HTTP "
                              f"{response.status_code}, not a Databricks account host's metadata); check "
                              f"DATABRICKS_HOST (default {DEFAULT_ACCOUNT_HOST})", transient=False)
        account = str(cfg.account_id or "")
        return f"{str(oidc).replace('{account_id}', account).rstrip('/')}/.well-known/oauth-authorization-server"

    def _token_endpoint(self, cfg: Any) -> str:
        def attempt() -> str:
            url = self._discovery_url(cfg)
            response = self._request("GET", url)
            if response.status_code == 404 and not cfg.discovery_url:
                # Not where Databricks documents it: the host's metadata tells a wrong host (an error naming
                # DATABRICKS_HOST) from an unknown account, or says where the document is.
                metadata_url = self._metadata_discovery_url(cfg)
                if metadata_url != url:
                    url = metadata_url
                    response = self._request("GET", url)
            endpoint = self._json(response).get("token_endpoint") if response.ok else None
            if response.status_code == 404:
                raise SignInError(f"Databricks at {self.host} knows no account {cfg.account_id} (HTTP 404 from its "
                                  "OIDC discovery document); check databricks_account_id (or DATABRICKS_ACCOUNT_ID)",
                                  transient=False)
            if not endpoint:
                raise SignInError(f"cannot sign in to Databricks at {self.host}: {url} answered HTTP "
                                  f"{response.status_code} without a token endpoint; check DATABRICKS_HOST and "
                                  "databricks_account_id", transient=False)
            return str(endpoint)

        return str(self._retrying(f"cannot reach the Databricks account API at {self.host} to sign in", attempt))

    def _fetch_token(self, cfg: Any) -> Any:
        """POST the client credentials to the token endpoint (the SDK's ClientCredentials, with the status kept)."""
        from datetime import datetime, timedelta

        params = {"grant_type": "client_credentials", "scope": cfg.get_scopes_as_string()}
        if cfg.authorization_details:
            params["authorization_details"] = cfg.authorization_details
        if cfg.group_id:
            params["assume_group"] = cfg.group_id
        assert self._token_url is not None
        response = self._request("POST", self._token_url, data=params, auth=(cfg.client_id, cfg.client_secret))
        if response.status_code == 404 and self._documented:
            # Not where Databricks documents it: the discovery document says where it is, or why there is none
            # (a wrong host, an unknown account).
            self._documented = False
            self._token_url = self._token_endpoint(cfg)
            response = self._request("POST", self._token_url, data=params, auth=(cfg.client_id, cfg.client_secret))
        doc = self._json(response)
        if not response.ok or "access_token" not in doc:
            code = doc.get("error") or doc.get("errorCode") or f"HTTP {response.status_code}"
            summary = str(doc.get("error_description") or doc.get("errorSummary") or "").replace("\r\n", " ")
            raise SignInError(f"cannot authenticate to Databricks at {self.host} with {self.auth.source}: {code}"
                              f"{': ' + summary if summary else ''}; check the credentials, DATABRICKS_HOST and "
                              "databricks_account_id", transient=False)
        remember_secret(str(doc["access_token"]))
        expiry = datetime.now() + timedelta(seconds=int(doc.get("expires_in") or 3600))
        return _Token(access_token=str(doc["access_token"]), token_type=str(doc.get("token_type") or "Bearer"),
                      refresh_token=doc.get("refresh_token"), expiry=expiry)

    # -- the credential check, without the SDK ----------------------------------------------------------------
    def check(self) -> list[dict[str, Any]]:
        """Sign in and list the account's workspaces with plain HTTP (no SDK: its import is most of a second of
        CPU, which a command need not spend before its first step): proof that the credentials work for this
        account. What the user must fix raises `SignInError`, transient or not as the answer says."""
        cfg = _CheckSettings(self.auth.settings)
        self._token_url, self._documented = f"{self.host}/oidc/accounts/{cfg.account_id}/v1/token", True
        url = f"{self.host}/api/2.0/accounts/{cfg.account_id}/workspaces"

        def attempt() -> list[dict[str, Any]]:
            token = self.token(cfg)
            response = self._request("GET", url, headers={"Authorization": f"{token.token_type} {token.access_token}"})
            doc = response.json() if response.ok else self._json(response)
            if response.ok and isinstance(doc, list):
                return doc
            message = _first_line(str(doc.get("message") or doc.get("error") or f"HTTP {response.status_code}")) \
                if isinstance(doc, dict) else f"HTTP {response.status_code}"
            source, account = self.auth.source, cfg.account_id
            if response.status_code == 401:
                raise SignInError(f"Databricks at {self.host} rejected the credentials from {source} ({message}); "
                                  "check them, or set DATABRICKS_CLIENT_ID and DATABRICKS_CLIENT_SECRET",
                                  transient=False)
            if response.status_code == 403:
                raise SignInError(f"the credentials from {source} cannot use Databricks account {account} "
                                  f"({message}); check databricks_account_id and that the principal is an account "
                                  "admin", transient=False)
            raise SignInError(f"the Databricks account API at {self.host} refused the check ({message}); check "
                              f"DATABRICKS_HOST (default {DEFAULT_ACCOUNT_HOST}) and databricks_account_id",
                              transient=False)

        return list(self._retrying(f"the Databricks account API at {self.host} cannot be reached", attempt))


@dataclass
class _Token:
    """An OAuth token as the sign-in keeps it (the SDK's `Token` is made from it when the SDK asks)."""

    access_token: str
    token_type: str
    refresh_token: Any
    expiry: Any

    @property
    def expired(self) -> bool:
        from datetime import datetime, timedelta

        return bool(self.expiry <= datetime.now() + timedelta(seconds=40))

    def for_sdk(self) -> Any:
        from databricks.sdk.oauth import Token

        return Token(access_token=self.access_token, token_type=self.token_type, refresh_token=self.refresh_token,
                     expiry=self.expiry)


class _CheckSettings:
    """What the sign-in reads of the SDK's configuration, from the environment's OAuth settings (the check runs
    before the SDK is loaded)."""

    discovery_url = None
    authorization_details = None
    group_id = None

    def __init__(self, settings: Mapping[str, Any]) -> None:
        self.account_id = str(settings.get("account_id") or "")
        self.client_id = settings.get("client_id")
        self.client_secret = settings.get("client_secret")

    @staticmethod
    def get_scopes_as_string() -> str:
        return "all-apis"


def check_credentials(auth: Auth, clock: Any = None) -> Any:
    """Sign in and make one authenticated call (list the account's workspaces, which the command's steps then
    share as `CHECKED_WORKSPACES` on the client, so the check costs no request of its own); return the
    signed-in `AccountClient`. What the user must fix raises UsageError (exit 2); a fault that persisted past
    `CHECK_RETRY_SECONDS` of retries raises CloudError (exit 1: a rerun may succeed).

    `clock` (default: the context's `Clock`) times the retries: tests pass time without waiting."""
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

    from provisioner.context import Clock

    clock = clock if clock is not None else Clock()
    host, account = auth.settings.get("host"), auth.settings.get("account_id")
    transient = "a transient fault; rerun the command to resume (if it persists: https://status.databricks.com)"
    sign_in = _SignIn(auth, clock, CHECK_RETRY_SECONDS)
    sign_in.start()
    try:
        # The SDK's own retries (throttling and 503 from the account API, connection faults) get the same budget;
        # they wait on `clock` too, except its best-effort read of the host's metadata while it configures.
        # (Whole seconds: the SDK reads the setting as an int, and 0 as its 300 s default.)
        client = _build(auth, retry_timeout_seconds=max(1, math.ceil(CHECK_RETRY_SECONDS)), clock=_SdkClock(clock),
                        credentials_strategy=sign_in)
        setattr(client, CHECKED_WORKSPACES, list(client.workspaces.list()))
    except SignInError as e:
        if e.transient:
            raise CloudError(str(e)) from None
        raise UsageError(str(e)) from None
    except Unauthenticated as e:
        raise UsageError(f"Databricks at {host} rejected the credentials from {auth.source} ({_first_line(str(e))}); "
                         "check them, or set DATABRICKS_CLIENT_ID and DATABRICKS_CLIENT_SECRET") from None
    except PermissionDenied as e:
        raise UsageError(f"the credentials from {auth.source} cannot use Databricks account {account} "
                         f"({_first_line(str(e))}); check databricks_account_id and that the principal is an "
                         "account admin") from None
    except (InternalError, TemporarilyUnavailable, TooManyRequests, RequestLimitExceeded, DeadlineExceeded) as e:
        # The service answered but is failing or throttling (after the SDK's own retries): a cloud failure, not
        # bad input.
        raise CloudError(f"the Databricks account API at {host} is failing ({_first_line(str(e))}): "
                         f"{transient}") from None
    except TimeoutError as e:
        # The SDK gave up retrying: throttling, a 503 or a connection fault, every time until the deadline.
        if _unresolvable(e):
            raise UsageError(f"cannot reach the Databricks account API at {host}: its host name does not resolve; "
                             f"check DATABRICKS_HOST (default {DEFAULT_ACCOUNT_HOST})") from None
        last = e.__cause__ or e
        what = "is failing" if isinstance(last, DatabricksError) else "cannot be reached"
        raise CloudError(f"the Databricks account API at {host} {what} ({_first_line(str(last)) or 'no answer'}, "
                         f"still after {CHECK_RETRY_SECONDS} s of retries): {transient}") from None
    except ValueError as e:
        # Raised while the SDK configures another kind of authentication: a password, a profile's.
        if "Invalid URL 'None'" in str(e):
            # OAuth found no discovery document: the host did not answer /.well-known/databricks-config.
            raise UsageError(f"cannot reach the Databricks account API at {host} (no answer from "
                             f"{host}/.well-known/databricks-config); check DATABRICKS_HOST (default "
                             f"{DEFAULT_ACCOUNT_HOST})") from None
        raise UsageError(f"cannot authenticate to Databricks at {host} with {auth.source}: {_first_line(str(e))}; "
                         "check the credentials, DATABRICKS_HOST and databricks_account_id") from None
    except DatabricksError as e:
        raise UsageError(f"the Databricks account API at {host} refused the check ({_first_line(str(e))}); check "
                         f"DATABRICKS_HOST (default {DEFAULT_ACCOUNT_HOST}) and databricks_account_id") from None
    finally:
        sign_in.finish()
    return client


def _for_the_run(client: Any) -> Any:
    """The checked client again, signed in already (the same configuration and token), with the SDK's full retry
    budget for the command's own calls instead of the check's short one."""
    from databricks.sdk import AccountClient

    config = client.config
    config.retry_timeout_seconds = RUN_RETRY_SECONDS
    run = AccountClient(config=config)
    setattr(run, CHECKED_WORKSPACES, getattr(client, CHECKED_WORKSPACES, None))
    return run


def _warn_stderr(message: str) -> None:
    print(message, file=sys.stderr)


def account_client_factory(config: Config, warn: Callable[[str], None] = _warn_stderr,
                           sign_in_now: bool = True) -> Callable[[], Any]:
    """Check the Databricks environment and credentials now (before any AWS call); return a factory that gives
    the signed-in `AccountClient`. What the user must fix raises `UsageError` (exit 2); a transient fault that
    outlasted the retries, `CloudError` (exit 1). Without `sign_in_now`, only the environment is checked now, and
    what comes back is the credential check itself: called (beside the caller's AWS reads), it signs in, raises
    those errors, and returns the factory."""
    auth = resolve_auth(config)
    workspace_url_template()
    if auth.method == "basic" or auth.settings.get("auth_type") == "basic":  # the environment's, or a profile's
        warn(BASIC_AUTH_WARNING)
    if not sign_in_now:
        return lambda: signed_in(auth)
    return signed_in(auth)


def signed_in(auth: Auth, clock: Any = None) -> Callable[[], Any]:
    """Check the credentials now; return what gives the signed-in `AccountClient`. OAuth machine-to-machine from
    the environment is checked with plain HTTP (`_SignIn.check`), and the SDK's client is built, with the same
    token and the workspaces the check listed, when first asked for; any other authentication is the SDK's,
    checked by `check_credentials`."""
    if auth.method != "oauth-m2m":
        client = _for_the_run(check_credentials(auth, clock))
        return lambda: client
    from provisioner.context import Clock

    clock = clock if clock is not None else Clock()
    sign_in = _SignIn(auth, clock, CHECK_RETRY_SECONDS)
    sign_in.start()
    try:
        workspaces = sign_in.check()
    except SignInError as e:
        raise (CloudError if e.transient else UsageError)(str(e)) from None
    finally:
        sign_in.finish()
    lock = threading.Lock()
    built: list[Any] = []

    def account() -> Any:
        with lock:
            if not built:
                from databricks.sdk.service.provisioning import Workspace

                made = _build(auth, retry_timeout_seconds=RUN_RETRY_SECONDS, clock=_SdkClock(clock),
                              credentials_strategy=sign_in)
                setattr(made, CHECKED_WORKSPACES, [Workspace.from_dict(w) for w in workspaces])
                built.append(made)
            return built[0]

    return account


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


def token_client(host: str, token: str) -> Any:
    """A `WorkspaceClient` for the workspace at `host` signed in with a personal access token: no sign-in round
    trips, and not the host's metadata either (it only serves OAuth)."""
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.config import Config as SdkConfig

    class _TokenConfig(SdkConfig):
        _attributes = SdkConfig.attributes()  # the SDK's settings, which a subclass would not see by itself

        def _resolve_host_metadata(self) -> None:  # databricks-sdk 0.162 (pinned): OAuth discovery only
            return None

    return WorkspaceClient(config=_TokenConfig(host=host, token=token, auth_type="pat"))
