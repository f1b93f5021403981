"""The tutors' grid: a group's students × a sheet's paper tasks, as plain data, and the save of one cell.

:mod:`gradebook.points.grid_read` reads everything the page shows in one statement and builds it with the
functions here (:func:`cells_of`, :func:`counted_points`, :func:`latest_handins`, :func:`regrades_of`), which
the grade-by-task page's reads (:mod:`gradebook.points.by_task`) and one cell's (:func:`cell_state`) use too;
:func:`save_cell` writes one cell's points (typed, or the sum of ticked rubric items) and/or its
comment through :func:`gradebook.points.paper.store`, the same versioned, audited write as ``set_points``
(one statement reads and locks what it needs, :func:`gradebook.points.cell_lock.hold`; the state returned
is built from what was written): a save based on a stale version raises
:class:`gradebook.points.paper.CellConflict` naming who changed the cell, to what and when.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from fractions import Fraction
from typing import Any, NamedTuple

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from gradebook.errors import InputError
from gradebook.course.manifest import Manifest, Task
from gradebook.store.models import AutogradeResult, GroupMembership, Handin, PaperComment, PaperPoints, RegradeRequest, \
    TutorialGroup
from gradebook.people.teams import teams_of
from gradebook.points.cell_lock import Stored, hold
from gradebook.points.paper import Change, _utc, check_points, fmt, guarded, points_values, record, \
    store
from gradebook.points.rubric import Item
from gradebook.course.tables import parse_decimal
from gradebook.store.db import plain_rows


@dataclass(frozen=True)
class CellState:
    """One student's points and comment on one paper task, with the versions a save must quote."""
    student: str
    task: str
    points: Fraction | None  # None: not graded yet
    version: int  # 0: empty
    ticks: tuple[str, ...] | None  # the ticked rubric item ids; None: the points were typed
    entered_by: str | None
    entered_at: datetime | None
    comment: str = ""
    comment_version: int = 0
    adjustment: Fraction | None = None  # added to the ticked items' points (rubric gradings only)
    team_points: Fraction | None = None  # the most entered for a teammate (it counts for the whole team)
    written: bool = False  # (after a save) the save changed the points or the comment

    @property
    def empty(self) -> bool:
        return self.points is None and self.team_points is None

    def as_json(self) -> dict[str, object]:
        """What the page's script receives after a save."""
        return {"student": self.student, "task": self.task, "version": self.version,
                "points": None if self.points is None else fmt(self.points),
                "ticks": None if self.ticks is None else list(self.ticks),
                "adjustment": None if self.adjustment is None else fmt(self.adjustment),
                "entered_by": self.entered_by, "entered_at": self.entered_at.isoformat() if self.entered_at else None,
                "comment": self.comment, "comment_version": self.comment_version, "written": self.written}


class PointsRow(NamedTuple):
    """The columns of a ``paper_points`` row that a cell shows."""
    student_id: str
    task: str
    points: str
    version: int
    entered_by: str
    entered_at: datetime | None
    rubric: str | None
    adjustment: str | None


class CommentRow(NamedTuple):
    """The columns of a ``paper_comment`` row that a cell shows."""
    student_id: str
    task: str
    text: str
    version: int
    entered_by: str
    entered_at: datetime | None


class ResultRow(NamedTuple):
    """The columns of an ``autograde_result`` row the grid needs (not the result's JSON)."""
    student_id: str
    status: str
    reason: str | None
    score: str
    late: bool | None
    deadline: datetime | None
    submitted_at: datetime | None


POINTS_COLUMNS = (PaperPoints.student_id, PaperPoints.task, PaperPoints.points, PaperPoints.version,
                  PaperPoints.entered_by, PaperPoints.entered_at, PaperPoints.rubric, PaperPoints.adjustment)
COMMENT_COLUMNS = (PaperComment.student_id, PaperComment.task, PaperComment.text, PaperComment.version,
                   PaperComment.entered_by, PaperComment.entered_at)
RESULT_COLUMNS = (AutogradeResult.student_id, AutogradeResult.status, AutogradeResult.reason, AutogradeResult.score,
                  AutogradeResult.late, AutogradeResult.deadline, AutogradeResult.submitted_at)
HANDIN_COLUMNS = (Handin.id, Handin.kind, Handin.student_id, Handin.received_at, Handin.original_name)


@dataclass(frozen=True)
class HandinRef:
    """An accepted hand-in (the latest of its kind), possibly a teammate's."""
    id: int
    kind: str
    student_id: str
    received_at: datetime
    original_name: str | None


