"""Lists for the admins (plain data; the CLI and the web print them): the roster, groups, staff, active
overrides, extensions, the audit log, and per sheet who handed in what (missing / invalid / held /
timed out / late)."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
import re
from fractions import Fraction
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from gradebook.store import nbgrader_tables as nt
from gradebook.course.config import CourseConfig
from gradebook.errors import InputError
from gradebook.store.models import (AdmissionOverride, AuditLog, AutogradeResult, Extension, GroupMembership, Handin, Person,
                     StudentProfile, TutorialGroup)
from gradebook.course.sheets_state import require_sheet, utc
from gradebook.points.paper import fmt


@dataclass(frozen=True)
class StudentRow:
    student_id: str
    last_name: str
    first_name: str
    email: str
    matriculation: str
    programme: str
    login: str
    group: str


def list_students(engine: Engine, group: str | None = None) -> list[StudentRow]:
    """The roster, sorted by name (with each student's current group)."""
    with Session(engine) as session:
        if group is not None:
            require_group(session, group)
        current = {m.student_id: m.group_id for m in session.execute(
            select(GroupMembership).where(GroupMembership.valid_to.is_(None))).scalars()}
        rows = session.execute(select(nt.student, StudentProfile).join(
            StudentProfile, StudentProfile.student_id == nt.student.c.id)).all()
    out = [StudentRow(r.id, r.last_name or "", r.first_name or "", r.email or "", r.StudentProfile.matriculation or "",
                      r.StudentProfile.programme or "", r.StudentProfile.login or "", current.get(r.id, ""))
           for r in rows]
    out = [s for s in out if group is None or s.group == group]
    return sorted(out, key=lambda s: (s.last_name.casefold(), s.first_name.casefold(), s.student_id))


def require_group(session: Session, group: str) -> TutorialGroup:
    found = session.get(TutorialGroup, group)
    if found is None:
        known = ", ".join(sorted(session.execute(select(TutorialGroup.id)).scalars())) or "none"
        raise InputError(f"unknown tutorial group {group!r} (groups: {known})")
    return found


@dataclass(frozen=True)
class GroupRow:
    id: str
    name: str
    tutor_id: str
    tutor_name: str
    size: int


def list_groups(engine: Engine) -> list[GroupRow]:
    with Session(engine) as session:
        sizes = {gid: n for gid, n in session.execute(select(GroupMembership.group_id, func.count()).where(
            GroupMembership.valid_to.is_(None)).group_by(GroupMembership.group_id))}
        people = {p.id: p.name for p in session.execute(select(Person)).scalars()}
        groups = session.execute(select(TutorialGroup).order_by(TutorialGroup.id)).scalars().all()
        return [GroupRow(g.id, g.name, g.tutor_id or "", people.get(g.tutor_id or "", ""), int(sizes.get(g.id, 0)))
                for g in groups]


@dataclass(frozen=True)
class StaffRow:
    id: str
    name: str
    email: str
    role: str
    groups: tuple[str, ...]


def list_staff(engine: Engine) -> list[StaffRow]:
    with Session(engine) as session:
        groups: dict[str, list[str]] = defaultdict(list)
        for gid, tutor in session.execute(select(TutorialGroup.id, TutorialGroup.tutor_id).order_by(TutorialGroup.id)):
            if tutor:
                groups[tutor].append(gid)
        people = session.execute(select(Person).order_by(Person.role, Person.id)).scalars().all()
        return [StaffRow(p.id, p.name, p.email or "", p.role, tuple(groups.get(p.id, []))) for p in people]


@dataclass(frozen=True)
class OverrideRow:
    student_id: str
    status: str
    reason: str
    author: str
    created_at: datetime
    revoked_at: datetime | None


def list_overrides(engine: Engine, include_revoked: bool = False) -> list[OverrideRow]:
    with Session(engine) as session:
        query = select(AdmissionOverride).order_by(AdmissionOverride.created_at)
        if not include_revoked:
            query = query.where(AdmissionOverride.revoked_at.is_(None))
        return [OverrideRow(o.student_id, o.status, o.reason, o.author, utc(o.created_at),
                            utc(o.revoked_at) if o.revoked_at else None) for o in session.execute(query).scalars()]


@dataclass(frozen=True)
class ExtensionRow:
    sheet: str
    student_id: str
    until: datetime
    reason: str
    author: str


def list_extensions(engine: Engine, sheet: str | None = None) -> list[ExtensionRow]:
    with Session(engine) as session:
        query = select(Extension).order_by(Extension.sheet, Extension.student_id)
        if sheet is not None:
            query = query.where(Extension.sheet == sheet)
        return [ExtensionRow(e.sheet, e.student_id, utc(e.until), e.reason or "", e.author)
                for e in session.execute(query).scalars()]


@dataclass(frozen=True)
class AuditRow:
    at: datetime
    author: str
    entity: str
    key: str
    old_value: str
    new_value: str
    reason: str


_FRACTION = re.compile(r"^-?[0-9]{1,30}/[0-9]{1,30}$")


def audit_text(value: str | None) -> str:
    """An audit value as people write it: points stored exactly as a fraction ("5/2") read "2.5"
    (a fraction only where the decimal does not end, "1/3"); other values as they are."""
    if not value:
        return ""
    if _FRACTION.match(value) and not value.endswith("/0"):
        return fmt(Fraction(value))
    return value


def _moved_by_rubric(row: AuditLog, student: str) -> bool:
    """A rubric edit names every student whose points it changed in its reason ("…: ab1 4 → 3.5; cd2 …")."""
    return row.entity == "rubric_item" and re.search(rf"(?:: |; ){re.escape(student)} ", row.reason or "") is not None


def audit_log(engine: Engine, student: str | None = None, sheet: str | None = None, author: str | None = None,
              since: datetime | None = None, limit: int | None = None) -> list[AuditRow]:
    """The audit log, oldest first. Keys name what changed (``sheet/task/student``, ``student``, ``sheet``):
    ``student`` and ``sheet`` match one of the key's parts."""
    with Session(engine) as session:
        query = select(AuditLog).order_by(AuditLog.at, AuditLog.id)
        if author is not None:
            query = query.where(AuditLog.author == author)
        if since is not None:
            query = query.where(AuditLog.at >= since)
        rows = session.execute(query).scalars().all()
    out = []
    for r in rows:
        parts = r.key.split("/")
        if (student is not None and student not in parts and not _moved_by_rubric(r, student)) or \
                (sheet is not None and sheet not in parts):
            continue
        out.append(AuditRow(utc(r.at), r.author, r.entity, r.key, audit_text(r.old_value), audit_text(r.new_value),
                            r.reason or ""))
    return out[-limit:] if limit else out


HANDIN_STATES = ("missing", "invalid", "refused", "held", "timeout", "crashed", "late", "graded", "ungraded",
                 "grader_error")


@dataclass(frozen=True)
class HandinRow:
    student_id: str
    name: str
    state: str  # one of HANDIN_STATES
    received_at: datetime | None
    detail: str  # the reason (invalid, held, timeout) or the late decision


def _by_student(rows: Any) -> dict[str, list[Handin]]:
    out: dict[str, list[Handin]] = defaultdict(list)
    for h in rows:
        out[h.student_id].append(h)
    return out


def _state(ag: AutogradeResult | None, handins: list[Handin]) -> tuple[str, datetime | None, str]:
    accepted = [h for h in handins if h.status == "accepted"]
    if ag is not None and ag.status != "missing":
        state = "late" if ag.status == "graded" and ag.late else ag.status
        detail = ag.decision or "" if state in ("late", "graded") else (ag.reason or "")
        return state, ag.submitted_at, detail
    if accepted:
        return "ungraded", accepted[-1].received_at, "accepted, waiting for the autograder"
    if handins:
        last = handins[-1]
        return last.status, last.received_at, last.reason or ""
    return "missing", None, "no hand-in"


def handin_rows(engine: Engine, cfg: CourseConfig, sheet: str, state: str | None = None) -> list[HandinRow]:
    """Per roster student their hand-in state of ``sheet``, plus the held hand-ins of ids not on the roster."""
    require_sheet(cfg, sheet)
    if state is not None and state not in HANDIN_STATES:
        raise InputError(f"unknown hand-in state {state!r}: one of {', '.join(HANDIN_STATES)}")
    with Session(engine) as session:
        roster = {r.id: f"{r.first_name or ''} {r.last_name or ''}".strip() for r in session.execute(
            select(nt.student.c.id, nt.student.c.first_name, nt.student.c.last_name).join(
                StudentProfile, StudentProfile.student_id == nt.student.c.id))}
        handins = _by_student(session.execute(select(Handin).where(Handin.sheet == sheet).order_by(
            Handin.received_at, Handin.id)).scalars())
        results = {r.student_id: r for r in session.execute(
            select(AutogradeResult).where(AutogradeResult.sheet == sheet)).scalars()}
    out = []
    for sid, name in sorted(roster.items(), key=lambda kv: (kv[1].split(" ")[-1].casefold(), kv[0])):
        kind, when, detail = _state(results.get(sid), handins.get(sid, []))
        out.append(HandinRow(sid, name, kind, utc(when) if when else None, detail))
    for sid in sorted(set(handins) - set(roster)):
        for h in handins[sid]:
            out.append(HandinRow(sid, "(not on the roster)", "held" if h.status == "held" else h.status,
                                 utc(h.received_at), h.reason or "not on the roster"))
    return [r for r in out if state is None or r.state == state]
