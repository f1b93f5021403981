"""`mlph validate`: is a sheet sound? Static checks, then the solution, the student version and every
mistake run through the real sandboxed grader, all in one pool.

Without a kernel: (1) manifest and notebook metadata agree; (2) the notebook's format; (3) the
sheet's shape (points, tasks, a rubric and a model solution for every paper task, the hand-in
sentence; the numbers from ``[conventions]`` in mlph.toml or the sheet's sheet.toml, :mod:`.conventions`); (4) every visible check can fail at home, every answer function has a visible check, no
expected value uses a student's function, no test cell uses another task's answers; (5) every
mistake names its task, enough mistakes; (6) ``release/`` is what ``source/`` generates; (7) no line
of a solution, a hidden test or a paper model solution is in ``release/``.

From the runs: (8) the solution passes every test cell; (9) within ``time_budget_s`` of cell time
(the time of each cell is printed); (10) nothing on stderr; (11) recorded values are well-formed and
not guessable; (12) the setup data and every test input are read-only (:mod:`.guards`); (12a) no
absolute tolerance below 1e-15 on values of order one or smaller; (12b) no test cell rebinds a name a
student's answer cell may define (simulated: :mod:`.guards`); (13) the student version fails every
test cell; (14) the solution graded as a submission gets full points; (15) in the student's view
(released notebook, visible tests only) the solution passes; (16) every mistake loses points, in its
own task only (with the later answers that reuse it, if declared), and is printed as "caught by the
visible tests" or "only at grading"; (17) every correct alternative gets full points and passes the
visible tests.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import nbformat
from nbformat import NotebookNode

from gradebook.course.config import CourseConfig
from gradebook.course.manifest import Manifest

from autograder.errors import SheetError
from autograder.grading.assemble import assemble, grade_id, is_answer
from autograder.grading.harden import harden
from autograder.grading.pipeline import source_imports
from autograder.grading.scoring import Reference, reference_from_run, score_run
from autograder.limits import Limits
from autograder.sheets import conventions as shape, guards, release_gate, runs
from autograder.sheets.consistency import check_leaks, check_metadata, check_release_current, secret_lines
from autograder.sheets.conventions import COURSE, Conventions, ConventionsError, check_conventions
from autograder.sheets.mistakes import (MistakeOutcome, check_declarations, failed_test_cells, load_alternatives,
                                        load_mistakes, outcome, student_view, task_of, up_to_task, with_answer,
                                        with_answers)
from autograder.sheets.rules import check_notebook_format, check_test_cells

__all__ = ["SheetReport", "CourseValidation", "validate_course", "validate_sheet", "validate_sheets", "closing_advice", "check_leaks", "secret_lines", "load_mistakes", "with_answer"]

REFERENCE, SOLUTION, STUDENT, VIEW = "reference", "solution", "student version", "student view"
SHADOW = "shadowing simulation"
Say = Callable[[str], None]


@dataclass
class SheetReport:
    sheet: str
    passed: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    time_budget_s: float = 0.0
    cell_times: list[runs.CellTime] = field(default_factory=list)  # the solution's code cells
    mistakes: list[MistakeOutcome] = field(default_factory=list)

    @property
    def runtime_s(self) -> float:
        """The solution's CPU seconds in its cells (what the budget is compared with)."""
        return sum(t.cpu for t in self.cell_times)

    @property
    def wall_s(self) -> float:
        return sum(t.wall for t in self.cell_times)


class _Steps:
    def __init__(self, report: SheetReport, say: Say):
        self.report, self.say = report, say

    def __call__(self, name: str, problems: list[str]) -> None:
        prefix = f"{self.report.sheet}: "
        self.report.problems.extend(prefix + p.removeprefix(prefix) for p in problems)
        if not problems:
            self.report.passed.append(name)
        self.say(("  ok    " if not problems else "  FAIL  ") + name)

    def info(self, text: str) -> None:
        self.say("        " + text)


@dataclass
class CourseValidation:
    """What `mlph validate` found: ``problems`` fail it; ``warnings`` (the work-in-progress sheets' problems
    and marks) do not, unless ``--strict``."""
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    work_in_progress: list[str] = field(default_factory=list)  # the sheets whose problems are warnings


