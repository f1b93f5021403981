"""A student reads their paper points, the tutors' comments and the rubric marks only once the sheet is
published: before, every route a student can reach holds none of it (the page says "being graded", the
total and status leave the points out), while the admin's admission list counts them. After publishing,
the marks show got / not got; a regrade request goes in from the sheet page (escaped), the grader cannot
open it, another tutor answers, and the student reads the answer and the new points."""
from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

import pytest

from coursefactory import RUBRIC_TASK
from gradebook.course.config import load_config
from gradebook.points.grid import save_cell
from gradebook.store.db import atomic
from gradebook.store.models import Handin
from web.app import create_app, iter_routes
from web.security import CSRF_HEADER
from web.testing import logged_in, setup_web_course

HTML = {"accept": "text/html"}
SECRETS = ("SECRET-PROOF-NOTE", "SECRET-DERIVE-NOTE", "2.5", "2,5", "5/2", "✔", "✘", "Sets up the integral")
# Every GET route a student reaches (the others are staff-only: tests/web/test_authorization_matrix.py); a new
# route must be added here, so that it is checked for unpublished points as well.
STUDENT_GETS = {
    "/": "/", "/login": "/login", "/password/{token}": "/password/nothing",
    "/students/{student}": "/students/ab1", "/students/{student}/sheets/{sheet}": "/students/ab1/sheets/tiny01",
    "/students/{student}/sheets/{sheet}/grading": "/students/ab1/sheets/tiny01/grading",
    "/students/{student}/sheets/{sheet}/paper.pdf": "/students/ab1/sheets/tiny01/paper.pdf",
    "/handins/{handin_id}/pdf": "/handins/{handin}/pdf",
    "/api/exchange/v1/sheets": "/api/exchange/v1/sheets",
    "/api/exchange/v1/sheets/{sheet}/files": "/api/exchange/v1/sheets/tiny01/files",
    "/api/exchange/v1/submissions": "/api/exchange/v1/submissions",
    "/api/exchange/v1/sheets/{sheet}/feedback": "/api/exchange/v1/sheets/tiny01/feedback",
    "/login/hub": "/login/hub", "/oauth_callback": "/oauth_callback?code=x&state=y",
}
STAFF_PREFIXES = ("/admin", "/tutor", "/regrades", "/static")


@pytest.fixture
def app(gradebook_course: Any) -> Any:
    """tiny01 (due in the past) with tasks proof (3, typed points) and derive (4, rubric setup 1.5 + result 2.5);
    ab1 graded completely by tutor1, cd2 handed in and waits: the sheet is not published."""
    manifest = gradebook_course.root / "source" / "tiny01" / "sheet.toml"
    manifest.write_text(manifest.read_text() + RUBRIC_TASK)
    cfg = load_config(gradebook_course.root)
    setup_web_course(cfg)
    app = create_app(cfg)
    pdf = cfg.data_dir / "handins" / "ab1.pdf"
    pdf.parent.mkdir(parents=True, exist_ok=True)
    pdf.write_bytes(b"%PDF-1.4\n%%EOF\n")
    with atomic(app.state.engine) as session:
        for sid in ("ab1", "cd2"):
            session.add(Handin(sheet="tiny01", student_id=sid, kind="paper", source="web", status="accepted",
                               received_at=datetime(2026, 11, 3, 9, tzinfo=timezone.utc), stored_path="handins/ab1.pdf"))
    manifest_ = cfg.manifest("tiny01")
    save_cell(app.state.engine, manifest_, "ab1", "proof", value="2,5", comment="SECRET-PROOF-NOTE", author="tutor1")
    save_cell(app.state.engine, manifest_, "ab1", "derive", ticks=["setup"], comment="SECRET-DERIVE-NOTE", author="tutor1")
    return app


def _student_urls(app: Any) -> list[str]:
    gets = {path for method, path in iter_routes(app) if method == "GET" and not path.startswith(STAFF_PREFIXES)}
    assert gets == set(STUDENT_GETS), f"student-reachable routes changed: {sorted(gets ^ set(STUDENT_GETS))}"
    with atomic(app.state.engine) as session:
        handin = session.query(Handin.id).filter(Handin.student_id == "ab1").scalar()
    return [url.format(handin=handin) for url in STUDENT_GETS.values()]


