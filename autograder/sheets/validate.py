"""`mlph validate`: is a sheet sound? Runs the solution, the student version and every mistake.

Checks, per sheet: (1) the solution notebook passes every test cell; (2) the student version
fails every test cell (a test passing on the stubs is vacuous); (3) no line of a solution or
hidden-test region appears anywhere in ``release/``; (4) manifest and notebook metadata agree;
(5) ``release/`` is exactly what ``source/`` generates; (6) every simulated mistake in
``mistakes.toml`` loses points.
"""
from __future__ import annotations

import copy
import json
import re
import tempfile
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
from nbformat import NotebookNode

from gradebook.config import CourseConfig
from gradebook.manifest import Manifest

from autograder.grading.assemble import assemble, grade_id, is_answer, is_test, nbgrader_meta
from autograder.errors import SheetError
from autograder.grading.harden import harden
from autograder.limits import Limits
from autograder.nbgrader_bridge import generate
from autograder.grading.pipeline import default_workers, executor_for, run_jobs
from autograder.grading.reference import run_source
from autograder.grading.scoring import CHECK_NAME_RE, reference_from_run, score_run

REGION_RE = re.compile(r"### BEGIN (SOLUTION|HIDDEN TESTS)(.*?)### END \1", re.S)
MIN_SECRET_CHARS = 10


@dataclass
class SheetReport:
    sheet: str
    passed: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _lines(text: str) -> list[str]:
    return [ln.strip() for ln in text.splitlines() if ln.strip()]


def secret_lines(source: NotebookNode) -> set[str]:
    """Lines only found inside solution or hidden-test regions of the source notebook."""
    secret: set[str] = set()
    public: set[str] = set()
    for cell in source.cells:
        text = "".join(cell.source)
        if is_answer(cell) and not REGION_RE.search(text):
            secret.update(_lines(text))  # nbgrader replaces a marker-less solution cell whole
            continue
        secret.update(ln for m in REGION_RE.finditer(text) for ln in _lines(m.group(2)))
        public.update(_lines(REGION_RE.sub("", text)))
    return {ln for ln in secret - public if len(re.sub(r"\s", "", ln)) >= MIN_SECRET_CHARS}


def _release_texts(release: Path) -> dict[str, list[str]]:
    texts: dict[str, list[str]] = {}
    for path in sorted(p for p in release.rglob("*") if p.is_file()):
        raw = path.read_bytes().decode("utf-8", errors="replace")
        if path.suffix == ".ipynb":
            try:
                nb = json.loads(raw)
                raw = "\n".join("".join(c.get("source", "")) for c in nb.get("cells", []))
            except json.JSONDecodeError:
                pass
        texts[str(path)] = _lines(raw)
    return texts


def check_leaks(source: NotebookNode, release: Path) -> list[str]:
    secrets = secret_lines(source)
    return [f"{path}: contains the secret line {line!r}"
            for path, lines in _release_texts(release).items() for line in lines if line in secrets]


def check_metadata(manifest: Manifest, source: NotebookNode) -> list[str]:
    problems = []
    nb_points = {grade_id(c): nbgrader_meta(c).get("points") for c in source.cells if is_test(c)}
    declared = manifest.test_points
    for gid in sorted(set(nb_points) | set(declared), key=str):
        in_notebook = nb_points.get(gid)
        if gid not in declared:
            problems.append(f"test cell {gid!r} is in the notebook but not in {manifest.path.name}")
        elif gid not in nb_points:
            problems.append(f"test {gid!r} is in {manifest.path.name} but not a test cell of the notebook")
        elif in_notebook is None or float(declared[gid]) != float(in_notebook):
            problems.append(f"test {gid!r}: {declared[gid]} points in the manifest, {in_notebook} in the notebook")
    ids = {grade_id(c) for c in source.cells}
    for task in manifest.paper_tasks:
        if task.id not in ids and f"paper_{task.id}" not in ids:
            problems.append(f"paper task {task.id!r} has no cell with grade_id {task.id!r} in the notebook")
    names = [m.group(2) for c in source.cells if is_test(c) for m in CHECK_NAME_RE.finditer("".join(c.source))]
    problems += [f"check name {n!r} is used more than once" for n in sorted({n for n in names if names.count(n) > 1})]
    if not any(is_answer(c) for c in source.cells):
        problems.append("the notebook has no solution cell")
    return problems


def _comparable(path: Path) -> Any:
    if path.suffix == ".ipynb":
        return json.loads(path.read_text(encoding="utf-8"))
    return path.read_bytes()


