"""Late rules: what a late hand-in counts, when nothing is accepted any more, and whose deadline is later.

A sheet's ``[late]`` table in ``sheet.toml`` (key by key over the course's ``[late]`` in ``mlph.toml``):

- ``policy``: ``"none"`` (lateness is shown, never penalised), ``"zero"`` (a late hand-in counts 0) or
  ``"per_day"`` (a late hand-in loses ``per_day`` of its points per started day after the deadline, never
  below 0);
- ``grace_minutes``: a hand-in within this time after the deadline is in time;
- ``per_day``: the share lost per started day (``"10%"`` or ``"1/10"``), for ``policy = "per_day"``;
- ``cutoff_days``: nothing is accepted later than this many days after the student's own deadline
  (extension or group deadline included); without it, hand-ins are accepted at any time.

The penalty applies to the **part that was late**: a late notebook to the notebook points, a late PDF of the
paper part to the paper points; a part handed in in time keeps its points.

``[deadlines]`` (sheet.toml or mlph.toml) gives tutorial groups that meet later their own deadline: a group id
with an offset after the sheet's due date (``"+2d"``, ``"+36h"``, ``"+90min"``) or, in sheet.toml only, a
date (``"2026-11-06T10:00"``, in the sheet's time zone). A sheet's entry for a group wins over the course's.
An extension later than that deadline moves it further for one student.

Pure: parsing and arithmetic on exact numbers (:class:`fractions.Fraction`, whole microseconds).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any, Mapping

from gradebook.errors import ManifestError

POLICIES = ("none", "zero", "per_day")
LATE_KEYS = ("policy", "grace_minutes", "per_day", "cutoff_days")
DAY = timedelta(days=1)
_US_PER_DAY = 86_400_000_000
_OFFSET = re.compile(r"^\+\s*(\d+(?:\.\d+)?)\s*(d|h|min)$")
_UNIT = {"d": timedelta(days=1), "h": timedelta(hours=1), "min": timedelta(minutes=1)}


def _share(value: object, where: str) -> Fraction:
    text = str(value).strip()
    try:
        share = Fraction(text[:-1].strip()) / 100 if text.endswith("%") else Fraction(text)
    except (ValueError, ZeroDivisionError) as exc:
        raise ManifestError(f"{where}: per_day must be a share such as \"10%\" or \"1/10\", not {value!r}") from exc
    if isinstance(value, float) or not 0 < share <= 1:
        raise ManifestError(f"{where}: per_day must be a share above 0 and at most 100% (\"10%\"), not {value!r}")
    return share


def _days(value: object, key: str, where: str) -> timedelta:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ManifestError(f"{where}: {key} must be a number, not {value!r}")
    try:
        amount = Fraction(str(value).replace(",", "."))
    except (ValueError, ZeroDivisionError) as exc:
        raise ManifestError(f"{where}: {key} must be a number, not {value!r}") from exc
    if amount < 0 or amount > 3650:
        raise ManifestError(f"{where}: {key} must lie between 0 and 3650, not {value!r}")
    return timedelta(microseconds=int(amount * (_US_PER_DAY if key == "cutoff_days" else 60_000_000)))


@dataclass(frozen=True)
class LateRule:
    """A sheet's late rule (see the module doc); ``group_deadlines``: tutorial group → its deadline."""

    policy: str = "none"
    grace: timedelta = timedelta(0)
    per_day: Fraction = Fraction(0)
    cutoff: timedelta | None = None  # after the student's own deadline; None: no cut-off
    group_deadlines: Mapping[str, datetime] = field(default_factory=dict)

    def days_started(self, late_by: timedelta) -> int:
        """Started days after the deadline of a hand-in late by ``late_by`` (0 when in time, grace included)."""
        if late_by <= self.grace:
            return 0
        micro = late_by // timedelta(microseconds=1)
        return -(-micro // _US_PER_DAY)

    def share(self, late_by: timedelta) -> Fraction:
        """The share of the late part's points that counts (1 in time; never below 0)."""
        days = self.days_started(late_by)
        if days == 0 or self.policy == "none":
            return Fraction(1)
        if self.policy == "zero":
            return Fraction(0)
        return max(Fraction(0), 1 - self.per_day * days)

    def counted(self, points: Fraction, late_by: timedelta) -> Fraction:
        """What ``points`` of a part handed in ``late_by`` after the deadline count."""
        return points * self.share(late_by)

    def effect(self, late_by: timedelta) -> str:
        """What the rule does to a part handed in ``late_by`` after the deadline, in words ("" in time)."""
        days = self.days_started(late_by)
        if days == 0:
            return ""
        if self.policy == "per_day":
            return (f"{days} started day(s) late at -{_pct(self.per_day)} each: counts {_pct(self.share(late_by))} "
                    "of its points")
        return ("counts 0 points under the sheet's late policy" if self.policy == "zero"
                else "counted in full (the sheet has no late penalty)")

    def cutoff_after(self, deadline: datetime) -> datetime | None:
        """The time after which nothing is accepted from a student whose deadline is ``deadline``."""
        return deadline + self.cutoff if self.cutoff is not None else None

    def deadline_for(self, due: datetime, group: str | None) -> datetime:
        """The deadline of a student in tutorial group ``group`` (the sheet's due date if it has none)."""
        return self.group_deadlines.get(group, due) if group else due

    def words(self) -> str:
        """The rule in one sentence, for the sheet's page."""
        grace = f" (plus {int(self.grace.total_seconds() // 60)} min grace)" if self.grace else ""
        rule = {"none": "is marked late and counts in full",
                "zero": "counts 0 points",
                "per_day": f"loses {_pct(self.per_day)} of that part's points per started day late, never below 0"}
        text = f"A hand-in after the deadline{grace} {rule[self.policy]}."
        if self.cutoff is not None:
            text += f" Nothing is accepted later than {_span(self.cutoff)} after the deadline."
        return text


def _pct(share: Fraction) -> str:
    value = share * 100
    return f"{value.numerator}%" if value.denominator == 1 else f"{float(value):.4g}%"


def _span(delta: timedelta) -> str:
    days, rest = divmod(int(delta.total_seconds()), 86400)
    hours = rest // 3600
    return " ".join(p for p in (f"{days} d" if days else "", f"{hours} h" if hours else "") if p) or \
        f"{int(delta.total_seconds() // 60)} min"


def parse_offset(value: object, due: datetime | None, tz: Any, where: str) -> datetime | timedelta:
    """A group's deadline: ``"+2d"`` / ``"+36h"`` / ``"+90min"`` (an offset), or a date when ``due`` is given."""
    text = value.isoformat() if isinstance(value, datetime) else str(value).strip()
    if m := _OFFSET.match(text):
        return timedelta(microseconds=int(Fraction(m.group(1)) * (_UNIT[m.group(2)] // timedelta(microseconds=1))))
    if due is None:
        raise ManifestError(f"{where}: a group's deadline in mlph.toml is an offset after each sheet's due date "
                            f"(\"+2d\", \"+36h\", \"+90min\"), not {value!r}")
    try:
        when = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ManifestError(f"{where}: a group's deadline must be an offset (\"+2d\") or an ISO date, "
                            f"not {value!r}") from exc
    return when.replace(tzinfo=tz) if when.tzinfo is None else when


def parse_late(sheet: Mapping[str, Any], course: Mapping[str, Any], deadlines: Mapping[str, Any],
               course_deadlines: Mapping[str, Any], due: datetime, where: str) -> LateRule:
    """The sheet's rule: its ``[late]`` key by key over the course's, its ``[deadlines]`` over the course's."""
    raw = {**course, **sheet}
    unknown = set(raw) - set(LATE_KEYS)
    if unknown:
        raise ManifestError(f"{where}: [late] has unknown key(s) {', '.join(sorted(unknown))} "
                            f"(known: {', '.join(LATE_KEYS)})")
    policy = str(raw.get("policy", "none"))
    if policy not in POLICIES:
        raise ManifestError(f"{where}: [late] policy must be one of {', '.join(POLICIES)}, not {policy!r}")
    if policy == "per_day" and "per_day" not in raw:
        raise ManifestError(f"{where}: [late] policy \"per_day\" needs per_day = \"10%\" (the share lost per day)")
    per_day = _share(raw["per_day"], f"{where}: [late]") if policy == "per_day" else Fraction(0)
    grace = _days(raw.get("grace_minutes", 0), "grace_minutes", f"{where}: [late]")
    cutoff = _days(raw["cutoff_days"], "cutoff_days", f"{where}: [late]") if "cutoff_days" in raw else None
    groups: dict[str, datetime] = {}
    for source, table in (("mlph.toml", course_deadlines), ("sheet.toml", deadlines)):
        if not isinstance(table, Mapping):
            raise ManifestError(f"{where}: [deadlines] must be a table of group = deadline")
        for group, value in table.items():
            moved = parse_offset(value, due if source == "sheet.toml" else None, due.tzinfo,
                                 f"{where}: [deadlines] {group}")
            groups[str(group)] = due + moved if isinstance(moved, timedelta) else moved
    return LateRule(policy, grace, per_day, cutoff, groups)
