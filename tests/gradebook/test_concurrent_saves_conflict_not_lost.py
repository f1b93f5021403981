"""Two tutors saving the same cell: the second gets a conflict naming the change; nothing is lost."""
from __future__ import annotations

import threading
from fractions import Fraction

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from gradebook.store.db import open_gradebook
from gradebook.errors import ConflictError, InputError
from gradebook.store.models import AuditLog, PaperPoints
from gradebook.points.paper import set_points


def test_second_save_of_a_stale_version_is_refused(gradebook_course):
    engine, m = open_gradebook(gradebook_course.db_url), gradebook_course.manifest("tiny01")
    assert set_points(engine, m, "ab1", "proof", Fraction(2), "tina", expected_version=0) == 1
    assert set_points(engine, m, "ab1", "proof", Fraction(5, 2), "tina", expected_version=1) == 2
    with pytest.raises(ConflictError, match=r"tiny01/proof/ab1: changed meanwhile by tina at .* to 2.5 "
                                            r"\(version 2, you edited version 1\)"):
        set_points(engine, m, "ab1", "proof", Fraction(1), "tom", expected_version=1)
    with pytest.raises(InputError, match="tiny01/proof, student 'ab1': 4 is outside 0..3"):
        set_points(engine, m, "ab1", "proof", Fraction(4), "tom", expected_version=2)
    with Session(engine) as s:
        row = s.execute(select(PaperPoints)).scalar_one()
        audit = s.execute(select(AuditLog.author, AuditLog.new_value).order_by(AuditLog.id)).all()
    assert (row.points, row.version, row.entered_by) == ("5/2", 2, "tina")
    assert audit == [("tina", "2"), ("tina", "5/2")]


def test_concurrent_saves_one_wins_one_conflicts(gradebook_course):
    engine, m = open_gradebook(gradebook_course.db_url), gradebook_course.manifest("tiny01")
    set_points(engine, m, "cd2", "proof", Fraction(1), "admin", expected_version=0)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def save(author: str, value: int) -> None:
        barrier.wait()
        try:
            set_points(engine, m, "cd2", "proof", Fraction(value), author, expected_version=1)
            outcomes.append(f"ok {author}")
        except ConflictError:
            outcomes.append(f"conflict {author}")

    threads = [threading.Thread(target=save, args=(a, v)) for a, v in (("tina", 2), ("tom", 3))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(o.split()[0] for o in outcomes) == ["conflict", "ok"]
    winner = next(o.split()[1] for o in outcomes if o.startswith("ok"))
    with Session(engine) as s:
        row = s.execute(select(PaperPoints).where(PaperPoints.student_id == "cd2")).scalar_one()
    assert (row.entered_by, row.version) == (winner, 2)
