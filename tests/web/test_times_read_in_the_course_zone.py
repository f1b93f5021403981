"""Every time a person reads is in the course's zone (Europe/Berlin here) with the zone's name: the staff's
view of a graded hand-in, the student's pages, the set-password links' expiry, `mlph accounts list`."""
from __future__ import annotations

import re
from datetime import datetime, timezone
from fractions import Fraction
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from autograder.cli import main
from gb_helpers import autograded
from web.app import create_app
from web.testing import logged_in, login, setup_web_course

HTML = {"accept": "text/html"}
ISO_STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d")


def text_of(page: str) -> str:
    return re.sub(r"<[^>]*>", " ", page)


def test_pages_show_the_course_zone_never_a_raw_stamp(gradebook_course: Any) -> None:
    setup_web_course(gradebook_course)
    autograded(gradebook_course, "tiny01", "ab1", Fraction(1), Fraction(2),
               when=datetime(2026, 11, 3, 12, 0, tzinfo=timezone.utc))
    app = create_app(gradebook_course)
    staff_view = logged_in(app, "boss").get("/students/ab1/sheets/tiny01", headers=HTML).text
    assert "handed in Tue 03 Nov 2026, 13:00 CET" in staff_view
    student = logged_in(app, "ab1")
    for url in ("/students/ab1/sheets/tiny01", "/students/ab1"):
        page = student.get(url, headers=HTML)
        assert page.status_code == 200, url
        assert not ISO_STAMP.search(text_of(page.text)), (url, ISO_STAMP.search(text_of(page.text)))
    assert not ISO_STAMP.search(text_of(staff_view))
    assert "2026-11-03 12:00" not in staff_view


def test_links_and_account_list_in_the_course_zone(gradebook_course: Any, tmp_path: Path) -> None:
    setup_web_course(gradebook_course)
    app = create_app(gradebook_course)
    runner = CliRunner()
    assert runner.invoke(main, ["accounts", "create", "--students", "boss"]).exit_code == 0
    assert runner.invoke(main, ["accounts", "set-password", "ab1"], input="a long enough secret\n").exit_code == 0
    from fastapi.testclient import TestClient

    assert login(TestClient(app), "ab1", "a long enough secret") == 303
    out = tmp_path / "links.csv"
    r = runner.invoke(main, ["accounts", "links", "--csv", str(out), "--base-url", "https://grading.example.org"])
    assert r.exit_code == 0, r.output
    lines = out.read_text().splitlines()
    assert lines[0].endswith(",expires")
    assert all(re.search(r",\d{4}-\d\d-\d\d \d\d:\d\d (CET|CEST)$", line) for line in lines[1:]), lines
    listing = runner.invoke(main, ["accounts", "list"]).output
    ab1 = next(line for line in listing.splitlines() if line.startswith("ab1\t"))
    assert re.search(r"\t\d{4}-\d\d-\d\d \d\d:\d\d (CET|CEST)$", ab1), ab1
