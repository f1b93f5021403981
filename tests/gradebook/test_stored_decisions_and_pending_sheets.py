"""Issue 9, gradebook side, items 1-3: one stored late decision shown everywhere; roster first; a sheet
counts only when decided (pending / planned, never 0), closed by an admin, and its invariants."""
from __future__ import annotations

import csv
import dataclasses
from datetime import datetime, timezone
from fractions import Fraction

from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from autograder.cli import main
from gb_helpers import autograded
from gradebook.admission.rule import ADMITTED, NOT_ADMITTED, OPEN, compute_standings, status_of
from gradebook.store.db import atomic, open_gradebook
from gradebook.points.handins import decide_late, store_decision
from gradebook.store.models import AuditLog, AutogradeResult, Handin, SheetState
from gradebook.points.paper import import_points

MID = datetime(2026, 11, 24, tzinfo=timezone.utc)  # tiny01 and tiny02 past due (2026-11-04), sheet09 planned
AS_OF = ["--as-of", "2026-11-24T00:00:00+00:00"]
LATE = datetime(2026, 11, 5, 12, tzinfo=timezone.utc)  # a day after tiny01's deadline


def paper(cfg, tmp_path, sheet, rows):
    f = tmp_path / f"p-{sheet}-{len(rows)}.csv"
    f.write_text("student_id,task,points\n" + "".join(f"{s},proof,{p}\n" for s, p in rows))
    import_points(open_gradebook(cfg.db_url), cfg.manifest(sheet), f, "tutor")


def store_late_decision(cfg, sheet, student):
    """What the autograder does when it grades a hand-in: decide once, store the decision."""
    with atomic(open_gradebook(cfg.db_url)) as s:
        row = s.execute(select(AutogradeResult).where(AutogradeResult.sheet == sheet,
                                                      AutogradeResult.student_id == student)).scalar_one()
        store_decision(row, decide_late(row.submitted_at, cfg.manifest(sheet), None), cfg.timezone)


def standings(cfg, as_of=MID):
    return {s.student_id: s for s in compute_standings(open_gradebook(cfg.db_url), cfg, as_of)}


def run(*args):
    return CliRunner().invoke(main, list(args))


def test_the_stored_late_decision_counts_and_is_shown(gradebook_course, tmp_path):
    cfg = gradebook_course
    autograded(cfg, "tiny01", "ab1", Fraction(1), Fraction(2), when=LATE)
    autograded(cfg, "tiny01", "cd2", Fraction(1), Fraction(2))
    for sid in ("ab1", "cd2"):
        store_late_decision(cfg, "tiny01", sid)
    paper(cfg, tmp_path, "tiny01", [("ab1", 3), ("cd2", 2)])
    got = standings(cfg)
    ab1 = got["ab1"].cells["tiny01"]
    assert (ab1.state, ab1.notebook, ab1.counted_notebook, ab1.paper, ab1.counted) == ("late", 3, 0, 3, 3)
    assert got["cd2"].cells["tiny01"].counted == 5
    result = run("status", "ab1", *AS_OF)
    assert result.exit_code == 0, result.output
    assert "late by 1 d 3 h 00 min (grace 15 min), counts 0 points under the sheet's late policy" in result.output
    assert "received Thu 05 Nov 2026, 13:00:00 CET, deadline Wed 04 Nov 2026, 10:00 CET" in result.output
    line = next(ln for ln in result.output.splitlines() if ln.startswith("│ tiny01"))
    assert [c.strip() for c in line.strip("│").split("│")][:5] == ["tiny01", "3", "3", "3", "late"]
    # the stored decision is what counts, not one taken again from a timestamp
    with atomic(open_gradebook(cfg.db_url)) as s:
        row = s.execute(select(AutogradeResult).where(AutogradeResult.student_id == "cd2")).scalar_one()
        row.late, row.decision = True, "stored: late"
    assert standings(cfg)["cd2"].cells["tiny01"].counted == 2


