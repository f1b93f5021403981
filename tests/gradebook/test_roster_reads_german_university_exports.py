"""Roster import from a German university or LMS export: its column names recognised or mapped, ids
trimmed and compared ignoring case, duplicate ids, e-mails and matriculation numbers refused with
their rows, nothing half-imported."""
from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session

from autograder.cli import main
from gradebook.errors import InputError
from gradebook.people.roster import import_students
from gradebook.store import nbgrader_tables as nt
from gradebook.store.db import open_gradebook
from gradebook.store.models import StudentProfile


def students(url):
    with Session(open_gradebook(url)) as s:
        profiles = {p.student_id: p for p in s.execute(select(StudentProfile)).scalars()}
        return {r.id: (r.last_name, r.first_name, r.email, profiles[r.id].matriculation if r.id in profiles else None)
                for r in s.execute(select(nt.student)).all()}


def test_heico_export_with_matrikelnummer_as_id(gradebook_course, tmp_path):
    export = tmp_path / "heico.csv"
    export.write_text("\ufeffMatrikelnummer;Nachname;Vorname;E-Mail;Studiengang\n"
                      "4100001;Schröder;Jana;jana@stud.uni-heidelberg.de;MSc Physik\n"
                      "4100002;Öztürk;Emre;emre@stud.uni-heidelberg.de;MSc Physik\n", encoding="utf-8")
    report = import_students(open_gradebook(gradebook_course.db_url), export)
    assert report.added == ["4100001", "4100002"]
    got = students(gradebook_course.db_url)
    assert got["4100001"] == ("Schröder", "Jana", "jana@stud.uni-heidelberg.de", "4100001")
    with Session(open_gradebook(gradebook_course.db_url)) as s:
        assert s.get(StudentProfile, "4100002").programme == "MSc Physik"


def test_lms_export_with_kennung_column(gradebook_course, tmp_path):
    export = tmp_path / "ilias.csv"
    export.write_text("Benutzername,Vorname,Nachname,E-Mail-Adresse,Matrikel-Nr.\n"
                      "  xy123 ,Lea,Lang,lea@uni.de,4100003\n")
    assert import_students(open_gradebook(gradebook_course.db_url), export).added == ["xy123"]
    assert students(gradebook_course.db_url)["xy123"] == ("Lang", "Lea", "lea@uni.de", "4100003")


def test_padded_id_in_other_case_is_the_same_student(gradebook_course, tmp_path):
    url = gradebook_course.db_url
    again = tmp_path / "again.csv"
    again.write_text("student_id,last_name,first_name,email\n AB1 ,Müller-Lüdenscheidt,Anna,ab1@uni.de\n")
    report = import_students(open_gradebook(url), again)
    assert (report.added, report.changed) == ([], ["ab1"])
    got = students(url)
    assert "AB1" not in got and " AB1 " not in got
    assert got["ab1"][0] == "Müller-Lüdenscheidt"


def test_new_id_is_stored_as_given_but_trimmed(gradebook_course, tmp_path):
    f = tmp_path / "r.csv"
    f.write_text("student_id,last_name,first_name,email\n Zq7X ,Neu,Nina,nina@uni.de\n")
    assert import_students(open_gradebook(gradebook_course.db_url), f).added == ["Zq7X"]
    assert "Zq7X" in students(gradebook_course.db_url)


def test_duplicates_within_a_file_are_refused_naming_both_rows(gradebook_course, tmp_path):
    f = tmp_path / "dups.csv"
    f.write_text("student_id,last_name,first_name,email,matriculation\n"
                 "new1,Eins,Ida,ida@uni.de,4100010\n"
                 "NEW1 ,Eins,Ida,ida2@uni.de,4100011\n"
                 "new2,Zwei,Zoe,IDA@uni.de,4100012\n"
                 "new3,Drei,Dora,dora@uni.de,4100010\n")
    before = students(gradebook_course.db_url)
    with pytest.raises(InputError) as err:
        import_students(open_gradebook(gradebook_course.db_url), f)
    msg = str(err.value)
    assert "nothing imported, 3 bad row(s)" in msg
    assert f"{f}:3: student 'NEW1' already appears in row 2 (as 'new1'; ids ignore case)" in msg
    assert f"{f}:4: student 'new2': e-mail 'IDA@uni.de' is already 'new1''s (row 2)" in msg
    assert f"{f}:5: student 'new3': matriculation '4100010' is already 'new1''s (row 2)" in msg
    assert students(gradebook_course.db_url) == before


def test_e_mail_of_another_known_student_is_refused(gradebook_course, tmp_path):
    f = tmp_path / "clash.csv"
    f.write_text("student_id,last_name,first_name,email,matriculation\n"
                 "new1,Eins,Ida,ida@uni.de,4100020\n"
                 "new2,Zwei,Zoe,AB1@uni.de,4100021\n"
                 "new3,Drei,Dora,dora@uni.de,3700002\n")
    before = students(gradebook_course.db_url)
    with pytest.raises(InputError) as err:
        import_students(open_gradebook(gradebook_course.db_url), f)
    msg = str(err.value)
    assert f"{f}:3: student 'new2': e-mail 'AB1@uni.de' already belongs to student 'ab1'" in msg
    assert f"{f}:4: student 'new3': matriculation '3700002' already belongs to student 'cd2'" in msg
    assert students(gradebook_course.db_url) == before


def test_two_columns_for_one_field_are_refused(gradebook_course, tmp_path):
    f = tmp_path / "two.csv"
    f.write_text("student_id,Kennung,last_name,first_name,email\nn1,k1,A,B,n1@uni.de\n")
    with pytest.raises(InputError, match=r"the columns 'student_id' and 'kennung' both give student_id"):
        import_students(open_gradebook(gradebook_course.db_url), f)


def test_columns_mapped_on_the_command_line(gradebook_course, tmp_path):
    f = tmp_path / "odd.csv"
    f.write_text("Uni-Kennung,Zuname,Rufname,Postfach\nmm9,Meier,Max,max@uni.de\n")
    runner = CliRunner()
    result = runner.invoke(main, ["students", "import", str(f), "--column", "Uni-Kennung=student_id",
                                  "--column", "Zuname=last_name", "--column", "Rufname=first_name"])
    assert result.exit_code != 0
    assert "the header lacks email" in result.output
    assert "mm9" not in students(gradebook_course.db_url)
    result = runner.invoke(main, ["students", "import", str(f), "--column", "Uni-Kennung=student_id",
                                  "--column", "Zuname=last_name", "--column", "Rufname=first_name",
                                  "--column", "Postfach=email"])
    assert result.exit_code == 0, result.output
    assert "1 added, 0 changed" in result.output
    assert students(gradebook_course.db_url)["mm9"] == ("Meier", "Max", "max@uni.de", None)
    result = runner.invoke(main, ["students", "import", str(f), "--column", "Zuname=surname"])
    assert result.exit_code != 0 and "'surname' is none of student_id" in result.output
    result = runner.invoke(main, ["students", "import", str(f), "--column", "Fehlt=email"])
    assert result.exit_code != 0 and "the file has no column 'Fehlt'" in result.output
