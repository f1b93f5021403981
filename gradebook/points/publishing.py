"""Publishing a sheet's paper points: when the tutors' points, comments and rubric marks reach the students.

Per sheet, never cell by cell while tutors type. The policy (``publish_paper`` in the sheet's manifest, else
``[paper] publish`` in ``mlph.toml``) is ``"when-graded"`` (the default: published automatically once the
sheet's deadline has passed and every student with a paper hand-in has points for every paper task) or
``"manual"`` (an admin publishes). An admin may publish early or withdraw a publication (which also stops
the automatic one for that sheet); both are stored in ``paper_publication`` and audited. An automatic
publication is recorded (and audited, author ``auto``) the first time it is seen to hold, so that a later
hand-in (a student with an extension) never takes the sheet's points back from the other students.

:func:`published_sheets` is the one predicate every student-facing view asks; staff views and the admission
list count entered points whatever this says (the points count when they are entered; publishing decides
only what students read).
"""
from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gradebook.course.config import CourseConfig, SemesterSheet
from gradebook.course.sheets_state import CountsZero, load_facts, require_sheet, utc
from gradebook.errors import InputError
from gradebook.points.handins import decide_late
from gradebook.store.db import atomic, plain_rows
from gradebook.store.models import AuditLog, Extension, PaperPoints, PaperPublication

AUTO, ADMIN, WITHDRAWN = "auto", "admin", "withdrawn"


@dataclass(frozen=True)
class Publication:
    """A sheet's publishing state, as the admin page shows it."""

    sheet: str
    policy: str  # when-graded | manual
    published_at: datetime | None  # None: not published
    how: str  # auto | admin | withdrawn | "" (nothing stored yet)
    author: str
    waiting: tuple[str, ...]  # students with a paper hand-in still missing points for a paper task
    entered: bool = True  # some paper points are entered (an automatic publication needs some)

    @property
    def published(self) -> bool:
        return self.published_at is not None


def _paper_sheets(cfg: CourseConfig) -> list[SemesterSheet]:
    return [s for s in cfg.semester if s.manifest is not None and s.manifest.paper_tasks]


def _counts_zero(session: Session, cfg: CourseConfig, only: set[str] | None = None) -> CountsZero:
    manifests = {s.id: s.manifest for s in cfg.semester if s.manifest is not None}
    extensions = {(sid, sheet): utc(until) for sid, sheet, until in session.execute(
        select(Extension.student_id, Extension.sheet, Extension.until)
        .where(*([Extension.student_id.in_(only)] if only is not None else [])))}

    def counts_zero(sheet: str, student: str, received: datetime) -> bool:
        manifest = manifests.get(sheet)
        return manifest is not None and decide_late(received, manifest, extensions.get((student, sheet))).counts_zero

    return counts_zero


def waiting_students(session: Session, cfg: CourseConfig, sems: list[SemesterSheet],
                     only: set[str] | None = None) -> dict[str, list[str]]:
    """Per sheet, the roster students its grading still waits for on paper: the gradebook's own notion of a
    graded sheet (:class:`~gradebook.course.sheets_state.SheetFacts`: whoever handed in anything that counts
    has points for every paper task), plus anyone whose paper tasks are only partly entered. ``only``: among
    these students alone, read for them alone (the caller includes every member of their teams)."""
    wanted = {s.id: s for s in sems}
    facts = load_facts(session, cfg, counts_zero=_counts_zero(session, cfg, only), only=only, sheets=list(wanted))
    tasks: dict[str, set[str]] = defaultdict(set)  # sheet -> the students with some paper points on it
    mine = [PaperPoints.student_id.in_(only)] if only is not None else []
    for sheet, sid in plain_rows(session, select(PaperPoints.sheet, PaperPoints.student_id)
                                 .where(PaperPoints.sheet.in_(list(wanted)), *mine).distinct()):
        tasks[sheet].add(sid)
    out = {}
    for sheet, sem in wanted.items():
        assert sem.manifest is not None
        partial = tasks[sheet] - facts[sheet].paper_entered
        out[sheet] = sorted(set(facts[sheet].paper_missing) | partial)
    return out


