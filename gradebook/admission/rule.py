"""Admission: per student, points over all sheets, the semester maximum, and a status.

The rule is pure Python on exact numbers (:func:`decide`); :func:`compute_standings` reads the
gradebook with a few aggregate queries (never one per student) and applies it.
"""
from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from datetime import datetime, timezone
from fractions import Fraction
from typing import Any, TypeVar, cast

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from gradebook.store import nbgrader_tables as nt
from gradebook.store.db import plain_rows
from gradebook.course.config import AdmissionRule, CourseConfig, SemesterSheet
from gradebook.people.teams import teams_of
from gradebook.points.handins import LateDecision, current_groups, decide_late, stored_share
from gradebook.store.models import AutogradeResult, Extension
from gradebook.course.sheets_state import OPEN_FOR_HANDIN, PENDING, PLANNED, UNRELEASED, SheetFacts, SheetRows, facts_of, \
    roster_ids, utc
from gradebook.admission.rule_rows import RESULT_COLUMNS, RuleRows, of_ids, read_rows, score_query

ADMITTED, NOT_ADMITTED, OPEN = "admitted", "not_admitted", "open"
ZERO = Fraction(0)
T = TypeVar("T")


@dataclass(frozen=True)
class SheetCell:
    """One student's sheet: what was handed in, what the autograder and the tutors gave, the stored late
    decision, and what counts. ``counted`` is None while the sheet is not decided for the student."""

    sheet: str
    state: str  # graded | late | missing | invalid | timeout | crashed | pending | planned | not released | open for hand-in
    counted: Fraction | None
    notebook: Fraction | None  # autograded points as graded (None: no graded notebook)
    paper: Fraction | None  # paper points entered (None: none)
    counted_notebook: Fraction | None  # the notebook points that count (0 when late under policy "zero")
    received_at: datetime | None
    deadline: datetime  # the student's deadline (extension included)
    extended: bool
    late: bool
    decision_of: str | LateDecision = field(default="", repr=False)  # stored text, or one taken from a timestamp
    timezone: str = "Europe/Berlin"
    counted_paper: Fraction | None = None  # the paper points that count (the late rule on a late PDF)
    paper_decision: LateDecision | None = field(default=None, repr=False)  # the PDF's (None: no PDF handed in)
    stored_deadline: datetime | None = None  # the deadline the stored notebook decision was taken against
    notebook_late: bool = False  # the notebook (not only the PDF) came late

    @property
    def decision(self) -> str:
        """The late decision in words ("" when there is no graded notebook)."""
        return self.decision_of if isinstance(self.decision_of, str) else self.decision_of.text(self.timezone)

    @property
    def decided(self) -> bool:
        return self.counted is not None


@dataclass(frozen=True)
class Standing:
    student_id: str
    last_name: str
    first_name: str
    email: str
    matriculation: str
    group: str
    sheets: dict[str, Fraction | None]  # the counted points; None: not decided yet (pending / planned)
    points: Fraction
    max_points: Fraction
    threshold: Fraction
    status: str
    points_needed: Fraction
    override_reason: str
    cells: dict[str, SheetCell] = field(default_factory=dict)
    still_reachable: Fraction = Fraction(0)  # the maximum of the sheets not decided yet

    @property
    def fraction(self) -> Fraction:
        return self.points / self.max_points if self.max_points else Fraction(0)

    @property
    def percent(self) -> Fraction:
        """Percent of the semester's maximum, truncated to two decimals (the one percentage shown)."""
        return truncated_percent(self.fraction)


def truncated_percent(fraction: Fraction) -> Fraction:
    """``fraction`` in percent, truncated (never rounded up) to two decimals: 49.999… → 49.99."""
    return Fraction(math.floor(fraction * 10000), 100)


def percent_text(fraction: Fraction) -> str:
    """The percentage as text with two decimals, truncated: ``"6.87"``."""
    hundredths = math.floor(fraction * 10000)
    return f"{hundredths // 100}.{hundredths % 100:02d}"


def decide(points: Fraction, reachable: Fraction, threshold: Fraction) -> tuple[str, Fraction]:
    """Status and points still needed. ``points``: earned so far; ``reachable``: earned on the
    closed sheets plus the maximum of the sheets still to come. Admitted at ≥ threshold (exactly
    50% is admitted); not_admitted when even full points on the sheets to come cannot reach it."""
    if points >= threshold:
        return ADMITTED, Fraction(0)
    if reachable < threshold:
        return NOT_ADMITTED, threshold - points
    return OPEN, threshold - points


