"""Accounts of the web application: one login per roster student or staff member (``person``).

Passwords are argon2id hashes; a one-time set-password link carries a random token of which only the
SHA-256 is stored, expiring and single use. Every change is audited (entity ``account``). The web pages
and ``mlph accounts`` call these functions; nothing else writes the ``account`` table.
"""
from __future__ import annotations

import functools
import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, cast

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, Engine, bindparam, select, update
from sqlalchemy.orm import Session

from gradebook.store import nbgrader_tables as nt
from gradebook.store.db import atomic
from gradebook.errors import InputError
from gradebook.store.models import Account, AuditLog, PasswordToken, Person, WebSession

STUDENT, TUTOR, ADMIN = "student", "tutor", "admin"
MIN_PASSWORD, MAX_PASSWORD = 10, 1024
HASHER = PasswordHasher()  # argon2id, the library's (RFC 9106 low-memory) parameters


@functools.cache
def _dummy_hash() -> str:
    """A hash to verify against when the user does not exist, so that both cases take the same time. Made on
    first use, not at import: hashing costs 0.2 CPU-seconds, which every `mlph` command (the autograder's
    too) paid for the CLI importing this module."""
    return HASHER.hash(secrets.token_urlsafe(16))


def warm_login_timing() -> None:
    """Make the stand-in hash now (a web server's start), not in its first login for an unknown user."""
    _dummy_hash()


@dataclass(frozen=True)
class AccountInfo:
    id: int
    username: str
    kind: str  # student | staff
    subject_id: str
    role: str | None  # student | tutor | admin; None: the roster entry or staff member is gone
    name: str
    email: str
    disabled: bool
    has_password: bool
    last_login_at: datetime | None


@dataclass(frozen=True)
class Link:
    username: str
    name: str
    email: str
    url: str
    expires_at: datetime


def hash_token(token: str) -> str:
    """What is stored of a secret token (session cookie, set-password link): its SHA-256."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _audit(session: Session, author: str, username: str, old: str | None, new: str | None, reason: str) -> None:
    session.add(AuditLog(at=_now(), author=author, entity="account", key=username, old_value=old, new_value=new,
                         reason=reason))


def _full_name(first: str | None, last: str | None) -> str:
    return f"{first or ''} {last or ''}".strip()


def _role(kind: str, on_roster: bool, staff_role: str | None) -> str | None:
    """An account's role now: a student's while they are on the roster, a staff member's while their role is
    tutor or admin; None otherwise (the account then opens nothing)."""
    if kind == STUDENT:
        return STUDENT if on_roster else None
    return staff_role if staff_role in (TUTOR, ADMIN) else None


def _subjects(session: Session) -> tuple[dict[str, tuple[str, str]], dict[str, tuple[str, str, str]]]:
    """Roster: id → (name, email); staff: id → (name, email, role)."""
    students = {sid: (_full_name(first, last), email or "") for sid, first, last, email in
                session.execute(select(nt.student.c.id, nt.student.c.first_name, nt.student.c.last_name,
                                       nt.student.c.email))}
    staff = {p.id: (p.name, p.email or "", p.role) for p in session.execute(select(Person)).scalars()}
    return students, staff


def _info(account: Account, students: dict[str, tuple[str, str]], staff: dict[str, tuple[str, str, str]]) -> AccountInfo:
    staff_role: str | None = None
    if account.kind == STUDENT:
        name, email = students.get(account.subject_id, ("", ""))
    else:
        name, email, staff_role = staff.get(account.subject_id, ("", "", ""))
    role = _role(account.kind, account.subject_id in students, staff_role)
    return AccountInfo(account.id, account.username, account.kind, account.subject_id, role, name, email,
                       bool(account.disabled), account.password_hash is not None, account.last_login_at)


def list_accounts(engine: Engine) -> list[AccountInfo]:
    with Session(engine) as session:
        students, staff = _subjects(session)
        rows = session.execute(select(Account).order_by(Account.kind, Account.username)).scalars().all()
        return [_info(a, students, staff) for a in rows]


def account_info(session: Session, account: Account) -> AccountInfo:
    """One account's info (its role looked up: a removed staff member or student has none)."""
    if account.kind == STUDENT:
        row = session.execute(select(nt.student.c.first_name, nt.student.c.last_name, nt.student.c.email)
                              .where(nt.student.c.id == account.subject_id)).first()
        students = {account.subject_id: (_full_name(row[0], row[1]), row[2] or "")} if row else {}
        return _info(account, students, {})
    person = session.get(Person, account.subject_id)
    staff = {person.id: (person.name, person.email or "", person.role)} if person else {}
    return _info(account, {}, staff)


