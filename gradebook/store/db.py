"""The gradebook's engine, its one transaction helper and its version.

:func:`open_gradebook` makes a database ready (nbgrader's tables and ours, migrated to head) and
returns its engine; :func:`atomic` is the only way this project writes: one transaction, committed
on success, rolled back on any exception.

The version (:func:`gradebook_version`): every ORM session on a gradebook this process opened (``atomic``,
and any other session, nbgrader's included) that wrote to a table other than the web's sessions and login
attempts raises the counter in ``gradebook_version`` as the last statement before its commit, in the same
transaction; a write that may change anyone's standing sets ``course_counter`` to it, one that wrote only
rows of named students (:data:`PER_STUDENT` tables, a DML statement with the execution option
:data:`STUDENTS_OPTION`) sets those students' ``student_version`` instead (:func:`student_versions`). A reader that reads the counter first and then the gradebook (in any transaction) therefore
never sees data older than the counter says: what a process computed at one counter value (standings,
decided sheets) stays valid, in every process, until the counter moves. Raising it last keeps its row lock
to the commit itself (no waits inside the transaction, no lock cycles). On PostgreSQL the counter and the
students' counters are one statement (a data-modifying WITH), built once and bound at execution.
"""
from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar, cast

from sqlalchemy import Connection, Engine, String, Table, column, create_engine, event, func, insert, inspect, make_url, select, \
    true, update
from sqlalchemy import bindparam
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects.postgresql import ARRAY, JSON
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction

from gradebook.errors import GradebookError
from gradebook.store.models import AuditLog, GradebookVersion, StudentVersion
from gradebook.store.nbgrader_schema import ensure_nbgrader_schema

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "mlph_alembic_version"
# The newest migration; a test checks it against Alembic's head, so that opening an up-to-date
# database needs one query and no Alembic import.
SCHEMA_HEAD = "0006"
_ready: dict[str, Engine] = {}
_versioned: set[str] = set()  # the URLs (as the engines render them) of the gradebooks opened here
# written on every login and request of the web application, and read by nothing that is computed once
UNVERSIONED = frozenset({"web_session", "login_attempt", GradebookVersion.__tablename__, StudentVersion.__tablename__,
                         "grading_job", "grader"})  # the grading queue and the graders' heartbeats: read live
_AUDITS = "mlph_audits"  # Session.info: audit rows the version counters' statement writes at the commit
_WROTE = "mlph_wrote"  # Session.info: the students this transaction wrote rows of, or EVERYONE


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
    engine = create_engine(db_url)
    event.listen(engine, "checkin", _checked_in)
    event.listen(engine, "checkout", _ping_if_idle(engine.dialect))
    return engine


# A pooled connection is pinged when it is taken from the pool after lying there this long (the server or a
# proxy may have dropped it meanwhile), not before every use as ``pool_pre_ping`` does (a round trip on every
# request); a connection dropped while in use more recently is found by the first statement, which
# :func:`read_retrying` repeats once on a new connection (the pool drops every connection as old as it).
IDLE_PING_SECONDS = 10.0
_IDLE_SINCE = "mlph_idle_since"


def _checked_in(_dbapi_conn: Any, record: Any) -> None:
    record.info[_IDLE_SINCE] = time.monotonic()


def _ping_if_idle(dialect: Any) -> Callable[[Any, Any, Any], None]:
    """The pool's checkout hook: a connection idle for :data:`IDLE_PING_SECONDS` is pinged; a dead one is
    refused (``DisconnectionError``: the pool drops it and takes, or makes, another)."""
    def checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get(_IDLE_SINCE)
        if since is None or time.monotonic() - since < IDLE_PING_SECONDS:
            return
        try:
            alive = dialect.do_ping(dbapi_conn)
        except Exception as exc:
            raise DisconnectionError(f"a pooled connection was dropped: {exc}") from exc
        if not alive:
            raise DisconnectionError("a pooled connection was dropped")

    return checkout


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


