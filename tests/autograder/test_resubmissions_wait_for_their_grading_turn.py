"""Handing in is always possible; grading waits for the student's turn (``[grading]`` of the sheet: one graded
run every 10 minutes by default): a resubmission right after a graded run is saved, shown as waiting with
its time, and graded when its turn has come; other students are graded meanwhile."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import update

from autograder.grading.run import autograde
from autograder.intake.upload import accept_upload
from autograder.limits import Limits
from autograder.nbgrader_bridge import generate
from coursefactory import TINY_ANSWER, WRONG_ANSWER, student_notebook
from gradebook.people.roster import import_students
from gradebook.store.db import atomic, open_gradebook
from gradebook.store.models import AutogradeResult

LIMITS = Limits(cell_timeout=20)


def _hand_in(cfg: Any, student: str, answer: str) -> None:
    rec = accept_upload(cfg, open_gradebook(cfg.db_url), sheet="tiny01", student=student, kind="notebook",
                        filename="tiny01.ipynb", data=student_notebook(cfg, answer), uploaded_by=student)
    assert rec.status == "accepted", rec.reason


def test_a_resubmission_waits_for_its_turn_and_others_are_graded_meanwhile(course_factory: Any) -> None:
    cfg = course_factory(tiny=("tiny01",), due="2099-01-01T10:00:00")
    generate(cfg, "tiny01")
    (cfg.root / "r.csv").write_text("student_id,last_name,first_name,email\nann,A,Ann,a@uni.de\nbob,B,Bob,b@uni.de\n")
    engine = open_gradebook(cfg.db_url)
    import_students(engine, cfg.root / "r.csv")
    _hand_in(cfg, "ann", WRONG_ANSWER)
    first = autograde(cfg, "tiny01", workers=1, limits=LIMITS, progress=False)
    assert [r["student"] for r in first.results] == ["ann"] and not first.waiting

    _hand_in(cfg, "ann", TINY_ANSWER)  # saved at once ...
    _hand_in(cfg, "bob", TINY_ANSWER)
    second = autograde(cfg, "tiny01", workers=1, limits=LIMITS, progress=False)
    assert [r["student"] for r in second.results] == ["bob"]  # ... but ann's grading waits; bob's does not
    turn = second.waiting["ann"]
    assert turn is not None and timedelta(minutes=9) < turn - datetime.now(timezone.utc) <= timedelta(minutes=10)

    with atomic(engine) as s:  # ten minutes later
        s.execute(update(AutogradeResult).where(AutogradeResult.student_id == "ann")
                  .values(last_run_at=datetime.now(timezone.utc) - timedelta(minutes=11)))
    third = autograde(cfg, "tiny01", workers=1, limits=LIMITS, progress=False)
    assert [(r["student"], r["score"]) for r in third.results] == [("ann", "3")] and not third.waiting
    with atomic(engine) as s:
        runs = {r.student_id: r.graded_runs for r in s.query(AutogradeResult)}
    assert runs == {"ann": 2, "bob": 1}
