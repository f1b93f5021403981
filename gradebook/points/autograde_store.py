"""Storing autograder results: nbgrader's tables (so nbgrader and its formgrader see the scores)
plus our ``autograde_result`` row, all in one transaction per submission."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from fractions import Fraction
from typing import Any

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.orm import Session

from gradebook.store import nbgrader_tables as nt
from gradebook.store.db import atomic
from gradebook.errors import GradebookError, InputError
from gradebook.points.grading_queue import enqueue
from gradebook.store.models import AuditLog, AutogradeResult


def _ensure_row(session: Session, table: Any, where: dict[str, Any], values: dict[str, Any] | None = None) -> str:
    """The id of the row matching ``where``, inserted (with ``values``) if absent."""
    cond = [table.c[k] == v for k, v in where.items()]
    found = session.execute(select(table.c.id).where(*cond)).scalar_one_or_none()
    if found is not None:
        return str(found)
    new = nt.new_id()
    session.execute(insert(table).values(id=new, **where, **(values or {})))
    return new


def require_sheet(engine: Engine, sheet: str) -> None:
    """Refuse to grade a sheet that was never generated into this gradebook."""
    with Session(engine) as session:
        if session.execute(select(nt.assignment.c.id).where(nt.assignment.c.name == sheet)).first() is None:
            raise GradebookError(f"sheet {sheet!r} is not in the gradebook: run `mlph release {sheet}` first")


def _nbgrader_submission(session: Session, sheet: str, student: str, submitted_at: datetime | None) -> dict[str, str]:
    """Create or update the submission in nbgrader's tables; grade cell name → grade row id."""
    assignment_id = session.execute(select(nt.assignment.c.id).where(nt.assignment.c.name == sheet)).scalar_one_or_none()
    if assignment_id is None:
        raise GradebookError(f"sheet {sheet!r} is not in the gradebook: run `mlph release {sheet}` first")
    if session.execute(select(nt.student.c.id).where(nt.student.c.id == student)).first() is None:
        session.execute(insert(nt.student).values(id=student))
    sub_id = _ensure_row(session, nt.submitted_assignment, {"assignment_id": assignment_id, "student_id": student})
    stamp = submitted_at.astimezone(timezone.utc).replace(tzinfo=None) if submitted_at else None
    session.execute(update(nt.submitted_assignment).where(nt.submitted_assignment.c.id == sub_id).values(timestamp=stamp))
    grades: dict[str, str] = {}
    notebooks = session.execute(select(nt.notebook.c.id).where(nt.notebook.c.assignment_id == assignment_id)).scalars()
    for nb_id in list(notebooks):
        snb = _ensure_row(session, nt.submitted_notebook, {"assignment_id": sub_id, "notebook_id": nb_id},
                          {"flagged": False})
        cells = session.execute(select(nt.base_cell.c.id, nt.base_cell.c.name, nt.base_cell.c.type)
                                .where(nt.base_cell.c.notebook_id == nb_id)).all()
        for cell_id, name, kind in cells:
            if kind == "GradeCell":
                grades[name] = _ensure_row(session, nt.grade, {"notebook_id": snb, "cell_id": cell_id},
                                           {"needs_manual_grade": True})
            elif kind == "TaskCell":  # graded by hand: make its rows, leave its score alone
                _ensure_row(session, nt.grade, {"notebook_id": snb, "cell_id": cell_id}, {"needs_manual_grade": True})
            if kind in ("SolutionCell", "TaskCell"):
                _ensure_row(session, nt.comment, {"notebook_id": snb, "cell_id": cell_id})
    return grades


def _utc(value: str | None) -> datetime | None:
    """An ISO time as UTC (SQLite keeps no zone: every stored time is UTC; a time without zone is UTC)."""
    if not value:
        return None
    when = datetime.fromisoformat(value)
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when.astimezone(timezone.utc)


