"""The per-day late penalty: exact, monotone in lateness, never below 0, full points in time; the rule's
parsing (course defaults under the sheet's keys, group deadlines, the cut-off) with errors naming the file."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from fractions import Fraction
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gradebook.course.late_rules import LateRule, parse_late
from gradebook.errors import ManifestError

BERLIN = ZoneInfo("Europe/Berlin")
DUE = datetime(2026, 11, 4, 10, tzinfo=BERLIN)
shares = st.fractions(min_value=Fraction(1, 100), max_value=1, max_denominator=100)
lateness = st.integers(min_value=-10 * 86_400_000_000, max_value=40 * 86_400_000_000).map(
    lambda us: timedelta(microseconds=us))
graces = st.integers(min_value=0, max_value=120).map(lambda m: timedelta(minutes=m))
points = st.fractions(min_value=0, max_value=100, max_denominator=8)


@given(per_day=shares, grace=graces, a=lateness, b=lateness, pts=points)
def test_the_penalty_is_monotone_in_lateness_and_never_below_zero(per_day, grace, a, b, pts):
    rule = LateRule("per_day", grace, per_day)
    early, late = min(a, b), max(a, b)
    assert rule.counted(pts, early) >= rule.counted(pts, late) >= 0
    assert 0 <= rule.share(late) <= rule.share(early) <= 1


@given(per_day=shares, grace=graces, a=lateness, pts=points)
def test_in_time_or_within_the_grace_counts_full_points(per_day, grace, a, pts):
    rule = LateRule("per_day", grace, per_day)
    within = min(a, grace)
    assert rule.counted(pts, within) == pts and isinstance(rule.counted(pts, within), Fraction)


@given(per_day=shares, days=st.integers(min_value=1, max_value=30), pts=points)
def test_each_started_day_costs_the_share_exactly(per_day, days, pts):
    rule = LateRule("per_day", timedelta(minutes=15), per_day)
    just_into_the_day = timedelta(days=days - 1, microseconds=1) if days > 1 else timedelta(minutes=15, microseconds=1)
    full_day = timedelta(days=days)
    for late_by in (just_into_the_day, full_day):
        assert rule.days_started(late_by) == days
        assert rule.counted(pts, late_by) == pts * max(Fraction(0), 1 - per_day * days)


def test_the_other_policies_and_the_words():
    assert LateRule("zero", timedelta(minutes=15)).share(timedelta(minutes=16)) == 0
    assert LateRule("zero", timedelta(minutes=15)).share(timedelta(minutes=15)) == 1
    assert LateRule("none").share(timedelta(days=9)) == 1
    ten = LateRule("per_day", timedelta(0), Fraction(1, 10), timedelta(days=3))
    assert ten.effect(timedelta(hours=25)) == "2 started day(s) late at -10% each: counts 80% of its points"
    assert ten.words() == ("A hand-in after the deadline loses 10% of that part's points per started day late, never "
                           "below 0. Nothing is accepted later than 3 d after the deadline.")
    assert ten.cutoff_after(DUE) == DUE + timedelta(days=3)


def test_the_sheet_overrides_the_course_key_by_key_and_groups_get_their_deadline():
    course = {"policy": "per_day", "per_day": "10%", "grace_minutes": 15}
    rule = parse_late({"cutoff_days": 7}, course, {"fri": "2026-11-06T12:00", "thu": "+1d"}, {"thu": "+2d", "mon": "+36h"},
                      DUE, "sheet.toml")
    assert (rule.policy, rule.per_day, rule.grace, rule.cutoff) == ("per_day", Fraction(1, 10), timedelta(minutes=15),
                                                                    timedelta(days=7))
    assert rule.deadline_for(DUE, "thu") == DUE + timedelta(days=1)  # the sheet's entry wins
    assert rule.deadline_for(DUE, "mon") == DUE + timedelta(hours=36)  # the course's offset
    assert rule.deadline_for(DUE, "fri") == datetime(2026, 11, 6, 12, tzinfo=BERLIN)
    assert rule.deadline_for(DUE, "other") == DUE and rule.deadline_for(DUE, None) == DUE
    zero = parse_late({"policy": "zero"}, course, {}, {}, DUE, "sheet.toml")
    assert zero.share(timedelta(hours=1)) == 0  # the sheet's policy wins; the course's per_day is not used


@pytest.mark.parametrize("late, deadlines, course_deadlines, message", [
    ({"policy": "per_day"}, {}, {}, "needs per_day"),
    ({"policy": "per_day", "per_day": "150%"}, {}, {}, "at most 100%"),
    ({"policy": "per_day", "per_day": 0.1}, {}, {}, "at most 100%"),
    ({"policy": "halve"}, {}, {}, "policy must be one of none, zero, per_day"),
    ({"cutoff": 3}, {}, {}, "unknown key(s) cutoff"),
    ({"cutoff_days": -1}, {}, {}, "cutoff_days must lie between 0 and 3650"),
    ({}, {"thu": "next week"}, {}, "[deadlines] thu"),
    ({}, {}, {"thu": "2026-11-06T10:00"}, "an offset after each sheet's due date"),
])
def test_a_malformed_rule_is_refused_naming_the_file(late, deadlines, course_deadlines, message):
    with pytest.raises(ManifestError) as err:
        parse_late(late, {}, deadlines, course_deadlines, DUE, "source/s1/sheet.toml")
    assert message in str(err.value) and "source/s1/sheet.toml" in str(err.value)


def test_mlph_toml_gives_every_sheet_its_default(tmp_path: Path):
    from gradebook.course.config import load_config

    (tmp_path / "source" / "s1").mkdir(parents=True)
    (tmp_path / "source" / "s1" / "sheet.toml").write_text(
        'id = "s1"\ndue = "2026-11-04T10:00:00"\ntimezone = "Europe/Berlin"\n'
        '[[task]]\nid = "p"\nkind = "paper"\npoints = 2\n')
    (tmp_path / "mlph.toml").write_text(
        '[course]\ndata_dir = "data"\n[late]\npolicy = "per_day"\nper_day = "1/4"\ncutoff_days = 2\n'
        '[deadlines]\nthu = "+1d"\n[[semester.sheet]]\nid = "s1"\n')
    cfg = load_config(tmp_path)
    for manifest in (cfg.manifest("s1"), cfg.semester[0].manifest):
        assert manifest is not None
        assert (manifest.late.policy, manifest.late.per_day, manifest.late.cutoff) == ("per_day", Fraction(1, 4),
                                                                                      timedelta(days=2))
        assert manifest.late.deadline_for(manifest.due, "thu") == manifest.due + timedelta(days=1)
    assert datetime(2026, 11, 4, 9, tzinfo=timezone.utc) == cfg.manifest("s1").due
