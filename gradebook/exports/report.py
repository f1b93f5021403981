"""`mlph report`: an HTML page for the instructors: score distribution per decided sheet (pending sheets are
named, never drawn as 0), task difficulty, admission status over the semester, per-group spread (a tutor
grading harder than the others shows up there), and tables of the sheets' states, of missing / invalid /
held / timed-out / late hand-ins and of the students at risk. Times in the course's time zone."""
from __future__ import annotations

import base64
import html
import io
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from fractions import Fraction
from pathlib import Path
from statistics import mean
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from gradebook.store import nbgrader_tables as nt
from gradebook.admission.rule import ADMITTED, NOT_ADMITTED, OPEN, Standing, compute_standings, percent_text
from gradebook.course.config import CourseConfig
from gradebook.exports.lists import HandinRow, handin_rows
from gradebook.store.models import PaperPoints
from gradebook.points.paper import fmt
from gradebook.course.sheets_state import SheetFacts, sheet_facts

STATUS_COLOURS = {ADMITTED: "#2e7d32", OPEN: "#f9a825", NOT_ADMITTED: "#c62828"}


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode()


def task_means(engine: Engine, cfg: CourseConfig) -> dict[str, tuple[float, float]]:
    """Per task ("sheet/task"): mean points over the students graded, and the task's maximum."""
    with Session(engine) as session:
        cells = session.execute(
            select(nt.assignment.c.name, nt.base_cell.c.name, func.avg(func.coalesce(
                nt.grade.c.manual_score, nt.grade.c.auto_score, 0.0)))
            .select_from(nt.grade).join(nt.base_cell, nt.grade.c.cell_id == nt.base_cell.c.id)
            .join(nt.notebook, nt.base_cell.c.notebook_id == nt.notebook.c.id)
            .join(nt.assignment, nt.notebook.c.assignment_id == nt.assignment.c.id)
            .group_by(nt.assignment.c.name, nt.base_cell.c.name)).all()
        paper = session.execute(select(PaperPoints.sheet, PaperPoints.task, PaperPoints.points)).all()
    cell_mean = {(sheet, cell): avg for sheet, cell, avg in cells}
    paper_vals: dict[tuple[str, str], list[Fraction]] = defaultdict(list)
    for sheet, task_id, pts in paper:
        paper_vals[(sheet, task_id)].append(Fraction(pts))
    out: dict[str, tuple[float, float]] = {}
    for sem in cfg.semester:
        if sem.manifest is None:
            continue
        for task in sem.manifest.tasks:
            key = f"{sem.id}/{task.id}"
            if task.kind == "notebook":
                vals = [cell_mean[(sem.id, g)] for g in task.tests if (sem.id, g) in cell_mean]
                if vals:
                    out[key] = (float(sum(vals)), float(task.points))
            elif paper_vals.get((sem.id, task.id)):
                out[key] = (float(mean(paper_vals[(sem.id, task.id)])), float(task.points))
    return out


def status_over_time(engine: Engine, cfg: CourseConfig, until: datetime) -> list[tuple[str, dict[str, int]]]:
    """Status counts just after each deadline up to ``until``."""
    points = []
    for sem in cfg.semester:
        when = sem.due + timedelta(minutes=1)
        if when > until:
            break
        counts = {ADMITTED: 0, OPEN: 0, NOT_ADMITTED: 0}
        for s in compute_standings(engine, cfg, when):
            counts[s.status] = counts.get(s.status, 0) + 1
        points.append((sem.id, counts))
    return points


def _locator() -> Any:
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator


