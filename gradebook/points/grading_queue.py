"""The grading queue in the gradebook's database, and the graders' heartbeats.

A hand-in queues its grading in the transaction that records it (:func:`enqueue`): at most one job per
student and sheet waits (a newer hand-in takes the waiting job's place in the line instead of queueing a
second one), so a student's resubmissions can never push others back. Graders take the oldest waiting job
(:func:`claim`: ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, the write lock on SQLite), never one whose student
has a job running (the running one finishes; then the newer hand-in is graded), and hold it under a lease
that their heartbeat (:func:`heartbeat`) extends. A job whose grader died (the lease ran out) is taken
again, first in line; after :data:`MAX_ATTEMPTS` it fails. Each job keeps when its hand-in was received,
queued, started and finished.

Whether a hand-in may be graded now (the ``[grading]`` rate limit, the late rules) is decided by the
grader, as ever; a job that must wait for the student's turn goes back with ``not_before``.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Engine, exists, func, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from gradebook.store.db import atomic
from gradebook.store.models import Grader, GradingJob, Handin
from gradebook.store.wakeup import request_wakeup

QUEUED, RUNNING, DONE, FAILED, SUPERSEDED = "queued", "running", "done", "failed", "superseded"
LEASE = timedelta(seconds=30)
MAX_ATTEMPTS = 3
ALIVE_WITHIN = timedelta(seconds=30)  # a grader whose heartbeat is older is taken for dead


def _utc(when: datetime | None) -> datetime | None:
    if when is None:
        return None
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when.astimezone(timezone.utc)


def _now(now: datetime | None) -> datetime:
    return (now or datetime.now(timezone.utc)).astimezone(timezone.utc)


@dataclass(frozen=True)
class Job:
    id: int
    sheet: str
    student: str
    handin_id: int | None
    received_at: datetime | None
    queued_at: datetime
    attempts: int


def _insert(session: Session) -> Any:
    """The dialect's INSERT with ON CONFLICT (PostgreSQL and SQLite both have it, with a partial index)."""
    from sqlalchemy.dialects import postgresql, sqlite

    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


def enqueue(session: Session, sheet: str, student: str, *, handin_id: int | None = None,
            received_at: datetime | None = None, fingerprint: str | None = None, now: datetime | None = None) -> None:
    """Queue the grading of ``student``'s newest hand-in of ``sheet`` in ``session``'s transaction (the one
    that records the hand-in): a new job at the end of the line, or, when one waits already, that job now
    grades this hand-in (its place in the line kept). A running job is never touched. The graders are woken
    when the transaction commits."""
    stamp = _now(now)
    table = GradingJob.__table__
    stmt = _insert(session)(table).values(sheet=sheet, student_id=student, state=QUEUED, handin_id=handin_id,
                                          received_at=_utc(received_at), queued_at=stamp, attempts=0, replaced=0,
                                          fingerprint=fingerprint)
    stmt = stmt.on_conflict_do_update(
        index_elements=["sheet", "student_id"], index_where=text("state = 'queued'"),
        set_={"handin_id": func.coalesce(stmt.excluded.handin_id, table.c.handin_id),
              "received_at": func.coalesce(stmt.excluded.received_at, table.c.received_at),
              "fingerprint": stmt.excluded.fingerprint,
              "replaced": table.c.replaced + 1})
    session.execute(stmt)
    request_wakeup(session)


def _job(row: GradingJob) -> Job:
    return Job(row.id, row.sheet, row.student_id, row.handin_id, _utc(row.received_at),
               _utc(row.queued_at) or row.queued_at, row.attempts)


def _reap(session: Session, now: datetime, locking: bool) -> None:
    """Running jobs whose lease ran out (their grader died): queued again at their old place, or superseded
    when a newer hand-in of the student waits already, or failed after :data:`MAX_ATTEMPTS`."""
    q = select(GradingJob).where(GradingJob.state == RUNNING, GradingJob.lease_until < now)
    for row in session.scalars(q.with_for_update(skip_locked=True) if locking else q).all():
        newer = session.scalar(select(GradingJob.id).where(GradingJob.sheet == row.sheet, GradingJob.state == QUEUED,
                                                           GradingJob.student_id == row.student_id))
        lost = f"its grader ({row.grader}) stopped while grading"
        if newer is not None:
            row.state, row.finished_at, row.reason = SUPERSEDED, now, f"{lost}; a newer hand-in is queued"
        elif row.attempts >= MAX_ATTEMPTS:
            row.state, row.finished_at, row.outcome = FAILED, now, "grader_error"
            row.reason = f"{lost}, {row.attempts} times; not taken again (grade it with `mlph autograde {row.sheet}`)"
        else:
            row.state, row.grader, row.lease_until, row.reason = QUEUED, None, None, f"{lost}; taken again"


