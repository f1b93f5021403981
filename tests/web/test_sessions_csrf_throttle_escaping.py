"""Sessions, CSRF, login throttling, set-password links, escaping, headers, error pages, body limits."""
from __future__ import annotations

import asyncio
import json
import re
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from gradebook.people.accounts import disable_account, issue_links, set_password
from gradebook.points.autograde_store import store_result
from gradebook.store.db import atomic, open_gradebook
from gradebook.store.models import Handin, PasswordToken
from gradebook.people.roster import import_students
from web.app import create_app
from web.security import CSRF_HEADER, SESSION_COOKIE
from web.settings import WebSettings
from web.testing import ensure_account, logged_in, login, setup_web_course

PASSWORD = "correct horse battery staple"
HTML = {"accept": "text/html"}
XSS_NAME = "<img src=x onerror=alert(1)>"


@pytest.fixture
def app(gradebook_course: Any) -> Any:
    setup_web_course(gradebook_course)
    return create_app(gradebook_course, WebSettings(login_max_failures=3, max_body_bytes=64 * 1024))


def test_csrf_refused_without_or_with_a_wrong_token(app: Any) -> None:
    admin = logged_in(app, "boss")
    form = {"student": "ab1", "status": "admitted", "reason": "medical certificate"}
    bare = TestClient(app, follow_redirects=False, cookies=admin.cookies)
    assert bare.post("/admin/override", data=form).status_code == 403
    assert bare.post("/admin/override", data=form, headers={CSRF_HEADER: "x" * 43}).status_code == 403
    assert bare.post("/admin/override", data={**form, "csrf_token": "forged"}).status_code == 403
    assert "admitted" not in admin.get("/admin/changes", headers=HTML).text.split("Active overrides")[1].split("Extensions")[0]
    ok = bare.post("/admin/override", data={**form, "csrf_token": admin.csrf}, headers=HTML)  # type: ignore[attr-defined]
    assert ok.status_code == 200 and "medical certificate" in ok.text
    anon = TestClient(app, follow_redirects=False)  # the login form needs its pre-session token too
    assert anon.post("/login", data={"username": "boss", "password": PASSWORD}).status_code == 403


def test_login_throttled_across_two_app_instances(app: Any, gradebook_course: Any) -> None:
    ensure_account(app.state.engine, "ab1", PASSWORD)
    first = TestClient(app, follow_redirects=False)
    assert [login(first, "ab1", "wrong password!") for _ in range(3)] == [401, 401, 401]
    second_app = create_app(gradebook_course, WebSettings(login_max_failures=3))  # another worker, same database
    second = TestClient(second_app, follow_redirects=False)
    assert login(second, "ab1", PASSWORD) == 429  # the right password does not help while throttled
    assert SESSION_COOKIE not in second.cookies
    assert login(TestClient(second_app), "cd2", "wrong password!") == 401  # other accounts are not locked


def test_login_logout_and_revocation(app: Any) -> None:
    engine = app.state.engine
    ensure_account(engine, "ab1", PASSWORD)
    client = TestClient(app, follow_redirects=False)
    assert login(client, "ab1", PASSWORD) == 303
    cookie = client.cookies[SESSION_COOKIE]
    assert client.get("/students/ab1").status_code == 200
    page = client.get("/students/ab1", headers=HTML).text
    token = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    assert client.post("/logout", data={"csrf_token": token}).status_code == 303
    replay = TestClient(app, follow_redirects=False, cookies={SESSION_COOKIE: cookie})
    assert replay.get("/students/ab1", headers=HTML).headers["location"].startswith("/login")
    other = logged_in(app, "ab1")
    disable_account(engine, "ab1", "test")  # revocation: disabling ends every session at once
    assert other.get("/students/ab1").status_code == 401
    assert login(TestClient(app), "ab1", PASSWORD) == 401
    third = logged_in(app, "cd2")
    set_password(engine, "cd2", PASSWORD, "test")  # a new password ends the old sessions
    assert third.get("/students/cd2").status_code == 401


