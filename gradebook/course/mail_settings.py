"""The course's mail set-up: the ``[mail]`` table of ``mlph.toml`` (SMTP relay, sender, the site's address).

The SMTP password is never in a file: ``password_env`` names the environment variable that holds it
(default ``MLPH_SMTP_PASSWORD``); a ``password`` key in mlph.toml is refused.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from email.headerregistry import Address
from email.utils import parseaddr
from typing import Any

from gradebook.errors import ConfigError

KEYS = ("host", "port", "starttls", "ssl", "user", "password_env", "from", "reply_to", "site_url", "timeout_s",
        "per_minute", "cafile")


@dataclass(frozen=True)
class MailSettings:
    host: str = ""  # "": no relay configured (only a dry run writes mail)
    port: int = 587
    starttls: bool = True  # upgrade the connection with STARTTLS (port 587); ``ssl``: TLS from the start (465)
    ssl: bool = False
    user: str = ""  # "": no login
    password_env: str = "MLPH_SMTP_PASSWORD"
    sender: str = ""  # the From address, e.g. "MLPH grading <grading@example.org>"
    reply_to: str = ""
    site_url: str = ""  # the web application's address for links in mails ("": $MLPH_WEB_BASE_URL)
    timeout_s: float = 30.0
    per_minute: int = 0  # at most this many messages a minute (0: no limit), for relays that throttle
    cafile: str = ""  # a private CA for the relay's certificate ("": the system's)

    def password(self) -> str:
        return os.environ.get(self.password_env, "") if self.user else ""

    def describe(self) -> str:
        """One line for `mlph info` (never the password, only whether its variable is set)."""
        if not self.host:
            return "not configured ([mail] in mlph.toml; `--dry-run DIR` still writes messages as files)"
        how = "TLS" if self.ssl else "STARTTLS" if self.starttls else "no TLS"
        login = (f", login {self.user} (password from ${self.password_env}: "
                 f"{'set' if os.environ.get(self.password_env) else 'NOT SET'})" if self.user else ", no login")
        return f"{self.host}:{self.port} ({how}{login}), from {self.sender}, links to {self.base_url() or '(no site_url)'}"

    def base_url(self) -> str:
        return (self.site_url or os.environ.get("MLPH_WEB_BASE_URL", "")).rstrip("/")


def _address(value: str, where: str) -> str:
    name, addr = parseaddr(value)
    try:
        Address(display_name=name, addr_spec=addr)
    except (ValueError, IndexError) as exc:
        raise ConfigError(f"{where}: {value!r} is not a mail address ({exc})") from exc
    if "@" not in addr:
        raise ConfigError(f"{where}: {value!r} is not a mail address")
    return value


def parse_mail(raw: Any, where: str) -> MailSettings:
    """``[mail]`` of ``where`` (a file's name in every message)."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: [mail] must be a table")
    if "password" in raw:
        raise ConfigError(f"{where}: [mail] password: never put the SMTP password into a file; set it in the "
                          f"environment variable named by [mail] password_env (default MLPH_SMTP_PASSWORD)")
    unknown = sorted(set(raw) - set(KEYS))
    if unknown:
        raise ConfigError(f"{where}: [mail] has unknown key(s) {', '.join(unknown)} (known: {', '.join(KEYS)})")
    types: dict[str, type | tuple[type, ...]] = {"host": str, "port": int, "starttls": bool, "ssl": bool, "user": str, "password_env": str, "from": str,
             "reply_to": str, "site_url": str, "timeout_s": (int, float), "per_minute": int, "cafile": str}
    for key, value in raw.items():
        if not isinstance(value, types[key]) or (isinstance(value, bool) and types[key] is not bool):
            raise ConfigError(f"{where}: [mail] {key} has the wrong type: {value!r}")
    s = MailSettings(**{("sender" if k == "from" else k): v for k, v in raw.items()})
    if s.ssl and s.starttls and "starttls" in raw:
        raise ConfigError(f"{where}: [mail] ssl and starttls exclude each other (ssl: TLS from the start, port 465)")
    if s.ssl:
        s = MailSettings(**{**s.__dict__, "starttls": False})
    if not 0 < s.port < 65536 or s.timeout_s <= 0 or s.per_minute < 0:
        raise ConfigError(f"{where}: [mail] port, timeout_s or per_minute out of range")
    if s.host and not s.sender:
        raise ConfigError(f"{where}: [mail] from is missing (the sender, e.g. \"Grading <grading@example.org>\")")
    for key, value in (("from", s.sender), ("reply_to", s.reply_to)):
        if value:
            _address(value, f"{where}: [mail] {key}")
    if s.site_url and not s.site_url.startswith(("http://", "https://")):
        raise ConfigError(f"{where}: [mail] site_url must start with https:// (or http://), not {s.site_url!r}")
    return s
