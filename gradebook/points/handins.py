"""The late decision: taken once per hand-in, from the server's time of receipt, and stored with its reason.

:func:`decide_late` is pure (a hand-in's receipt time, the sheet's deadline and late rule
(:mod:`gradebook.course.late_rules`), the student's tutorial group and extension → a :class:`LateDecision`: the
student's deadline, whether it is late, the share of the part's points that counts, the cut-off). The autograder
stores it on ``autograde_result`` (``deadline``, ``late``, ``decision``) when it grades a notebook;
:func:`redecide` stores it again when an extension changes (``mlph redecide`` for a whole sheet), and
:func:`stored_share` applies the sheet's rule to a stored decision. A PDF's decision is taken from its time of
receipt. :func:`cutoff_refusal` is the one refusal of every way in after the sheet's cut-off.
"""
from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from fractions import Fraction
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from gradebook.course.late_rules import LateRule
from gradebook.course.manifest import Manifest
from gradebook.store.models import AutogradeResult, Extension, GroupMembership, Handin, StudentProfile

POLICIES = ("zero", "none", "per_day")


@dataclass(frozen=True)
class LateDecision:
    received_at: datetime | None  # the server's time of receipt (None: unknown, counts as on time)
    deadline: datetime  # the student's: the sheet's due date, their group's, or their extension if later
    grace: timedelta
    policy: str  # "zero", "per_day" or "none" (gradebook.course.late_rules)
    extended: bool
    rule: LateRule = field(default_factory=LateRule, compare=False)
    group: str | None = None  # the tutorial group whose own deadline applies (None: the sheet's due date)

    @property
    def late_by(self) -> timedelta:
        """How long after the deadline (not counting the grace) it arrived; zero or negative: in time."""
        return self.received_at - self.deadline if self.received_at else timedelta(0)

    @property
    def late(self) -> bool:
        """Past the deadline plus the grace period."""
        return self.received_at is not None and self.received_at > self.deadline + self.grace

    @property
    def share(self) -> Fraction:
        """The share of the part's points that counts under the sheet's late rule (1: in full)."""
        return self.rule.share(self.late_by) if self.late else Fraction(1)

    @property
    def counts_zero(self) -> bool:
        return self.late and self.share == 0

    @property
    def cutoff(self) -> datetime | None:
        """After this nothing is accepted from this student (None: no cut-off)."""
        return self.rule.cutoff_after(self.deadline)

    def counted(self, points: Fraction) -> Fraction:
        return points * self.share

    def rule_words(self) -> str:
        """What the late rule did to this hand-in, in words ("" when it is in time)."""
        return self.rule.effect(self.late_by) if self.late else ""

    def text(self, tz: str = "Europe/Berlin") -> str:
        """The decision in words, with times in the course's time zone (stored and shown as such)."""
        zone = ZoneInfo(tz)
        moved = " (extended)" if self.extended else f" (group {self.group})" if self.group else ""
        due = f"{self.deadline.astimezone(zone):%a %d %b %Y, %H:%M %Z}" + moved
        if self.received_at is None:
            return f"deadline {due}; time of receipt unknown, counted as in time"
        got = f"{self.received_at.astimezone(zone):%a %d %b %Y, %H:%M:%S %Z}"
        if not self.late:
            within = " (within the grace period)" if self.received_at > self.deadline else ""
            return f"received {got}, deadline {due}: in time{within}"
        return (f"received {got}, deadline {due}: late by {format_delta(self.late_by)} "
                f"(grace {format_delta(self.grace)}), {self.rule_words()}")


def format_delta(delta: timedelta) -> str:
    """``2 d 3 h 05 min``, ``15 min``, ``40 s``."""
    seconds = int(delta.total_seconds())
    if seconds < 60:
        return f"{seconds} s"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    parts = ([f"{days} d"] if days else []) + ([f"{hours} h"] if hours or days else []) + [f"{minutes:02d} min" if hours or days else f"{minutes} min"]
    return " ".join(parts)


def _utc(when: datetime) -> datetime:
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when.astimezone(timezone.utc)


def decide_late(received_at: datetime | None, manifest: Manifest, extension: datetime | None,
                group: str | None = None) -> LateDecision:
    """The decision for a hand-in received at ``received_at`` (the server's clock, never the student's) from a
    student of tutorial group ``group`` (their group's deadline, if the sheet gives one) with ``extension``."""
    rule = manifest.late
    deadline = _utc(rule.deadline_for(manifest.due, group))
    moved_by = group if group and group in rule.group_deadlines else None
    if extension is not None and _utc(extension) > deadline:
        deadline, extended, moved_by = _utc(extension), True, None
    else:
        extended = False
    return LateDecision(_utc(received_at) if received_at else None, deadline, rule.grace, rule.policy, extended,
                        rule, moved_by)


