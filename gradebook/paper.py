"""Pen-and-paper points: a tutor's CSV/XLSX in, audited rows out; and the template tutors fill in."""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from datetime import datetime, timezone
from fractions import Fraction
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from . import nbgrader_tables as nt
from .db import atomic
from .errors import InputError
from .manifest import Manifest
from .models import AuditLog, GroupMembership, PaperPoints
from .tables import parse_decimal, read_rows

REQUIRED = ["student_id", "task", "points"]


@dataclass
class PointsReport:
    written: int = 0
    unchanged: int = 0
    empty: int = 0
    rows: list[tuple[str, str, Fraction]] = field(default_factory=list)

    def __str__(self) -> str:
        return f"{self.written} written, {self.unchanged} unchanged, {self.empty} left empty (not graded yet)"


def fmt(points: Fraction) -> str:
    """Exact decimal text where it terminates ("2.5"), else the fraction ("1/3")."""
    den = points.denominator
    while den % 2 == 0:
        den //= 2
    while den % 5 == 0:
        den //= 5
    if den != 1:
        return str(points)
    text = f"{points.numerator / points.denominator:.10f}".rstrip("0").rstrip(".")
    return text if Fraction(text) == points else str(points)


def parse_points_file(path: Path, manifest: Manifest, known: set[str]) -> PointsReport:
    """Check every row against the sheet's paper tasks and the roster; all errors at once."""
    report = PointsReport()
    errors: list[str] = []
    seen: dict[tuple[str, str], int] = {}
    for row in read_rows(path, REQUIRED):
        sid, task_id, raw = row.get("student_id"), row.get("task"), row.get("points")
        where = f"{path}:{row.line}: student {sid!r}, task {task_id!r}"
        task = manifest.paper_task(task_id)
        if sid not in known:
            errors.append(f"{path}:{row.line}: unknown student {sid!r} (not in the roster)")
            continue
        if task is None:
            names = ", ".join(t.id for t in manifest.paper_tasks)
            errors.append(f"{where}: unknown task; the paper tasks of {manifest.id} are {names}")
            continue
        if (sid, task_id) in seen:
            errors.append(f"{where}: duplicate of row {seen[(sid, task_id)]}")
            continue
        seen[(sid, task_id)] = row.line
        if not raw:
            report.empty += 1
            continue
        try:
            value = parse_decimal(raw)
        except ValueError:
            errors.append(f"{where}: points {raw!r} is not a number")
            continue
        if value < 0:
            errors.append(f"{where}: points {raw} is negative")
        elif value > task.points:
            errors.append(f"{where}: points {raw} exceed the maximum {fmt(task.points)}")
        else:
            report.rows.append((sid, task_id, value))
    if errors:
        raise InputError(f"{path}: nothing imported, {len(errors)} bad row(s):\n" + "\n".join(errors))
    return report


def known_students(session: Session) -> set[str]:
    return set(session.execute(select(nt.student.c.id)).scalars())


def import_points(engine: Engine, manifest: Manifest, path: Path, author: str, reason: str | None = None) -> PointsReport:
    """Write a tutor's points for ``manifest``'s paper tasks in one transaction, audited."""
    now = datetime.now(timezone.utc)
    with atomic(engine) as session:
        report = parse_points_file(path, manifest, known_students(session))
        existing = {(p.student_id, p.task): p for p in session.execute(
            select(PaperPoints).where(PaperPoints.sheet == manifest.id)).scalars()}
        for sid, task, value in report.rows:
            row = existing.get((sid, task))
            if row is not None and Fraction(row.points) == value:
                report.unchanged += 1
                continue
            old = row.points if row is not None else None
            if row is None:
                session.add(PaperPoints(sheet=manifest.id, task=task, student_id=sid, points=str(value),
                                        entered_by=author, entered_at=now, version=1))
            else:
                row.points, row.entered_by, row.entered_at, row.version = str(value), author, now, row.version + 1
            session.add(AuditLog(at=now, author=author, entity="paper_points", key=f"{manifest.id}/{task}/{sid}",
                                 old_value=old, new_value=str(value), reason=reason or f"import of {path.name}"))
            report.written += 1
    return report


