"""Storing autograder results: nbgrader's tables (so nbgrader and its formgrader see the scores)
plus our ``autograde_result`` row, in one transaction per call: one submission (:func:`store_result`) or the
results that arrived together (:func:`store_results`, a few statements for all of them)."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from fractions import Fraction
from typing import Any

from sqlalchemy import Engine, bindparam, insert, select, update
from sqlalchemy.orm import Session

from gradebook.store import nbgrader_tables as nt
from gradebook.store.db import atomic
from gradebook.errors import GradebookError, InputError
from gradebook.points.grading_queue import enqueue
from gradebook.store.models import AuditLog, AutogradeResult


def require_sheet(engine: Engine, sheet: str) -> None:
    """Refuse to grade a sheet that was never generated into this gradebook."""
    with Session(engine) as session:
        if session.execute(select(nt.assignment.c.id).where(nt.assignment.c.name == sheet)).first() is None:
            raise GradebookError(f"sheet {sheet!r} is not in the gradebook: run `mlph release {sheet}` first")


def _rows(session: Session, table: Any, key: tuple[str, str], firsts: list[str], values: dict[str, Any],
          wanted: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """The ids of ``table``'s rows for each wanted pair of ``key`` columns (first column's values among
    ``firsts``), the missing ones inserted (with ``values``) in one statement."""
    a, b = table.c[key[0]], table.c[key[1]]
    found: dict[tuple[str, str], str] = {}
    for i in range(0, len(firsts), 500):
        found.update({(str(x), str(y)): str(rid) for rid, x, y in
                      session.execute(select(table.c.id, a, b).where(a.in_(firsts[i:i + 500])))})
    missing = [{"id": nt.new_id(), key[0]: x, key[1]: y, **values} for x, y in dict.fromkeys(wanted) if (x, y) not in found]
    if missing:
        session.execute(insert(table), missing)
        found.update({(m[key[0]], m[key[1]]): m["id"] for m in missing})
    return found


def _nbgrader_submissions(session: Session, sheet: str, stamps: dict[str, datetime | None]) -> dict[str, dict[str, str]]:
    """Create or update the submissions of ``stamps``' students (student → time of receipt) in nbgrader's tables,
    a few statements for all of them; per student, grade cell name → grade row id."""
    assignment_id = session.execute(select(nt.assignment.c.id).where(nt.assignment.c.name == sheet)).scalar_one_or_none()
    if assignment_id is None:
        raise GradebookError(f"sheet {sheet!r} is not in the gradebook: run `mlph release {sheet}` first")
    students = list(stamps)
    known = set(session.execute(select(nt.student.c.id).where(nt.student.c.id.in_(students))).scalars())
    if missing := [{"id": s} for s in students if s not in known]:
        session.execute(insert(nt.student), missing)
    subs = _rows(session, nt.submitted_assignment, ("student_id", "assignment_id"), students, {},
                 [(s, assignment_id) for s in students])
    sub_of = {s: subs[(s, assignment_id)] for s in students}
    session.execute(update(nt.submitted_assignment).where(nt.submitted_assignment.c.id == bindparam("sid"))
                    .values(timestamp=bindparam("stamp")),
                    [{"sid": sub_of[s], "stamp": when.astimezone(timezone.utc).replace(tzinfo=None) if when else None}
                     for s, when in stamps.items()])
    notebooks = list(session.execute(select(nt.notebook.c.id).where(nt.notebook.c.assignment_id == assignment_id)).scalars())
    cells = session.execute(select(nt.base_cell.c.id, nt.base_cell.c.name, nt.base_cell.c.type, nt.base_cell.c.notebook_id)
                            .where(nt.base_cell.c.notebook_id.in_(notebooks))).all()
    snbs = _rows(session, nt.submitted_notebook, ("assignment_id", "notebook_id"), list(sub_of.values()),
                 {"flagged": False}, [(sub_of[s], nb) for s in students for nb in notebooks])
    graded = [(c, n, nb) for c, n, kind, nb in cells if kind in ("GradeCell", "TaskCell")]
    commented = [(c, nb) for c, _, kind, nb in cells if kind in ("SolutionCell", "TaskCell")]
    mine = {s: [snbs[(sub_of[s], nb)] for nb in notebooks] for s in students}
    all_snbs = [x for ids in mine.values() for x in ids]
    grade_rows = _rows(session, nt.grade, ("notebook_id", "cell_id"), all_snbs, {"needs_manual_grade": True},
                       [(snbs[(sub_of[s], nb)], c) for s in students for c, _, nb in graded])
    _rows(session, nt.comment, ("notebook_id", "cell_id"), all_snbs, {},
          [(snbs[(sub_of[s], nb)], c) for s in students for c, nb in commented])
    kinds = {c: kind for c, _, kind, _ in cells}
    return {s: {n: grade_rows[(snbs[(sub_of[s], nb)], c)] for c, n, nb in graded if kinds[c] == "GradeCell"}
            for s in students}


def _utc(value: str | None) -> datetime | None:
    """An ISO time as UTC (SQLite keeps no zone: every stored time is UTC; a time without zone is UTC)."""
    if not value:
        return None
    when = datetime.fromisoformat(value)
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when.astimezone(timezone.utc)


def store_result(engine: Engine, result: dict[str, Any]) -> None:
    """Write one submission's result (the coordinator's validated JSON) in one transaction."""
    store_results(engine, [result])


def store_results(engine: Engine, results: list[dict[str, Any]]) -> None:
    """Write the results of one sheet's submissions (one per student) in one transaction, with a few statements
    for all of them: all are stored, or none (the caller may then store them one by one)."""
    if not results:
        return
    sheets = {r["sheet"] for r in results}
    students = [r["student"] for r in results]
    if len(sheets) != 1 or len(set(students)) != len(students):
        raise ValueError("store_results takes one sheet's results, one per student")
    sheet = sheets.pop()
    stamps = {r["student"]: _utc(r.get("submitted_at")) for r in results}
    with atomic(engine) as session:
        grades = _nbgrader_submissions(session, sheet, stamps)
        scores = []
        for r in results:
            points = {c["grade_id"]: float(Fraction(c["points"])) for c in r.get("cells", [])}
            scores += [{"gid": gid, "score": points.get(name, 0.0)} for name, gid in grades[r["student"]].items()]
        if scores:
            session.execute(update(nt.grade).where(nt.grade.c.id == bindparam("gid"))
                            .values(auto_score=bindparam("score"), needs_manual_grade=False), scores)
        rows = {row.student_id: row for row in session.execute(select(AutogradeResult).where(
            AutogradeResult.sheet == sheet, AutogradeResult.student_id.in_(students))).scalars()}
        for r in results:
            _result_row(session, rows.get(r["student"]), r, stamps[r["student"]])
        # nbgrader's own late penalty (its formgrader shows it, its export subtracts it): the whole autograded
        # score when our decision counts the hand-in as 0
        penalties = [{"sid": r["student"], "penalty": float(Fraction(r["score"]) - Fraction(r.get("counted_score", r["score"])))
                      or None} for r in results]
        session.execute(update(nt.submitted_notebook).where(nt.submitted_notebook.c.assignment_id.in_(
            select(nt.submitted_assignment.c.id).join(nt.assignment, nt.submitted_assignment.c.assignment_id == nt.assignment.c.id)
            .where(nt.assignment.c.name == sheet, nt.submitted_assignment.c.student_id == bindparam("sid"))
        )).values(late_submission_penalty=bindparam("penalty")), penalties)


def _result_row(session: Session, row: AutogradeResult | None, result: dict[str, Any], submitted_at: datetime | None) -> None:
    if row is None:
        row = AutogradeResult(sheet=result["sheet"], student_id=result["student"])
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