def status_of(counted: dict[str, Fraction | None], maxima: dict[str, Fraction], threshold: Fraction
              ) -> tuple[str, Fraction, Fraction, Fraction]:
    """(status, points still needed, points, still reachable) from the counted points per sheet (None: not
    decided yet, so its maximum is still reachable, never 0)."""
    points = sum((v for v in counted.values() if v is not None), ZERO)
    still = sum((maxima[k] for k, v in counted.items() if v is None), ZERO)
    status, needed = decide(points, points + still, threshold)
    return status, needed, points, still


def apply_sheet_minimum(status: str, cells: dict[str, SheetCell], semester: tuple[SemesterSheet, ...],
                        minimum: Fraction | None) -> str:
    """With a minimum per sheet, a decided (non-bonus) sheet below it makes admission impossible, and
    nobody is admitted while a sheet that needs its minimum is not decided yet."""
    if minimum is None:
        return status
    counted = [s for s in semester if not s.bonus]
    if any(cells[s.id].decided and (cells[s.id].counted or ZERO) < minimum * s.max_points for s in counted):
        return NOT_ADMITTED
    if status == ADMITTED and any(not cells[s.id].decided for s in counted):
        return OPEN
    return status


def apply_part_minimum(status: str, cells: dict[str, SheetCell], semester: tuple[SemesterSheet, ...],
                       minimum: Fraction | None) -> str:
    """With a minimum per part, the notebook points and the paper points must each reach ``minimum`` of
    the semester's notebook (paper) maximum; sheets not decided yet count as still reachable."""
    if minimum is None:
        return status
    for part in ("notebook", "paper"):
        need = minimum * sum((s.part_max(part) for s in semester if not s.bonus), ZERO)
        still = sum((s.part_max(part) for s in semester if not cells[s.id].decided), ZERO)
        have = sum((_part(cells[s.id], part) for s in semester if cells[s.id].decided), ZERO)
        if have + still < need:
            return NOT_ADMITTED
        if have < need and status == ADMITTED:
            status = OPEN
    return status


def _part(cell: SheetCell, part: str) -> Fraction:
    return (cell.counted_notebook if part == "notebook" else cell.counted_paper) or ZERO


@dataclass(frozen=True)
class _Notebook:
    """A student's graded notebook of a sheet with its late decision."""

    raw: Fraction
    counted: Fraction
    status: str
    received_at: datetime | None
    late: bool
    decision: str | LateDecision  # the stored text; a decision taken here is put in words only when shown
    deadline: datetime | None = None  # the stored decision's deadline


def _scores_of(rows: Sequence[Any]) -> dict[tuple[str, str], tuple[Fraction, datetime | None]]:
    """(student, sheet) → nbgrader's score and submission time, of :func:`.rule_rows.score_query`'s rows."""
    return {(sid, sheet): (nt.exact_score(total), utc(stamp) if stamp else None) for sid, sheet, stamp, total in rows}


def _notebooks(session: Session, cfg: CourseConfig, extensions: dict[tuple[str, str], datetime],
               ids: set[str] | None = None, groups: dict[str, str] | None = None,
               result_rows: Sequence[Any] | None = None) -> dict[tuple[str, str], _Notebook]:
    """(student, sheet) → the graded notebook, with the stored late decision (taken once, when graded);
    only where no autograde result exists is it taken here from nbgrader's timestamp. ``result_rows``: the
    autograding results (:data:`.rule_rows.RESULT_COLUMNS`) of ``ids``, when the caller has read them."""
    scores = plain_rows(session, score_query(*of_ids(nt.submitted_assignment.c.student_id, ids)))
    if result_rows is None:
        result_rows = plain_rows(session, select(*RESULT_COLUMNS).where(*of_ids(AutogradeResult.student_id, ids)))
    return _notebooks_of(cfg, extensions, groups or {}, scores, result_rows)