def group_students(session: Session, group: str) -> list[str]:
    return list(session.execute(select(GroupMembership.student_id).where(
        GroupMembership.group_id == group, GroupMembership.valid_to.is_(None))).scalars())


def write_template(engine: Engine, manifest: Manifest, path: Path, group: str | None = None) -> int:
    """The CSV a tutor fills in: one row per student and paper task, points empty; rows written."""
    with Session(engine) as session:
        query = select(nt.student.c.id, nt.student.c.last_name, nt.student.c.first_name).order_by(
            nt.student.c.last_name, nt.student.c.first_name, nt.student.c.id)
        if group is not None:
            members = group_students(session, group)
            if not members:
                raise InputError(f"tutorial group {group!r} has no students")
            query = query.where(nt.student.c.id.in_(members))
        students = session.execute(query).all()
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["student_id", "task", "points", "max_points", "last_name", "first_name"])
        for sid, last, first in students:
            for task in manifest.paper_tasks:
                w.writerow([sid, task.id, "", fmt(task.points), last or "", first or ""])
                n += 1
    return n


def set_points(engine: Engine, manifest: Manifest, student: str, task_id: str, value: Fraction | None,
               author: str, expected_version: int, reason: str | None = None) -> int:
    """One cell of the tutors' page: write ``value`` if the row is still at ``expected_version``
    (0: no points yet); the new version, or a ConflictError naming who changed what meanwhile.

    The version check and the write are one conditional UPDATE, so two tutors saving the same
    cell at once cannot both succeed: the second gets the conflict, nothing is lost silently."""
    from sqlalchemy import update

    from .errors import ConflictError

    task = manifest.paper_task(task_id)
    if task is None:
        raise InputError(f"{manifest.id}: unknown paper task {task_id!r}")
    if value is not None and not 0 <= value <= task.points:
        raise InputError(f"{manifest.id}/{task_id}, student {student!r}: {fmt(value)} is outside 0..{fmt(task.points)}")
    now = datetime.now(timezone.utc)
    key = f"{manifest.id}/{task_id}/{student}"
    with atomic(engine) as session:
        if student not in known_students(session):
            raise InputError(f"unknown student {student!r} (not in the roster)")
        row = session.execute(select(PaperPoints).where(PaperPoints.sheet == manifest.id, PaperPoints.task == task_id,
                                                        PaperPoints.student_id == student)).scalar_one_or_none()
        current = row.version if row is not None else 0
        if current != expected_version:
            assert row is not None
            raise ConflictError(f"{key}: changed meanwhile by {row.entered_by} at {row.entered_at:%H:%M:%S} "
                                f"to {fmt(Fraction(row.points))} (version {current}, you edited version "
                                f"{expected_version}); reload and try again")
        new_text = str(value) if value is not None else None
        if row is None:
            if value is None:
                return 0
            session.add(PaperPoints(sheet=manifest.id, task=task_id, student_id=student, points=new_text,
                                    entered_by=author, entered_at=now, version=1))
        elif value is None:
            session.delete(row)
        else:
            done = session.execute(update(PaperPoints).where(PaperPoints.id == row.id,
                                                             PaperPoints.version == expected_version)
                                   .values(points=new_text, entered_by=author, entered_at=now,
                                           version=expected_version + 1).execution_options(synchronize_session=False))
            if cast(Any, done).rowcount != 1:
                raise ConflictError(f"{key}: changed meanwhile by another tutor; reload and try again")
        session.add(AuditLog(at=now, author=author, entity="paper_points", key=key,
                             old_value=row.points if row is not None else None, new_value=new_text,
                             reason=reason or "entered on the tutors' page"))
    return expected_version + 1 if value is not None else 0
