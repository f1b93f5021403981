"""Standings computed once per change of the gradebook, not once per request (the web's pages).

The gradebook's version (:func:`gradebook.store.db.gradebook_version`) is raised in the transaction of
every write, by whichever process makes it; so a process may keep what it computed at one version for as
long as the version stays, and every process (each uvicorn worker) sees a change at its next request.

- :func:`current_standings`: every roster student's standing (admin pages). The rows the rule reads are
  loaded once per version and kept; the standings computed from them are kept per rule and per *epoch*:
  a standing changes with time only when a deadline (a sheet's, or an extension's) passes, so the
  standings at any moment between two such deadlines are the same.
- :func:`current_standing`: one student's standing (their pages). From the course's rows when they are
  current; else read for that student alone (a few indexed queries) and kept until a write changes the
  course (``course_counter``) or that student's or their team's rows (``student_version``): a tutor's
  save moves the page of the student saved, not the pages of the hundred others refreshing theirs.

Each cache is per process and per (database URL, course configuration); a lock makes concurrent requests
of one process wait for one load instead of each loading.
"""
from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone

from sqlalchemy import Engine, select

from gradebook.admission.rule import RuleData, Standing, load_data, rule_data, standings_from
from gradebook.admission.student_read import StudentRows, read_students
from gradebook.course.config import AdmissionRule, CourseConfig
from gradebook.course.sheets_state import utc
from gradebook.store.db import reading, reading_session, student_versions
from gradebook.store.models import StudentVersion

MAX_STUDENTS_KEPT = 20_000  # one student's standings kept per version (a bound on memory)


@dataclass(frozen=True)
class _Kept:
    """One student's standing, with the versions it was computed at (read before its rows)."""

    course: int  # gradebook_version.course_counter
    theirs: int  # the highest student_version of ``ids``
    ids: frozenset[str]  # the student and their teams' members
    epoch: int
    deadlines: list[datetime]
    standing: Standing | None
    data: RuleData  # the rows of the student and their teams (a few dozen)


@dataclass
class _Course:
    """What one process keeps of one gradebook and course configuration."""

    cfg: CourseConfig
    lock: threading.Lock = field(default_factory=threading.Lock)
    version: int = -1  # of ``data`` (-1: nothing loaded)
    course_version: int = -1  # the course_counter at ``version``
    data: RuleData | None = None
    deadlines: list[datetime] = field(default_factory=list)  # sorted: the moments a standing can change
    standings: dict[tuple[AdmissionRule, int], list[Standing]] = field(default_factory=dict)
    students: dict[str, _Kept] = field(default_factory=dict)  # one student's standing, read for them alone
    # the standings of ``standings`` brought to a newer version by reading only the students written since
    patched: dict[tuple[AdmissionRule, int], tuple[int, list[Standing]]] = field(default_factory=dict)




_courses: dict[tuple[str, int], _Course] = {}
_courses_lock = threading.Lock()


def _course(engine: Engine, cfg: CourseConfig) -> _Course:
    key = (engine.url.render_as_string(hide_password=False), id(cfg))
    with _courses_lock:
        found = _courses.get(key)
        if found is None or found.cfg is not cfg:
            found = _courses[key] = _Course(cfg)
        return found


def _deadlines(cfg: CourseConfig, data: RuleData) -> list[datetime]:
    """Every deadline the rule compares with the time: the sheets', their groups' and the extensions'."""
    groups = set(data.groups.values())
    dues = {utc(sem.manifest.late.deadline_for(sem.due, group) if sem.manifest else sem.due)
            for sem in cfg.semester for group in (groups | {""})}
    return sorted(dues | {utc(sem.due) for sem in cfg.semester} | {utc(until) for until in data.extensions.values()})


def _epoch(deadlines: list[datetime], as_of: datetime) -> int:
    """How many of the deadlines have passed at ``as_of`` (the rule compares deadline <= as_of)."""
    return bisect.bisect_right(deadlines, utc(as_of))


