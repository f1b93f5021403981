"""The standings behind the pages are kept per process until the gradebook changes: a change made by another
process (another uvicorn worker, a command) is on this process's pages at its next request, and a read-only
request changes nothing that would make the others compute again."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from gradebook.admission.current import current_standing, current_standings
from gradebook.admission.rule import compute_standings
from gradebook.store.db import gradebook_version
from web.app import create_app
from web.testing import logged_in, setup_web_course

HTML = {"accept": "text/html"}
ROOT = Path(__file__).resolve().parents[2]
OVERRIDE = """
import sys
from gradebook.admission.overrides import set_override
from gradebook.store.db import open_gradebook
set_override(open_gradebook(sys.argv[1]), sys.argv[2], sys.argv[3], "medical certificate", "boss")
"""


def _in_another_process(db_url: str, student: str, status: str) -> None:
    """An admission override set by a separate Python process with its own engine (as another worker would)."""
    subprocess.run([sys.executable, "-c", OVERRIDE, db_url, student, status], cwd=ROOT, check=True, timeout=120,
                   env={**os.environ, "PYTHONPATH": str(ROOT)})


def _admission_row(page: str, student: str) -> str:
    start = page.index(f">{student}<")
    return page[start:page.index("</tr>", start)]


@pytest.fixture
def app(gradebook_course: Any) -> Any:
    setup_web_course(gradebook_course)
    return create_app(gradebook_course)


def test_a_change_by_another_process_is_on_the_next_page(app: Any, gradebook_course: Any) -> None:
    engine, cfg = app.state.engine, gradebook_course
    admin, student = logged_in(app, "boss"), logged_in(app, "ab1")
    before = {s.student_id: s.status for s in compute_standings(engine, cfg)}
    assert before["ab1"] != "admitted"
    # both caches warm: the course's standings (admin) and one student's (dashboard)
    assert "status-admitted" not in _admission_row(admin.get("/admin/admission", headers=HTML).text, "ab1")
    assert "status-admitted" not in student.get("/students/ab1", headers=HTML).text
    kept = current_standings(engine, cfg)
    assert current_standings(engine, cfg) is kept  # nothing changed: computed once, not per request
    version = gradebook_version(engine)

    _in_another_process(cfg.db_url, "ab1", "admitted")

    assert gradebook_version(engine) > version
    assert "status-admitted" in _admission_row(admin.get("/admin/admission", headers=HTML).text, "ab1")
    assert "status-admitted" in student.get("/students/ab1", headers=HTML).text
    assert current_standings(engine, cfg) == compute_standings(engine, cfg)
    assert current_standing(engine, cfg, "cd2") == next(s for s in compute_standings(engine, cfg) if s.student_id == "cd2")


def test_a_student_page_after_a_change_reads_that_student_alone(app: Any, gradebook_course: Any) -> None:
    engine, cfg = app.state.engine, gradebook_course
    student = logged_in(app, "cd2")
    assert "status-not_admitted" not in student.get("/students/cd2", headers=HTML).text
    current_standings(engine, cfg)  # the course's rows, at this version
    _in_another_process(cfg.db_url, "cd2", "not_admitted")
    version = gradebook_version(engine)
    page = student.get("/students/cd2", headers=HTML).text
    assert "status-not_admitted" in page
    assert gradebook_version(engine) == version  # reading pages raises nothing
    assert current_standing(engine, cfg, "cd2") == next(s for s in compute_standings(engine, cfg)
                                                        if s.student_id == "cd2")
    assert current_standing(engine, cfg, "nobody") is None


def test_a_change_to_one_students_rows_leaves_the_others_standings_computed(app: Any, gradebook_course: Any) -> None:
    engine, cfg = app.state.engine, gradebook_course
    kept = current_standing(engine, cfg, "cd2")
    assert kept is not None and current_standing(engine, cfg, "ab1") is not None
    _in_another_process(cfg.db_url, "ab1", "admitted")  # an override: a row of ab1's alone
    queries: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            queries.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        assert current_standing(engine, cfg, "cd2") is kept  # not computed again ...
        assert len(queries) == 1  # ... only the versions were read
        changed = current_standing(engine, cfg, "ab1")
        assert changed is not None and changed.status == "admitted"
        assert len(queries) == 3 and "autograde_result" in queries[2]  # the versions, then ab1's rows read again
    finally:
        event.remove(engine, "before_cursor_execute", count)


def test_a_dashboard_kept_between_requests_shows_a_new_handin_of_that_student(app: Any, gradebook_course: Any) -> None:
    from datetime import datetime, timezone

    from gradebook.store.db import atomic
    from gradebook.store.models import Handin

    student = logged_in(app, "ab1")
    pending = "saved; grading is not running"  # the hand-in waits for grading (no grader runs in this test)
    assert pending not in student.get("/students/ab1", headers=HTML).text
    student.get("/students/ab1", headers=HTML)  # kept now
    with atomic(app.state.engine) as session:  # a row of ab1's alone: ab1's versions move, nobody else's
        session.add(Handin(sheet="tiny01", student_id="ab1", kind="notebook", source="web", status="accepted",
                           received_at=datetime.now(timezone.utc), original_name="tiny01.ipynb"))
    assert pending in student.get("/students/ab1", headers=HTML).text


CHANGE = """
import sys
from datetime import datetime, timezone
from pathlib import Path
from gradebook.course.config import load_config
from gradebook.points.grid import save_cell
from gradebook.points.manual import set_extension
from gradebook.points.publishing import unpublish
from gradebook.store.db import open_gradebook
cfg = load_config(Path(sys.argv[1]))
engine = open_gradebook(cfg.db_url)
what = sys.argv[2]
if what == "points":  # a tutor grades the only paper hand-in: the sheet publishes itself at the next look
    save_cell(engine, cfg.manifest("tiny01"), "ab1", "proof", value="2", author="tutor1")
