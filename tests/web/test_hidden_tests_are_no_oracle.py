"""Grade-on-submit is no oracle on the hidden tests: before the deadline, every byte a student can fetch
(sheet page, polled fragment, dashboard, feedback file, status codes) is the same whether the hidden checks
pass or fail; after the deadline a hand-in made in time shows the hidden outcome per test cell (never per
check, no exception name from a hidden part); a hand-in made after the deadline never shows one."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from autograder.grading.feedback import student_view
from autograder.grading.run import autograde
from autograder.grading.visibility import AFTER, BEFORE, LATE, phase, student_result
from autograder.intake.upload import accept_upload
from autograder.limits import Limits
from autograder.nbgrader_bridge import generate
from coursefactory import TINY_ANSWER, student_notebook
from gradebook.people.groups import add_staff
from gradebook.people.roster import import_students
from gradebook.store.db import open_gradebook
from web.app import create_app
from web.testing import logged_in

HTML = {"accept": "text/html"}
# Passes both visible checks (a = 2 and a = 4), fails both hidden ones (a = -1.5 and a = 3.25).
HIDDEN_WRONG = ("def scale(x, a):\n    x = np.asarray(x, dtype=float)\n"
                "    return a * x if a in (2, 4) else np.zeros_like(x)\n")
# Raises a built-in exception chosen by the hidden input: a channel that must stay shut before the deadline.
HIDDEN_RAISES = ("def scale(x, a):\n    x = np.asarray(x, dtype=float)\n    if a not in (2, 4):\n"
                 "        raise [KeyError, IndexError, ZeroDivisionError][int(abs(a)) % 3]('probe')\n    return a * x\n")
STUDENTS = {"s1": TINY_ANSWER, "s2": HIDDEN_WRONG, "s3": HIDDEN_RAISES}
RECEIVED = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)


@pytest.fixture
def course(course_factory: Any) -> Any:
    cfg = course_factory(tiny=("tiny01",), due="2099-01-01T10:00:00")  # the deadline is far ahead
    generate(cfg, "tiny01")
    roster = cfg.root / "roster.csv"  # the same name for everyone: pages differ only by the id
    roster.write_text("student_id,last_name,first_name,email\n"
                      + "".join(f"{s},Doe,Jo,{s}@uni.de\n" for s in STUDENTS))
    import_students(open_gradebook(cfg.db_url), roster)
    return cfg


def _fetch(app: Any, cfg: Any, sid: str) -> list[tuple[int, bytes]]:
    client = logged_in(app, sid)
    got = [client.get(url, headers=HTML) for url in
           (f"/students/{sid}", f"/students/{sid}/sheets/tiny01", f"/students/{sid}/sheets/tiny01/grading")]
    files = sorted((cfg.data_dir / "feedback" / sid / "tiny01").glob("*"))
    return [(r.status_code, r.content) for r in got] + [(0, f.read_bytes()) for f in files]


def _same(pages: list[tuple[int, bytes]], sid: str) -> list[tuple[int, bytes]]:
    """Only the student's own id and the session's CSRF token may differ."""
    return [(code, re.sub(rb'name="csrf_token" value="[^"]+"|content="[A-Za-z0-9_-]{20,}"', b"TOKEN",
                          body.replace(sid.encode(), b"SID"))) for code, body in pages]


def test_before_the_deadline_the_hidden_outcome_changes_no_byte(course: Any) -> None:
    engine = open_gradebook(course.db_url)
    for sid, answer in STUDENTS.items():
        record = accept_upload(course, engine, sheet="tiny01", student=sid, kind="notebook", filename="tiny01.ipynb",
                               data=student_notebook(course, answer), uploaded_by=sid, now=RECEIVED)
        assert record.status == "accepted", record.reason
    summary = autograde(course, "tiny01", workers=1, limits=Limits(cell_timeout=20), progress=False)
    scores = {r["student"]: r["score"] for r in summary.results}
    assert scores == {"s1": "3", "s2": "0", "s3": "0"}  # the staff's result: the hidden tests did run

    add_staff(engine, "boss", "The Boss", None, "admin", author="test")
    app = create_app(course)
    seen = {sid: _same(_fetch(app, course, sid), sid) for sid in STUDENTS}
    assert [code for code, _ in seen["s1"]] == [200, 200, 200, 0]  # three pages and the feedback file
    assert seen["s1"] == seen["s2"] == seen["s3"]
    page = seen["s1"][1][1].decode()
    assert "2 of 2</b> tests pass" in page and "after the deadline" in page
    assert "KeyError" not in page and "IndexError" not in page and "ZeroDivisionError" not in page
    staff = logged_in(app, "boss").get("/students/s2/sheets/tiny01", headers=HTML).text
    assert "hidden check: values" in staff  # tutors and admins see the hidden outcome at once


def _result(cells: list[dict[str, Any]], **kw: Any) -> dict[str, Any]:
    return {"student": "s", "sheet": "tiny01", "status": "graded", "score": "1", "max_score": "3", "cells": cells,
            "submitted_at": RECEIVED.isoformat(), **kw}


VISIBLE_OK = {"name": "scale_visible", "hidden": "", "outcome": "ok"}
HIDDEN_BAD = {"name": "", "hidden": "yes", "outcome": "values"}
HIDDEN_UNRECORDED = {"name": "", "hidden": "yes", "outcome": "not_recorded"}


def test_after_the_deadline_hidden_outcomes_are_per_cell_without_exception_names() -> None:
    cells = [{"grade_id": "a", "points": "0", "max_points": "1", "status": "failed", "message": "",
              "checks": [VISIBLE_OK, HIDDEN_BAD, dict(HIDDEN_BAD)]},
             {"grade_id": "b", "points": "0", "max_points": "2", "status": "error", "ename": "KeyError",
              "message": "KeyError", "checks": [VISIBLE_OK, HIDDEN_UNRECORDED]}]
    shown = student_result(_result(cells), AFTER)
    assert [(c["status"], c["message"], c["points"]) for c in shown["cells"]] == [
        ("failed", "a hidden test failed", "0"), ("failed", "a hidden test failed", "0")]
    assert "KeyError" not in repr(shown)
    assert all("hidden" not in ch for c in shown["cells"] for ch in c["checks"])  # hidden checks not listed


def test_an_error_that_stopped_a_visible_check_is_shown_in_every_phase() -> None:
    cells = [{"grade_id": "a", "points": "0", "max_points": "1", "status": "error", "ename": "NameError",
              "message": "NameError: a name is not defined", "checks": [
                  {"name": "scale_visible", "hidden": "", "outcome": "not_recorded"}, HIDDEN_UNRECORDED]}]
    for view in (BEFORE, AFTER, LATE):
        assert student_result(_result(cells), view)["cells"][0]["status"] == "error"


def test_a_late_handin_never_shows_a_hidden_outcome_or_its_points(course: Any) -> None:
    manifest = course.manifest("tiny01")
    deadline = datetime(2026, 11, 1, 10, tzinfo=timezone.utc)
    late = RECEIVED  # a month after that deadline
    assert phase(late, deadline, timedelta(0), late + timedelta(days=400)) == LATE
    assert phase(deadline - timedelta(minutes=1), deadline, timedelta(minutes=15),
                 deadline + timedelta(minutes=10)) == BEFORE  # within the grace period nothing is revealed yet
    good = _result([{"grade_id": "a", "points": "1", "max_points": "1", "status": "passed", "message": "",
                     "checks": [VISIBLE_OK, {"name": "", "hidden": "yes", "outcome": "ok"}]}],
                   deadline=deadline.isoformat(), late=True, counted_score="0")
    bad = _result([{"grade_id": "a", "points": "0", "max_points": "1", "status": "failed", "message": "",
                    "checks": [VISIBLE_OK, HIDDEN_BAD]}], deadline=deadline.isoformat(), late=True,
                  counted_score="0", score="0")
    later = late + timedelta(days=400)
    assert student_view(good, manifest, later) == student_view(bad, manifest, later)
    assert student_view(good, manifest, later)["counted_score"] == "0"  # the tiny sheet's policy: late counts 0
    # the same hand-ins made in time show the difference after the deadline
    good_in_time = dict(good, submitted_at=(deadline - timedelta(hours=1)).isoformat(), late=False)
    bad_in_time = dict(bad, submitted_at=(deadline - timedelta(hours=1)).isoformat(), late=False)
    assert student_view(good_in_time, manifest, later) != student_view(bad_in_time, manifest, later)
