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


def default_workers() -> int:
    """uvicorn worker processes when none are asked for: two per core. A worker's requests share one interpreter
    lock, and a page waits for it again after each of its database round trips; with one worker per core a page
    of many round trips queued behind the cheap requests of the same process (benchmarks/web.py, 100 students
    refreshing and 10 tutors saving on 2 cores: a save's p95 185-254 ms with 2 workers, 52-75 ms with 4)."""
    return max(2, 2 * (os.cpu_count() or 1))


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
    password_login: bool = True  # the local argon2 accounts' login form (off: only the Hub's login)
    hub_public_url: str = ""  # the Hub as browsers reach it ("": the same host, i.e. through the Hub's proxy)

    @classmethod
    def from_env(cls) -> WebSettings:
        return cls(session_hours=_int("MLPH_WEB_SESSION_HOURS", 12),
                   max_body_bytes=_int("MLPH_WEB_MAX_BODY_MIB", 32) * MiB,
                   login_max_failures=_int("MLPH_WEB_LOGIN_MAX_FAILURES", 5),
                   login_account_max_failures=_int("MLPH_WEB_LOGIN_ACCOUNT_MAX_FAILURES", 20),
                   login_window_minutes=_int("MLPH_WEB_LOGIN_WINDOW_MINUTES", 15),
                   link_hours=_int("MLPH_WEB_LINK_HOURS", 72),
                   base_url=os.environ.get("MLPH_WEB_BASE_URL", "").rstrip("/"),
                   trusted_proxies=_networks(os.environ.get("MLPH_WEB_TRUSTED_PROXIES", "")),
                   password_login=os.environ.get("MLPH_WEB_PASSWORD_LOGIN", "1").strip().lower() not in ("0", "no", "off", "false"),
                   hub_public_url=os.environ.get("MLPH_HUB_PUBLIC_URL", "").rstrip("/"))

    def is_trusted_proxy(self, host: str | None) -> bool:
        if not host or not self.trusted_proxies:
            return False
        try:
            addr = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(addr in net for net in self.trusted_proxies)
