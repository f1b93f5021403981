"""Issue 9, gradebook side, items 4-9: where am I, messages for database URLs, unambiguous input, one
percentage, the list commands and exports, the report."""
from __future__ import annotations

import csv
import re
from datetime import datetime, timezone
from fractions import Fraction

import pytest
from click.testing import CliRunner

from autograder.cli import main
from gb_helpers import autograded
from gradebook.course.config import parse_rule
from gradebook.store.db import atomic, open_gradebook
from gradebook.errors import ConfigError
from gradebook.store.models import AutogradeResult, Handin

AS_OF = ["--as-of", "2026-11-24T00:00:00+00:00"]


def run(*args):
    return CliRunner().invoke(main, list(args), env={"COLUMNS": "250"})


# 4. where am I

def test_info_names_root_data_directory_database_and_how_each_was_found(gradebook_course, monkeypatch, tmp_path):
    cfg = gradebook_course
    result = run("info")
    assert result.exit_code == 0, result.output
    assert f"root:           {cfg.root}  [MLPH_ROOT]" in result.output
    assert f"data directory: {tmp_path / 'data'}" in result.output and "[MLPH_COURSE_DIR]" in result.output
    assert "[MLPH_DB_URL]" in result.output and "roster:         3 student(s)" in result.output
    assert re.search(r"tiny01 +due 2026-11-04 10:00 CET +open for hand-in|tiny01 +due 2026-11-04 10:00 CET +(pending|decided)",
                     result.output)
    monkeypatch.setenv("MLPH_DB_URL", "postgresql+psycopg://mlph:s3cret@127.0.0.1:1/nothere")
    out = run("info").output
    assert "postgresql+psycopg://mlph:***@127.0.0.1:1/nothere" in out and "s3cret" not in out


def test_a_misspelt_data_directory_is_an_error_not_a_new_course(course_factory, monkeypatch, tmp_path):
    course_factory()
    monkeypatch.setenv("MLPH_COURSE_DIR", str(tmp_path / "dta"))
    for args in (["admission"], ["status", "ab1"], ["students", "list"], ["sheets"], ["audit"]):
        result = run(*args)
        assert result.exit_code == 2, (args, result.output)
        assert f"no course data directory at {tmp_path / 'dta'} (from MLPH_COURSE_DIR" in result.output
        assert "MLPH_ROOT" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "dta").exists()
    (tmp_path / "dta").mkdir()
    result = run("admission")
    assert result.exit_code == 2 and f"no gradebook database at {tmp_path / 'dta' / 'gradebook.db'}" in result.output
    roster = tmp_path / "r.csv"
    roster.write_text("student_id,last_name,first_name,email\nab1,A,B,ab1@uni.de\n")
    assert run("students", "import", str(roster)).exit_code == 0  # creates the course
    assert run("admission").exit_code == 0


# 5. messages, not tracebacks

@pytest.mark.parametrize("url, words", [
    ("postgres://u:pw@localhost/db", "write PostgreSQL URLs as postgresql+psycopg://user@host/db"),
    ("mysql://u@localhost/db", "only SQLite and PostgreSQL are supported"),
    ("not a url", "is malformed"),
    ("postgresql+psycopg://u:pw@127.0.0.1:1/db", "cannot open the gradebook at postgresql+psycopg://u:***@127.0.0.1:1/db"),
])
def test_database_urls_get_one_line_with_the_hint(course_factory, monkeypatch, tmp_path, url, words):
    course_factory()
    (tmp_path / "data").mkdir()
    monkeypatch.setenv("MLPH_DB_URL", url)
    result = run("admission")
    assert result.exit_code == 2 and words in result.output, result.output
    assert "postgresql+psycopg://user@host/db" in result.output
    assert len(result.output.strip().splitlines()) == 1 and "pw@" not in result.output


# 6. unambiguous input

@pytest.mark.parametrize("text, fraction, absolute", [("50%", Fraction(1, 2), None), ("1/2", Fraction(1, 2), None),
                                                      ("12,5 %", Fraction(1, 8), None), ("120 points", None, 120)])
