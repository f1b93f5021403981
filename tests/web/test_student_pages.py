"""Student pages: the dashboard's numbers are compute_standings'; team members see the team's hand-in; the
grading part polls until the result is stored; the hand-in route hands the bytes to the intake only."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from fractions import Fraction
from typing import Any

import pytest

from gb_helpers import autograded
from gradebook.admission.rule import compute_standings
from gradebook.points.grading_queue import register_grader
from gradebook.store.db import atomic
from gradebook.exports.admission_list import percent_text
from gradebook.store.models import Handin, TeamMember
from web.routes import student as routes_student
from web.app import create_app
from web.testing import logged_in, setup_web_course

HTML = {"accept": "text/html"}


@pytest.fixture
def app(gradebook_course: Any) -> Any:
    setup_web_course(gradebook_course)
    return create_app(gradebook_course)


def _handin(app: Any, student: str, kind: str, when: datetime, path: str | None = None) -> int:
    with atomic(app.state.engine) as session:
        row = Handin(sheet="tiny01", student_id=student, kind=kind, source="web", status="accepted", received_at=when,
                     stored_path=path, original_name=f"{kind}-upload")
        session.add(row)
        session.flush()
        return int(row.id)


def test_dashboard_shows_the_standing(app: Any, gradebook_course: Any) -> None:
    autograded(gradebook_course, "tiny01", "ab1", Fraction(1), Fraction(3, 2))
    standing = next(s for s in compute_standings(app.state.engine, gradebook_course) if s.student_id == "ab1")
    page = logged_in(app, "ab1").get("/students/ab1", headers=HTML).text
    assert f"{percent_text(standing.fraction)} %" in page
    assert f"status-{standing.status}" in page
    for sheet in ("tiny01", "tiny02"):
        assert sheet in page
    assert "sheet09" not in page and "1 more sheet(s) (20 points) are still to come" in page  # planned: not shown
    assert "2.5 / 3" in page  # the autograded points as graded


def test_team_members_see_the_team_handin_and_grading_polls(app: Any, gradebook_course: Any) -> None:
    with atomic(app.state.engine) as session:
        session.add_all([TeamMember(sheet="tiny01", team="t1", student_id="ab1"),
                         TeamMember(sheet="tiny01", team="t1", student_id="ef3")])
    pdf = gradebook_course.data_dir / "handins" / "p.pdf"
    pdf.parent.mkdir(parents=True, exist_ok=True)
    pdf.write_bytes(b"%PDF-1.4\n%%EOF\n")
    now = datetime.now(timezone.utc)
    paper = _handin(app, "ef3", "paper", now - timedelta(minutes=5), "handins/p.pdf")
    _handin(app, "ef3", "notebook", now - timedelta(minutes=1))
    ab1 = logged_in(app, "ab1")
    page = ab1.get("/students/ab1/sheets/tiny01", headers=HTML).text
    assert "team with ef3" in page and f"/handins/{paper}/pdf" in page
    assert ab1.get(f"/handins/{paper}/pdf").status_code == 200
    assert ab1.get("/students/ab1/sheets/tiny01/paper.pdf").status_code == 200
    assert logged_in(app, "cd2").get(f"/handins/{paper}/pdf").status_code == 404
    fragment = ab1.get("/students/ab1/sheets/tiny01/grading", headers=HTML).text  # no grader runs: said so
    assert 'data-poll="/students/ab1/sheets/tiny01/grading"' in fragment and "being graded" not in fragment
    assert "Grading is not running just now; your hand-in is safe and will be graded when it starts" in fragment
    assert "saved; grading is not running" in ab1.get("/students/ab1", headers=HTML).text
    register_grader(app.state.engine, "host:1:a", "host", 1, None)  # a grader's heartbeat
    fragment = ab1.get("/students/ab1/sheets/tiny01/grading", headers=HTML).text
    assert "Your notebook is being graded; this part updates by itself" in fragment and "not running" not in fragment
    autograded(gradebook_course, "tiny01", "ef3", Fraction(1), Fraction(2), when=now)
    fragment = ab1.get("/students/ab1/sheets/tiny01/grading", headers=HTML).text
    assert "data-poll" not in fragment and "test_scale_more" in fragment


@dataclass
class Record:
    status: str
    reason: str
    received_at: datetime
    handin_id: int | None


def test_handin_goes_to_the_intake_only(app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []

    def intake(cfg: Any, engine: Any, **kw: Any) -> Record:  # stands in for autograder.intake.upload.accept_upload
        calls.append(kw)
        ok = kw["data"].startswith(b"%PDF")
        return Record("accepted" if ok else "refused", "" if ok else "<b>not a PDF</b>", datetime.now(timezone.utc), 1)

    monkeypatch.setattr(routes_student, "_accept_upload", lambda: intake)
    ab1 = logged_in(app, "ab1")
    page = ab1.get("/students/ab1/sheets/tiny01", headers=HTML).text  # the deadline has passed: said before
    assert "counts 0 points" in page and 'name="confirm_late"' in page
    r = ab1.post("/students/ab1/sheets/tiny01/handin", data={"kind": "paper"},  # not confirmed: nothing stored
                 files={"file": ("x.pdf", b"%PDF-1.4 scan", "application/pdf")}, headers=HTML)
    assert r.status_code == 409 and "confirm" in r.text and calls == []
    late = {"kind": "paper", "confirm_late": "yes"}
    r = ab1.post("/students/ab1/sheets/tiny01/handin", data=late,
                 files={"file": ("../../x.pdf", b"%PDF-1.4 scan", "application/pdf")})
    assert r.status_code == 303 and r.headers["location"] == "/students/ab1/sheets/tiny01?handed_in=paper"
    assert calls[-1] == {"sheet": "tiny01", "student": "ab1", "kind": "paper", "filename": "../../x.pdf",
                         "data": b"%PDF-1.4 scan", "uploaded_by": "ab1"}
    r = ab1.post("/students/ab1/sheets/tiny01/handin", data=late,
                 files={"file": ("x.pdf", b"<html>", "application/pdf")}, headers=HTML)
    assert r.status_code == 400 and "&lt;b&gt;not a PDF&lt;/b&gt;" in r.text
    assert ab1.post("/students/cd2/sheets/tiny01/handin", data={"kind": "paper"},
                    files={"file": ("x.pdf", b"%PDF", "application/pdf")}).status_code == 403
    assert ab1.post("/students/ab1/sheets/sheet09/handin", data={"kind": "paper"},  # planned: no such sheet
                    files={"file": ("x.pdf", b"%PDF", "application/pdf")}).status_code == 404
    assert len(calls) == 2