def stored_share(manifest: Manifest, late: bool | None, deadline: datetime | None,
                 received_at: datetime | None) -> Fraction:
    """The share that counts of a hand-in whose decision is stored (``late``, ``deadline``): the sheet's rule on
    the stored lateness (a hand-in stored as late is at least one started day late)."""
    if not late:
        return Fraction(1)
    least = manifest.late.grace + timedelta(microseconds=1)
    late_by = _utc(received_at) - _utc(deadline) if deadline is not None and received_at is not None else least
    return manifest.late.share(max(late_by, least))


def group_of(session: Session, student: str) -> str | None:
    """The student's current tutorial group (None: in none)."""
    return session.execute(select(func.min(GroupMembership.group_id)).where(
        GroupMembership.student_id == student, GroupMembership.valid_to.is_(None))).scalar_one_or_none()


def current_groups(session: Session, only: Collection[str] | None = None) -> dict[str, str]:
    """student → their current tutorial group (``only``: of these students)."""
    return {sid: gid for sid, gid in session.execute(
        select(GroupMembership.student_id, func.min(GroupMembership.group_id))
        .where(GroupMembership.valid_to.is_(None), *([GroupMembership.student_id.in_(sorted(only))] if only is not None
                                                    else []))
        .group_by(GroupMembership.student_id))}


def extension_of(session: Session, sheet: str, student: str) -> datetime | None:
    return session.execute(select(Extension.until).where(Extension.sheet == sheet, Extension.student_id == student)
                           ).scalar_one_or_none()


def redecide(session: Session, manifest: Manifest, student: str, tz: str = "Europe/Berlin") -> LateDecision | None:
    """Take the decision again for ``student``'s graded hand-in of ``manifest``'s sheet (after an extension
    changed) and store it; None when there is no graded hand-in yet."""
    row = session.execute(select(AutogradeResult).where(AutogradeResult.sheet == manifest.id,
                                                        AutogradeResult.student_id == student)).scalar_one_or_none()
    if row is None:
        return None
    decision = decide_late(row.submitted_at, manifest, extension_of(session, manifest.id, student),
                           group_of(session, student))
    store_decision(row, decision, tz)
    return decision


def store_decision(row: AutogradeResult, decision: LateDecision, tz: str = "Europe/Berlin") -> None:
    """Store ``decision`` on the result row, and in the result the feedback shows (what counts)."""
    import json

    row.deadline = decision.deadline
    row.late = decision.late
    row.decision = decision.text(tz)
    try:
        result = json.loads(row.result_json or "{}")
    except ValueError:
        return
    if isinstance(result, dict) and row.score is not None:
        result.update(decision_fields(decision, row.score, tz))
        row.result_json = json.dumps(result, sort_keys=True)


# --- the intake's records (every hand-in, accepted or not) ---------------------------------------------------

ACCEPTED, INVALID, HELD, REFUSED = "accepted", "invalid", "held", "refused"


@dataclass(frozen=True)
class HandinRecord:
    """One hand-in as the intake saw it (plain data; stored as a ``handin`` row)."""

    sheet: str
    student_id: str
    kind: str  # notebook | paper
    source: str  # exchange | web | zip
    received_at: datetime
    status: str  # accepted | invalid | held | refused
    reason: str = ""
    sha256: str | None = None
    size: int | None = None
    original_name: str | None = None
    stored_path: str | None = None
    entry: str | None = None
    uploaded_by: str | None = None
    handin_id: int | None = None


def record_handins(engine: Engine, records: list[HandinRecord]) -> list[HandinRecord]:
    """Store the records in one transaction; the records with their ids."""
    from dataclasses import asdict, replace

    from gradebook.points.grading_queue import enqueue
    from gradebook.store.db import atomic

    out = []
    with atomic(engine) as session:
        for rec in records:
            row = Handin(**{k: v for k, v in asdict(rec).items() if k != "handin_id"})
            row.reason = rec.reason or None
            row.received_at = _utc(rec.received_at)  # SQLite keeps no zone: every stored time is UTC
            session.add(row)
            session.flush()
            if rec.kind == "notebook" and rec.status in (ACCEPTED, INVALID):  # its grading, in the same transaction
                enqueue(session, rec.sheet, rec.student_id, handin_id=row.id, received_at=row.received_at)
            out.append(replace(rec, handin_id=row.id))
    return out


