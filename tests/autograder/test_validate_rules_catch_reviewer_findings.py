"""Issue 11: `mlph validate` catches each class the reviewer found, and passes a sheet that follows the rules.

Fast tests call the rules directly; three tests run `validate_sheet` with real kernels: the tiny sheet
brought to the conventions passes every check, and two broken copies of it, each broken in several
independent ways, report exactly those problems and nothing else.
"""
from __future__ import annotations

import ast
from fractions import Fraction
from pathlib import Path

import nbformat
import pytest

from autograder.errors import SheetError
from autograder.grading.scoring import Reference
from autograder.nbgrader_bridge import generate
from autograder.sheets.consistency import check_leaks
from autograder.sheets.conventions import Conventions, check_conventions
from autograder.sheets.mistakes import check_declarations, load_mistakes, student_view, up_to_task
from autograder.sheets.rules import Flow, check_notebook_format, check_test_cells
from autograder.sheets.runs import record_problems
from autograder.sheets.validate import validate_sheet
from coursefactory import TINY_MANIFEST, code, conform, make_course, tiny_notebook
from gradebook.errors import ManifestError
from gradebook.course.manifest import load_manifest

# the tiny sheet is smaller than a real one: any points, one task, one mistake
TINY = Conventions(notebook_points=None, paper_points=None, notebook_tasks=(1, 4), paper_tasks=(0, 2),
                   min_mistakes=1, min_mistakes_per_cell=1)


def _sheet(tmp_path: Path, conforming: bool = True) -> Path:
    make_course(tmp_path / "course", conforming=conforming)
    return tmp_path / "course" / "source" / "tiny01"


def _edit(sheet: Path, edit) -> None:  # type: ignore[no-untyped-def]
    path = sheet / "tiny01.ipynb"
    nb = nbformat.read(path, as_version=4)
    edit({c.metadata["nbgrader"]["grade_id"]: c for c in nb.cells}, nb)
    nbformat.write(nb, path)


# --- the manifest: rubric, model solution, time budget ----------------------------------------------

RUBRIC = """
[[task.rubric]]
id = "a"
text = "Sets up the Lagrangian"
points = {a}
[[task.rubric]]
id = "{second}"
text = "Concludes"
points = {b}
"""


def _manifest(tmp_path: Path, extra: str = "", budget: str = "") -> Path:
    d = tmp_path / "tiny01"
    d.mkdir(parents=True, exist_ok=True)
    text = TINY_MANIFEST.format(sheet="tiny01", due="2026-11-04T10:00:00")
    (d / "sheet.toml").write_text(budget + text + extra)
    return d / "sheet.toml"


def test_manifest_parses_rubric_solution_and_budget(tmp_path):
    path = _manifest(tmp_path, "solution = '''\nE[aX] = a E[X].\n'''\n" + RUBRIC.format(a='"1.5"', b=1.5, second="b"),
                     budget="time_budget_s = 1.5\n")
    m = load_manifest(path)
    proof = m.paper_task("proof")
    assert proof is not None and proof.solution == "E[aX] = a E[X].\n"
    assert [(r.id, r.points) for r in proof.rubric] == [("a", Fraction(3, 2)), ("b", Fraction(3, 2))]
    assert m.time_budget_s == 1.5
    deduction = load_manifest(_manifest(tmp_path / "minus", RUBRIC.format(a=3, b=-1, second="b")))
    assert [r.points for r in deduction.paper_task("proof").rubric] == [3, -1]  # type: ignore[union-attr]
    bare = load_manifest(_manifest(tmp_path / "bare"))  # no rubric, no budget: parses (validate reports it)
    assert bare.paper_task("proof").rubric == () and bare.time_budget_s == 2.0  # type: ignore[union-attr]


@pytest.mark.parametrize("extra, budget, message", [
    (RUBRIC.format(a=1, b=1, second="b"), "", "paper task 'proof': the rubric items add up to 2 points, the task has 3"),
    (RUBRIC.format(a=2, b=1, second="a"), "", "paper task 'proof': rubric item id 'a' is used twice"),
    (RUBRIC.format(a=3, b=0, second="b"), "",
     "paper task 'proof': rubric item 'b' must carry points (positive, or negative for a deduction)"),
    (RUBRIC.format(a=4, b=-1, second="b"), "", "paper task 'proof': the rubric items add up to 4 points, the task has 3"),
    ("", "time_budget_s = 0\n", "'time_budget_s' must be a positive number of seconds, not 0"),
    ("", "time_budget_s = \"fast\"\n", "'time_budget_s' must be a positive number of seconds, not 'fast'"),
])
def test_bad_rubric_or_budget_is_a_manifest_error_naming_file_and_task(tmp_path, extra, budget, message):
    path = _manifest(tmp_path, extra, budget)
    with pytest.raises(ManifestError) as err:
        load_manifest(path)
    assert str(err.value) == f"{path}: {message}"


