"""The authorization matrix: every route of the app × {anonymous, student A, student B, tutor of group 1,
tutor of group 2, admin}. A route without an entry in EXPECT (or web-grid's GRID_EXPECT) fails the test."""
from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pdfpages import blank_pdf

from gradebook.people.accounts import issue_links
from gradebook.store.db import atomic
from gradebook.store.models import Handin, RegradeRequest
from web.app import create_app, iter_routes
from web.security import CSRF_HEADER
from web.testing import ensure_account, logged_in, setup_web_course

ROLES = ("anon", "student_a", "student_b", "tutor1", "tutor2", "admin")
SUBJECTS = {"student_a": "ab1", "student_b": "cd2", "tutor1": "tutor1", "tutor2": "tutor2", "admin": "boss"}
CODES = {"O": "ok", "L": "login", "D": "deny"}
PUBLIC, ADMIN_ONLY, OWN_A, NOBODY = "OOOOOO", "LDDDDO", "LODODO", "DDDDDD"
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"

# (method, route path) -> (concrete url, codes for ROLES in order, form data or None)
EXPECT: dict[tuple[str, str], tuple[str, str, dict[str, Any] | None]] = {
    ("GET", "/"): ("/", PUBLIC, None),  # anonymous: to the login page
    ("GET", "/login"): ("/login", PUBLIC, None),
    ("POST", "/login"): ("/login", PUBLIC, None),
    ("POST", "/logout"): ("/logout", PUBLIC, None),
    ("GET", "/password/{token}"): ("/password/{token}", PUBLIC, None),
    ("POST", "/password/{token}"): ("/password/{token}", PUBLIC, None),
    ("GET", "/students/{student}"): ("/students/ab1", OWN_A, None),
    ("GET", "/students/{student}/sheets/{sheet}"): ("/students/ab1/sheets/tiny01", OWN_A, None),
    ("GET", "/students/{student}/sheets/{sheet}/grading"): ("/students/ab1/sheets/tiny01/grading", OWN_A, None),
    ("POST", "/students/{student}/sheets/{sheet}/handin"): ("/students/ab1/sheets/tiny01/handin", "LODDDD",
                                                            {"kind": "paper", "confirm_late": "yes"}),
    ("GET", "/students/{student}/sheets/{sheet}/paper.pdf"): ("/students/ab1/sheets/tiny01/paper.pdf", OWN_A, None),
    ("GET", "/handins/{handin_id}/pdf"): ("/handins/{handin}/pdf", OWN_A, None),
    ("GET", "/handins/{handin_id}/pages"): ("/handins/{handin}/pages", OWN_A, None),
    ("GET", "/handins/{handin_id}/pages/{number}.png"): ("/handins/{handin}/pages/2.png", OWN_A, None),
    # tagging: the student only until the deadline (tiny01's has passed), the tutor of the group and admins
    ("POST", "/handins/{handin_id}/pages"): ("/handins/{handin}/pages", "LDDODO", {"tag": "proof:2"}),
    ("GET", "/admin/anonymity"): ("/admin/anonymity", ADMIN_ONLY, None),
    ("POST", "/admin/anonymity"): ("/admin/anonymity", ADMIN_ONLY, {"sheet": "tiny01", "on": "off"}),
    ("POST", "/admin/anonymity/reveal"): ("/admin/anonymity/reveal", ADMIN_ONLY, {"sheet": "tiny01", "reason": "x"}),
    ("GET", "/admin"): ("/admin", ADMIN_ONLY, None),
    ("GET", "/admin/students"): ("/admin/students", ADMIN_ONLY, None),
    ("GET", "/admin/grader-log"): ("/admin/grader-log", ADMIN_ONLY, None),
    ("GET", "/admin/admission"): ("/admin/admission", ADMIN_ONLY, None),
    ("GET", "/admin/admission.csv"): ("/admin/admission.csv", ADMIN_ONLY, None),
    ("GET", "/admin/admission.xlsx"): ("/admin/admission.xlsx", ADMIN_ONLY, None),
    ("GET", "/admin/preview"): ("/admin/preview?threshold=2/5", ADMIN_ONLY, None),
    ("GET", "/admin/report"): ("/admin/report", ADMIN_ONLY, None),
    ("GET", "/admin/audit"): ("/admin/audit", ADMIN_ONLY, None),
    ("GET", "/admin/similarity"): ("/admin/similarity", ADMIN_ONLY, None),
    ("GET", "/admin/similarity/{sheet}"): ("/admin/similarity/tiny01", ADMIN_ONLY, None),
    ("GET", "/admin/accounts"): ("/admin/accounts", ADMIN_ONLY, None),
    ("POST", "/admin/accounts/create"): ("/admin/accounts/create", ADMIN_ONLY, None),
    ("POST", "/admin/accounts/links"): ("/admin/accounts/links", ADMIN_ONLY, {"usernames": "ef3"}),
    ("GET", "/admin/mail"): ("/admin/mail", ADMIN_ONLY, None),
    ("POST", "/admin/mail/announce"): ("/admin/mail/announce", ADMIN_ONLY, {"subject": "Hello", "body": "Text"}),
    ("POST", "/admin/mail/links"): ("/admin/mail/links", ADMIN_ONLY, {"usernames": "ef3"}),
    ("POST", "/admin/mail/graded"): ("/admin/mail/graded", ADMIN_ONLY, {"sheet": "tiny01", "part": "notebook"}),
    ("POST", "/admin/accounts/{username}/disable"): ("/admin/accounts/nobody/disable", ADMIN_ONLY, None),
    ("GET", "/admin/groups"): ("/admin/groups", ADMIN_ONLY, None),
    ("POST", "/admin/upload/{kind}"): ("/admin/upload/roster", ADMIN_ONLY, None),
    ("POST", "/admin/staff"): ("/admin/staff", ADMIN_ONLY, None),
    ("GET", "/admin/changes"): ("/admin/changes", ADMIN_ONLY, None),
    ("POST", "/admin/extension"): ("/admin/extension", ADMIN_ONLY, None),
    ("POST", "/admin/override"): ("/admin/override", ADMIN_ONLY, None),
    ("POST", "/admin/manual-score"): ("/admin/manual-score", ADMIN_ONLY, None),
    ("POST", "/admin/regrade"): ("/admin/regrade", ADMIN_ONLY, None),
    ("GET", "/admin/rubric/{sheet}"): ("/admin/rubric/tiny01", ADMIN_ONLY, None),
    ("POST", "/admin/rubric/{sheet}"): ("/admin/rubric/tiny01", ADMIN_ONLY,
                                        {"action": "add", "task": "proof", "points": "1", "text": "Names the rule"}),
    ("POST", "/admin/publish"): ("/admin/publish", ADMIN_ONLY, {"sheet": "tiny01", "action": "publish"}),
    ("POST", "/students/{student}/sheets/{sheet}/regrade"): ("/students/ab1/sheets/tiny01/regrade", "LODDDD",
                                                             {"task": "proof", "reason": "step 2 is right"}),
    # regrade requests: staff, but never the tutor who graded the task (tutor1 graded request {regrade})
    ("GET", "/regrades"): ("/regrades", "LDDOOO", None),
    ("GET", "/regrades/{request_id}"): ("/regrades/{regrade}", "LDDDOO", None),
    ("POST", "/regrades/{request_id}"): ("/regrades/{regrade}", "LDDDOO", {"answer": ""}),
    ("GET", "/regrades/{request_id}/paper.pdf"): ("/regrades/{regrade}/paper.pdf", "LDDDOO", None),
    # the Hub service (web/routes/hub.py): without a Hub configured nobody gets anything; with one, the
    # exchange API takes a Hub token only, never a session (tests/web/test_hub_handins_belong_to_the_token_owner.py)
    ("GET", "/api/exchange/v1/sheets"): ("/api/exchange/v1/sheets", NOBODY, None),
    ("GET", "/api/exchange/v1/sheets/{sheet}/files"): ("/api/exchange/v1/sheets/tiny01/files", NOBODY, None),
    ("POST", "/api/exchange/v1/sheets/{sheet}/submissions"): ("/api/exchange/v1/sheets/tiny01/submissions", NOBODY,
                                                               None),
    ("GET", "/api/exchange/v1/submissions"): ("/api/exchange/v1/submissions", NOBODY, None),
    ("GET", "/api/exchange/v1/sheets/{sheet}/feedback"): ("/api/exchange/v1/sheets/tiny01/feedback", NOBODY, None),
    ("GET", "/login/hub"): ("/login/hub", NOBODY, None),
    ("GET", "/oauth_callback"): ("/oauth_callback?code=x&state=y", NOBODY, None),
}


