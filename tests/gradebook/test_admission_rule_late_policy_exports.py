"""Admission: exact arithmetic, statuses over the semester, late policy, overrides, exports."""
from __future__ import annotations

import csv
from datetime import datetime, timezone
from fractions import Fraction

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autograder.cli import main
from gb_helpers import autograded
from gradebook.admission.rule import ADMITTED, NOT_ADMITTED, OPEN, compute_standings, decide
from gradebook.store.db import atomic, open_gradebook
from gradebook.exports.admission_list import percent_text, write_csv, write_xlsx
from gradebook.store.models import AdmissionOverride, Extension
from gradebook.points.paper import import_points

AFTER_ALL = datetime(2027, 3, 1, tzinfo=timezone.utc)
MID = datetime(2026, 11, 24, tzinfo=timezone.utc)


def paper(cfg, tmp_path, sheet, rows):
    f = tmp_path / f"p-{sheet}.csv"
    f.write_text("student_id,task,points\n" + "".join(f"{s},proof,\"{p}\"\n" for s, p in rows))
    import_points(open_gradebook(cfg.db_url), cfg.manifest(sheet), f, "tutor")


def close(cfg, *sheets):
    """Decide sheets by closing them (the tests here are not about grading being complete)."""
    from gradebook.course.sheets_state import close_sheet

    for sheet in sheets or [s.id for s in cfg.semester]:
        close_sheet(open_gradebook(cfg.db_url), cfg, sheet, "admin", "test: decided")


def by_id(cfg, as_of):
    return {s.student_id: s for s in compute_standings(open_gradebook(cfg.db_url), cfg, as_of)}


def test_points_maximum_and_status_over_the_semester(gradebook_course, tmp_path):
    cfg = gradebook_course  # tiny01 (3+3), tiny02 (3+3), sheet09 planned 20, due 2027-02-01: max 32, threshold 16
    autograded(cfg, "tiny01", "ab1", Fraction(1), Fraction(2))
    autograded(cfg, "tiny02", "ab1", Fraction(1), Fraction(2))
    paper(cfg, tmp_path, "tiny01", [("ab1", "3"), ("cd2", "2,5")])
    paper(cfg, tmp_path, "tiny02", [("ab1", "3")])
    autograded(cfg, "tiny01", "cd2", Fraction(1), Fraction(0))
    mid = by_id(cfg, MID)
    assert mid["ab1"].sheets == {"tiny01": 6, "tiny02": 6, "sheet09": None}
    assert (mid["ab1"].points, mid["ab1"].max_points, mid["ab1"].threshold) == (12, 32, 16)
    assert (mid["ab1"].status, mid["ab1"].points_needed) == (OPEN, 4)
    assert (mid["cd2"].points, mid["cd2"].status) == (Fraction(7, 2), OPEN)  # 3.5 + 20 still possible ≥ 16
    assert (mid["ef3"].points, mid["ef3"].status) == (0, OPEN)
    end = by_id(cfg, AFTER_ALL)  # sheet09 was never authored: planned, still reachable, never 0
    assert end["ab1"].sheets["sheet09"] is None and end["ab1"].cells["sheet09"].state == "planned"
    assert end["ab1"].status == OPEN
    from gradebook.course.sheets_state import close_sheet

    close_sheet(open_gradebook(cfg.db_url), cfg, "sheet09", "admin", "cancelled")
    end = by_id(cfg, AFTER_ALL)
    assert end["ab1"].status == NOT_ADMITTED and end["ab1"].points_needed == 4 and end["ab1"].sheets["sheet09"] == 0


def test_exactly_half_is_admitted(gradebook_course, tmp_path):
    import dataclasses

    cfg = dataclasses.replace(gradebook_course, semester=gradebook_course.semester[:2])  # max 12, threshold 6
    autograded(cfg, "tiny01", "ab1", Fraction(1), Fraction(2))
    paper(cfg, tmp_path, "tiny01", [("ab1", "3"), ("cd2", "2,5")])
    autograded(cfg, "tiny01", "cd2", Fraction(1), Fraction(2))
    got = by_id(cfg, AFTER_ALL)
    assert (got["ab1"].points, got["ab1"].fraction, got["ab1"].status) == (6, Fraction(1, 2), ADMITTED)
    assert (got["cd2"].points, got["cd2"].status, got["cd2"].points_needed) == (Fraction(11, 2), NOT_ADMITTED,
                                                                                 Fraction(1, 2))


def test_absolute_threshold_rule(gradebook_course, tmp_path):
    from gradebook.course.config import AdmissionRule

    cfg = gradebook_course
    autograded(cfg, "tiny01", "ab1", Fraction(1), Fraction(2))
    close(cfg)
    rule = AdmissionRule(fraction=None, absolute=Fraction(3))
    got = {s.student_id: s for s in compute_standings(open_gradebook(cfg.db_url), cfg, AFTER_ALL, rule=rule)}
    assert (got["ab1"].status, got["ab1"].threshold, got["cd2"].status) == (ADMITTED, 3, NOT_ADMITTED)