def _histograms(plt: Any, cfg: CourseConfig, standings: list[Standing], decided: list[str]) -> Any:
    sems = [sem for sem in cfg.semester if sem.id in decided]
    n = max(1, len(sems))
    cols = min(n, 4)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 2.8 * rows), squeeze=False)
    for ax, sem in zip(axes.flat, sems):
        values = [float(v) for s in standings if (v := s.sheets.get(sem.id)) is not None]
        ax.hist(values, bins=10, range=(0, float(sem.max_points)), color="#1565c0")
        ax.set_title(f"{sem.id} (max {float(sem.max_points):g})", fontsize=10)
        ax.set_xlabel("points")
        ax.set_ylabel("students")
        ax.yaxis.set_major_locator(_locator()(integer=True))
    for ax in list(axes.flat)[len(sems):]:
        ax.axis("off")
    if not sems:
        axes[0][0].text(0.5, 0.5, "no sheet decided yet", ha="center", va="center")
    fig.tight_layout()
    return fig


def _timeline(plt: Any, timeline: list[tuple[str, dict[str, int]]]) -> Any:
    fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(timeline) + 3), 3.2))
    bottom = [0] * len(timeline)
    for status in (ADMITTED, OPEN, NOT_ADMITTED):
        vals = [c[status] for _, c in timeline]
        ax.bar([t for t, _ in timeline], vals, bottom=bottom, label=status.replace("_", " "),
               color=STATUS_COLOURS[status])
        bottom = [b + v for b, v in zip(bottom, vals)]
    ax.set_ylabel("students")
    ax.set_xlabel("just after the deadline of")
    ax.yaxis.set_major_locator(_locator()(integer=True))
    ax.tick_params(axis="x", labelrotation=30)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)  # beside the bars, never over them
    fig.tight_layout()
    return fig


def _figures(cfg: CourseConfig, standings: list[Standing], tasks: dict[str, tuple[float, float]],
             timeline: list[tuple[str, dict[str, int]]], decided: list[str]) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figs = []
    fig = _histograms(plt, cfg, standings, decided)
    figs.append(("Score distribution per decided sheet", _png(fig)))
    plt.close(fig)
    if tasks:
        fig, ax = plt.subplots(figsize=(8, 0.3 * len(tasks) + 1.2))
        names = list(tasks)
        ax.barh(names, [m / mx if mx else 0 for m, mx in tasks.values()], color="#6a1b9a")
        ax.set_xlim(0, 1)
        ax.invert_yaxis()
        ax.set_xlabel("mean points / maximum (low: hard task)")
        fig.tight_layout()
        figs.append(("Task difficulty", _png(fig)))
        plt.close(fig)
    if timeline:
        fig = _timeline(plt, timeline)
        figs.append(("Admission status after each deadline", _png(fig)))
        plt.close(fig)
    by_group: dict[str, list[float]] = defaultdict(list)
    for s in standings:
        by_group[s.group or "(no group)"].append(float(s.percent))
    fig, ax = plt.subplots(figsize=(max(4.5, 0.9 * len(by_group) + 1), 3.2))
    labels = sorted(by_group)
    ax.boxplot([by_group[g] for g in labels], showmeans=True)
    ax.set_xticks(range(1, len(labels) + 1), labels, rotation=30, ha="right")
    ax.set_ylabel("percent of the semester's points")
    ax.set_ylim(0, 100)
    fig.tight_layout()
    figs.append(("Per tutorial group: spread and mean (triangle)", _png(fig)))
    plt.close(fig)
    return figs


PROBLEM_STATES = ("missing", "invalid", "refused", "held", "timeout", "crashed", "late", "ungraded", "grader_error")
AT_RISK = Fraction(1, 2)  # open, and needing at least this share of the points still reachable


def problem_handins(engine: Engine, cfg: CourseConfig, as_of: datetime) -> list[tuple[str, HandinRow]]:
    """(sheet, row) for every hand-in of a sheet past its deadline that is missing, invalid, held, timed out,
    crashed, late or not graded yet."""
    out = []
    for sem in cfg.semester:
        if sem.manifest is None or sem.due > as_of:
            continue
        out += [(sem.id, r) for r in handin_rows(engine, cfg, sem.id) if r.state in PROBLEM_STATES]
    return out


