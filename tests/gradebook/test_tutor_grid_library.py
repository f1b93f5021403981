"""The tutors' grid as a library: typed points, rubric ticks, comments, versions and conflicts, and
the grid's data (roster order, autograded points as `mlph status` counts them, hand-ins, empty cells)."""
from __future__ import annotations

import dataclasses
import threading
from datetime import datetime, timedelta, timezone
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from coursefactory import RUBRIC_TASK
from sqlalchemy import select
from sqlalchemy.orm import Session

from gb_helpers import autograded
from gradebook.course.config import CourseConfig, load_config
from gradebook.store.db import atomic, open_gradebook
from gradebook.errors import ConflictError, InputError
from gradebook.points.grid import groups_of, may_grade, save_cell, student_paper
from gradebook.points.grid_read import grid
from gradebook.people.groups import assign_students, import_groups
from gradebook.store.models import AuditLog, Handin, PaperComment, PaperPoints, TeamMember
from gradebook.points.paper import CellConflict, fmt, import_points, set_points



def with_rubric(cfg: CourseConfig, tmp_path: Path) -> CourseConfig:
    """tiny01 gains a paper task with a rubric; two groups with tutors tina (g1) and tom (g2)."""
    manifest = cfg.root / "source" / "tiny01" / "sheet.toml"
    manifest.write_text(manifest.read_text() + RUBRIC_TASK)
    engine = open_gradebook(cfg.db_url)
    (tmp_path / "groups.csv").write_text("group,name,tutor_id,tutor_name\ng1,Monday,tina,Tina T\ng2,Tuesday,tom,Tom T\n")
    (tmp_path / "members.csv").write_text("student_id,group\nab1,g1\ncd2,g1\nef3,g2\n")
    import_groups(engine, tmp_path / "groups.csv")
    assign_students(engine, tmp_path / "members.csv", "admin")
    return dataclasses.replace(load_config(cfg.root), db_url=cfg.db_url)


@pytest.fixture
def course(gradebook_course: CourseConfig, tmp_path: Path) -> CourseConfig:
    return with_rubric(gradebook_course, tmp_path)


def audit(cfg: CourseConfig, entity: str = "paper_points") -> list[Any]:
    with Session(open_gradebook(cfg.db_url)) as s:
        return [tuple(r) for r in s.execute(select(AuditLog.author, AuditLog.key, AuditLog.old_value, AuditLog.new_value)
                                            .where(AuditLog.entity == entity).order_by(AuditLog.id))]


def test_typed_points_accept_comma_and_point_and_refuse_out_of_range(course: CourseConfig) -> None:
    engine, m = open_gradebook(course.db_url), course.manifest("tiny01")
    first = save_cell(engine, m, "ab1", "proof", value="2,5", author="tina", expected_version=0)
    assert (first.points, first.version, first.entered_by, first.ticks) == (Fraction(5, 2), 1, "tina", None)
    second = save_cell(engine, m, "ab1", "proof", value="1.5", author="tina", expected_version=1)
    assert (second.points, second.version) == (Fraction(3, 2), 2)
    with pytest.raises(InputError, match=r"tiny01/proof, student 'ab1': 9 is outside 0\.\.3: above the task's maximum of 3"):
        save_cell(engine, m, "ab1", "proof", value="9", author="tina", expected_version=2)
    with pytest.raises(InputError, match="points cannot be negative"):
        save_cell(engine, m, "ab1", "proof", value="-1", author="tina", expected_version=2)
    with pytest.raises(InputError, match="'zwei' is not a number"):
        save_cell(engine, m, "ab1", "proof", value="zwei", author="tina", expected_version=2)
    with pytest.raises(InputError, match="unknown paper task 'nope'"):
        save_cell(engine, m, "ab1", "nope", value="1", author="tina", expected_version=0)
    with pytest.raises(InputError, match="unknown student 'zz9'"):
        save_cell(engine, m, "zz9", "proof", value="1", author="tina", expected_version=0)
    cleared = save_cell(engine, m, "ab1", "proof", value="", author="tina", expected_version=2)
    assert (cleared.points, cleared.version) == (None, 0)
    assert audit(course) == [("tina", "tiny01/proof/ab1", None, "5/2"), ("tina", "tiny01/proof/ab1", "5/2", "3/2"),
                             ("tina", "tiny01/proof/ab1", "3/2", None)]


