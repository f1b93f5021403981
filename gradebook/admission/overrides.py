"""Admission overrides (medical certificate, repeated course, hardship): they change the status,
never the points; every change is audited."""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from gradebook.admission.rule import ADMITTED, NOT_ADMITTED
from gradebook.store.db import atomic
from gradebook.errors import InputError, UnknownStudentError
from gradebook.store.models import AdmissionOverride, AuditLog
from gradebook.course.sheets_state import roster_ids


def _active(session: Session, student: str) -> AdmissionOverride | None:
    return session.execute(select(AdmissionOverride).where(
        AdmissionOverride.student_id == student, AdmissionOverride.revoked_at.is_(None))).scalar_one_or_none()


def set_override(engine: Engine, student: str, status: str, reason: str, author: str,
                 replace: bool = False) -> str | None:
    """Set ``student``'s override; an active one is replaced only with ``replace`` (else an error naming it).
    Returns the replaced override in words, or None."""
    if status not in (ADMITTED, NOT_ADMITTED):
        raise InputError(f"override status must be {ADMITTED} or {NOT_ADMITTED}, not {status!r}")
    if not reason.strip():
        raise InputError(f"an override for {student!r} needs a reason")
    now = datetime.now(timezone.utc)
    with atomic(engine) as session:
        if student not in roster_ids(session):
            raise UnknownStudentError(f"unknown student {student!r} (not on the roster)")
        old = _active(session, student)
        if old is not None and not replace:
            raise InputError(f"{student!r} already has an active override: {_text(old)}; "
                             "give --replace to replace it (or revoke it first)")
        if old is not None:
            old.revoked_at = now
        session.add(AdmissionOverride(student_id=student, status=status, reason=reason, author=author, created_at=now))
        session.add(AuditLog(at=now, author=author, entity="admission_override", key=student,
                             old_value=f"{old.status}: {old.reason}" if old else None, new_value=f"{status}: {reason}",
                             reason=reason))
        return _text(old) if old is not None else None


def _text(o: AdmissionOverride) -> str:
    return f"{o.status} ({o.reason}; by {o.author} on {o.created_at:%Y-%m-%d})"


def revoke_override(engine: Engine, student: str, author: str, reason: str) -> None:
    now = datetime.now(timezone.utc)
    with atomic(engine) as session:
        old = _active(session, student)
        if old is None:
            raise InputError(f"student {student!r} has no active override")
        old.revoked_at = now
        session.add(AuditLog(at=now, author=author, entity="admission_override", key=student,
                             old_value=f"{old.status}: {old.reason}", new_value=None, reason=reason))
