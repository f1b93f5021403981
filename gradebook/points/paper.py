"""Pen-and-paper points: a tutor's CSV/XLSX in, audited rows out; and the template tutors fill in."""
from __future__ import annotations

import csv
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from fractions import Fraction
from pathlib import Path
from typing import Any, TypeVar, cast

from sqlalchemy import Engine, Table, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from gradebook.store import nbgrader_tables as nt
from gradebook.store.db import STUDENTS_OPTION, atomic, audit_with_versions
from gradebook.course.anonymity import aliases, roster
from gradebook.course.spreadsheet import Number, row
from gradebook.errors import ConflictError, InputError
from gradebook.course.manifest import Manifest, Task
from gradebook.store.models import AuditLog, GroupMembership, PaperComment, PaperPoints
from gradebook.points.cell_lock import Held, Stored, hold
from gradebook.points.rubric import Item, clamped_total
from gradebook.course.tables import parse_decimal, read_rows

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


def parse_points_file(path: Path, manifest: Manifest, known: set[str],
                      unmask: dict[str, str] | None = None) -> PointsReport:
    """Check every row against the sheet's paper tasks and the roster; all errors at once. ``unmask``
    (pseudonym → student, an anonymous sheet): rows may name the student by the pseudonym."""
    report = PointsReport()
    errors: list[str] = []
    seen: dict[tuple[str, str], int] = {}
    for row in read_rows(path, REQUIRED):
        sid, task_id, raw = row.get("student_id"), row.get("task"), row.get("points")
        sid = (unmask or {}).get(sid or "", sid)
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
    unmask = {a: s for s, a in (aliases(engine, manifest.id, roster(engine)) or {}).items()}  # an anonymous sheet
    with atomic(engine) as session:
        report = parse_points_file(path, manifest, known_students(session), unmask)
        existing = {(p.student_id, p.task): p for p in session.execute(
            select(PaperPoints).where(PaperPoints.sheet == manifest.id).with_for_update()).scalars()}
        fresh = len(existing) < len(report.rows)
        changes = _change_counts(session, manifest.id) if fresh else {}
        edits = _rubric_edits(session, manifest.id) if fresh else {}
        for sid, task, value in report.rows:
            row = existing.get((sid, task))
            if row is not None and Fraction(row.points) == value:
                report.unchanged += 1
                continue
            old = row.points if row is not None else None
            if row is None:  # versions never repeat for a cell (see store)
                seen = changes.get(f"{manifest.id}/{task}/{sid}", 0) + edits.get(task, 0)
                session.add(PaperPoints(sheet=manifest.id, task=task, student_id=sid, points=str(value),
                                        entered_by=author, entered_at=now, version=seen + 1))
            else:
                row.points, row.entered_by, row.entered_at, row.version = str(value), author, now, row.version + 1
                row.rubric, row.adjustment = None, None
            session.add(AuditLog(at=now, author=author, entity="paper_points", key=f"{manifest.id}/{task}/{sid}",
                                 old_value=old, new_value=str(value), reason=reason or f"import of {path.name}"))
            report.written += 1
    return report


def _change_counts(session: Session, sheet: str) -> dict[str, int]:
    """Per cell key of ``sheet``, how many changes of its points the audit log holds."""
    return {key: int(n) for key, n in session.execute(
        select(AuditLog.key, func.count()).where(AuditLog.entity == "paper_points", AuditLog.key.like(f"{sheet}/%"))
        .group_by(AuditLog.key))}


