"""A paper task may be scored by deductions (``scoring = "deductions"`` in its manifest, as Gradescope's negative
scoring): a rubric grading starts at the task's maximum, its ticked items (usually negative) and adjustment are
added, and the total stays within [0, maximum]. A saved grading with nothing ticked is full marks; a cell nobody
saved is still ungraded. Rubric edits recompute such gradings from the maximum as well."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from coursefactory import DEDUCTIONS_TASK, deductions_course
from gradebook.admission.rule import compute_standings
from gradebook.course.config import CourseConfig, load_config
from gradebook.course.manifest import ManifestError
from gradebook.points.grid import cell_state, save_cell
from gradebook.points.rubric_edit import add_item, set_item
from gradebook.store.db import open_gradebook

def test_nothing_ticked_and_saved_is_full_marks_an_unsaved_cell_is_ungraded(gradebook_course: CourseConfig) -> None:
    cfg = deductions_course(gradebook_course)
    engine, m = open_gradebook(cfg.db_url), cfg.manifest("tiny01")
    task = m.paper_task("derive")
    assert task is not None and (task.scoring, task.start) == ("deductions", Fraction(4))
    assert save_cell(engine, m, "ab1", "derive", ticks=[], author="tina").points == 4
    assert save_cell(engine, m, "cd2", "derive", ticks=["sign", "units"], author="tina").points == Fraction(5, 2)
    state = save_cell(engine, m, "cd2", "derive", ticks=["sign"], adjustment="1", author="tina", expected_version=1)
    assert state.points == 4  # 4 - 1 + 1, and an adjustment never lifts it above the maximum
    assert cell_state(engine, m, "ef3", "derive").points is None  # nobody saved it: not graded, not 4
    standing = {s.student_id: s.cells["tiny01"] for s in compute_standings(engine, cfg)}
    assert (standing["ab1"].paper, standing["ef3"].paper) == (4, None)  # the admission counts the saved full marks
    # an edit of a deduction recomputes from the maximum
    change = set_item(engine, m, "derive", "sign", "boss", points=Fraction(-3))
    assert change.students == {"cd2": (Fraction(4), Fraction(2))}
    minus = add_item(engine, m, "derive", Fraction(-5), "Nothing right", "boss").key
    assert save_cell(engine, m, "ab1", "derive", ticks=[minus, "sign"], author="tina", expected_version=1).points == 0


def test_scoring_must_be_points_or_deductions(gradebook_course: CourseConfig) -> None:
    manifest = gradebook_course.root / "source" / "tiny01" / "sheet.toml"
    manifest.write_text(manifest.read_text() + DEDUCTIONS_TASK.replace('"deductions"', '"negative"'))
    with pytest.raises(ManifestError, match=r"paper task 'derive': 'scoring' must be \"points\".*not 'negative'"):
        load_config(gradebook_course.root).manifest("tiny01")


def test_a_deductions_task_needs_no_positive_items_adding_up_to_its_points(tmp_path: Path) -> None:
    from gradebook.course.manifest import _parse_task

    raw = {"id": "p", "kind": "paper", "points": 3, "scoring": "deductions",
           "rubric": [{"id": "a", "text": "wrong sign", "points": -1}]}
    assert _parse_task(raw, "sheet.toml").start == 3
    with pytest.raises(ManifestError, match="add up to 0 points, the task has 3"):
        _parse_task({**raw, "scoring": "points"}, "sheet.toml")
