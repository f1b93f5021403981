"""A student's rows read in one statement (:mod:`gradebook.admission.student_read`, what a first dashboard reads)
equal what the rule reads table by table (:mod:`gradebook.admission.rule_rows`), on SQLite and PostgreSQL: teams
across groups, extensions, stored and retaken late decisions, nbgrader's manual scores, accepted and refused
hand-ins, paper points with rubric ticks and comments, admission overrides replaced and revoked, a closed sheet; and
what the dashboard shows of them are the rows of the student and their teammates, every status, newest first."""
from __future__ import annotations

import dataclasses
from datetime import datetime, timezone
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from coursefactory import RUBRIC_TASK
from gb_helpers import autograded
from gradebook.admission.overrides import revoke_override, set_override
from gradebook.admission.rule import compute_standings, load_data, rule_data, standings_from
from gradebook.admission.student_read import read_students
from gradebook.course.config import CourseConfig, load_config
from gradebook.course.sheets_state import close_sheet
from gradebook.people.groups import assign_students, import_groups
from gradebook.points.grid import save_cell
from gradebook.points.manual import set_extension, set_manual_score
from gradebook.store.db import atomic, open_gradebook, reading
from gradebook.store.models import AutogradeResult, Handin, PaperComment, PaperPoints, TeamMember

T = datetime(2026, 11, 3, 9, tzinfo=timezone.utc)


@pytest.fixture
def course(gradebook_course: CourseConfig, tmp_path: Path) -> CourseConfig:
    """tiny01 with a rubric task; ab1 and ef3 a team across the groups g1 and g2; everything a dashboard shows."""
    manifest = gradebook_course.root / "source" / "tiny01" / "sheet.toml"
    manifest.write_text(manifest.read_text() + RUBRIC_TASK)
    cfg = dataclasses.replace(load_config(gradebook_course.root), db_url=gradebook_course.db_url)
    engine, m = open_gradebook(cfg.db_url), cfg.manifest("tiny01")
    (tmp_path / "groups.csv").write_text("group,name,tutor_id,tutor_name\ng1,Mon,tina,Tina\ng2,Tue,tom,Tom\n")
    (tmp_path / "members.csv").write_text("student_id,group\nab1,g1\ncd2,g1\nef3,g2\n")
    import_groups(engine, tmp_path / "groups.csv")
    assign_students(engine, tmp_path / "members.csv", "admin")
    autograded(cfg, "tiny01", "ab1", Fraction(1), Fraction(2))
    autograded(cfg, "tiny01", "ef3", Fraction(1), Fraction(1), when=datetime(2026, 11, 5, 12, tzinfo=timezone.utc))
    autograded(cfg, "tiny02", "cd2", Fraction(0), Fraction(1))
    set_manual_score(engine, "tiny01", "ef3", "test_scale_more", Fraction(3, 2), "boss", "regraded by hand")
    set_extension(engine, "tiny01", "ef3", datetime(2026, 11, 6, 10, tzinfo=timezone.utc), "boss", "ill")
    set_extension(engine, "tiny02", "cd2", datetime(2026, 12, 20, 10, tzinfo=timezone.utc), "boss", "travel")
    with atomic(engine) as s:
        s.add_all([TeamMember(sheet="tiny01", team="T1", student_id=sid) for sid in ("ef3", "ab1")])
        row = s.execute(select(AutogradeResult).where(AutogradeResult.student_id == "ab1")).scalar_one()
        row.late, row.decision = True, "late (decided when it was received)"
        for k, (sid, kind, status) in enumerate([("ab1", "notebook", "accepted"), ("ef3", "paper", "accepted"),
                                                 ("ab1", "paper", "refused"), ("cd2", "paper", "accepted")]):
            s.add(Handin(sheet="tiny01", student_id=sid, kind=kind, source="web", received_at=T.replace(hour=9 + k),
                         status=status, reason="too large" if status != "accepted" else None,
                         original_name=f"{k}.pdf", stored_path=f"handins/{k}.pdf" if k != 2 else None))
    save_cell(engine, m, "ef3", "proof", value="2,5", comment="Zeile 3 → siehe Lösung", author="tom")
    save_cell(engine, m, "ab1", "derive", ticks=["result"], author="tina")
    save_cell(engine, m, "cd2", "proof", value="1", author="tina")
    set_override(engine, "cd2", "admitted", "Härtefall", "boss")
    set_override(engine, "cd2", "not_admitted", "zweite Meinung", "boss", replace=True)
    set_override(engine, "ef3", "admitted", "gone", "boss")
    revoke_override(engine, "ef3", "boss", "by mistake")
    close_sheet(engine, cfg, "tiny02", "boss", "the exercise class was cancelled")
    return cfg