def test_rubric_on_a_notebook_task_is_refused(tmp_path):
    path = _manifest(tmp_path)
    path.write_text(path.read_text().replace('kind = "notebook"\n', 'kind = "notebook"\nsolution = "x"\n'))
    with pytest.raises(ManifestError, match="task 'scale': 'rubric' and 'solution' belong to paper tasks only"):
        load_manifest(path)


# --- static rules ---------------------------------------------------------------------------------

def test_flow_follows_the_cells_bindings_and_shadowing():
    tree = ast.parse("a = f(x)\nb = a + 1\ndef g(y):\n    return h(y)\nc = g(b)\nf = lambda z: z\nd = f(1)\n")
    flow = Flow(tree)
    value = {n.targets[0].id: n.value for n in tree.body if isinstance(n, ast.Assign)}  # type: ignore[attr-defined]
    assert flow.global_calls(value["c"]) == {"f", "h"}   # c = g(b): g's body calls h, b = a + 1, a = f(x)
    assert flow.global_calls(value["d"]) == set()        # f is the cell's own lambda by then


def test_the_tiny_sheet_follows_the_static_rules(tmp_path):
    sheet = _sheet(tmp_path)
    m = load_manifest(sheet / "sheet.toml")
    nb = nbformat.read(sheet / "tiny01.ipynb", as_version=4)
    assert check_test_cells(m, nb) == []
    assert check_notebook_format(nb) == []
    assert check_conventions(m, nb, TINY) == []
    assert check_declarations(m, nb, load_mistakes(m), TINY) == []


def test_weak_checks_and_checks_in_other_tasks_are_reported(tmp_path):
    sheet = _sheet(tmp_path)
    path = sheet / "sheet.toml"
    path.write_text(path.read_text().replace('[[task]]\nid = "proof"', '[[task]]\nid = "twice"\ntitle = "Twice"\n'
                    'kind = "notebook"\ntests = { test_twice = 1 }\n\n[[task]]\nid = "proof"'))

    def second_task(cells, nb):  # type: ignore[no-untyped-def]
        cells["test_scale_visible"].source = 'v = scale([1.0], 2)\ncheck("scale_shape", v.shape, expected=(1,), mode="exact")'
        cells["test_scale_more"].source = 'check("scale_ok", scale([1.0], 2), expected=True)'
        at = nb.cells.index(cells["test_scale_more"]) + 1
        nb.cells[at:at] = [code("twice_solution", "def twice(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n"
                                "    ### END SOLUTION", solution=True),
                           code("test_twice", 'check("twice", twice(3.0), expected=scale([3.0], 2)[0])',
                                grade=True, locked=True, points=1)]

    _edit(sheet, second_task)
    m = load_manifest(path)
    assert check_test_cells(m, nbformat.read(sheet / "tiny01.ipynb", as_version=4)) == [
        "test cell 'test_twice': the expected value of check 'twice' uses the student's scale(): compute it with "
        "trusted code",
        "test cell 'test_twice' (task 'twice') calls scale() of task 'scale': build inputs and expected values with "
        "trusted code, so that each task is graded on its own",
        "answer function scale() (cell 'scale_solution') is not called inside a visible check(..., expected=...) of "
        "any test cell: students get no feedback on it"]


def test_notebook_format_problems():
    nb = tiny_notebook()
    nb.nbformat_minor = 4
    nb.metadata["kernelspec"]["name"] = "python2"
    nb.cells[1]["id"] = nb.cells[2]["id"]
    nb.cells[3].metadata["nbgrader"]["grade_id"] = "scale_visible_test"
    assert check_notebook_format(nb) == [
        "nbformat 4.4: use 4.5 (cell ids)", "cell ids are missing or not unique", "kernelspec 'python2': use 'python3'",
        "test cell 'scale_visible_test': test grade ids start with 'test_'"]