elif what == "unpublish":
    unpublish(engine, cfg, "tiny01", "boss", "a mistake in the rubric")
elif what == "extension":  # the late decision's deadline moves
    set_extension(engine, "tiny01", "ab1", datetime(2027, 3, 1, 12, tzinfo=timezone.utc), "boss", "ill", cfg)
"""


def test_a_refreshing_browser_sees_each_change_made_by_another_process(app: Any, gradebook_course: Any) -> None:
    """The dashboard answers a refresh with its tag 304 while nothing changed; a tutor's points (and the
    publication they complete), an admin's withdrawal and an extension (a new late decision), each made by
    another process, are on the very next refresh, which carries a new tag."""
    from datetime import datetime, timezone

    from gradebook.store.db import atomic
    from gradebook.store.models import Handin

    with atomic(app.state.engine) as session:
        session.add(Handin(sheet="tiny01", student_id="ab1", kind="paper", source="web", status="accepted",
                           received_at=datetime(2026, 11, 3, 9, tzinfo=timezone.utc)))
    student = logged_in(app, "ab1")
    first = student.get("/students/ab1", headers=HTML)
    assert "being graded" in first.text
    tag = first.headers["etag"]
    assert student.get("/students/ab1", headers={**HTML, "if-none-match": tag}).status_code == 304
    seen = {"points": "2 / 3", "unpublish": "being graded", "extension": "extended to"}
    for change, shown in seen.items():
        subprocess.run([sys.executable, "-c", CHANGE, str(gradebook_course.root), change], cwd=ROOT, check=True,
                       timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
        page = student.get("/students/ab1", headers={**HTML, "if-none-match": tag})
        assert page.status_code == 200 and shown in page.text, change
        assert page.headers["etag"] != tag
        tag = page.headers["etag"]
        if change == "points":  # that page recorded the publication (a write): the next refresh renders once more
            again = student.get("/students/ab1", headers={**HTML, "if-none-match": tag})
            assert again.status_code == 200 and shown in again.text
            tag = again.headers["etag"]
        assert student.get("/students/ab1", headers={**HTML, "if-none-match": tag}).status_code == 304, change
    assert "2 / 3" not in page.text  # withdrawn: the points are not read any more


def test_the_course_standings_after_writes_to_some_students_read_those_students_alone(app: Any,
                                                                                   gradebook_course: Any) -> None:
    """The admin pages' standings after a write of another process to one student's rows: that student read
    and computed again, the course's rows kept; equal to computing everything afresh, also after an extension
    (a new deadline: then the course is read again)."""
    from datetime import datetime, timezone

    from gradebook.admission.current import _course
    from gradebook.points.manual import set_extension

    engine, cfg = app.state.engine, gradebook_course
    current_standings(engine, cfg)
    kept = _course(engine, cfg).data
    _in_another_process(cfg.db_url, "ab1", "admitted")
    found = current_standings(engine, cfg)
    assert _course(engine, cfg).data is kept  # not read again ...
    assert found == compute_standings(engine, cfg)  # ... and yet current
    assert next(s for s in found if s.student_id == "ab1").status == "admitted"
    _in_another_process(cfg.db_url, "cd2", "not_admitted")
    assert current_standings(engine, cfg) == compute_standings(engine, cfg)
    assert current_standings(engine, cfg) is current_standings(engine, cfg)  # nothing changed: kept
    set_extension(engine, "tiny01", "ef3", datetime(2027, 3, 1, 12, tzinfo=timezone.utc), "boss", "ill", cfg)
    assert current_standings(engine, cfg) == compute_standings(engine, cfg)
    assert _course(engine, cfg).data is not kept


HANDIN = """
import sys
from datetime import datetime, timezone
from gradebook.store.db import atomic, open_gradebook
from gradebook.store.models import Handin
with atomic(open_gradebook(sys.argv[1])) as session:
    session.add(Handin(sheet="tiny01", student_id=sys.argv[2], kind="paper", source="web", status="accepted",
                       received_at=datetime(2026, 11, 3, 9, tzinfo=timezone.utc), stored_path="handins/x.pdf"))
