"""The web application's settings: from the environment (``MLPH_WEB_*``), with safe defaults.

Nothing here lives in process memory that a second worker would need: sessions, CSRF tokens and
login throttling are in the database; these settings are read the same way by every worker.
"""
from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field

from gradebook.errors import ConfigError

MiB = 1024 * 1024


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name}={raw!r} is not a whole number") from exc
    if value <= 0:
        raise ConfigError(f"{name}={raw!r} must be positive")
    return value


def _networks(raw: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    nets = []
    for part in (p.strip() for p in raw.split(",")):
        if not part:
            continue
        try:
            nets.append(ipaddress.ip_network(part, strict=False))
        except ValueError as exc:
            raise ConfigError(f"MLPH_WEB_TRUSTED_PROXIES: {part!r} is not an IP address or network") from exc
    return tuple(nets)


@dataclass(frozen=True)
class WebSettings:
    """``trusted_proxies``: only requests from these addresses may set ``X-Forwarded-Proto``/``-For``."""

    session_hours: int = 12
    max_body_bytes: int = 32 * MiB  # a request body above this is refused before it is read whole
    max_table_bytes: int = 5 * MiB  # roster/groups/teams uploads
    login_max_failures: int = 5  # failed logins per (account, address), and x4 per address ...
    login_account_max_failures: int = 20  # ... per account from addresses it never logged in from ...
    login_window_minutes: int = 15  # ... within this window lock further tries until it passes
    link_hours: int = 72  # validity of a one-time set-password link
    base_url: str = ""  # for set-password links in the CSV (e.g. https://grading.example.org)
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = field(default_factory=tuple)

    @classmethod
    def from_env(cls) -> WebSettings:
        return cls(session_hours=_int("MLPH_WEB_SESSION_HOURS", 12),
                   max_body_bytes=_int("MLPH_WEB_MAX_BODY_MIB", 32) * MiB,
                   login_max_failures=_int("MLPH_WEB_LOGIN_MAX_FAILURES", 5),
                   login_account_max_failures=_int("MLPH_WEB_LOGIN_ACCOUNT_MAX_FAILURES", 20),
                   login_window_minutes=_int("MLPH_WEB_LOGIN_WINDOW_MINUTES", 15),
                   link_hours=_int("MLPH_WEB_LINK_HOURS", 72),
                   base_url=os.environ.get("MLPH_WEB_BASE_URL", "").rstrip("/"),
                   trusted_proxies=_networks(os.environ.get("MLPH_WEB_TRUSTED_PROXIES", "")))

    def is_trusted_proxy(self, host: str | None) -> bool:
        if not host or not self.trusted_proxies:
            return False
        try:
            addr = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(addr in net for net in self.trusted_proxies)