@dataclass(frozen=True)
class GridStudent:
    id: str
    last_name: str
    first_name: str
    team: str | None
    autograded: Fraction | None  # the sheet's notebook points as `mlph status` counts them; None: nothing graded
    autograde_status: str | None  # graded | timeout | crashed | invalid | missing | grader_error; None: pending
    autograde_reason: str | None
    pdf: HandinRef | None
    notebook: HandinRef | None

    @property
    def name(self) -> str:
        return f"{self.last_name}, {self.first_name}" if self.first_name else self.last_name


@dataclass(frozen=True)
class Grid:
    sheet: str
    title: str
    group: str
    group_name: str
    tutor: str | None
    tasks: tuple[Task, ...]
    notebook_max: Fraction
    students: tuple[GridStudent, ...]
    cells: dict[tuple[str, str], CellState] = field(default_factory=dict)
    rubrics: dict[str, tuple[Item, ...]] = field(default_factory=dict)  # per task, the items in order
    regrades: dict[tuple[str, str], int] = field(default_factory=dict)  # (student, task) → its open regrade request
    seeded: bool = True  # every rubric of the manifest has its rows (else the manifest's items were shown)

    @property
    def empty(self) -> int:
        """Cells with no points for the student nor a teammate."""
        return sum(1 for c in self.cells.values() if c.empty)

    def cell(self, student: str, task: str) -> CellState:
        return self.cells[(student, task)]


def groups_of(engine: Engine, person: str, admin: bool = False) -> list[TutorialGroup]:
    """The tutorial groups ``person`` tutors (an admin: every group), by id."""
    with Session(engine) as session:
        query = select(TutorialGroup).order_by(TutorialGroup.id)
        if not admin:
            query = query.where(TutorialGroup.tutor_id == person)
        return list(session.execute(query).scalars())


def group_of(engine: Engine, student: str) -> str | None:
    """The student's current tutorial group."""
    with Session(engine) as session:
        return session.execute(select(GroupMembership.group_id).where(
            GroupMembership.student_id == student, GroupMembership.valid_to.is_(None))).scalars().first()


def may_grade(engine: Engine, person: str, student: str, admin: bool = False) -> bool:
    """Whether ``person`` may read and write ``student``'s paper points: an admin, or the tutor of the
    student's current group (one query)."""
    if admin:
        return True
    with Session(engine) as session:
        tutors = session.execute(select(TutorialGroup.tutor_id).join(
            GroupMembership, GroupMembership.group_id == TutorialGroup.id).where(
            GroupMembership.student_id == student, GroupMembership.valid_to.is_(None))).scalars().all()
    return person in tutors


def _teams(session: Session, sheet: str, students: Sequence[str]) -> tuple[dict[str, str], dict[str, list[str]]]:
    """student → team, and team → members (all of them, also those outside ``students``)."""
    members = {team: ids for (_sheet, team), ids in teams_of(session, students, [sheet]).items()}
    return {sid: team for team, ids in members.items() for sid in ids}, members


def _handins(session: Session, sheet: str, students: Sequence[str]) -> dict[tuple[str, str], HandinRef]:
    """(student, kind) → the latest accepted hand-in."""
    return latest_handins(plain_rows(session, select(*HANDIN_COLUMNS).where(
        Handin.sheet == sheet, Handin.student_id.in_(students), Handin.status == "accepted")))


def latest_handins(rows: Iterable[Sequence[Any]]) -> dict[tuple[str, str], HandinRef]:
    """(student, kind) → the latest of the accepted hand-ins ``rows`` (:data:`HANDIN_COLUMNS`)."""
    out: dict[tuple[str, str], HandinRef] = {}
    refs = [HandinRef(hid, kind, sid, _utc(at) or at, name) for hid, kind, sid, at, name in rows]
    for ref in sorted(refs, key=lambda r: (r.received_at, r.id)):
        out[(ref.student_id, ref.kind)] = ref
    return out


def _latest(refs: Sequence[HandinRef | None]) -> HandinRef | None:
    have = [r for r in refs if r is not None]
    return max(have, key=lambda r: r.received_at) if have else None


def counted_points(manifest: Manifest, students: Sequence[str], members: dict[str, list[str]],
                   team_of: dict[str, str], scores: dict[str, tuple[Fraction, datetime | None]],
                   results: dict[str, ResultRow], extensions: dict[str, datetime],
                   groups: dict[str, str]) -> dict[str, Fraction]:
    """student → the notebook points that count (the admission's rule, a team's best) from what was read."""
    from gradebook.points.handins import decide_late, stored_share

    ranked: dict[str, tuple[Fraction, Fraction]] = {}  # (counted, raw)
    for sid in scores.keys() | results.keys():
        ag = results.get(sid)
        raw, stamp = scores.get(sid, (Fraction(ag.score) if ag else Fraction(0), None))
        if ag is not None and ag.late is not None:
            share = stored_share(manifest, bool(ag.late), ag.deadline, ag.submitted_at)
        else:
            share = decide_late(ag.submitted_at if ag is not None else stamp, manifest, extensions.get(sid),
                                groups.get(sid)).share
        ranked[sid] = (raw * share, raw)
    out = {}
    for sid in students:
        crew = members.get(team_of.get(sid, ""), [sid])
        best = max((ranked[m] for m in crew if m in ranked), default=None)
        if best is not None:
            out[sid] = best[0]
    return out


