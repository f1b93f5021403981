"""Sessions, CSRF, login throttling and authorization of the web application.

- Sessions live in ``web_session`` (id = SHA-256 of the cookie's random token): logout and revocation
  work across every worker; the cookie is HttpOnly, SameSite=Lax and Secure when the request came over
  TLS (``X-Forwarded-Proto`` is believed only from a configured proxy, :class:`web.settings.WebSettings`).
- CSRF: every state-changing request carries the session's token, as the form field ``csrf_token`` or
  the header ``X-CSRF-Token``; before login (the login and set-password forms) the token is a random
  cookie that the form repeats (double submit).
- Login throttling counts attempts in ``login_attempt`` before any password is verified (per account and
  address, per address, per account from unknown addresses), atomically, shared by every worker.
- :func:`current_user`, :func:`require_role` (route dependencies) and the object checks
  (:func:`can_view_student`, :func:`can_view_handin`).
"""
from __future__ import annotations

import hmac
import ipaddress
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from fastapi import HTTPException, Request, Response
from sqlalchemy import Engine, and_, func, select, text, update
from sqlalchemy.orm import Session
from starlette._utils import get_route_path
from starlette.concurrency import run_in_threadpool

from gradebook.people.accounts import ADMIN, STUDENT, TUTOR, hash_token, session_account
from gradebook.store.db import atomic, read_retrying
from gradebook.store.models import GroupMembership, LoginAttempt, TeamMember, TutorialGroup, WebSession

from web.settings import WebSettings

SESSION_COOKIE = "mlph_session"
PRE_CSRF_COOKIE = "mlph_csrf"
CSRF_FIELD, CSRF_HEADER = "csrf_token", "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
ROLES = (STUDENT, TUTOR, ADMIN)


@dataclass(frozen=True)
class User:
    account_id: int
    username: str
    role: str  # student | tutor | admin
    subject_id: str  # roster id (students) or person id (staff)
    name: str
    csrf: str
    session_id: str  # SHA-256 of the cookie token

    @property
    def is_admin(self) -> bool:
        return self.role == ADMIN


class LoginRequired(Exception):
    """Raised by :func:`require_role` for an anonymous request; the app answers 303 → /login (or 401)."""


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _utc(when: datetime) -> datetime:
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when


def settings_of(request: Request) -> WebSettings:
    return request.app.state.settings  # type: ignore[no-any-return]


def engine_of(request: Request) -> Engine:
    return request.app.state.engine  # type: ignore[no-any-return]


def is_secure(request: Request) -> bool:
    """Did the request reach us over TLS (directly, or at a trusted proxy that says so)?"""
    if request.url.scheme == "https":
        return True
    host = request.client.host if request.client else None
    return settings_of(request).is_trusted_proxy(host) and request.headers.get("x-forwarded-proto") == "https"


def client_ip(request: Request) -> str:
    host = request.client.host if request.client else ""
    forwarded = request.headers.get("x-forwarded-for")
    if forwarded and settings_of(request).is_trusted_proxy(host):
        return forwarded.split(",")[-1].strip()[:64]
    return host[:64]


# --- sessions ---------------------------------------------------------------------------------

def start_session(engine: Engine, account_id: int, hours: int) -> str:
    """A new session for the account; the cookie token (only its hash is stored)."""
    token = secrets.token_urlsafe(32)
    now = _now()
    with atomic(engine) as session:
        session.add(WebSession(id=hash_token(token), account_id=account_id, csrf=secrets.token_urlsafe(32),
                               created_at=now, expires_at=now + timedelta(hours=hours), last_seen_at=now))
    return token


def end_session(engine: Engine, session_id: str) -> None:
    with atomic(engine) as session:
        row = session.get(WebSession, session_id)
        if row is not None and row.revoked_at is None:
            row.revoked_at = _now()


def set_session_cookie(request: Request, response: Response, token: str) -> None:
    response.set_cookie(SESSION_COOKIE, token, max_age=settings_of(request).session_hours * 3600, path="/",
                        httponly=True, samesite="lax", secure=is_secure(request))


def load_user(engine: Engine, token: str) -> User | None:
    """The user of a live session (not revoked, not expired, account enabled and still with a role): one query."""
    sid = hash_token(token)
    # one statement without a transaction around it, repeated once on a new connection if this one was dropped
    found = read_retrying(engine, lambda conn: session_account(conn, sid))
    if found is None or found.revoked_at is not None or _utc(found.expires_at) <= _now() or found.disabled \
            or found.role is None:
        return None
    return User(found.account_id, found.username, found.role, found.subject_id, found.name or found.username,
                found.csrf, sid)


