"""Several autograde results stored in one transaction: the same rows as one at a time, all or nothing."""
from __future__ import annotations

from fractions import Fraction

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gradebook.points.autograde_store import store_result, store_results
from gradebook.store import nbgrader_tables as nt
from gradebook.store.db import open_gradebook
from gradebook.store.models import AutogradeResult


def _result(sheet: str, student: str, visible: str, more: str, counted: str | None = None) -> dict:
    cells = [{"grade_id": "test_scale_visible", "points": visible, "max_points": "1", "status": "passed", "message": ""},
             {"grade_id": "test_scale_more", "points": more, "max_points": "2", "status": "passed", "message": ""}]
    score = str(Fraction(visible) + Fraction(more))
    return {"sheet": sheet, "student": student, "status": "graded", "reason": "", "fingerprint": f"fp-{student}",
            "submitted_at": "2026-11-03T12:00:00+00:00", "cells": cells, "score": score, "max_score": "3",
            "counted_score": counted if counted is not None else score}


def _rows(engine, sheet: str) -> dict[str, tuple]:
    """Per student: the auto scores by grade cell, the late penalty, the stored score and graded runs."""
    with Session(engine) as s:
        grades = s.execute(
            select(nt.submitted_assignment.c.student_id, nt.base_cell.c.name, nt.grade.c.auto_score,
                   nt.grade.c.needs_manual_grade, nt.submitted_notebook.c.late_submission_penalty)
            .join(nt.submitted_notebook, nt.submitted_notebook.c.assignment_id == nt.submitted_assignment.c.id)
            .join(nt.grade, nt.grade.c.notebook_id == nt.submitted_notebook.c.id)
            .join(nt.base_cell, nt.base_cell.c.id == nt.grade.c.cell_id)
            .join(nt.assignment, nt.assignment.c.id == nt.submitted_assignment.c.assignment_id)
            .where(nt.assignment.c.name == sheet)).all()
        results = {r.student_id: (r.score, r.graded_runs) for r in
                   s.execute(select(AutogradeResult).where(AutogradeResult.sheet == sheet)).scalars()}
    out: dict[str, tuple] = {}
    for student, cell, score, manual, penalty in grades:
        cells, _, _ = out.get(student, ({}, None, None))
        out[student] = ({**cells, cell: (score, manual)}, penalty, results.get(student))
    return out


def test_a_batch_stores_what_one_at_a_time_stores(gradebook_course):
    engine = open_gradebook(gradebook_course.db_url)
    batch = [_result("tiny01", "ab1", "1", "2"), _result("tiny01", "cd2", "1", "0"),
             _result("tiny01", "ef3", "0", "0"), _result("tiny01", "newcomer", "1", "2", counted="0")]
    store_results(engine, batch)
    for r in batch:
        store_result(engine, {**r, "sheet": "tiny02"})
    together, alone = _rows(engine, "tiny01"), _rows(engine, "tiny02")
    assert together == alone
    assert together["ab1"][0]["test_scale_more"] == (2.0, False)
    assert together["newcomer"][1] == 3.0  # counted 0: nbgrader's late penalty is the whole score
    assert together["ab1"][2] == ("3", 1)


def test_storing_a_batch_again_updates_the_same_rows(gradebook_course):
    engine = open_gradebook(gradebook_course.db_url)
    store_results(engine, [_result("tiny01", "ab1", "0", "0"), _result("tiny01", "cd2", "0", "0")])
    with Session(engine) as s:
        before = s.execute(select(func.count()).select_from(nt.grade)).scalar_one()
    store_results(engine, [_result("tiny01", "ab1", "1", "2"), _result("tiny01", "cd2", "1", "0")])
    with Session(engine) as s:
        assert s.execute(select(func.count()).select_from(nt.grade)).scalar_one() == before
    rows = _rows(engine, "tiny01")
    assert rows["ab1"][0]["test_scale_more"][0] == 2.0 and rows["ab1"][2] == ("3", 2)


def test_a_batch_with_a_broken_result_stores_none_of_it(gradebook_course):
    engine = open_gradebook(gradebook_course.db_url)
    broken = _result("tiny01", "cd2", "1", "0")
    del broken["fingerprint"]
    with pytest.raises(KeyError):
        store_results(engine, [_result("tiny01", "ab1", "1", "2"), broken])
    assert _rows(engine, "tiny01") == {}
    with Session(engine) as s:
        assert s.execute(select(func.count()).select_from(nt.submitted_assignment)).scalar_one() == 0


def test_a_batch_holds_one_result_per_student_of_one_sheet(gradebook_course):
    engine = open_gradebook(gradebook_course.db_url)
    with pytest.raises(ValueError):
        store_results(engine, [_result("tiny01", "ab1", "1", "2"), _result("tiny01", "ab1", "0", "0")])
    with pytest.raises(ValueError):
        store_results(engine, [_result("tiny01", "ab1", "1", "2"), _result("tiny02", "cd2", "0", "0")])


def test_late_decisions_read_together_are_those_read_one_by_one(gradebook_course):
    """A batch's decisions (extensions and group deadlines read at once) equal each student's own."""
    import dataclasses
    from datetime import datetime, timezone

    from gradebook.course.config import load_config
    from gradebook.points.handins import decision_for, decisions_for
    from gradebook.points.manual import set_extension
    from web.testing import setup_web_course

    path = gradebook_course.root / "source" / "tiny01" / "sheet.toml"
    path.write_text(path.read_text().replace("[late]", '[deadlines]\ng2 = "+2d"\n\n[late]'))
    cfg = dataclasses.replace(load_config(gradebook_course.root, gradebook_course.data_dir), db_url=gradebook_course.db_url)
    setup_web_course(cfg)  # cd2 is in group g2, which meets two days later
    engine = open_gradebook(cfg.db_url)
    set_extension(engine, "tiny01", "ab1", datetime(2026, 11, 5, 9, tzinfo=timezone.utc), "prof", "ill", cfg)
    manifest = cfg.manifest("tiny01")
    received = {s: datetime(2026, 11, 5, 8, tzinfo=timezone.utc) for s in ("ab1", "cd2", "ef3", "nobody")}
    together = decisions_for(engine, manifest, received)
    assert together == {s: decision_for(engine, manifest, s, at) for s, at in received.items()}
    assert not together["ab1"].late and not together["cd2"].late and together["ef3"].late  # extension, group, neither
