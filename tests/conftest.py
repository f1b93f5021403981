from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from coursefactory import make_course
from gradebook.course.config import CourseConfig, load_config


@pytest.fixture
def course_factory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., CourseConfig]]:
    """Build a course in tmp_path and point every `mlph` entry point at it (MLPH_ROOT etc.)."""

    def build(**kw: Any) -> CourseConfig:
        root = make_course(tmp_path / "course", **kw)
        monkeypatch.setenv("MLPH_ROOT", str(root))
        monkeypatch.setenv("MLPH_COURSE_DIR", str(tmp_path / "data"))
        monkeypatch.delenv("MLPH_DB_URL", raising=False)
        monkeypatch.chdir(root)
        return load_config(root)

    yield build

PG_BASE = os.environ.get("MLPH_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh empty database: a SQLite file, or a private schema on the local PostgreSQL server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'gradebook.db'}"
        return
    import uuid

    from sqlalchemy import create_engine, text

    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_BASE)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield f"{PG_BASE}?options=-csearch_path%3D{schema}"
    finally:
        from gradebook.store import db as gbdb

        for url in [u for u in gbdb._ready if schema in u]:
            gbdb._ready.pop(url).dispose()
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture
def gradebook_course(course_factory: Callable[..., CourseConfig], db_url: str,
                     monkeypatch: pytest.MonkeyPatch) -> Any:
    """A released tiny course (two sheets, one planned) on ``db_url``, with a small roster."""
    import dataclasses

    from autograder.nbgrader_bridge import generate

    cfg = course_factory(tiny=("tiny01", "tiny02"), planned={"sheet09": 20})
    monkeypatch.setenv("MLPH_DB_URL", db_url)
    cfg = dataclasses.replace(cfg, db_url=db_url)
    for sheet in ("tiny01", "tiny02"):
        generate(cfg, sheet)
    roster = cfg.root / "roster.csv"
    roster.write_text("student_id,last_name,first_name,email,matriculation\n"
                      "ab1,Müller,Anna,ab1@uni.de,3700001\n"
                      'cd2,"García, Jr.",Carlos,cd2@uni.de,3700002\n'
                      "ef3,O'Brien,Eve,ef3@uni.de,3700003\n")
    from gradebook.store.db import open_gradebook
    from gradebook.people.roster import import_students

    import_students(open_gradebook(db_url), roster)
    return cfg


# --- nothing a test starts outlives the suite --------------------------------------------------------------------
# With MLPH_CHECK_LEFTOVERS=1 (scripts/test.sh sets it): every sandbox process, kernel zygote and sandbox cgroup
# that appeared during the run must be gone at its end (after a grace period), else they are named and the run
# fails. Off by default, because another run on the same machine has sandboxes of its own (never killed here).

@pytest.fixture(scope="session", autouse=True)
def _grader_resources_closed_at_the_end() -> Iterator[None]:
    """What the test process itself keeps for in-process grading (spare kernels, the kernel zygote) is closed
    when the suite ends, as atexit would at the process's end, so that the check below sees what is left."""
    yield
    from autograder.sandbox import kernels, zygote

    kernels.close_spares()
    zygote.close_zygote()


@pytest.fixture(autouse=True)
def _gradebooks_closed_after_each_test() -> Iterator[None]:
    """The gradebooks a test opened are closed after it (their connections' descriptors would pile up over the
    suite: three per SQLite connection); those open before it (a module's or the session's) stay open."""
    from gradebook.store import db

    before = set(db._ready)
    yield
    db.close_gradebooks(keep=before)


def _leftovers() -> tuple[set[int], set[str]]:
    import subprocess

    out = subprocess.run(["pgrep", "-f", "mlph-sandbox-|zygote_server"], capture_output=True, text=True).stdout
    pids = {int(p) for p in out.split()} - {os.getpid()}
    from sandboxes import sandbox_cgroups

    return pids, {str(d) for d in sandbox_cgroups()}


def pytest_sessionstart(session: pytest.Session) -> None:
    if os.environ.get("MLPH_CHECK_LEFTOVERS") == "1":
        session.config.stash[_BEFORE] = _leftovers()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _BEFORE not in session.config.stash:
        return
    import time

    pids0, groups0 = session.config.stash[_BEFORE]
    deadline = time.monotonic() + 20
    while True:
        pids, groups = _leftovers()
        pids, groups = pids - pids0, groups - groups0
        if not (pids or groups) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    if pids or groups:
        print(f"\nleft behind by the tests: processes {sorted(pids)}, cgroups {sorted(groups)}")
        session.exitstatus = 1


_BEFORE = pytest.StashKey[tuple[set[int], set[str]]]()
