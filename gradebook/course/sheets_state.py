"""Is a sheet decided? A sheet counts only when it is decided, and is *pending* until then.

Decided (for one student): the sheet was closed by an admin (``mlph sheet close``), or it is authored,
released, past that student's deadline (extension included) and that student's (and their team's) work
on it is graded: their accepted notebook hand-in has a final autograde result, and if they handed in
anything, they have paper points for every paper task. Only their own hand-ins decide it: another
student's late upload never makes anyone else's sheet pending again, and a hand-in that the late policy
counts as 0 needs no grading to decide anything (:func:`load_facts` takes the policy as ``counts_zero``).
A sheet never authored is *planned* and never decided unless an admin closes it.

:func:`load_facts` reads what this needs with a few aggregate queries; :func:`close_sheet` and
:func:`reopen_sheet` record an admin's decision in ``sheet_state`` and the audit log.
"""
from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from fractions import Fraction
from typing import Any, NamedTuple

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from gradebook.store import nbgrader_tables as nt
from gradebook.course.config import CourseConfig, SemesterSheet
from gradebook.store.db import atomic, plain_rows
from gradebook.errors import InputError
from gradebook.store.models import AuditLog, AutogradeResult, Handin, PaperPoints, SheetState, StudentProfile, TeamMember

# autograde_result statuses that are the last word on a hand-in (grader_error is retried)
FINAL_STATUSES = ("graded", "timeout", "crashed", "invalid", "missing")
PLANNED, UNRELEASED, OPEN_FOR_HANDIN, PENDING, DECIDED, CLOSED = (
    "planned", "not released", "open for hand-in", "pending", "decided", "closed")


def utc(when: datetime) -> datetime:
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when.astimezone(timezone.utc)


@dataclass(frozen=True)
class SheetFacts:
    """What decides a sheet, over the roster students."""

    sheet: SemesterSheet
    released: bool
    closed_at: datetime | None = None
    closed_by: str | None = None
    close_reason: str | None = None
    handed_in: frozenset[str] = frozenset()  # accepted hand-in (any kind) or a final autograde result
    graded: frozenset[str] = frozenset()  # a final autograde result
    ungraded: frozenset[str] = frozenset()  # an accepted notebook hand-in without a final result
    paper_missing: frozenset[str] = frozenset()  # handed in, some paper task without points
    paper_entered: frozenset[str] = frozenset()  # paper points for every paper task

    @property
    def id(self) -> str:
        return self.sheet.id

    @property
    def planned(self) -> bool:
        return self.sheet.manifest is None

    @property
    def closed(self) -> bool:
        return self.closed_at is not None

    @property
    def complete(self) -> bool:
        """Grading is done: nothing handed in waits for the autograder or for paper points."""
        return not self.ungraded and not self.paper_missing

    def decided(self, deadline: datetime, as_of: datetime) -> bool:
        """Decided for every student whose deadline (extension included) is ``deadline``: the whole sheet graded."""
        if self.closed:
            return True
        return not self.planned and self.released and utc(deadline) <= utc(as_of) and self.complete

    def decided_for(self, members: Collection[str], deadline: datetime, as_of: datetime) -> bool:
        """Decided for one student (``members``: they and their team on this sheet) whose deadline is
        ``deadline``: only their own hand-ins can keep it pending."""
        if self.closed:
            return True
        waiting = any(m in self.ungraded or m in self.paper_missing for m in members)
        return not self.planned and self.released and utc(deadline) <= utc(as_of) and not waiting

    def state(self, as_of: datetime) -> str:
        """The sheet's state for the students without an extension."""
        if self.closed:
            return CLOSED
        if self.planned:
            return PLANNED
        if not self.released:
            return UNRELEASED
        if utc(self.sheet.due) > utc(as_of):
            return OPEN_FOR_HANDIN
        return DECIDED if self.complete else PENDING

    def missing(self, as_of: datetime) -> list[str]:
        """What keeps the sheet from being decided, in words (empty: nothing)."""
        if self.planned:
            return ["the sheet was never authored (planned only)"]
        out = []
        if not self.released:
            out.append("it was never released")
        if utc(self.sheet.due) > utc(as_of):
            out.append(f"its deadline {self.sheet.due:%Y-%m-%d %H:%M %Z} has not passed")
        if self.ungraded:
            out.append(f"{len(self.ungraded)} notebook hand-in(s) not graded yet: {_some(self.ungraded)}")
        if self.paper_missing:
            out.append(f"{len(self.paper_missing)} student(s) without paper points: {_some(self.paper_missing)}")
        return out


