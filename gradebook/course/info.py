"""Where am I: the course a command works on (root, data directory, database, sheets, roster), and the
check every command that does not create a course makes first (:func:`course_engine`)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from gradebook.store import nbgrader_tables as nt
from gradebook.course.config import CourseConfig
from gradebook.store.db import check_url, mask, open_gradebook, sqlite_path
from gradebook.errors import GradebookError
from gradebook.store.models import StudentProfile
from gradebook.course.sheets_state import SheetRow, sheet_rows

ENV_HINT = "MLPH_ROOT (course root), MLPH_COURSE_DIR (data directory), MLPH_DB_URL (database URL)"


def require_course(cfg: CourseConfig) -> None:
    """A database URL this project cannot use, a missing data directory or SQLite file: an error naming
    what was looked for."""
    check_url(cfg.db_url)
    if not cfg.data_dir.is_dir():
        raise GradebookError(
            f"no course data directory at {cfg.data_dir} (from {cfg.origins.get('data_dir', 'mlph.toml')}; "
            f"course root {cfg.root}); check the spelling, or create the course with `mlph students import`. "
            f"Environment: {ENV_HINT}")
    path = sqlite_path(cfg.db_url)
    if path is not None and not path.is_file():
        raise GradebookError(
            f"no gradebook database at {path} (from {cfg.origins.get('db_url', 'mlph.toml')}); check the spelling, "
            f"or create the course with `mlph students import`. Environment: {ENV_HINT}")


def course_engine(cfg: CourseConfig, create: bool = False) -> Engine:
    """The course's gradebook; unless ``create``, an existing one only."""
    if create:
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
    else:
        require_course(cfg)
    return open_gradebook(cfg.db_url, create=create)


@dataclass(frozen=True)
class CourseInfo:
    name: str
    root: Path
    data_dir: Path
    data_dir_exists: bool
    db_url: str  # password masked
    origins: dict[str, str]
    timezone: str
    roster: int
    off_roster: int
    sheets: list[SheetRow]
    error: str | None  # why the gradebook could not be read


def course_info(cfg: CourseConfig, as_of: datetime | None = None) -> CourseInfo:
    """What `mlph info` shows; never creates anything (a missing gradebook is reported, not made)."""
    roster = off = 0
    rows: list[SheetRow] = []
    error = None
    try:
        engine = course_engine(cfg)
        with Session(engine) as session:
            roster = session.execute(select(func.count()).select_from(StudentProfile)).scalar_one()
            off = session.execute(select(func.count()).select_from(nt.student)).scalar_one() - roster
        rows = sheet_rows(engine, cfg, as_of or datetime.now(timezone.utc))
    except GradebookError as exc:
        error = str(exc)
    return CourseInfo(cfg.name, cfg.root, cfg.data_dir, cfg.data_dir.is_dir(), mask(cfg.db_url), dict(cfg.origins),
                      cfg.timezone, roster, off, rows, error)
