"""Per-student feedback (HTML): the hand-in's time, deadline and late decision, and each test with its result
and our message, as the student may see it (:mod:`.visibility`: before the deadline, the visible checks only).

Built from the scored result only, never from the executed notebook; every message in it comes from our
templates (:mod:`.messages`), so no hidden test source, input or value can appear in it, whatever the
student's code did in its kernel. Every value is escaped; the page has no script.
"""
from __future__ import annotations

import html
from datetime import datetime, timezone
from fractions import Fraction
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from autograder.grading.visibility import AFTER, INTAKE_STATUSES, LATE, phase, student_result
from gradebook.course.manifest import Manifest

_STYLE = """body{font-family:system-ui,sans-serif;max-width:56rem;margin:2rem auto;color:#222;line-height:1.4}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.4rem;text-align:left;vertical-align:top}
code{background:#f3f3f3;padding:0 .2rem}.passed{color:#17702b}.failed,.error,.timeout,.not_run,.crashed{color:#a61b1b}
.late{background:#fff3cd;padding:.5rem;border-left:4px solid #c77c02}.ok{background:#e8f5e9;padding:.5rem;border-left:4px solid #2e7d32}"""
STATUS_WORDS = {"passed": "passed", "failed": "failed", "error": "error", "timeout": "timed out", "not_run": "not run",
                "crashed": "kernel died", "hidden_only": "after the deadline"}


def fmt_points(points: str) -> str:
    value = Fraction(points)
    return str(value.numerator) if value.denominator == 1 else f"{float(value):g}"


def _code_spans(text: str) -> str:
    """Escape ``text``, showing `backticked` parts as code."""
    parts = html.escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def _when(iso: str | None, tz: str) -> str:
    if not iso:
        return "unknown"
    return f"{datetime.fromisoformat(iso).astimezone(ZoneInfo(tz)):%a %d %b %Y, %H:%M %Z}"


def student_view(result: dict[str, Any], manifest: Manifest, now: datetime | None = None) -> dict[str, Any]:
    """The student's view of ``result`` at ``now`` (:mod:`.visibility`): the phase from the stored deadline
    (extension included), the sheet's grace period and the time of receipt."""
    grace = manifest.late.grace
    deadline = datetime.fromisoformat(result["deadline"]) if result.get("deadline") else manifest.due
    submitted = datetime.fromisoformat(result["submitted_at"]) if result.get("submitted_at") else None
    view = phase(submitted, deadline, grace, now or datetime.now(timezone.utc))
    late_zero = bool(result.get("late")) and manifest.late.policy == "zero"
    return student_result(result, view, late_counts_zero=late_zero)


def _points_line(view: dict[str, Any]) -> str:
    if view["phase"] == AFTER:
        score, counted = view["score"], view["counted_score"]
        points = f"<b>{fmt_points(counted)} / {fmt_points(view['max_score'])}</b> points"
        if Fraction(counted) != Fraction(score):
            points += f" counted (the tests below earned {fmt_points(score)}; reduced by the sheet's late rule)"
        return f"<p>Autograded part: {points} — {html.escape(view['status'].replace('_', ' '))}.</p>"
    if view["phase"] == LATE:
        counted = ("; it counts <b>0</b> points under the sheet's late policy" if view.get("counted_score") == "0"
                   else "")
        return (f"<p>Visible checks: <b>{view['visible_passed']} of {view['visible_total']}</b> tests pass. Handed in "
                f"after the deadline: hidden tests are never shown for a late hand-in{counted}.</p>")
    return (f"<p>Visible checks: <b>{view['visible_passed']} of {view['visible_total']}</b> tests pass. Points and "
            "the hidden tests' results are shown after the deadline.</p>")


def _header(view: dict[str, Any], manifest: Manifest, tz: str) -> str:
    lines = [f"<p>Student <b>{html.escape(view['student'])}</b> — handed in: {html.escape(_when(view.get('submitted_at'), tz))}; "
             f"deadline: {html.escape(_when(view.get('deadline') or manifest.due.isoformat(), tz))}.</p>"]
    if view.get("decision"):
        cls = "late" if view.get("late") else "ok"
        lines.append(f"<p class='{cls}'>{html.escape(view['decision'])}</p>")
    if view["status"] in INTAKE_STATUSES:
        lines.append(f"<p>Autograded part: not graded ({html.escape(view['status'])}).</p>")
    else:
        lines.append(_points_line(view))
    if view.get("reason"):
        lines.append(f"<p><b>Note:</b> {_code_spans(view['reason'])}</p>")
    notes = "".join(f"<li>{_code_spans(n)}</li>" for n in view.get("notes", []))
    return "".join(lines) + (f"<ul>{notes}</ul>" if notes else "")


def fragment(view: dict[str, Any], manifest: Manifest, tz: str = "Europe/Berlin") -> str:
    """The student's view (:func:`student_view`) as an HTML fragment (escaped throughout), for the file and
    the web page alike."""
    task_of = {gid: t.title for t in manifest.notebook_tasks for gid in t.tests}
    with_points = view["phase"] == AFTER

    def points(c: dict[str, Any]) -> str:
        return f"<td>{fmt_points(c['points'])} / {fmt_points(c['max_points'])}</td>" if with_points else ""

    rows = "".join(
        f"<tr><td>{html.escape(task_of.get(c['grade_id'], ''))}</td><td>{_code_spans(c.get('label', c['grade_id']))}</td>"
        f"<td class='{html.escape(c['status'])}'>{html.escape(STATUS_WORDS.get(c['status'], c['status']))}</td>"
        f"{points(c)}<td>{_code_spans(c['message'])}</td></tr>"
        for c in view["cells"])
    head = "<th>Points</th>" if with_points else ""
    return (_header(view, manifest, tz)
            + (f"<table><tr><th>Task</th><th>Test</th><th>Result</th>{head}<th>Message</th></tr>{rows}</table>"
               if rows else "")
            + "<p>Hidden tests run on every hand-in; their results are shown per test after the deadline, for a "
              "hand-in made in time, and their inputs and expected values never. Pen-and-paper tasks are graded by "
              "your tutor and are not part of this page.</p>")


def render(view: dict[str, Any], manifest: Manifest, tz: str = "Europe/Berlin") -> str:
    return (f"<!doctype html><html><head><meta charset='utf-8'>"
            "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; style-src 'unsafe-inline'\">"
            f"<title>{html.escape(manifest.title)}</title><style>{_STYLE}</style></head><body>"
            f"<h1>{html.escape(manifest.id)}: {html.escape(manifest.title)}</h1>{fragment(view, manifest, tz)}</body></html>")


def write_feedback(result: dict[str, Any], manifest: Manifest, feedback_root: Path, tz: str = "Europe/Berlin",
                   now: datetime | None = None) -> Path:
    """The student's feedback file, as the student may see it at ``now`` (default: the time of writing)."""
    out = feedback_root / result["student"] / manifest.id / f"{Path(manifest.notebook).stem}.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.part")
    tmp.write_text(render(student_view(result, manifest, now), manifest, tz), encoding="utf-8")
    tmp.replace(out)
    return out
