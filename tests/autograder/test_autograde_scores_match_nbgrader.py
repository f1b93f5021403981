"""`mlph autograde` on real kernels and a real SQLite gradebook, read back through nbgrader's API."""
from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from click.testing import CliRunner

from autograder.grading.assemble import grade_id
from autograder.cli import main
from autograder.limits import Limits
from autograder.grading.run import autograde
from autograder.nbgrader_bridge import generate
from coursefactory import HALF_ANSWER, TINY_ANSWER, WRONG_ANSWER

LIMITS = Limits(cell_timeout=4, notebook_timeout=60, interrupt_grace=2)
CORRECT = TINY_ANSWER.strip("\n")

# student id -> (answer source or None for the stub, what we expect: score, status)
HOSTILE = {
    "allclose": ("import numpy as np\nnp.allclose = lambda *a, **k: True\nnp.array_equal = lambda *a, **k: True\n"
                 + WRONG_ANSWER, 0),
    "fakecheck": ("import mlph_check, builtins\nmlph_check.check = lambda *a, **k: None\n"
                  "builtins.check = mlph_check.check\ncheck = mlph_check.check\n" + WRONG_ANSWER, 0),
    "transformer": ("get_ipython().input_transformers_cleanup.append(lambda lines: ['pass\\n'])\n" + WRONG_ANSWER, 0),
    "fakeprint": ("from IPython.display import display\n"
                  "display({'application/vnd.mlph.check+json': {'name': 'scale_visible', 'value': "
                  "{'shape': [3], 'kind': 'number', 'data': [2.0, 4.0, 6.0]}, 'mode': 'close', 'rtol': 1e9, "
                  "'atol': 1e9}}, raw=True)\n" + WRONG_ANSWER, 0),
    "assertion": ("import builtins\nclass Never(Exception): pass\nbuiltins.AssertionError = Never\n" + WRONG_ANSWER, 0),
}


def student_nb(release: Path, answer: str | None):
    nb = nbformat.read(release, as_version=4)
    for cell in nb.cells:
        if grade_id(cell) == "scale_solution" and answer is not None:
            cell.source = answer
    return nb


def put(cfg, student: str, content) -> Path:
    d = cfg.data_dir / "submitted" / student / "tiny01"
    d.mkdir(parents=True, exist_ok=True)
    (d / "timestamp.txt").write_text("2026-11-03 12:00:00.000000 UTC")
    if isinstance(content, str):
        (d / "tiny01.ipynb").write_text(content)
    elif content is not None:
        nbformat.write(content, d / "tiny01.ipynb")
    return d


@pytest.fixture
def course(course_factory):
    cfg = course_factory()
    generate(cfg, "tiny01")
    return cfg


def scores(cfg) -> dict[str, float]:
    from nbgrader.api import Gradebook

    with Gradebook(cfg.db_url, course_id="mlph") as gb:
        return {s.student.id: s.score for s in gb.find_assignment("tiny01").submissions}


def test_a_batch_with_every_kind_of_submission(course):
    release = course.release_dir / "tiny01" / "tiny01.ipynb"
    put(course, "correct", student_nb(release, CORRECT))
    put(course, "wrong", student_nb(release, WRONG_ANSWER))
    put(course, "half", student_nb(release, HALF_ANSWER))
    put(course, "stub", student_nb(release, None))
    put(course, "broken", '{"cells": [')
    put(course, "nonotebook", None)
    loop = student_nb(release, CORRECT)
    loop.cells.insert(4, nbformat.v4.new_code_cell("while True:\n    pass"))
    put(course, "loop", loop)
    deleted = student_nb(release, CORRECT)
    deleted.cells = [c for c in deleted.cells if grade_id(c) != "test_scale_more"]
    put(course, "deleted", deleted)
    put(course, "exit", student_nb(release, "import os\nos._exit(1)"))
    for sid, (answer, _) in HOSTILE.items():
        put(course, sid, student_nb(release, answer))

    summary = autograde(course, "tiny01", workers=2, limits=LIMITS, progress=False)

    status = {r["student"]: (r["status"], r["score"]) for r in summary.results}
    assert status["correct"] == ("graded", "3")
    assert status["wrong"] == ("graded", "0")
    assert status["half"] == ("graded", "0")  # visible passes, hidden fails → that cell's points lost
    assert status["stub"] == ("graded", "0")
    assert status["broken"][0] == "invalid"
    assert status["nonotebook"] == ("missing", "0")
    assert status["loop"] == ("graded", "3")  # the student's endless loop costs nothing but itself
    assert status["deleted"] == ("graded", "3")  # the deleted test cell was restored and passed
    assert status["exit"][0] == "crashed" and status["exit"][1] == "0"
    for sid, (_, expected) in HOSTILE.items():
        assert status[sid] == ("graded", str(expected)), sid
    by_student = {r["student"]: r for r in summary.results}
    assert "the JSON breaks at line 1, column" in by_student["broken"]["reason"]
    # the reason is said once, not repeated in every row
    assert {c["message"] for c in by_student["broken"]["cells"]} == {
        "not graded: the hand-in could not be read (see the note at the top)"}
    assert by_student["nonotebook"]["reason"] == "no tiny01.ipynb in the submission"
    assert "test cell 'test_scale_more' was missing and has been restored" in by_student["deleted"]["notes"]
    # nbgrader itself sees the same scores
    got = scores(course)
    assert got["correct"] == 3 and got["wrong"] == 0 and got["broken"] == 0 and got["allclose"] == 0
    # feedback: per test, no hidden source
    fb = (course.data_dir / "feedback" / "half" / "tiny01" / "tiny01.html").read_text()
    assert "a hidden test failed" in fb and "scale_hidden" not in fb and "np.linspace" not in fb


