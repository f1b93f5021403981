"""Paper points reach students per sheet: automatically once every hand-in is graded ("when-graded"), or by an
admin ("manual", or early); recorded once and audited, a later hand-in never takes them back; an admin's
withdrawal stops the automatic publication. A student's standing before publishing holds no trace of the
points (the sheet is pending for them), while the admission list counts them as entered."""
from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from gb_helpers import autograded
from gradebook.admission.rule import compute_standings
from gradebook.course.config import load_config
from gradebook.errors import ConfigError, InputError
from gradebook.points.grid import save_cell
from gradebook.points.publishing import publications, publish, published_sheets, unpublish
from gradebook.store.db import atomic, open_gradebook
from gradebook.store.models import AuditLog, Handin

NOW = datetime(2026, 12, 1, 12, tzinfo=timezone.utc)  # tiny01 and tiny02 were due 2026-11-04


def _handin(engine: Any, sheet: str, student: str, when: datetime) -> None:
    with atomic(engine) as session:
        session.add(Handin(sheet=sheet, student_id=student, kind="paper", source="web", status="accepted",
                           received_at=when))


def _grade(cfg: Any, engine: Any, student: str, value: str, sheet: str = "tiny01") -> None:
    save_cell(engine, cfg.manifest(sheet), student, "proof", value=value, author="tutor1")


def _with(cfg: Any, text: str) -> Any:
    (cfg.root / "mlph.toml").write_text((cfg.root / "mlph.toml").read_text() + text)
    return dataclasses.replace(load_config(cfg.root), db_url=cfg.db_url)


def test_when_graded_publishes_once_everyone_is_graded_and_keeps_it(gradebook_course: Any) -> None:
    cfg = gradebook_course
    engine = open_gradebook(cfg.db_url)
    before_due = datetime(2026, 11, 4, 8, tzinfo=timezone.utc)
    for sid in ("ab1", "cd2"):
        _handin(engine, "tiny01", sid, before_due)
    _grade(cfg, engine, "ab1", "2,5")
    assert "tiny01" not in published_sheets(engine, cfg, NOW)  # cd2 handed in and waits for points
    assert publications(engine, cfg, NOW, detail=True)["tiny01"].waiting == ("cd2",)
    _grade(cfg, engine, "cd2", "1")
    assert "tiny01" not in published_sheets(engine, cfg, before_due)  # all graded, but before the deadline: no
    published = published_sheets(engine, cfg, NOW)
    assert published["tiny01"] == NOW and "tiny02" not in published  # tiny02: no points at all
    with Session(engine) as session:
        audit = session.execute(select(AuditLog).where(AuditLog.entity == "paper_publication")).scalars().all()
    assert [(a.key, a.author) for a in audit] == [("tiny01", "auto")]  # recorded once, by the automatic rule
    _handin(engine, "tiny01", "ef3", NOW + timedelta(hours=1))  # a later hand-in (an extension, say)
    assert published_sheets(engine, cfg, NOW + timedelta(hours=2))["tiny01"] == NOW  # the others keep theirs
    with Session(engine) as session:
        assert len(session.execute(select(AuditLog).where(AuditLog.entity == "paper_publication")).all()) == 1


def test_manual_policy_waits_for_an_admin_who_may_withdraw(gradebook_course: Any) -> None:
    cfg = _with(gradebook_course, '\n[paper]\npublish = "manual"\nregrade_days = 3\n')
    engine = open_gradebook(cfg.db_url)
    assert cfg.publish_paper == "manual" and cfg.regrade_days == 3
    _grade(cfg, engine, "ab1", "3")
    assert published_sheets(engine, cfg, NOW) == {}  # everything graded, but manual
    assert publish(engine, cfg, "tiny01", "boss", "done") == []
    assert "tiny01" in published_sheets(engine, cfg)
    with pytest.raises(InputError, match="already published"):
        publish(engine, cfg, "tiny01", "boss")
    with pytest.raises(InputError, match="needs a reason"):
        unpublish(engine, cfg, "tiny01", "boss", " ")
    unpublish(engine, cfg, "tiny01", "boss", "wrong key for task 2")
    assert "tiny01" not in published_sheets(engine, cfg)
    with Session(engine) as session:
        audit = [(a.author, a.new_value, a.reason) for a in session.execute(
            select(AuditLog).where(AuditLog.entity == "paper_publication").order_by(AuditLog.id)).scalars()]
    assert audit[0][0] == "boss" and str(audit[0][1]).startswith("published (admin)") and audit[0][2] == "done"
    assert audit[1] == ("boss", "withdrawn", "wrong key for task 2")
    with pytest.raises(InputError, match="sheet09 has no pen-and-paper tasks"):
        publish(engine, cfg, "sheet09", "boss")