def _cells(session: Session, manifest: Manifest, students: Sequence[str],
           members: dict[str, list[str]], team_of: dict[str, str]) -> dict[tuple[str, str], CellState]:
    everyone = set(students) | {m for team in members.values() for m in team}
    points = map(PointsRow._make, plain_rows(session, select(*POINTS_COLUMNS).where(
        PaperPoints.sheet == manifest.id, PaperPoints.student_id.in_(everyone))))
    comments = map(CommentRow._make, plain_rows(session, select(*COMMENT_COLUMNS).where(
        PaperComment.sheet == manifest.id, PaperComment.student_id.in_(students))))
    return cells_of(manifest, students, members, team_of, points, comments)


def cells_of(manifest: Manifest, students: Sequence[str], members: dict[str, list[str]], team_of: dict[str, str],
             point_rows: Iterable[PointsRow], comment_rows: Iterable[CommentRow]) -> dict[tuple[str, str], CellState]:
    """(student, task) → the cell, from the paper points of the students and their teammates and the students'
    comments."""
    points = {(p.student_id, p.task): p for p in point_rows}
    comments = {(c.student_id, c.task): c for c in comment_rows}
    cells = {}
    for sid in students:
        mates = [m for m in members.get(team_of.get(sid, ""), []) if m != sid]
        for task in manifest.paper_tasks:
            row, note = points.get((sid, task.id)), comments.get((sid, task.id))
            team = [Fraction(points[(m, task.id)].points) for m in mates if (m, task.id) in points]
            cells[(sid, task.id)] = make_state(sid, task.id, row, note, max(team) if team else None)
    return cells


def make_state(student: str, task: str, row: PointsRow | None, note: CommentRow | None,
               team_points: Fraction | None = None) -> CellState:
    text, text_version = (note.text or "", note.version) if note is not None else ("", 0)
    if row is None:
        return CellState(student, task, None, 0, None, None, None, text, text_version, None, team_points)
    ticks = tuple(json.loads(row.rubric)) if row.rubric is not None else None
    adjustment = Fraction(row.adjustment) if row.adjustment else None
    return CellState(student, task, Fraction(row.points), row.version, ticks, row.entered_by, _utc(row.entered_at),
                     text, text_version, adjustment, team_points)


def _open_regrades(session: Session, sheet: str, students: Sequence[str], members: dict[str, list[str]],
                   team_of: dict[str, str]) -> dict[tuple[str, str], int]:
    """(student, task) → the open regrade request on it, for ``students``: one query for the whole group. A
    teammate's request marks the whole team (their points count for all of them)."""
    crews = {sid: members.get(team_of.get(sid, ""), [sid]) for sid in students}
    return regrades_of(plain_rows(session, select(RegradeRequest.id, RegradeRequest.student_id, RegradeRequest.task)
                                  .where(RegradeRequest.sheet == sheet, RegradeRequest.answered_at.is_(None),
                                         RegradeRequest.student_id.in_(sorted({m for c in crews.values() for m in c})))),
                       crews)


def regrades_of(rows: Iterable[Sequence[Any]], crews: dict[str, list[str]]) -> dict[tuple[str, str], int]:
    """(student, task) → the first open regrade request (rows: id, student, task) of the student's crew."""
    asked: dict[tuple[str, str], int] = {}
    for rid, sid, task in sorted((int(rid), str(sid), str(task)) for rid, sid, task in rows):
        asked.setdefault((sid, task), rid)
    return {(sid, task): rid for sid, crew in crews.items() for (asker, task), rid in asked.items() if asker in crew}


def student_paper(engine: Engine, manifest: Manifest, student: str) -> dict[str, CellState]:
    """A student's own paper points, ticked rubric items and comments on ``manifest``'s sheet, by task
    (what the student's pages show)."""
    with Session(engine) as session:
        team_of, members = _teams(session, manifest.id, [student])
        cells = _cells(session, manifest, [student], members, team_of)
    return {task: state for (_, task), state in cells.items()}