def _grid_expect() -> dict[tuple[str, str], tuple[str, str, dict[str, Any] | None]]:
    """web-grid's entries (tests/web/test_tutor_grid_pages.py: GRID_EXPECT, role → outcome dicts)."""
    try:
        from test_tutor_grid_pages import GRID_EXPECT  # type: ignore[import-not-found]
    except ImportError:
        return {}
    out = {}
    for key, value in GRID_EXPECT.items():
        url, outcomes = value[0], value[1]
        data = value[2] if len(value) > 2 else None
        inverse = {v: k for k, v in CODES.items()}
        out[key] = (url, "".join(inverse[outcomes[r]] for r in ROLES), data)
    return out


def outcome(response: Any) -> str:
    location = response.headers.get("location", "")
    if response.status_code == 401 or (response.status_code == 303 and location.startswith("/login?next=")):
        return "login"
    if response.status_code in (403, 404):
        return "deny"
    assert response.status_code != 500, f"server error: {response.text[:300]}"
    return "ok"


@pytest.fixture
def web(gradebook_course: Any) -> Any:
    cfg = gradebook_course
    setup_web_course(cfg)
    app = create_app(cfg)
    engine = app.state.engine
    ensure_account(engine, "ef3")
    token = issue_links(engine, ["ef3"], "", 1, "test")[0].url.rsplit("/", 1)[1]
    stored = cfg.data_dir / "handins" / "tiny01-ab1.pdf"
    stored.parent.mkdir(parents=True, exist_ok=True)
    scan = blank_pdf(3)  # a real PDF: its pages are rendered for /handins/{id}/pages
    stored.write_bytes(scan)
    with atomic(engine) as session:
        row = Handin(sheet="tiny01", student_id="ab1", kind="paper", source="web", status="accepted",
                     received_at=datetime.now(timezone.utc), stored_path="handins/tiny01-ab1.pdf", size=len(scan),
                     original_name="scan.pdf")
        session.add(row)
        session.flush()
        handin = row.id
        request = RegradeRequest(sheet="tiny01", task="proof", student_id="ab1", reason="please", grader="tutor1",
                                 points_before="1", requested_at=datetime.now(timezone.utc))
        session.add(request)
        session.flush()
        regrade = request.id
    return app, {"token": token, "handin": handin, "regrade": regrade}


