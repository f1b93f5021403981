"""What one save of a cell (a student's points and comment on one paper task) reads, in one statement.

:func:`hold` reads, and on PostgreSQL locks, everything a save needs before it writes: the task's rubric item
rows (``FOR SHARE``, in id order, as :func:`gradebook.points.rubric.task_rubric` and every rubric edit take
them, so a grading's total and an edit of its items never interleave), the cell's ``paper_points`` and
``paper_comment`` rows (``FOR UPDATE`` where the save writes them, so a concurrent writer of the cell waits and
then sees this save's version), whether the student is in the roster, and the audit counts a first entry
numbers its version from (versions never repeat for a cell: :func:`gradebook.points.paper.store`).

The parts are one ``UNION ALL`` of small indexed selects, executed in order (a query that locks rows is never
run in parallel on PostgreSQL), so the locks are taken in the same order as before (items, then the cell's
rows), one round trip instead of up to six. SQLite has no row locks (its writing transactions are serialised
from their start: ``BEGIN IMMEDIATE``), and SQLAlchemy leaves the locking clauses out there.
"""
from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from fractions import Fraction
from typing import Any

from sqlalchemy import DateTime, Integer, String, bindparam, cast, func, literal, null, select, union_all
from sqlalchemy.orm import Session

from gradebook.course.manifest import Manifest
from gradebook.store import nbgrader_tables as nt
from gradebook.store.models import AuditLog, PaperComment, PaperPoints, RubricItemRow
from gradebook.points.rubric import Item, manifest_items

STAMP = DateTime(timezone=True)


def _utc(when: datetime | None) -> datetime | None:
    if when is None:
        return None
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when.astimezone(timezone.utc)


@dataclass(frozen=True)
class Stored:
    """A versioned cell's row as stored (``paper_points``: ``value`` is the points; ``paper_comment``: the text)."""
    id: int
    value: str
    version: int
    entered_by: str
    entered_at: datetime | None
    rubric: str | None = None
    adjustment: str | None = None

    def columns(self, entity: str) -> dict[str, Any]:
        """The columns a save compares with what it writes (:func:`gradebook.points.paper.points_values`)."""
        if entity == "paper_points":
            return {"points": self.value, "rubric": self.rubric, "adjustment": self.adjustment}
        return {"text": self.value}

    @property
    def ticks(self) -> tuple[str, ...] | None:
        return tuple(json.loads(self.rubric)) if self.rubric is not None else None


@dataclass(frozen=True)
class Held:
    """What :func:`hold` read: the cell's rows (None: empty), the task's items (None: not asked for), whether
    the student exists, and per entity (count of audit rows of the cell, id of the newest) plus the task's rubric
    edits (each may have moved the cell's version without a row of its own)."""
    student_known: bool
    points: Stored | None
    comment: Stored | None
    items: tuple[Item, ...] | None
    audit: dict[str, tuple[int, int | None]] = field(default_factory=dict)
    edits: int = 0

    def row(self, entity: str) -> Stored | None:
        return self.points if entity == "paper_points" else self.comment

    def changes(self, entity: str) -> int:
        """How many changes of the cell's ``entity`` there may have been (a first entry's version is this + 1)."""
        return self.audit.get(entity, (0, None))[0] + (self.edits if entity == "paper_points" else 0)


def _part(kind: str, *, id: Any = None, a: Any = None, b: Any = None, c: Any = None, d: Any = None, n: Any = None,
          at: Any = None) -> list[Any]:
    """One part's columns in the union's shape (kind, id, a, b, c, d, n, at), typed NULLs where it has none."""
    def text(v: Any) -> Any:
        return cast(null(), String) if v is None else v
    return [literal(kind, String).label("kind"), (cast(null(), Integer) if id is None else id).label("id"),
            text(a).label("a"), text(b).label("b"), text(c).label("c"), text(d).label("d"),
            (cast(null(), Integer) if n is None else n).label("n"), (cast(null(), STAMP) if at is None else at).label("at")]


def _locked(query: Any, lock: bool, read: bool = False) -> Any:
    return (query.with_for_update(read=read) if lock else query).subquery()


