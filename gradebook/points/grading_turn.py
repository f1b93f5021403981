"""When a hand-in is graded: the per-sheet limit on graded runs (``[grading]`` in sheet.toml).

Handing in is always possible; grading waits for the student's turn: at most one graded run every
``minutes_between`` minutes and ``max_runs`` in all, counted over the student's hand-ins of the sheet, late
ones included (a late hand-in shows the visible checks only, and is no way round the limit). The one
exception: once the deadline and the grace period have passed, the hand-in made in time that counts is
graded at once, whatever the count, so that its points are always there. Pure: the numbers in, a time out.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from gradebook.course.manifest import GradingRate
from gradebook.points.handins import LateDecision

KEPT = "kept"  # the hand-in is kept, not graded: one made in time counts (see :func:`kept_in_time`)


def _utc(when: datetime) -> datetime:
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when.astimezone(timezone.utc)


def grading_turn(rate: GradingRate, runs: int, last_run_at: datetime | None, received_at: datetime | None,
                 deadline: datetime, grace: timedelta, now: datetime) -> datetime | None:
    """The earliest time the hand-in received at ``received_at`` may be graded (``now`` or later), or None
    when it is never graded (a late hand-in beyond the limit). ``runs``/``last_run_at``: the student's graded
    runs of this sheet so far; ``deadline``: the student's (extension included)."""
    now, reveal = _utc(now), _utc(deadline) + grace
    in_time = received_at is None or _utc(received_at) <= reveal
    after_reveal = reveal + timedelta(microseconds=1)
    if in_time and now >= after_reveal:
        return now  # the hand-in that counts, after the deadline: always graded
    if runs >= rate.max_runs:
        return after_reveal if in_time else None
    turn = _utc(last_run_at) + timedelta(minutes=rate.minutes_between) if last_run_at is not None else now
    if in_time:
        turn = min(turn, after_reveal)
    return max(turn, now)


def kept_in_time(counts: str, new_is_late: bool, stored_late: bool | None, stored_status: str | None) -> bool:
    """Under the sheet's rule ``counts = "last_in_time"`` (mlph.toml, the default) a late hand-in does not
    replace a graded hand-in made in time: it is kept (saved, listed) but neither graded nor counted."""
    return (counts == "last_in_time" and new_is_late and stored_late is False
            and stored_status in ("graded", "timeout", "crashed", "invalid", "missing"))


def when_graded(counts: str, rate: GradingRate, runs: int, last_run_at: datetime | None, stored_late: bool | None,
                stored_status: str | None, received_at: datetime | None, decision: LateDecision,
                now: datetime) -> datetime | str | None:
    """The one answer the grader and the student's page give for a hand-in (``decision``: its late decision;
    ``stored_*``: the graded result it would replace): :data:`KEPT`, None (never graded), or when it is graded."""
    if kept_in_time(counts, decision.late, stored_late, stored_status):
        return KEPT
    return grading_turn(rate, runs, last_run_at, received_at, decision.deadline, decision.grace, now)