def _rubric_edits(session: Session, sheet: str, task: str | None = None) -> dict[str, int]:
    """Per paper task of ``sheet`` (or just ``task``), how many rubric edits the audit log holds: each may have
    rewritten a cell's version once without a row of that cell's own (one audited event per edit)."""
    prefix = f"{sheet}/{task}/" if task is not None else f"{sheet}/"
    edits: dict[str, int] = {}
    for key, n in session.execute(select(AuditLog.key, func.count()).where(
            AuditLog.entity == "rubric_item", AuditLog.key.startswith(prefix, autoescape=True)).group_by(AuditLog.key)):
        edits[key.split("/")[1]] = edits.get(key.split("/")[1], 0) + int(n)
    return edits


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
        students: list[tuple[str, str | None, str | None]] = [(sid, last, first) for sid, last, first in
                                                              session.execute(query)]
    masks = aliases(engine, manifest.id, [sid for sid, _, _ in students])
    if masks is not None:  # an anonymous sheet: the pseudonym in place of the id, no names, in its order
        students = sorted(((masks[sid], "", "") for sid, _, _ in students), key=lambda r: r[0])
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["student_id", "task", "points", "max_points", "last_name", "first_name"])
        for sid, last, first in students:
            for task in manifest.paper_tasks:
                w.writerow(row([sid, task.id, "", Number(fmt(task.points)), last or "", first or ""]))
                n += 1
    return n


@dataclass(frozen=True)
class Change:
    """What a versioned cell holds now (or held when a save was refused as stale)."""
    version: int  # 0: the cell is empty
    value: str | None  # the points ("5/2") or the comment text; None: empty
    author: str | None
    at: datetime | None
    written: bool = False  # this call changed the cell (False: it already held the value)


class CellConflict(ConflictError):
    """A save based on a stale version: ``current`` names who changed the cell, to what and when."""

    def __init__(self, message: str, key: str, current: Change, expected: int) -> None:
        super().__init__(message)
        self.key, self.current, self.expected = key, current, expected


