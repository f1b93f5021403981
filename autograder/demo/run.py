"""`mlph demo`: the whole pipeline on a simulated class, on the embedded default (SQLite, local workers).

Builds a roster, releases every authored sheet through nbgrader's exchange, submits as each
simulated student (correct, partly wrong, empty, late, missing and broken hand-ins), collects,
autogrades, imports the tutors' pen-and-paper points and writes the admission list and a summary.
Everything goes into ``<course data dir>/demo/``, which is rebuilt on every run.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import os
import random
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timezone
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import nbformat

from gradebook.course.config import DATA_CONFIG_NAME, CourseConfig, SemesterSheet, load_config

from autograder.limits import Limits
from autograder.grading.run import Summary, autograde
from autograder.intake.exchange import collect as collect_exchange
from autograder.nbgrader_bridge import fetch, generate, release, submit
from autograder.demo.simulate import Handin, SimStudent, handin, make_class, paper_points
from autograder.sheets.validate import load_mistakes

DEMO_LIMITS = Limits(cell_timeout=8.0, notebook_timeout=120.0)


def demo_config(cfg: CourseConfig, as_of: datetime) -> CourseConfig:
    """The demo's own data directory, rebuilt, with its own configuration (``course.toml`` there: every
    command and page on that directory reads it): its semester is the sheets due by ``as_of`` plus the
    next one, so that all three statuses occur at ``as_of``; its database is its own."""
    out = cfg.data_dir / "demo"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    # the sheets due by now (authored ones are handed in and graded) and the next one (open: so that all three
    # statuses occur at ``as_of``)
    authored = tuple(s for s in cfg.semester if s.due <= as_of)
    upcoming = [s for s in cfg.semester if s.due > as_of][:1]
    (out / DATA_CONFIG_NAME).write_text(demo_toml(cfg, authored + tuple(upcoming)), encoding="utf-8")
    # MLPH_DB_URL (e.g. an empty PostgreSQL database) is honoured; else SQLite in the demo's directory.
    demo = load_config(cfg.root, data_dir=out)
    return dataclasses.replace(demo, origins={**demo.origins, "root": cfg.origins.get("root", "given")})


def demo_toml(cfg: CourseConfig, semester: tuple[SemesterSheet, ...]) -> str:
    """The demo course's ``course.toml``: the course's rule, its shortened plan, a shared intake (every
    simulated student submits as the same OS user: the exchange cannot tell them apart)."""
    q = json.dumps  # a JSON string is a TOML basic string
    rule = cfg.rule
    share = lambda f: f"{f.numerator}/{f.denominator}"  # noqa: E731
    lines = ["# The demo's own course configuration (written by `mlph demo`; replaces mlph.toml's plan and rule",
             "# for every command on this data directory).", "[course]", f"name = {q(cfg.name + ' (demo)')}",
             f"timezone = {q(cfg.timezone)}", "", "[intake]", 'identity = "shared"', "", "[admission]",
             f"threshold = {q(_points(rule.absolute) if rule.absolute is not None else share(rule.fraction))}"]
    lines += [f"{key} = {q(share(value))}" for key, value in (("min_per_sheet", rule.min_per_sheet),
                                                              ("min_per_part", rule.min_per_part)) if value is not None]
    for s in semester:
        lines += ["", "[[semester.sheet]]", f"id = {q(s.id)}", f"bonus = {'true' if s.bonus else 'false'}",
                  f"counts = {q(s.counts)}"]
        if s.manifest is None:
            lines += [f"planned_points = {q(str(s.max_points))}", f"planned_paper_points = {q(str(s.planned_paper_points))}",
                      f"due = {q(s.due.isoformat())}"]
    return "\n".join(lines) + "\n"


def _points(value: Fraction) -> str:
    """Points as the decimal they were written as (thresholds in points are decimals)."""
    return f"{Decimal(value.numerator) / Decimal(value.denominator)} points"


TUTORS = [("g1", "Monday 14:00", "tutor-lena", "Lena Vogel"), ("g2", "Tuesday 10:00", "tutor-omar", "Omar Haddad"),
          ("g3", "Thursday 16:00", "tutor-ying", "Ying Zhao")]


def _groups(engine: Any, out: Path, students: list[SimStudent]) -> None:
    """Three tutorial groups with their tutors, the students dealt round-robin (through the import functions)."""
    from gradebook.people.groups import add_staff, assign_students, import_groups

    with (out / "groups.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["group", "name", "tutor_id", "tutor_name"])
        w.writerows(TUTORS)
    import_groups(engine, out / "groups.csv", author="demo")
    with (out / "members.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["student_id", "group"])
        w.writerows((s.id, TUTORS[i % len(TUTORS)][0]) for i, s in enumerate(students))
    assign_students(engine, out / "members.csv", author="demo")
    add_staff(engine, "demo-admin", "Demo Admin", None, "admin", "demo")


def write_roster(students: list[SimStudent], path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["student_id", "last_name", "first_name", "email", "matriculation", "programme"])
        for s in students:
            w.writerow([s.id, s.last_name, s.first_name, s.email, s.matriculation, s.programme])


def _hand_ins(cfg: CourseConfig, sheet: str, release_dir: Path, students: list[SimStudent],
              rng: random.Random) -> list[Handin]:
    manifest = cfg.manifest(sheet)
    source = nbformat.read(manifest.directory / manifest.notebook, as_version=4)
    student_nb = nbformat.read(release_dir / sheet / manifest.notebook, as_version=4)
    mistakes = load_mistakes(manifest)
    handins = []
    for i, s in enumerate(students):
        if rng.random() > s.diligence:
            continue
        chaos = "broken" if i == 5 else "loop" if (i == 11 and sheet == cfg.authored_sheets()[0]) else None
        handins.append(handin(s, manifest, source, student_nb, mistakes, rng, chaos))
    return handins


def _submit_all(cfg: CourseConfig, sheet: str, notebook_name: str, handins: list[Handin]) -> None:
    """Each student fetches the sheet from the exchange, works on it and submits it."""
    with tempfile.TemporaryDirectory(prefix="mlph-demo-students-") as tmp:
        for h in handins:
            work = Path(tmp) / h.student.id
            target = fetch(cfg, sheet, h.student.id, work) / notebook_name
            if h.notebook is not None:
                nbformat.write(h.notebook, target)
            else:
                target.write_text(h.raw or "", encoding="utf-8")
            submit(cfg, sheet, h.student.id, work, clock=h.clock)


def _paper_csv(cfg: CourseConfig, sheet: str, handins: list[Handin], rng: random.Random, path: Path) -> None:
    """The tutors' CSV, as they fill it in: German decimal commas, semicolons from Excel."""
    manifest = cfg.manifest(sheet)
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, delimiter=";")
        w.writerow(["student_id", "task", "points"])
        for h in handins:
            for task, pts in paper_points(h.student, manifest, rng).items():
                w.writerow([h.student.id, task, f"{float(pts):g}".replace(".", ",")])