def _loaded(engine: Engine, course: _Course, version: int, course_version: int) -> RuleData:
    """The course's rows at ``version`` or newer (the version is read before the rows)."""
    with course.lock:
        if course.data is None or course.version < version:
            with reading_session(engine) as session:
                data = load_data(session, course.cfg)
            course.data, course.version, course.course_version = data, version, course_version
            course.deadlines, course.standings, course.patched = _deadlines(course.cfg, data), {}, {}
        return course.data


def current_standings(engine: Engine, cfg: CourseConfig, rule: AdmissionRule | None = None,
                      as_of: datetime | None = None) -> list[Standing]:
    """Every roster student's standing now (``as_of``), as :func:`gradebook.admission.rule.compute_standings`
    gives it, computed once per version of the gradebook and epoch of deadlines. After writes to some students'
    rows only (the course's version unchanged), only those students (and their teams) are read and computed
    again (:data:`MAX_PATCHED` at most, else everything). Treat it as read-only."""
    course = _course(engine, cfg)
    version, course_version, _ = student_versions(engine, ())
    as_of = as_of or datetime.now(timezone.utc)
    rule = rule or cfg.rule
    with course.lock:
        same_course = course.data is not None and course.course_version == course_version
    if same_course and course.version < version:
        found = _patched(engine, course, rule, as_of, version)
        if found is not None:
            return found
    data = _loaded(engine, course, version, course_version)
    return _standings(course, data, rule, as_of)


def _standings(course: _Course, data: RuleData, rule: AdmissionRule, as_of: datetime) -> list[Standing]:
    """The standings of ``data`` (the course's rows at ``course.version``), computed once per epoch."""
    with course.lock:
        key = (rule, _epoch(course.deadlines, as_of))
        found = course.standings.get(key) if course.data is data else None
    if found is None:
        found = standings_from(data, course.cfg, as_of, rule)
        with course.lock:
            if course.data is data:
                course.standings[key] = found
    return found


MAX_PATCHED = 200  # students read again for a patch; more: the course is read again


def _patched(engine: Engine, course: _Course, rule: AdmissionRule, as_of: datetime,
             version: int) -> list[Standing] | None:
    """The standings at ``version`` from those kept at an older version of the same course version: the
    students whose rows were written since (``student_version``) and their teams read and computed again.
    None when that is not the way (too many students, a new deadline among them, someone new on the roster)."""
    with course.lock:
        data, base_version, deadlines = course.data, course.version, course.deadlines
        kept = course.patched.get((rule, _epoch(deadlines, as_of)))
    assert data is not None
    since, standings = kept if kept is not None else (base_version, _standings(course, data, rule, as_of))
    if since >= version:
        return standings
    with reading_session(engine) as session:
        changed = set(session.execute(select(StudentVersion.student_id).where(StudentVersion.counter > since)).scalars())
        if len(changed) > MAX_PATCHED:
            return None
        ids = changed.union(*(m for (sid, _), m in data.team_of.items() if sid in changed))
        mine = load_data(session, course.cfg, ids)
    if not set(_deadlines(course.cfg, mine)) <= set(deadlines):
        return None  # an extension moved a deadline: the epochs are the course's to count again
    fresh = {s.student_id: s for s in standings_from(mine, course.cfg, as_of, rule, students=ids)}
    if set(fresh) - {s.student_id for s in standings}:
        return None
    found = [fresh.get(s.student_id, s) for s in standings if s.student_id in fresh or s.student_id not in ids]
    with course.lock:
        if course.version == base_version:
            course.patched[(rule, _epoch(deadlines, as_of))] = (version, found)
    return found


def current_standing(engine: Engine, cfg: CourseConfig, student: str,
                     as_of: datetime | None = None) -> Standing | None:
    """``student``'s standing now (None: not on the roster), computed again only after a write that may
    change it: one to the course (``course_counter``), or to their (or their team's) rows."""
    return keyed_standing(engine, cfg, student, as_of)[0]