def test_set_password_links_single_use_and_expiring(app: Any) -> None:
    engine = app.state.engine
    ensure_account(engine, "ab1")
    url = issue_links(engine, ["ab1"], "", 1, "admin")[0].url
    client = TestClient(app, follow_redirects=False)
    page = client.get(url)
    assert page.status_code == 200 and "ab1" in page.text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    form = {"password": PASSWORD, "password2": PASSWORD, "csrf_token": csrf}
    assert client.post(url, data={**form, "password": "short", "password2": "short"}).status_code == 400
    assert client.post(url, data=form).status_code == 303
    assert login(TestClient(app), "ab1", PASSWORD) == 303
    assert client.post(url, data={**form, "password": "another one here", "password2": "another one here"}).status_code == 404
    assert client.get(url).status_code == 404  # used
    ensure_account(engine, "cd2")
    stale = issue_links(engine, ["cd2"], "", 1, "admin")[0].url
    with atomic(engine) as session:
        session.execute(update(PasswordToken).values(expires_at=datetime.now(timezone.utc) - timedelta(minutes=1)))
    assert client.get(stale).status_code == 404
    assert client.post(stale, data=form).status_code == 404
    assert login(TestClient(app), "cd2", PASSWORD) == 401
    with atomic(engine) as session:  # only the hash of a token is stored
        stored = session.query(PasswordToken.token_hash).all()
    assert all(url.rsplit("/", 1)[1] not in h for (h,) in stored)


def _feedback(cfg: Any, student: str) -> None:
    cells = [{"grade_id": "test_scale_visible", "points": "0", "max_points": "1", "status": "error",
              "message": "<script>alert('feedback')</script>"}]
    store_result(open_gradebook(cfg.db_url), {
        "sheet": "tiny01", "student": student, "status": "graded", "reason": "", "fingerprint": "f" * 64,
        "submitted_at": "2026-11-03T12:00:00+00:00", "cells": cells, "score": "0", "max_score": "3",
        "notes": ["<b>note</b>"]})


def test_student_controlled_text_is_escaped(app: Any, gradebook_course: Any) -> None:
    roster = gradebook_course.root / "evil.csv"
    roster.write_text(f"student_id,last_name,first_name,email\nab1,{XSS_NAME},Anna,ab1@uni.de\n", encoding="utf-8")
    import_students(app.state.engine, roster)
    _feedback(gradebook_course, "ab1")
    admin, student = logged_in(app, "boss"), logged_in(app, "ab1")
    pages = [admin.get("/admin/students", headers=HTML), admin.get("/admin/admission", headers=HTML),
             student.get("/students/ab1", headers=HTML), student.get("/students/ab1/sheets/tiny01", headers=HTML)]
    for page in pages:
        assert page.status_code == 200
        assert "<img src=x" not in page.text and "<script>alert" not in page.text and "<b>note" not in page.text
    assert "&lt;img src=x onerror=alert(1)&gt;" in pages[0].text
    assert re.search(r"&lt;script&gt;alert\((&#39;|&#x27;)feedback(&#39;|&#x27;)\)&lt;/script&gt;", pages[3].text)


def test_security_headers_on_every_page(app: Any) -> None:
    admin, anon = logged_in(app, "boss"), TestClient(app, follow_redirects=False)
    responses = [anon.get("/login"), anon.get("/admin"), anon.get("/nowhere", headers=HTML), admin.get("/admin"),
                 admin.get("/admin/audit", headers=HTML), admin.post("/admin/regrade", data={}),
                 anon.get("/static/style.css"), admin.get("/students/ab1", headers=HTML)]
    for r in responses:
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors" in csp, r.url
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] and r.headers["x-frame-options"]
    page = admin.get("/admin", headers=HTML).text
    assert re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page) is None  # no inline script


def test_no_traceback_in_a_500_page(app: Any) -> None:
    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret detail /etc/passwd line 42")

    client = TestClient(app, raise_server_exceptions=False)
    for headers in (HTML, {}):
        r = client.get("/boom", headers=headers)
        assert r.status_code == 500
        assert "secret detail" not in r.text and "Traceback" not in r.text and "RuntimeError" not in r.text
        assert "script-src 'self'" in r.headers["content-security-policy"]


def _login_cookie(app: Any, peer: str, headers: dict[str, str], base_url: str = "http://testserver") -> str:
    client = TestClient(app, base_url=base_url, follow_redirects=False, client=(peer, 40000))
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)  # type: ignore[union-attr]
    r = client.post("/login", data={"username": "boss", "password": PASSWORD, "csrf_token": csrf}, headers=headers)
    assert r.status_code == 303
    return str(r.headers["set-cookie"])