def _some(ids: frozenset[str], n: int = 8) -> str:
    first = sorted(ids)[:n]
    return ", ".join(first) + (f" and {len(ids) - n} more" if len(ids) > n else "")


def roster_ids(session: Session) -> set[str]:
    """The students on the roster (a ``student`` row without a profile is an id the roster lacks)."""
    return set(session.execute(select(StudentProfile.student_id)).scalars())


@dataclass
class _Raw:
    handed: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    notebook_handins: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    final: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    paper_tasks: dict[tuple[str, str], set[str]] = field(default_factory=lambda: defaultdict(set))


@dataclass(frozen=True)
class SheetRows:
    """The rows behind the facts, when the caller has read them (wider rows of its own, of the same students):
    accepted hand-ins (sheet, student, kind, received at), autograding results (sheet, student, status,
    submitted at) and paper points (sheet, student, task)."""
    handins: Sequence[tuple[str, str, str, datetime | None]]
    results: Sequence[tuple[str, str, str, datetime | None]]
    points: Sequence[tuple[str, str, str]]


class StateRow(NamedTuple):
    """The columns of a ``sheet_state`` row that the facts read."""
    sheet: str
    released_at: datetime | None
    closed_at: datetime | None
    closed_by: str | None
    close_reason: str | None


STATE_COLUMNS = (SheetState.sheet, SheetState.released_at, SheetState.closed_at, SheetState.closed_by,
                 SheetState.close_reason)


# (sheet, student, time of receipt) -> True when the late policy counts that hand-in as 0
CountsZero = Callable[[str, str, datetime], bool]


def _raw(session: Session, roster: set[str], counts_zero: CountsZero | None = None,
         only: set[str] | None = None, sheets: Collection[str] | None = None,
         teams: Mapping[tuple[str, str], list[str]] | None = None, given: SheetRows | None = None) -> _Raw:
    """The rows behind the facts (``only``: of these students alone, their teams' members included;
    ``sheets``: of these sheets alone; ``teams``: (sheet, team) → members, and ``given``: the rows, when the
    caller has read them)."""
    if given is None:
        given = _sheet_rows(session, only, sheets)
    if teams is None:
        found: dict[tuple[str, str], list[str]] = defaultdict(list)
        for sheet, team, sid in plain_rows(session, select(TeamMember.sheet, TeamMember.team, TeamMember.student_id)
                                           .where(*_of(TeamMember.student_id, only, sheets))):
            found[(sheet, team)].append(sid)
        teams = found
    return _raw_of(roster, counts_zero, sheets, teams, given)


