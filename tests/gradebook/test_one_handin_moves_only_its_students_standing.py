"""A student's hand-in changes only what that student's (and their team's) standing depends on: another
student's late upload never reopens a decided sheet for the course, and a hand-in that the late policy
counts as 0 needs no grading to decide anything."""
from __future__ import annotations

import itertools
from datetime import datetime, timezone
from fractions import Fraction
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gb_helpers import autograded
from gradebook.admission.rule import compute_standings
from gradebook.points.paper import import_points
from gradebook.store.db import atomic, open_gradebook
from gradebook.store.models import Handin

MID = datetime(2026, 11, 24, tzinfo=timezone.utc)  # tiny01 and tiny02 past due (2026-11-04 10:00)
ON_TIME = datetime(2026, 11, 3, 12, tzinfo=timezone.utc)
LATE = datetime(2026, 11, 5, 12, tzinfo=timezone.utc)  # the tiny sheets' policy: late counts 0
STUDENTS = ("ab1", "cd2", "ef3")
_files = itertools.count()


def _view(cfg: Any) -> dict[str, tuple[Any, ...]]:
    return {s.student_id: (s.status, tuple(sorted(s.sheets.items())), s.points,
                           tuple(sorted((k, c.state) for k, c in s.cells.items())))
            for s in compute_standings(open_gradebook(cfg.db_url), cfg, MID)}


def _handin(cfg: Any, sheet: str, student: str, kind: str, when: datetime) -> None:
    with atomic(open_gradebook(cfg.db_url)) as s:
        s.add(Handin(sheet=sheet, student_id=student, kind=kind, source="web", status="accepted", received_at=when))


def _paper(cfg: Any, tmp: Path, sheet: str, student: str, points: int) -> None:
    f = tmp / f"p{next(_files)}.csv"
    f.write_text(f"student_id,task,points\n{student},proof,{points}\n")
    import_points(open_gradebook(cfg.db_url), cfg.manifest(sheet), f, "tutor")


def _act(cfg: Any, tmp: Path, event: tuple[str, str, str, bool]) -> None:
    student, sheet, what, late = event
    when = LATE if late else ON_TIME
    if what == "notebook" or what == "paper":
        _handin(cfg, sheet, student, what, when)
    elif what == "graded":
        autograded(cfg, sheet, student, Fraction(1), Fraction(1), when=when)
    else:
        _paper(cfg, tmp, sheet, student, 3)


EVENTS = st.tuples(st.sampled_from(STUDENTS), st.sampled_from(("tiny01", "tiny02")),
                   st.sampled_from(("notebook", "paper", "graded", "points")), st.booleans())


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=st.lists(EVENTS, min_size=1, max_size=6))
def test_no_handin_moves_another_students_standing(gradebook_course: Any, tmp_path: Path,
                                                   events: list[tuple[str, str, str, bool]]) -> None:
    cfg = gradebook_course
    for event in events:
        before = _view(cfg)
        _act(cfg, tmp_path, event)
        after = _view(cfg)
        others = [s for s in STUDENTS if s != event[0]]
        assert {s: after[s] for s in others} == {s: before[s] for s in others}, event


def test_a_late_pdf_after_the_sheet_is_decided_reopens_nothing(gradebook_course: Any, tmp_path: Path) -> None:
    cfg = gradebook_course
    for sid in ("ab1", "cd2"):
        autograded(cfg, "tiny01", sid, Fraction(1), Fraction(2))
        _paper(cfg, tmp_path, "tiny01", sid, 2 if sid == "ab1" else 3)
    decided = _view(cfg)
    assert [dict(decided[s][3])["tiny01"] for s in STUDENTS] == ["graded", "graded", "missing"]
    _handin(cfg, "tiny01", "ef3", "paper", LATE)  # late under policy zero: counts 0, needs no tutor
    _handin(cfg, "tiny01", "ef3", "notebook", LATE)  # ... and no autograder
    after = _view(cfg)
    assert {s: v[:3] for s, v in after.items()} == {s: v[:3] for s, v in decided.items()}  # same points, decided
    assert dict(after["ef3"][3])["tiny01"] == "late"  # the late PDF is marked late (and counts 0), not "missing"
    assert {s: after[s] for s in ("ab1", "cd2")} == {s: decided[s] for s in ("ab1", "cd2")}


def test_a_late_handin_that_counts_needs_grading_only_for_its_student(gradebook_course: Any, tmp_path: Path) -> None:
    """An on-time hand-in still waiting for its tutor keeps its own student's sheet pending, nobody else's."""
    cfg = gradebook_course
    for sid in STUDENTS:
        autograded(cfg, "tiny01", sid, Fraction(1), Fraction(2))
        _paper(cfg, tmp_path, "tiny01", sid, 3)
    _handin(cfg, "tiny01", "cd2", "paper", ON_TIME)
    with atomic(open_gradebook(cfg.db_url)) as s:  # the paper points of cd2 are taken back: not graded yet
        from gradebook.store.models import PaperPoints

        s.query(PaperPoints).filter(PaperPoints.student_id == "cd2").delete()
    view = _view(cfg)
    assert dict(view["cd2"][3])["tiny01"] == "pending"
    assert dict(view["ab1"][3])["tiny01"] == dict(view["ef3"][3])["tiny01"] == "graded"
