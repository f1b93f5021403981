"""The hot pages read the gradebook in a bounded number of statements, whatever the size of the group or the
course: under load every statement is a round trip after which the request's thread must win its worker's
interpreter lock again, so a page's latency grows with its statements (benchmarks/web.py). The bounds are this
code's counts; a change that adds statements to these pages must say why. The grid reads the session, the tutor's
groups, and everything it shows in one statement (:mod:`gradebook.points.grid_read`); a transaction would cost round
trips of its own (BEGIN, ROLLBACK on PostgreSQL), so it opens none beyond the connections' own. A student's first
dashboard reads the session, the versions, and their rows and their team's in one statement
(:mod:`gradebook.admission.student_read`)."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event

from web.app import create_app
from web.testing import logged_in, setup_web_course

HTML = {"accept": "text/html"}
GRID, GRID_TRANSACTIONS, FIRST_DASHBOARD, REFRESH = 3, 2, 3, 2


@pytest.fixture
def app(gradebook_course: Any) -> Any:
    setup_web_course(gradebook_course)
    return create_app(gradebook_course)


@contextmanager
def statements(engine: Any) -> Iterator[list[str]]:
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if not statement.startswith("BEGIN"):  # SQLite's transactions begin with a statement of their own
            seen.append(statement)

    def begun(_conn: Any) -> None:
        seen.append("<transaction>")

    event.listen(engine, "before_cursor_execute", note)
    event.listen(engine, "begin", begun)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)
        event.remove(engine, "begin", begun)


def counted(seen: list[str]) -> tuple[int, int]:
    """(statements, transactions) of what :func:`statements` saw."""
    return sum(x != "<transaction>" for x in seen), seen.count("<transaction>")


def test_a_tutors_grid_reads_a_bounded_number_of_statements_whatever_the_group(app: Any,
                                                                              gradebook_course: Any) -> None:
    teams = gradebook_course.root / "teams.csv"  # a team across the groups: its members' rows are read too
    teams.write_text("student_id,team\nab1,t1\ncd2,t1\n")
    from gradebook.people.teams import import_teams

    import_teams(app.state.engine, gradebook_course.manifest("tiny01"), teams, "boss")
    tutor, admin = logged_in(app, "tutor1"), logged_in(app, "boss")
    for client, group in ((tutor, "g1"), (admin, "g2")):
        assert client.get(f"/tutor/tiny01/{group}", headers=HTML).status_code == 200  # warm: seeds the rubrics
    counts = {}
    for client, group in ((tutor, "g1"), (admin, "g2")):  # two students, one student
        with statements(app.state.engine) as seen:
            page = client.get(f"/tutor/tiny01/{group}", headers=HTML)
        assert page.status_code == 200 and "Team t1" in page.text
        counts[group] = counted(seen)
    assert counts["g1"] == counts["g2"], counts
    assert counts["g1"][0] <= GRID and counts["g1"][1] <= GRID_TRANSACTIONS, "\n".join(x[:90] for x in seen)


def test_a_students_first_dashboard_and_a_refresh_read_a_bounded_number_of_statements(app: Any) -> None:
    student, other = logged_in(app, "ab1"), logged_in(app, "cd2")  # accounts made: writes to the course
    assert other.get("/students/cd2", headers=HTML).status_code == 200  # the course's facts read once
    with statements(app.state.engine) as seen:
        first = student.get("/students/ab1", headers=HTML)
    assert first.status_code == 200 and counted(seen)[0] <= FIRST_DASHBOARD, "\n".join(x[:90] for x in seen)
    with statements(app.state.engine) as seen:
        again = student.get("/students/ab1", headers={**HTML, "if-none-match": first.headers["etag"]})
    assert again.status_code == 304 and counted(seen)[0] <= REFRESH, seen
