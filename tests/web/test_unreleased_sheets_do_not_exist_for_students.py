"""A sheet that is not released does not exist for a student: its page, grading fragment, hand-in and PDFs
answer byte for byte what a sheet that does not exist answers, and the dashboard does not list it; staff
see it, and the admin's overview shows each sheet's release. Rubric texts reach a student with the task's
published points after their deadline (the default), or as the sheet's ``rubric_to_students`` says."""
from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from coursefactory import RUBRIC_TASK
from gradebook.course.config import CourseConfig, load_config
from gradebook.course.sheets_state import handin_refusal, mark_released, student_sheets
from gradebook.people.roster import import_students
from gradebook.points.paper import import_points
from gradebook.store.db import atomic, open_gradebook
from gradebook.store.models import Extension, Handin
from web.app import create_app
from web.testing import logged_in, setup_web_course

HTML = {"accept": "text/html"}
RUBRIC_TEXT = "Sets up the integral"


@pytest.fixture
def course(course_factory: Callable[..., CourseConfig], db_url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """tiny01 released (with a rubric task "derive", due in the past), tiny02 authored but not released,
    sheet09 planned; students ab1, cd2, ef3, staff from :func:`setup_web_course`."""
    cfg = course_factory(tiny=("tiny01", "tiny02"), planned={"sheet09": 20})
    manifest = cfg.root / "source" / "tiny01" / "sheet.toml"
    manifest.write_text(manifest.read_text() + RUBRIC_TASK)
    monkeypatch.setenv("MLPH_DB_URL", db_url)
    cfg = dataclasses.replace(load_config(cfg.root), db_url=db_url)
    (cfg.root / "roster.csv").write_text("student_id,last_name,first_name,email\nab1,Müller,Anna,ab1@uni.de\n"
                                         "cd2,García,Carlos,cd2@uni.de\nef3,O'Brien,Eve,ef3@uni.de\n")
    engine = open_gradebook(db_url)
    import_students(engine, cfg.root / "roster.csv")
    mark_released(engine, "tiny01", "test")
    setup_web_course(cfg)
    return cfg


def _pdf_handin(cfg: Any, sheet: str, student: str) -> int:
    """A paper hand-in that reached the gradebook some other way (an exchange or zip of an older version)."""
    path = cfg.data_dir / "handins" / f"{sheet}-{student}.pdf"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"%PDF-1.4\n%%EOF\n")
    with atomic(open_gradebook(cfg.db_url)) as session:
        row = Handin(sheet=sheet, student_id=student, kind="paper", source="exchange", status="accepted",
                     received_at=datetime.now(timezone.utc), stored_path=f"handins/{sheet}-{student}.pdf")
        session.add(row)
        session.flush()
        return int(row.id)


def _same(unreleased: Any, missing: Any) -> None:
    """The same answer, but for the sheet's id where the request named it."""
    assert (unreleased.status_code, unreleased.content.replace(b"tiny02", b"nosuch"),
            unreleased.headers.get("content-type")) == (missing.status_code, missing.content,
                                                        missing.headers.get("content-type"))