def test_cookie_flags_and_trusted_proxy(gradebook_course: Any) -> None:
    import ipaddress

    setup_web_course(gradebook_course)
    ensure_account(open_gradebook(gradebook_course.db_url), "boss", PASSWORD)
    proxy = WebSettings(trusted_proxies=(ipaddress.ip_network("10.0.0.0/8"),))
    app = create_app(gradebook_course, proxy)
    tls = {"x-forwarded-proto": "https"}
    plain = _login_cookie(app, "192.168.1.5", tls)  # not the proxy: its X-Forwarded-Proto is ignored
    assert "HttpOnly" in plain and "SameSite=lax" in plain and "Secure" not in plain
    assert "Secure" in _login_cookie(app, "10.0.0.2", tls)  # the proxy says the request came over TLS
    assert "Secure" not in _login_cookie(app, "10.0.0.2", {})
    assert "Secure" in _login_cookie(app, "192.168.1.5", {}, base_url="https://testserver")


def test_trusted_proxy_setting() -> None:
    settings = WebSettings(trusted_proxies=WebSettings.from_env().trusted_proxies)
    assert not settings.is_trusted_proxy("10.0.0.1")
    import ipaddress

    proxy = WebSettings(trusted_proxies=(ipaddress.ip_network("10.0.0.0/8"),))
    assert proxy.is_trusted_proxy("10.1.2.3") and not proxy.is_trusted_proxy("192.168.0.1")
    assert not proxy.is_trusted_proxy("testclient")


def test_uploads_over_the_limit_refused_without_reading_them(app: Any) -> None:
    admin = logged_in(app, "boss")
    big = b"x" * (80 * 1024)
    r = admin.post("/admin/upload/roster", files={"file": ("roster.csv", big, "text/csv")})
    assert r.status_code == 413
    pulled = 0

    async def receive() -> dict[str, Any]:  # an endless streamed body of 16 KiB chunks
        nonlocal pulled
        pulled += 1
        head = (b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="r.csv"\r\n'
                b"Content-Type: text/csv\r\n\r\n") if pulled == 1 else b""
        return {"type": "http.request", "body": head + b"y" * 16384, "more_body": True}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    token, csrf = admin.cookies[SESSION_COOKIE], admin.csrf  # type: ignore[attr-defined]
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/admin/upload/roster", "raw_path": b"/admin/upload/roster", "root_path": "", "query_string": b"",
             "headers": [(b"host", b"testserver"), (b"content-type", b"multipart/form-data; boundary=xyz"),
                         (b"cookie", f"{SESSION_COOKIE}={token}".encode()), (CSRF_HEADER.encode(), csrf.encode()),
                         (b"transfer-encoding", b"chunked")],
             "client": ("127.0.0.1", 5000), "server": ("testserver", 80), "state": {}}
    asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 413
    assert pulled * 16384 <= 64 * 1024 + 16384  # stopped at the limit, never read on


def test_uploaded_pdf_is_served_inert(app: Any, gradebook_course: Any) -> None:
    stored = gradebook_course.data_dir / "handins" / "x.pdf"
    stored.parent.mkdir(parents=True, exist_ok=True)
    stored.write_bytes(b"%PDF-1.4\n<script>alert(1)</script>\n%%EOF\n")
    with atomic(app.state.engine) as session:
        row = Handin(sheet="tiny01", student_id="ab1", kind="paper", source="web", status="accepted",
                     received_at=datetime.now(timezone.utc), stored_path="handins/x.pdf", original_name='"evil.html')
        session.add(row)
        session.flush()
        handin = row.id
    for who in ("ab1", "tutor1", "boss"):
        r = logged_in(app, who).get(f"/handins/{handin}/pdf")
        assert r.status_code == 200
        assert r.headers["content-type"] == "application/pdf"
        assert r.headers["content-security-policy"] == "sandbox"
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["content-disposition"] == 'inline; filename="tiny01-ab1-paper.pdf"'
    assert logged_in(app, "cd2").get(f"/handins/{handin}/pdf").status_code == 404
    assert logged_in(app, "tutor2").get(f"/handins/{handin}/pdf").status_code == 404
    outside = json.dumps("../../etc/passwd")
    with atomic(app.state.engine) as session:
        session.execute(update(Handin).where(Handin.id == handin).values(stored_path=json.loads(outside)))
    assert logged_in(app, "boss").get(f"/handins/{handin}/pdf").status_code == 404
