"""The course's mails, each written here and sent through :func:`gradebook.mail.outbox.send`:

- :func:`send_password_links`: one-time set-password links (never a password: the link's token is stored
  hashed, works once and expires);
- :func:`sheet_graded`: "your sheet was graded" (a part of a sheet: the notebook after grading, the paper
  part once its points are published), to each student once (``again``: once more);
- :func:`regrade_answered`: the answer to a student's regrade request; :func:`answer_mailed` sends it after an
  answer when the course has a relay (the regrade page and `mlph regrade answer` call it);
- :func:`announce`: an announcement to a tutorial group or the whole course.

Mails never carry points or feedback (the pages behind the login do): a mail can be forwarded or misread.
Every text a student controls (names, a regrade request) is bounded and made inert by the outbox.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from gradebook.course.config import CourseConfig
from gradebook.errors import InputError
from gradebook.mail.outbox import Letter, Progress, SendReport, clean_body, clean_header, send
from gradebook.people.accounts import issue_links, list_accounts
from gradebook.store import nbgrader_tables as nt
from gradebook.store.models import AutogradeResult, GroupMembership, MailLog, PaperPoints, Person, TutorialGroup

if TYPE_CHECKING:
    from gradebook.points.regrades import Request as Answered

PARTS = ("notebook", "paper")
REQUEST_MAX, ANSWER_MAX = 2_000, 4_000


@dataclass(frozen=True)
class Outbox:
    """Where and how a batch goes: the course, its database, who sends, a dry-run directory, progress."""
    cfg: CourseConfig
    engine: Engine
    author: str
    dry_run: Path | None = None
    progress: Progress | None = None

    def send(self, letters: Iterable[Letter]) -> SendReport:
        return send(self.engine, self.cfg.mail, letters, self.author, self.dry_run, self.progress)


def _site(cfg: CourseConfig) -> str:
    base = cfg.mail.base_url()
    if not base.startswith(("http://", "https://")):
        raise InputError("mails link to the web pages: set [mail] site_url in mlph.toml (or MLPH_WEB_BASE_URL), "
                         "e.g. https://grading.example.org")
    return base


def _local(when: datetime, cfg: CourseConfig) -> str:
    when = when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when
    return f"{when.astimezone(ZoneInfo(cfg.timezone)):%Y-%m-%d %H:%M %Z}"


def _signature(cfg: CourseConfig) -> str:
    return f"\n\n-- \n{cfg.name}\n(This mail was sent by the course's grading system.)\n"


def _students(engine: Engine, ids: Iterable[str] | None = None) -> dict[str, tuple[str, str]]:
    """Roster id → (name, e-mail), for ``ids`` (None: everybody)."""
    query = select(nt.student.c.id, nt.student.c.first_name, nt.student.c.last_name, nt.student.c.email)
    if ids is not None:
        query = query.where(nt.student.c.id.in_(list(ids)))
    with Session(engine) as session:
        return {sid: (f"{first or ''} {last or ''}".strip(), (email or "").strip())
                for sid, first, last, email in session.execute(query.order_by(nt.student.c.id))}


def send_password_links(outbox: Outbox, usernames: Iterable[str] | None, hours: int) -> SendReport:
    """Issue set-password links for ``usernames`` (None: every enabled account without a password) and mail
    each to its owner. An account without an e-mail address gets no new link (its older one keeps working)
    and is reported as not reached."""
    cfg = outbox.cfg
    site = _site(cfg)
    accounts = {a.username: a for a in list_accounts(outbox.engine)}
    wanted = (list(dict.fromkeys(usernames)) if usernames is not None else
              [a.username for a in accounts.values() if not a.has_password and not a.disabled])
    unreachable = [u for u in wanted if u in accounts and not accounts[u].email.strip()]
    links = issue_links(outbox.engine, [u for u in wanted if u not in unreachable], site, hours, outbox.author)
    letters = [Letter(u, accounts[u].name, "", f"{cfg.name}: set your password", "", kind="password-link", key=u)
               for u in unreachable]
    letters += [Letter(
        link.username, link.name, link.email, f"{cfg.name}: set your password", kind="password-link",
        key=link.username, body=(
            f"Hello {clean_header(link.name, 80) or link.username},\n\n"
            f"your account for the grading pages of {cfg.name} is ready; your user name is {link.username}.\n"
            f"Choose your password here (the link works once and expires {_local(link.expires_at, cfg)}):\n\n"
            f"{link.url}\n\nIf you did not expect this mail, ignore it; the link expires by itself."
            f"{_signature(cfg)}")) for link in links]
    return outbox.send(letters)


def _already(engine: Engine, kind: str, key: str) -> set[str]:
    with Session(engine) as session:
        return set(session.execute(select(MailLog.recipient).where(
            MailLog.kind == kind, MailLog.key == key, MailLog.status == "sent")).scalars())


def _graded_students(engine: Engine, sheet: str, part: str) -> set[str]:
    with Session(engine) as session:
        if part == "notebook":
            return set(session.execute(select(AutogradeResult.student_id).where(
                AutogradeResult.sheet == sheet, AutogradeResult.status != "missing")).scalars())
        return set(session.execute(select(PaperPoints.student_id).where(PaperPoints.sheet == sheet)).scalars())


def sheet_graded(outbox: Outbox, sheet: str, part: str = "notebook", students: Iterable[str] | None = None,
                 again: bool = False) -> SendReport:
    """Tell each student whose ``part`` of ``sheet`` is graded (or those of ``students``) where to read it;
    a student already told is skipped unless ``again``. Call it after grading or once points are published."""
    if part not in PARTS:
        raise InputError(f"part must be one of {', '.join(PARTS)}, not {part!r}")
    cfg = outbox.cfg
    title = cfg.manifest(sheet).title
    site, key = _site(cfg), f"{sheet}/{part}"
    graded = _graded_students(outbox.engine, sheet, part)
    wanted = graded if students is None else graded & set(students)
    if not again:
        wanted -= _already(outbox.engine, "graded", key)
    what = "notebook (autograded part)" if part == "notebook" else "pen-and-paper part"
    return outbox.send(Letter(
        sid, name, email, f"{cfg.name}: {sheet} graded ({part})", kind="graded", key=key, body=(
            f"Hello {clean_header(name, 80) or sid},\n\nthe {what} of {sheet} ({title}) has been graded.\n"
            f"Your points and feedback are on your page:\n\n{site}/students/{sid}/sheets/{sheet}"
            f"{_signature(cfg)}")) for sid, (name, email) in _students(outbox.engine, sorted(wanted)).items())


def _quoted(text: str, limit: int) -> str:
    return "\n".join("> " + line for line in clean_body(text, limit).split("\n"))


def regrade_answered(outbox: Outbox, student: str, sheet: str, task: str, request: str, answer: str,
                     points_before: object = None, points_after: object = None) -> SendReport:
    """Mail ``student`` the answer to their regrade request on ``task`` of ``sheet``: their request quoted
    (bounded), the answer, and whether the points changed. For the regrade pages and commands to call."""
    cfg = outbox.cfg
    found = _students(outbox.engine, [student])
    if student not in found:
        raise InputError(f"no student {student!r} on the roster")
    name, email = found[student]
    change = ("" if points_before is None or points_after is None else
              f"Points for {task}: {points_before} before, {points_after} now.\n\n" if points_before != points_after
              else f"Points for {task}: unchanged ({points_after}).\n\n")
    return outbox.send([Letter(student, name, email, f"{cfg.name}: your regrade request on {sheet} ({task})",
                               kind="regrade", key=f"{sheet}/{task}", body=(
        f"Hello {clean_header(name, 80) or student},\n\nyour regrade request on {sheet}, task {clean_header(task, 64)}, "
        f"has been answered.\n\nYou wrote:\n{_quoted(request, REQUEST_MAX)}\n\nThe answer:\n"
        f"{clean_body(answer, ANSWER_MAX)}\n\n{change}See your page: {_site(cfg)}/students/{student}/sheets/{sheet}"
        f"{_signature(cfg)}"))])


def answer_mailed(cfg: CourseConfig, engine: Engine, done: "Answered", author: str) -> SendReport | None:
    """After a regrade request was answered (:func:`gradebook.points.regrades.answer_request`): mail the student
    the answer when the course has a relay (``[mail] host``); None when it has none. The answer is stored
    before this runs, so a relay that fails costs the mail (reported), never the answer."""
    if not cfg.mail.host or done.answered_at is None:
        return None
    from gradebook.points.paper import fmt

    def shown(points: object) -> object:
        return fmt(points) if isinstance(points, Fraction) else points

    return regrade_answered(Outbox(cfg, engine, author), done.student, done.sheet, done.task, done.reason,
                            done.answer or "", shown(done.points_before), shown(done.points_after))


def group_students(engine: Engine, group: str | None) -> list[str]:
    """The students of tutorial group ``group`` now (None: everybody on the roster)."""
    with Session(engine) as session:
        if group is None:
            return list(session.execute(select(nt.student.c.id).order_by(nt.student.c.id)).scalars())
        if session.get(TutorialGroup, group) is None:
            known = ", ".join(session.execute(select(TutorialGroup.id).order_by(TutorialGroup.id)).scalars())
            raise InputError(f"no tutorial group {group!r} (groups: {known or 'none'})")
        return list(session.execute(select(GroupMembership.student_id).where(
            GroupMembership.group_id == group, GroupMembership.valid_to.is_(None))
            .order_by(GroupMembership.student_id)).scalars())


def announce(outbox: Outbox, subject: str, body: str, group: str | None = None, tutors: bool = True) -> SendReport:
    """An announcement to the students of ``group`` (None: the whole course) and, with ``tutors``, to the
    group's tutor (or every tutor and admin) as a copy of what the students received."""
    if not subject.strip() or not body.strip():
        raise InputError("an announcement needs a subject and a text")
    cfg, engine = outbox.cfg, outbox.engine
    audience = f"tutorial group {group}" if group else "everybody in the course"
    letters = [Letter(sid, name, email, f"{cfg.name}: {subject}", kind="announcement", key=group or "course",
                      body=f"{clean_body(body)}\n\n(To {audience}.){_signature(cfg)}")
               for sid, (name, email) in _students(engine, group_students(engine, group)).items()]
    if tutors:
        with Session(engine) as session:
            row = session.get(TutorialGroup, group) if group else None  # the group exists: group_students checked
            query = (select(Person).where(Person.id == row.tutor_id) if row is not None else
                     select(Person).where(Person.role.in_(("tutor", "admin"))).order_by(Person.id))
            staff = session.execute(query).scalars().all()
        letters += [Letter(p.id, p.name, (p.email or "").strip(), f"{cfg.name}: {subject}", kind="announcement",
                           key=group or "course", body=f"{clean_body(body)}\n\n(To {audience}; your copy.)"
                                                        f"{_signature(cfg)}") for p in staff]
    return outbox.send(letters)


def test_mail(outbox: Outbox, address: str) -> SendReport:
    """One message to ``address``, to check the relay set-up."""
    return outbox.send([Letter("test", "", address.strip(), f"{outbox.cfg.name}: test of the mail set-up",
                               kind="test", body=f"The grading system can send mail.{_signature(outbox.cfg)}")])