def latest_handins(engine: Engine, sheet: str, kind: str = "notebook") -> dict[str, HandinRecord]:
    """Per student, the newest hand-in of ``sheet`` that is accepted or invalid (held and refused ones never
    replace a hand-in: they were not the student's, or did not arrive)."""
    with Session(engine) as session:
        rows = session.execute(select(Handin).where(Handin.sheet == sheet, Handin.kind == kind,
                                                    Handin.status.in_((ACCEPTED, INVALID)))
                               .order_by(Handin.received_at, Handin.id)).scalars().all()
    latest: dict[str, HandinRecord] = {}
    for r in rows:
        latest[r.student_id] = HandinRecord(r.sheet, r.student_id, r.kind, r.source, _utc(r.received_at), r.status,
                                            r.reason or "", r.sha256, r.size, r.original_name, r.stored_path,
                                            r.entry, r.uploaded_by, r.id)
    return latest


def seen_entries(engine: Engine, sheet: str) -> set[tuple[str, str]]:
    """(entry, status) of every exchange/zip entry of ``sheet`` recorded already (a rerun skips them)."""
    with Session(engine) as session:
        return {(str(e), s) for e, s in session.execute(select(Handin.entry, Handin.status)
                                                   .where(Handin.sheet == sheet, Handin.entry.is_not(None)))}


def roster_ids(engine: Engine) -> set[str] | None:
    """The ids on the roster (students with a profile: imported by `mlph students import`); None without a roster."""
    from gradebook.course.sheets_state import roster_ids as roster_of

    with Session(engine) as session:
        return roster_of(session) or None


def logins(engine: Engine) -> dict[str, str]:
    """login on the course's Jupyter server → roster id, for the students whose login differs from their id."""
    with Session(engine) as session:
        return {str(login): sid for sid, login in session.execute(
            select(StudentProfile.student_id, StudentProfile.login).where(StudentProfile.login.is_not(None)))}


def decision_for(engine: Engine, manifest: Manifest, student: str, received_at: datetime | None) -> LateDecision:
    """The decision for a hand-in about to be stored (reads the student's extension)."""
    with Session(engine) as session:
        return decide_late(received_at, manifest, extension_of(session, manifest.id, student),
                           group_of(session, student))


def decisions_for(engine: Engine, manifest: Manifest, received: dict[str, datetime | None]) -> dict[str, LateDecision]:
    """:func:`decision_for` for several students (student → time of receipt), their extensions and groups read
    at once."""
    with Session(engine) as session:
        until = {sid: when for sid, when in session.execute(
            select(Extension.student_id, Extension.until).where(Extension.sheet == manifest.id,
                                                                Extension.student_id.in_(list(received))))}
        groups = current_groups(session)
    return {sid: decide_late(at, manifest, until.get(sid), groups.get(sid)) for sid, at in received.items()}


def decision_fields(decision: LateDecision, score: str, tz: str) -> dict[str, object]:
    """What a result carries of its decision: shown by the feedback, ``--watch`` and every page."""
    return {"deadline": decision.deadline.isoformat(), "late": decision.late, "decision": decision.text(tz),
            "counted_score": str(decision.counted(Fraction(score)))}


def cutoff_refusal(decision: LateDecision, sheet: str, tz: str = "Europe/Berlin") -> str | None:
    """Why a hand-in of ``sheet`` with this decision is refused: it came after the sheet's cut-off (None: it
    may be taken in). The one words of every way in (web, Hub, exchange, LMS zip) and of the closed form."""
    cutoff = decision.cutoff
    if cutoff is None or decision.received_at is None or decision.received_at <= cutoff:
        return None
    zone = ZoneInfo(tz)
    return (f"{sheet} takes no more hand-ins: its cut-off was {cutoff.astimezone(zone):%a %d %b %Y, %H:%M %Z} "
            f"(deadline {decision.deadline.astimezone(zone):%a %d %b %Y, %H:%M %Z} plus "
            f"{format_delta(cutoff - decision.deadline)})")


def late_refusal(engine: Engine, manifest: Manifest, student: str, received_at: datetime,
                 tz: str = "Europe/Berlin") -> str | None:
    """:func:`cutoff_refusal` for ``student``'s hand-in received at ``received_at`` (reads their extension and group)."""
    if manifest.late.cutoff is None:
        return None
    return cutoff_refusal(decision_for(engine, manifest, student, received_at), manifest.id, tz)
