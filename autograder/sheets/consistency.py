"""Checks of a sheet's files, without running it: manifest and notebook agree, ``release/`` is current
and leaks nothing (no line of a solution, a hidden test or a paper task's model solution)."""
from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from nbformat import NotebookNode

from gradebook.course.config import CourseConfig
from gradebook.course.manifest import Manifest

from autograder.grading.assemble import grade_id, is_answer, is_test, nbgrader_meta
from autograder.grading.scoring import CHECK_NAME_RE
from autograder.nbgrader_bridge import generate

REGION_RE = re.compile(r"### BEGIN (SOLUTION|HIDDEN TESTS)(.*?)### END \1", re.S)
MIN_SECRET_CHARS = 10


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
    return {ln for ln in secret - public if _long(ln)}


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


def _long(line: str) -> bool:
    return len(re.sub(r"\s", "", line)) >= MIN_SECRET_CHARS


def check_leaks(source: NotebookNode, release: Path, paper_solutions: Iterable[str] = ()) -> list[str]:
    """Release files that contain a line of a solution or hidden-test region, or any line (of at least
    ten non-space characters) of a paper task's model solution."""
    secrets = secret_lines(source)
    secrets |= {ln for text in paper_solutions for ln in _lines(text) if _long(ln)}
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
        regenerate = f"regenerate it with `mlph generate {sheet}`"
        problems = [f"release/{sheet}/{p}: missing: release/ is out of date; {regenerate}" for p in sorted(fresh - committed)]
        problems += [f"release/{sheet}/{p}: not generated from source/{sheet}: release/ is out of date; {regenerate}"
                     for p in sorted(committed - fresh)]
        problems += [f"release/{sheet}/{p}: release/ is out of date with source/{sheet}; {regenerate}"
                     for p in sorted(fresh & committed) if _comparable(out / p) != _comparable(have / p)]
    return problems