def test_late_policy_grace_and_extension(gradebook_course):
    cfg = gradebook_course  # due 2026-11-04 10:00 Berlin = 09:00 UTC, grace 15 minutes
    autograded(cfg, "tiny01", "ab1", Fraction(1), Fraction(2), when=datetime(2026, 11, 4, 9, 10, tzinfo=timezone.utc))
    autograded(cfg, "tiny01", "cd2", Fraction(1), Fraction(2), when=datetime(2026, 11, 4, 9, 20, tzinfo=timezone.utc))
    autograded(cfg, "tiny01", "ef3", Fraction(1), Fraction(2), when=datetime(2026, 11, 5, 8, 0, tzinfo=timezone.utc))
    with atomic(open_gradebook(cfg.db_url)) as s:
        s.add(Extension(sheet="tiny01", student_id="ef3", until=datetime(2026, 11, 5, 9, 0, tzinfo=timezone.utc),
                        reason="ill", author="admin"))
    close(cfg, "tiny01")
    got = {k: v.sheets["tiny01"] for k, v in by_id(cfg, MID).items()}
    assert got == {"ab1": 3, "cd2": 0, "ef3": 3}


def test_override_changes_status_not_points(gradebook_course):
    cfg = gradebook_course
    autograded(cfg, "tiny01", "ab1", Fraction(1), Fraction(0))
    with atomic(open_gradebook(cfg.db_url)) as s:
        s.add(AdmissionOverride(student_id="ab1", status=ADMITTED, reason="medical certificate", author="admin",
                                created_at=datetime.now(timezone.utc)))
    close(cfg)
    st_ = by_id(cfg, AFTER_ALL)["ab1"]
    assert (st_.status, st_.points, st_.override_reason, st_.points_needed) == (ADMITTED, 1, "medical certificate", 0)