def _utc(when: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything here is stored in UTC."""
    if when is None:
        return None
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when.astimezone(timezone.utc)


def shown(entity: str, value: str | None) -> str:
    if value is None:
        return "empty"
    return fmt(Fraction(value)) if entity == "paper_points" else repr(value if len(value) <= 40 else value[:37] + "...")


def conflict(manifest: Manifest, entity: str, key: str, now_: Change, expected: int) -> CellConflict:
    tz = manifest.due.tzinfo or timezone.utc
    at = _utc(now_.at)
    when = f"{at.astimezone(tz):%d %b %H:%M:%S}" if at is not None else "an unknown time"
    what = "cleared" if now_.value is None else "changed"
    to = "" if now_.value is None else f" to {shown(entity, now_.value)}"
    return CellConflict(f"{key}: {what} meanwhile by {now_.author or 'someone'} at {when}{to} (version {now_.version}, "
                        f"you edited version {expected}); reload and try again", key, now_, expected)


Versioned = PaperPoints | PaperComment
VALUE_COLUMN = {"paper_points": "points", "paper_comment": "text"}
MODELS: dict[str, type[Versioned]] = {"paper_points": PaperPoints, "paper_comment": PaperComment}


def store(session: Session, manifest: Manifest, held: Held, entity: str, student: str, task_id: str,
          values: dict[str, Any] | None, author: str, expected: int, reason: str,
          now: datetime | None = None) -> tuple[Change, dict[str, Any] | None]:
    """Write one versioned cell as :func:`hold` read it (``values`` None: clear it), if it is still at ``expected``;
    what it holds now, and the audit row to :func:`record` (None: nothing changed).

    Versions never repeat for a cell: a row written again after it was cleared continues from the number of
    changes the audit log holds (and the task's rubric edits), so a tab still holding an old version of a
    cleared-and-re-entered cell gets a conflict instead of overwriting the new value. Saving what the cell
    already holds is no change (and no conflict), whatever the version. Core statements (no ORM objects);
    an ORM copy of the row that the session holds is expired."""
    model, column = MODELS[entity], VALUE_COLUMN[entity]
    key = f"{manifest.id}/{task_id}/{student}"
    row = held.row(entity)
    if row is None and values is None or row is not None and values is not None and all(
            row.columns(entity)[k] == v for k, v in values.items()):
        return stored_change(row), None
    now = now or datetime.now(timezone.utc)
    mine = {STUDENTS_OPTION: (student,)}
    table = cast(Table, model.__table__)
    if row is None:
        count, last_id = held.changes(entity), held.audit.get(entity, (0, None))[1]
        if expected != 0:
            last = session.get(AuditLog, last_id) if last_id is not None else None
            raise conflict(manifest, entity, key, Change(0, None, last.author if last else None,
                                                         last.at if last else None), expected)
        assert values is not None
        session.execute(insert(table).values(sheet=manifest.id, task=task_id, student_id=student, entered_by=author,
                                             entered_at=now, version=count + 1, **values).execution_options(**mine))
        old, version = None, count + 1
    else:
        if row.version != expected:
            raise conflict(manifest, entity, key, stored_change(row), expected)
        old, version = row.value, expected + 1
        if values is None:
            session.execute(delete(table).where(table.c.id == row.id).execution_options(**mine))
        else:
            done = session.execute(update(table).where(table.c.id == row.id, table.c.version == expected).values(
                entered_by=author, entered_at=now, version=version, **values).execution_options(**mine))
            if cast(Any, done).rowcount != 1:
                raise ConflictError(f"{key}: changed meanwhile by another tutor; reload and try again")
        held_copy = session.identity_map.get(identity_key(model, row.id))
        if held_copy is not None:  # an ORM copy loaded earlier in this transaction is stale now
            session.expire(held_copy)
    new = None if values is None else values[column]
    audit = {"at": now, "author": author, "entity": entity, "key": key, "old_value": old, "new_value": new,
             "reason": reason}
    return (Change(0, None, None, None, True) if values is None else Change(version, new, author, now, True)), audit


def record(session: Session, audits: Sequence[dict[str, Any]], last: bool = False) -> None:
    """The audit rows of one save, in one statement; ``last``: they are the transaction's last audit rows (an
    :func:`gradebook.store.db.atomic` transaction), so on PostgreSQL the statement that raises the version
    counters at the commit writes them (audit rows keep the order of the changes)."""
    if last:
        audit_with_versions(session, audits)
    elif audits:
        session.execute(insert(cast(Table, AuditLog.__table__)), list(audits))  # SQLAlchemy's "insertmanyvalues"


def stored_change(row: Stored | None) -> Change:
    if row is None:
        return Change(0, None, None, None)
    return Change(row.version, row.value, row.entered_by, row.entered_at)


def current_change(row: Versioned | None, column: str) -> Change:
    if row is None:
        return Change(0, None, None, None)
    return Change(row.version, getattr(row, column), row.entered_by, _utc(row.entered_at))


def check_points(manifest: Manifest, student: str, task_id: str, value: Fraction | None,
                 ticks: Sequence[str] | None = None, rubric: Sequence[Item] | None = None,
                 adjustment: Fraction | None = None) -> tuple[Task, Fraction | None]:
    """The task, and the points: ``value`` typed, or the clamped total of the rubric items ``ticks`` (keys of
    ``rubric``, the task's items) plus ``adjustment``; InputError naming the cell."""
    task = manifest.paper_task(task_id)
    if task is None:
        names = ", ".join(t.id for t in manifest.paper_tasks) or "none"
        raise InputError(f"{manifest.id}: unknown paper task {task_id!r} (the paper tasks are {names})")
    where = f"{manifest.id}/{task_id}, student {student!r}"
    if adjustment is not None and ticks is None:
        raise InputError(f"{where}: an adjustment goes with rubric items; type the points instead")
    if adjustment is not None and abs(adjustment) > task.points:
        raise InputError(f"{where}: the adjustment {fmt(adjustment)} is beyond ±{fmt(task.points)}")
    if ticks is not None:
        items = {i.key: i for i in (rubric or ())}
        if not items:
            raise InputError(f"{where}: the task has no rubric; type the points")
        unknown = [t for t in ticks if t not in items]
        if unknown:
            raise InputError(f"{where}: unknown rubric item(s) {', '.join(map(repr, unknown))} "
                             f"(the items are {', '.join(items)})")
        return task, clamped_total((items[t].points for t in set(ticks)), adjustment, task.points, task.start)
    if value is not None and value < 0:
        raise InputError(f"{where}: {fmt(value)} is outside 0..{fmt(task.points)}: points cannot be negative")
    if value is not None and value > task.points:
        raise InputError(f"{where}: {fmt(value)} is outside 0..{fmt(task.points)}: "
                         f"above the task's maximum of {fmt(task.points)}")
    return task, value


def points_values(value: Fraction | None, ticks: Sequence[str] | None, rubric: Sequence[Item] = (),
                  adjustment: Fraction | None = None) -> dict[str, Any] | None:
    """The columns of a paper_points row: the points and, for a rubric grading, the keys of its items in
    rubric order (the references) and the adjustment."""
    if value is None:
        return None
    refs = None if ticks is None else json.dumps([i.key for i in rubric if i.key in set(ticks)])
    adjust = None if ticks is None or not adjustment else str(adjustment)
    return {"points": str(value), "rubric": refs, "adjustment": adjust}


def write_points(session: Session, manifest: Manifest, student: str, task_id: str, value: Fraction | None,
                 author: str, expected_version: int, reason: str | None = None,
                 ticks: Sequence[str] | None = None, adjustment: Fraction | None = None) -> Change:
    """:func:`set_points` inside the caller's transaction: the one write of a grading (grid, grade-by-task
    page, CLI, regrade answers): one statement reads and locks the task's items and the cell
    (:func:`gradebook.points.cell_lock.hold`), then the write and its audit row."""
    held = hold(session, manifest, student, task_id, items=ticks is not None, lock_points=True)
    task, value = check_points(manifest, student, task_id, value, ticks, held.items, adjustment)
    if not held.student_known:
        raise InputError(f"unknown student {student!r} (not in the roster)")
    change, audit = store(session, manifest, held, "paper_points", student, task_id,
                          points_values(value, ticks, held.items or (), adjustment), author, expected_version,
                          reason or "entered on the tutors' page")
    record(session, [audit] if audit else [])
    return change


def set_points(engine: Engine, manifest: Manifest, student: str, task_id: str, value: Fraction | None,
               author: str, expected_version: int, reason: str | None = None,
               ticks: Sequence[str] | None = None, adjustment: Fraction | None = None) -> int:
    """One cell of the tutors' page: write ``value`` (or the clamped total of the rubric items ``ticks`` plus
    ``adjustment``) if the row is still at ``expected_version`` (0: no points yet); the new version (0:
    cleared), or a :class:`CellConflict` naming who changed the cell, to what and when.

    The version check and the write happen under the row's lock with a conditional UPDATE, so two
    tutors saving the same cell at once cannot both succeed: the second gets the conflict, nothing
    is lost silently (two first entries racing: the unique constraint refuses the second)."""
    return guarded(engine, manifest, "paper_points", f"{manifest.id}/{task_id}/{student}", lambda session: write_points(
        session, manifest, student, task_id, value, author, expected_version, reason, ticks, adjustment)).version


T = TypeVar("T")


def guarded(engine: Engine, manifest: Manifest, entity: str, key: str, work: Callable[[Session], T]) -> T:
    """Run ``work`` in one transaction; a first entry that lost a race with another (the unique
    constraint) becomes the conflict naming the winner."""
    try:
        with atomic(engine) as session:
            return work(session)
    except IntegrityError as exc:
        sheet, task_id, student = key.split("/", 2)
        model: type[Versioned] = PaperPoints if entity == "paper_points" else PaperComment
        with Session(engine) as session:
            row = cast(Versioned | None, session.execute(select(model).where(
            model.sheet == sheet, model.task == task_id, model.student_id == student)).scalar_one_or_none())
        if row is None:
            raise
        raise conflict(manifest, entity, key, current_change(row, VALUE_COLUMN[entity]), 0) from exc
