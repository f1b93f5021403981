"""Regrade requests on paper tasks: a student asks, another grader answers.

After a sheet's paper points are published (:mod:`gradebook.points.publishing`) a student may ask, per paper
task, for a regrade with a reason, within the sheet's window (``regrade_days`` in the manifest, else
``[paper] regrade_days`` in ``mlph.toml``; default 7 days after publishing); one open request per task (a team
shares one). The grader who entered the task's points then (``paper_points.entered_by``) may not answer it:
another tutor or an admin does. The answer (text, and optionally new points) is one transaction: new points
go through the grid's write path (:func:`gradebook.points.paper.write_points`: versioned, audited), the
answer itself is audited too. :func:`answer_request` is the one function that answers (the CLI and the web
pages call it; a "regrade answered" mail hooks in there).

Untrusted text (the student's reason) is bounded here, stripped of control characters, and stored as typed;
the pages escape it when they show it.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from fractions import Fraction

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from gradebook.course.config import CourseConfig
from gradebook.course.manifest import Manifest
from gradebook.course.sheets_state import require_sheet, utc
from gradebook.errors import ConflictError, InputError
from gradebook.points.paper import fmt, write_points
from gradebook.points.publishing import published_sheets
from gradebook.store.db import atomic
from gradebook.store.models import AuditLog, PaperPoints, RegradeRequest, TeamMember

MAX_REASON = 2000  # characters of a student's reason
MAX_ANSWER = 4000  # characters of the grader's answer
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class Request:
    """One regrade request as the pages and the CLI show it."""

    id: int
    sheet: str
    task: str
    student: str
    reason: str
    requested_at: datetime
    grader: str | None
    points_before: Fraction | None
    answered_at: datetime | None = None
    answered_by: str | None = None
    answer: str | None = None
    points_after: Fraction | None = None

    @property
    def open(self) -> bool:
        return self.answered_at is None

    @property
    def changed(self) -> bool:
        return self.answered_at is not None and self.points_after != self.points_before


def _fraction(text: str | None) -> Fraction | None:
    return None if text is None else Fraction(text)


def _view(row: RegradeRequest) -> Request:
    return Request(row.id, row.sheet, row.task, row.student_id, row.reason, utc(row.requested_at), row.grader,
                   _fraction(row.points_before), utc(row.answered_at) if row.answered_at else None, row.answered_by,
                   row.answer, _fraction(row.points_after))


def clean_text(text: str, limit: int, what: str, where: str) -> str:
    """``text`` stripped of control characters and outer space; InputError when empty or longer than ``limit``."""
    text = _CONTROL.sub("", text.replace("\r\n", "\n")).strip()
    if not text:
        raise InputError(f"{where}: the {what} is empty")
    if len(text) > limit:
        raise InputError(f"{where}: the {what} has {len(text)} characters; at most {limit}")
    return text


def team_members(session: Session, sheet: str, student: str) -> list[str]:
    team = session.execute(select(TeamMember.team).where(TeamMember.sheet == sheet, TeamMember.student_id == student)
                           ).scalar_one_or_none()
    if team is None:
        return [student]
    return list(session.execute(select(TeamMember.student_id).where(TeamMember.sheet == sheet,
                                                                    TeamMember.team == team)).scalars())


def _points_row(session: Session, sheet: str, task: str, members: Sequence[str], lock: bool = False) -> PaperPoints | None:
    """The task's points that count for the team (the highest entered for any member), locked for update."""
    query = select(PaperPoints).where(PaperPoints.sheet == sheet, PaperPoints.task == task,
                                      PaperPoints.student_id.in_(list(members)))
    rows = session.execute(query.with_for_update() if lock else query).scalars().all()
    return max(rows, key=lambda r: Fraction(r.points), default=None)


def window_end(cfg: CourseConfig, sheet: str, published_at: datetime) -> datetime:
    """Until when a regrade of ``sheet`` may be asked for."""
    return utc(published_at) + timedelta(days=cfg.regrade_window_days(require_sheet(cfg, sheet)))


def _task(cfg: CourseConfig, sheet: str, task: str) -> Manifest:
    sem = require_sheet(cfg, sheet)
    if sem.manifest is None or sem.manifest.paper_task(task) is None:
        names = ", ".join(t.id for t in sem.manifest.paper_tasks) if sem.manifest else "none"
        raise InputError(f"{sheet}: unknown paper task {task!r} (the paper tasks are {names or 'none'})")
    return sem.manifest


def request_regrade(engine: Engine, cfg: CourseConfig, sheet: str, task: str, student: str, reason: str,
                    now: datetime | None = None) -> Request:
    """``student`` asks for a regrade of paper task ``task`` of ``sheet``: only once the sheet's paper points
    are published, within its window, for a task with points, one open request per task (and team); audited."""
    where = f"{sheet}/{task}, student {student!r}"
    _task(cfg, sheet, task)
    reason = clean_text(reason, MAX_REASON, "reason", where)
    now = utc(now or datetime.now(timezone.utc))
    published = published_sheets(engine, cfg, now).get(sheet)
    if published is None:
        raise InputError(f"{where}: the paper points of {sheet} are not published yet; a regrade can be asked for "
                         "once they are")
    end = window_end(cfg, sheet, published)
    if now > end:
        raise InputError(f"{where}: regrades of {sheet} could be asked for until {end:%Y-%m-%d %H:%M} UTC")
    with atomic(engine) as session:
        members = team_members(session, sheet, student)
        points = _points_row(session, sheet, task, members, lock=True)  # serialises two requests for one task
        if points is None:
            raise InputError(f"{where}: the task has no points yet; nothing to regrade")
        already = session.execute(select(RegradeRequest.id).where(
            RegradeRequest.sheet == sheet, RegradeRequest.task == task, RegradeRequest.student_id.in_(members),
            RegradeRequest.answered_at.is_(None))).first()
        if already is not None:
            raise ConflictError(f"{where}: a regrade request for this task is already open (#{already[0]}); "
                                "one open request per task")
        row = RegradeRequest(sheet=sheet, task=task, student_id=student, reason=reason, requested_at=now,
                             grader=points.entered_by, points_before=points.points)
        session.add(row)
        session.flush()
        session.add(AuditLog(at=now, author=student, entity="regrade_request", key=f"{sheet}/{task}/{student}",
                             old_value=None, new_value=f"#{row.id} open at {fmt(Fraction(points.points))} points",
                             reason=reason))
        return _view(row)


