"""Changes by hand, each audited: an autograded cell's score overridden (nbgrader's manual_score),
and a per-student extension of a sheet's deadline."""
from __future__ import annotations

from datetime import datetime, timezone
from fractions import Fraction
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, select, update

from gradebook.store import nbgrader_tables as nt
from gradebook.store.db import atomic
from gradebook.errors import InputError
from gradebook.store.models import AuditLog, AutogradeResult, Extension
from gradebook.course.config import CourseConfig, load_config
from gradebook.points.handins import LateDecision, decide_late, extension_of, group_of, redecide, store_decision
from gradebook.points.paper import fmt
from gradebook.course.sheets_state import roster_ids


def set_manual_score(engine: Engine, sheet: str, student: str, cell: str, points: Fraction | None,
                     author: str, reason: str) -> None:
    """Set (or with None clear) the manual score of one graded cell of a student's submission."""
    if not reason.strip():
        raise InputError("a manual score needs a reason")
    now = datetime.now(timezone.utc)
    with atomic(engine) as session:
        row = session.execute(
            select(nt.grade.c.id, nt.grade.c.manual_score, nt.grade_cells.c.max_score)
            .join(nt.submitted_notebook, nt.grade.c.notebook_id == nt.submitted_notebook.c.id)
            .join(nt.submitted_assignment, nt.submitted_notebook.c.assignment_id == nt.submitted_assignment.c.id)
            .join(nt.assignment, nt.submitted_assignment.c.assignment_id == nt.assignment.c.id)
            .join(nt.base_cell, nt.grade.c.cell_id == nt.base_cell.c.id)
            .join(nt.grade_cells, nt.grade_cells.c.id == nt.base_cell.c.id)
            .where(nt.assignment.c.name == sheet, nt.submitted_assignment.c.student_id == student,
                   nt.base_cell.c.name == cell)).first()
        if row is None:
            raise InputError(f"{sheet}: no graded cell {cell!r} in a submission of student {student!r}")
        grade_id, old, maximum = row
        if points is not None and not 0 <= points <= Fraction(maximum).limit_denominator(10**6):
            raise InputError(f"{sheet}/{cell}, student {student!r}: {fmt(points)} is outside 0..{maximum:g}")
        session.execute(update(nt.grade).where(nt.grade.c.id == grade_id)
                        .values(manual_score=float(points) if points is not None else None))
        session.add(AuditLog(at=now, author=author, entity="manual_score", key=f"{sheet}/{cell}/{student}",
                             old_value=None if old is None else f"{old:g}",
                             new_value=None if points is None else fmt(points), reason=reason))


def set_extension(engine: Engine, sheet: str, student: str, until: datetime, author: str, reason: str,
                  cfg: CourseConfig | None = None) -> LateDecision | None:
    """Move ``student``'s deadline of ``sheet`` to ``until`` and, in the same transaction, take the late
    decision of their graded hand-in again (stored on ``autograde_result``); that decision, or None."""
    cfg = cfg or load_config()
    manifest = cfg.manifest(sheet)  # an unknown or planned sheet is refused
    if until.tzinfo is None:
        raise InputError(f"extension of {sheet} for {student!r}: {until} has no time zone")
    if not reason.strip():
        raise InputError(f"an extension of {sheet} for {student!r} needs a reason")
    until = until.astimezone(timezone.utc)  # stored in UTC (SQLite keeps no offset)
    zone = ZoneInfo(cfg.timezone)
    now = datetime.now(timezone.utc)
    with atomic(engine) as session:
        if student not in roster_ids(session):
            raise InputError(f"unknown student {student!r} (not in the roster)")
        group = group_of(session, student)
        own = manifest.late.deadline_for(manifest.due, group)  # the sheet's, or the student's group's
        if until <= own:
            whose = f"group {group}'s deadline" if own != manifest.due else "the sheet's deadline"
            raise InputError(f"extension of {sheet} for {student!r}: {until.astimezone(zone):%Y-%m-%d %H:%M %Z} is "
                             f"not after {whose} {own.astimezone(zone):%Y-%m-%d %H:%M %Z}: an extension must end later")
        row = session.execute(select(Extension).where(Extension.sheet == sheet, Extension.student_id == student)
                              ).scalar_one_or_none()
        old = row.until.isoformat() if row is not None else None
        if row is None:
            row = Extension(sheet=sheet, student_id=student, until=until, reason=reason, author=author)
            session.add(row)
        row.until, row.reason, row.author = until, reason, author
        session.flush()
        decision = redecide(session, manifest, student, cfg.timezone)
        new = until.isoformat() + (f"; {decision.text(cfg.timezone)}" if decision else "")
        session.add(AuditLog(at=now, author=author, entity="extension", key=f"{sheet}/{student}", old_value=old,
                             new_value=new, reason=reason))
    return decision


def redecide_sheet(engine: Engine, cfg: CourseConfig, sheet: str, author: str, reason: str) -> list[tuple[str, str, str]]:
    """Take the late decision of every graded hand-in of ``sheet`` again, from the manifest as it is now (a
    changed due date, group deadline or late rule), in one transaction; each changed decision is audited.
    Returns (student, old decision, new decision) of those that changed."""
    manifest = cfg.manifest(sheet)
    if not reason.strip():
        raise InputError(f"re-deciding {sheet} needs a reason (e.g. \"due date moved to Friday\")")
    now, changed = datetime.now(timezone.utc), []
    with atomic(engine) as session:
        rows = session.execute(select(AutogradeResult).where(AutogradeResult.sheet == sheet)
                               .order_by(AutogradeResult.student_id)).scalars().all()
        for row in rows:
            old = row.decision or ""
            decision = decide_late(row.submitted_at, manifest, extension_of(session, sheet, row.student_id),
                                   group_of(session, row.student_id))
            store_decision(row, decision, cfg.timezone)
            if row.decision != old:
                changed.append((row.student_id, old, row.decision or ""))
                session.add(AuditLog(at=now, author=author, entity="late_decision", key=f"{sheet}/{row.student_id}",
                                     old_value=old or None, new_value=row.decision, reason=reason))
    return changed
