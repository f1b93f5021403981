"""Sessions, CSRF, login throttling and authorization of the web application.

- Sessions live in ``web_session`` (id = SHA-256 of the cookie's random token): logout and revocation
  work across every worker; the cookie is HttpOnly, SameSite=Lax and Secure when the request came over
  TLS (``X-Forwarded-Proto`` is believed only from a configured proxy, :class:`web.settings.WebSettings`).
- CSRF: every state-changing request carries the session's token, as the form field ``csrf_token`` or
  the header ``X-CSRF-Token``; before login (the login and set-password forms) the token is a random
  cookie that the form repeats (double submit).
- Login throttling counts failures in ``login_attempt`` (per account and per address), shared by workers.
- :func:`current_user`, :func:`require_role` (route dependencies) and the object checks
  (:func:`can_view_student`, :func:`can_view_handin`).
"""
from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from fastapi import HTTPException, Request, Response
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from gradebook.people.accounts import ADMIN, STUDENT, TUTOR, account_info, hash_token
from gradebook.store.db import atomic
from gradebook.store.models import Account, GroupMembership, LoginAttempt, TeamMember, TutorialGroup, WebSession

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
    """The user of a live session (not revoked, not expired, account enabled and still with a role)."""
    sid = hash_token(token)
    with Session(engine) as session:
        row = session.execute(select(WebSession, Account).join(Account, Account.id == WebSession.account_id)
                              .where(WebSession.id == sid)).first()
        if row is None:
            return None
        web, account = row
        if web.revoked_at is not None or _utc(web.expires_at) <= _now() or account.disabled:
            return None
        info = account_info(session, account)
    if info.role is None:
        return None
    return User(info.id, info.username, info.role, info.subject_id, info.name or info.username, web.csrf, sid)


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

def throttle_wait(engine: Engine, settings: WebSettings, username: str, ip: str) -> int:
    """Seconds until the next login try is allowed (0: now): too many failures for the account, or
    (four times as many) from the address, within the window. Read from the database, so every worker
    and every application instance on the same gradebook agrees."""
    now = _now()
    since = now - timedelta(minutes=settings.login_window_minutes)
    with Session(engine) as session:
        waits = [0]
        for column, value, limit in ((LoginAttempt.username, username, settings.login_max_failures),
                                     (LoginAttempt.ip, ip, 4 * settings.login_max_failures)):
            times = session.execute(select(LoginAttempt.at).where(
                column == value, LoginAttempt.success.is_(False), LoginAttempt.at > since)
                .order_by(LoginAttempt.at.desc()).limit(limit)).scalars().all()
            if len(times) >= limit:
                until = _utc(times[-1]) + timedelta(minutes=settings.login_window_minutes)
                waits.append(max(1, int((until - now).total_seconds()) + 1))
    return max(waits)


def record_attempt(engine: Engine, username: str, ip: str, success: bool) -> None:
    with atomic(engine) as session:
        session.add(LoginAttempt(username=username[:128], ip=ip, at=_now(), success=success))


def prune_attempts(engine: Engine, older_than: timedelta = timedelta(days=30)) -> None:
    from sqlalchemy import delete

    with atomic(engine) as session:
        session.execute(delete(LoginAttempt).where(LoginAttempt.at < _now() - older_than))


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
    return {"user": current_user(request), "csrf_token": csrf_token(request)}
