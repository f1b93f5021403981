"""Admission: per student, points over all sheets, the semester maximum, and a status.

The rule is pure Python on exact numbers (:func:`decide`); :func:`compute_standings` reads the
gradebook with a few aggregate queries (never one per student) and applies it.
"""
from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache
from datetime import datetime, timedelta, timezone
from fractions import Fraction
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from . import nbgrader_tables as nt
from .config import AdmissionRule, CourseConfig, SemesterSheet
from .manifest import Manifest
from .models import AdmissionOverride, Extension, GroupMembership, PaperPoints, StudentProfile, TeamMember

ADMITTED, NOT_ADMITTED, OPEN = "admitted", "not_admitted", "open"
ZERO = Fraction(0)


@dataclass(frozen=True)
class Standing:
    student_id: str
    last_name: str
    first_name: str
    email: str
    matriculation: str
    group: str
    sheets: dict[str, Fraction | None]  # None: sheet not graded yet
    points: Fraction
    max_points: Fraction
    threshold: Fraction
    status: str
    points_needed: Fraction
    override_reason: str

    @property
    def fraction(self) -> Fraction:
        return self.points / self.max_points if self.max_points else Fraction(0)


def decide(points: Fraction, reachable: Fraction, threshold: Fraction) -> tuple[str, Fraction]:
    """Status and points still needed. ``points``: earned so far; ``reachable``: earned on the
    closed sheets plus the maximum of the sheets still to come. Admitted at ≥ threshold (exactly
    50% is admitted); not_admitted when even full points on the sheets to come cannot reach it."""
    if points >= threshold:
        return ADMITTED, Fraction(0)
    if reachable < threshold:
        return NOT_ADMITTED, threshold - points
    return OPEN, threshold - points


def apply_sheet_minimum(status: str, sheets: dict[str, Fraction | None], semester: tuple[SemesterSheet, ...],
                        minimum: Fraction | None, as_of: datetime) -> str:
    """With a minimum per sheet, a closed (non-bonus) sheet below it makes admission impossible, and
    nobody is admitted while a sheet that needs its minimum is still to come."""
    if minimum is None:
        return status
    counted = [s for s in semester if not s.bonus]
    if any(s.due <= as_of and (sheets.get(s.id) or Fraction(0)) < minimum * s.max_points for s in counted):
        return NOT_ADMITTED
    if status == ADMITTED and any(s.due > as_of for s in counted):
        return OPEN
    return status


def apply_part_minimum(status: str, parts: dict[str, dict[str, Fraction]], semester: tuple[SemesterSheet, ...],
                       minimum: Fraction | None, as_of: datetime) -> str:
    """With a minimum per part, the notebook points and the paper points must each reach
    ``minimum`` of the semester's notebook (paper) maximum; ``parts[part][sheet]`` are the points."""
    if minimum is None:
        return status
    counted = [s for s in semester if not s.bonus]
    still_open = {s.id for s in semester if s.due > as_of}
    for part in ("notebook", "paper"):
        need = minimum * sum((s.part_max(part) for s in counted), Fraction(0))
        have = sum(parts[part].values(), Fraction(0))
        still = sum((s.part_max(part) for s in semester if s.id in still_open), Fraction(0))
        closed = sum((v for k, v in parts[part].items() if k not in still_open), Fraction(0))
        if closed + still < need:
            return NOT_ADMITTED
        if have < need and status == ADMITTED:
            status = OPEN
    return status


def is_late(submitted: datetime | None, manifest: Manifest, extension: datetime | None) -> bool:
    """Per the manifest's [late] policy ("zero" with grace_minutes, or "none")."""
    if submitted is None or manifest.late_policy.get("policy", "none") != "zero":
        return False
    deadline = max(manifest.due, extension) if extension else manifest.due
    grace = timedelta(minutes=float(manifest.late_policy.get("grace_minutes", 0)))
    return submitted > deadline + grace


@lru_cache(maxsize=65536)
def _exact(x: float | None) -> Fraction:
    """nbgrader stores floats; scores take few distinct values, so each is converted once."""
    return Fraction(x).limit_denominator(10**6) if x is not None else Fraction(0)


def _utc(x: datetime | None) -> datetime | None:
    if x is None:
        return None
    return x.replace(tzinfo=timezone.utc) if x.tzinfo is None else x.astimezone(timezone.utc)


def _notebook_points(session: Session, cfg: CourseConfig) -> dict[tuple[str, str], Fraction]:
    """(student, sheet) → autograded points, the late policy and extensions applied."""
    score = func.sum(func.coalesce(nt.grade.c.manual_score, nt.grade.c.auto_score, 0.0)
                     + func.coalesce(nt.grade.c.extra_credit, 0.0))
    rows = session.execute(
        select(nt.submitted_assignment.c.student_id, nt.assignment.c.name, nt.submitted_assignment.c.timestamp, score)
        .select_from(nt.grade)
        .join(nt.submitted_notebook, nt.grade.c.notebook_id == nt.submitted_notebook.c.id)
        .join(nt.submitted_assignment, nt.submitted_notebook.c.assignment_id == nt.submitted_assignment.c.id)
        .join(nt.assignment, nt.submitted_assignment.c.assignment_id == nt.assignment.c.id)
        .group_by(nt.submitted_assignment.c.student_id, nt.assignment.c.name, nt.submitted_assignment.c.timestamp)
    ).all()
    extensions = {(e.student_id, e.sheet): _utc(e.until) for e in session.execute(select(Extension)).scalars()}
    manifests = {s.id: s.manifest for s in cfg.semester if s.manifest is not None}
    out: dict[tuple[str, str], Fraction] = {}
    for student, sheet, stamp, total in rows:
        manifest = manifests.get(sheet)
        if manifest is None:
            continue
        late = is_late(_utc(stamp), manifest, extensions.get((student, sheet)))
        out[(student, sheet)] = Fraction(0) if late else _exact(total)
    return out