def test_recorded_values_must_be_numbers_of_bounded_size_and_not_guessable():
    def rec(value):  # type: ignore[no-untyped-def]
        return {"value": value, "mode": "close", "rtol": 1e-6, "atol": 1e-9}

    reference: Reference = {
        "test_a": {"bad name!": rec({"scalar": 1.5}), "text": rec({"scalar": "yes"}),
                   "nan": rec({"shape": [2], "kind": "number", "data": [1.0, {"nonfinite": "nan"}]}),
                   "big": rec({"shape": [101, 100], "kind": "number", "data": [1.0] * 10100}),
                   "deep": rec({"items": [{"shape": [1, 1, 1, 1, 1], "kind": "number", "data": [2.0]}]})},
        "test_b": {"flag": rec({"scalar": True}), "zeros": rec({"shape": [3], "kind": "number", "data": [0, 0.0, 0]})},
        "test_c": {"flag": rec({"scalar": True}), "value": rec({"scalar": 0.25})},
    }
    assert record_problems(reference) == [
        "test cell 'test_a': check name 'bad name!': use at most 64 of [A-Za-z0-9_]",
        "test cell 'test_a': the value of check 'text' is a string or None: record numbers, bools or arrays",
        "test cell 'test_a': the value of check 'nan' holds NaN or infinite entries",
        "test cell 'test_a': the value of check 'big' has 10100 entries; at most 10000",
        "test cell 'test_a': the value of check 'deep' has rank 5; at most 4",
        "test cell 'test_b' records only values that can be guessed without solving the task (True/False, zeros): "
        "record the student's actual outputs"]


def test_mistake_declarations(tmp_path):
    sheet = _sheet(tmp_path)
    (sheet / "mistakes.toml").write_text(
        "[[mistake]]\ncell = 'scale_solution'\nwhy = 'w1'\nsource = 'x'\n"
        "[[mistake]]\ncell = 'scale_solution'\ntask = 'proof'\nwhy = 'w2'\nsource = 'x'\n"
        "[[mistake]]\ncell = 'setup'\ntask = 'scale'\nwhy = 'w3'\nsource = 'x'\n")
    m = load_manifest(sheet / "sheet.toml")
    where = sheet / "mistakes.toml"
    problems = check_declarations(m, nbformat.read(sheet / "tiny01.ipynb", as_version=4), load_mistakes(m),
                                  Conventions(min_mistakes=4, min_mistakes_per_cell=3))
    assert problems == [
        f"{where}: mistake 1 (scale_solution: w1) names no task: add task = \"<notebook task id of sheet.toml>\"",
        f"{where}: mistake 2 (scale_solution: w2): task 'proof' is not a notebook task of sheet.toml (scale)",
        f"{where}: mistake 3 (setup: w3): 'setup' is not an answer cell of the notebook",
        f"{where}: 3 mistakes; a sheet has at least 4 (rule min_mistakes = 4)",
        f"{where}: answer cell 'scale_solution' has 2 mistakes; each has at least 3 "
        "(rule min_mistakes_per_cell = 3)"]
    (sheet / "mistakes.toml").write_text("[[mistake]]\ncell = 'scale_solution'\ntask = 3\nwhy = 'w'\nsource = 'x'\n")
    with pytest.raises(SheetError, match=r"mistakes.toml: mistake 1 \(scale_solution: w\): 'task' must be a task id"):
        load_mistakes(m)


def test_student_view_has_the_solved_answers_and_stops_after_the_mistakes_task(tmp_path):
    sheet = _sheet(tmp_path)
    m = load_manifest(sheet / "sheet.toml")
    source = nbformat.read(sheet / "tiny01.ipynb", as_version=4)
    release = tiny_notebook()
    release.cells[2].source = "def scale(x, a):\n    raise NotImplementedError()"
    view = student_view(release, source)
    assert view.cells[2].source == source.cells[2].source and "HIDDEN" in view.cells[3].source  # not re-derived
    ids = [c.metadata["nbgrader"]["grade_id"] for c in up_to_task(view, m, "scale", "scale_solution").cells]
    assert ids == ["intro", "setup", "scale_solution", "test_scale_visible", "test_scale_more"]  # paper cell cut
    ids = [c.metadata["nbgrader"]["grade_id"] for c in up_to_task(view, m, "other", "scale_solution").cells]
    assert ids[-1] == "paper_proof"  # unknown task: the whole notebook


DEFAULT = "the default; set it in [conventions] of mlph.toml or of the sheet's sheet.toml)"


