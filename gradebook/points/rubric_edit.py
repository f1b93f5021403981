"""Editing a paper task's rubric (admins, on the web page or with ``mlph rubric``): add, change or delete an
item, and with it every grading that references it.

Each edit is one transaction (holding the task's item rows, which every rubric grading's save shares, so edits
and saves of a task take turns on PostgreSQL) and one audited event (``audit_log`` entity ``rubric_item``, naming every student
whose points changed, from what to what): the item is written, then every rubric grading of the task is
recomputed (:func:`gradebook.points.rubric.clamped_total`) and each row whose points or references changed is
rewritten with a new version, so an open tutor's page that still shows the old points gets a conflict on save,
and the next admission list reads the new totals.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from fractions import Fraction

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from gradebook.course.manifest import Manifest, Task
from gradebook.errors import InputError
from gradebook.points.paper import fmt
from gradebook.points.rubric import Item, clamped_total, ensure_seeded, lock_task, sheet_rubrics
from gradebook.store.db import atomic
from gradebook.store.models import AuditLog, PaperPoints, RubricItemRow

MAX_TEXT = 2000
MAX_POINTS = Fraction(1000)
KEY = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass
class RubricChange:
    """What one edit did: the item, and per student whose points changed (old, new)."""
    sheet: str
    task: str
    key: str
    what: str  # added | changed | deleted | unchanged
    students: dict[str, tuple[Fraction, Fraction]] = field(default_factory=dict)

    def __str__(self) -> str:
        return (f"{self.sheet}/{self.task}, item {self.key}: {self.what}; "
                f"{len(self.students)} student(s)' points changed")


def _task(manifest: Manifest, task_id: str) -> Task:
    task = manifest.paper_task(task_id)
    if task is None:
        names = ", ".join(t.id for t in manifest.paper_tasks) or "none"
        raise InputError(f"{manifest.id}: unknown paper task {task_id!r} (the paper tasks are {names})")
    return task


def _check(where: str, points: Fraction | None, text: str | None, note: str | None) -> None:
    if points is not None and abs(points) > MAX_POINTS:
        raise InputError(f"{where}: {fmt(points)} points is beyond ±{fmt(MAX_POINTS)}")
    if text is not None and not text.strip():
        raise InputError(f"{where}: the text for students must not be empty")
    for name, value in (("text", text), ("note", note)):
        if value is not None and len(value) > MAX_TEXT:
            raise InputError(f"{where}: the {name} is longer than {MAX_TEXT} characters")


def _row(session: Session, manifest: Manifest, task: str, key: str) -> RubricItemRow:
    row = session.execute(select(RubricItemRow).where(
        RubricItemRow.sheet == manifest.id, RubricItemRow.task == task, RubricItemRow.key == key,
        RubricItemRow.deleted_at.is_(None)).with_for_update()).scalar_one_or_none()
    if row is None:
        keys = ", ".join(i.key for i in sheet_rubrics(session, manifest).get(task, ())) or "none"
        raise InputError(f"{manifest.id}/{task}: no rubric item {key!r} (the items are {keys})")
    return row


def _described(row: RubricItemRow | None) -> str | None:
    if row is None:
        return None
    return json.dumps({"points": fmt(Fraction(row.points)), "text": row.text, "note": row.note or ""},
                      ensure_ascii=False)


def recompute(session: Session, manifest: Manifest, task: Task, author: str, now: datetime
              ) -> dict[str, tuple[Fraction, Fraction]]:
    """Rewrite every rubric grading of ``task`` whose points or references differ from what the items say
    now (references to deleted items are dropped); per student, (old, new) points. One read, one batch."""
    items = {i.key: i.points for i in sheet_rubrics(session, manifest)[task.id]}
    rows = session.execute(select(PaperPoints.id, PaperPoints.student_id, PaperPoints.points, PaperPoints.rubric,
                                  PaperPoints.adjustment, PaperPoints.version).where(
        PaperPoints.sheet == manifest.id, PaperPoints.task == task.id, PaperPoints.rubric.is_not(None))
        .order_by(PaperPoints.id).with_for_update()).all()
    changed: dict[str, tuple[Fraction, Fraction]] = {}
    batch = []
    for pid, sid, points, refs, adjustment, version in rows:
        keys = json.loads(refs or "[]")
        kept = [k for k in keys if k in items]
        new = clamped_total((items[k] for k in kept), Fraction(adjustment) if adjustment else None, task.points,
                            task.start)
        if new == Fraction(points) and kept == keys:
            continue
        batch.append({"id": pid, "points": str(new), "rubric": json.dumps(kept), "version": version + 1,
                      "entered_by": author, "entered_at": now})
        if new != Fraction(points):
            changed[sid] = (Fraction(points), new)
    if batch:
        session.execute(update(PaperPoints), batch)
    return changed


def _audit(session: Session, change: RubricChange, old: str | None, new: str | None, author: str, now: datetime,
           reason: str | None) -> None:
    moved = "; ".join(f"{sid} {fmt(a)} → {fmt(b)}" for sid, (a, b) in sorted(change.students.items()))
    why = (reason or "rubric edited") + (f"; points changed for {len(change.students)} student(s): {moved}"
                                         if change.students else "; no student's points changed")
    session.add(AuditLog(at=now, author=author, entity="rubric_item", key=f"{change.sheet}/{change.task}/{change.key}",
                         old_value=old, new_value=new, reason=why))


def add_item(engine: Engine, manifest: Manifest, task_id: str, points: Fraction, text: str, author: str,
             note: str = "", key: str | None = None, reason: str | None = None) -> RubricChange:
    """A new item at the end of the task's rubric (``key``: given, else ``i<n>``); audited."""
    task = _task(manifest, task_id)
    where = f"{manifest.id}/{task_id}"
    _check(where, points, text, note)
    if key is not None and not KEY.match(key):
        raise InputError(f"{where}: item key {key!r} must be 1-64 letters, digits, '_', '.' or '-'")
    ensure_seeded(engine, manifest)
    now = datetime.now(timezone.utc)
    with atomic(engine) as session:
        rows = lock_task(session, manifest, task_id)
        used = {r.key for r in rows}
        if key is None:
            key = next(f"i{n}" for n in range(len(rows) + 1, len(rows) + 10**6) if f"i{n}" not in used)
        elif key in used:
            raise InputError(f"{where}: item key {key!r} is taken (keys are never reused)")
        row = RubricItemRow(sheet=manifest.id, task=task_id, key=key, position=max((r.position for r in rows),
                                                                                    default=-1) + 1,
                            points=str(points), text=text.strip(), note=note.strip(), created_by=author, created_at=now)
        session.add(row)
        session.flush()
        change = RubricChange(manifest.id, task_id, key, "added")
        _audit(session, change, None, _described(row), author, now, reason)
    return change


