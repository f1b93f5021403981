"""The tutors' grid marks a cell (student, task) that has an open regrade request "regrade pending" (with the
request in the student's panel), read in one query for the whole group; the mark goes once the request is
answered. The grade-by-task page's data names the open request of each hand-in as well. Through the app's test
client, as a tutor sees the pages."""
from __future__ import annotations

import dataclasses
import json
import re
from datetime import datetime, timezone
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from test_tutor_grid_pages import _client, grid_course  # type: ignore[import-not-found]
from gradebook.course.config import CourseConfig
from gradebook.points.paper import set_points
from gradebook.points.publishing import publish
from gradebook.points.regrades import answer_request, request_regrade
from gradebook.store.db import atomic, open_gradebook
from gradebook.store.models import Handin


def _cell(html: str, student: str, task: str) -> str:
    """The grid's table cell of ``student`` × ``task`` (its ``<td>`` up to its input's end and any mark)."""
    found = re.search(r'<td class="cell[^"]*"[^>]*><input[^>]*data-student="%s" data-task="%s"[^>]*>(.*?)</td>'
                      % (re.escape(student), re.escape(task)), html, re.S)
    assert found is not None, (student, task)
    return found.group(0)


@pytest.mark.parametrize("db_url", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_an_open_regrade_request_marks_its_cell_until_answered(gradebook_course: CourseConfig, tmp_path: Path) -> None:
    from web.app import create_app

    cfg = dataclasses.replace(grid_course(gradebook_course, tmp_path), publish_paper="manual")
    engine, m = open_gradebook(cfg.db_url), cfg.manifest("tiny01")
    for sid in ("ab1", "ef3"):
        set_points(engine, m, sid, "proof", Fraction(2), "tutor1", 0)
        set_points(engine, m, sid, "derive", Fraction(1), "tutor1", 0)
    publish(engine, cfg, "tiny01", "boss")
    asked = request_regrade(engine, cfg, "tiny01", "proof", "ab1", "step 2 is right")
    with atomic(engine) as session:  # PDFs, so that the grade-by-task page lists them
        for sid in ("ab1", "ef3"):
            session.add(Handin(sheet="tiny01", student_id=sid, kind="paper", source="web", status="accepted",
                               received_at=datetime.now(timezone.utc), stored_path=f"handins/{sid}.pdf", size=10))
    app = create_app(cfg)
    reads: list[str] = []

    def seen(_c: Any, _cur: Any, statement: str, *_: Any) -> None:
        if "regrade_request" in statement:
            reads.append(statement)

    event.listen(engine, "before_cursor_execute", seen)
    try:
        html = _client(app, "tutor1").get("/tutor/tiny01/g1", headers={"accept": "text/html"}).text
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    marked = _cell(html, "ab1", "proof")
    assert f'data-regrade="{asked.id}"' in marked and "regrade pending" in marked
    for sid, task in (("ab1", "derive"), ("ef3", "proof"), ("ef3", "derive")):
        assert "regrade" not in _cell(html, sid, task)
    assert f'href="/regrades/{asked.id}"' in html  # the student's panel links the request
    assert len([r for r in reads if "FROM regrade_request" in r]) == 1, reads  # one query for the whole group
    # the grade-by-task page's data carries the open request of each hand-in (its script shows the mark)
    page = _client(app, "tutor1").get("/tutor/grade/tiny01/proof", headers={"accept": "text/html"}).text
    found = re.search(r'<script type="application/json" id="queue-data">(.*?)</script>', page, re.S)
    assert found is not None
    assert {e["student"]: e["regrade"] for e in json.loads(found.group(1))["entries"]} == {"ab1": asked.id, "ef3": None}
    assert 'id="regrade-flag"' in page

    answer_request(engine, cfg, asked.id, "tutor2", False, "Looked again: 3 points.", points=Fraction(3))
    html = _client(app, "tutor1").get("/tutor/tiny01/g1", headers={"accept": "text/html"}).text
    assert "regrade pending" not in html and "data-regrade" not in html