def run_demo(cfg: CourseConfig, n_students: int = 72, seed: int = 2026, workers: int | None = None,
             say: Callable[[str], Any] = print, as_of: datetime | None = None) -> dict[str, Any]:
    """Run the demo; returns the paths of its outputs and its figures."""
    from gradebook.admission.rule import compute_standings
    from gradebook.exports.admission_list import write_csv, write_xlsx
    from gradebook.store.db import open_gradebook
    from gradebook.points.paper import import_points
    from gradebook.people.roster import import_students

    t0 = time.monotonic()
    as_of = as_of or datetime.now(timezone.utc)
    demo = demo_config(cfg, as_of)
    rng = random.Random(seed)
    students = make_class(n_students, seed)
    write_roster(students, demo.data_dir / "roster.csv")
    engine = open_gradebook(demo.db_url)
    import_students(engine, demo.data_dir / "roster.csv")
    _groups(engine, demo.data_dir, students)
    say(f"class of {len(students)} simulated students in {len(TUTORS)} tutorial groups → {demo.data_dir / 'roster.csv'}")
    release_dir = demo.data_dir / "release"
    figures: dict[str, Any] = {"sheets": {}}
    summaries: list[Summary] = []
    for sheet in [s.id for s in demo.semester if s.manifest is not None]:
        manifest = demo.manifest(sheet)
        generate(demo, sheet, release_dir=release_dir)
        release(demo, sheet, release_dir=release_dir)
        if manifest.due > as_of:  # released, not due yet: nobody has handed it in in this simulation
            say(f"{sheet}: released, due {manifest.due:%Y-%m-%d}")
            continue
        handins = _hand_ins(demo, sheet, release_dir, students, rng)
        _submit_all(demo, sheet, manifest.notebook, handins)
        simulated = {h.student.id: h.clock for h in handins}  # the simulation's clock stands in for the server's
        report = collect_exchange(demo, engine, sheet, clock=lambda entry: simulated[entry.name.split("+")[0]])
        collected = report.accepted + [s for s, _ in report.invalid]
        t1 = time.monotonic()
        summary = autograde(demo, sheet, workers=workers, limits=DEMO_LIMITS)
        seconds = time.monotonic() - t1
        summaries.append(summary)
        paper = demo.data_dir / f"paper-{sheet}.csv"
        _paper_csv(demo, sheet, handins, rng, paper)
        import_points(engine, manifest, paper, author="demo-tutor")
        figures["sheets"][sheet] = {"submitted": len(collected), "autograde_seconds": round(seconds, 2),
                                    "seconds_per_submission": round(seconds / max(1, len(collected)), 3),
                                    "status": dict(summary.counts)}
        say(f"{sheet}: {len(collected)} submissions autograded in {seconds:.1f} s "
            f"({seconds / max(1, len(collected)):.2f} s each): {dict(summary.counts)}")
    standings = compute_standings(engine, demo, as_of=as_of)
    outputs = {"csv": demo.data_dir / "admission.csv", "xlsx": demo.data_dir / "admission.xlsx",
               "summary": demo.data_dir / "summary.md", "feedback": demo.data_dir / "feedback",
               "database": demo.data_dir / "gradebook.db"}
    write_csv(standings, outputs["csv"])
    write_xlsx(standings, outputs["xlsx"])
    figures["total_seconds"] = round(time.monotonic() - t0, 1)
    figures["status"] = _count(s.status for s in standings)
    outputs["summary"].write_text(_summary_md(demo, figures, n_students), encoding="utf-8")
    say(f"admission status: {figures['status']}; demo took {figures['total_seconds']} s")
    for name, path in outputs.items():
        say(f"  {name:9s} {path}")
    say(f"the demo's course (its own plan and rule, in {demo.data_dir / DATA_CONFIG_NAME}):")
    say(f"  {command_prefix(demo)} admission      (or status {students[0].id}, report, serve, ...)")
    return {"outputs": outputs, "figures": figures, "students": students, "config": demo}


