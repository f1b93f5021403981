"""The gradebook's engine and its one transaction helper.

:func:`open_gradebook` makes a database ready (nbgrader's tables and ours, migrated to head) and
returns its engine; :func:`atomic` is the only way this project writes: one transaction, committed
on success, rolled back on any exception.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect, make_url
from sqlalchemy.orm import Session

from gradebook.errors import GradebookError
from gradebook.store.nbgrader_schema import ensure_nbgrader_schema

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "mlph_alembic_version"
# The newest migration; a test checks it against Alembic's head, so that opening an up-to-date
# database needs one query and no Alembic import.
SCHEMA_HEAD = "0005_rubric"
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


URL_HINT = "postgresql+psycopg://user@host/db"


def mask(db_url: str) -> str:
    """The URL with any password replaced by ***."""
    try:
        return make_url(db_url).render_as_string(hide_password=True)
    except Exception:
        return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", db_url)


def check_url(db_url: str) -> None:
    """A GradebookError in one line for a URL this project cannot use (with the form that works)."""
    shown = mask(db_url)
    scheme = db_url.split(":", 1)[0].lower() if ":" in db_url else ""
    if scheme in ("postgres", "postgresql", "postgresql+psycopg2", "pgsql"):
        raise GradebookError(f"database URL {shown!r}: write PostgreSQL URLs as {URL_HINT} (the psycopg driver)")
    if scheme.split("+")[0] in ("mysql", "mariadb", "oracle", "mssql"):
        raise GradebookError(f"database URL {shown!r}: only SQLite and PostgreSQL are supported; "
                             f"for PostgreSQL write {URL_HINT}")
    if not db_url.startswith("sqlite:///") and scheme != "postgresql+psycopg":
        raise GradebookError(f"database URL {shown!r} is malformed: use sqlite:////path/to/gradebook.db or {URL_HINT}")
    try:
        make_url(db_url)
    except Exception as exc:
        raise GradebookError(f"database URL {shown!r} is malformed ({type(exc).__name__}); expected "
                             f"sqlite:////path/to/gradebook.db or {URL_HINT}") from None


def make_engine(db_url: str) -> Engine:
    check_url(db_url)
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


def sqlite_path(db_url: str) -> Path | None:
    return Path(db_url.removeprefix("sqlite:///")) if db_url.startswith("sqlite:///") else None


def open_gradebook(db_url: str, create: bool = True) -> Engine:
    """The engine of a ready gradebook at ``db_url`` (migrated to head if needed). With ``create=False``
    a SQLite file that does not exist is an error naming it, instead of a new empty gradebook.

    The default is still True while the autograder's release/demo (which create a course) do not pass
    ``create=True``; the gradebook's commands pass False."""
    if db_url in _ready:
        return _ready[db_url]
    path = sqlite_path(db_url)
    if not create and path is not None and not path.is_file():
        raise GradebookError(f"no gradebook at {path} (database URL from MLPH_DB_URL, mlph.toml's db_url, or "
                             "<data directory>/gradebook.db): check MLPH_COURSE_DIR / MLPH_DB_URL, or create the course "
                             "(`mlph students import`, `mlph release`)")
    engine = make_engine(db_url)
    try:
        ensure_nbgrader_schema(engine)
        if not _current(engine):
            upgrade(engine)
    except Exception as exc:
        engine.dispose()
        if isinstance(exc, GradebookError):
            raise
        raise GradebookError(f"cannot open the gradebook at {mask(db_url)}: {_one_line(exc)}") from None
    _ready[db_url] = engine
    return engine


def _one_line(exc: BaseException) -> str:
    """A driver error's first line (psycopg's and sqlite's messages run over several)."""
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__) + (f"; the URL should look like {URL_HINT}"
                                                          if "connect" in str(exc).lower() else "")


@contextmanager
def atomic(engine: Engine) -> Iterator[Session]:
    """One transaction: commit when the block ends, roll back (and re-raise) on any exception."""
    session = Session(engine, expire_on_commit=False)
    try:
        with session.begin():
            yield session
    finally:
        session.close()
