"""Simulated mistakes (``mistakes.toml``): what each one must do, and what it did.

Every ``[[mistake]]`` replaces one answer cell (``cell``) with ``source``, says ``why`` and names its
``task`` (a notebook task of ``sheet.toml``). `mlph validate` grades it like a submission and checks
that it loses points in at least one test cell of its own task and in no test cell of any other task;
it also runs it in the student's view (the released notebook: visible tests with their expected
values, no hidden tests) to tell whether the student sees it fail at home or only at grading.

A mistake may also replace other answer cells (``[mistake.answers]``, grade id = source): later answers
that *reuse* the mistaken function. The rule stays: points lost in the mistake's own task only.

``[[alternative]]`` entries (same keys, no ``task`` needed) are correct answers written another way:
graded, each gets full points, and in the student's view it passes every visible test.
"""
from __future__ import annotations

import copy
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from nbformat import NotebookNode

from gradebook.course.manifest import Manifest

from autograder.errors import SheetError
from autograder.grading.assemble import grade_id, is_answer, is_test
from autograder.grading.scoring import CellResult
from autograder.sheets.conventions import Conventions
from autograder.sheets.rules import cell_tasks


def _load(manifest: Manifest, kind: str) -> list[dict[str, Any]]:
    """The ``[[kind]]`` entries of the sheet's mistakes.toml; none without a file."""
    path = manifest.directory / "mistakes.toml"
    if not path.is_file():
        return []
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise SheetError(f"{path}: not valid TOML: {exc}") from exc
    return _entries(raw, kind, path)


def load_mistakes(manifest: Manifest) -> list[dict[str, str]]:
    """The sheet's mistakes (``cell``, ``why``, ``source`` and, if given, ``task``); none without a file."""
    return _load(manifest, "mistake")


def load_alternatives(manifest: Manifest) -> list[dict[str, Any]]:
    """The sheet's correct alternatives (``[[alternative]]`` in mistakes.toml)."""
    return _load(manifest, "alternative")


def _entries(raw: dict[str, Any], kind: str, path: Any) -> list[dict[str, Any]]:
    entries = raw.get(kind, [])
    for i, m in enumerate(entries, 1):
        if not all(isinstance(m.get(k), str) for k in ("cell", "why", "source")):
            raise SheetError(f"{path}: {kind} {i} needs string 'cell', 'why' and 'source'")
        if "task" in m and not isinstance(m["task"], str):
            raise SheetError(f"{path}: {kind} {i} ({m['cell']}: {m['why']}): 'task' must be a task id (a string)")
        answers = m.get("answers", {})
        if not isinstance(answers, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in answers.items()):
            raise SheetError(f"{path}: {kind} {i} ({m['cell']}: {m['why']}): 'answers' must map answer cells "
                             "to their source")
    return list(entries)


def label(m: dict[str, str]) -> str:
    return f"mistake in {m['cell']}: {m['why']}"


def with_answer(nb: NotebookNode, cell_id: str, code: str) -> NotebookNode:
    """A copy of ``nb`` with the answer cell ``cell_id`` replaced by ``code``."""
    new = copy.deepcopy(nb)
    hits = [c for c in new.cells if grade_id(c) == cell_id and is_answer(c)]
    if not hits:
        raise SheetError(f"no answer cell {cell_id!r}")
    hits[0].source = code
    return new


def with_answers(nb: NotebookNode, m: dict[str, Any]) -> NotebookNode:
    """A copy of ``nb`` with the answer cells of a mistake or alternative replaced (``cell`` and, if
    given, the later answers in ``answers`` that reuse it)."""
    new = with_answer(nb, m["cell"], m["source"])
    for cell_id, code in m.get("answers", {}).items():
        new = with_answer(new, cell_id, code)
    return new


def student_view(release: NotebookNode, source: NotebookNode) -> NotebookNode:
    """The released notebook as a student who solved every task sees it: the solution's answer cells,
    the visible tests with their expected values, no hidden tests (run as it is, not hardened)."""
    answers = {grade_id(c): c.source for c in source.cells if is_answer(c) and grade_id(c)}
    nb = copy.deepcopy(release)
    for cell in nb.cells:
        gid = grade_id(cell)
        if is_answer(cell) and gid in answers:
            cell.source = answers[gid]
    return nb


def task_of(m: dict[str, str], manifest: Manifest, source: NotebookNode) -> tuple[str | None, bool]:
    """The mistake's task and whether it is only inferred (no ``task`` given: the task whose test
    cells follow its answer cell)."""
    if "task" in m:
        return m["task"], False
    return cell_tasks(manifest, source).get(m["cell"]), True


def up_to_task(nb: NotebookNode, manifest: Manifest, task: str | None, answer: str) -> NotebookNode:
    """``nb`` up to the last test cell of ``task`` (the cells after it cannot show a mistake of this
    task), and at least up to the answer cell ``answer``."""
    tests = next((set(t.tests) for t in manifest.notebook_tasks if t.id == task), set())
    index = {grade_id(c): i for i, c in enumerate(nb.cells) if grade_id(c)}
    last = max((index[g] for g in tests if g in index), default=len(nb.cells) - 1)
    new = copy.deepcopy(nb)
    new.cells = new.cells[:max(last, index.get(answer, 0)) + 1]
    return new


