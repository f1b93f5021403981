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

from markupsafe import Markup
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from autograder.grading.feedback import fragment, student_view
from autograder.grading.visibility import AFTER, INTAKE_STATUSES
from gradebook.admission.rule import Standing, compute_standings
from gradebook.course.config import CourseConfig, SemesterSheet
from gradebook.points.grading_turn import KEPT, kept_in_time, when_graded
from gradebook.points.handins import decide_late
from gradebook.points.rubric import sheet_rubrics
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
    result: dict[str, Any] | None = None  # the staff's full result (tutors and admins only)
    feedback: Markup | None = None  # the student's view of it (:mod:`autograder.grading.visibility`), as HTML
    turn: datetime | None = None  # a saved hand-in waiting for its grading turn: when it is graded
    never: bool = False  # ... or never (a late hand-in beyond the sheet's limit of graded runs)
    runs_left: int | None = None  # graded runs left on this sheet (before the deadline)
    kept: bool = False  # the newest hand-in is late and kept: the graded one made in time counts
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


def _paper(session: Session, sem: SemesterSheet, student: str, members: list[str],
           deadline_passed: bool, staff: bool = False) -> list[PaperTaskView]:
    """The paper tasks with points and comments; a task's rubric texts for staff, and for the student only as
    the sheet's ``rubric_to_students`` allows (default: with its points, after the student's deadline)."""
    if sem.manifest is None:
        return []
    points = session.execute(select(PaperPoints).where(PaperPoints.sheet == sem.id,
                                                       PaperPoints.student_id.in_(members))).scalars().all()
    comments = session.execute(select(PaperComment).where(PaperComment.sheet == sem.id,
                                                          PaperComment.student_id.in_(members))).scalars().all()
    views = []
    rubrics = sheet_rubrics(session, sem.manifest)
    for task in sem.manifest.paper_tasks:
        mine = [p for p in points if p.task == task.id]
        best = max(mine, key=lambda p: (Fraction(p.points), p.student_id == student), default=None)
        ticked = set(json.loads(best.rubric)) if best is not None and best.rubric else set()
        texts = [c.text for c in sorted(comments, key=lambda c: c.student_id != student) if c.task == task.id and c.text]
        shown = staff or sem.manifest.rubric_shown(deadline_passed, best is not None)
        rubric = [(item.key, item.text, item.points, item.key in ticked) for item in rubrics[task.id]] if shown else []
        views.append(PaperTaskView(task.id, task.title, task.points, Fraction(best.points) if best else None,
                                   "\n\n".join(dict.fromkeys(texts)), rubric))
    return views


def _student_part(view: SheetView, row: AutogradeResult, sem: SemesterSheet, detail: bool, now: datetime,
                  tz: str) -> None:
    """What the student sees of their graded notebook: before the deadline (and for a late hand-in) no points
    and nothing that depends on a hidden check; the same bytes whether the hidden checks pass or fail."""
    assert sem.manifest is not None
    result = _parse_result(row.result_json)
    result.setdefault("student", row.student_id)
    if row.deadline is not None:  # the stored decision's deadline (an extension re-decides it)
        result["deadline"] = _utc(row.deadline).isoformat()  # type: ignore[union-attr]
    shown = student_view(result, sem.manifest, now)
    if shown["phase"] != AFTER and shown["status"] not in INTAKE_STATUSES:
        view.notebook_score, view.autograde_status, view.autograde_reason = None, "checked", ""
    if detail:
        view.feedback = Markup(fragment(shown, sem.manifest, tz))  # escaped throughout by the fragment


def _turn(view: SheetView, sem: SemesterSheet, result: AutogradeResult | None, latest: HandinView | None,
          now: datetime) -> None:
    """The sheet's limit on graded runs, as the page states it: runs left, and when a waiting hand-in is graded."""
    assert sem.manifest is not None
    rate, runs = sem.manifest.grading_rate, (result.graded_runs or 0) if result is not None else 0
    view.runs_left = max(rate.max_runs - runs, 0)
    if not view.grading or latest is None:
        return
    decision = decide_late(latest.received_at, sem.manifest, view.extension)
    turn = when_graded(sem.counts, rate, runs, result.last_run_at if result is not None else None,
                       result.late if result is not None else None, result.status if result is not None else None,
                       latest.received_at, decision, now)
    if turn == KEPT:
        view.kept, view.grading = True, False
    elif turn is None:
        view.never, view.grading = True, False
    elif isinstance(turn, datetime) and turn > now:
        view.turn = turn