@lru_cache(maxsize=4096)
def _fraction(text: str) -> Fraction:
    return Fraction(text)  # points take few distinct values: parse each once


def _paper_points(session: Session, teams: dict[tuple[str, str], list[str]]) -> dict[tuple[str, str], Fraction]:
    """Exact sums, computed in integer units of 1/L (L: the lcm of the denominators that occur).
    In a team, every member gets, per task, the points entered for any member (the highest)."""
    rows = session.execute(select(PaperPoints.student_id, PaperPoints.sheet, PaperPoints.task, PaperPoints.points)).all()
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


def _teams(session: Session) -> dict[tuple[str, str], list[str]]:
    teams: dict[tuple[str, str], list[str]] = defaultdict(list)
    for sheet, team, sid in session.execute(select(TeamMember.sheet, TeamMember.team, TeamMember.student_id)):
        teams[(sheet, team)].append(sid)
    return teams


def _team_notebook(notebook: dict[tuple[str, str], Fraction], teams: dict[tuple[str, str], list[str]]) -> None:
    """A team hands in once: every member gets the best autograded score among its members."""
    for (sheet, _team), members in teams.items():
        scores = [notebook[(m, sheet)] for m in members if (m, sheet) in notebook]
        if scores:
            for m in members:
                notebook[(m, sheet)] = max(scores)


def _students(session: Session) -> list[Any]:
    current_group = (select(GroupMembership.student_id, func.min(GroupMembership.group_id).label("group_id"))
                     .where(GroupMembership.valid_to.is_(None)).group_by(GroupMembership.student_id).subquery())
    return list(session.execute(
        select(nt.student.c.id, nt.student.c.last_name, nt.student.c.first_name, nt.student.c.email,
               StudentProfile.matriculation, current_group.c.group_id)
        .outerjoin(StudentProfile, StudentProfile.student_id == nt.student.c.id)
        .outerjoin(current_group, current_group.c.student_id == nt.student.c.id)).all())


def _overrides(session: Session) -> dict[str, tuple[str, str]]:
    rows = session.execute(select(AdmissionOverride).where(AdmissionOverride.revoked_at.is_(None))
                           .order_by(AdmissionOverride.created_at)).scalars()
    return {o.student_id: (o.status, o.reason) for o in rows}


def compute_standings(engine: Engine, cfg: CourseConfig, as_of: datetime | None = None,
                      rule: AdmissionRule | None = None) -> list[Standing]:
    """Every student's standing at ``as_of`` (default: now), sorted by name."""
    as_of = as_of or datetime.now(timezone.utc)
    rule = rule or cfg.rule
    semester_max = cfg.semester_max
    threshold = rule.threshold(semester_max)
    with Session(engine) as session:
        teams = _teams(session)
        notebook, paper = _notebook_points(session, cfg), _paper_points(session, teams)
        _team_notebook(notebook, teams)
        students, overrides = _students(session), _overrides(session)
    graded = {s.id for s in cfg.semester if s.due <= as_of} | {sheet for _, sheet in notebook} | {sh for _, sh in paper}
    open_max = sum((s.max_points for s in cfg.semester if s.due > as_of), ZERO)
    closed = [s.id for s in cfg.semester if s.due <= as_of]
    standings = []
    for sid, last, first, email, matriculation, group in students:
        sheets: dict[str, Fraction | None] = {
            s.id: notebook.get((sid, s.id), ZERO) + paper.get((sid, s.id), ZERO) if s.id in graded else None
            for s in cfg.semester}
        points = sum((p for p in sheets.values() if p is not None), ZERO)
        status, needed = decide(points, open_max + sum((sheets[c] or ZERO for c in closed), ZERO), threshold)
        status = apply_sheet_minimum(status, sheets, cfg.semester, rule.min_per_sheet, as_of)
        if rule.min_per_part is not None:
            parts = {"notebook": {s: notebook.get((sid, s), ZERO) for s in graded},
                     "paper": {s: paper.get((sid, s), ZERO) for s in graded}}
            status = apply_part_minimum(status, parts, cfg.semester, rule.min_per_part, as_of)
        override_status, reason = overrides.get(sid, (None, ""))
        standings.append(Standing(sid, last or "", first or "", email or "", matriculation or "", group or "",
                                  sheets, points, semester_max, threshold, override_status or status,
                                  ZERO if override_status == ADMITTED else needed, reason))
    standings.sort(key=lambda s: (s.last_name.casefold(), s.first_name.casefold(), s.student_id))
    return standings


def preview(engine: Engine, cfg: CourseConfig, threshold: str, as_of: datetime | None = None) -> list[tuple[str, str, str, str]]:
    """Who would change status under another threshold: (student, name, status now, status then)."""
    from .config import parse_rule

    now = compute_standings(engine, cfg, as_of)
    then = {s.student_id: s for s in compute_standings(engine, cfg, as_of, rule=parse_rule(threshold, "--preview-threshold"))}
    return [(s.student_id, f"{s.first_name} {s.last_name}", s.status, then[s.student_id].status)
            for s in now if then[s.student_id].status != s.status]