def _raw_of(roster: set[str], counts_zero: CountsZero | None, sheets: Collection[str] | None,
            teams: Mapping[tuple[str, str], list[str]], given: SheetRows) -> _Raw:
    """:func:`_raw` of the rows read."""
    raw = _Raw()
    if sheets is not None:
        given = SheetRows([r for r in given.handins if r[0] in sheets], [r for r in given.results if r[0] in sheets],
                          [r for r in given.points if r[0] in sheets])
    for sheet, sid, kind, received in given.handins:
        if counts_zero is not None and received is not None and counts_zero(sheet, sid, utc(received)):
            continue  # counts 0 whatever it holds: nothing to grade, nothing to wait for
        if sid in roster:
            raw.handed[sheet].add(sid)
            if kind == "notebook":
                raw.notebook_handins[sheet].add(sid)
    for sheet, sid, status, submitted in given.results:
        if sid not in roster:
            continue
        if counts_zero is not None and submitted is not None and counts_zero(sheet, sid, utc(submitted)):
            continue
        if status in FINAL_STATUSES:
            raw.final[sheet].add(sid)
        else:  # the grader failed: it is graded again by the next run
            raw.notebook_handins[sheet].add(sid)
        if status != "missing":
            raw.handed[sheet].add(sid)
    for sheet, sid, task in given.points:
        raw.paper_tasks[(sheet, sid)].add(task)
    for (sheet, _team), members in teams.items():  # a team's paper points count for every member
        tasks = set().union(*(raw.paper_tasks.get((sheet, m), set()) for m in members))
        for m in members:
            raw.paper_tasks[(sheet, m)] = tasks
    return raw


def _of(column: Any, only: set[str] | None, sheets: Collection[str] | None) -> list[Any]:
    """The conditions that restrict ``column``'s table to the students ``only`` and the ``sheets``."""
    where = [column.in_(only)] if only is not None else []
    table = getattr(column, "class_", None) or getattr(column, "table", None)
    sheet_column = getattr(table, "sheet", None)
    return where + ([sheet_column.in_(list(sheets))] if sheets is not None and sheet_column is not None else [])


def _sheet_rows(session: Session, only: set[str] | None, sheets: Collection[str] | None) -> SheetRows:
    """:class:`SheetRows` read (three statements)."""
    rows = functools.partial(plain_rows, session)
    return SheetRows(
        rows(select(Handin.sheet, Handin.student_id, Handin.kind, Handin.received_at)
             .where(Handin.status == "accepted", *_of(Handin.student_id, only, sheets))),
        rows(select(AutogradeResult.sheet, AutogradeResult.student_id, AutogradeResult.status,
                    AutogradeResult.submitted_at).where(*_of(AutogradeResult.student_id, only, sheets))),
        rows(select(PaperPoints.sheet, PaperPoints.student_id, PaperPoints.task)
             .where(*_of(PaperPoints.student_id, only, sheets))))


def release_times(session: Session, cfg: CourseConfig,
                  states: Mapping[str, StateRow] | None = None) -> dict[str, datetime | None]:
    """The released sheets of the semester plan, each with the time of its release: recorded by `mlph
    release`; None for a sheet generated into nbgrader by a gradebook from before ``sheet_state``.
    ``states``: the ``sheet_state`` rows, when the caller has read them already."""
    if states is None:
        recorded = {sheet: utc(at) for sheet, at in session.execute(
            select(SheetState.sheet, SheetState.released_at).where(SheetState.released_at.is_not(None))) if at}
    else:
        recorded = _recorded(states)
    return _released(cfg, recorded, set(session.execute(select(nt.assignment.c.name)).scalars()))


def _recorded(states: Mapping[str, StateRow]) -> dict[str, datetime]:
    """sheet → the recorded time of its release, of the ``sheet_state`` rows."""
    return {sheet: utc(row.released_at) for sheet, row in states.items() if row.released_at is not None}


def _released(cfg: CourseConfig, recorded: Mapping[str, datetime],
              generated: Collection[str]) -> dict[str, datetime | None]:
    """:func:`release_times` of the recorded releases and the sheets generated into nbgrader (``generated``)."""
    return {sem.id: recorded.get(sem.id) for sem in cfg.semester if sem.id in recorded or sem.id in generated}


def released_sheets(engine: Engine, cfg: CourseConfig) -> dict[str, datetime | None]:
    with Session(engine) as session:
        return release_times(session, cfg)