def sheet_view(session: Session, cfg: CourseConfig, standing: Standing | None, student: str, sem: SemesterSheet,
               detail: bool = False, staff: bool = False, now: datetime | None = None) -> SheetView:
    """One sheet of ``student``'s dashboard (``detail``: with feedback and paper tasks; ``staff``: the full
    result, hidden tests included, for tutors and admins)."""
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
        if staff:
            view.result = _parse_result(result.result_json) if detail else None
        else:
            _student_part(view, result, sem, detail, now or datetime.now(timezone.utc), cfg.timezone)
    if cell is not None and cell.decision:
        view.late, view.decision = cell.late, cell.decision
    latest_nb = view.latest.get("notebook")
    graded_at = _utc(result.graded_at) if result is not None else None
    view.grading = latest_nb is not None and (graded_at is None or latest_nb.received_at > graded_at
                                              or (result is not None and result.fingerprint == ""))
    now = now or datetime.now(timezone.utc)
    _turn(view, sem, result, latest_nb, now)
    due, extended = sem.due.astimezone(timezone.utc), _utc(view.extension)
    deadline = max(due, extended) if extended is not None else due  # the student's, extension included
    view.paper_tasks = _paper(session, sem, student, members, deadline <= now, staff)
    entered = [t.points for t in view.paper_tasks if t.points is not None]
    view.paper_points = sum(entered, Fraction(0)) if entered else None
    return view


def _parse_result(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {"reason": "the stored result cannot be read"}
    return value if isinstance(value, dict) else {"reason": "the stored result cannot be read"}


def dashboard(engine: Engine, cfg: CourseConfig, student: str,
              only: set[str] | None = None, staff: bool = False) -> tuple[Standing | None, list[SheetView]]:
    """``student``'s standing and sheets (``only``: just these sheets, e.g. the ones released to students)."""
    standing = standing_of(engine, cfg, student)
    with Session(engine) as session:
        return standing, [sheet_view(session, cfg, standing, student, sem, staff=staff) for sem in cfg.semester
                          if only is None or sem.id in only]


def sheet_detail(engine: Engine, cfg: CourseConfig, student: str, sheet: str,
                 staff: bool = False) -> tuple[Standing | None, SheetView]:
    sem = next(s for s in cfg.semester if s.id == sheet)
    standing = standing_of(engine, cfg, student)
    with Session(engine) as session:
        return standing, sheet_view(session, cfg, standing, student, sem, detail=True, staff=staff)


def late_notice(engine: Engine, sem: SemesterSheet, student: str, now: datetime | None = None) -> str | None:
    """What a hand-in made now would count, when it would be late (None: it would be in time): said on the
    page before the upload, which then needs the student's confirmation."""
    if sem.manifest is None:
        return None
    with Session(engine) as session:
        members = team_of(session, sem.id, student)
        until = session.execute(select(Extension.until).where(Extension.sheet == sem.id,
                                                              Extension.student_id == student)).scalar_one_or_none()
        result = _result(session, sem.id, members)
    decision = decide_late(now or datetime.now(timezone.utc), sem.manifest, until)
    if not decision.late:
        return None
    if result is not None and kept_in_time(sem.counts, True, result.late, result.status):
        return ("The deadline has passed. A notebook handed in now is kept but neither graded nor counted: your "
                "notebook handed in in time keeps counting.")
    if decision.counts_zero:
        return ("The deadline has passed. Under this sheet's late policy a hand-in now counts 0 points"
                + (" and replaces nothing that counts." if result is None else
                   "; it replaces your graded notebook, which then counts 0 as well."))
    return "The deadline has passed. A hand-in now is marked late; this sheet counts it in full."