def test_threshold_syntax(text, fraction, absolute):
    rule = parse_rule(text, "t")
    assert (rule.fraction, rule.absolute) == (fraction, absolute)


@pytest.mark.parametrize("text", ["0.4", "1", "120", "150%", "0/2", "half"])
def test_ambiguous_thresholds_are_refused_with_the_three_forms(text):
    with pytest.raises(ConfigError) as err:
        parse_rule(text, "--preview-threshold")
    assert "'50%'" in str(err.value) and "'1/2'" in str(err.value) or "at most 100%" in str(err.value) \
        or "zero" in str(err.value)


def test_preview_threshold_refuses_a_bare_number(gradebook_course):
    result = run("admission", "--preview-threshold", "0.4")
    assert result.exit_code == 2 and "'120 points'" in result.output
    assert run("admission", "--preview-threshold", "40%").exit_code == 0


def test_formula_cells_without_a_value_are_refused_with_their_row(gradebook_course, tmp_path):
    from openpyxl import Workbook

    wb = Workbook()
    wb.active.append(["student_id", "task", "points"])
    wb.active.append(["ab1", "proof", 2])
    wb.active.append(["cd2", "proof", "=A1+1"])  # openpyxl stores no value for it, as a script would
    wb.save(tmp_path / "p.xlsx")
    result = run("points", "import", "tiny01", str(tmp_path / "p.xlsx"))
    assert result.exit_code == 2 and f"{tmp_path / 'p.xlsx'}:3: cell C3 holds the formula =A1+1" in result.output


def test_unknown_sheets_and_groups_are_refused_everywhere(gradebook_course, tmp_path):
    for args in (["handins", "nope"], ["sheet", "close", "nope", "--reason", "x"], ["audit", "--sheet", "nope"],
                 ["extensions", "list", "--sheet", "nope"], ["points", "template", "nope"],
                 ["extension", "nope", "ab1", "2026-12-01T10:00", "--reason", "x"]):
        result = run(*args)
        assert result.exit_code == 2 and "unknown sheet 'nope'" in result.output, (args, result.output)
    for args in (["points", "template", "tiny01", "--group", "G9"], ["students", "list", "--group", "G9"]):
        result = run(*args)
        assert result.exit_code == 2 and "unknown tutorial group 'G9'" in result.output, (args, result.output)


def test_replacing_an_override_needs_replace_and_names_the_old_one(gradebook_course):
    assert run("override", "set", "ab1", "admitted", "--reason", "repeated course", "--author", "prof").exit_code == 0
    result = run("override", "set", "ab1", "not_admitted", "--reason", "cheating")
    assert result.exit_code == 2
    assert "'ab1' already has an active override: admitted (repeated course; by prof on" in result.output
    assert "--replace" in result.output
    result = run("override", "set", "ab1", "not_admitted", "--reason", "cheating", "--replace")
    assert result.exit_code == 0 and "replaces admitted (repeated course" in result.output
    rows = run("overrides", "list").output
    assert "cheating" in rows and "repeated course" not in rows
    assert "repeated course" in run("overrides", "list", "--all").output


def test_groups_import_is_validated_row_by_row_and_writes_nothing_when_bad(gradebook_course, tmp_path):
    f = tmp_path / "g.csv"
    f.write_text("group,name,tutor_id,tutor_name\nG1,Monday,tina,Tina Tutor\nG2,,tom,Tom\nG3,Wed,,\n"
                 "G4,Thu,newbie,\nG1,Fri,tina,\n")
    result = run("groups", "import", str(f))
    assert result.exit_code == 2
    for line in (":3: group 'G2': name is empty", ":4: group 'G3': tutor_id is empty",
                 ":5: group 'G4': tutor 'newbie' is not staff; give tutor_name", ":6: group 'G1' already appears in row 2"):
        assert f"{f}{line}" in result.output
    assert "0 group(s)" in run("groups", "list").output
    assert run("staff", "add", "newbie", "--name", "New Bie", "--role", "tutor").exit_code == 0
    f.write_text("group,name,tutor_id\nG4,Thu,newbie\n")
    assert run("groups", "import", str(f)).exit_code == 0


# 7. one percentage