def at_risk(standings: list[Standing]) -> list[Standing]:
    """Open students who need at least half of what is still reachable (most at risk first)."""
    risky = [s for s in standings if s.status == OPEN and s.still_reachable
             and s.points_needed >= AT_RISK * s.still_reachable]
    return sorted(risky, key=lambda s: s.points_needed / s.still_reachable, reverse=True)


def _html_table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>" if rows else "<p>none</p>"


def _local(when: datetime | None, tz: str) -> str:
    return f"{when.astimezone(ZoneInfo(tz)):%Y-%m-%d %H:%M %Z}" if when else ""


def _sections(engine: Engine, cfg: CourseConfig, standings: list[Standing], as_of: datetime,
              facts: dict[str, SheetFacts]) -> str:
    sheets = _html_table(["sheet", "due", "state", "handed in", "graded", "paper entered", "what is missing"],
                         [[f.id, _local(f.sheet.due, cfg.timezone), f.state(as_of), str(len(f.handed_in)),
                           str(len(f.graded)), str(len(f.paper_entered)), "; ".join(f.missing(as_of))
                           if f.state(as_of) == "pending" else ""] for f in facts.values()])
    problems = _html_table(["sheet", "student", "name", "state", "received", "detail"],
                           [[sheet, r.student_id, r.name, r.state, _local(r.received_at, cfg.timezone), r.detail]
                            for sheet, r in problem_handins(engine, cfg, as_of)])
    risk = _html_table(["student", "name", "group", "points", "still needed", "still reachable", "needed / reachable"],
                       [[s.student_id, f"{s.first_name} {s.last_name}", s.group, fmt(s.points), fmt(s.points_needed),
                         fmt(s.still_reachable), f"{percent_text(s.points_needed / s.still_reachable)}%"]
                        for s in at_risk(standings)])
    return (f"<h2>Sheets</h2>{sheets}<h2>Missing, invalid, held, timed-out and late hand-ins</h2>{problems}"
            f"<h2>Students at risk</h2><p>Open, and needing at least {percent_text(AT_RISK)}% of the points still "
            f"reachable on the sheets not decided yet.</p>{risk}")


def write_report(engine: Engine, cfg: CourseConfig, path: Path, as_of: datetime | None = None) -> Path:
    as_of = as_of or datetime.now(timezone.utc)
    standings = compute_standings(engine, cfg, as_of)
    facts = sheet_facts(engine, cfg)
    decided = [f.id for f in facts.values() if f.state(as_of) in ("decided", "closed")]
    pending = [f"{f.id} ({f.state(as_of)})" for f in facts.values() if f.id not in decided]
    tasks = task_means(engine, cfg)
    figs = _figures(cfg, standings, tasks, status_over_time(engine, cfg, as_of), decided)
    counts = {k: sum(1 for s in standings if s.status == k) for k in (ADMITTED, OPEN, NOT_ADMITTED)}
    body = "".join(f"<h2>{html.escape(title)}</h2><img alt='{html.escape(title)}' src='data:image/png;base64,{png}'>"
                   for title, png in figs)
    rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{m:.2f} / {mx:g}</td></tr>" for k, (m, mx) in tasks.items())
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(cfg.name)} report</title>"
            "<style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto}img{max-width:100%}"
            "td,th{padding:.2rem .8rem;text-align:left}</style></head><body>"
            f"<h1>{html.escape(cfg.name)}: report of {_local(as_of, cfg.timezone)}</h1>"
            f"<p>{len(standings)} students: {counts[ADMITTED]} admitted, {counts[OPEN]} open, "
            f"{counts[NOT_ADMITTED]} not admitted.</p>"
            f"<p>Decided sheets: {html.escape(', '.join(decided) or 'none')}. Not decided yet (counted as still "
            f"reachable, never as 0): {html.escape(', '.join(pending) or 'none')}.</p>"
            f"{body}{_sections(engine, cfg, standings, as_of, facts)}<h2>Mean points per task</h2><table>{rows}</table>"
            "</body></html>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path
