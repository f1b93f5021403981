"""Rubrics by reference: items in the database (seeded from the manifest), gradings that reference them plus an
adjustment, and item edits that change every student who has the item, in one transaction and one audit event,
so the next admission list reads the new totals. A property test drives random sequences of edits and
gradings and checks every total against the clamped sum of its referenced items plus its adjustment."""
from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from test_tutor_grid_library import with_rubric  # type: ignore[import-not-found]
from gradebook.admission.rule import compute_standings
from gradebook.course.config import CourseConfig
from gradebook.errors import InputError
from gradebook.points.grid import save_cell
from gradebook.points.paper import CellConflict, set_points
from gradebook.points.rubric import clamped_total
from gradebook.points.rubric_edit import add_item, delete_item, list_items, set_item
from gradebook.store.db import atomic, open_gradebook
from gradebook.store.models import AuditLog, PaperPoints, RubricItemRow


@pytest.fixture
def course(gradebook_course: CourseConfig, tmp_path: Path) -> CourseConfig:
    return with_rubric(gradebook_course, tmp_path)


def _paper(cfg: CourseConfig, student: str) -> Fraction | None:
    cell = next(s for s in compute_standings(open_gradebook(cfg.db_url), cfg) if s.student_id == student).cells["tiny01"]
    return cell.paper


def _rubric_audit(cfg: CourseConfig) -> list[Any]:
    with Session(open_gradebook(cfg.db_url)) as s:
        return list(s.execute(select(AuditLog).where(AuditLog.entity == "rubric_item").order_by(AuditLog.id)).scalars())


def test_items_are_seeded_from_the_manifest_with_their_keys(course: CourseConfig) -> None:
    engine, m = open_gradebook(course.db_url), course.manifest("tiny01")
    set_points(engine, m, "ab1", "derive", None, "tina", 0, ticks=["setup"])  # graded before the seeding
    items = list_items(engine, m)["derive"]
    assert [(i.key, i.points, i.text) for i in items] == [("setup", Fraction(3, 2), "Sets up the integral"),
                                                         ("result", Fraction(5, 2), "Correct result")]
    change = set_item(engine, m, "derive", "setup", "boss", points=Fraction(1))
    assert change.students == {"ab1": (Fraction(3, 2), Fraction(1))}
    with pytest.raises(InputError, match=r"tiny01/derive: no rubric item 'nope' \(the items are setup, result\)"):
        set_item(engine, m, "derive", "nope", "boss", points=Fraction(1))
    with pytest.raises(InputError, match="unknown paper task 'bogus'"):
        add_item(engine, m, "bogus", Fraction(1), "x", "boss")


def test_changing_an_items_points_changes_everyone_who_has_it_in_one_audited_event(course: CourseConfig) -> None:
    engine, m = open_gradebook(course.db_url), course.manifest("tiny01")
    save_cell(engine, m, "ab1", "derive", ticks=["setup", "result"], author="tina")
    save_cell(engine, m, "cd2", "derive", ticks=["result"], author="tina")
    save_cell(engine, m, "ef3", "derive", ticks=["setup"], author="tom")
    assert _paper(course, "cd2") == Fraction(5, 2)
    change = set_item(engine, m, "derive", "result", "boss", points=Fraction(2), reason="too generous")
    assert change.students == {"ab1": (Fraction(4), Fraction(7, 2)), "cd2": (Fraction(5, 2), Fraction(2))}
    events = _rubric_audit(course)
    assert len(events) == 1 and events[0].key == "tiny01/derive/result" and events[0].author == "boss"
    assert json.loads(events[0].old_value)["points"] == "2.5" and json.loads(events[0].new_value)["points"] == "2"
    assert "too generous" in events[0].reason and "ab1 4 → 3.5" in events[0].reason and "cd2 2.5 → 2" in events[0].reason
    # a student's audit trail shows the edit that moved their points (`mlph audit --student`, the audit page)
    from gradebook.exports.lists import audit_log

    assert [r.entity for r in audit_log(engine, student="cd2")][-1] == "rubric_item"
    assert "rubric_item" not in [r.entity for r in audit_log(engine, student="ef3")]
    # the next admission reads the new totals; ef3 (no 'result') is untouched
    assert (_paper(course, "ab1"), _paper(course, "cd2"), _paper(course, "ef3")) == (Fraction(7, 2), 2, Fraction(3, 2))
    # a tab still showing the old points gets a conflict naming the change, not a silent overwrite
    with pytest.raises(CellConflict, match="by boss"):
        save_cell(engine, m, "cd2", "derive", ticks=[], author="tina", expected_version=1)
    # a text change moves nobody's points, but is audited
    assert set_item(engine, m, "derive", "result", "boss", text="Right result").students == {}
    assert len(_rubric_audit(course)) == 2


