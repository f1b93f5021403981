"""`mlph validate` proves that correct code never fails at home and that a bug is charged once:

- a test cell that rebinds a name a student's answer cell may define (its own helper) is found by
  simulation: the answer cells pre-bind every name the test cells bind, and the guarded answer
  functions notice when a test cell replaced one before calling them (``_ref_`` names are exempt);
- every array a test cell passes to an answer function is read-only (the student's own outputs
  passed on are exempt);
- no absolute tolerance below 1e-15 on values of order one or smaller;
- ``[[alternative]]`` answers get full points and pass the visible tests; a mistake may declare the
  later answers that reuse it (``[mistake.answers]``), and is then charged to its own task only.
"""
from __future__ import annotations

import ast
from fractions import Fraction

import nbformat
import pytest
from nbformat.v4 import new_notebook

from autograder.errors import SheetError
from autograder.nbgrader_bridge import generate
from autograder.sheets.conventions import Conventions
from autograder.sheets.guards import _bound_names, names_tests_bind
from autograder.sheets.mistakes import load_alternatives, load_mistakes
from autograder.sheets.runs import tolerance_problems
from autograder.sheets.validate import validate_sheet
from coursefactory import code
from gradebook.course.manifest import load_manifest

TINY = Conventions(notebook_points=None, paper_points=None, notebook_tasks=(1, 4), paper_tasks=(0, 2),
                   min_mistakes=1, min_mistakes_per_cell=1)


# --- fast: which names count, which tolerances are too tight, the declarations ----------------------

def test_names_bound_at_top_level_by_test_cells_except_setup_data_and_ref_names():
    nb = new_notebook(cells=[
        code("setup", "import numpy as np\nX_data = np.ones(3)\n\ndef _readonly(a):\n    return a", locked=True),
        code("f_solution", "def f(x):\n    return x", solution=True),
        code("test_f", "_X = np.ones(2)\n_ref_Y = 2 * _X\nfor _a in (_X,):\n    pass\nX_data = X_data + 0\n"
                       "def _helper(z):\n    inner = z\n    return inner\nif True:\n    loss, (grad, _) = 1.0, (2.0, 3)\n"
                       "import scipy.special as sps\n[w for w in range(2)]\n", grade=True, locked=True, points=1)])
    assert names_tests_bind(nb) == ["_", "_X", "_a", "_helper", "grad", "loss", "sps"]
    assert "inner" not in _bound_names(ast.parse(nb.cells[2].source)) and "w" not in _bound_names(ast.parse(nb.cells[2].source))


def _record(value, rtol, atol, mode="close"):
    return {"value": value, "mode": mode, "rtol": rtol, "atol": atol}


def test_a_tolerance_below_rounding_on_values_of_order_one_is_flagged():
    reference = {"test_sig": {
        "tail": _record({"shape": [2], "kind": "number", "data": [9.36e-14, 0.5]}, 1e-12, 1e-300),
        "far": _record({"scalar": 0.0}, 1e-12, 1e-300),
        "fine": _record({"shape": [2], "kind": "number", "data": [9.36e-14, 0.5]}, 1e-9, 1e-15),
        "large": _record({"scalar": 1e6}, 1e-12, 0.0),          # relative tolerance 1e-6 there: fine
        "exact": _record({"scalar": 0}, 0.0, 0.0, "exact")}}
    problems = tolerance_problems(reference)
    assert [p.split(": check ")[1].split(" ")[0] for p in problems] == ["'tail'", "'far'"]
    assert "allows a difference of only 9.36e-26 at the value 9.36e-14" in problems[0]


def test_alternatives_and_reused_answers_are_read_and_checked(tmp_path):
    d = tmp_path / "s"
    d.mkdir()
    (d / "sheet.toml").write_text('id = "s"\ntitle = "S"\nnotebook = "s.ipynb"\ndue = "2026-11-04T10:00:00"\n'
                                  'timezone = "Europe/Berlin"\n[[task]]\nid = "t"\ntitle = "T"\nkind = "notebook"\ntests = { test_t = 1 }\n')
    (d / "mistakes.toml").write_text(
        "[[mistake]]\ncell = 'a'\ntask = 't'\nwhy = 'w'\nsource = 'x = 1'\n[mistake.answers]\nb = 'y = 2'\n\n"
        "[[alternative]]\ncell = 'a'\nwhy = 'another way'\nsource = 'x = 3'\n")
    manifest = load_manifest(d / "sheet.toml")
    assert load_mistakes(manifest)[0]["answers"] == {"b": "y = 2"}
    assert [a["why"] for a in load_alternatives(manifest)] == ["another way"]
    (d / "mistakes.toml").write_text("[[alternative]]\ncell = 'a'\nwhy = 'w'\nsource = 'x'\nanswers = { b = 3 }\n")
    with pytest.raises(SheetError, match="alternative 1 .*'answers' must map answer cells to their source"):
        load_alternatives(manifest)


# --- with real kernels: the tiny sheet, broken in each new way, then repaired ----------------------

SHADOWING_TEST = '''
def _double(z):  # a reference helper with a name a student may use for their own helper
    return 2.0 * z


check("scale_visible", scale(_readonly(np.array([1.0, 2.0, 3.0])), 2), expected=_double(np.array([1.0, 2.0, 3.0])))
check("scale_tiny", scale(np.array([1e-20, 0.5]), 3.0), expected=[3e-20, 1.5], rtol=1e-12, atol=1e-300)
'''
REPAIRED_TEST = SHADOWING_TEST.replace("_double", "_ref_double").replace(
    "scale(np.array([1e-20, 0.5]), 3.0)", "scale(_readonly(np.array([1e-20, 0.5])), 3.0)").replace("atol=1e-300", "atol=1e-15")
