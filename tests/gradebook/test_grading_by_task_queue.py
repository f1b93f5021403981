"""The grade-by-task queue as a library: a tutor's groups' PDF hand-ins (an admin's: everyone's), one entry per
PDF (a team's once), in an order that is shuffled, the same on every call and different per task; what is
still to grade counts a teammate's points; the whole PDF until pages are tagged per task."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from fractions import Fraction
from pathlib import Path

import pytest

from test_tutor_grid_library import with_rubric  # type: ignore[import-not-found]
from gradebook.course.config import CourseConfig
from gradebook.errors import InputError
from gradebook.points.by_task import TaskPages, pages_for, shown_student, shuffle_key, task_queue
from gradebook.points.grid import save_cell
from gradebook.store.db import atomic, open_gradebook
from gradebook.store.models import Handin, TeamMember


@pytest.fixture
def course(gradebook_course: CourseConfig, tmp_path: Path) -> CourseConfig:
    """g1 (tina): ab1, cd2; g2 (tom): ef3. PDFs from ab1 and ef3 (ef3 twice); ab1 and ef3 a team on tiny01."""
    cfg = with_rubric(gradebook_course, tmp_path)
    when = datetime(2026, 11, 3, 12, tzinfo=timezone.utc)
    with atomic(open_gradebook(cfg.db_url)) as s:
        for sid, at in (("ab1", when), ("ef3", when), ("ef3", when + timedelta(hours=1))):
            s.add(Handin(sheet="tiny01", student_id=sid, kind="paper", source="web", received_at=at, status="accepted",
                         stored_path=f"handins/{sid}.pdf"))
    return cfg


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_queue_holds_the_groups_pdfs_in_a_stable_shuffled_order(course: CourseConfig) -> None:
    engine = open_gradebook(course.db_url)
    tina = task_queue(engine, course, "tiny01", "derive", ["g1"])
    assert [e.student for e in tina.entries] == ["ab1"] and tina.without_pdf == 1  # cd2 handed in no PDF
    assert [i.key for i in tina.rubric] == ["setup", "result"] and tina.to_grade == 1
    everyone = task_queue(engine, course, "tiny01", "derive", None)
    order = [e.student for e in everyone.entries]
    assert order == sorted(["ab1", "ef3"], key=lambda s: shuffle_key("tiny01", "derive", s))
    assert order == [e.student for e in task_queue(engine, course, "tiny01", "derive", None).entries]
    assert shuffle_key("tiny01", "derive", "ab1") != shuffle_key("tiny01", "proof", "ab1")
    latest = max((e for e in everyone.entries if e.student == "ef3"), key=lambda e: e.pdf.id)
    assert latest.pages == TaskPages(latest.pdf.id) and latest.pages.pages is None  # all pages, the newest PDF
    assert everyone.entries[0].shown == shown_student("tiny01", order[0], *(("Müller", "Anna") if order[0] == "ab1"
                                                                           else ("O'Brien", "Eve")))
    with pytest.raises(InputError, match="unknown paper task 'nope'"):
        task_queue(engine, course, "tiny01", "nope", None)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_teams_pdf_is_graded_once(course: CourseConfig) -> None:
    engine, m = open_gradebook(course.db_url), course.manifest("tiny01")
    with atomic(engine) as s:
        s.add_all([TeamMember(sheet="tiny01", team="T1", student_id=sid) for sid in ("ab1", "ef3")])
    q = task_queue(engine, course, "tiny01", "derive", None)
    assert [(e.student, e.team) for e in q.entries] == [("ef3", "T1")]  # the team's newest PDF is ef3's
    assert pages_for(engine, "tiny01", "ab1", "derive") == q.entries[0].pages  # a member finds the team's PDF
    save_cell(engine, m, "ef3", "derive", ticks=["result"], author="tom")
    again = task_queue(engine, course, "tiny01", "derive", ["g1"])  # tina's view: ab1 carries the team's PDF
    assert [(e.student, e.graded, e.cell.team_points) for e in again.entries] == [("ab1", True, Fraction(5, 2))]
    assert again.to_grade == 0
    assert pages_for(engine, "tiny01", "cd2", "derive") is None