@pytest.mark.parametrize("only", [{"ab1"}, {"cd2"}, {"ef3"}, {"ab1", "cd2"}, {"zz9"}])
def test_the_rule_reads_the_same_of_one_statement_as_of_each_table(course: CourseConfig, only: set[str]) -> None:
    engine = open_gradebook(course.db_url)
    with reading(engine) as conn:
        read = read_students(conn, only)
    with Session(engine) as session:
        tables = load_data(session, course, only)
    once = rule_data(course, read.rule)
    assert [f.name for f in dataclasses.fields(once) if getattr(once, f.name) != getattr(tables, f.name)] == []
    as_of = datetime(2026, 12, 30, tzinfo=timezone.utc)
    course_wide = {s.student_id: s for s in compute_standings(engine, course, as_of)}
    assert {s.student_id: s for s in standings_from(once, course, as_of)} == \
        {sid: course_wide[sid] for sid in only if sid in course_wide}
    if "ab1" in only:  # a team across the groups: its other member's rows come with it
        assert read.rule.teams == {("tiny01", "T1"): ["ef3", "ab1"]}
        assert once.team_of[("ab1", "tiny01")] == ["ef3", "ab1"]
        assert once.notebook[("ab1", "tiny01")] == once.notebook[("ef3", "tiny01")]


def test_what_the_dashboard_shows_are_the_rows_of_the_student_and_their_team(course: CourseConfig) -> None:
    engine = open_gradebook(course.db_url)
    with reading(engine) as conn:
        shown = read_students(conn, {"ab1"}).shown
    crew = ("ab1", "ef3")
    with Session(engine) as s:
        results = s.execute(select(AutogradeResult).where(AutogradeResult.student_id.in_(crew))).scalars().all()
        handins = s.execute(select(Handin).where(Handin.student_id.in_(crew))).scalars().all()
        points = s.execute(select(PaperPoints).where(PaperPoints.student_id.in_(crew))).scalars().all()
        comments = s.execute(select(PaperComment).where(PaperComment.student_id.in_(crew))).scalars().all()
    def result(r: Any) -> tuple[Any, ...]:
        return r.sheet, r.student_id, r.score, r.late, r.decision, r.result_json, r.graded_runs

    assert {result(r) for r in shown.results} == {result(r) for r in results}
    assert [(h.id, h.status, h.reason, h.stored_path) for h in shown.handins] == \
        [(h.id, h.status, h.reason, h.stored_path) for h in sorted(handins, key=lambda h: h.received_at, reverse=True)]
    assert {h.status for h in shown.handins} == {"accepted", "refused"}
    assert all(h.received_at.tzinfo is not None for h in shown.handins)
    assert {(p.sheet, p.task, p.student_id, p.points, p.rubric) for p in shown.points} == \
        {(p.sheet, p.task, p.student_id, p.points, p.rubric) for p in points} != set()
    assert [(c.student_id, c.text) for c in shown.comments] == [(c.student_id, c.text) for c in comments] == \
        [("ef3", "Zeile 3 → siehe Lösung")]
    assert "cd2" not in {r.student_id for r in shown.results + shown.handins + shown.points}  # type: ignore[operator]
    assert not shown.grading_runs
