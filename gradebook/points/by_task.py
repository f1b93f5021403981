"""Grading one paper task across the group: the hand-ins of a tutor's groups (an admin's: everyone's) for one
sheet and task, in a stable shuffled order, each with its grading as it stands, the task's rubric, and the
pages of the student's PDF to show.

Two small functions are the seams other work fills in: :func:`pages_for` (the pages that answer a task; the
whole PDF until pages are tagged per task) and :func:`shown_student` (how a student is named on the page; the
place a pseudonym replaces the name on an anonymous sheet). Saving goes through
:func:`gradebook.points.grid.save_cell`, the grid's and the CLI's one write path.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Sequence

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from gradebook.course.config import CourseConfig
from gradebook.course.manifest import Task
from gradebook.errors import InputError
from gradebook.points.page_tags import tags_of
from gradebook.points.grid import CellState, HandinRef, _cells, _handins, _latest, _open_regrades, _teams
from gradebook.points.rubric import Item, ensure_seeded, task_rubric
from gradebook.store import nbgrader_tables as nt
from gradebook.store.models import GroupMembership


@dataclass(frozen=True)
class TaskPages:
    """What to show of a hand-in for one task: ``pages`` (1-based) of the PDF ``handin_id``; None: all pages."""
    handin_id: int
    pages: tuple[int, ...] | None = None


@dataclass(frozen=True)
class QueueEntry:
    """One hand-in to grade: the student the grading is saved for (a team's: one member), as shown."""
    student: str
    shown: str
    team: str | None
    pdf: HandinRef
    pages: TaskPages
    cell: CellState
    regrade: int | None = None  # the open regrade request on this task, if any

    @property
    def graded(self) -> bool:
        return self.cell.points is not None or self.cell.team_points is not None


@dataclass(frozen=True)
class TaskQueue:
    sheet: str
    title: str
    task: Task
    rubric: tuple[Item, ...]
    entries: tuple[QueueEntry, ...]
    without_pdf: int  # students of the groups with no PDF handed in (graded in the grid, if at all)

    @property
    def to_grade(self) -> int:
        return sum(1 for e in self.entries if not e.graded)


def shown_student(sheet: str, student: str, last: str, first: str) -> str:
    """How the grade-by-task page names a student (the one place to swap in a pseudonym)."""
    name = f"{last}, {first}" if first else last
    return f"{name} ({student})" if name else student


def pages_for(engine: Engine, sheet: str, student: str, task: str, pdf: HandinRef | None = None) -> TaskPages | None:
    """The pages of ``student``'s PDF (their team's latest) that answer ``task`` on ``sheet``; None: no PDF.
    The pages tagged for the task (:mod:`gradebook.points.page_tags`), else the whole PDF."""
    if pdf is None:
        with Session(engine) as session:
            team_of, members = _teams(session, sheet, [student])
            crew = members.get(team_of.get(student, ""), [student])
            handins = _handins(session, sheet, crew)
        pdf = _latest([handins.get((m, "paper")) for m in crew])
    if pdf is None:
        return None
    tagged = tags_of(engine, pdf.id).get(task)  # the student's (or tutor's) tags; untagged: the whole PDF
    return TaskPages(pdf.id, tuple(tagged) if tagged else None)


def shuffle_key(sheet: str, task: str, student: str) -> str:
    """The stable shuffled order: the same for every reload and every tutor, different per sheet and task."""
    return hashlib.sha256(f"{sheet}\0{task}\0{student}".encode()).hexdigest()


def _roster(session: Session, groups: Sequence[str] | None) -> list[tuple[str, str, str]]:
    query = select(nt.student.c.id, nt.student.c.last_name, nt.student.c.first_name)
    if groups is not None:
        query = query.join(GroupMembership, GroupMembership.student_id == nt.student.c.id).where(
            GroupMembership.group_id.in_(groups), GroupMembership.valid_to.is_(None))
    return [(sid, last or "", first or "") for sid, last, first in session.execute(query.order_by(nt.student.c.id))]


def task_queue(engine: Engine, cfg: CourseConfig, sheet: str, task_id: str, groups: Sequence[str] | None) -> TaskQueue:
    """The hand-ins of ``groups``' students (None: every student) for ``task_id`` of ``sheet``: one entry per
    PDF (a team's once, saved for its member who handed it in, else its first member in the groups)."""
    manifest = cfg.manifest(sheet)
    task = manifest.paper_task(task_id)
    if task is None:
        names = ", ".join(t.id for t in manifest.paper_tasks) or "none"
        raise InputError(f"{sheet}: unknown paper task {task_id!r} (the paper tasks are {names})")
    ensure_seeded(engine, manifest)
    with Session(engine) as session:
        roster = _roster(session, groups)
        ids = [sid for sid, _, _ in roster]
        team_of, members = _teams(session, sheet, ids)
        handins = _handins(session, sheet, sorted(set(ids) | {m for ms in members.values() for m in ms}))
        cells = _cells(session, manifest, ids, members, team_of)
        rubric = task_rubric(session, manifest, task_id)
        regrades = _open_regrades(session, sheet, ids, members, team_of)
    allowed = set(ids)
    chosen: dict[int, tuple[str, str, str]] = {}
    without = 0
    for sid, last, first in roster:
        crew = members.get(team_of.get(sid, ""), [sid])
        pdf = _latest([handins.get((m, "paper")) for m in crew])
        if pdf is None:
            without += 1
        elif pdf.id not in chosen or (sid == pdf.student_id and chosen[pdf.id][0] != pdf.student_id):
            chosen[pdf.id] = (sid, last, first)
    entries = []
    for pdf_id, (sid, last, first) in chosen.items():
        crew = members.get(team_of.get(sid, ""), [sid])
        pdf = _latest([handins.get((m, "paper")) for m in crew])
        assert pdf is not None and sid in allowed
        entries.append(QueueEntry(sid, shown_student(sheet, sid, last, first), team_of.get(sid), pdf,
                                  pages_for(engine, sheet, sid, task_id, pdf) or TaskPages(pdf_id),
                                  cells[(sid, task_id)], regrades.get((sid, task_id))))
    entries.sort(key=lambda e: shuffle_key(sheet, task_id, e.student))
    return TaskQueue(sheet, manifest.title, task, rubric, tuple(entries), without)
