"""Admission overrides (medical certificate, repeated course, hardship): they change the status,
never the points; every change is audited."""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from . import nbgrader_tables as nt
from .admission import ADMITTED, NOT_ADMITTED
from .db import atomic
from .errors import InputError, UnknownStudentError
from .models import AdmissionOverride, AuditLog


def _active(session: Session, student: str) -> AdmissionOverride | None:
    return session.execute(select(AdmissionOverride).where(
        AdmissionOverride.student_id == student, AdmissionOverride.revoked_at.is_(None))).scalar_one_or_none()


def set_override(engine: Engine, student: str, status: str, reason: str, author: str) -> None:
    if status not in (ADMITTED, NOT_ADMITTED):
        raise InputError(f"override status must be {ADMITTED} or {NOT_ADMITTED}, not {status!r}")
    if not reason.strip():
        raise InputError(f"an override for {student!r} needs a reason")
    now = datetime.now(timezone.utc)
    with atomic(engine) as session:
        if session.execute(select(nt.student.c.id).where(nt.student.c.id == student)).first() is None:
            raise UnknownStudentError(f"unknown student {student!r}")
        old = _active(session, student)
        if old is not None:
            old.revoked_at = now
        session.add(AdmissionOverride(student_id=student, status=status, reason=reason, author=author, created_at=now))
        session.add(AuditLog(at=now, author=author, entity="admission_override", key=student,
                             old_value=f"{old.status}: {old.reason}" if old else None, new_value=f"{status}: {reason}",
                             reason=reason))


def revoke_override(engine: Engine, student: str, author: str, reason: str) -> None:
    now = datetime.now(timezone.utc)
    with atomic(engine) as session:
        old = _active(session, student)
        if old is None:
            raise InputError(f"student {student!r} has no active override")
        old.revoked_at = now
        session.add(AuditLog(at=now, author=author, entity="admission_override", key=student,
                             old_value=f"{old.status}: {old.reason}", new_value=None, reason=reason))