def hold(session: Session, manifest: Manifest, student: str, task: str, *, items: bool = False,
         lock_points: bool = False, lock_comment: bool = False) -> Held:
    """Read (and lock what the save writes) in one statement: see the module's docstring."""
    prefix = f"{manifest.id}/{task}/".replace("/", "//").replace("%", "/%").replace("_", "/_") + "%"
    rows = session.execute(_statement(items, lock_points, lock_comment), {
        "sheet": manifest.id, "task": task, "student": student, "key": f"{manifest.id}/{task}/{student}",
        "prefix": prefix}).all()
    return _collect(rows, manifest, task, items)


@functools.lru_cache(maxsize=None)
def _statement(items: bool, lock_points: bool, lock_comment: bool) -> Any:
    """The union for these flags, built once (its parameters bound at execution: sheet, task, student, key,
    prefix), so that a save spends no time building or compiling it."""
    sheet, task, student = bindparam("sheet", type_=String), bindparam("task", type_=String), bindparam(
        "student", type_=String)
    parts = []
    if items:
        r = _locked(select(RubricItemRow.id, RubricItemRow.key, RubricItemRow.points, RubricItemRow.position,
                           RubricItemRow.deleted_at).where(RubricItemRow.sheet == sheet, RubricItemRow.task == task)
                    .order_by(RubricItemRow.id), True, read=True)
        parts.append(select(*_part("i", id=r.c.id, a=r.c.key, b=r.c.points, n=r.c.position, at=r.c.deleted_at)))
    p = _locked(select(PaperPoints.id, PaperPoints.points, PaperPoints.rubric, PaperPoints.adjustment,
                       PaperPoints.entered_by, PaperPoints.version, PaperPoints.entered_at).where(
        PaperPoints.sheet == sheet, PaperPoints.task == task, PaperPoints.student_id == student), lock_points)
    parts.append(select(*_part("p", id=p.c.id, a=p.c.points, b=p.c.rubric, c=p.c.adjustment, d=p.c.entered_by,
                               n=p.c.version, at=p.c.entered_at)))
    m = _locked(select(PaperComment.id, PaperComment.text, PaperComment.entered_by, PaperComment.version,
                       PaperComment.entered_at).where(
        PaperComment.sheet == sheet, PaperComment.task == task, PaperComment.student_id == student), lock_comment)
    parts.append(select(*_part("c", id=m.c.id, a=m.c.text, d=m.c.entered_by, n=m.c.version, at=m.c.entered_at)))
    parts.append(select(*_part("s", a=nt.student.c.id)).where(nt.student.c.id == student))
    key = bindparam("key", type_=String)
    for entity in ("paper_points", "paper_comment"):
        parts.append(select(*_part("v", a=literal(entity, String), id=func.max(AuditLog.id), n=func.count()))
                     .where(AuditLog.entity == entity, AuditLog.key == key))
    parts.append(select(*_part("e", n=func.count())).where(
        AuditLog.entity == "rubric_item", AuditLog.key.like(bindparam("prefix", type_=String), escape="/")))
    return union_all(*parts)


def _collect(rows: Sequence[Any], manifest: Manifest, task: str, items: bool) -> Held:
    found: list[tuple[int, int, Item]] = []
    seeded, known, edits = False, False, 0
    cell: dict[str, Stored] = {}
    audit: dict[str, tuple[int, int | None]] = {}
    for kind, id_, a, b, c, d, n, at in rows:
        if kind == "i":
            seeded = True
            if at is None:  # a deleted item keeps its row (and its lock), not its place in the rubric
                found.append((n, id_, Item(a, Fraction(b), "")))
        elif kind == "p":
            cell["paper_points"] = Stored(id_, a, n, d, _utc(at), b, c)
        elif kind == "c":
            cell["paper_comment"] = Stored(id_, a, n, d, _utc(at))
        elif kind == "s":
            known = True
        elif kind == "v":
            audit[a] = (int(n or 0), id_)
        else:
            edits = int(n or 0)
    rubric: tuple[Item, ...] | None = None
    if items:
        rubric = tuple(i for _, _, i in sorted(found, key=lambda f: (f[0], f[1]))) if seeded else manifest_items(
            manifest, task)
    return Held(known, cell.get("paper_points"), cell.get("paper_comment"), rubric, audit, edits)
