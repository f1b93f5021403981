"""Helpers for the web tests (both the core's and the grid's): accounts and logged-in clients.

    app = create_app(cfg)
    client = logged_in(app, "ab1")            # a TestClient with a live session of account "ab1"
    client.post(url, data={...})              # the CSRF header is already set on the client
    anonymous = TestClient(app)

``logged_in`` creates the account if needed (for a roster id or a staff id) and opens a session directly
in the database (no password hashing: fast); :func:`login` goes through the real login form.
"""
from __future__ import annotations

import re

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from gradebook.people.accounts import create_accounts, hash_token, set_password
from gradebook.store.models import Account, WebSession

from web.security import CSRF_HEADER, SESSION_COOKIE, start_session


def ensure_account(engine: Engine, subject_id: str, password: str | None = None) -> int:
    """The account id of ``subject_id`` (a roster or staff id), created if needed; optionally a password."""
    create_accounts(engine, [subject_id], author="test")
    if password is not None:
        set_password(engine, subject_id, password, author="test")
    with Session(engine) as session:
        return int(session.execute(select(Account.id).where(Account.username == subject_id)).scalar_one())


def session_for(engine: Engine, subject_id: str, hours: int = 1) -> tuple[str, str]:
    """(cookie token, CSRF token) of a new session of ``subject_id``'s account."""
    token = start_session(engine, ensure_account(engine, subject_id), hours)
    with Session(engine) as session:
        csrf = session.execute(select(WebSession.csrf).where(WebSession.id == hash_token(token))).scalar_one()
    return token, str(csrf)


def logged_in(app: FastAPI, subject_id: str, **client_kw: object) -> TestClient:
    """A TestClient logged in as ``subject_id``, sending the session's CSRF token on every request
    (``client.csrf`` holds it, for form fields)."""
    token, csrf = session_for(app.state.engine, subject_id)
    client = TestClient(app, follow_redirects=False, **client_kw)  # type: ignore[arg-type]
    client.cookies.set(SESSION_COOKIE, token)
    client.headers[CSRF_HEADER] = csrf
    client.csrf = csrf  # type: ignore[attr-defined]
    return client


def login(client: TestClient, username: str, password: str) -> int:
    """Log in through the form (fetching the login page first for its CSRF cookie); the status code."""
    page = client.get("/login")
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match, "the login page has no CSRF field"
    response = client.post("/login", data={"username": username, "password": password, "csrf_token": match.group(1),
                                           "next": "/"}, follow_redirects=False)
    return response.status_code


def setup_web_course(cfg: object) -> None:
    """Staff and groups for the tests' course (``gradebook_course`` fixture: students ab1, cd2, ef3):
    groups g1 (tutor ``tutor1``: ab1, ef3) and g2 (tutor ``tutor2``: cd2), admin ``boss``."""
    from pathlib import Path

    from gradebook.store.db import open_gradebook
    from gradebook.people.groups import add_staff, assign_students, import_groups

    root, db_url = Path(getattr(cfg, "root")), str(getattr(cfg, "db_url"))
    engine = open_gradebook(db_url)
    (root / "groups.csv").write_text("group,name,tutor_id,tutor_name\ng1,Group 1,tutor1,Tutor One\n"
                                     "g2,Group 2,tutor2,Tutor Two\n", encoding="utf-8")
    (root / "members.csv").write_text("student_id,group\nab1,g1\nef3,g1\ncd2,g2\n", encoding="utf-8")
    import_groups(engine, root / "groups.csv")
    assign_students(engine, root / "members.csv", author="test")
    add_staff(engine, "boss", "The Boss", None, "admin", author="test")
