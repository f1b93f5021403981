"""The admin's overview says whether a grader runs (its heartbeat), since when the last job finished and what
waits; the graders' log is linked and shown to admins only, as inert text."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from gradebook.points import grading_queue as gq
from gradebook.store.db import atomic
from web.app import create_app
from web.testing import logged_in, setup_web_course

HTML = {"accept": "text/html"}


@pytest.fixture
def app(gradebook_course: Any) -> Any:
    setup_web_course(gradebook_course)
    return create_app(gradebook_course)


def test_the_overview_shows_whether_grading_runs_and_links_its_log(app: Any, gradebook_course: Any) -> None:
    engine, admin = app.state.engine, logged_in(app, "boss")
    with atomic(engine) as session:
        gq.enqueue(session, "tiny01", "ab1")
    card = admin.get("/admin", headers=HTML).text.split('id="grading-state"')[1].split("</div>\n</div>")[0]
    assert "not running" in card and "mlph serve --grade" in card and "1 queued" in card and "never" in card
    assert 'href="/admin/grader-log"' in card and "(none yet)" in card

    now = datetime.now(timezone.utc)
    gq.register_grader(engine, "gradehost:77:x", "gradehost", 77, ["tiny01"], now=now - timedelta(minutes=5))
    job = gq.claim(engine, "gradehost:77:x")
    assert job is not None
    gq.finish(engine, job, "gradehost:77:x", "graded")
    gq.heartbeat(engine, "gradehost:77:x", [])
    log = gradebook_course.data_dir / "logs" / "grader.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("2026-12-04 10:00:00 INFO tiny01: ab1: 3 / 3 points (graded) <script>alert(1)</script>\n")
    card = admin.get("/admin", headers=HTML).text.split('id="grading-state"')[1].split("</div>\n</div>")[0]
    assert "running" in card and "not running" not in card and "gradehost (process 77)" in card
    assert "0 queued" in card and "last job finished: never" not in card and "1 job(s)" in card

    shown = admin.get("/admin/grader-log")
    assert shown.status_code == 200 and shown.headers["content-type"].startswith("text/plain")
    assert shown.headers["x-content-type-options"] == "nosniff" and "ab1: 3 / 3 points" in shown.text
    for who in ("ab1", "tutor1"):
        assert logged_in(app, who).get("/admin/grader-log").status_code in (403, 404)


def test_a_long_log_is_shown_from_its_end(tmp_path: Any) -> None:
    from web.admin_data import log_tail

    path = tmp_path / "grader.log"
    path.write_text("".join(f"line {i}\n" for i in range(100_000)))
    tail = log_tail(path, limit=1000)
    assert tail.endswith("line 99999\n") and tail.startswith("line ") and len(tail) <= 1000
    assert "No grader has written a log yet" in log_tail(tmp_path / "missing.log")