def test_before_publishing_no_student_route_holds_the_points(app: Any) -> None:
    ab1 = logged_in(app, "ab1")
    for url in _student_urls(app):
        body = ab1.get(url, headers=HTML).text
        leaked = [s for s in SECRETS if s in body]
        assert not leaked, f"{url} shows {leaked} before the sheet is published"
    page = ab1.get("/students/ab1/sheets/tiny01", headers=HTML).text
    assert "Paper: <strong>being graded</strong>" in page and "Derivation" in page and "Ask for a regrade" not in page
    dash = ab1.get("/students/ab1", headers=HTML).text
    assert re.search(r'<div class="big">0 <span class="muted small">of', dash)  # the total leaves 4 points out
    assert "being graded" in dash and "status-open" in dash
    # staff count them: the admission list has ab1 at 4 points (2.5 + 1.5)
    admission = logged_in(app, "boss").get("/admin/admission", headers=HTML).text
    row = admission.split('href="/students/ab1">ab1</a>')[1].split("</tr>")[0]
    assert '<td class="num">4</td>' in row
    staff_page = logged_in(app, "boss").get("/students/ab1/sheets/tiny01", headers=HTML).text
    assert "SECRET-PROOF-NOTE" in staff_page and "not published yet; the student reads" in staff_page


def test_after_publishing_points_comments_and_marks_show(app: Any) -> None:
    boss = logged_in(app, "boss")
    overview = boss.get("/admin", headers=HTML).text
    assert "paper-publishing" in overview and "cd2" in overview.split('id="paper-publishing"')[1]  # cd2 waits
    assert boss.post("/admin/publish", data={"sheet": "tiny01", "action": "publish"}).status_code == 303
    page = logged_in(app, "ab1").get("/students/ab1/sheets/tiny01", headers=HTML).text
    assert "SECRET-PROOF-NOTE" in page and "SECRET-DERIVE-NOTE" in page and "being graded" not in page
    assert re.search(r'title="got">✔</span> Sets up the integral', page)
    assert re.search(r'title="not got">✘</span> Correct result', page)
    assert "2.5 / 3" in page and "1.5 / 4" in page and "Ask for a regrade of derive" in page
    cd2 = logged_in(app, "cd2").get("/students/cd2/sheets/tiny01", headers=HTML).text
    assert "being graded" in cd2 and "✘" not in cd2  # published, but cd2's tasks are not graded yet


def test_a_regrade_request_goes_to_another_tutor_and_the_answer_comes_back(app: Any) -> None:
    boss = logged_in(app, "boss")
    boss.post("/admin/publish", data={"sheet": "tiny01", "action": "publish"})
    forged = logged_in(app, "ab1")
    del forged.headers[CSRF_HEADER]  # a form posted from another site carries no token
    assert forged.post("/students/ab1/sheets/tiny01/regrade", data={"task": "derive", "reason": "x"}).status_code == 403
    ab1 = logged_in(app, "ab1")
    asked = ab1.post("/students/ab1/sheets/tiny01/regrade", data={"task": "derive",
                                                                   "reason": "<b>Step 2</b> gives the result"})
    assert asked.status_code == 303
    page = ab1.get("/students/ab1/sheets/tiny01", headers=HTML).text
    assert "&lt;b&gt;Step 2&lt;/b&gt;" in page and "<b>Step 2" not in page and "waiting for an answer" in page
    again = ab1.post("/students/ab1/sheets/tiny01/regrade", data={"task": "derive", "reason": "again"})
    assert again.status_code == 400 and "already open" in again.text and "x</q>" not in again.text
    assert "regrade pending" in boss.get("/admin/admission", headers=HTML).text
    rid = re.search(r'href="/regrades/(\d+)"', logged_in(app, "tutor2").get("/tutor", headers=HTML).text)
    assert rid, "the open request is not on the second tutor's home"
    url = f"/regrades/{rid.group(1)}"
    tutor1 = logged_in(app, "tutor1")
    assert url not in tutor1.get("/tutor", headers=HTML).text and tutor1.get(url).status_code == 404
    tutor2 = logged_in(app, "tutor2")
    assert tutor2.get(f"{url}/paper.pdf").status_code == 200  # the second grader reads the PDF (other group)
    answered = tutor2.post(url, data={"answer": "Right, step 2 is complete.", "use_ticks": "1",
                                      "ticks": ["setup", "result"]})
    assert answered.status_code == 303
    page = ab1.get("/students/ab1/sheets/tiny01", headers=HTML).text
    assert "Right, step 2 is complete." in page and "Points changed from 1.5 to 4" in page
    assert "4 / 4" in page and "Ask for a regrade of derive" in page  # answered: a new request is possible
    assert "regrade pending" not in boss.get("/admin/admission", headers=HTML).text