def test_the_percentage_is_truncated_in_status_csv_excel_csv_and_xlsx(gradebook_course, tmp_path):
    from gradebook.course.sheets_state import close_sheet

    cfg = gradebook_course  # maximum 32; 3 points = 9.375 %
    autograded(cfg, "tiny01", "ab1", Fraction(1), Fraction(2))
    close_sheet(open_gradebook(cfg.db_url), cfg, "tiny01", "prof", "test")
    assert "total 3 of 32 (9.37%)" in run("status", "ab1", *AS_OF).output
    result = run("admission", "--csv", str(tmp_path / "a.csv"), "--xlsx", str(tmp_path / "a.xlsx"),
                 "--csv-excel", str(tmp_path / "e.csv"), *AS_OF)
    assert result.exit_code == 0, result.output
    assert "3 roster students: 0 admitted, 3 open, 0 not_admitted" in result.output  # files written: counts only
    assert re.search(r"ab1 +│ Müller, Anna.*│ 9\.37 ", run("admission", *AS_OF).output)
    assert {r["student_id"]: r["percent"] for r in csv.DictReader((tmp_path / "a.csv").open())}["ab1"] == "9.37"
    raw = (tmp_path / "e.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbfstudent_id;last_name;")
    ab1 = next(r for r in csv.DictReader(raw.decode("utf-8-sig").splitlines(), delimiter=";") if r["student_id"] == "ab1")
    assert (ab1["percent"], ab1["last_name"], ab1["tiny01"]) == ("9,37", "Müller", "3")
    from openpyxl import load_workbook

    ws = load_workbook(tmp_path / "a.xlsx").active
    cols = [c.value for c in ws[1]]
    row = next(r for r in ws.iter_rows(min_row=2) if r[0].value == "ab1")
    cell = row[cols.index("percent")]
    assert cell.value == pytest.approx(0.0937) and cell.number_format == "0.00%"
    assert ws.auto_filter.ref == f"A1:{ws.cell(1, len(cols)).column_letter}4" and ws.freeze_panes == "D2"
    assert ws.column_dimensions["D"].width == 26 and ws["A1"].font.bold


# 8. lists

def test_list_commands(gradebook_course, tmp_path):
    g = tmp_path / "g.csv"
    g.write_text("group,name,tutor_id,tutor_name\nG1,Monday 10:00,tina,Tina Tutor\n")
    assert run("groups", "import", str(g)).exit_code == 0
    m = tmp_path / "m.csv"
    m.write_text("student_id,group\nab1,G1\ncd2,G1\n")
    assert run("groups", "assign", str(m), "--author", "prof").exit_code == 0
    out = run("groups", "list").output
    assert re.search(r"G1 +│ Monday 10:00 +│ tina +│ Tina Tutor +│ 2", out)
    assert re.search(r"tina +│ Tina Tutor +│ +│ tutor +│ G1", run("staff", "list").output)
    out = run("students", "list").output
    assert "3 student(s)" in out and re.search(r"ab1 +│ Müller +│ Anna +│ ab1@uni.de +│ 3700001 +│ G1", out)
    assert "2 student(s) in group G1" in run("students", "list", "--group", "G1").output
    run("extension", "tiny01", "ab1", "2026-11-06T10:00", "--reason", "ill", "--author", "prof")
    assert re.search(r"tiny01 +│ ab1 +│ 2026-11-06 10:00 CET +│ ill +│ prof", run("extensions", "list").output)
    out = run("audit", "--student", "ab1", "--author", "prof").output
    assert "2 change(s)" in out and "group_membership" in out and "extension" in out
    assert "0 change(s)" in run("audit", "--student", "ab1", "--since", "2099-01-01").output
    assert "1 change(s)" in run("audit", "--sheet", "tiny01").output


