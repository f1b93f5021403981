"""Tutorial groups, their tutors, and the students' memberships (with history, audited)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import Engine, select

from gradebook.course.spreadsheet import email_problem
from gradebook.store import nbgrader_tables as nt
from gradebook.store.db import atomic
from gradebook.errors import InputError
from gradebook.store.models import AuditLog, GroupMembership, Person, TutorialGroup
from gradebook.people.roster import ID_RE
from gradebook.course.tables import Row, read_rows


@dataclass
class GroupReport:
    groups: int = 0
    tutors: int = 0
    moved: list[str] = field(default_factory=list)
    unchanged: int = 0

    def __str__(self) -> str:
        if self.groups or self.tutors:
            return f"{self.groups} group(s), {self.tutors} tutor(s) written"
        return f"{len(self.moved)} student(s) assigned or moved, {self.unchanged} unchanged"


def _group_errors(path: Path, rows: list[Row], staff: dict[str, str]) -> list[str]:
    """Every bad row: id, name and tutor required; a tutor not yet staff needs a tutor_name; no duplicates;
    a tutor who is staff must be a tutor or an admin (students cannot lead groups)."""
    errors: list[str] = []
    seen: dict[str, int] = {}
    for r in rows:
        gid, where = r.get("group"), f"{path}:{r.line}"
        if not gid:
            errors.append(f"{where}: group id is empty")
        elif gid in seen:
            errors.append(f"{where}: group {gid!r} already appears in row {seen[gid]}")
        seen.setdefault(gid, r.line)
        if not r.get("name"):
            errors.append(f"{where}: group {gid!r}: name is empty")
        tutor = r.get("tutor_id")
        if not tutor:
            errors.append(f"{where}: group {gid!r}: tutor_id is empty (every group needs a tutor)")
        elif tutor not in staff and not r.get("tutor_name"):
            errors.append(f"{where}: group {gid!r}: tutor {tutor!r} is not staff; give tutor_name to add them "
                          "(or `mlph staff add` first)")
        elif not ID_RE.match(tutor):
            errors.append(f"{where}: group {gid!r}: tutor_id {tutor!r} must be letters, digits or . _ @ -")
        email = r.get("tutor_email")
        problem = email_problem(email) if email else None
        if problem:
            errors.append(f"{where}: group {gid!r}: tutor {problem}")
    return errors


def import_groups(engine: Engine, path: Path, author: str = "import") -> GroupReport:
    """Groups and their tutors from CSV/XLSX: ``group,name,tutor_id[,tutor_name,tutor_email]``; every row
    checked first, nothing imported if one is bad (all bad rows named)."""
    rows = read_rows(path, ["group", "name", "tutor_id"])
    report = GroupReport()
    now = datetime.now(timezone.utc)
    with atomic(engine) as session:
        staff = {p.id: p.role for p in session.execute(select(Person)).scalars()}
        errors = _group_errors(path, rows, staff)
        if errors:
            raise InputError(f"{path}: nothing imported, {len(errors)} bad row(s):\n" + "\n".join(errors))
        for r in rows:
            tutor = r.get("tutor_id")
            person = session.get(Person, tutor) or Person(id=tutor, role="tutor", name=tutor)
            person.name = r.get("tutor_name") or person.name
            person.email = r.get("tutor_email") or person.email
            session.add(person)
            report.tutors += 1
            group = session.get(TutorialGroup, r.get("group"))
            old = f"{group.name} ({group.tutor_id})" if group is not None else None
            group = group or TutorialGroup(id=r.get("group"))
            group.name, group.tutor_id = r.get("name"), tutor
            session.add(group)
            session.add(AuditLog(at=now, author=author, entity="tutorial_group", key=group.id, old_value=old,
                                 new_value=f"{group.name} ({tutor})", reason=f"import of {path.name}"))
            report.groups += 1
    return report


def assign_students(engine: Engine, path: Path, author: str) -> GroupReport:
    """Memberships from CSV/XLSX ``student_id,group``: a move closes the old membership (history kept)."""
    rows = read_rows(path, ["student_id", "group"])
    now = datetime.now(timezone.utc)
    report = GroupReport()
    with atomic(engine) as session:
        students = set(session.execute(select(nt.student.c.id)).scalars())
        groups = set(session.execute(select(TutorialGroup.id)).scalars())
        errors: list[str] = []
        seen: dict[str, int] = {}
        for r in rows:
            sid, gid = r.get("student_id"), r.get("group")
            if sid not in students:
                errors.append(f"{path}:{r.line}: unknown student {sid!r} (not in the roster)")
            elif gid not in groups:
                errors.append(f"{path}:{r.line}: student {sid!r}: unknown group {gid!r}")
            elif sid in seen:
                errors.append(f"{path}:{r.line}: student {sid!r} already appears in row {seen[sid]}")
            seen.setdefault(sid, r.line)
        if errors:
            raise InputError(f"{path}: nothing imported, {len(errors)} bad row(s):\n" + "\n".join(errors))
        current = {m.student_id: m for m in session.execute(
            select(GroupMembership).where(GroupMembership.valid_to.is_(None))).scalars()}
        for r in rows:
            sid, gid = r.get("student_id"), r.get("group")
            old = current.get(sid)
            if old is not None and old.group_id == gid:
                report.unchanged += 1
                continue
            if old is not None:
                old.valid_to = now
            session.add(GroupMembership(student_id=sid, group_id=gid, valid_from=now))
            session.add(AuditLog(at=now, author=author, entity="group_membership", key=sid,
                                 old_value=old.group_id if old else None, new_value=gid, reason=f"import of {path.name}"))
            report.moved.append(sid)
    return report


ROLES = ("admin", "tutor")


def add_staff(engine: Engine, person_id: str, name: str, email: str | None, role: str, author: str) -> None:
    """Add or update an admin or tutor (students are the roster's)."""
    if role not in ROLES:
        raise InputError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    problem = email_problem(email) if email else None
    if problem:
        raise InputError(f"staff {person_id!r}: {problem}")
    now = datetime.now(timezone.utc)
    with atomic(engine) as session:
        person = session.get(Person, person_id)
        old = person.role if person is not None else None
        if person is None:
            person = Person(id=person_id, name=name, role=role)
            session.add(person)
        person.name, person.email, person.role = name, email or person.email, role
        session.add(AuditLog(at=now, author=author, entity="person", key=person_id, old_value=old, new_value=role,
                             reason="staff update"))
