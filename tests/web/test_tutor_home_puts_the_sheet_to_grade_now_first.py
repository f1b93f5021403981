"""The tutor's start page leads with the sheet to grade now: the latest sheet past its deadline with empty
cells in the tutor's groups (a sheet not yet due, or one fully graded, is never it)."""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest

from gradebook.course.config import CourseConfig, load_config
from gradebook.points.paper import import_points
from gradebook.store.db import open_gradebook
from test_tutor_grid_pages import grid_course  # type: ignore[import-not-found]
from web.app import create_app
from web.testing import logged_in

HTML = {"accept": "text/html"}


def with_due(cfg: CourseConfig, sheet: str, due: str) -> CourseConfig:
    manifest = cfg.root / "source" / sheet / "sheet.toml"
    manifest.write_text(re.sub(r'due = "[^"]*"', f'due = "{due}"', manifest.read_text(), count=1))
    return dataclasses.replace(load_config(cfg.root), db_url=cfg.db_url)


def grade_now(cfg: CourseConfig, who: str) -> str:
    page = logged_in(create_app(cfg), who).get("/tutor", headers=HTML).text
    head = page.split("<h2>All sheets</h2>")[0]
    found = re.search(r'<h2 id="grade-now">Grade now: (\w+)', head)
    return found.group(1) if found else ""


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_latest_past_sheet_with_empty_cells_comes_first(gradebook_course: CourseConfig, tmp_path: Path) -> None:
    cfg = with_due(grid_course(gradebook_course, tmp_path), "tiny02", "2026-11-11T10:00:00")
    assert grade_now(cfg, "tutor1") == "tiny02"  # tiny01 (due 4 Nov) is older
    page = logged_in(create_app(cfg), "tutor1").get("/tutor", headers=HTML).text
    assert page.index("Grade now") < page.index("All sheets")
    assert 'href="/tutor/tiny02/g1">Monday 10:00: 2 of 2 empty</a>' in page
    assert "/tutor/tiny02/g2" not in page  # not tutor1's group
    assert "Due Wed 11 Nov 2026, 10:00 CET" in page

    marks = tmp_path / "g1.csv"
    marks.write_text("student_id,task,points\nab1,proof,3\nef3,proof,2.5\n")
    import_points(open_gradebook(cfg.db_url), cfg.manifest("tiny02"), marks, "tutor1")
    assert grade_now(cfg, "tutor1") == "tiny01"  # tiny02 is done in g1
    assert grade_now(cfg, "tutor2") == "tiny02"  # but not in g2

    later = with_due(cfg, "tiny02", "2099-01-01T10:00:00")
    assert grade_now(later, "tutor2") == "tiny01"  # a sheet not yet due waits
    assert "(not yet due)" in logged_in(create_app(later), "tutor2").get("/tutor", headers=HTML).text


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_nothing_to_grade_says_so(gradebook_course: CourseConfig, tmp_path: Path) -> None:
    cfg = with_due(grid_course(gradebook_course, tmp_path), "tiny01", "2099-01-01T10:00:00")
    cfg = with_due(cfg, "tiny02", "2099-01-08T10:00:00")
    page = logged_in(create_app(cfg), "tutor1").get("/tutor", headers=HTML).text
    assert "Grade now" not in page and "Nothing waits" in page
    assert "4 of 4 empty" in page
