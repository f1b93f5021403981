"""`mlph report`: an HTML page with plots for the instructors: score distribution per sheet, task
difficulty, admission status over the semester, and per-group means (a tutor grading harder than
the others shows up there)."""
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

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from . import nbgrader_tables as nt
from .admission import ADMITTED, NOT_ADMITTED, OPEN, Standing, compute_standings
from .config import CourseConfig
from .models import PaperPoints

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


def _figures(cfg: CourseConfig, standings: list[Standing], tasks: dict[str, tuple[float, float]],
             timeline: list[tuple[str, dict[str, int]]]) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figs = []
    graded = [sem for sem in cfg.semester if any(s.sheets.get(sem.id) is not None for s in standings)]
    fig, axes = plt.subplots(1, max(1, len(graded)), figsize=(3.2 * max(1, len(graded)), 2.6), squeeze=False)
    for ax, sem in zip(axes[0], graded):
        ax.hist([float(s.sheets[sem.id] or 0) for s in standings], bins=10, range=(0, float(sem.max_points)),
                color="#1565c0")
        ax.set_title(sem.id)
        ax.set_xlabel("points")
    axes[0][0].set_ylabel("students")
    figs.append(("Score distribution per sheet", _png(fig)))
    plt.close(fig)
    if tasks:
        fig, ax = plt.subplots(figsize=(8, 0.3 * len(tasks) + 1))
        names = list(tasks)
        ax.barh(names, [m / mx if mx else 0 for m, mx in tasks.values()], color="#6a1b9a")
        ax.set_xlim(0, 1)
        ax.invert_yaxis()
        ax.set_xlabel("mean points / maximum (low: hard task)")
        figs.append(("Task difficulty", _png(fig)))
        plt.close(fig)
    if timeline:
        fig, ax = plt.subplots(figsize=(6, 3))
        bottom = [0] * len(timeline)
        for status in (ADMITTED, OPEN, NOT_ADMITTED):
            vals = [c[status] for _, c in timeline]
            ax.bar([t for t, _ in timeline], vals, bottom=bottom, label=status, color=STATUS_COLOURS[status])
            bottom = [b + v for b, v in zip(bottom, vals)]
        ax.set_ylabel("students")
        ax.legend(fontsize=8)
        figs.append(("Admission status after each deadline", _png(fig)))
        plt.close(fig)
    by_group: dict[str, list[float]] = defaultdict(list)
    for s in standings:
        by_group[s.group or "(no group)"].append(float(s.fraction) * 100)
    fig, ax = plt.subplots(figsize=(max(4, 0.8 * len(by_group)), 3))
    labels = sorted(by_group)
    ax.boxplot([by_group[g] for g in labels], showmeans=True)
    ax.set_xticks(range(1, len(labels) + 1), labels, rotation=30)
    ax.set_ylabel("percent of the semester's points")
    figs.append(("Per tutorial group: spread and mean (triangle)", _png(fig)))
    plt.close(fig)
    return figs


def write_report(engine: Engine, cfg: CourseConfig, path: Path, as_of: datetime | None = None) -> Path:
    as_of = as_of or datetime.now(timezone.utc)
    standings = compute_standings(engine, cfg, as_of)
    tasks = task_means(engine, cfg)
    figs = _figures(cfg, standings, tasks, status_over_time(engine, cfg, as_of))
    counts = {k: sum(1 for s in standings if s.status == k) for k in (ADMITTED, OPEN, NOT_ADMITTED)}
    body = "".join(f"<h2>{html.escape(title)}</h2><img alt='{html.escape(title)}' src='data:image/png;base64,{png}'>"
                   for title, png in figs)
    rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{m:.2f} / {mx:g}</td></tr>" for k, (m, mx) in tasks.items())
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(cfg.name)} report</title>"
            "<style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto}img{max-width:100%}"
            "td{padding:.2rem .8rem}</style></head><body>"
            f"<h1>{html.escape(cfg.name)}: report of {as_of:%Y-%m-%d %H:%M} UTC</h1>"
            f"<p>{len(standings)} students: {counts[ADMITTED]} admitted, {counts[OPEN]} open, "
            f"{counts[NOT_ADMITTED]} not admitted.</p>{body}<h2>Mean points per task</h2><table>{rows}</table>"
            "</body></html>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path