def test_handins_per_sheet(gradebook_course):
    cfg = gradebook_course
    autograded(cfg, "tiny01", "ab1", Fraction(1), Fraction(2))
    autograded(cfg, "tiny01", "cd2", Fraction(0), Fraction(0))
    with atomic(open_gradebook(cfg.db_url)) as s:
        row = s.query(AutogradeResult).filter_by(student_id="cd2").one()
        row.status, row.reason = "timeout", "cell 3 ran past 8 s"
        s.add(Handin(sheet="tiny01", student_id="root", kind="notebook", source="exchange", status="held",
                     received_at=datetime(2026, 11, 3, 9, tzinfo=timezone.utc), reason="not on the roster"))
    out = run("handins", "tiny01").output
    assert re.search(r"ab1 +│ Anna Müller +│ graded", out) and re.search(r"cd2 .*│ timeout +│ .*cell 3 ran past 8 s", out)
    assert re.search(r"ef3 .*│ missing", out) and re.search(r"root +│ \(not on the roster\) +│ held +│ 2026-11-03 10:00:00 CET", out)
    out = run("handins", "tiny01", "--status", "missing").output
    assert "ef3" in out and "ab1" not in out and "1 row(s) with state missing" in out
    assert run("handins", "tiny01", "--status", "bogus").exit_code == 2


def test_admission_prints_the_list_in_the_terminal(gradebook_course):
    result = run("admission", "--sheets", *AS_OF)
    assert result.exit_code == 0, result.output
    assert re.search(r"ef3 +│ O'Brien, Eve", result.output) and "0 admitted, 3 open, 0 not_admitted" in result.output
    assert "planned" in result.output


def test_every_gradebook_command_has_an_example_in_its_help():
    from gradebook.cli import commands as cli
    from gradebook.cli import lists as cli_lists

    commands = [c for c in vars(cli).values() if isinstance(c, __import__("click").Command)]
    commands += [c for c in vars(cli_lists).values() if isinstance(c, __import__("click").Command)]
    leaves = []
    for c in commands:
        leaves += list(c.commands.values()) if isinstance(c, __import__("click").Group) else [c]
    assert len(leaves) >= 25
    missing = [c.name for c in leaves if "Example" not in (c.help or "")]
    assert missing == []


# 9. report

def test_report_shows_decided_sheets_pending_ones_problems_and_risk(gradebook_course, tmp_path):
    cfg = gradebook_course
    autograded(cfg, "tiny01", "ab1", Fraction(1), Fraction(2))
    with atomic(open_gradebook(cfg.db_url)) as s:
        s.add(Handin(sheet="tiny01", student_id="cd2", kind="notebook", source="exchange", status="invalid",
                     received_at=datetime(2026, 11, 3, 9, tzinfo=timezone.utc), reason="not a notebook"))
    out = tmp_path / "r.html"
    result = run("report", "--output", str(out), *AS_OF)
    assert result.exit_code == 0, result.output
    page = out.read_text()
    assert "report of 2026-11-24 01:00 CET" in page
    assert "Decided sheets: tiny02. Not decided yet (counted as still reachable, never as 0): tiny01 (pending), " \
           "sheet09 (planned)." in page
    assert "<td>tiny01</td><td>cd2</td><td>Carlos García, Jr.</td><td>invalid</td>" in page
    assert "<td>tiny01</td><td>ef3</td><td>Eve O&#x27;Brien</td><td>missing</td>" in page
    risk = page.split("Students at risk")[1]
    assert "<td>ab1</td>" in risk  # open: 16 needed of 26 still reachable


def test_report_charts_render(gradebook_course, tmp_path):
    import base64

    cfg = gradebook_course
    autograded(cfg, "tiny01", "ab1", Fraction(1), Fraction(2))
    out = tmp_path / "r.html"
    assert run("report", "--output", str(out), "--as-of", "2027-03-01T00:00").exit_code == 0
    images = re.findall(r"base64,([A-Za-z0-9+/=]+)", out.read_text())
    for n, img in enumerate(images):
        (tmp_path / f"fig{n}.png").write_bytes(base64.b64decode(img))
    assert len(images) == 4


def test_the_status_chart_legend_sits_beside_the_bars():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from gradebook.exports.report import _timeline

    fig = _timeline(plt, [(f"sheet{i:02d}", {"admitted": i, "open": 10 - i, "not_admitted": 1}) for i in range(8)])
    fig.canvas.draw()
    legend = fig.axes[0].get_legend().get_window_extent()
    assert legend.x0 >= fig.axes[0].get_window_extent().x1  # never over a bar
    plt.close(fig)