def check_release_current(cfg: CourseConfig, sheet: str) -> list[str]:
    """Regenerate into a scratch directory (scratch database) and compare with ``release/``."""
    with tempfile.TemporaryDirectory(prefix="mlph-validate-") as tmp:
        out = generate(cfg, sheet, release_dir=Path(tmp) / "release", db_url=f"sqlite:///{tmp}/scratch.db")
        have = cfg.release_dir / sheet
        fresh = {p.relative_to(out) for p in out.rglob("*") if p.is_file()}
        committed = {p.relative_to(have) for p in have.rglob("*") if p.is_file()} if have.is_dir() else set()
        problems = [f"release/{sheet}/{p}: missing (run `mlph release {sheet}`)" for p in sorted(fresh - committed)]
        problems += [f"release/{sheet}/{p}: not generated from source/{sheet}" for p in sorted(committed - fresh)]
        problems += [f"release/{sheet}/{p}: out of date with source/{sheet} (run `mlph release {sheet}`)"
                     for p in sorted(fresh & committed) if _comparable(out / p) != _comparable(have / p)]
    return problems


def load_mistakes(manifest: Manifest) -> list[dict[str, str]]:
    path = manifest.directory / "mistakes.toml"
    if not path.is_file():
        return []
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise SheetError(f"{path}: not valid TOML: {exc}") from exc
    mistakes = raw.get("mistake", [])
    for i, m in enumerate(mistakes, 1):
        if not all(isinstance(m.get(k), str) for k in ("cell", "why", "source")):
            raise SheetError(f"{path}: mistake {i} needs string 'cell', 'why' and 'source'")
    return list(mistakes)


def with_answer(nb: NotebookNode, cell_id: str, code: str) -> NotebookNode:
    """A copy of ``nb`` with the answer cell ``cell_id`` replaced by ``code``."""
    new = copy.deepcopy(nb)
    hits = [c for c in new.cells if grade_id(c) == cell_id and is_answer(c)]
    if not hits:
        raise SheetError(f"no answer cell {cell_id!r}")
    hits[0].source = code
    return new


def validate_sheet(cfg: CourseConfig, sheet: str, limits: Limits = Limits(),
                   say: Callable[[str], None] = lambda s: None) -> SheetReport:
    report = SheetReport(sheet)

    def step(name: str, problems: list[str]) -> None:
        report.problems.extend(f"{sheet}: {p}" for p in problems)
        if not problems:
            report.passed.append(name)
        say(("  ok    " if not problems else "  FAIL  ") + name)

    manifest = cfg.manifest(sheet)
    source = nbformat.read(manifest.directory / manifest.notebook, as_version=4)
    step("manifest and notebook metadata agree", check_metadata(manifest, source))
    step("release/ is what source/ generates", check_release_current(cfg, sheet))
    release_nb_path = cfg.release_dir / sheet / manifest.notebook
    step("no solution or hidden-test line in release/",
         check_leaks(source, cfg.release_dir / sheet) if release_nb_path.parent.is_dir() else ["release/ missing"])
    try:
        reference = reference_from_run(run_source(source, limits), sheet)
        step("the solution passes every test cell", [])
    except SheetError as exc:
        step("the solution passes every test cell", [ln.removeprefix(f"{sheet}: ") for ln in str(exc).splitlines()])
        return report
    variants: list[tuple[str, NotebookNode]] = [("solution", source)]
    if release_nb_path.is_file():
        variants.append(("student version", nbformat.read(release_nb_path, as_version=4)))
    mistakes = load_mistakes(manifest)
    for m in mistakes:
        variants.append((f"mistake in {m['cell']}: {m['why']}", with_answer(source, m["cell"], m["source"])))
    scores = _run_variants(source, reference, manifest, variants, limits)
    if release_nb_path.is_file():
        vacuous = [c.grade_id for c in scores["student version"] if c.points > 0]
        step("every test cell fails on the student version",
             [f"test cell {g!r} passes on the unanswered student version (vacuous test)" for g in vacuous])
    step("the solution graded as a submission gets full points (test cells without expected values)",
         [f"test cell {c.grade_id!r} fails: {c.message}" for c in scores["solution"] if c.points < c.max_points])
    lenient = [name for name, cells in scores.items() if name not in ("student version", "solution") and all(c.points == c.max_points for c in cells)]
    step(f"each of {len(mistakes)} simulated mistakes loses points", [f"{n}: gets full points" for n in lenient])
    return report


def _run_variants(source: NotebookNode, reference: Any, manifest: Manifest,
                  variants: list[tuple[str, NotebookNode]], limits: Limits) -> dict[str, list[Any]]:
    jobs = [{"name": name, "notebook": harden(assemble(source, nb).notebook), "files": {}, "limits": limits.to_dict(),
             "prestart": True} for name, nb in variants]
    scores: dict[str, list[Any]] = {}

    def on_done(job: dict[str, Any], report: Any) -> None:
        if isinstance(report, BaseException):
            raise SheetError(f"{manifest.id}: running {job['name']} failed: {report}")
        report["notebook"] = nbformat.from_dict(report["notebook"])
        scores[job["name"]] = score_run(report, reference, manifest.test_points, source)

    with executor_for(min(default_workers(), max(1, len(jobs))), None) as executor:
        run_jobs(executor, jobs, on_done)
    return scores