def _client(app: Any, role: str) -> TestClient:
    if role != "anon":
        return logged_in(app, SUBJECTS[role])
    client = TestClient(app, follow_redirects=False)
    match = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
    assert match
    client.headers[CSRF_HEADER] = match.group(1)
    return client


def test_every_route_has_an_entry_and_behaves(web: Any) -> None:
    app, values = web
    expect = {**EXPECT, **_grid_expect()}
    routes = set(iter_routes(app))
    assert len(routes) >= len(EXPECT) - 1, "the route walk found too few routes"
    missing = sorted(routes - set(expect))
    assert not missing, f"routes without an entry in the authorization table: {missing}"
    stale = sorted(set(EXPECT) - routes)
    assert not stale, f"entries for routes that do not exist: {stale}"
    wrong = []
    for (method, path), (url, codes, data) in sorted(expect.items()):
        url = url.format(**values)
        for role, code in zip(ROLES, codes):
            client = _client(app, role)
            files = {"file": ("scan.pdf", PDF, "application/pdf")} if path.endswith("/handin") else None
            response = client.get(url) if method == "GET" else client.request(method, url, data=data, files=files)
            got = outcome(response)
            if got != CODES[code]:
                wrong.append(f"{method} {url} as {role}: expected {CODES[code]}, got {got} ({response.status_code})")
            title = re.search(r"<title>(.*?)</title>", response.text, re.S) if response.status_code == 200 else None
            if title and ("<" in title[1] or len(title[1]) > 200):  # a page's blocks ended up in its title
                wrong.append(f"{method} {url} as {role}: the page title holds markup: {title[1][:80]!r}")
    assert not wrong, "\n".join(wrong)
