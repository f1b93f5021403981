"""One save of a cell (the grid's and the grade-by-task page's ``save_cell``) costs a handful of SQL statements:
one that reads and locks what it needs, the writes, one audit insert for both the points and the comment, and
the version counters (on PostgreSQL the audit rows and the counters are one statement); the state it answers with is what a fresh read of the cell shows. Counted with
SQLAlchemy's ``before_cursor_execute`` (BEGIN / COMMIT are not statements of the save)."""
from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, select
from sqlalchemy.orm import Session

from test_tutor_grid_library import with_rubric  # type: ignore[import-not-found]
from gradebook.course.config import CourseConfig
from gradebook.points.grid import cell_state, save_cell
from gradebook.points.rubric import ensure_seeded
from gradebook.store.db import open_gradebook, student_versions
from gradebook.store.models import AuditLog

# statements of one save of ticks + comment (PostgreSQL: the counters and the audit rows in one statement;
# SQLite: the audit rows, then the counters in two)
LIMIT = {"postgresql": 4, "sqlite": 6}


@contextmanager
def statements(engine: Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.strip().upper() not in ("BEGIN", "BEGIN IMMEDIATE", "COMMIT", "ROLLBACK"):
            seen.append(" ".join(statement.split()))

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


@pytest.fixture
def course(gradebook_course: CourseConfig, tmp_path: Path) -> CourseConfig:
    return with_rubric(gradebook_course, tmp_path)


def test_a_save_of_ticks_and_comment_is_one_read_and_a_few_writes(course: CourseConfig) -> None:
    engine, m = open_gradebook(course.db_url), course.manifest("tiny01")
    ensure_seeded(engine, m)
    limit = LIMIT[engine.dialect.name]
    before = student_versions(engine, ["ab1"])
    with statements(engine) as first:
        state = save_cell(engine, m, "ab1", "derive", ticks=["setup"], adjustment="", comment="see page 2",
                          author="tina")
    with statements(engine) as again:
        state = save_cell(engine, m, "ab1", "derive", ticks=["setup", "result"], adjustment="", comment="good",
                          author="tina", expected_version=state.version, expected_comment_version=state.comment_version)
    for seen in (first, again):
        assert len(seen) <= limit, "\n".join(seen)
        reads = [s for s in seen if s.startswith("SELECT")]
        assert len(reads) == 1, reads  # the cell, the items, the student and the audit counts together
        if engine.dialect.name == "postgresql":  # the items shared with rubric edits, the cell's rows for writing
            assert "FOR SHARE" in reads[0] and reads[0].count("FOR UPDATE") == 2, reads[0]
        assert sum("INSERT INTO audit_log" in s for s in seen) == 1  # on PostgreSQL inside the counters' statement
    # what the save answered is what the cell holds (built from the write, not read again)
    assert state.written and state == dataclasses.replace(cell_state(engine, m, "ab1", "derive"), written=True)
    assert (state.points, state.version, state.ticks, state.comment, state.comment_version) == (4, 2, ("setup", "result"),
                                                                                                 "good", 2)
    with Session(engine) as s:  # every stored change audited: two saves of points and comment
        assert len(s.execute(select(AuditLog.id).where(AuditLog.key == "tiny01/derive/ab1")).all()) == 4
    after = student_versions(engine, ["ab1"])
    assert after[0] == before[0] + 2 and after[2] == after[0]  # the counters moved: cached pages see the change
    assert after[1] == before[1]  # one student's rows: the course's counter stays


def test_a_save_that_changes_nothing_writes_nothing(course: CourseConfig) -> None:
    engine, m = open_gradebook(course.db_url), course.manifest("tiny01")
    state = save_cell(engine, m, "cd2", "proof", value="2", comment="ok", author="tina")
    version = student_versions(engine, ["cd2"])
    with statements(engine) as seen:
        same = save_cell(engine, m, "cd2", "proof", value="2", comment="ok", author="tom",
                         expected_version=state.version, expected_comment_version=state.comment_version)
    assert not same.written and same.entered_by == "tina"
    assert len(seen) == 1 and seen[0].startswith("SELECT"), seen
    assert student_versions(engine, ["cd2"]) == version


def test_audit_rows_left_for_the_commit_are_written_with_it_or_not_at_all(course: CourseConfig) -> None:
    """Audit rows handed to the version counters' statement (PostgreSQL) are written by the commit, also of a
    transaction that wrote nothing versioned; a transaction that fails writes none, and leaves none behind."""
    from datetime import datetime, timezone

    from gradebook.store.db import atomic, audit_with_versions

    engine = open_gradebook(course.db_url)
    row = {"at": datetime.now(timezone.utc), "author": "tina", "entity": "paper_points", "key": "tiny01/derive/zz9",
           "old_value": None, "new_value": "1", "reason": "a test"}
    with pytest.raises(RuntimeError):
        with atomic(engine) as session:
            audit_with_versions(session, [row])
            raise RuntimeError("the save fails after its audit rows were made")
    with atomic(engine) as session:
        audit_with_versions(session, [{**row, "new_value": "2"}])
    with Session(engine) as s:
        found = s.execute(select(AuditLog.new_value, AuditLog.old_value, AuditLog.at)
                          .where(AuditLog.key == "tiny01/derive/zz9")).all()
    assert [(new, old) for new, old, _ in found] == [("2", None)]
    assert abs((found[0][2].replace(tzinfo=found[0][2].tzinfo or timezone.utc) - row["at"]).total_seconds()) < 1e-3