def work_in_progress(cfg: CourseConfig, sheet: str) -> list[str]:
    """Why ``sheet`` is work in progress: marked ``wip = true`` in its sheet.toml, or outside the semester plan
    (its points could never count). Empty: a sheet of the course, held to every check."""
    reasons = [release_gate.plan_problem(cfg, sheet), shape.sheet_flags(cfg.root, cfg.manifest(sheet))]
    return [r for r in reasons if r]


def validate_course(cfg: CourseConfig, sheets: list[str], say: Say = lambda s: None, limits: Limits = Limits(),
                    heading: Say | None = None, conventions: Conventions | None = None,
                    strict: bool = False) -> CourseValidation:
    """`mlph validate`: validate each sheet and record each result for `mlph release` (:mod:`.release_gate`).
    A work-in-progress sheet (:func:`work_in_progress`) is validated too, its problems reported as warnings;
    ``strict``: they fail, and so does the mark itself."""
    out = CourseValidation()
    for sheet in sheets:
        (heading or say)(sheet)
        wip = work_in_progress(cfg, sheet)
        for reason in wip:
            say(f"  WARNING {reason}; `mlph release {sheet}` refuses it")
        found = validate_sheet(cfg, sheet, limits, say, conventions).problems
        release_gate.record_validation(cfg, sheet, found)
        if wip and not strict:
            out.work_in_progress.append(sheet)
            out.warnings += [f"{sheet} (work in progress: {'; '.join(wip)}): {p.removeprefix(sheet + ': ')}"
                             for p in found] or [f"{sheet} is work in progress: {'; '.join(wip)}"]
        else:
            out.problems += found + [f"{sheet}: {r} (--strict)" for r in wip]
    return out


def validate_sheets(cfg: CourseConfig, sheets: list[str], say: Say = lambda s: None, limits: Limits = Limits(),
                    heading: Say | None = None, conventions: Conventions | None = None) -> list[str]:
    """Every problem :func:`validate_course` finds, every sheet held to every check (``strict``)."""
    return validate_course(cfg, sheets, say, limits, heading, conventions, strict=True).problems


def closing_advice(sheets: list[str], problems: list[str]) -> str:
    """What to do next, as `mlph release` will see it."""
    if not sheets:
        return "no sheet is ready to release"
    if problems:
        return (f"`mlph release` refuses {' '.join(sheets)} until `mlph validate` passes on the current files "
                "(or with --force)")
    return "release with " + ", ".join(f"`mlph release {s}`" for s in sheets)


def validate_sheet(cfg: CourseConfig, sheet: str, limits: Limits = Limits(), say: Say = lambda s: None,
                   conventions: Conventions | None = None) -> SheetReport:
    """Validate one sheet against ``conventions`` (None: the course's and the sheet's own, as
    :func:`.conventions.sheet_conventions` reads them)."""
    manifest = cfg.manifest(sheet)
    report = SheetReport(sheet, time_budget_s=manifest.time_budget_s)
    step = _Steps(report, say)
    conv, conv_problems = _conventions_of(cfg, manifest, conventions)
    source = nbformat.read(manifest.directory / manifest.notebook, as_version=4)
    mistakes = load_mistakes(manifest)
    alternatives = load_alternatives(manifest)
    step("manifest and notebook metadata agree", check_metadata(manifest, source))
    step("notebook format (nbformat 4.5, cell ids, python3, test grade ids)", check_notebook_format(source))
    step("sheet shape: points, tasks, paper rubrics and model solutions, hand-in",
         conv_problems + check_conventions(manifest, source, conv))
    step("visible checks can fail at home; every answer function has one; each task graded on its own",
         check_test_cells(manifest, source))
    step("every mistake names its task; enough mistakes", check_declarations(manifest, source, mistakes, conv)
         + [p for p in check_declarations(manifest, source, alternatives, conv) if "is not an answer cell" in p])
    stale = check_release_current(cfg, sheet)
    step("release/ is what source/ generates", stale)
    if stale:
        step.info(f"release/{sheet} is out of date: the student-version checks are skipped until it is "
                  f"regenerated (`mlph generate {sheet}`)")
    release_path = cfg.release_dir / sheet / manifest.notebook
    solutions = [t.solution for t in manifest.paper_tasks if t.solution]
    step("no solution, hidden-test or paper model-solution line in release/",
         check_leaks(source, release_path.parent, solutions) if release_path.parent.is_dir() else ["release/ missing"])
    release = nbformat.read(release_path, as_version=4) if release_path.is_file() and not stale else None
    runnable = [m for m in mistakes if _runnable(m, source)]
    correct = [a for a in alternatives if _runnable(a, source)]
    reports = runs.run_all(_variants(manifest, source, release, runnable, correct), limits, source_imports(source),
                           REFERENCE)
    reference = _reference_steps(step, reports[REFERENCE], sheet)
    if reference is not None:
        _graded_steps(step, manifest, source, reference, reports)
        _mistake_steps(step, manifest, source, reference, runnable, reports)
        if correct:
            _alternative_steps(step, manifest, source, reference, correct, reports)
    return report


