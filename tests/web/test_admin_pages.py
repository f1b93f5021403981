"""Admin pages: downloads equal `mlph admission --csv/--xlsx`; uploads with the CLI's row errors and nothing
half-imported; changes audited with the admin as author; accounts from the command line."""
from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from openpyxl import load_workbook
from sqlalchemy import select
from sqlalchemy.orm import Session

from autograder.cli import main
from gb_helpers import autograded
from gradebook.store import nbgrader_tables as nt
from gradebook.store.models import AuditLog, AutogradeResult
from web.app import create_app
from web.testing import logged_in, login, setup_web_course

HTML = {"accept": "text/html"}


@pytest.fixture
def app(gradebook_course: Any) -> Any:
    setup_web_course(gradebook_course)
    autograded(gradebook_course, "tiny01", "ab1", Fraction(1), Fraction(3, 2))
    return create_app(gradebook_course)


def test_downloads_equal_the_cli(app: Any, tmp_path: Path) -> None:
    admin = logged_in(app, "boss")
    web_csv, web_xlsx = admin.get("/admin/admission.csv"), admin.get("/admin/admission.xlsx")
    assert web_csv.headers["content-disposition"] == 'attachment; filename="admission.csv"'
    result = CliRunner().invoke(main, ["admission", "--csv", str(tmp_path / "a.csv"), "--xlsx", str(tmp_path / "a.xlsx")])
    assert result.exit_code == 0, result.output
    assert web_csv.content == (tmp_path / "a.csv").read_bytes()
    assert b"ab1" in web_csv.content
    ours = list(load_workbook(io.BytesIO(web_xlsx.content)).active.iter_rows(values_only=True))
    theirs = list(load_workbook(tmp_path / "a.xlsx").active.iter_rows(values_only=True))
    assert ours == theirs and len(ours) == 4


def test_roster_upload_row_errors_and_nothing_half_imported(app: Any) -> None:
    admin = logged_in(app, "boss")
    bad = "student_id,last_name,first_name,email\nzz9,Neu,Nina,zz9@uni.de\nbad id,X,Y,y@uni.de\nyy8,,Y,nomail\n"
    r = admin.post("/admin/upload/roster", files={"file": ("my roster.csv", bad.encode(), "text/csv")}, headers=HTML)
    assert r.status_code == 400
    assert "my_roster.csv:3: student_id &#39;bad id&#39;" in r.text and "my_roster.csv:4:" in r.text
    assert "mlph-upload" not in r.text  # the temporary directory is not shown
    with Session(app.state.engine) as session:
        assert session.execute(select(nt.student.c.id).where(nt.student.c.id == "zz9")).first() is None
    good = "student_id,last_name,first_name,email\nzz9,Neu,Nina,zz9@uni.de\n"
    r = admin.post("/admin/upload/roster", files={"file": ("r.csv", good.encode(), "text/csv")}, headers=HTML)
    assert r.status_code == 200 and "1 added" in r.text
    r = admin.post("/admin/upload/roster", files={"file": ("r.txt", good.encode(), "text/plain")}, headers=HTML)
    assert r.status_code == 400


def test_changes_are_audited_with_the_admin_as_author(app: Any) -> None:
    admin = logged_in(app, "boss")
    steps = [("/admin/override", {"student": "cd2", "status": "admitted", "reason": "repeated course"}),
             ("/admin/extension", {"sheet": "tiny01", "student": "ef3", "until": "2026-11-10T12:00", "reason": "ill"}),
             ("/admin/regrade", {"sheet": "tiny01", "student": "ab1", "reason": "kernel hiccup"}),
             ("/admin/manual-score", {"sheet": "tiny01", "student": "ab1", "cell": "test_scale_more", "points": "2",
                                      "reason": "partial credit"})]
    for url, form in steps:
        r = admin.post(url, data=form, headers=HTML)
        assert r.status_code == 200, r.text
    r = admin.post("/admin/override", data={"student": "nobody", "status": "admitted", "reason": "x"}, headers=HTML)
    assert r.status_code == 400 and "unknown student" in r.text
    with Session(app.state.engine) as session:
        rows = session.execute(select(AuditLog.entity, AuditLog.author, AuditLog.key)).all()
        fingerprint = session.execute(select(AutogradeResult.fingerprint).where(AutogradeResult.student_id == "ab1")).scalar()
    mine = {(entity, key) for entity, author, key in rows if author == "boss"}
    assert {("admission_override", "cd2"), ("extension", "tiny01/ef3"), ("regrade", "tiny01/ab1"),
            ("manual_score", "tiny01/test_scale_more/ab1")} <= mine
    assert fingerprint == ""
    page = admin.get("/admin/audit?student=ab1&author=boss", headers=HTML).text
    assert "kernel hiccup" in page and "repeated course" not in page
    assert "repeated course" in admin.get("/admin/audit?student=cd2", headers=HTML).text
    standing = logged_in(app, "cd2").get("/students/cd2", headers=HTML).text
    assert "repeated course" in standing and "status-admitted" in standing


def test_accounts_from_the_command_line(app: Any, tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(main, ["accounts", "create", "nobody"]).exit_code == 2
    r = runner.invoke(main, ["accounts", "create", "--students", "boss"])
    assert r.exit_code == 0 and "4 account(s) created" in r.output, r.output
    r = runner.invoke(main, ["accounts", "set-password", "ab1"], input="short\n")
    assert r.exit_code == 2 and "at least" in r.output
    assert runner.invoke(main, ["accounts", "set-password", "ab1"], input="a long enough secret\n").exit_code == 0
    from fastapi.testclient import TestClient

    assert login(TestClient(app), "ab1", "a long enough secret") == 303
    out = tmp_path / "links.csv"
    r = runner.invoke(main, ["accounts", "links", "--csv", str(out), "--base-url", "https://grading.example.org"])
    assert r.exit_code == 0, r.output
    lines = out.read_text().splitlines()
    assert lines[0] == "username,name,email,link,expires" and len(lines) == 4  # boss, cd2, ef3: no password yet
    link = lines[1].split(",")[3]
    assert link.startswith("https://grading.example.org/password/")
    assert TestClient(app).get(link.removeprefix("https://grading.example.org")).status_code == 200
    assert runner.invoke(main, ["accounts", "disable", "ab1"]).exit_code == 0
    assert login(TestClient(app), "ab1", "a long enough secret") == 401
    listing = runner.invoke(main, ["accounts", "list"]).output
    assert "ab1\tstudent" in listing and "disabled" in listing and "boss\tadmin" in listing
