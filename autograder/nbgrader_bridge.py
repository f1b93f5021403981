"""Everything that goes through nbgrader: its configuration, generate, release, collect, submit.

nbgrader is driven through its Python API (``NbGraderAPI``) with a traitlets ``Config`` built from
the course configuration, so `mlph` and plain `nbgrader` commands see the same course.
"""
from __future__ import annotations

import getpass
import os
import shutil
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from traitlets.config import Config

from gradebook.course.config import CourseConfig
from gradebook.store.db import open_gradebook

from autograder.checks import CHECK_MODULE
from autograder.errors import NbgraderError

COURSE_ID = "mlph"
# Files in source/sheetNN/ that never go to students.
PRIVATE_FILES = ["sheet.toml", "mistakes.toml"]


def ensure_tools_on_path() -> None:
    """nbgrader shells out to ``alembic`` on a fresh database: the venv's bin must be on PATH."""
    bindir = os.path.dirname(sys.executable)
    parts = os.environ.get("PATH", "").split(os.pathsep)
    if bindir not in parts:
        os.environ["PATH"] = os.pathsep.join([bindir, *parts])


def nbgrader_config(cfg: CourseConfig, release_dir: Path | None = None, db_url: str | None = None) -> Config:
    c = Config()
    c.CourseDirectory.root = str(cfg.data_dir)
    c.CourseDirectory.course_id = COURSE_ID
    c.CourseDirectory.source_directory = str(cfg.source_dir)
    c.CourseDirectory.release_directory = str(release_dir or cfg.release_dir)
    c.CourseDirectory.db_url = db_url or cfg.db_url
    c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", *PRIVATE_FILES]
    c.Exchange.root = str(cfg.exchange_dir)
    c.Exchange.path_includes_course = True
    c.Exchange.timezone = cfg.timezone
    c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
    return c


def _api(cfg: CourseConfig, force: bool = False, **kwargs: Any) -> Any:
    ensure_tools_on_path()
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    prepare_exchange(cfg)
    config = nbgrader_config(cfg, **kwargs)
    if force:
        config.ExchangeReleaseAssignment.force = True
    coursedir = CourseDirectory(config=config)
    return NbGraderAPI(coursedir=coursedir, config=config)


def _check(result: dict[str, Any], what: str) -> None:
    if not result.get("success"):
        log = (result.get("log") or "").strip()
        error = (result.get("error") or "").strip()
        raise NbgraderError(f"{what} failed: {error or log or 'no message from nbgrader'}")


def utc_naive(when: datetime) -> datetime:
    """nbgrader keeps naive UTC datetimes."""
    return when.astimezone(timezone.utc).replace(tzinfo=None)


def generate(cfg: CourseConfig, sheet: str, release_dir: Path | None = None, db_url: str | None = None) -> Path:
    """nbgrader ``generate_assignment`` (source → release), with the due date from the manifest.

    Registers the sheet, its cells and due date in the gradebook at ``db_url`` and adds the
    ``mlph_check`` helper the notebooks import.
    """
    from nbgrader.api import Gradebook

    manifest = cfg.manifest(sheet)
    ensure_tools_on_path()
    url = db_url or cfg.db_url
    open_gradebook(url)
    with Gradebook(url, course_id=COURSE_ID) as gb:
        gb.update_or_create_assignment(sheet, duedate=utc_naive(manifest.due))
    api = _api(cfg, release_dir=release_dir, db_url=url)
    _check(api.generate_assignment(sheet, force=True, create=True), f"generating {sheet}")
    out = (release_dir or cfg.release_dir) / sheet
    shutil.copy2(CHECK_MODULE, out / CHECK_MODULE.name)
    return out


def release(cfg: CourseConfig, sheet: str, release_dir: Path | None = None, force: bool = False) -> Path:
    """Copy the generated student version into the exchange's outbound directory (``force``: over an earlier
    release; without it, an earlier release is an error that says so)."""
    out = cfg.exchange_dir / COURSE_ID / "outbound" / sheet
    if out.exists() and not force:
        raise NbgraderError(f"{sheet} is already released (in {out}); release a corrected version with "
                            f"`mlph release {sheet} --force` (students who fetched it must fetch it again)")
    api = _api(cfg, force=force, release_dir=release_dir)
    _check(api.release_assignment(sheet), f"releasing {sheet}")
    from gradebook.course.sheets_state import mark_released

    mark_released(open_gradebook(cfg.db_url), sheet, getpass.getuser())
    return out


def prepare_exchange(cfg: CourseConfig) -> None:
    """The filesystem exchange's root, world-writable as nbgrader requires (mode 1777)."""
    root = cfg.exchange_dir
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o1777)


def _student_exchange(cfg: CourseConfig, cls: Any, sheet: str, student: str, workdir: Path) -> Any:
    from nbgrader.auth import Authenticator
    from nbgrader.coursedir import CourseDirectory

    config = nbgrader_config(cfg)
    config.Exchange.assignment_dir = str(workdir)
    config.Exchange.cache = str(workdir / ".nbgrader-cache")
    coursedir = CourseDirectory(config=config)
    coursedir.assignment_id = sheet
    coursedir.student_id = student
    return cls(coursedir=coursedir, authenticator=Authenticator(config=config), config=config)


def fetch(cfg: CourseConfig, sheet: str, student: str, workdir: Path) -> Path:
    """What `nbgrader fetch_assignment` does on a student's machine; the fetched directory."""
    ensure_tools_on_path()
    from nbgrader.exchange.default.fetch_assignment import ExchangeFetchAssignment

    try:
        _student_exchange(cfg, ExchangeFetchAssignment, sheet, student, workdir).start()
    except Exception as exc:  # nbgrader raises ExchangeError and plain exceptions alike
        raise NbgraderError(f"fetching {sheet} as {student} failed: {exc}") from exc
    return workdir / COURSE_ID / sheet


def submit(cfg: CourseConfig, sheet: str, student: str, workdir: Path, clock: datetime | None = None) -> None:
    """Submit ``workdir/<sheet>/`` to the exchange as ``student``, as `nbgrader submit` does.

    ``clock`` is the student's clock (nbgrader takes the timestamp from the submitting machine);
    the demo uses it to simulate submissions made at a given time.
    """
    ensure_tools_on_path()
    from nbgrader.exchange.default.submit import ExchangeSubmit

    class _Submit(ExchangeSubmit):  # type: ignore[misc]
        def set_timestamp(self) -> None:
            if clock is None:
                super().set_timestamp()
            else:
                self.timestamp = clock.strftime(self.timestamp_format)

    exchange = _student_exchange(cfg, _Submit, sheet, student, workdir)
    try:
        exchange.start()
    except Exception as exc:  # nbgrader raises ExchangeError and plain exceptions alike
        raise NbgraderError(f"submitting {sheet} as {student} failed: {exc}") from exc