def _conventions_of(cfg: CourseConfig, manifest: Manifest, given: Conventions | None) -> tuple[Conventions, list[str]]:
    """The conventions to check against, and the problem of a wrong ``[conventions]`` value (then the defaults)."""
    if given is not None:
        return given, []
    try:
        return shape.sheet_conventions(cfg.root, manifest), []
    except ConventionsError as exc:
        return COURSE, [str(exc)]


def _runnable(m: dict[str, Any], source: NotebookNode) -> bool:
    cells = {grade_id(c) for c in source.cells if is_answer(c)}
    return m["cell"] in cells and set(m.get("answers", {})) <= cells


def _variants(manifest: Manifest, source: NotebookNode, release: NotebookNode | None,
              mistakes: list[dict[str, Any]], alternatives: list[dict[str, Any]]) -> dict[str, NotebookNode]:
    """Every notebook validate runs, by name (as run: hardened where a submission would be). A
    mistake's student view stops after its task's last test cell."""
    graded = {REFERENCE: runs.probed(guards.guarded(source)), SOLUTION: harden(assemble(source, source).notebook),
              SHADOW: guards.guarded(source, guards.names_tests_bind(source))}
    if release is not None:
        graded[STUDENT] = harden(assemble(source, release).notebook)
        graded[VIEW] = student_view(release, source)
    for i, m in enumerate(mistakes):
        graded[f"mistake {i}"] = harden(assemble(source, with_answers(source, m)).notebook)
        if release is not None:
            view = student_view(release, source)
            if not m.get("answers"):  # a mistake reused by later answers shows after its own task too
                view = up_to_task(view, manifest, task_of(m, manifest, source)[0], m["cell"])
            graded[f"mistake {i} ({VIEW})"] = with_answers(view, m)
    for i, a in enumerate(alternatives):
        graded[f"alternative {i}"] = harden(assemble(source, with_answers(source, a)).notebook)
        if release is not None:
            graded[f"alternative {i} ({VIEW})"] = with_answers(student_view(release, source), a)
    return graded


def _reference_steps(step: _Steps, run: dict[str, Any] | str, sheet: str) -> Reference | None:
    """The steps read off the solution's (probed) run; its reference, or None if it failed."""
    name = "the solution passes every test cell"
    if isinstance(run, str):
        step(name, [f"the solution notebook {run}"])
        return None
    try:
        reference = reference_from_run(run, sheet)
    except SheetError as exc:
        step(name, str(exc).splitlines())
        return None
    step(name, [])
    _time_step(step, runs.cell_times(run))
    step("an honest run writes nothing to stderr", runs.stderr_output(run))
    step("recorded values: well-formed, named [A-Za-z0-9_], not guessable", runs.record_problems(reference))
    step("setup data is read-only (in-place bugs fail in their own task)",
         [f"setup cell {cell!r} leaves writeable arrays: {', '.join(names)} (set X.flags.writeable = False "
          "right there)" for cell, names in runs.writeable_setup_arrays(run).items()])
    step("every test input is read-only (an answer that modifies its input fails in its own task)",
         guards.writeable_problems(guards.guard_report(run)))
    step("tolerances: no absolute tolerance below 1e-15 on values of order one or smaller",
         runs.tolerance_problems(reference))
    return reference


def _time_step(step: _Steps, times: list[runs.CellTime]) -> None:
    report = step.report
    report.cell_times = times
    total, budget = report.runtime_s, report.time_budget_s
    step(f"the solution runs within its time budget ({total:.2f} s CPU of {budget:g} s; wall {report.wall_s:.2f} s)",
         [] if total <= budget else  # NaN (no clock) fails too
         [f"the solution takes {total:.2f} s of CPU time in its cells, over its budget of {budget:g} s "
          "(time_budget_s in sheet.toml)"])
    slowest = sorted(times, key=lambda t: -t.cpu if t.cpu == t.cpu else 0.0)[:3]
    step.info("slowest cells (CPU s): " + ", ".join(f"{t.cell} {t.cpu:.3f}" for t in slowest))
    step.info("every cell (CPU/wall s): " + ", ".join(f"{t.cell} {t.cpu:.3f}/{t.wall:.3f}" for t in times))


