"""Pen-and-paper points: decimal commas, every bad row named, nothing half-written, audited."""
from __future__ import annotations

import csv
from fractions import Fraction

import pytest
from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session

from autograder.cli import main
from gradebook.store.db import open_gradebook
from gradebook.errors import InputError
from gradebook.store.models import AuditLog, PaperPoints
from gradebook.points.paper import fmt, import_points


def stored(url):
    with Session(open_gradebook(url)) as s:
        return {(p.student_id, p.task): Fraction(p.points) for p in s.execute(select(PaperPoints)).scalars()}


def test_import_with_decimal_commas_semicolons_and_bom(gradebook_course, tmp_path):
    f = tmp_path / "tutor.csv"
    f.write_text("\ufeffstudent_id;task;points\nab1;proof;2,5\ncd2;proof;3\nef3;proof;\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["points", "import", "tiny01", str(f), "--author", "tutor-anna"])
    assert result.exit_code == 0, result.output
    assert "2 written, 0 unchanged, 1 left empty (not graded yet)" in result.output
    assert stored(gradebook_course.db_url) == {("ab1", "proof"): Fraction(5, 2), ("cd2", "proof"): Fraction(3)}
    f.write_text("student_id,task,points\nab1,proof,1.5\ncd2,proof,3\n")
    report = import_points(open_gradebook(gradebook_course.db_url), gradebook_course.manifest("tiny01"), f, "tutor-ben")
    assert (report.written, report.unchanged) == (1, 1)
    with Session(open_gradebook(gradebook_course.db_url)) as s:
        audit = [(a.author, a.key, a.old_value, a.new_value) for a in s.execute(select(AuditLog).order_by(AuditLog.id)).scalars()]
        row = s.execute(select(PaperPoints).where(PaperPoints.student_id == "ab1")).scalar_one()
    assert audit == [("tutor-anna", "tiny01/proof/ab1", None, "5/2"), ("tutor-anna", "tiny01/proof/cd2", None, "3"),
                     ("tutor-ben", "tiny01/proof/ab1", "5/2", "3/2")]
    assert (row.version, row.entered_by) == (2, "tutor-ben")


def test_every_bad_row_is_named_and_nothing_is_written(gradebook_course, tmp_path):
    f = tmp_path / "bad.csv"
    f.write_text("student_id,task,points\n"
                 "ab1,proof,2\n"          # fine, but must not be written
                 "zz9,proof,1\n"          # unknown student
                 "cd2,essay,1\n"          # unknown task
                 "cd2,proof,3.5\n"        # above max 3
                 "ef3,proof,-1\n"         # negative
                 "ab1,proof,1\n"          # duplicate
                 "ef3,proof,viel\n")      # ... and non-numeric would be reported for a new row
    with pytest.raises(InputError) as err:
        import_points(open_gradebook(gradebook_course.db_url), gradebook_course.manifest("tiny01"), f, "t")
    msg = str(err.value)
    assert f"{f}: nothing imported, 6 bad row(s):" in msg
    assert f"{f}:3: unknown student 'zz9' (not in the roster)" in msg
    assert f"{f}:4: student 'cd2', task 'essay': unknown task; the paper tasks of tiny01 are proof" in msg
    assert f"{f}:5: student 'cd2', task 'proof': points 3.5 exceed the maximum 3" in msg
    assert f"{f}:6: student 'ef3', task 'proof': points -1 is negative" in msg
    assert f"{f}:7: student 'ab1', task 'proof': duplicate of row 2" in msg
    assert f"{f}:8: student 'ef3', task 'proof': duplicate of row 6" in msg
    assert stored(gradebook_course.db_url) == {}


def test_non_numeric_points_and_cli_exit_code(gradebook_course, tmp_path):
    f = tmp_path / "bad.csv"
    f.write_text("student_id,task,points\nab1,proof,zwei\n")
    result = CliRunner().invoke(main, ["points", "import", "tiny01", str(f)])
    assert result.exit_code == 2
    assert f"{f}:2: student 'ab1', task 'proof': points 'zwei' is not a number" in result.output


def test_template_lists_every_student_and_paper_task(gradebook_course, tmp_path):
    out = tmp_path / "t.csv"
    result = CliRunner().invoke(main, ["points", "template", "tiny01", "--output", str(out)])
    assert result.exit_code == 0 and "3 rows" in result.output
    rows = list(csv.DictReader(out.open()))
    assert [(r["student_id"], r["task"], r["points"], r["max_points"]) for r in rows] == [
        ("cd2", "proof", "", "3"), ("ab1", "proof", "", "3"), ("ef3", "proof", "", "3")]
    out.write_text(out.read_text().replace(",,3,", ",2,3,"))  # the tutor fills it in
    import_points(open_gradebook(gradebook_course.db_url), gradebook_course.manifest("tiny01"), out, "t")
    assert set(stored(gradebook_course.db_url).values()) == {Fraction(2)}


@pytest.mark.parametrize("value,text", [(Fraction(5, 2), "2.5"), (Fraction(3), "3"), (Fraction(1, 3), "1/3"),
                                        (Fraction(1, 8), "0.125")])
def test_fmt_is_exact(value, text):
    assert fmt(value) == text


def test_xlsx_points_file(gradebook_course, tmp_path):
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.append(["student_id", "task", "points"])
    ws.append(["ab1", "proof", 2.5])
    ws.append(["cd2", "proof", 4])
    wb.save(tmp_path / "p.xlsx")
    with pytest.raises(InputError, match=r"p.xlsx:3: student 'cd2', task 'proof': points 4 exceed the maximum 3"):
        import_points(open_gradebook(gradebook_course.db_url), gradebook_course.manifest("tiny01"),
                      tmp_path / "p.xlsx", "t")
    ws["C3"] = 1
    wb.save(tmp_path / "p.xlsx")
    import_points(open_gradebook(gradebook_course.db_url), gradebook_course.manifest("tiny01"), tmp_path / "p.xlsx", "t")
    assert stored(gradebook_course.db_url) == {("ab1", "proof"): Fraction(5, 2), ("cd2", "proof"): Fraction(1)}
