"""PostgreSQL connections are not pinged before every use (a round trip per request): a pooled connection that
the server dropped is replaced when it is next taken after lying idle (pinged then), or, when it was used more
recently, by repeating the request's first read on a new connection; either way the reader gets its answer."""
from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, select, text
from sqlalchemy.orm import Session

from gradebook.store import db
from gradebook.store.db import open_gradebook, student_versions
from gradebook.store.models import StudentVersion

pytestmark = pytest.mark.postgres


@pytest.fixture
def engine(db_url: str) -> Engine:
    if not db_url.startswith("postgresql"):
        pytest.skip("connection pooling with a server that can drop connections: PostgreSQL")
    return open_gradebook(db_url)


def _drop_pooled_connection(engine: Engine) -> None:
    """The server ends the backend of the pool's one idle connection (as a restart or an idle timeout does)."""
    with engine.connect() as conn:
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
    admin = create_engine(db.make_url(str(engine.url.render_as_string(hide_password=False))).set(query={}))
    with admin.connect() as conn:
        assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar_one()
    admin.dispose()


def _pings(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = engine.dialect.do_ping

    def counting(conn: Any) -> bool:
        calls.append(1)
        return real(conn)

    monkeypatch.setattr(engine.dialect, "do_ping", counting)
    return calls


def test_a_connection_in_steady_use_is_not_pinged(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    engine.pool.dispose()
    student_versions(engine, ["ab1"])  # a new connection: nothing to ping
    pings = _pings(engine, monkeypatch)
    for _ in range(5):
        student_versions(engine, ["ab1"])
    assert pings == []


def test_a_dropped_connection_in_recent_use_costs_the_reader_nothing(engine: Engine) -> None:
    engine.pool.dispose()
    before = student_versions(engine, ["ab1"])
    _drop_pooled_connection(engine)
    assert student_versions(engine, ["ab1"]) == before


def test_an_idle_dropped_connection_is_found_by_its_ping_before_use(engine: Engine,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    engine.pool.dispose()
    student_versions(engine, [])
    _drop_pooled_connection(engine)
    monkeypatch.setattr(db, "IDLE_PING_SECONDS", 0.0)
    pings = _pings(engine, monkeypatch)
    with Session(engine) as session:  # no retry around an ordinary session: the checkout's ping found it
        assert session.execute(select(StudentVersion.counter)).all() == []
    assert pings