def test_exports_quote_names_and_match_the_standings(gradebook_course, tmp_path):
    cfg = gradebook_course
    autograded(cfg, "tiny01", "cd2", Fraction(1), Fraction(2))
    paper(cfg, tmp_path, "tiny01", [("cd2", "2,5")])
    result = CliRunner().invoke(main, ["admission", "--csv", str(tmp_path / "a.csv"), "--xlsx", str(tmp_path / "a.xlsx"),
                                       "--as-of", "2026-11-24T00:00:00+00:00"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader((tmp_path / "a.csv").open(encoding="utf-8")))
    assert [r["student_id"] for r in rows] == ["cd2", "ab1", "ef3"]  # García, Müller, O'Brien
    cd2 = rows[0]
    assert (cd2["last_name"], cd2["tiny01"], cd2["tiny02"], cd2["sheet09"]) == ("García, Jr.", "5.5", "0", "planned")
    assert (cd2["points"], cd2["max_points"], cd2["percent"], cd2["status"], cd2["points_needed"]) == (
        "5.5", "32", "17.18", "open", "10.5")
    from openpyxl import load_workbook

    ws = load_workbook(tmp_path / "a.xlsx").active
    assert ws.freeze_panes == "D2"
    assert [c.value for c in ws[1]][:4] == ["student_id", "last_name", "first_name", "email"]
    assert ws["B2"].value == "García, Jr." and ws.cell(2, 7).value == 5.5
    assert ws.cell(2, 12).number_format == "0.00%"


def test_percent_is_truncated_never_rounded_up():
    assert percent_text(Fraction(9999, 20000)) == "49.99"
    assert percent_text(Fraction(1, 2)) == "50.00"


fractions = st.fractions(min_value=0, max_value=200, max_denominator=8)


@given(fractions, fractions, fractions, st.fractions(min_value=1, max_value=100, max_denominator=4))
def test_more_points_never_lowers_the_status(points, extra, open_max, threshold):
    rank = {NOT_ADMITTED: 0, OPEN: 1, ADMITTED: 2}
    before = decide(points, points + open_max, threshold)[0]
    after = decide(points + extra, points + extra + open_max, threshold)[0]
    assert rank[after] >= rank[before]


@given(st.fractions(min_value=1, max_value=1000, max_denominator=12), fractions)
def test_exactly_at_threshold_is_admitted_and_needed_is_exact(threshold, open_max):
    assert decide(threshold, threshold + open_max, threshold) == (ADMITTED, 0)
    below = threshold - Fraction(1, 10**9)
    status, needed = decide(below, below + open_max, threshold)
    assert status in (OPEN, NOT_ADMITTED) and needed == Fraction(1, 10**9)


def test_write_functions_with_no_students(tmp_path):
    assert write_csv([], tmp_path / "e.csv").read_text().startswith("student_id,last_name")
    assert write_xlsx([], tmp_path / "e.xlsx").is_file()


def test_bonus_sheet_counts_points_not_maximum(gradebook_course, tmp_path):
    import dataclasses

    cfg = gradebook_course
    sem = cfg.semester
    cfg = dataclasses.replace(cfg, semester=(sem[0], dataclasses.replace(sem[1], bonus=True)))  # max 6, threshold 3
    autograded(cfg, "tiny02", "ab1", Fraction(1), Fraction(2))  # 3 bonus points only
    close(cfg)
    got = by_id(cfg, AFTER_ALL)["ab1"]
    assert (got.points, got.max_points, got.threshold, got.status) == (3, 6, 3, ADMITTED)


def test_minimum_per_sheet(gradebook_course, tmp_path):
    import dataclasses

    cfg = gradebook_course
    rule = dataclasses.replace(cfg.rule, min_per_sheet=Fraction(1, 3))  # at least 2 of 6 on every sheet
    cfg = dataclasses.replace(cfg, semester=cfg.semester[:2], rule=rule)  # max 12, threshold 6
    autograded(cfg, "tiny01", "ab1", Fraction(1), Fraction(2))
    paper(cfg, tmp_path, "tiny01", [("ab1", "3")])
    autograded(cfg, "tiny02", "ab1", Fraction(1), Fraction(0))  # 6 + 1 = 7 ≥ 6, but tiny02 has 1 < 2
    autograded(cfg, "tiny01", "cd2", Fraction(1), Fraction(2))
    autograded(cfg, "tiny02", "cd2", Fraction(1), Fraction(2))
    close(cfg)
    got = by_id(cfg, AFTER_ALL)
    assert (got["ab1"].points, got["ab1"].status) == (7, NOT_ADMITTED)
    assert (got["cd2"].points, got["cd2"].status) == (6, ADMITTED)
    mid = by_id(cfg, datetime(2026, 11, 4, 9, 30, tzinfo=timezone.utc))  # tiny02 (same due date) closed too
    assert mid["cd2"].status == ADMITTED


def test_config_reads_bonus_and_minimum(tmp_path):
    from coursefactory import make_course
    from gradebook.course.config import load_config

    root = make_course(tmp_path / "c", tiny=("tiny01", "tiny02"))
    text = (root / "mlph.toml").read_text().replace('threshold = "1/2"', 'threshold = "1/2"\nmin_per_sheet = "1/4"')
    text = text.replace('id = "tiny02"\n', 'id = "tiny02"\nbonus = true\n')
    (root / "mlph.toml").write_text(text)
    cfg = load_config(root)
    assert cfg.rule.min_per_sheet == Fraction(1, 4)
    assert [s.bonus for s in cfg.semester] == [False, True] and cfg.semester_max == 6


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from([Fraction(0), Fraction(1), Fraction(3)]), st.sampled_from([ADMITTED, NOT_ADMITTED]),
       st.sampled_from(["ab1", "cd2"]))
def test_property_overrides_change_status_never_points(gradebook_course, visible, status, student):
    cfg = gradebook_course
    autograded(cfg, "tiny01", student, min(visible, Fraction(1)), visible - min(visible, Fraction(1)))
    before = by_id(cfg, AFTER_ALL)
    with atomic(open_gradebook(cfg.db_url)) as s:
        s.query(AdmissionOverride).delete()
        s.add(AdmissionOverride(student_id=student, status=status, reason="hardship", author="admin",
                                created_at=datetime.now(timezone.utc)))
    after = by_id(cfg, AFTER_ALL)
    assert {k: (v.points, v.sheets) for k, v in after.items()} == {k: (v.points, v.sheets) for k, v in before.items()}
    assert after[student].status == status and after[student].override_reason == "hardship"


def test_minimum_per_part(gradebook_course, tmp_path):
    import dataclasses

    cfg = gradebook_course
    rule = dataclasses.replace(cfg.rule, min_per_part=Fraction(1, 3))  # ≥ 2 of 6 notebook, ≥ 2 of 6 paper
    cfg = dataclasses.replace(cfg, semester=cfg.semester[:2], rule=rule)  # max 12, threshold 6
    autograded(cfg, "tiny01", "ab1", Fraction(1), Fraction(2))
    autograded(cfg, "tiny02", "ab1", Fraction(1), Fraction(2))  # 6 notebook points, no paper
    autograded(cfg, "tiny01", "cd2", Fraction(1), Fraction(2))
    paper(cfg, tmp_path, "tiny01", [("cd2", "3")])  # 3 + 3
    close(cfg)
    got = by_id(cfg, AFTER_ALL)
    assert (got["ab1"].points, got["ab1"].status) == (6, NOT_ADMITTED)  # paper part below a third
    assert (got["cd2"].points, got["cd2"].status) == (6, ADMITTED)
