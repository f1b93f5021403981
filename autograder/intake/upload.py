"""The web upload: an authenticated student hands in a notebook or the paper part's PDF.

The same checks and records as every other intake (:mod:`.store`, ``handin`` rows); the server's clock is
the time of receipt; the file gets a server-chosen name. A refused upload is recorded (status ``refused``,
with the reason) and leaves no file behind; any failure while checking it (whatever the parser raises) is
such a refusal, never an error of the server.

Bounded per student: at most ``[intake] uploads_per_minute`` (6) uploads in any 60 seconds and
``upload_mb_per_sheet`` (200 MB) of uploads per sheet (an :class:`UploadThrottled`, not recorded; the web
answers 429). The count and the record are one transaction holding the student's row, so concurrent uploads
cannot pass the bound together. The record is made first (``refused``, "being received"), the file is
written with its time of receipt (the grader reads the two together), then the record is completed.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import Literal

from sqlalchemy import Engine, func, select, update

from gradebook.course.config import CourseConfig
from gradebook.store.db import atomic
from gradebook.points.grading_queue import enqueue
from gradebook.points.handins import ACCEPTED, REFUSED, HandinRecord, late_refusal, record_handins, roster_ids
from gradebook.store.models import Handin, StudentProfile

from autograder.intake.safe import IntakeRefused, clean_name
from autograder.intake.store import check_notebook, check_pdf, digest, source_grade_ids, write_paper, write_submission

__all__ = ["UploadThrottled", "accept_upload", "source_grade_ids"]

log = logging.getLogger(__name__)
WINDOW = timedelta(seconds=60)


class UploadThrottled(IntakeRefused):
    """Too many uploads (or bytes) of one student: refused before it is read, and not recorded."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


UPLOAD_SOURCES = ("web", "hub")  # uploads over HTTP; they share the student's bounds


def _shown_name(filename: str) -> str:
    try:
        return clean_name(filename.rsplit("/", 1)[-1].rsplit("\\", 1)[-1], 128)
    except IntakeRefused:
        return "(unnamed)"


def _reserve(engine: Engine, rec: HandinRecord, per_minute: int, bytes_per_sheet: int) -> int:
    """Count the student's uploads and record this one, in one transaction that holds the student's row (the
    row lock in PostgreSQL, the write lock in SQLite): the id of its record; UploadThrottled past a bound."""
    now = rec.received_at.astimezone(timezone.utc)
    with atomic(engine) as session:
        session.execute(update(StudentProfile).where(StudentProfile.student_id == rec.student_id)
                        .values(student_id=StudentProfile.student_id))  # takes the lock; changes nothing
        mine = (Handin.student_id == rec.student_id, Handin.source.in_(UPLOAD_SOURCES))  # one bound for both doors
        recent = session.scalars(select(Handin.received_at).where(*mine, Handin.received_at > now - WINDOW)
                                 .order_by(Handin.received_at)).all()
        if len(recent) >= per_minute:
            oldest = recent[-per_minute]
            oldest = oldest.replace(tzinfo=timezone.utc) if oldest.tzinfo is None else oldest
            wait = max(1, int((oldest + WINDOW - now).total_seconds()) + 1)
            raise UploadThrottled(f"too many uploads: at most {per_minute} a minute; try again in {wait} s", wait)
        used = session.scalar(select(func.coalesce(func.sum(Handin.size), 0)).where(*mine, Handin.sheet == rec.sheet))
        if int(used or 0) + (rec.size or 0) > bytes_per_sheet:
            raise UploadThrottled(f"your uploads for {rec.sheet} have reached {bytes_per_sheet // 1_000_000} MB; "
                                  "ask the course's admins", 3600)
        row = Handin(sheet=rec.sheet, student_id=rec.student_id, kind=rec.kind, source=rec.source, received_at=now,
                     status=REFUSED, reason="being received", size=rec.size, original_name=rec.original_name,
                     uploaded_by=rec.uploaded_by)
        session.add(row)
        session.flush()
        return int(row.id)