def test_deleting_an_item_takes_it_and_its_points_from_every_grading(course: CourseConfig) -> None:
    engine, m = open_gradebook(course.db_url), course.manifest("tiny01")
    save_cell(engine, m, "ab1", "derive", ticks=["setup", "result"], author="tina")
    change = delete_item(engine, m, "derive", "setup", "boss", reason="merged")
    assert change.students == {"ab1": (Fraction(4), Fraction(5, 2))}
    with Session(engine) as s:
        row = s.execute(select(PaperPoints).where(PaperPoints.student_id == "ab1")).scalar_one()
    assert (json.loads(row.rubric or "null"), row.points) == (["result"], "5/2")
    assert [i.key for i in list_items(engine, m)["derive"]] == ["result"]
    with pytest.raises(InputError, match="unknown rubric item"):
        save_cell(engine, m, "ab1", "derive", ticks=["setup"], author="tina", expected_version=row.version)
    assert add_item(engine, m, "derive", Fraction(1), "Setup again", "boss").key == "i3"  # 'setup' is never reused
    with pytest.raises(InputError, match="is taken"):
        add_item(engine, m, "derive", Fraction(1), "Setup again", "boss", key="setup")


def test_deductions_and_adjustments_stay_within_the_tasks_bounds(course: CourseConfig) -> None:
    engine, m = open_gradebook(course.db_url), course.manifest("tiny01")
    minus = add_item(engine, m, "derive", Fraction(-2), "Sign error", "boss", note="once per solution").key
    assert save_cell(engine, m, "ab1", "derive", ticks=["setup", minus], author="tina").points == 0  # 1.5 - 2 → 0
    state = save_cell(engine, m, "cd2", "derive", ticks=["setup", "result"], adjustment="1", author="tina")
    assert (state.points, state.adjustment) == (Fraction(4), Fraction(1))  # 5 → the maximum 4
    state = save_cell(engine, m, "cd2", "derive", ticks=["result"], author="tina", expected_version=state.version)
    assert (state.points, state.adjustment) == (Fraction(7, 2), Fraction(1))  # the adjustment is kept
    state = save_cell(engine, m, "cd2", "derive", ticks=["result"], adjustment="", author="tina",
                      expected_version=state.version)
    assert (state.points, state.adjustment) == (Fraction(5, 2), None)
    set_item(engine, m, "derive", minus, "boss", points=Fraction(-1, 2))
    assert _paper(course, "ab1") == 1
    with pytest.raises(InputError, match="an adjustment goes with rubric items"):
        set_points(engine, m, "ef3", "derive", Fraction(1), "tom", 0, adjustment=Fraction(1))
    with pytest.raises(InputError, match="must not be empty"):
        add_item(engine, m, "derive", Fraction(1), "  ", "boss")


def test_typed_points_do_not_follow_the_rubric(course: CourseConfig) -> None:
    engine, m = open_gradebook(course.db_url), course.manifest("tiny01")
    save_cell(engine, m, "ab1", "derive", value="3", author="tina")
    assert set_item(engine, m, "derive", "setup", "boss", points=Fraction(1)).students == {}
    assert _paper(course, "ab1") == 3