def current_user(request: Request) -> User | None:
    """The logged-in user of this request, or None (looked up once per request)."""
    if not hasattr(request.state, "user"):
        token = request.cookies.get(SESSION_COOKIE)
        request.state.user = load_user(engine_of(request), token) if token else None
    return request.state.user  # type: ignore[no-any-return]


def require_role(*roles: str) -> Callable[[Request], User]:
    """A dependency: the logged-in user if their role is one of ``roles``; anonymous → login, else 403."""
    unknown = [r for r in roles if r not in ROLES]
    if unknown or not roles:
        raise ValueError(f"require_role: unknown role(s) {unknown}")

    def dependency(request: Request) -> User:
        user = current_user(request)
        if user is None:
            raise LoginRequired()
        if user.role not in roles:
            raise HTTPException(403, "This page is not available to your account.")
        return user

    return dependency


# --- CSRF -------------------------------------------------------------------------------------

def csrf_token(request: Request) -> str:
    """The token a page's forms and scripts must send back (session's, or the pre-login cookie's)."""
    user = current_user(request)
    if user is not None:
        return user.csrf
    token = request.cookies.get(PRE_CSRF_COOKIE)
    if not token:
        token = request.state.__dict__.setdefault("new_pre_csrf", secrets.token_urlsafe(32))
    return token


def set_pre_csrf_cookie(request: Request, response: Response) -> None:
    """Give an anonymous visitor the cookie that :func:`csrf_token` handed out (login form)."""
    token = getattr(request.state, "new_pre_csrf", None)
    if token:
        response.set_cookie(PRE_CSRF_COOKIE, token, path="/", httponly=True, samesite="strict",
                            secure=is_secure(request))


async def csrf_protect(request: Request) -> None:
    """App-wide dependency: refuse a state-changing request without the right token (403)."""
    if request.method in SAFE_METHODS:
        return
    if get_route_path(request.scope).startswith("/api/exchange/"):
        return  # the exchange's API authenticates by a Hub token in a header only, never by a cookie
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        ctype = request.headers.get("content-type", "")
        if ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            value = (await request.form()).get(CSRF_FIELD)
            sent = value if isinstance(value, str) else None
    user = await run_in_threadpool(current_user, request)
    expected = user.csrf if user is not None else request.cookies.get(PRE_CSRF_COOKIE)
    if not sent or not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise HTTPException(403, "The form has expired or did not come from this site (CSRF check failed). "
                                 "Reload the page and try again.")


# --- login throttling ---------------------------------------------------------------------------
# The rule (docs/security.md): a password is verified only after its attempt is counted and recorded,
# in one transaction that no other login can interleave with (SQLite: BEGIN IMMEDIATE; PostgreSQL: a
# table lock), so concurrency and the number of workers change nothing. An attempt is recorded as failed
# before the verification and marked successful after it. Within the window:
#   - per (account, address): ``login_max_failures`` failures;
#   - per address, over all accounts: 4x that;
#   - per account, from addresses it has never logged in from: ``login_account_max_failures``.
# An address from which the account logged in successfully (while the attempts are kept, 30 days) is
# bound only by the first rule, so a stranger elsewhere can never lock the owner out there.

KEEP_ATTEMPTS = timedelta(days=30)  # an address stays known to an account this long after a login