def claim(engine: Engine, grader: str, sheets: list[str] | None = None, *, lease: timedelta = LEASE,
          now: datetime | None = None) -> Job | None:
    """Take the oldest waiting job (of ``sheets``; None: any) whose turn has come and whose student has no
    job running, for ``grader``, under a lease; None when there is none."""
    for attempt in range(3):
        try:
            return _claim(engine, grader, sheets, lease, _now(now))
        except IntegrityError:  # a reaped job met a hand-in queued at the same moment: look again
            if attempt == 2:
                raise
    return None


def _claim(engine: Engine, grader: str, sheets: list[str] | None, lease: timedelta, now: datetime) -> Job | None:
    locking = engine.dialect.name == "postgresql"
    with atomic(engine) as session:
        _reap(session, now, locking)
        running = aliased(GradingJob)
        busy = exists().where(running.sheet == GradingJob.sheet, running.student_id == GradingJob.student_id,
                              running.state == RUNNING)
        q = (select(GradingJob).where(GradingJob.state == QUEUED, ~busy,
                                      or_(GradingJob.not_before.is_(None), GradingJob.not_before <= now))
             .order_by(GradingJob.queued_at, GradingJob.id).limit(1))
        if sheets is not None:
            q = q.where(GradingJob.sheet.in_(sheets))
        row = session.scalars(q.with_for_update(skip_locked=True) if locking else q).first()
        if row is None:
            return None
        row.state, row.grader, row.started_at = RUNNING, grader, now
        row.lease_until, row.attempts = now + lease, row.attempts + 1
        return _job(row)


def next_turn(engine: Engine, sheets: list[str] | None = None) -> datetime | None:
    """The earliest ``not_before`` of a waiting job (when a grader must look again without a wake-up)."""
    with Session(engine) as session:
        q = select(func.min(GradingJob.not_before)).where(GradingJob.state == QUEUED)
        if sheets is not None:
            q = q.where(GradingJob.sheet.in_(sheets))
        return _utc(session.scalar(q))


def finish(engine: Engine, job: Job, grader: str, outcome: str, *, fingerprint: str | None = None,
           reason: str | None = None, not_before: datetime | None = None, graded: datetime | None = None,
           now: datetime | None = None) -> None:
    """The end of ``grader``'s run of ``job``: done with ``outcome``, or (``not_before``) back in the line
    until the student's grading turn. ``graded``: the time of receipt of the files it graded (a hand-in made
    after the job was queued, before its files were read, is the one graded: the job then names it). A job no
    longer this grader's (its lease ran out and another took it) is left alone."""
    stamp = _now(now)
    with atomic(engine) as session:
        row = session.get(GradingJob, job.id)
        if row is None or row.state != RUNNING or row.grader != grader:
            return
        newer = session.scalar(select(GradingJob.id).where(GradingJob.sheet == row.sheet, GradingJob.state == QUEUED,
                                                           GradingJob.student_id == row.student_id))
        if not_before is not None and newer is None:
            row.state, row.not_before, row.grader, row.lease_until = QUEUED, _utc(not_before), None, None
            row.reason = reason
        elif not_before is not None:  # a newer hand-in waits already: that job is graded at the turn
            row.state, row.finished_at, row.reason = SUPERSEDED, stamp, "a newer hand-in is queued"
            session.execute(update(GradingJob).where(GradingJob.id == newer)
                            .values(not_before=func.coalesce(GradingJob.not_before, _utc(not_before))))
        else:
            row.state, row.finished_at, row.outcome = DONE, stamp, outcome
            row.fingerprint, row.reason, row.lease_until = fingerprint or row.fingerprint, reason, None
            if graded is not None:
                _name_graded(session, row, _utc(graded))
        if not_before is None:
            session.execute(update(Grader).where(Grader.id == grader).values(
                last_finished_at=stamp, jobs_done=Grader.jobs_done + 1))
        if newer is not None:
            request_wakeup(session)  # the student's newer hand-in may be graded now


def _name_graded(session: Session, row: GradingJob, received: datetime | None) -> None:
    """The job names the hand-in whose files it graded (by their time of receipt)."""
    if received is None or received == row.received_at:
        return
    found = session.scalar(select(Handin.id).where(Handin.sheet == row.sheet, Handin.student_id == row.student_id,
                                                   Handin.kind == "notebook", Handin.received_at == received)
                           .order_by(Handin.id.desc()).limit(1))
    row.received_at = received
    if found is not None:
        row.handin_id = found


# --- graders ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class GraderInfo:
    id: str
    host: str
    pid: int
    sheets: str
    started_at: datetime
    heartbeat_at: datetime
    last_finished_at: datetime | None
    jobs_done: int
    alive: bool