def test_the_rubric_command_lists_adds_sets_and_deletes(course: CourseConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    from autograder.cli import main

    engine, m = open_gradebook(course.db_url), course.manifest("tiny01")
    save_cell(engine, m, "ab1", "derive", ticks=["setup"], author="tina")
    run = CliRunner().invoke
    out = run(main, ["rubric", "add", "tiny01", "derive", "-0,5", "Units missing", "--note", "SI units"])
    assert out.exit_code == 0, out.output
    assert "tiny01/derive, item i3: added" in out.output
    out = run(main, ["rubric", "set", "tiny01", "derive", "setup", "--points", "1", "--author", "boss"])
    assert out.exit_code == 0 and "item setup: changed; 1 student(s)' points changed" in out.output, out.output
    assert run(main, ["rubric", "set", "tiny01", "derive", "i3", "--points", "-1"]).exit_code == 0
    listed = run(main, ["rubric", "list", "tiny01", "derive"]).output
    assert "setup" in listed and "-1  Units missing  [tutors: SI units]" in listed
    out = run(main, ["rubric", "delete", "tiny01", "derive", "i3"])
    assert out.exit_code == 0 and "deleted" in out.output
    bad = run(main, ["rubric", "set", "tiny01", "derive", "setup", "--points", "lots"])
    assert bad.exit_code != 0 and "--points 'lots' is not a number" in bad.output
    assert _paper(course, "ab1") == 1


POINTS = st.fractions(min_value=-3, max_value=5, max_denominator=2)
OPS = st.lists(st.one_of(
    st.tuples(st.just("add"), POINTS),
    st.tuples(st.just("set"), st.integers(0, 6), POINTS),
    st.tuples(st.just("delete"), st.integers(0, 6)),
    st.tuples(st.just("grade"), st.sampled_from(["ab1", "cd2", "ef3"]), st.sets(st.integers(0, 6), max_size=4),
              st.sampled_from(["", "1", "-1,5", "0.5"]))), min_size=1, max_size=12)


def _check_every_total(engine: Any, m: Any) -> None:
    task = m.paper_task("derive")
    with Session(engine) as s:
        items = {r.key: Fraction(r.points) for r in s.execute(select(RubricItemRow).where(
            RubricItemRow.task == "derive", RubricItemRow.deleted_at.is_(None))).scalars()}
        for row in s.execute(select(PaperPoints).where(PaperPoints.task == "derive")).scalars():
            refs = json.loads(row.rubric or "null")
            assert set(refs) <= set(items), (refs, items)  # no reference to a deleted item
            adjust = Fraction(row.adjustment) if row.adjustment else None
            assert Fraction(row.points) == clamped_total((items[k] for k in refs), adjust, task.points, task.start)
            assert task.scoring == "points" or refs or adjust or Fraction(row.points) == task.points
            assert 0 <= Fraction(row.points) <= task.points


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("scoring", ["points", "deductions"])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS)
def test_a_total_is_always_the_clamped_sum_of_its_items_plus_adjustment(course: CourseConfig, scoring: str,
                                                                       ops: list[Any]) -> None:
    """Scored by points, a total starts at 0; by deductions, at the task's maximum (nothing ticked: full marks)."""
    if scoring == "deductions":
        course = _scored_by_deductions(course)
    engine, m = open_gradebook(course.db_url), course.manifest("tiny01")
    assert m.paper_task("derive").scoring == scoring  # type: ignore[union-attr]
    with atomic(engine) as s:  # every example starts from the manifest's rubric and no gradings
        s.execute(delete(PaperPoints))
        s.execute(delete(RubricItemRow))
    for op in ops:
        keys = [i.key for i in list_items(engine, m)["derive"]]
        if op[0] == "add":
            add_item(engine, m, "derive", op[1], "an item", "boss")
        elif op[0] in ("set", "delete") and keys:
            key = keys[op[1] % len(keys)]
            if op[0] == "set":
                set_item(engine, m, "derive", key, "boss", points=op[2])
            else:
                delete_item(engine, m, "derive", key, "boss")
        elif op[0] == "grade" and keys:
            with Session(engine) as s:
                version = s.execute(select(PaperPoints.version).where(
                    PaperPoints.student_id == op[1], PaperPoints.task == "derive")).scalar() or 0
            save_cell(engine, m, op[1], "derive", ticks=[keys[i % len(keys)] for i in op[2]], adjustment=op[3],
                      author="tina", expected_version=version)
        _check_every_total(engine, m)