def store_result(engine: Engine, result: dict[str, Any]) -> None:
    """Write one submission's result (the coordinator's validated JSON) in one transaction."""
    sheet, student = result["sheet"], result["student"]
    submitted_at = _utc(result.get("submitted_at"))
    points = {c["grade_id"]: float(Fraction(c["points"])) for c in result.get("cells", [])}
    with atomic(engine) as session:
        grades = _nbgrader_submission(session, sheet, student, submitted_at)
        for name, grade_id in grades.items():
            session.execute(update(nt.grade).where(nt.grade.c.id == grade_id)
                            .values(auto_score=points.get(name, 0.0), needs_manual_grade=False))
        row = session.execute(select(AutogradeResult).where(
            AutogradeResult.sheet == sheet, AutogradeResult.student_id == student)).scalar_one_or_none()
        if row is None:
            row = AutogradeResult(sheet=sheet, student_id=student)
            session.add(row)
        row.status = result["status"]
        row.reason = result.get("reason") or None
        row.fingerprint = result["fingerprint"]
        row.submitted_at = submitted_at
        row.graded_at = datetime.now(timezone.utc)
        row.score = result["score"]
        row.max_score = result["max_score"]
        row.result_json = json.dumps({k: v for k, v in result.items() if k != "notebook"}, sort_keys=True)
        row.deadline = _utc(result.get("deadline"))
        row.late = result.get("late")
        row.decision = result.get("decision")
        if result["status"] in RAN:  # the student's code ran: one graded run more
            row.graded_runs = (row.graded_runs or 0) + 1
            row.last_run_at = row.graded_at
        # nbgrader's own late penalty (its formgrader shows it, its export subtracts it): the whole autograded
        # score when our decision counts the hand-in as 0
        penalty = float(Fraction(result["score"]) - Fraction(result.get("counted_score", result["score"])))
        session.execute(update(nt.submitted_notebook).where(nt.submitted_notebook.c.id.in_(
            select(nt.submitted_notebook.c.id).join(nt.submitted_assignment,
                                                     nt.submitted_notebook.c.assignment_id == nt.submitted_assignment.c.id)
            .join(nt.assignment, nt.submitted_assignment.c.assignment_id == nt.assignment.c.id)
            .where(nt.assignment.c.name == sheet, nt.submitted_assignment.c.student_id == student)
        )).values(late_submission_penalty=penalty or None))


GRADER_ERROR = "grader_error"
RAN = ("graded", "timeout", "crashed")  # statuses of a result whose run executed the student's code


def stored_decisions(engine: Engine, sheet: str) -> dict[str, tuple[bool | None, str]]:
    """student id -> (the stored result's late decision, its status) on ``sheet``."""
    with Session(engine) as session:
        rows = session.execute(select(AutogradeResult.student_id, AutogradeResult.late, AutogradeResult.status)
                               .where(AutogradeResult.sheet == sheet))
        return {sid: (late, status) for sid, late, status in rows}


def graded_runs(engine: Engine, sheet: str) -> dict[str, tuple[int, datetime | None]]:
    """student id -> (graded runs of ``sheet`` so far, when the last one was stored)."""
    with Session(engine) as session:
        rows = session.execute(select(AutogradeResult.student_id, AutogradeResult.graded_runs,
                                      AutogradeResult.last_run_at).where(AutogradeResult.sheet == sheet))
        return {sid: (runs or 0, last) for sid, runs, last in rows}


def graded_fingerprints(engine: Engine, sheet: str) -> dict[str, str]:
    """student id → fingerprint of the submission last graded for ``sheet`` (for resuming). A result of
    status ``grader_error`` (the grader, not the submission, failed: a worker died) is not final."""
    with Session(engine) as session:
        rows = session.execute(select(AutogradeResult.student_id, AutogradeResult.fingerprint)
                               .where(AutogradeResult.sheet == sheet, AutogradeResult.status != GRADER_ERROR))
        return {student: fp for student, fp in rows}


def mark_for_regrade(engine: Engine, sheet: str, student: str, author: str, reason: str) -> None:
    """Let the next ``mlph autograde``/``--watch`` pass grade this submission again (its fingerprint is
    cleared; the points stay until then). Audited."""
    if not reason.strip():
        raise InputError("a regrade needs a reason")
    with atomic(engine) as session:
        row = session.execute(select(AutogradeResult).where(AutogradeResult.sheet == sheet,
                                                            AutogradeResult.student_id == student)).scalar_one_or_none()
        if row is None:
            raise InputError(f"{sheet}: no graded submission of student {student!r}")
        old, row.fingerprint = row.fingerprint, ""
        session.add(AuditLog(at=datetime.now(timezone.utc), author=author, entity="regrade",
                             key=f"{sheet}/{student}", old_value=old, new_value="", reason=reason))
        enqueue(session, sheet, student)  # the running watcher grades it at once