def test_rubric_ticks_sum_and_the_student_sees_them(course: CourseConfig) -> None:
    engine, m = open_gradebook(course.db_url), course.manifest("tiny01")
    state = save_cell(engine, m, "cd2", "derive", ticks=["result"], author="tina", expected_version=0)
    assert (state.points, state.ticks) == (Fraction(5, 2), ("result",))
    state = save_cell(engine, m, "cd2", "derive", ticks=["result", "setup"], author="tina", expected_version=1)
    assert (state.points, state.ticks) == (Fraction(4), ("setup", "result"))  # rubric order
    assert student_paper(engine, m, "cd2")["derive"].ticks == ("setup", "result")
    with pytest.raises(InputError, match=r"unknown rubric item\(s\) 'bogus' \(the items are setup, result\)"):
        save_cell(engine, m, "cd2", "derive", ticks=["bogus"], author="tina", expected_version=2)
    with pytest.raises(InputError, match="the task has no rubric"):
        save_cell(engine, m, "cd2", "proof", ticks=["setup"], author="tina", expected_version=0)
    typed = save_cell(engine, m, "cd2", "derive", value="3", author="tina", expected_version=2)
    assert (typed.points, typed.ticks, typed.version) == (Fraction(3), None, 3)
    none = save_cell(engine, m, "cd2", "derive", ticks=[], author="tina", expected_version=3)
    assert (none.points, none.ticks) == (Fraction(0), ())
    with Session(engine) as s:
        assert s.execute(select(PaperPoints.rubric).where(PaperPoints.task == "derive")).scalar_one() == "[]"


def test_comments_are_versioned_and_conflict_like_points(course: CourseConfig) -> None:
    engine, m = open_gradebook(course.db_url), course.manifest("tiny01")
    state = save_cell(engine, m, "ab1", "proof", comment="  Sign error in (3).  ", author="tina")
    assert (state.comment, state.comment_version, state.points, state.version) == ("Sign error in (3).", 1, None, 0)
    with pytest.raises(CellConflict, match=r"changed meanwhile by tina at .* to 'Sign error in \(3\).' \(version 1"):
        save_cell(engine, m, "ab1", "proof", comment="Good.", author="tom", expected_comment_version=0)
    both = save_cell(engine, m, "ab1", "proof", value="2", comment="Good apart from (3).", author="tina",
                     expected_version=0, expected_comment_version=1)
    assert (both.points, both.comment, both.comment_version) == (Fraction(2), "Good apart from (3).", 2)
    # a stale comment refuses the whole save: the points of the same save are not written either
    with pytest.raises(CellConflict):
        save_cell(engine, m, "ab1", "proof", value="3", comment="x", author="tom", expected_version=1,
                  expected_comment_version=1)
    assert student_paper(engine, m, "ab1")["proof"].points == Fraction(2)
    assert student_paper(engine, m, "ab1")["proof"].comment == "Good apart from (3)."
    assert [a[3] for a in audit(course, "paper_comment")] == ["Sign error in (3).", "Good apart from (3)."]
    removed = save_cell(engine, m, "ab1", "proof", comment="", author="tina", expected_comment_version=2)
    assert (removed.comment, removed.comment_version) == ("", 0)
    with Session(engine) as s:
        assert s.execute(select(PaperComment)).first() is None