def _notebooks_of(cfg: CourseConfig, extensions: dict[tuple[str, str], datetime], groups: dict[str, str],
                  score_rows: Sequence[Any], result_rows: Sequence[Any]) -> dict[tuple[str, str], _Notebook]:
    """:func:`_notebooks` of the rows read."""
    scores = _scores_of(score_rows)
    results = {(r.student_id, r.sheet): r for r in result_rows}
    manifests = {s.id: s.manifest for s in cfg.semester if s.manifest is not None}
    out: dict[tuple[str, str], _Notebook] = {}
    for key in scores.keys() | results.keys():
        manifest = manifests.get(key[1])
        if manifest is None:
            continue
        ag = results.get(key)
        raw, stamp = scores.get(key, (Fraction(ag.score) if ag else ZERO, None))
        text: str | LateDecision
        if ag is not None and ag.late is not None:
            late, text, received = bool(ag.late), ag.decision or "", ag.submitted_at
            share = stored_share(manifest, late, ag.deadline, received)
        else:
            received = ag.submitted_at if ag is not None else stamp
            text = decide_late(received, manifest, extensions.get(key), groups.get(key[0]))
            late, share = text.late, text.share
        out[key] = _Notebook(raw, raw * share, ag.status if ag else "graded", utc(received) if received else None,
                             late, text, utc(ag.deadline) if ag is not None and ag.deadline else None)
    return out


@lru_cache(maxsize=4096)
def _fraction(text: str) -> Fraction:
    return Fraction(text)  # points take few distinct values: parse each once