StudentKey = tuple[int, int, frozenset[str]]  # (course_counter, their highest student_version, the ids)


@dataclass(frozen=True)
class StudentNow:
    """One student's standing now and what it is current at (:func:`student_now`)."""

    standing: Standing | None  # as staff see it (every entered point)
    key: StudentKey  # read before anything else: what a page reads of the student's rows is current while it stays
    counter: int  # the gradebook's version, read with ``key``
    next_change: datetime | None  # the first deadline after ``as_of`` (a standing changes with time only there)
    data: RuleData | None  # the rows the standing was computed from (for :func:`shown_standing`)
    rows: StudentRows | None = None  # the rows read for it, when they were (what the student's pages show)


def keyed_standing(engine: Engine, cfg: CourseConfig, student: str,
                   as_of: datetime | None = None) -> tuple[Standing | None, StudentKey]:
    """:func:`current_standing` and the versions it is current at (read before anything else): whatever else
    a page reads of this student's (and their team's) rows after this call is current while the key stays."""
    now = student_now(engine, cfg, student, as_of)
    return now.standing, now.key


def _next(deadlines: list[datetime], as_of: datetime) -> datetime | None:
    i = _epoch(deadlines, as_of)
    return deadlines[i] if i < len(deadlines) else None


def student_now(engine: Engine, cfg: CourseConfig, student: str, as_of: datetime | None = None) -> StudentNow:
    """``student``'s standing with its versions (one query when nothing of theirs changed), computed again
    only after a write to the course or to their (or their team's) rows, or when a deadline passed; their rows
    are read in one statement (:mod:`.student_read`)."""
    course = _course(engine, cfg)
    as_of = as_of or datetime.now(timezone.utc)
    with course.lock:
        kept = course.students.get(student)
    ids = kept.ids if kept is not None else frozenset({student})
    version, course_version, theirs = student_versions(engine, ids)
    key = (course_version, theirs, ids)
    with course.lock:
        data, deadlines = (course.data, course.deadlines) if course.version >= version else (None, [])
    if data is not None:  # the course's rows are current: nothing to read
        found = next(iter(standings_from(data, cfg, as_of, students={student})), None)
        return StudentNow(found, key, version, _next(deadlines, as_of), data)
    if kept is not None and (kept.course, kept.theirs) == (course_version, theirs) and \
            kept.epoch == _epoch(kept.deadlines, as_of):
        return StudentNow(kept.standing, key, version, _next(kept.deadlines, as_of), kept.data)
    with reading(engine) as conn:
        rows = read_students(conn, {student})
    mine = rule_data(cfg, rows.rule)
    found = next(iter(standings_from(mine, cfg, as_of)), None)
    deadlines = _deadlines(cfg, mine)
    team = frozenset({student}.union(*(m for (sid, _), m in mine.team_of.items() if sid == student)))
    with course.lock:
        if len(course.students) >= MAX_STUDENTS_KEPT:
            course.students.clear()
        course.students[student] = _Kept(course_version, theirs, team, _epoch(deadlines, as_of), deadlines, found,
                                         mine)
    return StudentNow(found, key, version, _next(deadlines, as_of), mine, rows)


def shown_standing(cfg: CourseConfig, now: StudentNow, hide_paper: frozenset[str],
                   as_of: datetime | None = None) -> Standing | None:
    """The standing a student reads: ``now``'s, unless they have paper points on a sheet of ``hide_paper``
    (not published): then computed from the same rows without them (``standings_from``'s ``hide_paper``),
    nothing read again."""
    standing = now.standing
    if standing is None or now.data is None or \
            not any(c.paper is not None for k, c in standing.cells.items() if k in hide_paper):
        return standing
    return next(iter(standings_from(now.data, cfg, as_of or datetime.now(timezone.utc),
                                    students={standing.student_id}, hide_paper=hide_paper)), None)