def test_an_extension_takes_the_decision_again_in_the_same_transaction(gradebook_course, tmp_path):
    cfg = gradebook_course
    autograded(cfg, "tiny01", "ab1", Fraction(1), Fraction(2), when=LATE)
    store_late_decision(cfg, "tiny01", "ab1")
    paper(cfg, tmp_path, "tiny01", [("ab1", 3)])
    assert standings(cfg)["ab1"].sheets["tiny01"] == 3
    result = run("extension", "tiny01", "ab1", "2026-11-06T10:00", "--reason", "ill", "--author", "prof")
    assert result.exit_code == 0, result.output
    assert "hand-in: received Thu 05 Nov 2026, 13:00:00 CET, deadline Fri 06 Nov 2026, 10:00 CET (extended): in time" \
        in result.output
    with Session(open_gradebook(cfg.db_url)) as s:
        row = s.execute(select(AutogradeResult).where(AutogradeResult.student_id == "ab1")).scalar_one()
        assert row.late is False and "(extended): in time" in row.decision
    cell = standings(cfg)["ab1"].cells["tiny01"]
    assert (cell.counted, cell.state, cell.extended) == (6, "graded", True)
    assert "ext." in run("status", "ab1", *AS_OF).output
    result = run("extension", "sheet09", "ab1", "2026-11-06T10:00", "--reason", "x")  # planned: no manifest
    assert result.exit_code == 2 and "unknown sheet 'sheet09'" in result.output


def test_ids_not_on_the_roster_are_left_out_and_counted(gradebook_course, tmp_path):
    cfg = gradebook_course
    autograded(cfg, "tiny01", "root", Fraction(1), Fraction(2))  # stored before the roster came first
    assert "root" not in standings(cfg)
    result = run("admission", "--csv", str(tmp_path / "a.csv"), *AS_OF)
    assert result.exit_code == 0, result.output
    assert "1 id(s) not on the roster left out (root)" in result.output
    assert [r["student_id"] for r in csv.DictReader((tmp_path / "a.csv").open())] == ["cd2", "ab1", "ef3"]
    result = run("status", "root")
    assert result.exit_code == 2 and "'root' is not on the roster" in result.output
    assert run("students", "list", "--off-roster").output.split() == ["root"]


def test_a_sheet_waiting_for_grading_is_pending_never_zero(gradebook_course, tmp_path):
    cfg = dataclasses.replace(gradebook_course, semester=gradebook_course.semester[:2])  # max 12, threshold 6
    autograded(cfg, "tiny01", "ab1", Fraction(1), Fraction(2))
    paper(cfg, tmp_path, "tiny01", [("ab1", 0)])
    with atomic(open_gradebook(cfg.db_url)) as s:  # cd2's tiny02 arrived, the autograder has not run yet
        s.add(Handin(sheet="tiny02", student_id="cd2", kind="notebook", source="exchange",
                     received_at=datetime(2026, 11, 3, tzinfo=timezone.utc), status="accepted"))
    cd2 = standings(cfg)["cd2"]  # waiting for the autograder: pending, never 0
    assert cd2.sheets["tiny02"] is None and cd2.cells["tiny02"].state == "pending"
    ab1 = standings(cfg)["ab1"]  # handed nothing in for tiny02: decided by their own hand-ins, not by cd2's
    assert ab1.sheets == {"tiny01": 3, "tiny02": 0} and ab1.cells["tiny02"].state == "missing"
    facts_line = [ln for ln in run("sheets", *AS_OF).output.splitlines() if ln.startswith("tiny02 pending")]
    assert len(facts_line) == 1 and facts_line[0].startswith("tiny02 pending: 1 notebook hand-in(s) not graded yet: cd2")


def test_paper_points_missing_keep_a_sheet_pending_everywhere(gradebook_course, tmp_path):
    cfg = gradebook_course
    autograded(cfg, "tiny01", "ab1", Fraction(1), Fraction(2))
    result = run("admission", "--csv", str(tmp_path / "a.csv"), "--xlsx", str(tmp_path / "a.xlsx"), *AS_OF)
    assert result.exit_code == 0, result.output
    rows = {r["student_id"]: r for r in csv.DictReader((tmp_path / "a.csv").open())}
    # ab1 waits for their own paper points; ef3, who handed nothing in, is decided by their own hand-ins
    assert (rows["ab1"]["tiny01"], rows["ef3"]["tiny01"], rows["ef3"]["tiny02"], rows["ef3"]["sheet09"]) == (
        "pending", "0", "0", "planned")
    from openpyxl import load_workbook

    ws = load_workbook(tmp_path / "a.xlsx").active
    row = next(r for r in range(2, 5) if ws.cell(r, 1).value == "ab1")
    assert [ws.cell(row, c).value for c in (7, 8, 9)] == ["pending", 0, "planned"]
    status = run("status", "ab1", *AS_OF).output
    assert "not decided yet: tiny01, sheet09" in status and "pending" in status
    assert "tiny01 pending: 1 student(s) without paper points: ab1" in run("sheets", *AS_OF).output