def test_half_right_answer_gets_partial_credit(course):
    release = course.release_dir / "tiny01" / "tiny01.ipynb"
    only_visible = "def scale(x, a):\n    return a * np.asarray(x, dtype=float) if a in (2, 4) else x\n"
    put(course, "partial", student_nb(release, only_visible))
    put(course, "firstcell", student_nb(release, "def scale(x, a):\n    x = np.asarray(x, dtype=float)\n"
                                                  "    return a * x if x.ndim == 1 and len(x) in (3, 4) else x\n"))
    summary = autograde(course, "tiny01", workers=1, limits=LIMITS, progress=False)
    res = {r["student"]: r for r in summary.results}
    assert res["partial"]["score"] == "0"
    cells = {c["grade_id"]: c["points"] for c in res["firstcell"]["cells"]}
    assert cells == {"test_scale_visible": "1", "test_scale_more": "0"}


def test_rerun_grades_only_new_or_changed_submissions(course):
    release = course.release_dir / "tiny01" / "tiny01.ipynb"
    put(course, "a", student_nb(release, CORRECT))
    put(course, "b", student_nb(release, WRONG_ANSWER))
    first = autograde(course, "tiny01", workers=2, limits=LIMITS, progress=False)
    assert len(first.results) == 2
    again = autograde(course, "tiny01", workers=2, limits=LIMITS, progress=False)
    assert (len(again.results), again.skipped) == (0, 2)
    put(course, "b", student_nb(release, CORRECT))
    changed = autograde(course, "tiny01", workers=2, limits=LIMITS, progress=False)
    assert [r["student"] for r in changed.results] == ["b"] and changed.results[0]["score"] == "3"
    forced = autograde(course, "tiny01", workers=2, limits=LIMITS, force=True, progress=False)
    assert len(forced.results) == 2
    assert scores(course) == {"a": 3, "b": 3}


def test_a_students_broken_notebook_is_not_a_grader_failure(course, monkeypatch):
    """Exit 0 when every submission has its result (a broken notebook is that student's result); exit 3 when
    the grader itself failed on a submission (retried by the next run)."""
    release = course.release_dir / "tiny01" / "tiny01.ipynb"
    put(course, "good", student_nb(release, CORRECT))
    put(course, "broken", "not json")
    result = CliRunner().invoke(main, ["autograde", "tiny01", "--no-progress", "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "invalid" in result.output and "broken" in result.output and "graded" in result.output
    result = CliRunner().invoke(main, ["autograde", "tiny01", "--no-progress"])
    assert "0 graded now, 2 already up to date" in result.output


def test_autograde_before_release_is_a_clear_error(course_factory):
    cfg = course_factory(tiny=("tiny01", "tiny02"))
    put(cfg, "someone", "{}")
    result = CliRunner().invoke(main, ["autograde", "tiny01", "--no-progress"])
    assert result.exit_code == 2  # no gradebook yet: named, never created empty
    assert "no gradebook at" in result.output and "`mlph release`" in result.output
    from autograder.nbgrader_bridge import generate

    generate(cfg, "tiny02")  # a gradebook that does not know tiny01
    result = CliRunner().invoke(main, ["autograde", "tiny01", "--no-progress"])
    assert result.exit_code == 2
    assert "sheet 'tiny01' is not in the gradebook: run `mlph release tiny01` first" in result.output


def test_regrade_one_submission(course):
    release = course.release_dir / "tiny01" / "tiny01.ipynb"
    put(course, "a", student_nb(release, CORRECT))
    put(course, "b", student_nb(release, CORRECT))
    autograde(course, "tiny01", workers=1, limits=LIMITS, progress=False)
    result = CliRunner().invoke(main, ["regrade", "tiny01", "b", "--reason", "test fixed", "--author", "boss"])
    assert result.exit_code == 0, result.output
    again = autograde(course, "tiny01", workers=1, limits=LIMITS, progress=False)
    assert [r["student"] for r in again.results] == ["b"] and again.skipped == 1
    result = CliRunner().invoke(main, ["regrade", "tiny01", "nobody", "--reason", "x"])
    assert result.exit_code == 2 and "no graded submission of student 'nobody'" in result.output
