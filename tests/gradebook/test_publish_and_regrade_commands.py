"""The command line of publishing and regrade requests: `mlph publish` / `unpublish` / `published` change and
show what students read; `mlph regrade list --for TUTOR` lists what that tutor may answer, `mlph regrade
answer` refuses the grader and takes another tutor's answer and points; `mlph regrade SHEET STUDENT` keeps
meaning "grade this notebook again"."""
from __future__ import annotations

from fractions import Fraction
from typing import Any

from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session

from autograder.cli import main
from gradebook.points.grid import cell_state, save_cell
from gradebook.points.publishing import published_sheets
from gradebook.points.regrades import request_regrade, requests
from gradebook.store.db import open_gradebook
from gradebook.store.models import AuditLog


def run(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), env={"COLUMNS": "250"})


def test_publish_unpublish_and_the_list(gradebook_course: Any) -> None:
    cfg = gradebook_course
    engine = open_gradebook(cfg.db_url)
    save_cell(engine, cfg.manifest("tiny01"), "ab1", "proof", value="2", author="tutor1")
    save_cell(engine, cfg.manifest("tiny01"), "cd2", "proof", value="1", author="tutor1")
    assert "tiny01" in published_sheets(engine, cfg)  # the default: all graded, published by itself
    withdrawn = run("unpublish", "tiny01", "--reason", "wrong key", "--author", "boss")
    assert withdrawn.exit_code == 0 and "tiny01: paper points withdrawn" in withdrawn.output
    assert "tiny01" not in published_sheets(engine, cfg)
    listed = run("published").output
    assert "withdrawn" in listed and "when-graded" in listed
    again = run("publish", "tiny01", "--author", "boss")
    assert again.exit_code == 0 and "tiny01: paper points published" in again.output
    assert "tiny01" in published_sheets(engine, cfg) and "(admin, boss)" in run("published").output
    twice = run("publish", "tiny01")
    assert twice.exit_code != 0 and "tiny01: the paper points are already published" in twice.output
    unknown = run("publish", "sheet77")
    assert "unknown sheet 'sheet77'" in unknown.output


def test_regrade_list_and_answer(gradebook_course: Any) -> None:
    cfg = gradebook_course
    engine = open_gradebook(cfg.db_url)
    save_cell(engine, cfg.manifest("tiny01"), "ab1", "proof", value="2", author="tutor1")
    req = request_regrade(engine, cfg, "tiny01", "proof", "ab1", "Step 2 is right")
    assert "0 request(s)" in run("regrade", "list", "--for", "tutor1").output  # the grader is not asked
    listed = run("regrade", "list", "--for", "tutor2").output
    assert "tiny01/proof" in listed and "Step 2 is right" in listed and "1 request(s)" in listed
    refused = run("regrade", "answer", str(req.id), "--answer", "fine", "--points", "3", "--author", "tutor1")
    assert refused.exit_code != 0 and "tutor1 graded this task; another tutor or an admin answers" in refused.output
    done = run("regrade", "answer", str(req.id), "--answer", "Right, +0,5", "--points", "2,5", "--author", "tutor2")
    assert done.exit_code == 0 and "points changed to 2.5" in done.output
    assert cell_state(engine, cfg.manifest("tiny01"), "ab1", "proof").points == Fraction(5, 2)
    assert requests(engine, open_only=True) == []
    assert "Right, +0,5" in run("regrade", "list", "--all").output
    with Session(engine) as session:
        authors = session.execute(select(AuditLog.author).where(AuditLog.entity == "regrade_request")
                                  .order_by(AuditLog.id)).scalars().all()
    assert authors == ["ab1", "tutor2"]


def test_regrade_sheet_student_still_grades_a_notebook_again(gradebook_course: Any) -> None:
    from gb_helpers import autograded
    from gradebook.store.models import AutogradeResult

    autograded(gradebook_course, "tiny01", "ab1", Fraction(1), Fraction(2))
    result = run("regrade", "tiny01", "ab1", "--reason", "test fixed", "--author", "boss")
    assert result.exit_code == 0 and "tiny01, ab1: marked" in result.output
    with Session(open_gradebook(gradebook_course.db_url)) as session:
        row = session.execute(select(AutogradeResult).where(AutogradeResult.student_id == "ab1")).scalar_one()
        assert row.fingerprint == ""  # marked: the next autograde run grades it again