def test_close_prints_what_is_missing_records_it_and_reopen_undoes_it(gradebook_course, tmp_path):
    cfg = dataclasses.replace(gradebook_course, semester=gradebook_course.semester[:2])
    autograded(cfg, "tiny01", "ab1", Fraction(1), Fraction(2))
    result = run("sheet", "close", "tiny01", "--reason", "tutor ill, paper part dropped", "--author", "prof")
    assert result.exit_code == 0, result.output
    assert "missing: 1 student(s) without paper points: ab1" in result.output
    with Session(open_gradebook(cfg.db_url)) as s:
        st_ = s.get(SheetState, "tiny01")
        assert (st_.closed_by, st_.close_reason) == ("prof", "tutor ill, paper part dropped")
        audit = s.execute(select(AuditLog).where(AuditLog.entity == "sheet_state")).scalars().all()
        assert [(a.key, a.author) for a in audit] == [("tiny01", "prof")] and "missing" in audit[0].new_value
    assert standings(cfg)["ab1"].sheets["tiny01"] == 3
    result = run("sheet", "close", "tiny01", "--reason", "again")
    assert result.exit_code == 2 and "already closed (by prof" in result.output
    assert run("sheet", "reopen", "tiny01", "--reason", "paper points came").exit_code == 0
    assert standings(cfg)["ab1"].sheets["tiny01"] is None
    assert run("sheet", "close", "nope", "--reason", "x").exit_code == 2


def test_an_extension_still_running_keeps_the_sheet_open_for_that_student_only(gradebook_course, tmp_path):
    cfg = gradebook_course
    run("extension", "tiny02", "ef3", "2026-12-01T10:00", "--reason", "exchange semester")
    got = standings(cfg)
    assert (got["ef3"].sheets["tiny02"], got["ef3"].cells["tiny02"].state) == (None, "open for hand-in")
    assert got["ab1"].sheets["tiny02"] == 0 and got["ab1"].cells["tiny02"].state == "missing"


def test_mlph_sheets_lists_every_sheet_with_its_counts(gradebook_course, tmp_path):
    cfg = gradebook_course
    autograded(cfg, "tiny01", "ab1", Fraction(1), Fraction(2))
    paper(cfg, tmp_path, "tiny01", [("ab1", 3), ("cd2", 1)])
    out = run("sheets", *AS_OF).output
    rows = {ln.split("│")[1].strip(): [c.strip() for c in ln.split("│")[1:-1]] for ln in out.splitlines()
            if ln.startswith("│ ")}
    assert rows["tiny01"][2:] == ["6", "decided", "1", "1", "2"]
    assert rows["tiny02"][3] == "decided" and rows["sheet09"][3] == "planned"


sheets = st.lists(st.tuples(st.fractions(min_value=1, max_value=20, max_denominator=2), st.booleans(),
                            st.fractions(min_value=0, max_value=1, max_denominator=4)), min_size=1, max_size=8)


def _split(plan):
    maxima = {f"s{i}": m for i, (m, _, _) in enumerate(plan)}
    counted = {f"s{i}": None if pending else share * m for i, (m, pending, share) in enumerate(plan)}
    return maxima, counted


@given(sheets, st.sampled_from([Fraction(1, 2), Fraction(2, 5), Fraction(3, 4)]))
def test_property_a_pending_sheet_never_makes_anyone_not_admitted(plan, share):
    maxima, counted = _split(plan)
    threshold = share * sum(maxima.values())
    full = {k: maxima[k] if v is None else v for k, v in counted.items()}
    if status_of(full, maxima, threshold)[0] != NOT_ADMITTED:
        assert status_of(counted, maxima, threshold)[0] != NOT_ADMITTED


@given(sheets, st.data())
def test_property_deciding_a_sheet_never_reverses_a_final_status(plan, data):
    maxima, counted = _split(plan)
    threshold = sum(maxima.values()) / 2
    before = status_of(counted, maxima, threshold)[0]
    pending = [k for k, v in counted.items() if v is None]
    if pending:
        k = data.draw(st.sampled_from(pending))
        counted[k] = data.draw(st.fractions(min_value=0, max_value=maxima[k]))
    after = status_of(counted, maxima, threshold)[0]
    assert before == OPEN or after == before  # admitted and not_admitted are final


@given(st.lists(st.integers(min_value=1, max_value=30), min_size=1, max_size=8))
def test_property_exactly_half_of_everything_decided_is_admitted(maxima_list):
    maxima = {f"s{i}": Fraction(m) for i, m in enumerate(maxima_list)}
    counted: dict[str, Fraction | None] = {k: m / 2 for k, m in maxima.items()}
    assert status_of(counted, maxima, sum(maxima.values()) / 2)[:2] == (ADMITTED, 0)
    first = next(iter(maxima))
    counted[first] = maxima[first] / 2 - Fraction(1, 100)
    assert status_of(counted, maxima, sum(maxima.values()) / 2)[0] == NOT_ADMITTED