def _score(run: dict[str, Any] | str, reference: Reference, manifest: Manifest, source: NotebookNode) -> Any:
    return run if isinstance(run, str) else score_run(run, reference, manifest.test_points, source)


def _graded_steps(step: _Steps, manifest: Manifest, source: NotebookNode, reference: Reference,
                  reports: dict[str, dict[str, Any] | str]) -> None:
    if STUDENT in reports:
        cells = _score(reports[STUDENT], reference, manifest, source)
        step("every test cell fails on the student version",
             [f"student version {cells}"] if isinstance(cells, str) else
             [f"test cell {c.grade_id!r} passes on the unanswered student version (vacuous test)"
              for c in cells if c.points > 0])
    cells = _score(reports[SOLUTION], reference, manifest, source)
    step("the solution graded as a submission gets full points (test cells without expected values)",
         [f"the solution as a submission {cells}"] if isinstance(cells, str) else
         [f"test cell {c.grade_id!r} fails: {c.message}" for c in cells if c.points < c.max_points])
    shadow = reports[SHADOW]
    step("no test cell rebinds a name a student's answer cell may define (simulated with sentinels)",
         guards.shadow_problems(shadow if isinstance(shadow, str) else guards.guard_report(shadow))
         + ([] if isinstance(shadow, str) else
            [f"with the answer cells binding the names the test cells bind, test cell {gid!r} fails: "
             f"{_error_of(shadow, gid)}" for gid in failed_test_cells(shadow)]))
    if VIEW in reports:
        view = reports[VIEW]
        step("the solution passes the visible tests in the student's view (release/, no hidden tests)",
             [f"the student's view {view}"] if isinstance(view, str) else
             [f"in the student's view, the solution fails test cell {gid!r}: {_error_of(view, gid)}"
              for gid in failed_test_cells(view)])


def _error_of(run: dict[str, Any], gid: str) -> str:
    for i, cell in enumerate(run["notebook"].cells):
        if grade_id(cell) == gid:
            errors = [f"{o.get('ename')}: {o.get('evalue')}" for o in cell.get("outputs", []) if o.get("output_type") == "error"]
            return errors[0][:300] if errors else run["states"][i]
    return "not run"


def _alternative_steps(step: _Steps, manifest: Manifest, source: NotebookNode, reference: Reference,
                       alternatives: list[dict[str, Any]], reports: dict[str, dict[str, Any] | str]) -> None:
    problems = []
    for i, a in enumerate(alternatives):
        what = f"correct alternative in {a['cell']}: {a['why']}"
        cells = _score(reports[f"alternative {i}"], reference, manifest, source)
        if isinstance(cells, str):
            problems.append(f"{what}: {cells}")
            continue
        problems += [f"{what}: loses points in test cell {c.grade_id!r}: {c.message}" for c in cells if c.points < c.max_points]
        view = reports.get(f"alternative {i} ({VIEW})")
        if isinstance(view, dict):
            problems += [f"{what}: fails the visible test cell {gid!r} at home: {_error_of(view, gid)}"
                         for gid in failed_test_cells(view)]
    step(f"each of {len(alternatives)} correct alternatives gets full points and passes the visible tests", problems)


def _mistake_steps(step: _Steps, manifest: Manifest, source: NotebookNode, reference: Reference,
                   mistakes: list[dict[str, Any]], reports: dict[str, dict[str, Any] | str]) -> None:
    results = []
    for i, m in enumerate(mistakes):
        graded = _score(reports[f"mistake {i}"], reference, manifest, source)
        results.append(outcome(m, manifest, source, graded, reports.get(f"mistake {i} ({VIEW})")))
    step.report.mistakes = results
    step(f"each of {len(mistakes)} simulated mistakes loses points, in its own task only",
         [p for r in results for p in r.problems()])
    for r in results:
        step.info(r.summary())
    visible = sum(r.caught_visibly for r in results)
    step.info(f"{visible} of {len(results)} mistakes caught by the visible tests, {len(results) - visible} only at grading")