def _scored_by_deductions(cfg: CourseConfig) -> CourseConfig:
    """The course with its task "derive" scored by deductions (written once; hypothesis reuses the course)."""
    import dataclasses

    from gradebook.course.config import load_config

    manifest = cfg.root / "source" / "tiny01" / "sheet.toml"
    text = manifest.read_text()
    if 'scoring = "deductions"' not in text:
        manifest.write_text(text.replace('id = "derive"\ntitle = "Derivation"\nkind = "paper"\npoints = 4\n',
                                         'id = "derive"\ntitle = "Derivation"\nkind = "paper"\npoints = 4\n'
                                         'scoring = "deductions"\n', 1))
    return dataclasses.replace(load_config(cfg.root), db_url=cfg.db_url)


def test_versions_never_repeat_when_a_cell_moved_by_rubric_edits_is_cleared_and_entered_again(
        course: CourseConfig) -> None:
    engine, m = open_gradebook(course.db_url), course.manifest("tiny01")
    save_cell(engine, m, "ab1", "derive", ticks=["setup"], author="tina")  # version 1
    set_item(engine, m, "derive", "setup", "boss", points=Fraction(1))  # 2 (no row of the cell's own)
    set_item(engine, m, "derive", "setup", "boss", points=Fraction(2))  # 3: a tab still shows this one
    save_cell(engine, m, "ab1", "derive", value="", author="tom", expected_version=3)  # cleared
    again = save_cell(engine, m, "ab1", "derive", value="1", author="tom", expected_version=0)
    assert again.version > 3
    with pytest.raises(CellConflict):  # the old tab's version is not the new entry's
        save_cell(engine, m, "ab1", "derive", value="2", author="tina", expected_version=3)


def test_edits_and_saves_at_once_leave_every_total_right(course: CourseConfig) -> None:
    """An admin changing an item while tutors save gradings that tick it: no deadlock, no lost save, and
    afterwards every total is its items' sum (saves share the task's item rows that an edit holds: they take
    turns; this run does not force the narrow interleaving that the lock closes: that is
    test_a_save_waits_for_a_rubric_edit_and_counts_it.py)."""
    import threading

    engine, m = open_gradebook(course.db_url), course.manifest("tiny01")
    errors: list[BaseException] = []

    def tutor(student: str) -> None:
        try:
            for n in range(5):
                while True:
                    with Session(engine) as s:
                        version = s.execute(select(PaperPoints.version).where(
                            PaperPoints.student_id == student, PaperPoints.task == "derive")).scalar() or 0
                    try:
                        save_cell(engine, m, student, "derive", ticks=["setup"] if n % 2 else ["setup", "result"],
                                  author="tina", expected_version=version)
                        break
                    except CellConflict:
                        continue  # an edit moved the cell meanwhile: read it again
        except BaseException as exc:  # pragma: no cover - the assertion below names it
            errors.append(exc)

    def admin() -> None:
        try:
            for n in range(5):
                set_item(engine, m, "derive", "setup", "boss", points=Fraction(1 + n % 2, 2))
        except BaseException as exc:  # pragma: no cover
            errors.append(exc)

    threads = [threading.Thread(target=tutor, args=(sid,)) for sid in ("ab1", "cd2", "ef3")]
    threads.append(threading.Thread(target=admin))
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    _check_every_total(engine, m)
