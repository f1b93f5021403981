"""Per-student feedback (HTML): the hand-in's time, deadline and late decision, the points counted, and each
test with its result and our message.

Built from the scored result only, never from the executed notebook; every message in it comes from our
templates (:mod:`.messages`), so no hidden test source, input or value can appear in it, whatever the
student's code did in its kernel. Every value is escaped; the page has no script.
"""
from __future__ import annotations

import html
from datetime import datetime
from fractions import Fraction
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from gradebook.course.manifest import Manifest

_STYLE = """body{font-family:system-ui,sans-serif;max-width:56rem;margin:2rem auto;color:#222;line-height:1.4}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.4rem;text-align:left;vertical-align:top}
code{background:#f3f3f3;padding:0 .2rem}.passed{color:#17702b}.failed,.error,.timeout,.not_run,.crashed{color:#a61b1b}
.late{background:#fff3cd;padding:.5rem;border-left:4px solid #c77c02}.ok{background:#e8f5e9;padding:.5rem;border-left:4px solid #2e7d32}"""
STATUS_WORDS = {"passed": "passed", "failed": "failed", "error": "error", "timeout": "timed out", "not_run": "not run",
                "crashed": "kernel died"}


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


def _header(result: dict[str, Any], manifest: Manifest, tz: str) -> str:
    score, counted = result["score"], result.get("counted_score", result["score"])
    lines = [f"<p>Student <b>{html.escape(result['student'])}</b> — handed in: {html.escape(_when(result.get('submitted_at'), tz))}; "
             f"deadline: {html.escape(_when(result.get('deadline') or manifest.due.isoformat(), tz))}.</p>"]
    if result.get("decision"):
        cls = "late" if result.get("late") else "ok"
        lines.append(f"<p class='{cls}'>{html.escape(result['decision'])}</p>")
    points = f"<b>{fmt_points(counted)} / {fmt_points(result['max_score'])}</b> points"
    if Fraction(counted) != Fraction(score):
        points += f" counted (the tests below earned {fmt_points(score)}; the late policy counts 0)"
    lines.append(f"<p>Autograded part: {points} — {html.escape(result['status'].replace('_', ' '))}.</p>")
    if result.get("reason"):
        lines.append(f"<p><b>Note:</b> {_code_spans(result['reason'])}</p>")
    notes = "".join(f"<li>{_code_spans(n)}</li>" for n in result.get("notes", []))
    return "".join(lines) + (f"<ul>{notes}</ul>" if notes else "")


def fragment(result: dict[str, Any], manifest: Manifest, tz: str = "Europe/Berlin") -> str:
    """The feedback as an HTML fragment (escaped throughout), for the file page and any other page."""
    task_of = {gid: t.title for t in manifest.notebook_tasks for gid in t.tests}
    rows = "".join(
        f"<tr><td>{html.escape(task_of.get(c['grade_id'], ''))}</td><td>{_code_spans(c.get('label', c['grade_id']))}</td>"
        f"<td class='{html.escape(c['status'])}'>{html.escape(STATUS_WORDS.get(c['status'], c['status']))}</td>"
        f"<td>{fmt_points(c['points'])} / {fmt_points(c['max_points'])}</td><td>{_code_spans(c['message'])}</td></tr>"
        for c in result["cells"])
    return (_header(result, manifest, tz)
            + f"<table><tr><th>Task</th><th>Test</th><th>Result</th><th>Points</th><th>Message</th></tr>{rows}</table>"
            "<p>Hidden tests run only when your notebook is graded; their inputs and expected values are never shown. "
            "Pen-and-paper tasks are graded by your tutor and are not part of this page.</p>")


def render(result: dict[str, Any], manifest: Manifest, tz: str = "Europe/Berlin") -> str:
    return (f"<!doctype html><html><head><meta charset='utf-8'>"
            "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; style-src 'unsafe-inline'\">"
            f"<title>{html.escape(manifest.title)}</title><style>{_STYLE}</style></head><body>"
            f"<h1>{html.escape(manifest.id)}: {html.escape(manifest.title)}</h1>{fragment(result, manifest, tz)}</body></html>")


def write_feedback(result: dict[str, Any], manifest: Manifest, feedback_root: Path, tz: str = "Europe/Berlin") -> Path:
    out = feedback_root / result["student"] / manifest.id / f"{Path(manifest.notebook).stem}.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.part")
    tmp.write_text(render(result, manifest, tz), encoding="utf-8")
    tmp.replace(out)
    return out
