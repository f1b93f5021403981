"""What a student may see of a graded hand-in, and when: the one rule for the web pages, the feedback
files and the Hub's fetch-feedback, so that grade-on-submit is no oracle on the hidden tests.

Three phases, decided by :func:`phase` from the hand-in's time of receipt, the student's deadline
(extension included) plus the grace period, and now:

- ``before_deadline``: the visible checks' full feedback at once (which check, the kind of failure, the
  expected value the notebook shows) and nothing that depends on a hidden check: no points, no status
  beyond "checked", no hidden outcome, no exception name or time-out unless it stopped a *visible*
  check. Two hand-ins that differ only in their hidden checks give the same bytes.
- ``after_deadline`` (a hand-in made in time, once the deadline and the grace period have passed): the
  points and the outcome of every test cell, hidden ones as "a hidden test failed" per cell (never per
  check), and an exception's name only where it stopped a visible check.
- ``late`` (a hand-in made after the deadline): as before the deadline, forever, so that hidden inputs
  cannot be probed after the deadline (the course repeats every year); its points are what the late
  policy counts, nothing more.

The functions here are pure: the staff's full result goes in, the student's view (plain data) comes out.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from autograder.grading.messages import cell_message

BEFORE, AFTER, LATE = "before_deadline", "after_deadline", "late"
# Statuses decided before any of the student's code ran (the intake's, the missing hand-in's): never hidden.
INTAKE_STATUSES = ("invalid", "missing")
_STOPPED = ("error", "timeout", "crashed", "not_run")


def _utc(when: datetime) -> datetime:
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when.astimezone(timezone.utc)


def phase(submitted_at: datetime | None, deadline: datetime, grace: timedelta, now: datetime) -> str:
    """Which view a student gets of a hand-in received at ``submitted_at``; ``deadline`` is the student's
    (extension included). Hidden outcomes appear only after the deadline *and* the grace period, when no
    further hand-in can count as in time, and only for a hand-in made by the deadline."""
    deadline = _utc(deadline)
    if submitted_at is not None and _utc(submitted_at) > deadline:
        return LATE
    return AFTER if _utc(now) > deadline + grace else BEFORE


def _visible_checks(cell: dict[str, Any]) -> list[dict[str, str]]:
    return [{k: str(v) for k, v in ch.items() if k in ("name", "outcome", "expected")}
            for ch in cell.get("checks") or [] if isinstance(ch, dict) and not ch.get("hidden")]


def _stopped_visibly(cell: dict[str, Any], visible: list[dict[str, str]]) -> bool:
    """The cell's error / time-out / stop is shown only when it kept a visible check from being recorded
    (then it happened before that check, whatever the hidden part does)."""
    return cell.get("status") in _STOPPED and (not visible or any(c["outcome"] == "not_recorded" for c in visible))


def _message(cell: dict[str, Any], status: str, visible: list[dict[str, str]]) -> str:
    """The stored message where the cell stopped visibly (it names the answer cell that caused it), else ours
    from the visible checks only."""
    if status in _STOPPED and status == cell.get("status") and cell.get("message"):
        return str(cell["message"])
    return cell_message(status, str(cell.get("ename", "")), visible)


def _visible_cell(cell: dict[str, Any]) -> dict[str, Any]:
    visible = _visible_checks(cell)
    if _stopped_visibly(cell, visible):
        status = str(cell.get("status"))
    elif visible and all(c["outcome"] == "ok" for c in visible):
        status = "passed"
    elif not visible:
        status = "hidden_only"
    else:
        status = "failed"
    message = "" if status in ("passed", "hidden_only") else _message(cell, status, visible)
    if status == "hidden_only":
        message = "this test has hidden checks only: its result is shown after the deadline"
    return {"grade_id": str(cell.get("grade_id", "")), "label": str(cell.get("label", cell.get("grade_id", ""))),
            "status": status, "message": message, "checks": visible}


def _after_cell(cell: dict[str, Any]) -> dict[str, Any]:
    visible = _visible_checks(cell)
    hidden_failed = any(ch.get("hidden") and ch.get("outcome") != "ok" for ch in cell.get("checks") or []
                        if isinstance(ch, dict))
    if _stopped_visibly(cell, visible):
        status = str(cell.get("status"))
    elif cell.get("status") == "passed":
        status = "passed"
    else:
        status = "failed"  # a visible check failed, or the hidden part failed, stopped or timed out
    if status in _STOPPED:
        message = _message(cell, status, visible)
    elif status == "failed":
        parts = [cell_message("failed", "", visible)] if any(c["outcome"] != "ok" for c in visible) else []
        if hidden_failed or not parts:
            parts.append("a hidden test failed")
        message = "; ".join(parts)
    else:
        message = ""
    return {"grade_id": str(cell.get("grade_id", "")), "label": str(cell.get("label", cell.get("grade_id", ""))),
            "status": status, "message": message, "checks": visible,
            "points": str(cell.get("points", "0")), "max_points": str(cell.get("max_points", "0"))}


def student_result(result: dict[str, Any], view: str, late_counts_zero: bool = False) -> dict[str, Any]:
    """The student's view (``view``: one of :data:`BEFORE`, :data:`AFTER`, :data:`LATE`) of a stored result;
    ``late_counts_zero``: the sheet's late policy counts this late hand-in as 0 (then that is shown)."""
    out: dict[str, Any] = {k: result[k] for k in ("student", "sheet", "submitted_at", "deadline", "decision", "late")
                           if k in result}
    out["phase"] = view
    out["max_score"] = str(result.get("max_score", "0"))
    status = str(result.get("status", ""))
    if status in INTAKE_STATUSES:
        out.update(status=status, reason=str(result.get("reason", "")), cells=[], notes=[])
        return out
    out["notes"] = [str(n) for n in result.get("student_notes", [])]
    cells = [c for c in result.get("cells") or [] if isinstance(c, dict)]
    if view == AFTER:
        out.update(status=status, reason="", score=str(result.get("score", "0")),
                   counted_score=str(result.get("counted_score", result.get("score", "0"))),
                   cells=[_after_cell(c) for c in cells])
    else:
        shown = [_visible_cell(c) for c in cells]
        out.update(status="checked", reason="", cells=shown,
                   visible_passed=sum(1 for c in shown if c["status"] == "passed"),
                   visible_total=sum(1 for c in shown if c["status"] != "hidden_only"))
        if view == LATE and late_counts_zero:
            out["counted_score"] = "0"
    return out