def test_sheet_shape_is_the_courses(tmp_path):
    sheet = _sheet(tmp_path, conforming=False)
    m = load_manifest(sheet / "sheet.toml")
    assert check_conventions(m, nbformat.read(sheet / "tiny01.ipynb", as_version=4), Conventions()) == [
        f"1 notebook tasks; a sheet has 3–4 (rule notebook_tasks = [3, 4]: {DEFAULT}",
        f"3 autograded points in sheet.toml; a sheet has 13 (rule notebook_points = 13: {DEFAULT}",
        f"3 pen-and-paper points in sheet.toml; a sheet has 7 (rule paper_points = 7: {DEFAULT}",
        "paper task 'proof' has no rubric in sheet.toml ([[task.rubric]] items with id, text and points that add up "
        "to the task's points)",
        "paper task 'proof' has no model solution in sheet.toml (solution = '''...''')",
        "the notebook's text does not say how to hand in the paper part: \"Hand in the pen-and-paper part as one "
        f"PDF ...\" (rule handin_sentence = 'Hand in the pen-and-paper part as one PDF': {DEFAULT}"]


def test_paper_model_solution_lines_in_release_are_leaks(tmp_path):
    release = tmp_path / "release"
    release.mkdir()
    (release / "notes.md").write_text("Short line\nBy linearity of the expectation, E[a X] = a E[X].\n")
    solution = "By linearity of the expectation, E[a X] = a E[X].\nShort line\n"
    assert check_leaks(tiny_notebook(), release, [solution]) == [
        f"{release / 'notes.md'}: contains the secret line 'By linearity of the expectation, E[a X] = a E[X].'"]
    assert check_leaks(tiny_notebook(), release, ["Something else entirely, not in release."]) == []


# --- validate_sheet with real kernels -------------------------------------------------------------

def test_a_sheet_that_follows_the_rules_passes_and_reports_times_and_mistakes(course_factory):
    cfg = course_factory(conforming=True)
    generate(cfg, "tiny01")
    said: list[str] = []
    report = validate_sheet(cfg, "tiny01", say=said.append, conventions=TINY)
    assert report.problems == []
    assert len(report.passed) == 19
    assert [t.cell for t in report.cell_times] == ["setup", "scale_solution", "test_scale_visible", "test_scale_more"]
    assert all(t.cpu >= 0 and t.wall > 0 for t in report.cell_times) and 0 <= report.runtime_s <= 2.0
    assert [(o.task, o.lost, o.visible_failures) for o in report.mistakes] == [
        ("scale", {"scale": Fraction(3)}, ["test_scale_visible", "test_scale_more"])]
    text = "\n".join(said)
    assert "slowest cells (CPU s): " in text and "every cell (CPU/wall s): setup " in text
    assert ("mistake in scale_solution: adds instead of multiplying [scale]: -3 in scale; caught by the visible tests "
            "(test_scale_visible, test_scale_more)") in text
    assert "1 of 1 mistakes caught by the visible tests, 0 only at grading" in text


def test_static_classes_are_reported_exactly(course_factory):
    """A visible check without expected, an answer function without a visible check, an expected value
    from the student's function, a paper task without rubric whose model solution is in the notebook,
    no hand-in sentence, a mistake without its task (caught only at grading)."""
    cfg = course_factory(conforming=True)
    sheet = cfg.source_dir / "tiny01"
    solution_line = "By linearity of the expectation, E[a X] = a E[X] for every constant a."

    def break_it(cells, nb):  # type: ignore[no-untyped-def]
        cells["intro"].source = "# Tiny sheet"
        cells["paper_proof"].source += "\n\n" + solution_line
        cells["scale_solution"].source += "\n\n\ndef double(x):\n    return scale(x, 2)\n"
        cells["test_scale_visible"].source = cells["test_scale_visible"].source.replace(", expected=[2.0, 4.0, 6.0]", "")
        cells["test_scale_more"].source = cells["test_scale_more"].source.replace(
            "expected=3.25 * np.linspace(0, 1, 5)", "expected=3.25 * scale(_readonly(np.linspace(0, 1, 5)), 1)").replace(
            "### END HIDDEN", 'check("double_hidden", double(_readonly(np.ones(2))), expected=[2.0, 2.0])\n### END HIDDEN')

    _edit(sheet, break_it)
    manifest = sheet / "sheet.toml"
    manifest.write_text(manifest.read_text().split("[[task.rubric]]")[0])
    with (sheet / "mistakes.toml").open("a") as fh:
        fh.write("[[mistake]]\ncell = 'scale_solution'\nwhy = 'wrong unless a is 2, 3 or 4'\nsource = '''\n"
                 "def scale(x, a):\n    x = np.asarray(x, dtype=float)\n    return a * x if a in (2, 3.0, 4) else -x\n'''\n")
    generate(cfg, "tiny01")
    report = validate_sheet(cfg, "tiny01", conventions=TINY)
    release = cfg.release_dir / "tiny01" / "tiny01.ipynb"
    assert report.problems == ["tiny01: " + p for p in [
        "paper task 'proof' has no rubric in sheet.toml ([[task.rubric]] items with id, text and points that add up "
        "to the task's points)",
        "the notebook's text does not say how to hand in the paper part: \"Hand in the pen-and-paper part as one "
        f"PDF ...\" (rule handin_sentence = 'Hand in the pen-and-paper part as one PDF': {DEFAULT}",
        "test cell 'test_scale_visible': check 'scale_visible' outside the hidden tests has no expected value, so it "
        "cannot fail in the student's notebook",
        "test cell 'test_scale_more': the expected value of check 'scale_hidden_b' uses the student's scale(): "
        "compute it with trusted code",
        "answer function double() (cell 'scale_solution') is not called inside a visible check(..., expected=...) of "
        "any test cell: students get no feedback on it",
        f"{sheet / 'mistakes.toml'}: mistake 2 (scale_solution: wrong unless a is 2, 3 or 4) names no task: add task = "
        "\"<notebook task id of sheet.toml>\"",
        f"{release}: contains the secret line '{solution_line}'"]]
    assert [(o.task, o.task_inferred, o.caught_visibly) for o in report.mistakes] == [
        ("scale", False, True), ("scale", True, False)]
    assert report.mistakes[1].summary().endswith("[scale?]: -3 in scale; only at grading")