def test_a_stale_save_names_who_changed_the_cell_to_what_and_when(course: CourseConfig) -> None:
    engine, m = open_gradebook(course.db_url), course.manifest("tiny01")
    save_cell(engine, m, "ab1", "proof", value="2", author="tina", expected_version=0)
    with pytest.raises(CellConflict) as err:
        save_cell(engine, m, "ab1", "proof", value="1", author="tom", expected_version=0)
    assert err.value.current.author == "tina" and err.value.current.value == "2" and err.value.current.version == 1
    assert err.value.current.at is not None and abs(err.value.current.at - datetime.now(timezone.utc)) < timedelta(minutes=1)
    assert "changed meanwhile by tina at " in str(err.value) and " to 2 (version 1, you edited version 0)" in str(err.value)
    # the same value as stored is no change and no conflict, whatever the version
    assert save_cell(engine, m, "ab1", "proof", value="2,0", author="tom", expected_version=0).version == 1


def test_versions_never_repeat_after_a_cell_was_cleared(course: CourseConfig, tmp_path: Path) -> None:
    """A tab still showing version 1 must not overwrite a value entered after the cell was cleared."""
    engine, m = open_gradebook(course.db_url), course.manifest("tiny01")
    save_cell(engine, m, "ab1", "proof", value="2", author="tina", expected_version=0)  # tom's tab shows v1
    save_cell(engine, m, "ab1", "proof", value="", author="tina", expected_version=1)
    with pytest.raises(CellConflict, match="cleared meanwhile by tina"):
        save_cell(engine, m, "ab1", "proof", value="1", author="tom", expected_version=1)
    again = save_cell(engine, m, "ab1", "proof", value="3", author="tina", expected_version=0)
    assert again.version == 3
    with pytest.raises(CellConflict, match="to 3 "):
        save_cell(engine, m, "ab1", "proof", value="1", author="tom", expected_version=1)
    save_cell(engine, m, "ab1", "proof", value="", author="tina", expected_version=3)
    points = tmp_path / "points.csv"
    points.write_text("student_id,task,points\nab1,proof,1\n")
    import_points(engine, m, points, "tutor")
    with Session(engine) as s:
        assert s.execute(select(PaperPoints.version)).scalar_one() == 5  # after 4 changes in the audit log


