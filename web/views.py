"""What the student pages show, read from the gradebook (plain data for the templates).

The points that count, the status and the points still needed come from
:func:`gradebook.admission.rule.compute_standings` (the one truth, computed once per change of the gradebook
by :mod:`gradebook.admission.current`); the late decision is the one stored on ``autograde_result``; nothing
here decides anything again. One student's rows are read with one query per table for all the page's sheets.
"""
from __future__ import annotations

import dataclasses
import json
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from fractions import Fraction
from typing import Any

from markupsafe import Markup
from sqlalchemy import Engine

from autograder.grading.feedback import fragment, student_view
from autograder.grading.visibility import AFTER, INTAKE_STATUSES
from gradebook.admission.current import StudentKey, StudentNow, current_standing, shown_standing, student_now
from gradebook.admission.lines import PartLine, part_lines
from gradebook.admission.rule import Standing, compute_standings
from gradebook.admission.student_read import (ShownComment, ShownHandin, ShownPoints, ShownResult, StudentRows,
                                              read_students)
from gradebook.course.config import CourseConfig, SemesterSheet
from gradebook.course.sheets_state import utc
from gradebook.points.grading_turn import KEPT, kept_in_time, when_graded
from gradebook.points.handins import LateDecision, cutoff_refusal, decide_late
from gradebook.points.publishing import published_sheets
from gradebook.points.rubric import ItemRow, rubrics_of
from gradebook.points.regrades import Request, for_student, window_end
from gradebook.store.db import reading


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
    rubric: list[tuple[str, str, Fraction, bool | None]]  # (id, text, points, ticked; None: not shown)
    regrades: list[Request] = field(default_factory=list)  # the student's (team's) requests, newest first
    can_request: bool = False  # a regrade may be asked for now (published, in the window, none open)


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
    grader_down: bool = False  # a hand-in waits for grading and no grader is running (heartbeat) to grade it
    paper_tasks: list[PaperTaskView] = field(default_factory=list)
    paper_published: bool = True  # the sheet's paper points are published to its students
    paper_pending: bool = False  # a student's paper work exists but they may not read its points yet
    regrade_until: datetime | None = None  # the end of the regrade window (published sheets)
    lines: list[PartLine] = field(default_factory=list)  # one per part: earned, counted, the rule (admission.lines)
    group: str | None = None  # the student's tutorial group
    deadline: datetime | None = None  # the student's own (group deadline, extension)
    closed: str = ""  # past the student's cut-off: why nothing is accepted any more

    @property
    def parts(self) -> dict[str, PartLine]:
        """The part lines by part (notebook, paper)."""
        return {line.part: line for line in self.lines}

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


def hidden_paper(cfg: CourseConfig, published: dict[str, datetime]) -> frozenset[str]:
    """The sheets whose paper points a student may not read yet (not published)."""
    return frozenset(s.id for s in cfg.semester if s.manifest is not None and s.id not in published)


def _students_standing(engine: Engine, cfg: CourseConfig, student: str, standing: Standing | None,
                       hidden: frozenset[str]) -> Standing | None:
    """The standing a student reads: the kept one, unless they have paper points on a sheet not published (then
    computed without them: :func:`gradebook.admission.rule.compute_standings`'s ``hide_paper``)."""
    if standing is None or not any(c.paper is not None for k, c in standing.cells.items() if k in hidden):
        return standing
    return next(iter(compute_standings(engine, cfg, students={student}, hide_paper=hidden)), None)


def standing_of(engine: Engine, cfg: CourseConfig, student: str) -> Standing | None:
    """``student``'s standing now: computed once per change of the gradebook (:mod:`gradebook.admission.current`)."""
    return current_standing(engine, cfg, student)


@dataclass(frozen=True)
class _Rows:
    """One student's rows behind the sheets of a page (:func:`gradebook.admission.student_read.read_students`)."""

    teams: dict[str, list[str]]  # sheet -> the team's members (just the student when not in a team)
    extensions: dict[str, datetime]  # sheet -> until
    results: tuple[ShownResult, ...]
    handins: tuple[ShownHandin, ...]  # newest first
    points: tuple[ShownPoints, ...]
    comments: tuple[ShownComment, ...]
    group: str | None  # the student's current tutorial group (its deadlines)
    grading_runs: bool = True  # some grader's heartbeat is fresh (read once per page)
    rubric_items: tuple[ItemRow, ...] = ()  # the sheets' rubric items (gradebook.points.rubric)

    def of(self, sheet: str, student: str) -> list[str]:
        return self.teams.get(sheet, [student])