def _paper_points(rows: Sequence[Any], teams: dict[tuple[str, str], list[str]]) -> dict[tuple[str, str], Fraction]:
    """Exact sums of the paper points ``rows`` (student, sheet, task, points), computed in integer units of 1/L
    (L: the lcm of the denominators that occur). In a team, every member gets, per task, the points entered for
    any member (the highest)."""
    values = {pts: _fraction(pts) for pts in {r[3] for r in rows}}
    unit = math.lcm(*(v.denominator for v in values.values())) if values else 1
    units = {pts: v.numerator * (unit // v.denominator) for pts, v in values.items()}
    per_task = {(sid, sheet, task): units[pts] for sid, sheet, task, pts in rows}
    for (sheet, _team), members in teams.items():
        tasks = {t for (m, sh, t) in per_task if sh == sheet and m in members}
        for task in tasks:
            best = max(per_task.get((m, sheet, task), 0) for m in members)
            for m in members:
                per_task[(m, sheet, task)] = best
    totals: dict[tuple[str, str], int] = defaultdict(int)
    for (sid, sheet, _task), u in per_task.items():
        totals[(sid, sheet)] += u
    return {key: Fraction(total, unit) for key, total in totals.items()}


def _rank(entry: object) -> tuple[Fraction, Fraction]:
    if isinstance(entry, _Notebook):
        return entry.counted, entry.raw
    return cast(Fraction, entry), cast(Fraction, entry)


def _team_notebook(notebook: dict[tuple[str, str], T], teams: dict[tuple[str, str], list[str]]) -> None:
    """A team hands in once: every member gets the member's notebook that counts most."""
    for (sheet, _team), members in teams.items():
        entries = [notebook[(m, sheet)] for m in members if (m, sheet) in notebook]
        if entries:
            best = max(entries, key=_rank)
            for m in members:
                notebook[(m, sheet)] = best


def notebook_points(session: Session, cfg: CourseConfig) -> dict[tuple[str, str], Fraction]:
    """(student, sheet) → the notebook points that count (stored late decision, teams), for other front ends."""
    extensions = {(e.student_id, e.sheet): utc(e.until) for e in session.execute(select(Extension)).scalars()}
    notebook = _notebooks(session, cfg, extensions, groups=current_groups(session))
    _team_notebook(notebook, teams_of(session))
    return {key: nb.counted for key, nb in notebook.items()}


def off_roster(engine: Engine) -> list[str]:
    """Student ids the gradebook has but the roster lacks (left out of every list)."""
    with Session(engine) as session:
        return sorted(set(session.execute(select(nt.student.c.id)).scalars()) - roster_ids(session))


@dataclass(frozen=True)
class RuleData:
    """What the rule reads from the gradebook (:func:`load_data`)."""

    facts: dict[str, SheetFacts]
    notebook: dict[tuple[str, str], _Notebook]
    paper: dict[tuple[str, str], Fraction]
    extensions: dict[tuple[str, str], datetime]
    students: list[Any]
    overrides: dict[str, tuple[str, str]]
    timezone: str
    team_of: dict[tuple[str, str], list[str]] = field(default_factory=dict)  # (student, sheet) -> the team's members
    pdfs: dict[tuple[str, str], datetime] = field(default_factory=dict)  # (student, sheet) -> newest accepted PDF
    groups: dict[str, str] = field(default_factory=dict)  # student -> current tutorial group
    hidden_paper: frozenset[str] = frozenset()  # sheets whose paper points the reader may not see (a student's view)


def load_data(session: Session, cfg: CourseConfig, only: set[str] | None = None) -> RuleData:
    """Everything the rule needs; with ``only``, the rows of those students (and their teams' members) only.
    Whether a sheet is decided for a student depends on their (and their team's) hand-ins only."""
    return rule_data(cfg, read_rows(session, only))


def rule_data(cfg: CourseConfig, rows: RuleRows) -> RuleData:
    """The rule's data of the rows read (:mod:`.rule_rows`, :mod:`.student_read`); each table's rows serve
    both the rule and the sheets' facts."""
    extensions = {(sid, sheet): utc(until) for sid, sheet, until in rows.extensions}
    notebook = _notebooks_of(cfg, extensions, rows.groups, rows.scores, rows.results)
    _team_notebook(notebook, rows.teams)
    given = SheetRows(rows.handins, [(r.sheet, r.student_id, r.status, r.submitted_at) for r in rows.results],
                      [(sheet, sid, task) for sid, sheet, task, _ in rows.points])
    facts = facts_of(cfg, rows.roster, rows.states, rows.generated, _counts_zero(cfg, extensions, rows.groups),
                     rows.teams, given)
    team_of = {(m, sheet): members for (sheet, _team), members in rows.teams.items() for m in members}
    return RuleData(facts, notebook, _paper_points(rows.points, rows.teams), extensions, rows.students, rows.overrides,
                    cfg.timezone, team_of, _pdfs(rows.handins), rows.groups)


def _pdfs(handins: Sequence[Any]) -> dict[tuple[str, str], datetime]:
    """(student, sheet) → when their newest accepted PDF of the paper part arrived (the one the tutors grade),
    from the accepted hand-ins (sheet, student, kind, received at)."""
    newest: dict[tuple[str, str], datetime] = {}
    for sheet, sid, kind, at in handins:
        if kind == "paper" and at is not None:
            when = utc(at)
            if (sid, sheet) not in newest or when > newest[(sid, sheet)]:
                newest[(sid, sheet)] = when
    return newest


def _counts_zero(cfg: CourseConfig, extensions: dict[tuple[str, str], datetime],
                 groups: dict[str, str]) -> Callable[[str, str, datetime], bool]:
    """The late policy as a predicate on (sheet, student, time of receipt): does it count that hand-in as 0?
    (``extensions``: (student, sheet) → until, of every student the predicate is asked about; ``groups``:
    student → current tutorial group.)"""
    manifests = {s.id: s.manifest for s in cfg.semester if s.manifest is not None}

    def counts_zero(sheet: str, student: str, received: datetime) -> bool:
        manifest = manifests.get(sheet)
        return manifest is not None and decide_late(received, manifest, extensions.get((student, sheet)),
                                                    groups.get(student)).counts_zero

    return counts_zero


def _members(data: RuleData, sid: str, sheet: str) -> list[str]:
    return data.team_of.get((sid, sheet), [sid])


def _state(facts: SheetFacts, decided: bool, nb: _Notebook | None, paper: Fraction | None,
           deadline: datetime, as_of: datetime, late: bool = False) -> str:
    if not decided:
        if facts.planned:
            return PLANNED
        if not facts.released:
            return UNRELEASED
        return OPEN_FOR_HANDIN if deadline > as_of else PENDING
    if nb is not None and nb.status in ("invalid", "timeout", "crashed"):
        return nb.status
    if late:
        return "late"
    return "graded" if nb is not None or paper is not None else "missing"


def _paper_decision(data: RuleData, sid: str, sem: SemesterSheet) -> LateDecision | None:
    """The late decision on the newest PDF of the paper part (the team's newest), None without one."""
    stamps = [data.pdfs[(m, sem.id)] for m in _members(data, sid, sem.id) if (m, sem.id) in data.pdfs]
    if sem.manifest is None or not stamps:
        return None
    return decide_late(max(stamps), sem.manifest, data.extensions.get((sid, sem.id)), data.groups.get(sid))


def sheet_cell(data: RuleData, sid: str, sem: SemesterSheet, as_of: datetime) -> SheetCell:
    facts = data.facts[sem.id]
    ext = data.extensions.get((sid, sem.id))
    due = utc(sem.due)
    own = utc(sem.manifest.late.deadline_for(sem.due, data.groups.get(sid))) if sem.manifest else due
    extended = ext is not None and ext > own
    deadline = ext if ext is not None and extended else own
    decided = facts.decided_for(_members(data, sid, sem.id), deadline, as_of)
    nb = data.notebook.get((sid, sem.id))
    paper = data.paper.get((sid, sem.id))
    if paper is not None and sem.id in data.hidden_paper:  # unpublished points: the sheet reads as pending
        decided, paper = False, None
    pdf = _paper_decision(data, sid, sem)
    counted_nb = nb.counted if nb is not None else None
    counted_paper = pdf.counted(paper) if pdf is not None and paper is not None else paper
    counted = (counted_nb or ZERO) + (counted_paper or ZERO) if decided else None
    late = (nb.late if nb else False) or (pdf.late if pdf else False)
    return SheetCell(sem.id, _state(facts, decided, nb, paper, deadline, as_of, late), counted,
                     nb.raw if nb else None, paper, counted_nb, nb.received_at if nb else None, deadline,
                     extended, late, nb.decision if nb else "", data.timezone, counted_paper, pdf,
                     nb.deadline if nb else None, nb.late if nb else False)


def compute_standings(engine: Engine, cfg: CourseConfig, as_of: datetime | None = None,
                      rule: AdmissionRule | None = None, students: set[str] | None = None,
                      hide_paper: frozenset[str] = frozenset()) -> list[Standing]:
    """Every roster student's standing at ``as_of`` (default: now), sorted by name (``students``: only these;
    the same numbers, read with a few indexed queries: one student's page does not compute the course's).

    ``hide_paper``: sheets whose paper points are not published (the student's own view): a sheet where the
    student has such points is pending, its maximum still reachable, as if the points were not entered, so
    that neither the total nor the status tells them. Staff views and the admission list pass nothing.

    Only decided sheets count; a sheet not decided yet for a student counts with its full maximum as
    still reachable (so it can never make anyone not_admitted), and shows as pending or planned."""
    with Session(engine) as session:
        data = load_data(session, cfg, students)
    return standings_from(data, cfg, as_of, rule, hide_paper=hide_paper)


def standings_from(data: RuleData, cfg: CourseConfig, as_of: datetime | None = None, rule: AdmissionRule | None = None,
                   students: set[str] | None = None, hide_paper: frozenset[str] = frozenset()) -> list[Standing]:
    """:func:`compute_standings` on data read before (``students``: only these of ``data``'s students)."""
    as_of = utc(as_of or datetime.now(timezone.utc))
    rule = rule or cfg.rule
    threshold = rule.threshold(cfg.semester_max)
    if hide_paper:
        data = replace(data, hidden_paper=frozenset(hide_paper))
    maxima = {sem.id: sem.max_points for sem in cfg.semester}
    standings = []
    for sid, last, first, email, matriculation, group in data.students:
        if students is not None and sid not in students:
            continue
        cells = {sem.id: sheet_cell(data, sid, sem, as_of) for sem in cfg.semester}
        status, needed, points, still = status_of({k: c.counted for k, c in cells.items()}, maxima, threshold)
        status = apply_sheet_minimum(status, cells, cfg.semester, rule.min_per_sheet)
        status = apply_part_minimum(status, cells, cfg.semester, rule.min_per_part)
        override_status, reason = data.overrides.get(sid, (None, ""))
        standings.append(Standing(sid, last or "", first or "", email or "", matriculation or "", group or "",
                                  {k: c.counted for k, c in cells.items()}, points, cfg.semester_max, threshold,
                                  override_status or status, ZERO if override_status == ADMITTED else needed, reason,
                                  cells, still))
    standings.sort(key=lambda s: (s.last_name.casefold(), s.first_name.casefold(), s.student_id))
    return standings


def preview(engine: Engine, cfg: CourseConfig, threshold: str, as_of: datetime | None = None) -> list[tuple[str, str, str, str]]:
    """Who would change status under another threshold: (student, name, status now, status then)."""
    from gradebook.course.config import parse_rule

    now = compute_standings(engine, cfg, as_of)
    then = {s.student_id: s for s in compute_standings(engine, cfg, as_of, rule=parse_rule(threshold, "--preview-threshold"))}
    return [(s.student_id, f"{s.first_name} {s.last_name}", s.status, then[s.student_id].status)
            for s in now if then[s.student_id].status != s.status]