"""


def _waiting(page: str) -> str:
    section = page.split('id="paper-publishing"')[1]
    start = section.index(">tiny01<")
    return section[start:section.index("</tr>", start)]


def test_the_overviews_paper_publishing_is_computed_once_and_follows_another_process(app: Any,
                                                                                     gradebook_course: Any) -> None:
    """Who the sheet's paper points still wait for (the admin overview) is computed once per version of the
    gradebook, not per request, and a paper hand-in stored by another process is on the next overview."""
    from gradebook.points.current_publications import current_publications

    engine, cfg = app.state.engine, gradebook_course
    admin = logged_in(app, "boss")
    assert "cd2" not in _waiting(admin.get("/admin", headers=HTML).text)
    kept = current_publications(engine, cfg)
    assert current_publications(engine, cfg) is kept  # nothing changed: not computed again

    subprocess.run([sys.executable, "-c", HANDIN, cfg.db_url, "cd2"], cwd=ROOT, check=True, timeout=120,
                   env={**os.environ, "PYTHONPATH": str(ROOT)})

    assert "cd2" in _waiting(admin.get("/admin", headers=HTML).text)
    assert current_publications(engine, cfg)["tiny01"].waiting == ("cd2",)


def test_the_overviews_waiting_lists_after_saves_read_the_students_saved_alone(app: Any,
                                                                              gradebook_course: Any) -> None:
    """After paper hand-ins and points of some students (a team among them), the overview's waiting lists are
    brought up to date by reading those students and their teammates alone, and equal computing everything
    afresh after every step, whatever the order of the steps."""
    from datetime import datetime, timedelta, timezone

    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    import gradebook.points.current_publications as kept_publications
    from gradebook.people.teams import import_teams
    from gradebook.points.grid import cell_state, save_cell
    from gradebook.points.publishing import publications
    from gradebook.store.db import atomic
    from gradebook.store.models import Handin

    engine, cfg = app.state.engine, gradebook_course
    teams = cfg.root / "teams.csv"
    teams.write_text("student_id,team\nab1,t1\ncd2,t1\n")
    import_teams(engine, cfg.manifest("tiny01"), teams, "boss")
    now = datetime(2026, 12, 1, 12, tzinfo=timezone.utc)  # past both deadlines
    read_for: list[set[str] | None] = []
    original = kept_publications.waiting_students

    def spy(session: Any, cfg_: Any, sems: Any, only: set[str] | None = None) -> Any:
        read_for.append(only)
        return original(session, cfg_, sems, only)

    def _save(sheet: str, student: str, value: str) -> None:  # "" clears the points; at the cell's version now
        manifest = cfg.manifest(sheet)
        save_cell(engine, manifest, student, "proof", value=value, author="tutor1",
                  expected_version=cell_state(engine, manifest, student, "proof").version)

    steps = st.lists(st.tuples(st.sampled_from(["handin", "points", "clear"]), st.sampled_from(["ab1", "cd2", "ef3"]),
                               st.sampled_from(["tiny01", "tiny02"])), min_size=1, max_size=6)

    @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
    @given(steps)
    def check(ops: list[tuple[str, str, str]]) -> None:
        kept_publications.current_publications(engine, cfg, now)  # kept
        for what, student, sheet in ops:
            if what == "handin":
                with atomic(engine) as session:
                    session.add(Handin(sheet=sheet, student_id=student, kind="paper", source="web",
                                       status="accepted", received_at=now - timedelta(days=30)))
            else:
                _save(sheet, student, "1" if what == "points" else "")
            read_for.clear()
            found = kept_publications.current_publications(engine, cfg, now)
            fresh = publications(engine, cfg, now, detail=True)
            assert {k: (p.waiting, p.published) for k, p in found.items()} == \
                   {k: (p.waiting, p.published) for k, p in fresh.items()}
            team = {"ab1", "cd2"} if student in ("ab1", "cd2") else {student}
            assert read_for in ([], [team], [None])  # nothing written / the students alone / all (after a publication)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(kept_publications, "waiting_students", spy)
        for student, sheet, team in (("ef3", "tiny02", {"ef3"}), ("ab1", "tiny01", {"ab1", "cd2"})):
            kept_publications.current_publications(engine, cfg, now)  # kept (read again after a publication)
            _save(sheet, student, "2")
            read_for.clear()
            found = kept_publications.current_publications(engine, cfg, now)
            assert read_for == [team]  # brought up to date by reading the student saved and their team alone
            assert {k: p.waiting for k, p in found.items()} == \
                   {k: p.waiting for k, p in publications(engine, cfg, now, detail=True).items()}
        check()
