"""``mlph serve`` as a JupyterHub service: its settings, the lines ``mlph hub-config`` prints, and the check
at start-up (the Hub answers, the token is valid, the token is the registered service's).

Settings come from the environment (like ``MLPH_WEB_*``):

- ``MLPH_HUB_API_URL``: the Hub's API as ``mlph serve`` reaches it (e.g. ``http://127.0.0.1:8081/hub/api``);
  setting it turns the Hub integration on;
- ``MLPH_HUB_SERVICE`` (default ``mlph``): the service's name, so its prefix is ``/services/<name>/``;
- ``MLPH_HUB_API_TOKEN``: the service's token; if unset, the file ``<data dir>/hub/api_token`` (made,
  mode 0600, by ``mlph hub-config``), so that the printed lines and the running service agree.
"""
from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import requests

from gradebook.course.config import CourseConfig
from gradebook.errors import ConfigError

SERVER_ROLE_SCOPES = ("users:activity!user", "access:servers!server")  # the Hub's default `server` role


@dataclass(frozen=True)
class HubSettings:
    api_url: str  # the Hub's API, as mlph reaches it
    service: str  # the service's name
    api_token: str

    @property
    def prefix(self) -> str:
        """Where the Hub's proxy sends the service's requests (the path keeps this prefix)."""
        return f"/services/{self.service}"

    @property
    def oauth_client_id(self) -> str:
        return f"service-{self.service}"

    @property
    def oauth_redirect_uri(self) -> str:
        """A path on the Hub's own host (the browser resolves it), so that no host name is configured twice."""
        return f"{self.prefix}/oauth_callback"

    @property
    def access_scope(self) -> str:
        """What a token needs to call the service (students' servers, browsers after the OAuth login)."""
        return f"access:services!service={self.service}"


def token_file(cfg: CourseConfig) -> Path:
    return cfg.data_dir / "hub" / "api_token"


def service_token(cfg: CourseConfig, create: bool = False) -> str:
    """The service's API token: ``$MLPH_HUB_API_TOKEN``, else the token file (made when ``create``)."""
    if os.environ.get("MLPH_HUB_API_TOKEN"):
        return os.environ["MLPH_HUB_API_TOKEN"]
    path = token_file(cfg)
    if path.is_file():
        return path.read_text(encoding="ascii").strip()
    if not create:
        return ""
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(token + "\n")
    return token


def hub_settings(cfg: CourseConfig, *, api_url: str | None = None, service: str | None = None,
                 create_token: bool = False) -> HubSettings | None:
    """The Hub settings from the arguments and the environment; None when no Hub is configured."""
    api_url = (api_url or os.environ.get("MLPH_HUB_API_URL", "")).rstrip("/")
    if not api_url:
        return None
    name = service or os.environ.get("MLPH_HUB_SERVICE", "mlph")
    if not name.replace("-", "").replace("_", "").isalnum():
        raise ConfigError(f"MLPH_HUB_SERVICE={name!r}: a service name has letters, digits, '-' and '_' only")
    token = service_token(cfg, create=create_token)
    if not token:
        raise ConfigError(f"no API token for the Hub service {name!r}: set MLPH_HUB_API_TOKEN or run "
                          f"`mlph hub-config` (it writes {token_file(cfg)})")
    return HubSettings(api_url, name, token)


def jupyterhub_lines(hub: HubSettings, service_url: str) -> list[str]:
    """The ``jupyterhub_config.py`` lines: the service (its OAuth client, token, URL), the `user` role's
    access to it, and the scope in the servers' tokens (the `server` role's plus the service's)."""
    service = {"name": hub.service, "url": service_url.rstrip("/"), "api_token": hub.api_token,
               "oauth_client_id": hub.oauth_client_id, "oauth_redirect_uri": hub.oauth_redirect_uri,
               "display": True, "oauth_no_confirm": True}  # the course's own service: no consent page
    server_scopes = [*SERVER_ROLE_SCOPES, hub.access_scope]
    return [
        f"# {hub.service}: the course's grading service (printed by `mlph hub-config`)",
        f"c.JupyterHub.services.append({service!r})",
        f'c.JupyterHub.load_roles.append({{"name": "user", "scopes": ["self", "{hub.access_scope}"]}})',
        f"c.Spawner.server_token_scopes = {server_scopes!r}",
    ]


def nbgrader_lines(hub: HubSettings, exchange_url: str) -> list[str]:
    """The single-user image's ``nbgrader_config.py`` lines: the course's exchange, and where the servers
    reach the service (``exchange_url``: the service itself, or the Hub's public URL + the prefix)."""
    lines = ["# the course's exchange: hand-ins go to the grading service over HTTP (printed by `mlph hub-config`)",
             f'c.Exchange.service_url = "{exchange_url.rstrip("/")}/"']
    for trait, cls in (("list", "ExchangeList"), ("fetch_assignment", "ExchangeFetchAssignment"),
                       ("submit", "ExchangeSubmit"), ("fetch_feedback", "ExchangeFetchFeedback")):
        lines.append(f'c.ExchangeFactory.{trait} = "autograder.hub.exchange.{cls}"')
    return lines


def hub_config_text(cfg: CourseConfig, service_url: str, api_url: str | None = None, service: str | None = None,
                    exchange_url: str | None = None) -> str:
    """What ``mlph hub-config`` prints (the token is made on first use and kept in the data directory).
    ``exchange_url``: where the students' servers reach the service (default: ``service_url`` + its prefix)."""
    hub = hub_settings(cfg, api_url=api_url or "http://127.0.0.1:8081/hub/api", service=service, create_token=True)
    assert hub is not None
    exchange_url = exchange_url or service_url.rstrip("/") + hub.prefix
    return "\n".join(["# --- jupyterhub_config.py ---", *jupyterhub_lines(hub, service_url), "",
                      "# --- nbgrader_config.py of the single-user image ---", *nbgrader_lines(hub, exchange_url), ""])


class HubCheckFailed(ConfigError):
    """The Hub cannot be reached, refuses the token, or does not know the service."""


def check_hub(hub: HubSettings, timeout: float = 10.0) -> str:
    """At start-up: the Hub answers, the token is valid and belongs to the service ``hub.service``.
    The Hub's version; :class:`HubCheckFailed` naming what is wrong otherwise."""
    try:
        info = requests.get(f"{hub.api_url}/", timeout=timeout)
        info.raise_for_status()
        version = str(info.json().get("version", "?"))
    except (requests.RequestException, ValueError) as exc:
        raise HubCheckFailed(f"the Hub's API at {hub.api_url} does not answer ({exc}); is the Hub running, and is "
                             "MLPH_HUB_API_URL right?") from None
    try:
        who = requests.get(f"{hub.api_url}/user", headers={"Authorization": f"token {hub.api_token}"}, timeout=timeout)
    except requests.RequestException as exc:
        raise HubCheckFailed(f"the Hub's API at {hub.api_url} does not answer ({exc})") from None
    if who.status_code in (401, 403):
        raise HubCheckFailed(f"the Hub at {hub.api_url} does not accept the service's API token; put the lines of "
                             "`mlph hub-config` into jupyterhub_config.py and restart the Hub")
    try:
        model = who.json() if who.ok else {}
    except ValueError:
        model = {}
    if model.get("kind") != "service" or model.get("name") != hub.service:
        raise HubCheckFailed(f"the token belongs to {model.get('kind', '?')} {model.get('name', '?')!r}, not to the "
                             f"service {hub.service!r}: the service is not registered with this token")
    return version
