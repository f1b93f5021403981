"""The web upload: an authenticated student hands in a notebook or the paper part's PDF.

The same checks and records as every other intake (:mod:`.store`, ``handin`` rows); the server's clock is
the time of receipt; the file gets a server-chosen name. A refused upload is recorded (status ``refused``,
with the reason) and leaves no file behind.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Literal

from sqlalchemy import Engine

from gradebook.course.config import CourseConfig
from gradebook.points.handins import ACCEPTED, REFUSED, HandinRecord, record_handins, roster_ids

from autograder.intake.safe import IntakeRefused, clean_name
from autograder.intake.store import check_notebook, check_pdf, digest, source_grade_ids, write_paper, write_submission

__all__ = ["accept_upload", "source_grade_ids"]


def _shown_name(filename: str) -> str:
    try:
        return clean_name(filename.rsplit("/", 1)[-1].rsplit("\\", 1)[-1], 128)
    except IntakeRefused:
        return "(unnamed)"


def accept_upload(cfg: CourseConfig, engine: Engine, *, sheet: str, student: str, kind: Literal["notebook", "paper"],
                  filename: str, data: bytes, uploaded_by: str, now: datetime | None = None) -> HandinRecord:
    """Check and store one uploaded file; the stored record (``status`` accepted or refused, with ``reason``)."""
    manifest = cfg.manifest(sheet)
    received = now or datetime.now(timezone.utc)
    base = HandinRecord(sheet, student, kind, "web", received, REFUSED, original_name=_shown_name(filename),
                        size=len(data), uploaded_by=uploaded_by)
    try:
        roster = roster_ids(engine)
        if roster is not None and student not in roster:
            raise IntakeRefused(f"{student!r} is not on the roster")
        if kind == "notebook":
            check_notebook(data, manifest, source_grade_ids(manifest))
            path = write_submission(cfg.data_dir, sheet, student, {manifest.notebook: data})
            stored = path / manifest.notebook
        elif kind == "paper":
            check_pdf(data)
            stored = write_paper(cfg.data_dir, sheet, student, data)
        else:
            raise IntakeRefused(f"unknown kind of hand-in {kind!r}")
    except IntakeRefused as exc:
        return record_handins(engine, [HandinRecord(**{**base.__dict__, "reason": str(exc)})])[0]
    except OSError as exc:  # e.g. two uploads of the same student at the same moment
        reason = f"the file could not be stored ({exc.strerror}); please try again"
        return record_handins(engine, [HandinRecord(**{**base.__dict__, "reason": reason})])[0]
    rec = HandinRecord(**{**base.__dict__, "status": ACCEPTED, "sha256": digest({"file": data}),
                          "stored_path": str(stored.relative_to(cfg.data_dir))})
    return record_handins(engine, [rec])[0]
