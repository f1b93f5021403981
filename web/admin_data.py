"""Read-only data for the admin pages: the autograde state per sheet, the audit log with filters, and
uploaded tables parsed from a temporary file (so the import functions see a file, as from the CLI)."""
from __future__ import annotations

import re
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TypeVar

from fastapi import HTTPException, UploadFile
from sqlalchemy import Engine, func, or_, select
from sqlalchemy.orm import Session

from gradebook.course.config import CourseConfig
from gradebook.course.sheets_state import release_times
from gradebook.errors import GradebookError
from gradebook.store.models import AuditLog, AutogradeResult, Handin

T = TypeVar("T")
TABLE_SUFFIXES = (".csv", ".xlsx")
FAILED = ("timeout", "crashed", "invalid", "grader_error", "missing")


@dataclass
class SheetState:
    sheet: str
    title: str
    due: datetime
    authored: bool
    counts: Counter[str] = field(default_factory=Counter)  # graded / failed statuses / pending
    problems: list[tuple[str, str, str]] = field(default_factory=list)  # (student, status, reason)
    handins: int = 0
    released: bool = False  # students see the sheet (authored and released)
    released_at: datetime | None = None  # when (None for a sheet released before the gradebook recorded it)


def _utc(when: datetime | None) -> datetime | None:
    if when is None:
        return None
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when


def autograde_states(engine: Engine, cfg: CourseConfig) -> list[SheetState]:
    """Per sheet: results by status, pending hand-ins (accepted, not graded since, or marked for regrading)
    and the students whose notebook failed, with the reason."""
    with Session(engine) as session:
        results = session.execute(select(AutogradeResult.sheet, AutogradeResult.student_id, AutogradeResult.status,
                                         AutogradeResult.reason, AutogradeResult.graded_at,
                                         AutogradeResult.fingerprint)).all()
        latest = session.execute(select(Handin.sheet, Handin.student_id, func.max(Handin.received_at))
                                 .where(Handin.kind == "notebook", Handin.status == "accepted")
                                 .group_by(Handin.sheet, Handin.student_id)).all()
        released = release_times(session, cfg)
    states = {s.id: SheetState(s.id, s.manifest.title if s.manifest else "(planned)", s.due, s.manifest is not None,
                               released=s.manifest is not None and s.id in released, released_at=released.get(s.id))
              for s in cfg.semester}
    graded_at: dict[tuple[str, str], datetime | None] = {}
    for sheet, student, status, reason, when, fingerprint in results:
        state = states.get(sheet)
        if state is None:
            continue
        graded_at[(sheet, student)] = None if fingerprint == "" else _utc(when)
        state.counts[status] += 1
        if status in FAILED:
            state.problems.append((student, status, reason or ""))
    for sheet, student, received in latest:
        state = states.get(sheet)
        if state is None:
            continue
        state.handins += 1
        done = graded_at.get((sheet, student))
        if done is None or (_utc(received) or done) > done:
            state.counts["pending"] += 1
    for state in states.values():
        state.problems.sort()
    return list(states.values())


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def audit_rows(engine: Engine, student: str = "", sheet: str = "", author: str = "", limit: int = 500) -> list[AuditLog]:
    """The newest ``limit`` audit entries matching the filters (keys are ``sheet/…/student``, ``sheet/student``,
    ``student`` or ``sheet``, depending on the entity)."""
    query = select(AuditLog).order_by(AuditLog.id.desc()).limit(limit)
    if author:
        query = query.where(AuditLog.author == author)
    if student:
        query = query.where(or_(AuditLog.key == student, AuditLog.key.like(f"%/{_like(student)}", escape="\\")))
    if sheet:
        query = query.where(or_(AuditLog.key == sheet, AuditLog.key.like(f"{_like(sheet)}/%", escape="\\")))
    with Session(engine) as session:
        return list(session.execute(query).scalars())


def _safe_name(name: str, suffix: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name).stem)[:60].strip("._") or "upload"
    return stem + suffix


@contextmanager
def uploaded_table(upload: UploadFile, limit: int) -> Iterator[Path]:
    """The upload as a CSV/XLSX file in a private temporary directory (removed afterwards), read in
    chunks up to ``limit`` bytes (413 beyond). Error messages name it by its own (sanitised) name."""
    suffix = Path(upload.filename or "").suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise HTTPException(400, f"{upload.filename or 'the upload'}: expected a .csv or .xlsx file")
    with tempfile.TemporaryDirectory(prefix="mlph-upload-") as tmp:
        path = Path(tmp) / _safe_name(upload.filename or "", suffix)
        size = 0
        with path.open("wb") as fh:
            while chunk := upload.file.read(1 << 16):
                size += len(chunk)
                if size > limit:
                    raise HTTPException(413, f"{upload.filename}: larger than {limit // (1024 * 1024)} MiB")
                fh.write(chunk)
        yield path


def run_import(upload: UploadFile, limit: int, action: Callable[[Path], T]) -> T:
    """``action(path)`` on the uploaded table; a GradebookError's message without the temporary directory."""
    with uploaded_table(upload, limit) as path:
        try:
            return action(path)
        except GradebookError as exc:
            raise type(exc)(str(exc).replace(str(path.parent) + "/", "")) from exc


LOG_TAIL_BYTES = 200_000


def grader_log(cfg: CourseConfig) -> Path:
    """The graders' log file (written by `mlph autograde --watch`, `mlph serve --grade`)."""
    return cfg.data_dir / "logs" / "grader.log"


def log_tail(path: Path, limit: int = LOG_TAIL_BYTES) -> str:
    """The last ``limit`` bytes of a log, from a whole line on (or a sentence saying there is none yet)."""
    try:
        with path.open("rb") as fh:
            size = fh.seek(0, 2)
            fh.seek(max(size - limit, 0))
            data = fh.read()
    except OSError:
        return "No grader has written a log yet: start one with `mlph serve --grade` or `mlph autograde --watch`.\n"
    if size > limit:
        data = data.split(b"\n", 1)[-1]
    return data.decode("utf-8", errors="replace")