def test_a_withdrawn_sheet_is_not_published_again_automatically(gradebook_course: Any) -> None:
    cfg = gradebook_course
    engine = open_gradebook(cfg.db_url)
    _grade(cfg, engine, "ab1", "3")
    assert "tiny01" in published_sheets(engine, cfg, NOW)
    unpublish(engine, cfg, "tiny01", "boss", "oops")
    assert "tiny01" not in published_sheets(engine, cfg, NOW + timedelta(days=1))
    assert publications(engine, cfg, NOW)["tiny01"].how == "withdrawn"


def test_a_sheet_may_set_its_own_policy_and_bad_values_are_named(gradebook_course: Any) -> None:
    cfg = gradebook_course
    manifest = cfg.root / "source" / "tiny01" / "sheet.toml"
    manifest.write_text(manifest.read_text().replace('timezone = "Europe/Berlin"',
                                                     'timezone = "Europe/Berlin"\npublish_paper = "manual"'))
    own = dataclasses.replace(load_config(cfg.root), db_url=cfg.db_url)
    engine = open_gradebook(cfg.db_url)
    _grade(own, engine, "ab1", "3")
    _grade(own, engine, "ab1", "3", sheet="tiny02")
    assert set(published_sheets(engine, own, NOW)) == {"tiny02"}  # tiny01 is manual, tiny02 the course's default
    manifest.write_text(manifest.read_text().replace('"manual"', '"sometimes"'))
    with pytest.raises(ConfigError, match="sheet.toml: 'publish_paper' must be one of when-graded, manual"):
        load_config(cfg.root).manifest("tiny01")


def test_a_students_standing_holds_no_trace_of_unpublished_points(gradebook_course: Any) -> None:
    cfg = _with(gradebook_course, '\n[paper]\npublish = "manual"\n')
    engine = open_gradebook(cfg.db_url)
    autograded(cfg, "tiny01", "ab1", Fraction(1), Fraction(2))
    _grade(cfg, engine, "ab1", "2,5")
    staff = next(s for s in compute_standings(engine, cfg, as_of=NOW) if s.student_id == "ab1")
    own = compute_standings(engine, cfg, as_of=NOW, students={"ab1"}, hide_paper=frozenset({"tiny01"}))[0]
    assert staff.sheets["tiny01"] == Fraction(11, 2) and staff.cells["tiny01"].paper == Fraction(5, 2)
    assert own.sheets["tiny01"] is None and own.cells["tiny01"].state == "pending"  # not 3, not 5.5: pending
    assert own.cells["tiny01"].paper is None and own.points == staff.points - Fraction(11, 2)
    assert own.still_reachable == staff.still_reachable + cfg.semester[0].max_points
    # cd2 has no paper points: nothing to hide, their standing reads as the staff's
    autograded(cfg, "tiny01", "cd2", Fraction(1), Fraction(0))
    cd2 = compute_standings(engine, cfg, as_of=NOW, students={"cd2"}, hide_paper=frozenset({"tiny01"}))[0]
    assert cd2 == next(s for s in compute_standings(engine, cfg, as_of=NOW) if s.student_id == "cd2")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(entered=st.dictionaries(st.sampled_from(["ab1", "cd2", "ef3"]), st.integers(0, 3)),
       handed=st.sets(st.sampled_from(["ab1", "cd2", "ef3"])), hide=st.booleans())
def test_a_students_view_is_the_staffs_without_unpublished_paper(gradebook_course: Any, entered: dict[str, int],
                                                                  handed: set[str], hide: bool) -> None:
    """For any entered points and hand-ins: where the sheet is hidden, a student with paper points reads the
    sheet as pending and their total as the staff's minus that sheet's count; everything else is the staff's."""
    from gradebook.store.models import PaperPoints

    cfg = gradebook_course
    engine = open_gradebook(cfg.db_url)
    with atomic(engine) as session:
        session.query(PaperPoints).delete()
        session.query(Handin).delete()
        for sid, pts in entered.items():
            session.add(PaperPoints(sheet="tiny01", task="proof", student_id=sid, points=str(pts), entered_by="t",
                                    entered_at=NOW, version=1))
        for sid in handed:
            session.add(Handin(sheet="tiny01", student_id=sid, kind="paper", source="web", status="accepted",
                               received_at=datetime(2026, 11, 3, tzinfo=timezone.utc)))
    staff = {s.student_id: s for s in compute_standings(engine, cfg, as_of=NOW)}
    hidden = frozenset({"tiny01"}) if hide else frozenset()
    for sid, full in staff.items():
        own = compute_standings(engine, cfg, as_of=NOW, students={sid}, hide_paper=hidden)[0]
        if hide and sid in entered:
            assert own.sheets["tiny01"] is None and own.cells["tiny01"].paper is None
            assert own.points == full.points - (full.sheets["tiny01"] or 0)
            assert own.still_reachable == full.still_reachable + cfg.semester[0].max_points
            assert own.status != "not_admitted" or full.status == "not_admitted"  # hiding never decides anyone out
        else:
            assert own == full
