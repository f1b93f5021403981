"""The executed notebook takes the source's tests whatever the student did to them."""
from __future__ import annotations

import copy

import nbformat

from autograder.grading.assemble import MISSING_ANSWER, assemble, grade_id
from coursefactory import WRONG_ANSWER, code, tiny_notebook

SOLUTION_LINE = "return a * np.asarray(x, dtype=float)"


def student_version():
    nb = tiny_notebook()
    for c in nb.cells:
        if grade_id(c) == "scale_solution":
            c.source = "def scale(x, a):\n    raise NotImplementedError()\n"
        if grade_id(c, ) and grade_id(c).startswith("test_"):
            c.source = c.source.split("### BEGIN HIDDEN TESTS")[0]
    return nb


def ids(nb):
    return [grade_id(c) for c in nb.cells]


def test_answers_come_from_the_student_and_tests_from_the_source():
    source, sub = tiny_notebook(), student_version()
    sub.cells[2].source = WRONG_ANSWER
    out = assemble(source, sub).notebook
    assert out.cells[2].source == WRONG_ANSWER
    assert "### BEGIN HIDDEN TESTS" in out.cells[3].source  # hidden tests restored
    assert ids(out) == ids(source)
    nbformat.validate(out)


def test_edited_test_cell_is_restored():
    source, sub = tiny_notebook(), student_version()
    sub.cells[3].source = "pass"
    out = assemble(source, sub)
    assert out.notebook.cells[3].source == source.cells[3].source


def test_deleted_test_cell_is_restored_and_noted():
    source, sub = tiny_notebook(), student_version()
    del sub.cells[4]
    out = assemble(source, sub)
    assert ids(out.notebook) == ids(source)
    assert "test cell 'test_scale_more' was missing and has been restored" in out.notes


def test_retagged_test_cell_runs_as_plain_cell_and_the_real_one_is_restored():
    source, sub = tiny_notebook(), student_version()
    sub.cells[3].metadata["nbgrader"]["grade_id"] = "my_cell"
    sub.cells[3].metadata["nbgrader"]["solution"] = True
    sub.cells[3].source = "print('hi')"
    out = assemble(source, sub)
    plain = [c for c in out.notebook.cells if c.source == "print('hi')"]
    assert len(plain) == 1 and "nbgrader" not in plain[0].metadata
    assert [c.source for c in out.notebook.cells if grade_id(c) == "test_scale_visible"] == [source.cells[3].source]


def test_a_test_cell_turned_into_an_answer_cell_stays_a_test():
    source, sub = tiny_notebook(), student_version()
    sub.cells[3].metadata["nbgrader"].update(solution=True, grade=False)
    sub.cells[3].source = "pass"
    assert assemble(source, sub).notebook.cells[3].source == source.cells[3].source


def test_duplicate_ids_keep_the_last_answer_and_one_test():
    source, sub = tiny_notebook(), student_version()
    first = copy.deepcopy(sub.cells[2])
    first.source = "def scale(x, a):\n    return 0\n"
    sub.cells.insert(2, first)
    sub.cells.append(copy.deepcopy(sub.cells[4]))  # a second copy of a test cell
    out = assemble(source, sub)
    assert [c.source for c in out.notebook.cells if grade_id(c) == "scale_solution"] == [sub.cells[3].source]
    assert ids(out.notebook).count("test_scale_visible") == 1
    assert any("appears more than once" in n for n in out.notes)
    assert len({c.id for c in out.notebook.cells}) == len(out.notebook.cells)


def test_missing_answer_cell_becomes_a_failing_stub_never_the_solution():
    source, sub = tiny_notebook(), student_version()
    del sub.cells[2]
    out = assemble(source, sub).notebook
    assert out.cells[2].source == MISSING_ANSWER
    assert all(SOLUTION_LINE not in c.source for c in out.cells)


def test_extra_student_cells_stay_after_the_cell_they_followed():
    source, sub = tiny_notebook(), student_version()
    sub.cells.insert(3, code("", "helper = 1"))
    sub.cells[3].metadata = {}
    out = assemble(source, sub).notebook
    assert [c.source for c in out.cells[:4]][-1] == "helper = 1"
    assert grade_id(out.cells[4]) == "test_scale_visible"