def _needs_waiting(cfg: CourseConfig, sem: SemesterSheet, row: PaperPublication | None, now: datetime,
                   detail: bool) -> bool:
    """Whether to find who is still waiting (``detail``: always, for the admin page; else only where an
    automatic publication could happen now)."""
    return detail or (row is None and cfg.publish_policy(sem) == "when-graded" and utc(sem.due) <= utc(now))


def _state(cfg: CourseConfig, sem: SemesterSheet, row: PaperPublication | None, waiting: tuple[str, ...]) -> Publication:
    policy = cfg.publish_policy(sem)
    if row is not None:
        at = utc(row.published_at) if row.published_at is not None else None
        return Publication(sem.id, policy, at, row.how, row.author, waiting)
    return Publication(sem.id, policy, None, "", "", waiting)


def _auto_due(cfg: CourseConfig, sem: SemesterSheet, row: PaperPublication | None, waiting: bool, now: datetime) -> bool:
    """An automatic publication holds: policy "when-graded", nothing stored, the deadline passed, some paper
    points entered (the caller checks) and nobody waiting."""
    return (row is None and cfg.publish_policy(sem) == "when-graded" and utc(sem.due) <= utc(now) and not waiting)


def _record(engine: Engine, sheet: str, how: str, author: str, reason: str, now: datetime,
            published: bool, only_if_absent: bool = False) -> None:
    with atomic(engine) as session:
        row = session.get(PaperPublication, sheet)
        if row is not None and only_if_absent:
            return
        old = None if row is None else (f"published ({row.how}) {utc(row.published_at).isoformat()}"
                                        if row.published_at is not None else "withdrawn")
        row = row or PaperPublication(sheet=sheet)
        row.published_at, row.how, row.author = (now if published else None), how, author
        session.add(row)
        session.add(AuditLog(at=now, author=author, entity="paper_publication", key=sheet, old_value=old,
                             new_value=f"published ({how}) {now.isoformat()}" if published else "withdrawn",
                             reason=reason))


def may_publish_itself(cfg: CourseConfig, stored: Collection[str], now: datetime | None = None) -> bool:
    """Whether an automatic publication could happen at ``now`` (``stored``: the sheets with a row in
    ``paper_publication``): some "when-graded" paper sheet past its deadline has nothing stored yet. Only then
    does :func:`published_sheets` depend on more than the stored rows and the time."""
    now = utc(now or datetime.now(timezone.utc))
    return any(_needs_waiting(cfg, sem, None, now, False) for sem in _paper_sheets(cfg) if sem.id not in stored)


# how the waiting lists are found: (session, cfg, the sheets) -> sheet -> students (waiting_students, or one kept)
WaitingOf = Callable[[Session, CourseConfig, list[SemesterSheet]], dict[str, list[str]]]


