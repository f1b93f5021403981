"""The late decision: taken once per hand-in, from the server's time of receipt, and stored with its reason.

:func:`decide_late` is pure (a hand-in's receipt time, the sheet's deadline and ``[late]`` policy, the
student's extension → a :class:`LateDecision`). The autograder stores it on ``autograde_result``
(``deadline``, ``late``, ``decision``) when it grades a hand-in, and :func:`redecide` stores it again when
an extension changes; every front end (feedback, ``--watch``, ``mlph status``, exports, report, web) shows
the stored decision instead of deciding again.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from gradebook.course.manifest import Manifest
from gradebook.store.models import AutogradeResult, Extension, Handin, StudentProfile

POLICIES = ("zero", "none")


@dataclass(frozen=True)
class LateDecision:
    received_at: datetime | None  # the server's time of receipt (None: unknown, counts as on time)
    deadline: datetime  # the sheet's due date, or the student's extension if later
    grace: timedelta
    policy: str  # "zero": a late hand-in counts 0; "none": lateness is shown, never penalised
    extended: bool

    @property
    def late_by(self) -> timedelta:
        """How long after the deadline (not counting the grace) it arrived; zero or negative: in time."""
        return self.received_at - self.deadline if self.received_at else timedelta(0)

    @property
    def late(self) -> bool:
        """Past the deadline plus the grace period."""
        return self.received_at is not None and self.received_at > self.deadline + self.grace

    @property
    def counts_zero(self) -> bool:
        return self.late and self.policy == "zero"

    def text(self, tz: str = "Europe/Berlin") -> str:
        """The decision in words, with times in the course's time zone (stored and shown as such)."""
        zone = ZoneInfo(tz)
        due = f"{self.deadline.astimezone(zone):%a %d %b %Y, %H:%M %Z}" + (" (extended)" if self.extended else "")
        if self.received_at is None:
            return f"deadline {due}; time of receipt unknown, counted as in time"
        got = f"{self.received_at.astimezone(zone):%a %d %b %Y, %H:%M:%S %Z}"
        if not self.late:
            within = " (within the grace period)" if self.received_at > self.deadline else ""
            return f"received {got}, deadline {due}: in time{within}"
        rule = ("counts 0 points under the sheet's late policy" if self.policy == "zero"
                else "counted in full (the sheet has no late penalty)")
        return (f"received {got}, deadline {due}: late by {format_delta(self.late_by)} "
                f"(grace {format_delta(self.grace)}), {rule}")


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


def decide_late(received_at: datetime | None, manifest: Manifest, extension: datetime | None) -> LateDecision:
    """The decision for a hand-in received at ``received_at`` (the server's clock, never the student's)."""
    policy = str(manifest.late_policy.get("policy", "none"))
    deadline = _utc(manifest.due)
    if extension is not None and _utc(extension) > deadline:
        deadline, extended = _utc(extension), True
    else:
        extended = False
    grace = timedelta(minutes=float(manifest.late_policy.get("grace_minutes", 0)))
    return LateDecision(_utc(received_at) if received_at else None, deadline, grace, policy, extended)


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
    decision = decide_late(row.submitted_at, manifest, extension_of(session, manifest.id, student))
    store_decision(row, decision, tz)
    return decision


def store_decision(row: AutogradeResult, decision: LateDecision, tz: str = "Europe/Berlin") -> None:
    row.deadline = decision.deadline
    row.late = decision.late
    row.decision = decision.text(tz)


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
        return decide_late(received_at, manifest, extension_of(session, manifest.id, student))


def decision_fields(decision: LateDecision, score: str, tz: str) -> dict[str, object]:
    """What a result carries of its decision: shown by the feedback, ``--watch`` and every page."""
    from fractions import Fraction

    return {"deadline": decision.deadline.isoformat(), "late": decision.late, "decision": decision.text(tz),
            "counted_score": "0" if decision.counts_zero else str(Fraction(score))}