def close_gradebooks(keep: set[str] | frozenset[str] = frozenset()) -> None:
    """Close the pooled connections of every gradebook this process opened, except those at the URLs in
    ``keep``, and forget them (an engine still held elsewhere stays usable: it connects again when used).
    For a process that opens many gradebooks in turn (the test suite): each SQLite connection holds three
    file descriptors."""
    for url in [u for u in _ready if u not in keep]:
        _ready.pop(url).dispose()


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
    _versioned.add(engine.url.render_as_string(hide_password=False))
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


# --- the version -------------------------------------------------------------------------------

# rows of one student: a write to them changes that student's standing only (team_member is not: it moves a team)
PER_STUDENT = frozenset({"paper_points", "paper_comment", "handin", "autograde_result", "extension",
                         "admission_override", "group_membership", "student_profile"})
NEUTRAL = frozenset({"audit_log", "page_tag"})  # read by no standing
EVERYONE = "*"
STUDENTS_OPTION = "mlph_students"  # execution option of a DML statement: the only students whose rows it writes


def _touch(session: Session, table: object, students: Iterable[str] | None) -> None:
    """Note a write to ``table`` (of ``students`` alone, or of anyone: None) in this transaction."""
    if not isinstance(table, str) or table in UNVERSIONED:
        return
    scope = session.info.get(_WROTE, frozenset())
    if table in NEUTRAL or scope == EVERYONE:
        session.info[_WROTE] = scope
    elif table in PER_STUDENT and students is not None:
        session.info[_WROTE] = scope | frozenset(students)
    else:
        session.info[_WROTE] = EVERYONE


@event.listens_for(Session, "after_flush")
def _flushed(session: Session, _flush: UOWTransaction) -> None:
    for obj in (*session.new, *session.dirty, *session.deleted):
        student = getattr(obj, "student_id", None)
        _touch(session, getattr(obj, "__tablename__", None), [student] if isinstance(student, str) else None)


@event.listens_for(Session, "do_orm_execute")
def _executed(state: ORMExecuteState) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        students = state.execution_options.get(STUDENTS_OPTION)
        _touch(state.session, getattr(getattr(state.statement, "table", None), "name", None), students)