def publications(engine: Engine, cfg: CourseConfig, now: datetime | None = None,
                 detail: bool = False, waiting_of: WaitingOf | None = None) -> dict[str, Publication]:
    """Every paper sheet's publishing state; a sheet whose automatic publication holds now is recorded as
    published (once). ``detail``: also who is waiting on sheets that cannot publish yet (the admin page).
    ``waiting_of``: finds the waiting lists (default :func:`waiting_students`;
    :mod:`gradebook.points.current_publications` brings a list it keeps up to date, for the admin overview and
    for the students' dashboards while a sheet may publish itself)."""
    now = utc(now or datetime.now(timezone.utc))
    sheets = _paper_sheets(cfg)
    with Session(engine) as session:
        rows = {r.sheet: r for r in session.execute(select(PaperPublication)).scalars()}
        todo = [sem for sem in sheets if rows.get(sem.id) is None or rows[sem.id].published_at is None]
        look = [sem for sem in todo if _needs_waiting(cfg, sem, rows.get(sem.id), now, detail)]
        waiting = (waiting_of or waiting_students)(session, cfg, look) if look else {}
        states = {sem.id: _state(cfg, sem, rows.get(sem.id), tuple(waiting.get(sem.id, ()))) for sem in todo}
        graded = set(session.execute(select(PaperPoints.sheet).where(
            PaperPoints.sheet.in_([sem.id for sem in todo])).distinct()).scalars()) if todo else set()
        states = {k: dataclasses.replace(v, entered=k in graded) for k, v in states.items()}
    fresh = [sem for sem in look if sem.id in graded and _auto_due(cfg, sem, rows.get(sem.id),
                                                                    bool(states[sem.id].waiting), now)]
    for sem in fresh:
        try:
            _record(engine, sem.id, AUTO, AUTO, "every paper hand-in graded (publish_paper = \"when-graded\")", now,
                    True, only_if_absent=True)
        except IntegrityError:
            pass  # another request recorded it at the same moment
    if fresh:
        with Session(engine) as session:
            rows = {r.sheet: r for r in session.execute(select(PaperPublication)).scalars()}
    out = {}
    for sem in sheets:
        row = rows.get(sem.id)
        if sem.id in states and not (row is not None and row.published_at is not None):
            out[sem.id] = states[sem.id]
        else:
            assert row is not None and row.published_at is not None
            out[sem.id] = Publication(sem.id, cfg.publish_policy(sem), utc(row.published_at), row.how, row.author, ())
    return out


def published_sheets(engine: Engine, cfg: CourseConfig, now: datetime | None = None) -> dict[str, datetime]:
    """The one predicate of the student-facing views: the sheets whose paper points, comments and rubric marks
    students may read, each with the time it was published (the regrade window starts there)."""
    return {sheet: p.published_at for sheet, p in publications(engine, cfg, now).items()
            if p.published_at is not None}


def publish(engine: Engine, cfg: CourseConfig, sheet: str, author: str, reason: str = "") -> list[str]:
    """Publish ``sheet``'s paper points now (an admin); returns the students still waiting for points (they
    keep reading "being graded" until all their tasks have points: never partial points)."""
    sem = _require_paper_sheet(cfg, sheet)
    now = datetime.now(timezone.utc)
    with Session(engine) as session:
        row = session.get(PaperPublication, sheet)
        if row is not None and row.published_at is not None:
            raise InputError(f"{sheet}: the paper points are already published (since "
                             f"{utc(row.published_at):%Y-%m-%d %H:%M} UTC, {row.how} by {row.author})")
        waiting = waiting_students(session, cfg, [sem])[sheet]
    _record(engine, sheet, ADMIN, author, reason.strip() or "published by an admin", now, True)
    return waiting


def unpublish(engine: Engine, cfg: CourseConfig, sheet: str, author: str, reason: str) -> None:
    """Withdraw ``sheet``'s publication (students read "being graded" again; no automatic publication follows
    until an admin publishes); needs a reason (audited)."""
    _require_paper_sheet(cfg, sheet)
    if not reason.strip():
        raise InputError(f"withdrawing the paper points of {sheet} needs a reason")
    with Session(engine) as session:
        row = session.get(PaperPublication, sheet)
        if row is not None and row.published_at is None:
            raise InputError(f"{sheet}: the paper points are already withdrawn")
    _record(engine, sheet, WITHDRAWN, author, reason.strip(), datetime.now(timezone.utc), False)


def _require_paper_sheet(cfg: CourseConfig, sheet: str) -> SemesterSheet:
    sem = require_sheet(cfg, sheet)
    if sem.manifest is None or not sem.manifest.paper_tasks:
        raise InputError(f"{sheet} has no pen-and-paper tasks to publish")
    return sem