def student_sheets(engine: Engine, cfg: CourseConfig) -> set[str]:
    """The sheets that exist for students: authored and released. Any other sheet is, on every page, API and
    intake a student reaches, exactly a sheet that does not exist."""
    released = released_sheets(engine, cfg)
    return {sem.id for sem in cfg.semester if sem.manifest is not None and sem.id in released}


def handin_refusal(engine: Engine, cfg: CourseConfig, sheet: str) -> str | None:
    """Why a student's hand-in for ``sheet`` is refused before anything is read (None: it may be handed
    in): the one check for every way in (web upload, exchange, LMS zip). An unreleased sheet is refused
    with the same words as a sheet that does not exist."""
    if sheet not in student_sheets(engine, cfg):
        return f"there is no sheet {sheet!r} to hand in for"
    return None


def load_facts(session: Session, cfg: CourseConfig, roster: set[str] | None = None,
               counts_zero: CountsZero | None = None, only: set[str] | None = None,
               sheets: Collection[str] | None = None,
               teams: Mapping[tuple[str, str], list[str]] | None = None,
               given: SheetRows | None = None) -> dict[str, SheetFacts]:
    """Every semester sheet's facts (roster students only). ``counts_zero``: the late policy, so that a
    hand-in it counts as 0 is not waited for (without it, every accepted hand-in is). ``only``: the facts
    of these students alone (with all members of their teams: what decides a sheet for one student), read
    with the same queries restricted to them (one student's page does not read the course). ``teams``: (sheet,
    team) → members, every team of ``only`` (of the course without it), and ``given``, the rows of :class:`SheetRows`
    of the same students, when the caller has read them."""
    if roster is None:
        roster = roster_ids(session) if only is None else set(session.execute(
            select(StudentProfile.student_id).where(StudentProfile.student_id.in_(only))).scalars())
    elif only is not None:
        roster = roster & only
    states = {row.sheet: row for row in map(StateRow._make, plain_rows(session, select(*STATE_COLUMNS)))}
    released_ids = release_times(session, cfg, states)
    raw = _raw(session, roster, counts_zero, only, sheets, teams, given)  # sheets: the others' facts read as nothing handed in
    return _facts(cfg, roster, states, released_ids, raw)


def facts_of(cfg: CourseConfig, roster: set[str], states: Mapping[str, StateRow], generated: Collection[str],
             counts_zero: CountsZero | None, teams: Mapping[tuple[str, str], list[str]],
             given: SheetRows) -> dict[str, SheetFacts]:
    """:func:`load_facts` of rows read before: the roster students among those read, the ``sheet_state`` rows,
    the sheets generated into nbgrader, the teams and the :class:`SheetRows` of the same students."""
    return _facts(cfg, roster, states, _released(cfg, _recorded(states), generated),
                  _raw_of(roster, counts_zero, None, teams, given))


def _facts(cfg: CourseConfig, roster: set[str], states: Mapping[str, StateRow], released_ids: Mapping[str, Any],
           raw: _Raw) -> dict[str, SheetFacts]:
    out: dict[str, SheetFacts] = {}
    for sem in cfg.semester:
        st = states.get(sem.id)
        released = sem.id in released_ids
        n_paper = len(sem.manifest.paper_tasks) if sem.manifest is not None else 0
        handed = frozenset(raw.handed.get(sem.id, set()))
        entered = frozenset(sid for sid in roster if len(raw.paper_tasks.get((sem.id, sid), ())) >= n_paper > 0)
        out[sem.id] = SheetFacts(
            sheet=sem, released=released,
            closed_at=utc(st.closed_at) if st and st.closed_at else None, closed_by=st.closed_by if st else None,
            close_reason=st.close_reason if st else None,
            handed_in=handed, graded=frozenset(raw.final.get(sem.id, set())),
            ungraded=frozenset(raw.notebook_handins.get(sem.id, set()) - raw.final.get(sem.id, set())),
            paper_missing=frozenset(handed - entered) if n_paper else frozenset(),
            paper_entered=entered)
    return out


