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

from sqlalchemy import select
from sqlalchemy.orm import Session

from .manifest import Manifest
from .models import AutogradeResult, Extension

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
