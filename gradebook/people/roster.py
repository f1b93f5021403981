"""The roster: students from an LMS or university export (CSV or XLSX), imported idempotently into
nbgrader's ``student`` table (so the formgrader knows them) and our ``student_profile``.

Ids are trimmed and compared case-insensitively (stored as first given); the column names of common
German university and LMS exports are recognised (``Matrikelnummer``, ``Nachname``, ``Vorname``,
``E-Mail``, ``Kennung`` ...), others mapped by the caller; a file with a duplicate id, e-mail or
matriculation number is refused whole, naming the rows."""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert, select, update

from gradebook.store import nbgrader_tables as nt
from gradebook.store.db import atomic
from gradebook.errors import InputError
from gradebook.store.models import StudentProfile
from gradebook.course.spreadsheet import email_problem
from gradebook.course.tables import Row, column_key, read_table, require_columns

REQUIRED = ["student_id", "last_name", "first_name", "email"]
# a letter or digit first: an id is never read as a formula (= + - @) or an option by any tool
ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")
FIELDS = ("last_name", "first_name", "email")
COLUMNS = ("student_id", "last_name", "first_name", "email", "matriculation", "programme", "login")
# column names of German university (HeiCO, LSF, HISinOne) and LMS (Moodle, ILIAS, Stud.IP) exports
_NAMES = {
    "student_id": ["student id", "kennung", "benutzerkennung", "nutzerkennung", "benutzername", "uni-id",
                   "uni id", "username", "user name", "benutzer"],
    "last_name": ["nachname", "familienname", "surname", "last name", "family name"],
    "first_name": ["vorname", "vornamen", "first name", "given name"],
    "email": ["e-mail", "e-mail-adresse", "email address", "e-mail address", "mail", "emailadresse"],
    "matriculation": ["matrikelnummer", "matrikel-nr.", "matrikelnr", "matr.-nr.", "matrikel", "mtknr",
                      "matriculation number", "student number", "id number"],
    "programme": ["studiengang", "studienfach", "fach", "studiengang/fach", "program", "programme",
                  "degree programme"],
}
ALIASES = {column_key(name): target for target, names in _NAMES.items() for name in names}
ID_HINT = " (or name the id column with --column NAME=student_id)"


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
    line: int = field(default=0, compare=False)  # its row in the file


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
                       row.get("programme") or None, login, row.line), []


def _read(path: Path, columns: dict[str, str] | None) -> list[Row]:
    for column, target in (columns or {}).items():
        if target not in COLUMNS:
            raise InputError(f"--column {column}={target}: {target!r} is none of {', '.join(COLUMNS)}")
    header, rows = read_table(path, ALIASES, columns or {})
    if "student_id" not in header and "matriculation" in header:  # a university export: the number is the id
        header.append("student_id")
        rows = [Row(r.line, {**r.values, "student_id": r.get("matriculation")}) for r in rows]
    require_columns(path, header, REQUIRED, ID_HINT if "student_id" not in header else "")
    return rows


class _Unique:
    """First row of each value of one column (case-insensitive), to name both rows of a duplicate."""

    def __init__(self, path: Path, column: str) -> None:
        self.path, self.column, self.seen = path, column, dict[str, tuple[str, int]]()

    def check(self, value: str | None, sid: str, line: int) -> str | None:
        if not value:
            return None
        first = self.seen.setdefault(value.casefold(), (sid, line))
        if first[1] == line:
            return None
        return (f"{self.path}:{line}: student {sid!r}: {self.column} {value!r} is already "
                f"{first[0]!r}'s (row {first[1]})")


def parse_roster(path: Path, columns: dict[str, str] | None = None) -> list[RosterEntry]:
    """Every row checked; an InputError naming each bad row, or the entries. ``columns`` maps a column
    of the file (as written) to one of :data:`COLUMNS`."""
    entries: list[RosterEntry] = []
    errors: list[str] = []
    seen: dict[str, tuple[str, int]] = {}
    unique = [_Unique(path, c) for c in ("e-mail", "matriculation", "login")]
    for row in _read(path, columns):
        entry, problems = _entry(row, str(path))
        errors += problems
        if entry is None:
            continue
        first = seen.setdefault(entry.student_id.casefold(), (entry.student_id, row.line))
        if first[1] != row.line:
            same = "" if first[0] == entry.student_id else f" (as {first[0]!r}; ids ignore case)"
            errors.append(f"{path}:{row.line}: student {entry.student_id!r} already appears in row {first[1]}{same}")
            continue
        dups = [u.check(v, entry.student_id, row.line) for u, v in zip(unique, (entry.email, entry.matriculation, entry.login))]
        errors += [d for d in dups if d]
        entries.append(entry)
    if errors:
        raise InputError(f"{path}: nothing imported, {len(errors)} bad row(s):\n" + "\n".join(errors))
    return entries


def import_students(engine: Engine, path: Path, columns: dict[str, str] | None = None) -> ImportReport:
    """Add new students, update changed ones; one transaction; the report says which. A row whose id
    matches a known student's but for case and spaces updates that student (whose id stays as stored)."""
    entries = parse_roster(path, columns)
    report = ImportReport()
    with atomic(engine) as session:
        have = {r.id: r for r in session.execute(select(nt.student)).all()}
        profiles = {p.student_id: p for p in session.execute(select(StudentProfile)).scalars()}
        folded = {sid.casefold(): sid for sid in sorted(have, reverse=True)}
        entries = [replace(e, student_id=e.student_id if e.student_id in have else folded.get(e.student_id.casefold(), e.student_id))
                   for e in entries]
        _refuse_clashes_with_others(path, entries, have, profiles)
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


def _refuse_clashes_with_others(path: Path, entries: list[RosterEntry], have: dict[str, Any],
                                profiles: dict[str, StudentProfile]) -> None:
    """A row's e-mail, matriculation number or login already held by a student not in the file."""
    in_file = {e.student_id for e in entries}
    taken: dict[tuple[str, str], str] = {}
    for sid, row in have.items():
        if sid in in_file:
            continue
        profile = profiles.get(sid)
        for kind, value in (("e-mail", row.email), ("matriculation", profile and profile.matriculation),
                            ("login", profile and profile.login)):
            if value:
                taken[(kind, value.casefold())] = sid
    errors = []
    for e in entries:
        for kind, value in (("e-mail", e.email), ("matriculation", e.matriculation), ("login", e.login)):
            other = taken.get((kind, value.casefold())) if value else None
            if other:
                errors.append(f"{path}:{e.line}: student {e.student_id!r}: {kind} {value!r} already belongs to student {other!r}")
    if errors:
        raise InputError(f"{path}: nothing imported, {len(errors)} clash(es) with the roster:\n" + "\n".join(errors))


def _profile_differs(profile: StudentProfile | None, e: RosterEntry) -> bool:
    if profile is None:
        return bool(e.matriculation or e.programme)
    return bool((e.matriculation and e.matriculation != profile.matriculation)
                or (e.programme and e.programme != profile.programme) or (e.login and e.login != profile.login))
