"""The roster: students from an LMS or university export (CSV or XLSX), imported idempotently into
nbgrader's ``student`` table (so the formgrader knows them) and our ``student_profile``."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine, insert, select, update

from gradebook.store import nbgrader_tables as nt
from gradebook.store.db import atomic
from gradebook.errors import InputError
from gradebook.store.models import StudentProfile
from gradebook.course.spreadsheet import email_problem
from gradebook.course.tables import Row, read_rows

REQUIRED = ["student_id", "last_name", "first_name", "email"]
# a letter or digit first: an id is never read as a formula (= + - @) or an option by any tool
ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")
FIELDS = ("last_name", "first_name", "email")


@dataclass
class ImportReport:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return f"{len(self.added)} added, {len(self.changed)} changed, {len(self.unchanged)} unchanged"


@dataclass(frozen=True)
class RosterEntry:
    student_id: str
    last_name: str
    first_name: str
    email: str
    matriculation: str | None
    programme: str | None
    login: str | None = None  # login on the course's Jupyter server, where it differs from the id


LOGIN_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")


def _entry(row: Row, where: str) -> tuple[RosterEntry | None, list[str]]:
    sid = row.get("student_id")
    errors = []
    if not ID_RE.match(sid):
        errors.append(f"{where}:{row.line}: student_id {sid!r} must be 1-128 letters, digits or . _ @ -, a letter or digit first")
    email = row.get("email")
    problem = email_problem(email) if email else None
    if problem:
        errors.append(f"{where}:{row.line}: student {sid!r}: {problem}")
    if not row.get("last_name"):
        errors.append(f"{where}:{row.line}: student {sid!r}: last_name is empty")
    matriculation = row.get("matriculation") or None
    if matriculation and not matriculation.isdigit():
        errors.append(f"{where}:{row.line}: student {sid!r}: matriculation {matriculation!r} is not a number")
    login = row.get("login") or None
    if login and not LOGIN_RE.match(login):
        errors.append(f"{where}:{row.line}: student {sid!r}: login {login!r} must be 1-128 letters, digits or . _ @ -, a letter or digit first")
    if errors:
        return None, errors
    return RosterEntry(sid, row.get("last_name"), row.get("first_name"), email, matriculation,
                       row.get("programme") or None, login), []


def parse_roster(path: Path) -> list[RosterEntry]:
    """Every row checked; an InputError naming each bad row, or the entries."""
    entries: list[RosterEntry] = []
    errors: list[str] = []
    seen: dict[str, int] = {}
    logins: dict[str, tuple[str, int]] = {}
    for row in read_rows(path, REQUIRED):
        entry, problems = _entry(row, str(path))
        errors += problems
        if entry is None:
            continue
        if entry.student_id in seen:
            errors.append(f"{path}:{row.line}: student {entry.student_id!r} already appears in row {seen[entry.student_id]}")
            continue
        seen[entry.student_id] = row.line
        if entry.login and entry.login in logins:
            errors.append(f"{path}:{row.line}: student {entry.student_id!r}: login {entry.login!r} is already "
                          f"{logins[entry.login][0]!r}'s (row {logins[entry.login][1]})")
        elif entry.login:
            logins[entry.login] = (entry.student_id, row.line)
        entries.append(entry)
    if errors:
        raise InputError(f"{path}: nothing imported, {len(errors)} bad row(s):\n" + "\n".join(errors))
    return entries


def import_students(engine: Engine, path: Path) -> ImportReport:
    """Add new students, update changed ones; one transaction; the report says which."""
    entries = parse_roster(path)
    report = ImportReport()
    with atomic(engine) as session:
        have = {r.id: r for r in session.execute(select(nt.student)).all()}
        profiles = {p.student_id: p for p in session.execute(select(StudentProfile)).scalars()}
        for e in entries:
            values = {"last_name": e.last_name, "first_name": e.first_name, "email": e.email or None}
            old = have.get(e.student_id)
            profile = profiles.get(e.student_id)
            if old is None:
                session.execute(insert(nt.student).values(id=e.student_id, **values))
                report.added.append(e.student_id)
            elif any(getattr(old, k) != v for k, v in values.items()) or _profile_differs(profile, e):
                session.execute(update(nt.student).where(nt.student.c.id == e.student_id).values(**values))
                report.changed.append(e.student_id)
            else:
                report.unchanged.append(e.student_id)
            if profile is None:
                session.add(StudentProfile(student_id=e.student_id, matriculation=e.matriculation, programme=e.programme,
                                           login=e.login))
            else:
                profile.matriculation = e.matriculation or profile.matriculation
                profile.programme = e.programme or profile.programme
                profile.login = e.login or profile.login
    return report


def _profile_differs(profile: StudentProfile | None, e: RosterEntry) -> bool:
    if profile is None:
        return bool(e.matriculation or e.programme)
    return bool((e.matriculation and e.matriculation != profile.matriculation)
                or (e.programme and e.programme != profile.programme) or (e.login and e.login != profile.login))
