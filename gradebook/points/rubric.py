"""Rubrics by reference: a paper task's items live in the database (``rubric_item``, seeded from the sheet's
manifest), and a grading (``paper_points``) references the keys of the items it applies plus an adjustment.

The points of a grading are :func:`clamped_total` of its items and adjustment, cached in ``paper_points.points``
(which every reader of points uses); :mod:`gradebook.points.rubric_edit` rewrites every affected row in the
transaction that changes an item. A task that has no rows yet reads its manifest's items under the same keys,
so a grading saved before the seeding references what the seeding writes.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from fractions import Fraction
from typing import NamedTuple

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gradebook.course.manifest import Manifest
from gradebook.store.db import atomic
from gradebook.store.models import RubricItemRow

SEEDED_BY = "manifest"


@dataclass(frozen=True)
class Item:
    """One rubric item as tutors and students see it: ``key`` is what gradings reference."""
    key: str
    points: Fraction
    text: str  # what the student reads
    note: str = ""  # for tutors only


def clamped_total(points: Iterable[Fraction], adjustment: Fraction | None, maximum: Fraction,
                  start: Fraction = Fraction(0)) -> Fraction:
    """The points of a grading: ``start`` (0, or the maximum for a task scored by deductions: ``Task.start``)
    plus its items' points plus the adjustment, within the task's bounds [0, maximum]."""
    total = start + sum(points, Fraction(0)) + (adjustment if adjustment is not None else Fraction(0))
    return min(max(total, Fraction(0)), maximum)


def manifest_items(manifest: Manifest, task: str) -> tuple[Item, ...]:
    found = manifest.paper_task(task)
    return tuple(Item(i.id, i.points, i.text, i.note) for i in found.rubric) if found is not None else ()


class ItemRow(NamedTuple):
    """The columns of a ``rubric_item`` row that :func:`rubrics_of` reads."""
    id: int
    sheet: str
    task: str
    key: str
    position: int
    points: str
    text: str
    note: str | None
    deleted_at: datetime | None


ITEM_COLUMNS = (RubricItemRow.id, RubricItemRow.sheet, RubricItemRow.task, RubricItemRow.key, RubricItemRow.position,
                RubricItemRow.points, RubricItemRow.text, RubricItemRow.note, RubricItemRow.deleted_at)


def sheet_rubrics(session: Session, manifest: Manifest) -> dict[str, tuple[Item, ...]]:
    """Per paper task of ``manifest``, its rubric items in order (the database's once seeded, else the
    manifest's); one query."""
    return sheet_rubrics_seeded(session, manifest)[0]


def sheet_rubrics_seeded(session: Session, manifest: Manifest) -> tuple[dict[str, tuple[Item, ...]], bool]:
    """:func:`sheet_rubrics`, and whether every task with a rubric in the manifest has its rows (else
    :func:`ensure_seeded` has work to do)."""
    return rubrics_seeded(manifest, [ItemRow._make(r) for r in session.execute(
        select(*ITEM_COLUMNS).where(RubricItemRow.sheet == manifest.id))])


def rubrics_seeded(manifest: Manifest, rows: list[ItemRow]) -> tuple[dict[str, tuple[Item, ...]], bool]:
    """:func:`sheet_rubrics_seeded` from the sheet's rows already read."""
    return rubrics_of(manifest, rows), _all_seeded(manifest, {r.task for r in rows})


def _all_seeded(manifest: Manifest, have: set[str]) -> bool:
    """Whether every task with a rubric in ``manifest`` has rows (``have``: the tasks that have)."""
    return all(t.id in have for t in manifest.paper_tasks if t.rubric)


def rubrics_of(manifest: Manifest, rows: Iterable[RubricItemRow | ItemRow]) -> dict[str, tuple[Item, ...]]:
    """:func:`sheet_rubrics` from rows already read (those of other sheets are left out)."""
    mine = sorted((r for r in rows if r.sheet == manifest.id), key=lambda r: (r.task, r.position, r.id))
    seeded = {r.task for r in mine}
    out: dict[str, tuple[Item, ...]] = {}
    for task in manifest.paper_tasks:
        if task.id in seeded:
            out[task.id] = tuple(Item(r.key, Fraction(r.points), r.text, r.note or "") for r in mine
                                 if r.task == task.id and r.deleted_at is None)
        else:
            out[task.id] = manifest_items(manifest, task.id)
    return out


def task_rubric(session: Session, manifest: Manifest, task: str, lock: bool = False) -> tuple[Item, ...]:
    """The items of one paper task, in order. ``lock``: hold them (``FOR SHARE``, in id order like every
    rubric edit) until the caller's transaction ends, so that a grading's total and an edit of its items
    never interleave on PostgreSQL (SQLite serialises writing transactions anyway)."""
    query = select(RubricItemRow).where(RubricItemRow.sheet == manifest.id, RubricItemRow.task == task)
    if lock:
        query = query.order_by(RubricItemRow.id).with_for_update(read=True)
    rows = sorted(session.execute(query).scalars(), key=lambda r: (r.position, r.id))
    if not rows:
        return manifest_items(manifest, task)
    return tuple(Item(r.key, Fraction(r.points), r.text, r.note or "") for r in rows if r.deleted_at is None)


def lock_task(session: Session, manifest: Manifest, task: str) -> list[RubricItemRow]:
    """Every item row of one task (deleted ones too), locked for an edit (``FOR UPDATE``, in id order)."""
    return list(session.execute(select(RubricItemRow).where(
        RubricItemRow.sheet == manifest.id, RubricItemRow.task == task)
        .order_by(RubricItemRow.id).with_for_update()).scalars())


def seed(session: Session, manifest: Manifest, now: datetime | None = None) -> list[str]:
    """Write the manifest's items of every paper task that has no rows yet (in the caller's transaction);
    the tasks seeded."""
    have = set(session.execute(select(RubricItemRow.task).where(RubricItemRow.sheet == manifest.id)
                               .distinct()).scalars())
    when = now or datetime.now(timezone.utc)
    done = []
    for task in manifest.paper_tasks:
        if task.id in have or not task.rubric:
            continue
        for n, item in enumerate(task.rubric):
            session.add(RubricItemRow(sheet=manifest.id, task=task.id, key=item.id, position=n, points=str(item.points),
                                      text=item.text, note=item.note, created_by=SEEDED_BY, created_at=when))
        done.append(task.id)
    session.flush()
    return done


def ensure_seeded(engine: Engine, manifest: Manifest) -> None:
    """Seed the sheet's rubrics in their own transaction, if any task still lacks its rows (one query when
    all are there, none when the sheet has no rubric); two processes seeding at once: the unique key refuses the
    second, whose work is done."""
    if not any(t.rubric for t in manifest.paper_tasks):
        return
    with Session(engine) as session:
        have = set(session.execute(select(RubricItemRow.task).where(RubricItemRow.sheet == manifest.id)
                                   .distinct()).scalars())
    if _all_seeded(manifest, have):
        return
    try:
        with atomic(engine) as session:
            seed(session, manifest)
    except IntegrityError:
        pass