@dataclass(frozen=True)
class SessionAccount:
    """What a request needs of its web session and account (:func:`session_account`)."""

    revoked_at: datetime | None
    expires_at: datetime
    csrf: str
    account_id: int
    username: str
    subject_id: str
    role: str | None  # as :class:`AccountInfo`'s: None when the roster entry or staff member is gone
    name: str
    disabled: bool


# built once (compiled once per process): the session's row, its account, and the student or staff member behind it
_SESSION_ACCOUNT = (
    select(WebSession.revoked_at, WebSession.expires_at, WebSession.csrf, Account.id, Account.username,
           Account.kind, Account.subject_id, Account.disabled, nt.student.c.id, nt.student.c.first_name,
           nt.student.c.last_name, Person.name, Person.role)
    .join(Account, Account.id == WebSession.account_id)
    .outerjoin(nt.student, (nt.student.c.id == Account.subject_id) & (Account.kind == STUDENT))
    .outerjoin(Person, (Person.id == Account.subject_id) & (Account.kind != STUDENT))
    .where(WebSession.id == bindparam("session_id")))


def session_account(conn: Connection, session_id: str) -> SessionAccount | None:
    """A web session, its account and the account's role and name (as :func:`account_info`), in one
    statement of plain columns (every request of a logged-in user runs it)."""
    row = conn.execute(_SESSION_ACCOUNT, {"session_id": session_id}).first()
    if row is None:
        return None
    revoked, expires, csrf, account_id, username, kind, subject, disabled, sid, first, last, staff_name, staff_role = row
    name = _full_name(first, last) if kind == STUDENT else staff_name or ""
    return SessionAccount(revoked, expires, csrf, account_id, username, subject, _role(kind, sid is not None, staff_role),
                          name, bool(disabled))