def set_item(engine: Engine, manifest: Manifest, task_id: str, key: str, author: str, *,
             points: Fraction | None = None, text: str | None = None, note: str | None = None,
             reason: str | None = None) -> RubricChange:
    """Change an item's points, text or note; a change of points rewrites every grading that has it."""
    task = _task(manifest, task_id)
    _check(f"{manifest.id}/{task_id}, item {key!r}", points, text, note)
    ensure_seeded(engine, manifest)
    now = datetime.now(timezone.utc)
    with atomic(engine) as session:
        lock_task(session, manifest, task_id)  # one edit of a task's rubric at a time, against every grading
        row = _row(session, manifest, task_id, key)
        old = _described(row)
        if points is not None:
            row.points = str(points)
        if text is not None:
            row.text = text.strip()
        if note is not None:
            row.note = note.strip()
        session.flush()
        new = _described(row)
        change = RubricChange(manifest.id, task_id, key, "changed" if new != old else "unchanged")
        if new != old:
            change.students = recompute(session, manifest, task, author, now)
            _audit(session, change, old, new, author, now, reason)
    return change


def delete_item(engine: Engine, manifest: Manifest, task_id: str, key: str, author: str,
                reason: str | None = None) -> RubricChange:
    """Delete an item: every grading that had it loses it (and its points); the key is never reused."""
    task = _task(manifest, task_id)
    ensure_seeded(engine, manifest)
    now = datetime.now(timezone.utc)
    with atomic(engine) as session:
        lock_task(session, manifest, task_id)
        row = _row(session, manifest, task_id, key)
        old = _described(row)
        row.deleted_at = now
        session.flush()
        change = RubricChange(manifest.id, task_id, key, "deleted")
        change.students = recompute(session, manifest, task, author, now)
        _audit(session, change, old, None, author, now, reason)
    return change


def list_items(engine: Engine, manifest: Manifest, task_id: str | None = None) -> dict[str, tuple[Item, ...]]:
    """The rubric of every paper task (or of ``task_id``), seeding it from the manifest first."""
    if task_id is not None:
        _task(manifest, task_id)
    ensure_seeded(engine, manifest)
    with Session(engine) as session:
        rubrics = sheet_rubrics(session, manifest)
    return {t: items for t, items in rubrics.items() if task_id is None or t == task_id}


def item_use(engine: Engine, manifest: Manifest) -> dict[tuple[str, str], int]:
    """(task, item key) → how many gradings of ``manifest``'s sheet reference the item (what an edit moves)."""
    use: dict[tuple[str, str], int] = {}
    with Session(engine) as session:
        for task, refs in session.execute(select(PaperPoints.task, PaperPoints.rubric).where(
                PaperPoints.sheet == manifest.id, PaperPoints.rubric.is_not(None))):
            for key in json.loads(refs or "[]"):
                use[(task, key)] = use.get((task, key), 0) + 1
    return use
