"""The similarity report of one sheet: built once (:func:`build_report`), shown as an inert HTML file in the
course data directory, as a rich table in the terminal, and on the admins' web page.

Nothing leaves the machine: hand-ins are read from the course data directory (and from earlier semesters'
course directories given with ``--against``), compared here, and the report is written next to them,
readable by its owner only.
"""
from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from rich.table import Table

from gradebook.course.config import CourseConfig
from gradebook.errors import GradebookError

from autograder.errors import AutograderError
from autograder.similarity.answers import Unreadable, answer_tasks, read_handins, sheet_code
from autograder.similarity.detect import Pair, Settings, analyse

VERDICT = ("A high similarity is a reason to look at the two hand-ins, not a verdict: short tasks, the code "
           "of the lecture and of the sheet, and working together as allowed all make answers alike. Decide "
           "only after reading both answers and talking to the students.")


class SimilarityError(AutograderError):
    """The report cannot be made (no release notebook, a reference directory without hand-ins)."""


@dataclass(frozen=True)
class CellReport:
    grade_id: str
    task: str
    answers: int          # of this course (a team counts once)
    references: int       # of earlier semesters
    pairs: list[Pair]


@dataclass
class SimilarityReport:
    sheet: str
    title: str
    created: datetime
    cells: list[CellReport]
    unreadable: list[Unreadable]
    references: list[str]
    settings: Settings
    hand_ins: int
    path: Path | None = None


def _read_json(path: Path, what: str) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SimilarityError(f"{what} {path} cannot be read ({exc})") from None


def reference_submitted(directory: Path) -> Path:
    """The ``submitted/`` folder of an earlier semester's course directory (its data directory, or the course
    root holding ``course-data/``)."""
    for candidate in (directory / "submitted", directory / "course-data" / "submitted"):
        if candidate.is_dir():
            return candidate
    raise SimilarityError(f"{directory}: no hand-ins there (expected {directory}/submitted/<student>/<sheet>/ "
                          "or a course root with course-data/submitted/)")


def team_of(cfg: CourseConfig, sheet: str) -> dict[str, str]:
    """student → team of ``sheet`` from the gradebook (none when there is no gradebook yet)."""
    from gradebook.people.teams import team_of as teams_in
    from gradebook.store.db import open_gradebook

    try:
        engine = open_gradebook(cfg.db_url, create=False)
    except GradebookError:  # no gradebook yet: no teams
        return {}
    return teams_in(engine, sheet)


def build_report(cfg: CourseConfig, sheet: str, against: Sequence[Path] = (), teams: dict[str, str] | None = None,
                 settings: Settings = Settings(), say: Callable[[str], None] = lambda s: None) -> SimilarityReport:
    """Read every hand-in of ``sheet`` (and of the earlier semesters ``against``), rank the pairs per answer cell."""
    manifest = cfg.manifest(sheet)
    release = cfg.release_dir / sheet / manifest.notebook
    if not release.is_file():
        raise SimilarityError(f"{sheet}: no release notebook {release} (its code is what never counts); "
                              f"run `mlph release {sheet} --no-exchange` first")
    given = sheet_code(_read_json(release, "the release notebook"))
    ids = list(given.answer_stubs)
    source = _read_json(manifest.directory / manifest.notebook, "the source notebook")
    tasks = answer_tasks(source, {gid: t.title for t in manifest.notebook_tasks for gid in t.tests})
    teams = team_of(cfg, sheet) if teams is None else teams
    say(f"{sheet}: reading the hand-ins in {cfg.data_dir / 'submitted'}")
    answers, unreadable = read_handins(cfg.data_dir / "submitted", sheet, manifest.notebook, ids, teams)
    names = []
    for directory in against:
        submitted = reference_submitted(directory)
        name = directory.resolve().name or str(directory)
        names.append(name)
        say(f"{sheet}: reading the earlier hand-ins in {submitted} (references, as {name!r})")
        past, bad = read_handins(submitted, sheet, manifest.notebook, ids, origin=name)
        for gid in ids:
            answers[gid] += past[gid]
        unreadable += bad
    say(f"{sheet}: comparing {sum(len(a) for a in answers.values())} answers in {len(ids)} answer cells")
    pairs = analyse(answers, list(given.given) + list(given.answer_stubs.values()), settings)
    cells = [CellReport(gid, tasks.get(gid, gid), len({a.author for a in answers[gid] if not a.origin}),
                        sum(1 for a in answers[gid] if a.origin), pairs[gid]) for gid in ids]
    hand_ins = len({a.student for found in answers.values() for a in found if not a.origin})
    return SimilarityReport(sheet, manifest.title, datetime.now(timezone.utc), cells, unreadable, names, settings,
                            hand_ins)


_ENV = Environment(loader=FileSystemLoader(Path(__file__).parent), autoescape=select_autoescape(default=True),
                   trim_blocks=True, lstrip_blocks=True)


def render_html(report: SimilarityReport, fragment: bool = False) -> str:
    """The report as HTML: every byte of student code escaped, no script, no external resource (a CSP
    forbids both if the file is opened in a browser). ``fragment``: the body only (for the web page)."""
    return _ENV.get_template("report.html.j2").render(report=report, verdict=VERDICT, fragment=fragment)


def write_html(report: SimilarityReport, path: Path) -> Path:
    """Write the report atomically, readable by its owner only (it shows student code)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(render_html(report))
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def report_path(cfg: CourseConfig, sheet: str) -> Path:
    return cfg.data_dir / "similarity" / f"{sheet}.html"


def similarity_report(cfg: CourseConfig, sheet: str, against: Sequence[Path] = (),
                      say: Callable[[str], None] = lambda s: None) -> SimilarityReport:
    """`mlph similarity`: build the report of ``sheet`` and write it to ``<course data>/similarity/<sheet>.html``."""
    report = build_report(cfg, sheet, against, say=say)
    report.path = write_html(report, report_path(cfg, sheet))
    return report


def summary_table(report: SimilarityReport) -> Table:
    table = Table(title=f"similarity {report.sheet}: {report.hand_ins} hand-ins"
                        + (f", references: {', '.join(report.references)}" if report.references else ""))
    for col in ("answer cell", "task", "answers", "pairs to look at", "most similar"):
        table.add_column(col)
    for cell in report.cells:
        top = cell.pairs[0] if cell.pairs else None
        shown = (f"{top.a.label} ~ {top.b.label}: {top.score:.0%} (sheet {top.sheet:.0%})"
                 + (" [reference]" if top.reference else "")) if top else "-"
        table.add_row(cell.grade_id, cell.task, str(cell.answers) + (f" +{cell.references} ref" if cell.references else ""),
                      str(len(cell.pairs)), shown)
    return table