def _rows(engine: Engine, student: str, sheets: list[str], read: StudentRows | None = None) -> _Rows:
    """What :func:`sheet_view` shows of ``student`` on ``sheets``, of their rows read in one statement (``read``:
    read before, by :func:`gradebook.admission.current.student_now`)."""
    if read is None:
        with reading(engine) as conn:
            read = read_students(conn, {student})
    rule, shown, wanted = read.rule, read.shown, set(sheets)
    teams = {sheet: sorted(members) for (sheet, _team), members in rule.teams.items()
             if sheet in wanted and student in members}
    extensions = {sheet: utc(until) for sid, sheet, until in rule.extensions if sid == student and sheet in wanted}
    return _Rows(teams, extensions, shown.results, shown.handins, shown.points, shown.comments,
                 rule.groups.get(student), shown.grading_runs, shown.rubric_items)


def _result(rows: _Rows, sheet: str, members: list[str]) -> ShownResult | None:
    found = [r for r in rows.results if r.sheet == sheet and r.student_id in members]
    return max(found, key=lambda r: (Fraction(r.score or "0"), r.graded_at), default=None)


def _handins(rows: _Rows, sheet: str, members: list[str]) -> list[HandinView]:
    return [HandinView(h.id, h.kind, h.status, h.reason or "", _utc(h.received_at) or h.received_at,
                       h.original_name or "", h.student_id, bool(h.stored_path))
            for h in rows.handins if h.sheet == sheet and h.student_id in members]


def _paper(rows: _Rows, sem: SemesterSheet, student: str, members: list[str],
           deadline_passed: bool, staff: bool = False, published: bool = True) -> list[PaperTaskView]:
    """The paper tasks with points and comments. Staff see everything as entered. A student sees points,
    comments and rubric marks (got / not got) only once the sheet's paper points are published
    (``published``) and every task of theirs has points (never partial points); rubric texts as the sheet's
    ``rubric_to_students`` allows, marks only where the tutor ticked items."""
    if sem.manifest is None:
        return []
    points = [p for p in rows.points if p.sheet == sem.id and p.student_id in members]
    comments = [c for c in rows.comments if c.sheet == sem.id and c.student_id in members]
    complete = {p.task for p in points} >= {t.id for t in sem.manifest.paper_tasks} or not points
    readable = staff or (published and complete)
    views = []
    rubrics = rubrics_of(sem.manifest, rows.rubric_items)
    for task in sem.manifest.paper_tasks:
        mine = [p for p in points if p.task == task.id]
        best = max(mine, key=lambda p: (Fraction(p.points), p.student_id == student), default=None)
        ticked = set(json.loads(best.rubric)) if best is not None and best.rubric else None
        texts = [c.text for c in sorted(comments, key=lambda c: c.student_id != student) if c.task == task.id and c.text]
        shown = staff or sem.manifest.rubric_shown(deadline_passed, readable and best is not None)
        rubric = [(item.key, item.text, item.points, (item.key in ticked) if readable and ticked is not None else None)
                  for item in rubrics[task.id]] if shown else []
        views.append(PaperTaskView(task.id, task.title, task.points,
                                   Fraction(best.points) if best and readable else None,
                                   "\n\n".join(dict.fromkeys(texts)) if readable else "", rubric))
    return views