def create_accounts(engine: Engine, ids: Iterable[str] = (), *, students: bool = False, staff: bool = False,
                    author: str) -> tuple[list[str], list[str]]:
    """Accounts for roster ids or staff ids (username = the id); ``students``/``staff``: for all of them.
    Returns (created, already there); an unknown id is refused, nothing created."""
    wanted = list(dict.fromkeys(ids))
    with atomic(engine) as session:
        roster, people = _subjects(session)
        unknown = [i for i in wanted if i not in roster and i not in people]
        if unknown:
            raise InputError(f"no student or staff member with id {', '.join(map(repr, unknown))}; "
                             "import the roster or add the staff member first")
        wanted += [i for i in sorted(roster) if students and i not in wanted]
        wanted += [i for i in sorted(people) if staff and i not in wanted]
        have = set(session.execute(select(Account.username)).scalars())
        created = [i for i in wanted if i not in have]
        for ident in created:
            kind = "staff" if ident in people else STUDENT
            session.add(Account(username=ident, kind=kind, subject_id=ident, password_hash=None, disabled=False,
                                created_at=_now()))
            _audit(session, author, ident, None, kind, "account created")
    return created, [i for i in wanted if i not in created]


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise InputError(f"the password needs at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise InputError(f"the password may have at most {MAX_PASSWORD} characters")


def _account(session: Session, username: str) -> Account:
    account = session.execute(select(Account).where(Account.username == username)).scalar_one_or_none()
    if account is None:
        raise InputError(f"no account {username!r} (create it with `mlph accounts create {username}`)")
    return account


def revoke_sessions(session: Session, account_id: int) -> int:
    done = session.execute(update(WebSession).where(WebSession.account_id == account_id,
                                                    WebSession.revoked_at.is_(None)).values(revoked_at=_now()))
    return int(cast(Any, done).rowcount or 0)


def set_password(engine: Engine, username: str, password: str, author: str) -> None:
    """Set ``username``'s password (argon2id); every session of the account ends."""
    check_password(password)
    digest = HASHER.hash(password)
    with atomic(engine) as session:
        account = _account(session, username)
        account.password_hash = digest
        revoke_sessions(session, account.id)
        _audit(session, author, username, None, None, "password set")


def disable_account(engine: Engine, username: str, author: str, disabled: bool = True) -> None:
    """Disable (or enable again) an account; disabling ends its sessions and its unused links."""
    with atomic(engine) as session:
        account = _account(session, username)
        old = account.disabled
        account.disabled = disabled
        if disabled:
            revoke_sessions(session, account.id)
            session.execute(update(PasswordToken).where(PasswordToken.account_id == account.id,
                                                        PasswordToken.used_at.is_(None)).values(used_at=_now()))
        _audit(session, author, username, "disabled" if old else "enabled", "disabled" if disabled else "enabled",
               "account disabled" if disabled else "account enabled")


def verify_login(engine: Engine, username: str, password: str) -> AccountInfo | None:
    """The account if ``password`` is right and the account usable (enabled, with a role); else None.
    Takes the same time whether or not the account exists."""
    with Session(engine) as session:
        account = session.execute(select(Account).where(Account.username == username)).scalar_one_or_none()
        digest = account.password_hash if account is not None and account.password_hash else _dummy_hash()
        try:
            HASHER.verify(digest, password)
            ok = account is not None and account.password_hash is not None
        except (VerificationError, InvalidHashError):
            ok = False
        if not ok or account is None or account.disabled:
            return None
        info = account_info(session, account)
    if info.role is None:
        return None
    with atomic(engine) as session:
        row = session.get(Account, info.id)
        if row is not None:
            row.last_login_at = _now()
            if HASHER.check_needs_rehash(row.password_hash or ""):
                row.password_hash = HASHER.hash(password)
    return info


def issue_links(engine: Engine, usernames: Iterable[str] | None, base_url: str, hours: int, author: str) -> list[Link]:
    """One-time set-password links for ``usernames`` (None: every enabled account without a password).
    Earlier unused links of those accounts stop working."""
    now = _now()
    expires = now + timedelta(hours=hours)
    links = []
    with atomic(engine) as session:
        roster, people = _subjects(session)
        if usernames is None:
            accounts = list(session.execute(select(Account).where(Account.password_hash.is_(None),
                                                                  Account.disabled.is_(False))
                                            .order_by(Account.username)).scalars())
        else:
            accounts = [_account(session, u) for u in dict.fromkeys(usernames)]
        for account in accounts:
            if account.disabled:
                raise InputError(f"account {account.username!r} is disabled; enable it first")
            session.execute(update(PasswordToken).where(PasswordToken.account_id == account.id,
                                                        PasswordToken.used_at.is_(None)).values(used_at=now))
            token = secrets.token_urlsafe(32)
            session.add(PasswordToken(token_hash=hash_token(token), account_id=account.id, created_at=now,
                                      expires_at=expires, created_by=author))
            info = _info(account, roster, people)
            links.append(Link(account.username, info.name, info.email, f"{base_url}/password/{token}", expires))
            _audit(session, author, account.username, None, None, f"set-password link issued, valid until {expires:%Y-%m-%d %H:%M} UTC")
    return links


def _utc(when: datetime) -> datetime:
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when


def link_account(engine: Engine, token: str) -> str | None:
    """The username a set-password link is for, if the link is unused, unexpired and the account enabled."""
    with Session(engine) as session:
        row = session.execute(select(PasswordToken, Account).join(Account, Account.id == PasswordToken.account_id)
                              .where(PasswordToken.token_hash == hash_token(token))).first()
    if row is None:
        return None
    link, account = row
    if link.used_at is not None or _utc(link.expires_at) <= _now() or account.disabled:
        return None
    return str(account.username)


def redeem_link(engine: Engine, token: str, password: str) -> str:
    """Set the password through a one-time link; the username. The link is used up (also by a
    concurrent second request: the conditional update lets exactly one of them through)."""
    check_password(password)
    digest = HASHER.hash(password)
    now = _now()
    with atomic(engine) as session:
        link = session.execute(select(PasswordToken).where(PasswordToken.token_hash == hash_token(token))
                               ).scalar_one_or_none()
        if link is None or link.used_at is not None or _utc(link.expires_at) <= now:
            raise InputError("this set-password link is unknown, used or expired; ask for a new one")
        done = session.execute(update(PasswordToken).where(PasswordToken.id == link.id, PasswordToken.used_at.is_(None))
                               .values(used_at=now).execution_options(synchronize_session=False))
        account = session.get(Account, link.account_id)
        if cast(Any, done).rowcount != 1 or account is None or account.disabled:
            raise InputError("this set-password link is unknown, used or expired; ask for a new one")
        account.password_hash = digest
        revoke_sessions(session, account.id)
        _audit(session, account.username, account.username, None, None, "password set through a one-time link")
        return str(account.username)
