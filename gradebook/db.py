"""The gradebook's engine and its one transaction helper.

:func:`open_gradebook` makes a database ready (nbgrader's tables and ours, migrated to head) and
returns its engine; :func:`atomic` is the only way this project writes: one transaction, committed
on success, rolled back on any exception.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.orm import Session

from .errors import GradebookError
from .nbgrader_schema import ensure_nbgrader_schema

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "mlph_alembic_version"
# The newest migration; a test checks it against Alembic's head, so that opening an up-to-date
# database needs one query and no Alembic import.
SCHEMA_HEAD = "0002"
_ready: dict[str, Engine] = {}


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def _sqlite_begin(conn: Any) -> None:
    # Take the write lock when a transaction starts, not at its first write: a read-then-write
    # transaction (a versioned update) then never fails half-way with "database is locked";
    # the second of two writers waits, and then sees the first one's change.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(db_url: str) -> Engine:
    if db_url.startswith("sqlite:///"):
        path = Path(db_url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(db_url, connect_args={"timeout": 30, "isolation_level": None})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(db_url, pool_pre_ping=True)


def upgrade(engine: Engine) -> None:
    """Bring our tables to the newest migration (Alembic, version table ``mlph_alembic_version``)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def _current(engine: Engine) -> bool:
    from sqlalchemy import text

    if VERSION_TABLE not in inspect(engine).get_table_names():
        return False
    with engine.connect() as conn:
        have = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar_one_or_none()
    return bool(have == SCHEMA_HEAD)


def alembic_head() -> str | None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(cfg).get_current_head()


def open_gradebook(db_url: str) -> Engine:
    """The engine of a ready gradebook at ``db_url`` (created and migrated if needed)."""
    if db_url in _ready:
        return _ready[db_url]
    engine = make_engine(db_url)
    try:
        ensure_nbgrader_schema(engine)
        if not _current(engine):
            upgrade(engine)
    except Exception as exc:
        if isinstance(exc, GradebookError):
            raise
        raise GradebookError(f"cannot open the gradebook at {engine.url!r}: {exc}") from exc
    _ready[db_url] = engine
    return engine


@contextmanager
def atomic(engine: Engine) -> Iterator[Session]:
    """One transaction: commit when the block ends, roll back (and re-raise) on any exception."""
    session = Session(engine, expire_on_commit=False)
    try:
        with session.begin():
            yield session
    finally:
        session.close()
