"""Per-student feedback (HTML): each test's name, pass/fail, points and visible message.

Built from the scored result only, never from the executed notebook, so hidden test source and
hidden expected values cannot appear in it.
"""
from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from gradebook.manifest import Manifest

_STYLE = """body{font-family:system-ui,sans-serif;max-width:52rem;margin:2rem auto;color:#222}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.4rem;text-align:left}
.passed{color:#17702b}.failed,.error,.timeout,.not_run,.crashed{color:#a61b1b}"""


def _fmt(points: str) -> str:
    from fractions import Fraction

    value = Fraction(points)
    return str(value.numerator) if value.denominator == 1 else f"{float(value):g}"


def render(result: dict[str, Any], manifest: Manifest) -> str:
    task_of = {gid: t.title for t in manifest.notebook_tasks for gid in t.tests}
    rows = "".join(
        f"<tr><td>{html.escape(task_of.get(c['grade_id'], ''))}</td><td>{html.escape(c['grade_id'])}</td>"
        f"<td class='{html.escape(c['status'])}'>{html.escape(c['status'].replace('_', ' '))}</td>"
        f"<td>{_fmt(c['points'])} / {_fmt(c['max_points'])}</td><td>{html.escape(c['message'])}</td></tr>"
        for c in result["cells"])
    reason = f"<p><b>Note:</b> {html.escape(result['reason'])}</p>" if result.get("reason") else ""
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in result.get("notes", []))
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(manifest.title)}</title>"
            f"<style>{_STYLE}</style></head><body><h1>{html.escape(manifest.id)}: {html.escape(manifest.title)}</h1>"
            f"<p>Student <b>{html.escape(result['student'])}</b> — autograded part: "
            f"<b>{_fmt(result['score'])} / {_fmt(result['max_score'])}</b> points ({html.escape(result['status'])}).</p>"
            f"{reason}{'<ul>' + notes + '</ul>' if notes else ''}"
            f"<table><tr><th>Task</th><th>Test</th><th>Result</th><th>Points</th><th>Message</th></tr>{rows}</table>"
            "<p>Pen-and-paper tasks are graded by your tutor and are not part of this page.</p></body></html>")


def write_feedback(result: dict[str, Any], manifest: Manifest, feedback_root: Path) -> Path:
    out = feedback_root / result["student"] / manifest.id / f"{Path(manifest.notebook).stem}.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(result, manifest), encoding="utf-8")
    return out