def register_grader(engine: Engine, grader: str, host: str, pid: int, sheets: list[str] | None,
                    log_path: str | None = None, now: datetime | None = None) -> None:
    stamp = _now(now)
    with atomic(engine) as session:
        session.merge(Grader(id=grader, host=host[:255], pid=pid, sheets=",".join(sheets or ["(all)"]),
                             started_at=stamp, heartbeat_at=stamp, jobs_done=0, log_path=log_path))


def heartbeat(engine: Engine, grader: str, jobs: list[int], lease: timedelta = LEASE,
              now: datetime | None = None) -> None:
    """``grader`` is alive: its heartbeat, and the leases of the jobs it runs, renewed."""
    stamp = _now(now)
    with atomic(engine) as session:
        session.execute(update(Grader).where(Grader.id == grader).values(heartbeat_at=stamp))
        if jobs:
            session.execute(update(GradingJob).where(GradingJob.id.in_(jobs), GradingJob.grader == grader,
                                                     GradingJob.state == RUNNING).values(lease_until=stamp + lease))


def stop_grader(engine: Engine, grader: str, now: datetime | None = None) -> None:
    """``grader`` stops: its running jobs (if any were left) go back to the line at once."""
    stamp = _now(now)
    with atomic(engine) as session:
        session.execute(update(Grader).where(Grader.id == grader).values(stopped_at=stamp))
        session.execute(update(GradingJob).where(GradingJob.grader == grader, GradingJob.state == RUNNING)
                        .values(lease_until=stamp - timedelta(seconds=1)))


def graders(session: Session, now: datetime | None = None, alive_within: timedelta = ALIVE_WITHIN) -> list[GraderInfo]:
    """Every grader not stopped, newest heartbeat first, with whether it is alive."""
    stamp = _now(now)
    rows = session.scalars(select(Grader).where(Grader.stopped_at.is_(None)).order_by(Grader.heartbeat_at.desc()))
    out = []
    for g in rows:
        beat = _utc(g.heartbeat_at) or stamp
        out.append(GraderInfo(g.id, g.host, g.pid, g.sheets, _utc(g.started_at) or beat, beat,
                              _utc(g.last_finished_at), g.jobs_done or 0, stamp - beat <= alive_within))
    return out


def grader_alive(session: Session, now: datetime | None = None) -> bool:
    stamp = _now(now)
    return (session.scalar(select(func.count()).select_from(Grader).where(
        Grader.stopped_at.is_(None), Grader.heartbeat_at >= stamp - ALIVE_WITHIN)) or 0) > 0


@dataclass(frozen=True)
class QueueState:
    queued: int
    running: int
    oldest_queued_at: datetime | None
    last_finished_at: datetime | None
    graders: list[GraderInfo]

    @property
    def alive(self) -> bool:
        return any(g.alive for g in self.graders)


def queue_state(engine: Engine, now: datetime | None = None) -> QueueState:
    """What the admin page shows of grading: jobs waiting and running, the graders and their heartbeats."""
    with Session(engine) as session:
        counts = dict(session.execute(select(GradingJob.state, func.count()).where(
            GradingJob.state.in_((QUEUED, RUNNING))).group_by(GradingJob.state)).all())
        oldest = session.scalar(select(func.min(GradingJob.queued_at)).where(GradingJob.state == QUEUED))
        last = session.scalar(select(func.max(Grader.last_finished_at)))
        return QueueState(int(counts.get(QUEUED, 0)), int(counts.get(RUNNING, 0)), _utc(oldest), _utc(last),
                          graders(session, now))


def enqueue_stale(engine: Engine, sheet: str, stale: dict[str, str], now: datetime | None = None) -> int:
    """The fallback sweep: queue the ``stale`` students of ``sheet`` (student → fingerprint of files not graded
    yet: put there past the intake, recorded before the queue existed, a grader error to retry) that have no
    job waiting or running and whose last job did not settle these very files already (kept, held, waiting
    for a turn that never comes); the number queued."""
    if not stale:
        return 0
    n = 0
    with atomic(engine) as session:
        rows = session.execute(select(GradingJob.student_id, GradingJob.state, GradingJob.fingerprint,
                                      GradingJob.outcome).where(GradingJob.sheet == sheet,
                                                                GradingJob.student_id.in_(list(stale)))
                               .order_by(GradingJob.id)).all()
        last: dict[str, tuple[str | None, str | None]] = {}
        active = set()
        for student, state, fp, outcome in rows:
            last[student] = (fp, outcome)
            if state in (QUEUED, RUNNING):
                active.add(student)
        for student, fp in sorted(stale.items()):
            done_fp, outcome = last.get(student, (None, None))
            if student in active or (done_fp == fp and outcome != "grader_error"):
                continue
            enqueue(session, sheet, student, fingerprint=fp, now=now)
            n += 1
    return n
