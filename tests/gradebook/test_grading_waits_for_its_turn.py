"""The per-sheet limit on graded runs: handing in is always possible, grading waits for its turn; the hand-in
that counts is always graded once the deadline has passed; late hand-ins never get round the limit."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from gradebook.course.manifest import GradingRate
from gradebook.points.grading_turn import grading_turn

DEADLINE = datetime(2026, 12, 9, 10, tzinfo=timezone.utc)
GRACE = timedelta(minutes=15)
RATE = GradingRate(minutes_between=10, max_runs=30)


def test_one_graded_run_every_ten_minutes_before_the_deadline() -> None:
    now = DEADLINE - timedelta(hours=5)
    assert grading_turn(RATE, 0, None, now, DEADLINE, GRACE, now) == now
    last = now - timedelta(minutes=3)
    assert grading_turn(RATE, 1, last, now, DEADLINE, GRACE, now) == last + timedelta(minutes=10)


def test_after_the_last_run_an_in_time_handin_waits_for_the_deadline_and_is_then_graded() -> None:
    now = DEADLINE - timedelta(hours=1)
    turn = grading_turn(RATE, 30, now - timedelta(hours=2), now, DEADLINE, GRACE, now)
    assert turn == DEADLINE + GRACE + timedelta(microseconds=1)
    after = DEADLINE + GRACE + timedelta(seconds=1)
    assert grading_turn(RATE, 30, now, now, DEADLINE, GRACE, after) == after


def test_a_late_handin_counts_against_the_limit_and_beyond_it_is_never_graded() -> None:
    late = DEADLINE + timedelta(days=2)
    assert grading_turn(RATE, 5, late - timedelta(minutes=1), late, DEADLINE, GRACE, late) == late + timedelta(minutes=9)
    assert grading_turn(RATE, 30, None, late, DEADLINE, GRACE, late) is None


@given(runs=st.integers(0, 40), since=st.integers(0, 120), before=st.integers(-600, 600))
def test_no_two_graded_runs_closer_than_the_interval_before_the_reveal(runs: int, since: int, before: int) -> None:
    now = DEADLINE + timedelta(minutes=before)
    last = now - timedelta(minutes=since)
    turn = grading_turn(RATE, runs, last, now, DEADLINE, GRACE, now)
    if turn is None:
        return
    assert turn >= now
    if turn <= DEADLINE + GRACE:  # before the hidden results are shown, the limit holds
        assert runs < RATE.max_runs and turn >= last + timedelta(minutes=10)