def check_declarations(manifest: Manifest, source: NotebookNode, mistakes: list[dict[str, str]],
                       conv: Conventions) -> list[str]:
    """Each mistake names an answer cell and its notebook task; enough mistakes per sheet and cell."""
    where = manifest.directory / "mistakes.toml"
    tasks = {t.id for t in manifest.notebook_tasks}
    of_cell = cell_tasks(manifest, source)
    answers = [gid for c in source.cells if is_answer(c) and (gid := grade_id(c))]
    problems = []
    for i, m in enumerate(mistakes, 1):
        what = f"{where}: mistake {i} ({m['cell']}: {m['why']})"
        problems += [f"{what}: {c!r} is not an answer cell of the notebook"
                     for c in [m["cell"], *m.get("answers", {})] if c not in answers]
        if "task" not in m:
            problems.append(f"{what} names no task: add task = \"<notebook task id of {manifest.path.name}>\"")
        elif m["task"] not in tasks:
            problems.append(f"{what}: task {m['task']!r} is not a notebook task of {manifest.path.name} "
                            f"({', '.join(sorted(tasks))})")
        elif of_cell.get(m["cell"]) not in (None, m["task"]):
            problems.append(f"{what}: names task {m['task']!r}, but the test cells after {m['cell']!r} are "
                            f"task {of_cell[m['cell']]!r}'s")
    if len(mistakes) < conv.min_mistakes:
        problems.append(f"{where}: {len(mistakes)} mistakes; a sheet has at least {conv.min_mistakes} "
                        f"({conv.rule('min_mistakes')})")
    per_cell = Counter(m["cell"] for m in mistakes)
    problems += [f"{where}: answer cell {a!r} has {per_cell[a]} mistakes; each has at least "
                 f"{conv.min_mistakes_per_cell} ({conv.rule('min_mistakes_per_cell')})" for a in answers if per_cell[a] < conv.min_mistakes_per_cell]
    return problems


@dataclass
class MistakeOutcome:
    """What one simulated mistake did: points lost per task (graded) and the visible test cells that
    failed in the student's view (empty: only the grader notices)."""
    label: str
    task: str | None
    task_inferred: bool = False  # mistakes.toml names no task: the one its answer cell belongs to
    lost: dict[str, Fraction] = field(default_factory=dict)
    visible_failures: list[str] = field(default_factory=list)
    error: str = ""  # the mistake could not be graded
    view_error: str = ""  # the student's view could not be run (no release/, or it failed)

    @property
    def caught_visibly(self) -> bool:
        return bool(self.visible_failures)

    def summary(self) -> str:
        if self.error:
            return f"{self.label}: {self.error}"
        lost = ", ".join(f"-{p} in {t}" for t, p in self.lost.items()) or "no points lost"
        seen = (f"caught by the visible tests ({', '.join(self.visible_failures)})" if self.visible_failures
                else f"visibility unknown: {self.view_error}" if self.view_error else "only at grading")
        task = f"{self.task or ''}?" if self.task_inferred else self.task
        return f"{self.label} [{task}]: {lost}; {seen}"

    def problems(self) -> list[str]:
        if self.error:
            return [f"{self.label}: {self.error}"]
        if not self.lost:
            return [f"{self.label}: gets full points"]
        if self.task is None:
            return []
        out = []
        if self.task not in self.lost:
            out.append(f"{self.label}: loses no points in its own task {self.task!r}")
        others = {t: p for t, p in self.lost.items() if t != self.task}
        if others:
            out.append(f"{self.label}: loses points in another task ("
                       + ", ".join(f"{p} in {t!r}" for t, p in others.items())
                       + f"), not only in its own task {self.task!r}: a cross-task charge")
        return out


def outcome(m: dict[str, str], manifest: Manifest, source: NotebookNode, graded: list[CellResult] | str,
            view: dict[str, Any] | str | None) -> MistakeOutcome:
    """The outcome from the graded cells (or the reason the run failed) and the student-view run report."""
    result = MistakeOutcome(label(m), *task_of(m, manifest, source))
    if isinstance(graded, str):
        result.error = graded
        return result
    test_task = {gid: t.id for t in manifest.notebook_tasks for gid in t.tests}
    for cell in graded:
        if cell.points < cell.max_points:
            task = test_task[cell.grade_id]
            result.lost[task] = result.lost.get(task, Fraction(0)) + cell.max_points - cell.points
    if isinstance(view, dict):
        result.visible_failures = failed_test_cells(view)
    else:
        result.view_error = view or "no release/ to run the student's view"
    return result


def failed_test_cells(run: dict[str, Any]) -> list[str]:
    """Grade ids of the test cells that raised (or did not finish) in a run report."""
    nb = run["notebook"]
    return [grade_id(c) or f"cell {i}" for i, c in enumerate(nb.cells)
            if is_test(c) and (run["states"][i] != "ok" or any(o.get("output_type") == "error" for o in c.get("outputs", [])))]