def throttle_key(ip: str) -> str:
    """The address a throttle counts: IPv6 by its /64 (one end user's network), IPv4 as it is."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return ip[:64]
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return str(addr.ipv4_mapped)
        return str(ipaddress.ip_network(f"{addr}/64", strict=False))
    return str(addr)


def _lock_attempts(session: Session) -> None:
    """Serialise the count-and-record step across workers (SQLite's transactions already begin IMMEDIATE)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("LOCK TABLE login_attempt IN SHARE ROW EXCLUSIVE MODE"))


def _wait(session: Session, condition: Any, limit: int, now: datetime, window: timedelta) -> int:
    """Seconds until fewer than ``limit`` failures matching ``condition`` lie in the window (0: already)."""
    times = session.execute(select(LoginAttempt.at).where(condition, LoginAttempt.success.is_(False),
                                                          LoginAttempt.at > now - window)
                            .order_by(LoginAttempt.at.desc()).limit(limit)).scalars().all()
    if len(times) < limit:
        return 0
    return max(1, int((_utc(times[-1]) + window - now).total_seconds()) + 1)


def _throttled(session: Session, settings: WebSettings, username: str, ip: str, now: datetime) -> int:
    """Seconds until a login of ``username`` from (throttle key) ``ip`` is allowed (0: now)."""
    window = timedelta(minutes=settings.login_window_minutes)
    known = session.execute(select(LoginAttempt.id).where(
        LoginAttempt.username == username, LoginAttempt.ip == ip, LoginAttempt.success.is_(True),
        LoginAttempt.at > now - KEEP_ATTEMPTS).limit(1)).first() is not None
    rules = [(and_(LoginAttempt.username == username, LoginAttempt.ip == ip), settings.login_max_failures)]
    if not known:
        rules += [(LoginAttempt.ip == ip, 4 * settings.login_max_failures),
                  (LoginAttempt.username == username, settings.login_account_max_failures)]
    return max(_wait(session, cond, limit, now, window) for cond, limit in rules)


def claim_login_attempt(engine: Engine, settings: WebSettings, username: str, ip: str) -> tuple[int | None, int]:
    """Before a password is verified: (the recorded attempt's id, 0) when a verification is allowed, or
    (None, seconds to wait). Counting and recording are one serialised transaction."""
    username, ip, now = username[:128], throttle_key(ip), _now()
    with atomic(engine) as session:
        _lock_attempts(session)
        wait = _throttled(session, settings, username, ip, now)
        if wait:
            return None, wait
        row = LoginAttempt(username=username, ip=ip, at=now, success=False)  # failed until verified
        session.add(row)
        session.flush()
        return int(row.id), 0


def finish_login_attempt(engine: Engine, attempt_id: int, success: bool) -> None:
    """The verification's outcome (a success makes the address known to the account)."""
    if success:
        with atomic(engine) as session:
            session.execute(update(LoginAttempt).where(LoginAttempt.id == attempt_id).values(success=True))
        prune_attempts(engine)


def prune_attempts(engine: Engine, older_than: timedelta | None = None) -> None:
    """Forget attempts older than ``older_than`` (default: :data:`KEEP_ATTEMPTS`)."""
    from sqlalchemy import delete

    with atomic(engine) as session:
        session.execute(delete(LoginAttempt).where(LoginAttempt.at < _now() - (older_than or KEEP_ATTEMPTS)))


# --- object-level authorization ---------------------------------------------------------------------

def tutor_groups(session: Session, person_id: str) -> set[str]:
    return set(session.execute(select(TutorialGroup.id).where(TutorialGroup.tutor_id == person_id)).scalars())


def current_group(session: Session, student: str) -> str | None:
    return session.execute(select(func.min(GroupMembership.group_id)).where(
        GroupMembership.student_id == student, GroupMembership.valid_to.is_(None))).scalar_one_or_none()


def team_of(session: Session, sheet: str, student: str) -> list[str]:
    """The members of ``student``'s team on ``sheet`` (just the student when not in a team)."""
    team = session.execute(select(TeamMember.team).where(TeamMember.sheet == sheet, TeamMember.student_id == student)
                           ).scalar_one_or_none()
    if team is None:
        return [student]
    return sorted(session.execute(select(TeamMember.student_id).where(TeamMember.sheet == sheet,
                                                                      TeamMember.team == team)).scalars())


def can_view_student(engine: Engine, user: User, student: str) -> bool:
    """Admins: everyone; a student: themself; a tutor: the students currently in their groups."""
    if user.is_admin:
        return True
    if user.role == STUDENT:
        return user.subject_id == student
    with Session(engine) as session:
        return current_group(session, student) in tutor_groups(session, user.subject_id)


def can_view_handin(engine: Engine, user: User, sheet: str, student: str) -> bool:
    """A hand-in of ``student`` on ``sheet``: also the members of their team on that sheet."""
    if user.is_admin:
        return True
    with Session(engine) as session:
        members = team_of(session, sheet, student)
        if user.role == STUDENT:
            return user.subject_id in members
        groups = tutor_groups(session, user.subject_id)
        return any(current_group(session, m) in groups for m in members)


def require_student_access(request: Request, user: User, student: str) -> None:
    if not can_view_student(engine_of(request), user, student):
        raise HTTPException(403, "You cannot see this student's pages.")


def template_globals(request: Request) -> dict[str, Any]:
    return {"user": current_user(request), "csrf_token": csrf_token(request),
            # the login page offers what is configured: the Hub's OAuth login, the local passwords, or both
            "hub_login": getattr(request.app.state, "hub", None) is not None,
            "password_login": settings_of(request).password_login}