def test_two_savers_one_conflict_nothing_lost(course: CourseConfig) -> None:
    engine, m = open_gradebook(course.db_url), course.manifest("tiny01")
    barrier = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def save(author: str, value: str) -> None:
        barrier.wait()
        try:
            save_cell(engine, m, "cd2", "proof", value=value, author=author, expected_version=0)
            outcomes[author] = "stored"
        except CellConflict as exc:
            assert exc.current.author != author and exc.current.value is not None
            outcomes[author] = f"conflict with {exc.current.author}"

    threads = [threading.Thread(target=save, args=a) for a in (("tina", "1"), ("tom", "2,5"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stored = [a for a, o in outcomes.items() if o == "stored"]
    assert len(stored) == 1 and len(outcomes) == 2
    loser = next(a for a in outcomes if a not in stored)
    assert outcomes[loser] == f"conflict with {stored[0]}"
    assert [(a[0], a[3]) for a in audit(course)] == [(stored[0], {"tina": "1", "tom": "5/2"}[stored[0]])]


def test_many_savers_every_save_stored_or_refused(course: CourseConfig) -> None:
    """Eight writers, each retrying on conflicts: every stored save is in the audit log in order, and
    the final value is the last one stored."""
    engine, m = open_gradebook(course.db_url), course.manifest("tiny01")
    stored: list[str] = []
    conflicts: list[str] = []
    lock = threading.Lock()

    def writer(n: int) -> None:
        version = 0
        for i in range(4):
            value = fmt(Fraction(n * 4 + i + 1, 16)).replace(".", ",")  # distinct values, some with a comma
            while True:
                try:
                    version = save_cell(engine, m, "ef3", "proof", value=value, author=f"t{n}",
                                        expected_version=version).version
                    with lock:
                        stored.append(value)
                    break
                except ConflictError as exc:
                    with lock:
                        conflicts.append(value)
                    version = exc.current.version if isinstance(exc, CellConflict) else version

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log = audit(course)
    assert len(stored) == 32 and len(log) == 32
    assert sorted(str(Fraction(v.replace(",", "."))) for v in stored) == sorted(a[3] for a in log)
    assert all(log[i][3] == log[i + 1][2] for i in range(len(log) - 1))  # each change saw the one before
    with Session(engine) as s:
        row = s.execute(select(PaperPoints)).scalar_one()
    assert (row.points, row.version) == (log[-1][3], 32)


def _handin(engine, sheet: str, student: str, kind: str, at: datetime, status: str = "accepted",
            name: str = "x.pdf") -> None:
    with atomic(engine) as s:
        s.add(Handin(sheet=sheet, student_id=student, kind=kind, source="web", received_at=at, status=status,
                     original_name=name, stored_path=f"handins/{sheet}/{student}/{name}"))


def test_grid_reads_a_group_in_roster_order_with_autograded_points_and_handins(course: CourseConfig) -> None:
    engine, m = open_gradebook(course.db_url), course.manifest("tiny01")
    (course.root / "extra.csv").write_text("student_id,last_name,first_name,email\naa0,Zeta,Ada,aa0@uni.de\n")
    from gradebook.people.roster import import_students

    import_students(engine, course.root / "extra.csv")
    (course.root / "m2.csv").write_text("student_id,group\naa0,g1\n")
    assign_students(engine, course.root / "m2.csv", "admin")
    autograded(course, "tiny01", "ab1", Fraction(1), Fraction(3, 2))
    autograded(course, "tiny01", "cd2", Fraction(1), Fraction(2), when=datetime(2026, 11, 5, 12, tzinfo=timezone.utc))
    t0 = datetime(2026, 11, 3, 9, tzinfo=timezone.utc)
    _handin(engine, "tiny01", "ab1", "paper", t0, name="first.pdf")
    _handin(engine, "tiny01", "ab1", "paper", t0 + timedelta(hours=1), name="second.pdf")
    _handin(engine, "tiny01", "ab1", "paper", t0 + timedelta(hours=2), status="refused", name="bad.pdf")
    save_cell(engine, m, "ab1", "proof", value="2", author="tina", expected_version=0)
    save_cell(engine, m, "ab1", "derive", ticks=["setup"], author="tina", expected_version=0, comment="ok")

    g = grid(engine, course, "tiny01", "g1")
    assert [s.id for s in g.students] == ["cd2", "ab1", "aa0"]  # García, Müller, Zeta
    assert [t.id for t in g.tasks] == ["proof", "derive"] and g.tasks[1].rubric[0].text == "Sets up the integral"
    assert (g.group_name, g.tutor, g.notebook_max) == ("Monday", "Tina T", Fraction(3))
    assert g.empty == 4 and g.cell("ab1", "derive").comment == "ok" and g.cell("ab1", "derive").points == Fraction(3, 2)
    ab1, cd2, aa0 = (next(s for s in g.students if s.id == i) for i in ("ab1", "cd2", "aa0"))
    assert ab1.pdf is not None and ab1.pdf.original_name == "second.pdf" and cd2.pdf is None
    assert (ab1.autograde_status, aa0.autograde_status, aa0.autograded) == ("graded", None, None)
    # the notebook points as `mlph status` counts them: cd2 handed in after the deadline and its grace,
    # and tiny01's late policy is "zero"
    assert cd2.autograded == 0 and ab1.autograded == Fraction(5, 2)
    with pytest.raises(InputError, match="unknown tutorial group 'g9'"):
        grid(engine, course, "tiny01", "g9")


def test_teams_share_a_pdf_and_count_a_teammates_points(course: CourseConfig) -> None:
    engine, m = open_gradebook(course.db_url), course.manifest("tiny01")
    with atomic(engine) as s:
        s.add_all([TeamMember(sheet="tiny01", team="T1", student_id=sid) for sid in ("ab1", "ef3")])
    _handin(engine, "tiny01", "ef3", "paper", datetime(2026, 11, 3, 9, tzinfo=timezone.utc), name="team.pdf")
    save_cell(engine, m, "ef3", "proof", value="2,5", author="tom", expected_version=0)
    g = grid(engine, course, "tiny01", "g1")
    ab1 = next(s for s in g.students if s.id == "ab1")
    assert ab1.team == "T1" and ab1.pdf is not None and ab1.pdf.student_id == "ef3"
    cell = g.cell("ab1", "proof")
    assert (cell.points, cell.team_points, cell.empty) == (None, Fraction(5, 2), False)
    assert g.empty == 3  # ab1/derive, cd2/proof, cd2/derive


def test_who_may_grade_whom(course: CourseConfig) -> None:
    engine = open_gradebook(course.db_url)
    assert [g.id for g in groups_of(engine, "tina")] == ["g1"]
    assert [g.id for g in groups_of(engine, "anyone", admin=True)] == ["g1", "g2"]
    assert may_grade(engine, "tina", "ab1") and not may_grade(engine, "tina", "ef3")
    assert may_grade(engine, "tom", "ef3") and may_grade(engine, "boss", "ef3", admin=True)
    assert not may_grade(engine, "tina", "nobody")


def test_set_points_keeps_its_interface(course: CourseConfig) -> None:
    engine, m = open_gradebook(course.db_url), course.manifest("tiny01")
    assert set_points(engine, m, "ab1", "derive", None, "tina", 0, ticks=["setup", "result"]) == 1
    assert student_paper(engine, m, "ab1")["derive"].points == Fraction(4)
    assert set_points(engine, m, "ab1", "derive", None, "tina", 1) == 0


def test_autograded_points_follow_the_admissions_rule(course: CourseConfig) -> None:
    """The grid reads only its group's students; its numbers equal gradebook.admission.rule.notebook_points
    (manual scores, a stored late decision, a late hand-in under policy "zero", an extension, a team)."""
    from gradebook.admission.rule import notebook_points
    from gradebook.points.manual import set_extension, set_manual_score
    from gradebook.store.models import AutogradeResult

    engine = open_gradebook(course.db_url)
    autograded(course, "tiny01", "ab1", Fraction(1), Fraction(2))
    autograded(course, "tiny01", "cd2", Fraction(1), Fraction(2), when=datetime(2026, 11, 5, 12, tzinfo=timezone.utc))
    autograded(course, "tiny01", "ef3", Fraction(1), Fraction(1), when=datetime(2026, 11, 5, 12, tzinfo=timezone.utc))
    set_manual_score(engine, "tiny01", "ef3", "test_scale_more", Fraction(3, 2), "boss", "regraded by hand")
    set_extension(engine, "tiny01", "ef3", datetime(2026, 11, 6, 10, tzinfo=timezone.utc), "boss", "ill")
    with atomic(engine) as s:
        row = s.execute(select(AutogradeResult).where(AutogradeResult.student_id == "ab1")).scalar_one()
        row.late, row.decision = True, "late (decided when it was received)"
        s.add_all([TeamMember(sheet="tiny01", team="T", student_id=sid) for sid in ("cd2", "ef3")])
    shown = {s.id: s.autograded for g in ("g1", "g2") for s in grid(engine, course, "tiny01", g).students}
    with Session(engine) as s:
        expected = {sid: pts for (sid, sheet), pts in notebook_points(s, course).items() if sheet == "tiny01"}
    assert shown == expected
    assert shown == {"ab1": 0, "cd2": Fraction(5, 2), "ef3": Fraction(5, 2)}
