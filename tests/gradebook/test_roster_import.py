"""Roster import: idempotent, reports added/changed/unchanged, refuses bad files whole."""
from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session

from autograder.cli import main
from gradebook.store import nbgrader_tables as nt
from gradebook.store.db import open_gradebook
from gradebook.errors import InputError
from gradebook.store.models import StudentProfile
from gradebook.people.roster import import_students


def names(url):
    with Session(open_gradebook(url)) as s:
        return {r.id: (r.last_name, r.first_name, r.email) for r in s.execute(select(nt.student)).all()}


def test_import_is_idempotent_and_reports_changes(gradebook_course, tmp_path):
    url = gradebook_course.db_url
    assert names(url)["cd2"] == ("García, Jr.", "Carlos", "cd2@uni.de")
    again = tmp_path / "again.csv"
    again.write_text("student_id,last_name,first_name,email,matriculation,programme\n"
                     "ab1,Müller,Anna,ab1@uni.de,3700001,\n"
                     "cd2,\"García, Jr.\",Carlos,carlos@uni.de,3700002,\n"
                     "gh4,Neu,Greta,gh4@uni.de,3700004,MSc Physics\n")
    report = import_students(open_gradebook(url), again)
    assert (report.added, report.changed, report.unchanged) == (["gh4"], ["cd2"], ["ab1"])
    assert names(url)["cd2"][2] == "carlos@uni.de"
    with Session(open_gradebook(url)) as s:
        assert s.get(StudentProfile, "gh4").programme == "MSc Physics"
    assert str(import_students(open_gradebook(url), again)) == "0 added, 0 changed, 3 unchanged"


def test_bad_rows_are_all_named_and_nothing_is_written(gradebook_course, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("student_id,last_name,first_name,email\n"
                   "new1,Neu,Nina,new1@uni.de\n"
                   "bad id,X,Y,x@uni.de\n"
                   "new2,Zwei,Zoe,not-an-email\n"
                   "new1,Neu,Nina,new1@uni.de\n")
    with pytest.raises(InputError) as err:
        import_students(open_gradebook(gradebook_course.db_url), bad)
    msg = str(err.value)
    assert f"{bad}:3: student_id 'bad id' must be 1-128 letters, digits or . _ @ -" in msg
    assert f"{bad}:4: student 'new2': e-mail 'not-an-email' is not an address of the form name@domain.tld" in msg
    assert f"{bad}:5: student 'new1' already appears in row 2" in msg
    assert "new1" not in names(gradebook_course.db_url)


def test_header_and_unquoted_comma_errors(gradebook_course, tmp_path):
    f = tmp_path / "r.csv"
    f.write_text("id,name\n1,x\n")
    with pytest.raises(InputError, match=r"r.csv:1: the header lacks student_id, last_name, first_name, email"):
        import_students(open_gradebook(gradebook_course.db_url), f)
    f.write_text("student_id,last_name,first_name,email\nzz9,Doe, Jr.,John,j@uni.de\n")
    with pytest.raises(InputError, match=r"r.csv:2: 5 fields but the header has 4 \(a value with a comma"):
        import_students(open_gradebook(gradebook_course.db_url), f)


def test_xlsx_roster_through_the_cli(gradebook_course, tmp_path):
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.append(["Student_ID", "Last_Name", "First_Name", "Email", "Matriculation"])
    ws.append(["xl1", "Tabelle", "Theo", "xl1@uni.de", 3700099])
    wb.save(tmp_path / "roster.xlsx")
    result = CliRunner().invoke(main, ["students", "import", str(tmp_path / "roster.xlsx")])
    assert result.exit_code == 0, result.output
    assert "1 added, 0 changed, 0 unchanged" in result.output
    with Session(open_gradebook(gradebook_course.db_url)) as s:
        assert s.get(StudentProfile, "xl1").matriculation == "3700099"
