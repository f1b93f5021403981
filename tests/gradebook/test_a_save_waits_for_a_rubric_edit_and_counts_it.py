"""A rubric edit and a save of a grading that ticks the edited item, forced into the narrow interleaving on
PostgreSQL: the edit's transaction has changed the item and rewritten the gradings that had it, and holds its
locks; a tutor's save of another student (who did not have the item yet) starts then. The save must wait for
the edit (it shares the task's item rows, ``FOR SHARE`` against the edit's ``FOR UPDATE``) and then count the
item's new points; without that lock it would read the old points and store a stale total that no later edit
corrects. Two cases: the student's grading exists (without the item), or this is its first entry."""
from __future__ import annotations

import threading
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from test_rubric_changes_reach_every_grading import _check_every_total  # type: ignore[import-not-found]
from test_tutor_grid_library import with_rubric  # type: ignore[import-not-found]
from gradebook.course.config import CourseConfig
from gradebook.points import rubric_edit
from gradebook.points.grid import CellState, save_cell
from gradebook.points.rubric import ensure_seeded
from gradebook.store.db import open_gradebook
from gradebook.store.models import PaperPoints

WAIT = 20.0  # seconds: a bound on every wait below, never reached when the locks work


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
@pytest.mark.parametrize("graded_before", [True, False], ids=["graded-before", "first-entry"])
def test_a_save_during_an_item_edit_waits_and_counts_the_new_points(
        gradebook_course: CourseConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, graded_before: bool) -> None:
    cfg = with_rubric(gradebook_course, tmp_path)
    engine, m = open_gradebook(cfg.db_url), cfg.manifest("tiny01")
    ensure_seeded(engine, m)
    save_cell(engine, m, "cd2", "derive", ticks=["result"], author="tom")  # the edit rewrites this one
    version = save_cell(engine, m, "ab1", "derive", ticks=["setup"], author="tina").version if graded_before else 0

    holding, release = threading.Event(), threading.Event()
    edit_pid: list[int] = []
    original = rubric_edit._audit

    def audit_then_hold(session: Session, *args: Any, **kwargs: Any) -> None:
        """The edit's last step inside its transaction; then it holds its locks until released."""
        original(session, *args, **kwargs)
        edit_pid.append(session.execute(text("SELECT pg_backend_pid()")).scalar_one())
        holding.set()
        release.wait(WAIT)

    monkeypatch.setattr(rubric_edit, "_audit", audit_then_hold)
    results: dict[str, Any] = {}

    def edit() -> None:
        try:
            results["edit"] = rubric_edit.set_item(engine, m, "derive", "result", "boss", points=Fraction(2))
        except BaseException as exc:  # pragma: no cover - asserted below
            results["edit"] = exc

    def save() -> None:
        try:
            results["save"] = save_cell(engine, m, "ab1", "derive", ticks=["setup", "result"], author="tina",
                                        expected_version=version)
        except BaseException as exc:  # pragma: no cover - asserted below
            results["save"] = exc

    editor = threading.Thread(target=edit)
    editor.start()
    assert holding.wait(WAIT), "the edit never reached its audit row"
    tutor = threading.Thread(target=save)
    tutor.start()
    blocked = _blocked_by(engine, edit_pid[0], tutor)
    saved_early = not tutor.is_alive()
    release.set()
    editor.join(WAIT)
    tutor.join(WAIT)
    assert not isinstance(results.get("edit"), BaseException), results.get("edit")
    assert results["edit"].students == {"cd2": (Fraction(5, 2), Fraction(2))}
    assert blocked and not saved_early, "the save did not wait for the edit's transaction"
    state = results["save"]
    assert isinstance(state, CellState), state
    assert state.points == Fraction(3, 2) + 2  # setup 1.5 + result at its new 2 points, not the old 2.5
    with Session(engine) as s:
        assert Fraction(s.execute(select(PaperPoints.points).where(PaperPoints.student_id == "ab1")).scalar_one()) \
            == Fraction(7, 2)
    _check_every_total(engine, m)


def _blocked_by(engine: Any, pid: int, tutor: threading.Thread) -> bool:
    """Whether a backend waits on a lock held by ``pid`` while ``tutor`` runs (polled until ``WAIT``)."""
    deadline = time.monotonic() + WAIT
    with engine.connect() as conn:
        while time.monotonic() < deadline and tutor.is_alive():
            waiting = conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE :pid = ANY(pg_blocking_pids(pid))"),
                                   {"pid": pid}).scalar_one()
            conn.rollback()
            if waiting:
                return True
            time.sleep(0.02)
    return False