OWN_HELPER = "def _double(x):  # double precision\n    return np.asarray(x, dtype=np.float64)\n\n\ndef scale(x, a):\n    return a * _double(x)\n"
OFFSET_TASK = ('[[task]]\nid = "offset"\ntitle = "Offset"\nkind = "notebook"\ntests = { test_offset = 1 }\n\n'
               '[[task]]\nid = "proof"')
MISTAKES = ("[[mistake]]\ncell = 'scale_solution'\ntask = 'scale'\nwhy = 'adds, and offset reuses it'\n"
            "source = '''\ndef scale(x, a):\n    return a + np.asarray(x, dtype=float)\n'''\n"
            "[mistake.answers]\noffset_solution = '''\ndef offset(x, b):\n    return scale(x, 1.0) + b\n'''\n\n"
            "[[mistake]]\ncell = 'offset_solution'\ntask = 'offset'\nwhy = 'subtracts'\nsource = '''\n"
            "def offset(x, b):\n    return np.asarray(x, dtype=float) - b\n'''\n\n"
            "[[alternative]]\ncell = 'scale_solution'\nwhy = 'its own helper _double'\nsource = '''\n" + OWN_HELPER + "'''\n")


def _tiny(course_factory, test_source: str):  # type: ignore[no-untyped-def]
    cfg = course_factory(conforming=True)
    sheet = cfg.source_dir / "tiny01"
    manifest = sheet / "sheet.toml"
    manifest.write_text(manifest.read_text().replace('[[task]]\nid = "proof"', OFFSET_TASK))
    with (sheet / "mistakes.toml").open("a") as fh:
        fh.write(MISTAKES)
    path = sheet / "tiny01.ipynb"
    nb = nbformat.read(path, as_version=4)
    cells = {c.metadata["nbgrader"]["grade_id"]: c for c in nb.cells}
    cells["test_scale_visible"].source = test_source.strip() + "\n### BEGIN HIDDEN TESTS\n" + \
        cells["test_scale_visible"].source.split("### BEGIN HIDDEN TESTS\n")[1]
    at = nb.cells.index(cells["test_scale_more"]) + 1
    nb.cells[at:at] = [
        code("offset_solution", "def offset(x, b):\n    ### BEGIN SOLUTION\n    return np.asarray(x, dtype=float) + b\n"
             "    ### END SOLUTION", solution=True),
        code("test_offset", 'check("offset_values", offset(_readonly(np.array([1.0, 2.0])), 0.5), expected=[1.5, 2.5])',
             grade=True, locked=True, points=1)]
    nbformat.write(nb, path)
    generate(cfg, "tiny01")
    return cfg


def test_shadowing_writeable_inputs_tight_tolerances_and_reuse_are_reported(course_factory):
    cfg = _tiny(course_factory, SHADOWING_TEST)
    report = validate_sheet(cfg, "tiny01", conventions=TINY)
    assert report.problems == ["tiny01: " + p for p in [
        "test cell 'test_scale_visible' passes writeable arrays: scale() argument 1 (make every test input "
        "read-only: X.flags.writeable = False, or the setup cell's helper)",
        "test cell 'test_scale_visible': check 'scale_tiny' allows a difference of only 3e-32 at the value 2.9999999999999997e-20 "
        "(atol=1e-300, rtol=1e-12): rounding alone exceeds that; use atol >= 1e-15",
        "test cell 'test_scale_visible' calls an answer function after a test cell (this or an earlier one) rebound "
        "_double, which a student's answer cell may define (the student's own helper or constant would be "
        "replaced): prefix the test's names with '_ref_' or move helpers into mlph_check",
        "mistake in scale_solution: adds, and offset reuses it: loses points in another task (1 in 'offset'), not "
        "only in its own task 'scale': a cross-task charge",
        "correct alternative in scale_solution: its own helper _double: fails the visible test cell "
        "'test_scale_visible' at home: AssertionError: check 'scale_visible' failed: entry 2: got 12.0, expected 6.0 "
        "(difference 6; rtol=1e-06, atol=1e-09); 3 of 3 entries out of tolerance",
        "correct alternative in scale_solution: its own helper _double: fails the visible test cell "
        "'test_scale_more' at home: AssertionError: check 'scale_data' failed: entry 4: got 6.0, expected 3.0 "
        "(difference 3; rtol=1e-06, atol=1e-09); 4 of 5 entries out of tolerance"]]
    assert [(o.task, o.lost) for o in report.mistakes] == [  # the tiny sheet's own mistake, then these two
        ("scale", {"scale": Fraction(3)}), ("scale", {"scale": Fraction(3), "offset": Fraction(1)}),
        ("offset", {"offset": Fraction(1)})]


def test_the_repaired_sheet_passes_with_its_alternative(course_factory):
    cfg = _tiny(course_factory, REPAIRED_TEST)
    said: list[str] = []
    report = validate_sheet(cfg, "tiny01", say=said.append, conventions=TINY)
    # the reused mistake is still charged to offset: the later test runs the student's own scale
    assert report.problems == ["tiny01: mistake in scale_solution: adds, and offset reuses it: loses points in "
                               "another task (1 in 'offset'), not only in its own task 'scale': a cross-task charge"]
    assert "  ok    each of 1 correct alternatives gets full points and passes the visible tests" in said
    assert "  ok    no test cell rebinds a name a student's answer cell may define (simulated with sentinels)" in said
    assert "  ok    every test input is read-only (an answer that modifies its input fails in its own task)" in said