def sheet_facts(engine: Engine, cfg: CourseConfig) -> dict[str, SheetFacts]:
    with Session(engine) as session:
        return load_facts(session, cfg)


def require_sheet(cfg: CourseConfig, sheet: str) -> SemesterSheet:
    """A sheet of the semester plan, or an error listing them."""
    for sem in cfg.semester:
        if sem.id == sheet:
            return sem
    known = ", ".join(s.id for s in cfg.semester) or "none"
    raise InputError(f"unknown sheet {sheet!r}: not in the semester plan of {cfg.root / 'mlph.toml'} (sheets: {known})")


def close_sheet(engine: Engine, cfg: CourseConfig, sheet: str, author: str, reason: str,
                as_of: datetime | None = None) -> list[str]:
    """Close ``sheet`` (decided from now on, whatever is missing); returns what was still missing."""
    require_sheet(cfg, sheet)
    if not reason.strip():
        raise InputError(f"closing {sheet} needs a reason")
    now = datetime.now(timezone.utc)
    with atomic(engine) as session:
        missing = load_facts(session, cfg)[sheet].missing(as_of or now)
        st = session.get(SheetState, sheet) or SheetState(sheet=sheet)
        if st.closed_at is not None:
            raise InputError(f"{sheet} is already closed (by {st.closed_by} at {st.closed_at:%Y-%m-%d %H:%M}): "
                             f"reopen it first")
        st.closed_at, st.closed_by, st.close_reason = now, author, reason
        session.add(st)
        session.add(AuditLog(at=now, author=author, entity="sheet_state", key=sheet, old_value="open",
                             new_value="closed" + (f" (missing: {'; '.join(missing)})" if missing else ""),
                             reason=reason))
    return missing


def reopen_sheet(engine: Engine, cfg: CourseConfig, sheet: str, author: str, reason: str) -> None:
    require_sheet(cfg, sheet)
    now = datetime.now(timezone.utc)
    with atomic(engine) as session:
        st = session.get(SheetState, sheet)
        if st is None or st.closed_at is None:
            raise InputError(f"{sheet} is not closed")
        old = f"closed by {st.closed_by}: {st.close_reason}"
        st.closed_at, st.closed_by, st.close_reason = None, None, None
        session.add(AuditLog(at=now, author=author, entity="sheet_state", key=sheet, old_value=old,
                             new_value="open", reason=reason))


@dataclass(frozen=True)
class SheetRow:
    """One line of ``mlph sheets``."""

    id: str
    due: datetime
    max_points: Fraction
    state: str
    handed_in: int
    graded: int
    paper_entered: int
    missing: tuple[str, ...]
    closed_by: str | None
    close_reason: str | None


def sheet_rows(engine: Engine, cfg: CourseConfig, as_of: datetime | None = None) -> list[SheetRow]:
    as_of = as_of or datetime.now(timezone.utc)
    rows = []
    for f in sheet_facts(engine, cfg).values():
        rows.append(SheetRow(f.id, f.sheet.due, f.sheet.max_points, f.state(as_of), len(f.handed_in), len(f.graded),
                             len(f.paper_entered), tuple(f.missing(as_of)) if not f.closed else (),
                             f.closed_by, f.close_reason))
    return rows


def mark_released(engine: Engine, sheet: str, author: str) -> None:
    """Record (and audit) that ``sheet`` was released to the students now (`mlph release`)."""
    from gradebook.store.db import atomic
    from gradebook.store.models import AuditLog, SheetState

    now = datetime.now(timezone.utc)
    with atomic(engine) as session:
        state = session.get(SheetState, sheet) or SheetState(sheet=sheet)
        old = state.released_at.isoformat() if state.released_at else None
        state.released_at = now
        session.add(state)
        session.add(AuditLog(at=now, author=author, entity="sheet_state", key=sheet, old_value=old,
                             new_value=f"released {now.isoformat()}", reason="mlph release"))
