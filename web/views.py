"""What the student pages show, read from the gradebook (plain data for the templates).

The points that count, the status and the points still needed come from
:func:`gradebook.admission.rule.compute_standings` (the one truth); the late decision is the one stored on
``autograde_result``; nothing here decides anything again.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from fractions import Fraction
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from gradebook.admission.rule import Standing, compute_standings
from gradebook.course.config import CourseConfig, SemesterSheet
from gradebook.store.models import AutogradeResult, Extension, Handin, PaperComment, PaperPoints

from web.security import team_of


@dataclass(frozen=True)
class HandinView:
    id: int
    kind: str
    status: str
    reason: str
    received_at: datetime
    original_name: str
    student_id: str
    has_file: bool


@dataclass(frozen=True)
class PaperTaskView:
    id: str
    title: str
    max_points: Fraction
    points: Fraction | None
    comment: str
    rubric: list[tuple[str, str, Fraction, bool]]  # (id, text, points, ticked)


@dataclass
class SheetView:
    sheet: SemesterSheet
    title: str
    state: str  # planned | pending | graded
    total: Fraction | None  # what counts (the standing's value)
    notebook_score: Fraction | None = None
    notebook_max: Fraction = Fraction(0)
    paper_points: Fraction | None = None
    paper_max: Fraction = Fraction(0)
    autograde_status: str = ""
    autograde_reason: str = ""
    late: bool | None = None
    decision: str = ""
    extension: datetime | None = None
    team: list[str] = field(default_factory=list)
    handins: list[HandinView] = field(default_factory=list)
    grading: bool = False  # a notebook hand-in newer than its grading result
    result: dict[str, Any] | None = None
    paper_tasks: list[PaperTaskView] = field(default_factory=list)

    @property
    def latest(self) -> dict[str, HandinView]:
        """The newest accepted hand-in of each kind (notebook, paper)."""
        out: dict[str, HandinView] = {}
        for h in self.handins:
            if h.status == "accepted" and (h.kind not in out or h.received_at > out[h.kind].received_at):
                out[h.kind] = h
        return out


def _utc(when: datetime | None) -> datetime | None:
    if when is None:
        return None
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when


def standing_of(engine: Engine, cfg: CourseConfig, student: str) -> Standing | None:
    return next(iter(compute_standings(engine, cfg, students={student})), None)


def _result(session: Session, sheet: str, members: list[str]) -> AutogradeResult | None:
    rows = session.execute(select(AutogradeResult).where(AutogradeResult.sheet == sheet,
                                                         AutogradeResult.student_id.in_(members))).scalars().all()
    return max(rows, key=lambda r: (Fraction(r.score or "0"), r.graded_at), default=None)


def _handins(session: Session, sheet: str, members: list[str]) -> list[HandinView]:
    rows = session.execute(select(Handin).where(Handin.sheet == sheet, Handin.student_id.in_(members))
                           .order_by(Handin.received_at.desc())).scalars().all()
    return [HandinView(h.id, h.kind, h.status, h.reason or "", _utc(h.received_at) or h.received_at,
                       h.original_name or "", h.student_id, bool(h.stored_path)) for h in rows]


def _paper(session: Session, sem: SemesterSheet, student: str, members: list[str]) -> list[PaperTaskView]:
    if sem.manifest is None:
        return []
    points = session.execute(select(PaperPoints).where(PaperPoints.sheet == sem.id,
                                                       PaperPoints.student_id.in_(members))).scalars().all()
    comments = session.execute(select(PaperComment).where(PaperComment.sheet == sem.id,
                                                          PaperComment.student_id.in_(members))).scalars().all()
    views = []
    for task in sem.manifest.paper_tasks:
        mine = [p for p in points if p.task == task.id]
        best = max(mine, key=lambda p: (Fraction(p.points), p.student_id == student), default=None)
        ticked = set(json.loads(best.rubric)) if best is not None and best.rubric else set()
        texts = [c.text for c in sorted(comments, key=lambda c: c.student_id != student) if c.task == task.id and c.text]
        rubric = [(item.id, item.text, item.points, item.id in ticked) for item in getattr(task, "rubric", ())]
        views.append(PaperTaskView(task.id, task.title, task.points, Fraction(best.points) if best else None,
                                   "\n\n".join(dict.fromkeys(texts)), rubric))
    return views


def sheet_view(session: Session, cfg: CourseConfig, standing: Standing | None, student: str, sem: SemesterSheet,
               detail: bool = False) -> SheetView:
    """One sheet of ``student``'s dashboard (``detail``: with feedback and paper tasks)."""
    total = standing.sheets.get(sem.id) if standing else None
    state = "planned" if sem.manifest is None else "pending" if total is None else "graded"
    title = sem.manifest.title if sem.manifest else "(planned)"
    view = SheetView(sem, title, state, total, notebook_max=sem.part_max("notebook"), paper_max=sem.part_max("paper"))
    cell = getattr(standing, "cells", {}).get(sem.id) if standing is not None else None
    if cell is not None:  # the standing's own state of the sheet (pending, late, missing, …) where it has one
        view.state = "graded" if cell.state == "graded" and total is not None else cell.state
    if sem.manifest is None:
        return view
    members = team_of(session, sem.id, student)
    view.team = [m for m in members if m != student]
    view.extension = session.execute(select(Extension.until).where(Extension.sheet == sem.id,
                                                                   Extension.student_id == student)).scalar_one_or_none()
    result = _result(session, sem.id, members)
    view.handins = _handins(session, sem.id, members)
    if result is not None:
        view.notebook_score, view.autograde_status = Fraction(result.score), result.status
        view.autograde_reason, view.late, view.decision = result.reason or "", result.late, result.decision or ""
        if detail:
            view.result = _parse_result(result.result_json)
    if cell is not None and cell.decision:
        view.late, view.decision = cell.late, cell.decision
    latest_nb = view.latest.get("notebook")
    graded_at = _utc(result.graded_at) if result is not None else None
    view.grading = latest_nb is not None and (graded_at is None or latest_nb.received_at > graded_at
                                              or (result is not None and result.fingerprint == ""))
    view.paper_tasks = _paper(session, sem, student, members)
    entered = [t.points for t in view.paper_tasks if t.points is not None]
    view.paper_points = sum(entered, Fraction(0)) if entered else None
    return view


def _parse_result(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {"reason": "the stored result cannot be read"}
    return value if isinstance(value, dict) else {"reason": "the stored result cannot be read"}


def dashboard(engine: Engine, cfg: CourseConfig, student: str) -> tuple[Standing | None, list[SheetView]]:
    standing = standing_of(engine, cfg, student)
    with Session(engine) as session:
        return standing, [sheet_view(session, cfg, standing, student, sem) for sem in cfg.semester]


def sheet_detail(engine: Engine, cfg: CourseConfig, student: str, sheet: str) -> tuple[Standing | None, SheetView]:
    sem = next(s for s in cfg.semester if s.id == sheet)
    standing = standing_of(engine, cfg, student)
    with Session(engine) as session:
        return standing, sheet_view(session, cfg, standing, student, sem, detail=True)