def _complete(engine: Engine, rec: HandinRecord) -> HandinRecord:
    """The record completed; an accepted notebook's grading queued in the same transaction."""
    with atomic(engine) as session:
        session.execute(update(Handin).where(Handin.id == rec.handin_id).values(
            status=rec.status, reason=rec.reason or None, sha256=rec.sha256, stored_path=rec.stored_path))
        if rec.kind == "notebook" and rec.status == ACCEPTED:
            enqueue(session, rec.sheet, rec.student_id, handin_id=rec.handin_id, received_at=rec.received_at)
    return rec


def _store(cfg: CourseConfig, rec: HandinRecord, data: bytes) -> HandinRecord:
    """Check and write the file; the completed record (accepted, or refused with the reason)."""
    manifest = cfg.manifest(rec.sheet)
    try:
        if rec.kind == "notebook":
            check_notebook(data, manifest, source_grade_ids(manifest))
            path = write_submission(cfg.data_dir, rec.sheet, rec.student_id, {manifest.notebook: data},
                                    rec.received_at, rec.source)
            if path is None:  # a concurrent upload received later was written first: that one counts
                return HandinRecord(**{**rec.__dict__, "status": ACCEPTED, "sha256": digest({"file": data}),
                                       "reason": "a later upload was stored first; the later one counts"})
            stored = path / manifest.notebook
        elif rec.kind == "paper":
            check_pdf(data)
            stored = write_paper(cfg.data_dir, rec.sheet, rec.student_id, data)
        else:
            raise IntakeRefused(f"unknown kind of hand-in {rec.kind!r}")
    except IntakeRefused as exc:
        return HandinRecord(**{**rec.__dict__, "reason": str(exc)})
    except OSError as exc:  # e.g. a full disk
        return HandinRecord(**{**rec.__dict__, "reason": f"the file could not be stored ({exc.strerror}); please try again"})
    except Exception as exc:  # RecursionError, MemoryError, a bug: the upload's refusal, never a server error
        log.exception("checking the upload of %s for %s failed", rec.student_id, rec.sheet)
        return HandinRecord(**{**rec.__dict__, "reason": f"the file could not be checked ({type(exc).__name__}); "
                                                         "hand in a notebook as Jupyter saves it"})
    return HandinRecord(**{**rec.__dict__, "status": ACCEPTED, "reason": "", "sha256": digest({"file": data}),
                           "stored_path": str(stored.relative_to(cfg.data_dir))})


def accept_upload(cfg: CourseConfig, engine: Engine, *, sheet: str, student: str, kind: Literal["notebook", "paper"],
                  filename: str, data: bytes, uploaded_by: str, now: datetime | None = None,
                  per_minute: int | None = None, bytes_per_sheet: int | None = None,
                  source: Literal["web", "hub"] = "web") -> HandinRecord:
    """Check and store one uploaded file; the stored record (``status`` accepted or refused, with ``reason``);
    ``source`` says which front door it came through (the web page, or a student's Jupyter server via the Hub).
    :class:`UploadThrottled` (nothing recorded) past the student's bounds (the arguments, else the course's
    ``[intake] uploads_per_minute`` and ``upload_mb_per_sheet``)."""
    cfg.manifest(sheet)
    received = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    rec = HandinRecord(sheet, student, kind, source, received, REFUSED, original_name=_shown_name(filename),
                       size=len(data), uploaded_by=uploaded_by)
    roster = roster_ids(engine)
    if roster is not None and student not in roster:
        return record_handins(engine, [HandinRecord(**{**rec.__dict__, "reason": f"{student!r} is not on the roster"})])[0]
    if why := late_refusal(engine, cfg.manifest(sheet), student, received, cfg.timezone):  # past the cut-off
        return record_handins(engine, [HandinRecord(**{**rec.__dict__, "reason": why})])[0]
    per_minute = per_minute or cfg.uploads_per_minute
    bytes_per_sheet = bytes_per_sheet or cfg.upload_mb_per_sheet * 1_000_000
    rec = HandinRecord(**{**rec.__dict__, "handin_id": _reserve(engine, rec, per_minute, bytes_per_sheet)})
    return _complete(engine, _store(cfg, rec, data))