def _student_part(view: SheetView, row: ShownResult, sem: SemesterSheet, detail: bool, now: datetime,
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


def _turn(view: SheetView, sem: SemesterSheet, result: ShownResult | None, latest: HandinView | None,
          now: datetime) -> None:
    """The sheet's limit on graded runs, as the page states it: runs left, and when a waiting hand-in is graded."""
    assert sem.manifest is not None
    rate, runs = sem.manifest.grading_rate, (result.graded_runs or 0) if result is not None else 0
    view.runs_left = max(rate.max_runs - runs, 0)
    if not view.grading or latest is None:
        return
    decision = decide_late(latest.received_at, sem.manifest, view.extension, view.group)
    turn = when_graded(sem.counts, rate, runs, result.last_run_at if result is not None else None,
                       result.late if result is not None else None, result.status if result is not None else None,
                       latest.received_at, decision, now)
    if turn == KEPT:
        view.kept, view.grading = True, False
    elif turn is None:
        view.never, view.grading = True, False
    elif isinstance(turn, datetime) and turn > now:
        view.turn = turn


def sheet_view(rows: _Rows, cfg: CourseConfig, standing: Standing | None, student: str, sem: SemesterSheet,
               detail: bool = False, staff: bool = False, now: datetime | None = None,
               published: datetime | None = None) -> SheetView:
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
    members = rows.of(sem.id, student)
    view.team = [m for m in members if m != student]
    view.extension = rows.extensions.get(sem.id)
    view.group = rows.group
    if cell is not None and cell.state not in ("open for hand-in", "not released", "planned"):  # after the deadline
        view.lines = part_lines(cell, sem, for_student=not staff)
    result = _result(rows, sem.id, members)
    view.handins = _handins(rows, sem.id, members)
    if result is not None:
        view.notebook_score, view.autograde_status = Fraction(result.score), result.status
        view.autograde_reason, view.late, view.decision = result.reason or "", result.late, result.decision or ""
        if staff:
            view.result = _parse_result(result.result_json) if detail else None
        else:
            _student_part(view, result, sem, detail, now or datetime.now(timezone.utc), cfg.timezone)
    if cell is not None and cell.decision:
        view.late, view.decision = cell.late, cell.decision
    if not staff and view.parts.get("notebook") and view.parts["notebook"].earned is not None:
        view.notebook_score = view.parts["notebook"].earned  # decided: the line's number (admission.lines)
    latest_nb = view.latest.get("notebook")
    graded_at = _utc(result.graded_at) if result is not None else None
    view.grading = latest_nb is not None and (graded_at is None or latest_nb.received_at > graded_at
                                              or (result is not None and result.fingerprint == ""))
    now = now or datetime.now(timezone.utc)
    _turn(view, sem, result, latest_nb, now)
    view.grader_down = view.grading and not rows.grading_runs
    now_decision = decide_late(now, sem.manifest, view.extension, view.group)
    deadline = view.deadline = now_decision.deadline  # the student's: group deadline, extension included
    view.closed = cutoff_refusal(now_decision, sem.id, cfg.timezone) or ""
    view.paper_published = published is not None
    view.paper_tasks = _paper(rows, sem, student, members, deadline <= now, staff, published is not None)
    entered = [t.points for t in view.paper_tasks if t.points is not None]
    view.paper_points = sum(entered, Fraction(0)) if entered else None
    if not staff and view.paper_points is None and view.paper_tasks and deadline <= now:
        view.paper_pending = "paper" in view.latest or any(p.sheet == sem.id and p.student_id in members
                                                          for p in rows.points)
    return view


def _parse_result(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {"reason": "the stored result cannot be read"}
    return value if isinstance(value, dict) else {"reason": "the stored result cannot be read"}


def dashboard(engine: Engine, cfg: CourseConfig, student: str,
              only: set[str] | None = None, staff: bool = False, state: StudentNow | None = None,
              published: dict[str, datetime] | None = None) -> tuple[Standing | None, list[SheetView]]:
    """``student``'s standing and sheets (``only``: just these sheets, e.g. the ones released to students);
    for a student (not ``staff``) without the paper points of sheets not published (:mod:`publishing`).
    ``state`` and ``published``: read before by the caller (else read here)."""
    now = datetime.now(timezone.utc)
    state = state or student_now(engine, cfg, student, now)
    if state.standing is None:
        return None, []
    published = published_sheets(engine, cfg) if published is None else published
    standing = state.standing if staff else shown_standing(cfg, state, hidden_paper(cfg, published), now)
    sheets = [sem for sem in cfg.semester if only is None or sem.id in only]
    rows = _kept_rows(engine, student, tuple(sem.id for sem in sheets if sem.manifest is not None), state.key,
                      state.rows)
    return standing, [sheet_view(rows, cfg, standing, student, sem, staff=staff, published=published.get(sem.id),
                                 now=now) for sem in sheets]


_kept: dict[tuple[str, str], tuple[StudentKey, tuple[str, ...], _Rows]] = {}
_kept_lock = threading.Lock()
MAX_KEPT = 20_000


def _kept_rows(engine: Engine, student: str, sheets: tuple[str, ...], key: StudentKey,
               read: StudentRows | None = None) -> _Rows:
    """``student``'s rows for the dashboard, read again only when ``key`` (the versions of the course and of
    their team's rows, :func:`gradebook.admission.current.keyed_standing`) moved: all of them are rows of
    those students (team membership is the course's). ``read``: their rows read at ``key`` or later."""
    where = (engine.url.render_as_string(hide_password=False), student)
    with _kept_lock:
        found = _kept.get(where)
    if found is not None and found[0] == key and found[1] == sheets:
        return found[2]
    rows = _rows(engine, student, list(sheets), read)
    with _kept_lock:
        if len(_kept) >= MAX_KEPT:
            _kept.clear()
        _kept[where] = (key, sheets, rows)
    return rows


def sheet_detail(engine: Engine, cfg: CourseConfig, student: str, sheet: str,
                 staff: bool = False) -> tuple[Standing | None, SheetView]:
    sem = next(s for s in cfg.semester if s.id == sheet)
    published = published_sheets(engine, cfg)
    standing = standing_of(engine, cfg, student)
    if not staff:
        standing = _students_standing(engine, cfg, student, standing, hidden_paper(cfg, published))
    rows = _rows(engine, student, [sheet] if sem.manifest is not None else [])
    view = sheet_view(rows, cfg, standing, student, sem, detail=True, staff=staff, published=published.get(sheet))
    _regrades(engine, cfg, view, student, published.get(sheet))
    return standing, view


def _regrades(engine: Engine, cfg: CourseConfig, view: SheetView, student: str, published: datetime | None) -> None:
    """Each paper task's regrade requests, and whether one may be asked for now (published, within the window,
    the task has points, none open)."""
    if not view.paper_tasks:
        return
    mine = for_student(engine, view.sheet.id, student)
    view.regrade_until = window_end(cfg, view.sheet.id, published) if published is not None else None
    open_now = view.regrade_until is not None and datetime.now(timezone.utc) <= view.regrade_until
    view.paper_tasks = [dataclasses.replace(t, regrades=[r for r in mine if r.task == t.id],
                                            can_request=open_now and t.points is not None
                                            and not any(r.open for r in mine if r.task == t.id))
                        for t in view.paper_tasks]


def late_notice(engine: Engine, sem: SemesterSheet, student: str, now: datetime | None = None) -> str | None:
    """What a hand-in made now would count, when it would be late (None: it would be in time): said on the
    page before the upload, which then needs the student's confirmation."""
    if sem.manifest is None:
        return None
    rows = _rows(engine, student, [sem.id])
    until, result = rows.extensions.get(sem.id), _result(rows, sem.id, rows.of(sem.id, student))
    decision = decide_late(now or datetime.now(timezone.utc), sem.manifest, until, rows.group)
    if not decision.late:
        return None
    return _late_words(decision, sem, result)


def _late_words(decision: LateDecision, sem: SemesterSheet, result: ShownResult | None) -> str:
    cutoff = (f" Nothing is accepted after {decision.cutoff.astimezone(sem.due.tzinfo):%a %d %b %Y, %H:%M %Z}."
              if decision.cutoff is not None else "")
    if result is not None and kept_in_time(sem.counts, True, result.late, result.status):
        return ("The deadline has passed. A notebook handed in now is kept but neither graded nor counted: your "
                "notebook handed in in time keeps counting. A PDF handed in now follows the late rule: "
                f"{decision.rule_words()}." + cutoff)
    if decision.counts_zero:
        return ("The deadline has passed. Under this sheet's late policy a hand-in now counts 0 points"
                + (" and replaces nothing that counts." if result is None else
                   "; it replaces your graded notebook, which then counts 0 as well.") + cutoff)
    if decision.policy == "per_day":
        return (f"The deadline has passed. A hand-in now is late: {decision.rule_words()} (of the part you hand in"
                + ("; it replaces your graded notebook" if result is not None else "") + ")." + cutoff)
    return "The deadline has passed. A hand-in now is marked late; this sheet counts it in full." + cutoff