def may_answer(request: Request, person: str, admin: bool) -> bool:
    """An admin, or a tutor other than the one who had graded the task when it was asked (the answer also
    refuses whoever entered its points since)."""
    return admin or person != request.grader


def get_request(engine: Engine, request_id: int) -> Request | None:
    with Session(engine) as session:
        row = session.get(RegradeRequest, request_id)
        return _view(row) if row is not None else None


def answer_request(engine: Engine, cfg: CourseConfig, request_id: int, author: str, admin: bool, answer: str,
                   points: Fraction | None = None, ticks: Sequence[str] | None = None,
                   expected_version: int | None = None) -> Request:
    """Answer regrade request ``request_id`` (the one answer path: CLI, web, and any mail on top): ``answer``
    is shown to the student; ``points`` (or the rubric items ``ticks``) replace the task's points through the
    grid's write path (versioned and audited; ``expected_version``: the points' version the answering page
    showed, a conflict if a tutor changed them since); the answer is audited as well. One transaction."""
    with atomic(engine) as session:
        row = session.execute(select(RegradeRequest).where(RegradeRequest.id == request_id).with_for_update()
                              ).scalar_one_or_none()
        if row is None:
            raise InputError(f"there is no regrade request #{request_id}")
        where = f"{row.sheet}/{row.task}, student {row.student_id!r} (request #{row.id})"
        if row.answered_at is not None:
            raise ConflictError(f"{where}: already answered by {row.answered_by} at {utc(row.answered_at):%Y-%m-%d %H:%M} UTC")
        text = clean_text(answer, MAX_ANSWER, "answer", where)
        manifest = _task(cfg, row.sheet, row.task)
        members = team_members(session, row.sheet, row.student_id)
        current = _points_row(session, row.sheet, row.task, members, lock=True)
        if not admin and author in {row.grader, current.entered_by if current else None}:
            raise InputError(f"{where}: {author} graded this task; another tutor or an admin answers the request")
        now = datetime.now(timezone.utc)
        after = Fraction(current.points) if current is not None else None
        if points is not None or ticks is not None:
            target = current.student_id if current is not None else row.student_id
            version = current.version if current is not None else 0
            write_points(session, manifest, target, row.task, points, author,
                         version if expected_version is None else expected_version,
                         f"regrade request #{row.id}: {text}", ticks)
            session.flush()
            after = Fraction(_points_row(session, row.sheet, row.task, members).points)  # type: ignore[union-attr]
        row.answered_at, row.answered_by, row.answer = now, author, text
        row.points_after = None if after is None else str(after)
        before = _fraction(row.points_before)
        session.add(AuditLog(at=now, author=author, entity="regrade_request", key=f"{row.sheet}/{row.task}/{row.student_id}",
                             old_value=f"#{row.id} open at {fmt(before) if before is not None else '-'} points",
                             new_value=f"#{row.id} answered: {fmt(after) if after is not None else '-'} points",
                             reason=text))
        session.flush()
        return _view(row)


def requests(engine: Engine, *, sheet: str | None = None, student: str | None = None, open_only: bool = False,
             answerable_by: str | None = None, admin: bool = False) -> list[Request]:
    """Regrade requests, oldest first (``answerable_by``: only those this person may answer)."""
    query = select(RegradeRequest).order_by(RegradeRequest.requested_at, RegradeRequest.id)
    if sheet is not None:
        query = query.where(RegradeRequest.sheet == sheet)
    if student is not None:
        query = query.where(RegradeRequest.student_id == student)
    if open_only:
        query = query.where(RegradeRequest.answered_at.is_(None))
    with Session(engine) as session:
        out = [_view(r) for r in session.execute(query).scalars()]
    if answerable_by is not None:
        out = [r for r in out if may_answer(r, answerable_by, admin)]
    return out


def for_student(engine: Engine, sheet: str, student: str) -> list[Request]:
    """The requests of ``student``'s team on ``sheet`` (newest first), for their sheet page."""
    with Session(engine) as session:
        members = team_members(session, sheet, student)
        rows = session.execute(select(RegradeRequest).where(RegradeRequest.sheet == sheet,
                                                            RegradeRequest.student_id.in_(members))
                               .order_by(RegradeRequest.requested_at.desc())).scalars()
        return [_view(r) for r in rows]


def pending_students(engine: Engine) -> set[str]:
    """Students with an open regrade request (the admission view marks them)."""
    with Session(engine) as session:
        return set(session.execute(select(RegradeRequest.student_id).where(RegradeRequest.answered_at.is_(None))).scalars())