def audit_with_versions(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Audit rows (``audit_log``'s columns) of this :func:`atomic` transaction: on a PostgreSQL gradebook of this
    process written at the commit by the statement that raises the version counters (a data-modifying CTE: one
    round trip fewer for a save); elsewhere at once."""
    if not rows:
        return
    if session.get_bind().dialect.name == "postgresql" and _versioned_here(session):
        session.info.setdefault(_AUDITS, []).extend(rows)
    else:
        session.execute(insert(cast(Table, AuditLog.__table__)), list(rows))


def _versioned_here(session: Session) -> bool:
    """Whether the session's gradebook was opened in this process (its writes raise the version counters)."""
    return session.get_bind().engine.url.render_as_string(hide_password=False) in _versioned


def _audited(audits: list[dict[str, Any]]) -> tuple[Any, dict[str, Any]]:
    """The CTE that writes ``audits`` (PostgreSQL), and its parameter."""
    columns = ("at", "author", "entity", "key", "old_value", "new_value", "reason")
    table = cast(Table, AuditLog.__table__)
    rows = func.json_to_recordset(sql_cast(bindparam("audits", type_=String), JSON)).table_valued(
        *(column(c, table.c[c].type) for c in columns)).render_derived(name="audits", with_types=True)
    cte = insert(table).from_select(list(columns), select(*(rows.c[c] for c in columns))).cte("audited")
    value = json.dumps([{**a, "at": a["at"].isoformat()} for a in audits])
    return cte, {"audits": value}


@event.listens_for(Session, "before_commit")
def _raise_version(session: Session) -> None:
    """The last statements of a writing transaction on a gradebook of this process: the counter + 1 (and
    the course's counter, or the students' counters, set to it), with the audit rows left for it."""
    session.flush()  # what is still pending (the commit would flush it after this hook)
    scope = session.info.pop(_WROTE, None)
    audits = session.info.pop(_AUDITS, None)
    if scope is None or not _versioned_here(session):
        if audits:
            session.execute(insert(cast(Table, AuditLog.__table__)), audits)
        return
    raised: dict[str, Any] = {"counter": GradebookVersion.counter + 1}
    if scope == EVERYONE:
        raised["course_counter"] = GradebookVersion.counter + 1
    bump = update(GradebookVersion).where(GradebookVersion.id == 1).values(**raised).returning(GradebookVersion.counter)
    logged, params = _audited(audits) if audits else (None, {})
    if not scope or scope == EVERYONE:
        session.execute(bump.add_cte(logged) if logged is not None else bump, params)
        return
    students = sorted(scope)  # their rows are locked in one order
    if session.get_bind().dialect.name == "postgresql":  # one statement: the counter, then the students' rows
        raised_cte = bump.cte("raised")
        ids = func.unnest(bindparam("students", type_=ARRAY(String))).table_valued("student_id").render_derived(name="ids")
        upsert = postgresql_insert(cast(Table, StudentVersion.__table__)).from_select(
            ["student_id", "counter"], select(ids.c.student_id, raised_cte.c.counter).select_from(ids.join(raised_cte, true()))
            .order_by(ids.c.student_id)).add_cte(raised_cte)
        if logged is not None:
            upsert = upsert.add_cte(logged)
        session.execute(upsert.on_conflict_do_update(index_elements=["student_id"],
                                                     set_={"counter": upsert.excluded.counter}),
                        {"students": students, **params})
        return
    counter = session.execute(bump).scalar_one()
    upsert_sqlite = sqlite_insert(StudentVersion)
    session.execute(upsert_sqlite.values([{"student_id": sid, "counter": counter} for sid in students])
                    .on_conflict_do_update(index_elements=["student_id"], set_={"counter": counter}))


@event.listens_for(Session, "after_commit")
@event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    session.info.pop(_WROTE, None)
    session.info.pop(_AUDITS, None)


@contextmanager
def reading(engine: Engine) -> Iterator[Connection]:
    """A connection for one reading statement: on PostgreSQL in autocommit (a single statement sees one
    snapshot anyway), which saves the BEGIN and ROLLBACK round trips of a transaction around it."""
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.execution_options(isolation_level="AUTOCOMMIT")
        yield conn


@contextmanager
def reading_session(engine: Engine) -> Iterator[Session]:
    """A session for reads only, on a :func:`reading` connection: on PostgreSQL, at its READ COMMITTED, a
    transaction gives several statements no common snapshot, only two more round trips (BEGIN, ROLLBACK)."""
    with reading(engine) as conn, Session(bind=conn) as session:
        yield session


def plain_rows(session: Session, query: Any) -> Sequence[Any]:
    """``query``'s rows on the session's connection, as plain rows fetched at once: no ORM loading per row (a
    course's hand-ins, results or paper points are thousands), and in the session's transaction."""
    return session.connection().execute(query).all()


T = TypeVar("T")


def read_retrying(engine: Engine, read: Callable[[Connection], T]) -> T:
    """``read`` on a :func:`reading` connection, once more on a new connection when the first one turns out to
    have been dropped (the first statement of a request: the pool is not pinged before every use)."""
    try:
        with reading(engine) as conn:
            return read(conn)
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
    with reading(engine) as conn:
        return read(conn)


def gradebook_version(bind: Engine | Connection | Session) -> int:
    """The gradebook's version now (read it before the data it keys: :mod:`gradebook.store.db`)."""
    query = select(GradebookVersion.counter).where(GradebookVersion.id == 1)
    if isinstance(bind, Engine):
        with bind.connect() as conn:
            return int(conn.execute(query).scalar_one())
    return int(bind.execute(query).scalar_one())


# built once: one statement with the students' ids bound at execution (an expanding IN)
_VERSIONS = select(GradebookVersion.counter, GradebookVersion.course_counter, select(
    func.coalesce(func.max(StudentVersion.counter), 0)).where(
    StudentVersion.student_id.in_(bindparam("ids", expanding=True))).scalar_subquery()).where(GradebookVersion.id == 1)


def student_versions(engine: Engine, students: Iterable[str]) -> tuple[int, int, int]:
    """(the gradebook's version, the course's version, the highest version of these students' rows), read
    together: a student's standing computed after this read is current while the last two stay."""
    ids = sorted(students)
    row = read_retrying(engine, lambda conn: conn.execute(_VERSIONS, {"ids": ids}).one())
    return int(row[0]), int(row[1]), int(row[2])