def test_run_classes_are_reported_exactly(course_factory):
    """Writeable setup data, over the time budget, a warning on stderr, a test cell that records only a
    guessable value, a mistake charged to another task (the later task's answer uses the earlier one's)."""
    cfg = course_factory(conforming=True)
    sheet = cfg.source_dir / "tiny01"
    manifest = sheet / "sheet.toml"
    manifest.write_text(manifest.read_text().replace("time_budget_s = 2.0", "time_budget_s = 0.000001").replace(
        '[[task]]\nid = "proof"', '[[task]]\nid = "offset"\ntitle = "Offset"\nkind = "notebook"\n'
        'tests = { test_offset_values = 1, test_offset_finite = 1 }\n\n[[task]]\nid = "proof"'))
    with (sheet / "mistakes.toml").open("a") as fh:
        fh.write("[[mistake]]\ncell = 'offset_solution'\ntask = 'offset'\nwhy = 'subtracts'\nsource = '''\n"
                 "def offset(x, b):\n    return scale(x, 1.0) - b\n'''\n")

    def break_it(cells, nb):  # type: ignore[no-untyped-def]
        cells["setup"].source += "\nY_data = np.arange(3.0)\nimport warnings\nwarnings.warn('careful')\n"
        at = nb.cells.index(cells["test_scale_more"]) + 1
        nb.cells[at:at] = [
            code("offset_solution", "def offset(x, b):\n    ### BEGIN SOLUTION\n    return scale(x, 1.0) + b\n"
                 "    ### END SOLUTION", solution=True),
            code("test_offset_values", 'check("offset_values", offset(_readonly(np.array([1.0, 2.0])), 0.5), expected=[1.5, 2.5])',
                 grade=True, locked=True, points=1),
            code("test_offset_finite", 'check("offset_finite", bool(np.isfinite(offset(X_data, 1.0)).all()), '
                 'expected=True, mode="exact")', grade=True, locked=True, points=1)]

    _edit(sheet, break_it)
    generate(cfg, "tiny01")
    report = validate_sheet(cfg, "tiny01", conventions=TINY)
    assert report.problems[0].startswith("tiny01: the solution takes ")
    assert report.problems[0].endswith(" s of CPU time in its cells, over its budget of 1e-06 s (time_budget_s in sheet.toml)")
    assert report.problems[1].startswith("tiny01: cell 'setup' writes to stderr on the solution: ")
    assert "UserWarning: careful" in report.problems[1]
    assert report.problems[2:] == ["tiny01: " + p for p in [
        "test cell 'test_offset_finite' records only values that can be guessed without solving the task "
        "(True/False, zeros): record the student's actual outputs",
        "setup cell 'setup' leaves writeable arrays: Y_data (set X.flags.writeable = False right there)",
        "mistake in scale_solution: adds instead of multiplying: loses points in another task (1 in 'offset'), not only "
        "in its own task 'scale': a cross-task charge"]]
    assert [(o.label, o.lost) for o in report.mistakes] == [
        ("mistake in scale_solution: adds instead of multiplying", {"scale": 3, "offset": 1}),
        ("mistake in offset_solution: subtracts", {"offset": 1})]