def command_prefix(demo: CourseConfig) -> str:
    """How to type `mlph` on the demo's course in a shell, as it is: the data directory (and the root, if
    it came from MLPH_ROOT) in the environment, and `mlph` as found on PATH or else by its full path."""
    env = f"MLPH_COURSE_DIR={shlex.quote(str(demo.data_dir))} "
    if demo.origins.get("root") == "MLPH_ROOT":
        env = f"MLPH_ROOT={shlex.quote(str(demo.root))} " + env
    ours = Path(sys.executable).parent / "mlph"
    found = shutil.which("mlph")
    if found and ours.is_file() and Path(found).resolve() == ours.resolve():
        return env + "mlph"
    if ours.is_file():
        return env + shlex.quote(str(ours))
    return env + f"{shlex.quote(sys.executable)} -m autograder.cli"


def _count(items: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in items:
        out[item] = out.get(item, 0) + 1
    return out


def _summary_md(cfg: CourseConfig, figures: dict[str, Any], n: int) -> str:
    plan = ", ".join(f"{s.id} ({s.max_points} points, due {s.due:%Y-%m-%d})" for s in cfg.semester)
    lines = [f"# Demo: {cfg.name}", "", f"{n} simulated students; whole run {figures['total_seconds']} s.", "",
             f"Semester of the demo: {plan}; threshold {float(cfg.rule.threshold(cfg.semester_max)):g} points.", "",
             "| sheet | collected | autograde s | s/submission | results |", "|---|---|---|---|---|"]
    for sheet, f in figures["sheets"].items():
        lines.append(f"| {sheet} | {f['submitted']} | {f['autograde_seconds']} | {f['seconds_per_submission']} "
                     f"| {', '.join(f'{k}: {v}' for k, v in sorted(f['status'].items()))} |")
    lines += ["", "Admission: " + ", ".join(f"{k}: {v}" for k, v in sorted(figures["status"].items())), ""]
    return "\n".join(lines)