def test_an_unreleased_sheet_answers_as_a_sheet_that_does_not_exist(course: Any) -> None:
    app = create_app(course)
    engine = app.state.engine
    ab1, admin = logged_in(app, "ab1"), logged_in(app, "boss")
    assert student_sheets(engine, course) == {"tiny01"}
    assert handin_refusal(engine, course, "tiny01") is None
    assert handin_refusal(engine, course, "tiny02") == "there is no sheet 'tiny02' to hand in for"
    assert handin_refusal(engine, course, "sheet09") and handin_refusal(engine, course, "nosuch")

    for suffix in ("", "/grading", "/paper.pdf"):
        for headers in (HTML, {}):
            unreleased = ab1.get(f"/students/ab1/sheets/tiny02{suffix}", headers=headers)
            missing = ab1.get(f"/students/ab1/sheets/nosuch{suffix}", headers=headers)
            assert unreleased.status_code == 404
            _same(unreleased, missing)
    assert "A tiny sheet" not in ab1.get("/students/ab1/sheets/tiny02", headers=HTML).text
    pdf = {"file": ("scan.pdf", b"%PDF-1.4 my work\n%%EOF\n", "application/pdf")}
    refused = ab1.post("/students/ab1/sheets/tiny02/handin", data={"kind": "paper"}, files=pdf, headers=HTML)
    nosuch = ab1.post("/students/ab1/sheets/nosuch/handin", data={"kind": "paper"}, files=pdf, headers=HTML)
    assert refused.status_code == 404
    _same(refused, nosuch)
    with Session(engine) as session:  # nothing was recorded or stored
        assert session.execute(select(func.count()).select_from(Handin)).scalar_one() == 0
    assert not (course.data_dir / "submitted").exists() or not any((course.data_dir / "submitted").rglob("*.pdf"))

    hid = _pdf_handin(course, "tiny02", "ab1")
    assert ab1.get(f"/handins/{hid}/pdf").content == ab1.get("/handins/999999/pdf").content
    assert ab1.get(f"/handins/{hid}/pdf").status_code == 404
    assert admin.get(f"/handins/{hid}/pdf").status_code == 200  # staff see every sheet
    assert admin.get("/students/ab1/sheets/tiny02", headers=HTML).status_code == 200

    dash = ab1.get("/students/ab1", headers=HTML).text
    assert "tiny01" in dash and "tiny02" not in dash and "sheet09" not in dash
    assert "2 more sheet(s) (26 points) are still to come" in dash  # tiny02 (6) and sheet09 (20), no names
    assert "tiny02" in admin.get("/students/ab1", headers=HTML).text

    # the honest student's released sheet is as before, and its hand-in goes through
    assert ab1.get("/students/ab1/sheets/tiny01", headers=HTML).status_code == 200
    ok = ab1.post("/students/ab1/sheets/tiny01/handin", data={"kind": "paper", "confirm_late": "yes"}, files=pdf)
    assert ok.status_code == 303 and ok.headers["location"] == "/students/ab1/sheets/tiny01?handed_in=paper"

    overview = admin.get("/admin", headers=HTML).text
    rows = {sheet: overview.split(f"<tr><td>{sheet} ")[1].split("</tr>")[0] for sheet in ("tiny01", "tiny02", "sheet09")}
    assert "released</span> since" in rows["tiny01"]
    assert "not released" in rows["tiny02"] and "planned" in rows["sheet09"]

    mark_released(engine, "tiny02", "test")  # released: it exists from now on
    assert ab1.get("/students/ab1/sheets/tiny02", headers=HTML).status_code == 200
    assert ab1.get(f"/handins/{hid}/pdf").status_code == 200


def _points(cfg: Any, tmp_path: Path, rows: str) -> None:
    f = tmp_path / "points.csv"
    f.write_text("student_id,task,points\n" + rows)
    import_points(open_gradebook(cfg.db_url), cfg.manifest("tiny01"), f, "tutor1")


def test_rubric_texts_reach_students_with_their_points_after_the_deadline(course: Any, tmp_path: Path) -> None:
    engine = open_gradebook(course.db_url)
    _points(course, tmp_path, "cd2,derive,3\ncd2,proof,1\nef3,derive,4\nef3,proof,2\n")  # ab1: nothing handed in
    with atomic(engine) as session:  # cd2's deadline is still ahead
        session.add(Extension(sheet="tiny01", student_id="cd2", until=datetime.now(timezone.utc) + timedelta(days=2),
                              reason="ill", author="boss"))
    app = create_app(course)
    page = {s: logged_in(app, s).get(f"/students/{s}/sheets/tiny01", headers=HTML) for s in ("ab1", "cd2", "ef3")}
    assert all(p.status_code == 200 for p in page.values())
    assert RUBRIC_TEXT in page["ef3"].text  # graded, deadline passed
    assert RUBRIC_TEXT not in page["ab1"].text  # deadline passed, no points yet
    assert RUBRIC_TEXT not in page["cd2"].text  # points in, but their deadline is still ahead
    assert "Derivation" in page["ab1"].text  # the task itself is listed for everyone
    assert RUBRIC_TEXT in logged_in(app, "boss").get("/students/cd2/sheets/tiny01", headers=HTML).text  # staff: always

    manifest = course.root / "source" / "tiny01" / "sheet.toml"
    manifest.write_text(manifest.read_text().replace('timezone = "Europe/Berlin"',
                                                     'timezone = "Europe/Berlin"\nrubric_to_students = "never"'))
    never = create_app(dataclasses.replace(load_config(course.root), db_url=course.db_url))
    assert RUBRIC_TEXT not in logged_in(never, "ef3").get("/students/ef3/sheets/tiny01", headers=HTML).text
    manifest.write_text(manifest.read_text().replace('"never"', '"after-deadline"'))
    after = create_app(dataclasses.replace(load_config(course.root), db_url=course.db_url))
    assert RUBRIC_TEXT in logged_in(after, "ab1").get("/students/ab1/sheets/tiny01", headers=HTML).text
    assert RUBRIC_TEXT not in logged_in(after, "cd2").get("/students/cd2/sheets/tiny01", headers=HTML).text