def parse_points(text: str, manifest: Manifest, student: str, task: str) -> Fraction | None:
    """A typed cell: ``2,5``, ``2.5`` or ``3``; empty clears it; InputError naming the cell otherwise."""
    if not text.strip():
        return None
    try:
        return parse_decimal(text)
    except ValueError:
        raise InputError(f"{manifest.id}/{task}, student {student!r}: {text.strip()!r} is not a number "
                         "(type points such as 2,5 or 2.5)") from None


MAX_COMMENT = 4000


def save_cell(engine: Engine, manifest: Manifest, student: str, task: str, *, value: str | None = None,
              ticks: Sequence[str] | None = None, adjustment: str | None = None, comment: str | None = None,
              author: str, expected_version: int = 0, expected_comment_version: int = 0,
              reason: str | None = None) -> CellState:
    """Save one cell of the tutors' grid (or of the grade-by-task page) in one transaction: the points typed
    as ``value`` (``""`` clears them) or a rubric grading (the item keys ``ticks`` plus the ``adjustment``
    typed like points, ``""``: none), and/or the ``comment`` (``""`` removes it). Each is written only if it
    is still at the version the page showed; else a CellConflict. The state returned leaves ``team_points``
    out (the grid has them from its page)."""
    if value is not None and ticks is not None:
        raise InputError(f"{manifest.id}/{task}, student {student!r}: type the points or tick rubric items, not both")
    typed = parse_points(value, manifest, student, task) if value is not None else None
    adjust = parse_points(adjustment, manifest, student, task) if adjustment is not None else None
    check_points(manifest, student, task, typed, None)
    if comment is not None and len(comment) > MAX_COMMENT:
        raise InputError(f"{manifest.id}/{task}, student {student!r}: the comment is longer than {MAX_COMMENT} characters")
    why = reason or "entered on the tutors' page"

    def work(session: Session) -> CellState:
        points, note = value is not None or ticks is not None, comment is not None
        held = hold(session, manifest, student, task, items=ticks is not None, lock_points=points, lock_comment=note)
        now = datetime.now(timezone.utc)
        audits, written = [], False
        row, text_row = held.points, held.comment
        if points:
            kept = adjust if adjustment is not None or ticks is None else (
                Fraction(row.adjustment) if row is not None and row.adjustment else None)
            _, total = check_points(manifest, student, task, typed, ticks, held.items, kept)
        if not held.student_known:
            raise InputError(f"unknown student {student!r} (not in the roster)")
        if points:
            values = points_values(total, ticks, held.items or (), kept)
            change, audit = store(session, manifest, held, "paper_points", student, task, values, author,
                                  expected_version, why, now)
            row, written = _after(row, change, values), change.written
            audits += [audit] if audit else []
        if note:
            text = (comment or "").strip()
            values = {"text": text} if text else None
            change, audit = store(session, manifest, held, "paper_comment", student, task, values, author,
                                  expected_comment_version, why, now)
            text_row, written = _after(text_row, change, values), change.written or written
            audits += [audit] if audit else []
        record(session, audits, last=True)  # the save's only audit rows
        return _cell(student, task, row, text_row, written)

    entity = "paper_points" if value is not None or ticks is not None else "paper_comment"
    return guarded(engine, manifest, entity, f"{manifest.id}/{task}/{student}", work)


def _after(row: Stored | None, change: Change, values: dict[str, Any] | None) -> Stored | None:
    """The cell's row after :func:`gradebook.points.paper.store` (built from what was written, not read again)."""
    if not change.written:
        return row
    if values is None or change.value is None:
        return None
    return Stored(row.id if row is not None else 0, change.value, change.version, change.author or "", change.at,
                  values.get("rubric"), values.get("adjustment"))


def _cell(student: str, task: str, row: Stored | None, note: Stored | None, written: bool) -> CellState:
    """The state a save answers with (``team_points`` left out)."""
    text, text_version = (note.value, note.version) if note is not None else ("", 0)
    if row is None:
        return CellState(student, task, None, 0, None, None, None, text, text_version, None, None, written)
    return CellState(student, task, Fraction(row.value), row.version, row.ticks, row.entered_by, row.entered_at, text,
                     text_version, Fraction(row.adjustment) if row.adjustment else None, None, written)


def _state(session: Session, manifest: Manifest, student: str, task: str, teams: bool = True) -> CellState:
    team_of, members = _teams(session, manifest.id, [student]) if teams else ({}, {})
    return _cells(session, manifest, [student], members, team_of)[(student, task)]


def cell_state(engine: Engine, manifest: Manifest, student: str, task: str) -> CellState:
    with Session(engine) as session:
        return _state(session, manifest, student, task)

