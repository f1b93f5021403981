"""The Hub as the identity: who a Hub token belongs to (asked of the Hub, cached at most 60 s).

:class:`HubGate` wraps JupyterHub's own ``HubOAuth`` (token → user, the OAuth code → token exchange and
PKCE); :func:`gradebook.people.hub_identity.member_for_login` says which course member that Hub user is.
"""
from __future__ import annotations

import logging
from typing import Any

from autograder.hub.config import HubSettings

log = logging.getLogger("mlph.hub")
CACHE_SECONDS = 60  # a revoked Hub token is refused at most this long after its revocation


class HubRefused(Exception):
    """The request has no usable Hub identity; ``status`` and the message say why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class HubGate:
    """One per application: the Hub's answers for tokens (cached ≤ 60 s) and the OAuth client."""

    def __init__(self, settings: HubSettings, public_hub_url: str = "") -> None:
        from jupyterhub.services.auth import HubOAuth

        self.settings = settings
        self.auth = HubOAuth(api_url=settings.api_url, api_token=settings.api_token,
                             oauth_client_id=settings.oauth_client_id, oauth_redirect_uri=settings.oauth_redirect_uri,
                             access_scopes={settings.access_scope}, cache_max_age=CACHE_SECONDS,
                             base_url=settings.prefix + "/", hub_prefix="/hub/", hub_host=public_hub_url.rstrip("/"))

    def user_for_token(self, token: str, use_cache: bool = True) -> dict[str, Any]:
        """The Hub's model of the token's owner, if the token is valid and may call this service."""
        try:
            model = self.auth.user_for_token(token, use_cache=use_cache)
        except Exception as exc:  # the Hub down or refusing us: not the caller's fault, but no identity
            log.error("the Hub could not be asked about a token: %s", exc)
            raise HubRefused(503, "The JupyterHub cannot be reached to check your login; try again in a minute.") from None
        if not model:
            raise HubRefused(403, "The Hub does not know this token (expired, revoked or never issued); restart "
                                  "your server from the Hub's control panel.")
        if model.get("kind", "user") != "user":
            raise HubRefused(403, "Only a Hub user's token can hand in (this one belongs to a service).")
        if not self.auth.check_scopes(self.auth.access_scopes, model):
            raise HubRefused(403, f"This token may not use the course's service (it lacks the scope "
                                  f"{self.settings.access_scope}); ask the course team to add it to "
                                  "c.Spawner.server_token_scopes, then restart your server.")
        return dict(model)

    def authorize_url(self, state: str, code_challenge: str, origin: str) -> str:
        """The Hub's authorization page; on ``origin`` (the Hub as this request reached us through its proxy)
        unless the Hub's public URL is configured."""
        from urllib.parse import urlencode

        query = urlencode({"client_id": self.settings.oauth_client_id, "redirect_uri": self.settings.oauth_redirect_uri,
                           "response_type": "code", "state": state, "code_challenge": code_challenge,
                           "code_challenge_method": "S256"})
        url = self.auth.oauth_authorization_url
        return f"{url if '://' in url else origin + url}?{query}"

    def token_for_code(self, code: str, code_verifier: str) -> str:
        return str(self.auth.token_for_code(code, code_verifier=code_verifier))


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: token …`` (or ``Bearer …``) header."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    return value.strip() or None if scheme.lower() in ("token", "bearer") else None
