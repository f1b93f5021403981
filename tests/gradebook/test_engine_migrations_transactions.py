"""The engine, its migrations and the one transaction helper, on SQLite and PostgreSQL."""
from __future__ import annotations

import pytest
from sqlalchemy import inspect, select, text
from sqlalchemy.orm import Session

from gradebook.store import nbgrader_tables as nt
from gradebook.store.db import SCHEMA_HEAD, VERSION_TABLE, alembic_head, atomic, open_gradebook


def test_schema_head_constant_matches_the_migrations():
    assert alembic_head() == SCHEMA_HEAD


def test_fresh_database_has_nbgrader_and_our_tables(db_url):
    engine = open_gradebook(db_url)
    tables = set(inspect(engine).get_table_names())
    assert {"grade", "submitted_assignment", "alembic_version", VERSION_TABLE, "paper_points", "audit_log",
            "autograde_result", "group_membership", "admission_override"} <= tables
    with engine.connect() as conn:
        assert conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar_one() == SCHEMA_HEAD
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()  # nbgrader's, in-process


def test_nbgrader_accepts_the_database(db_url):
    from nbgrader.api import Gradebook

    open_gradebook(db_url)
    with Gradebook(db_url, course_id="mlph") as gb:
        gb.add_student("x1", first_name="Xenia")
        assert [s.id for s in gb.students] == ["x1"]


def test_atomic_rolls_back_everything_on_error(db_url):
    from sqlalchemy import insert

    engine = open_gradebook(db_url)
    with pytest.raises(RuntimeError):
        with atomic(engine) as session:
            session.execute(insert(nt.student).values(id="a1"))
            session.execute(insert(nt.student).values(id="a2"))
            raise RuntimeError("boom")
    with Session(engine) as session:
        assert session.execute(select(nt.student.c.id)).all() == []
    with atomic(engine) as session:
        session.execute(insert(nt.student).values(id="a1"))
    with Session(engine) as session:
        assert session.execute(select(nt.student.c.id)).scalars().all() == ["a1"]
