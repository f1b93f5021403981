"""Anonymous grading: on an anonymous sheet no response a tutor can get names a student. The tutor crawls
EVERY route of the app (enumerated from the app itself, so a new route is crawled without touching this test,
and a route whose parameters cannot be filled fails it), filled with what a tutor knows or can guess
(the sheet, the groups, the pseudonyms on their grid, the students' ids for the sheet's pages, every hand-in
id), plus every link on the pages they reach; no body of a text response and no header carries a student's
id, name, e-mail, matriculation or login, the team's name or the upload's file name. The same crawl of the
same sheet shown with names finds them (so the check can fail). The points template and its import work by
pseudonym; switching and revealing are audited admin actions (web and `mlph anonymous`)."""
from __future__ import annotations

import dataclasses
import html
import re
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urljoin, urlparse

import pytest
from click.testing import CliRunner
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from coursefactory import RUBRIC_TASK
from gb_helpers import autograded
from pdfpages import written_pdf

from gradebook.course.anonymity import aliases, set_anonymous
from gradebook.course.config import CourseConfig, load_config
from gradebook.people.teams import import_teams
from gradebook.points.paper import import_points, set_points, write_template
from gradebook.points.publishing import publish
from gradebook.points.regrades import request_regrade
from gradebook.store.db import atomic
from gradebook.store.models import AuditLog, AutogradeResult, Handin, PaperPoints, RegradeRequest, StudentProfile
from web.app import create_app, iter_routes
from web.testing import logged_in, setup_web_course

SQLITE = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
IDS = ("ab1", "cd2", "ef3")
# everything that names a student of the fixture course (roster, profile, team, upload)
SECRETS = IDS + ("Müller", "Anna", "García", "Carlos", "O'Brien", "Eve", "3700001", "3700002", "3700003",
                 "amueller42", "Team-Mueller-OBrien", "Mueller_Anna")
LEAK = re.compile(r"(?<![A-Za-z0-9])(" + "|".join(re.escape(s) for s in SECRETS) + r")(?![A-Za-z0-9])")
OTHER_SHEETS = re.compile(r"tiny02|sheet09")
DASHBOARD = re.compile(r"/students/[^/?]+")
TEXT_TYPES = ("text/", "application/json", "application/javascript")


@pytest.fixture
def course(gradebook_course: CourseConfig, tmp_path: Path) -> Iterator[tuple[Any, CourseConfig]]:
    """tiny01 (paper tasks proof, derive): ab1 and ef3 in g1 (tutor1) as a team, cd2 in g2; ab1's PDF (with
    its name in the file name), ef3's crashed notebook (the reason quotes its path), points and a comment."""
    manifest = gradebook_course.root / "source" / "tiny01" / "sheet.toml"
    manifest.write_text(manifest.read_text() + RUBRIC_TASK)
    cfg = dataclasses.replace(load_config(gradebook_course.root), db_url=gradebook_course.db_url)
    setup_web_course(cfg)
    app = create_app(cfg)
    engine = app.state.engine
    with atomic(engine) as session:
        session.execute(update(StudentProfile).where(StudentProfile.student_id == "ab1").values(login="amueller42"))
    (tmp_path / "teams.csv").write_text("student_id,team\nab1,Team-Mueller-OBrien\nef3,Team-Mueller-OBrien\n")
    import_teams(engine, cfg.manifest("tiny01"), tmp_path / "teams.csv", "boss")
    upload = logged_in(app, "ab1").post("/students/ab1/sheets/tiny01/handin", data={"kind": "paper", "confirm_late": "yes"},
                                        files={"file": ("Mueller_Anna.pdf", written_pdf(["proof", "derive"]), "application/pdf")})
    assert upload.status_code == 303
    autograded(cfg, "tiny01", "ef3", 1, 1)
    with atomic(engine) as session:
        session.execute(update(AutogradeResult).where(AutogradeResult.student_id == "ef3").values(
            status="crashed", reason="the kernel died running submitted/ef3/tiny01/tiny01.ipynb"))
    set_points(engine, cfg.manifest("tiny01"), "ab1", "proof", Fraction(3, 2), author="tutor1",
               expected_version=0)
    set_points(engine, cfg.manifest("tiny01"), "ab1", "derive", Fraction(1), author="boss", expected_version=0)
    publish(engine, cfg, "tiny01", "boss")
    request_regrade(engine, cfg, "tiny01", "derive", "ab1", "Please look again at page 2")
    yield app, cfg


def _fill(path: str, values: dict[str, list[str]]) -> list[str]:
    names = re.findall(r"{(\w+)}", path)
    missing = [n for n in names if not values.get(n)]
    assert not missing, f"the crawl has no values for {missing} of {path}: add them to this test"
    urls = [path]
    for name in names:
        urls = [u.replace("{" + name + "}", v, 1) for u in urls for v in values[name]]
    return urls


def _leaks(response: Any) -> list[str]:
    found = [f"header {k}: {m}" for k, v in response.headers.items() for m in LEAK.findall(unquote(v))]
    if response.headers.get("content-type", "").startswith(TEXT_TYPES):
        text = response.text
        found += [f"body: {m}" for m in set(LEAK.findall(text) + LEAK.findall(html.unescape(text)))]
    return found


def _links(text: str, base: str) -> set[str]:
    out = set()
    for link in re.findall(r'(?:href|src|action|data-save-url)="([^"#]+)', text):
        url = urlparse(urljoin("http://testserver" + base, html.unescape(link)))
        if url.netloc == "testserver" and url.path != "/logout":
            out.add(url.path + (f"?{url.query}" if url.query else ""))
    return out


def crawl(app: Any, who: str, masks: dict[str, str]) -> tuple[dict[str, list[str]], set[tuple[str, str]]]:
    """Every route (and every link found) as ``who``: url → what it leaked; and the routes requested."""
    client = logged_in(app, who)
    with Session(app.state.engine) as session:
        handins = [str(h) for h in session.execute(select(Handin.id).where(Handin.sheet == "tiny01")).scalars()]
        regrades = [str(r) for r in session.execute(select(RegradeRequest.id)).scalars()]
    aliases_seen = list(masks.values()) or list(IDS)
    values = {"sheet": ["tiny01"], "group": ["g1", "g2"], "handin_id": handins, "number": ["1", "2"],
              "token": ["no-such-token"], "kind": ["roster"], "username": ["nobody"], "student": aliases_seen,
              "task": ["proof", "derive"], "request_id": regrades}
    leaks: dict[str, list[str]] = {}
    seen: set[str] = set()
    todo: list[str] = []
    routes = set(iter_routes(app))
    for method, path in sorted(routes):
        by_student = {**values, "student": aliases_seen + list(IDS)} if "{sheet}" in path else values
        for url in _fill(path, by_student):
            if method == "POST" and path in ("/logout", "/login"):
                continue  # these name no student; logging out would end the crawl's session
            if method == "GET":
                response = client.get(url, headers={"accept": "text/html"})
                todo += _links(response.text, url) if response.headers.get("content-type", "").startswith("text/html") else []
            elif path.endswith("/cell"):  # by pseudonym (the version of set_points' write), then by the real id
                for student in (masks.get("ab1", "ab1"), "ab1", masks.get("ab1", "ab1")):
                    response = client.post(url, json={"student": student, "task": "proof", "value": "2", "version": 1})
                    leaks.update({f"POST {url} {student}": _leaks(response)} if _leaks(response) else {})
            else:
                response = client.post(url, data={"tag": ["proof:1", "derive:2"], "sheet": "tiny01"})
            seen.add(url)
            assert response.status_code < 500, f"{method} {url}: {response.status_code} {response.text[:200]}"
            if _leaks(response):
                leaks[f"{method} {url} ({response.status_code})"] = _leaks(response)
    while todo:  # every link on the pages reached
        url = todo.pop()
        if url in seen or len(seen) > 400 or OTHER_SHEETS.search(url) or DASHBOARD.fullmatch(url):
            continue  # the other sheets show names; a student's named page shows nothing of tiny01 (checked below)
        seen.add(url)
        response = client.get(url, headers={"accept": "text/html"})
        if response.headers.get("content-type", "").startswith("text/html"):
            todo += _links(response.text, url)
        if _leaks(response):
            leaks[f"GET {url} ({response.status_code})"] = _leaks(response)
    return leaks, routes


@SQLITE
def test_no_tutor_reachable_response_names_a_student_of_an_anonymous_sheet(course: tuple[Any, CourseConfig]) -> None:
    app, cfg = course
    engine = app.state.engine
    assert set_anonymous(engine, "tiny01", True, "boss", "exam-like grading")
    masks = aliases(engine, "tiny01", IDS)
    assert masks is not None and len(set(masks.values())) == 3
    assert all(re.fullmatch(r"[a-z]+-[a-z]+-\d{4}", a) for a in masks.values())
    grid = logged_in(app, "tutor1").get("/tutor/tiny01/g1", headers={"accept": "text/html"}).text
    assert masks["ab1"] in grid and masks["ef3"] in grid  # the pseudonyms are what the tutor works with
    leaks, routes = crawl(app, "tutor1", masks)
    assert len(routes) >= 50 and not leaks, "\n".join(f"{k}: {v}" for k, v in leaks.items())
    # the cell save by pseudonym reached the real student; the PDF's download is named by the pseudonym
    with Session(engine) as session:
        assert session.execute(select(PaperPoints.points).where(PaperPoints.student_id == "ab1",
                                                                PaperPoints.task == "proof")).scalar_one() == "2"
        pdf = session.execute(select(Handin.id).where(Handin.kind == "paper")).scalar_one()
    download = logged_in(app, "tutor1").get(f"/handins/{pdf}/pdf")
    assert download.status_code == 200 and f'filename="tiny01-{masks["ab1"]}-paper.pdf"' in download.headers["content-disposition"]
    # the tutor's named page of the student shows nothing of the anonymous sheet
    dashboard = logged_in(app, "tutor1").get("/students/ab1", headers={"accept": "text/html"}).text
    assert "Müller" in html.unescape(dashboard) and "tiny01" not in dashboard


@SQLITE
def test_the_same_crawl_finds_the_names_of_a_sheet_shown_with_names(course: tuple[Any, CourseConfig]) -> None:
    app, _ = course
    set_anonymous(app.state.engine, "tiny01", True, "boss")
    set_anonymous(app.state.engine, "tiny01", False, "boss")  # on and off again: names shown
    leaks, _ = crawl(app, "tutor1", {})
    grid_leaks = [v for k, v in leaks.items() if k.startswith("GET /tutor/tiny01/g1 ")]
    assert grid_leaks and {"body: ab1", "body: Anna", "body: Team-Mueller-OBrien"} <= set(grid_leaks[0])
    assert any("Mueller_Anna" in leak for v in leaks.values() for leak in v)


@SQLITE
def test_points_template_and_import_work_by_pseudonym(course: tuple[Any, CourseConfig], tmp_path: Path) -> None:
    app, cfg = course
    engine = app.state.engine
    set_anonymous(engine, "tiny01", True, "boss")
    masks = aliases(engine, "tiny01", IDS) or {}
    out = tmp_path / "points.csv"
    assert write_template(engine, cfg.manifest("tiny01"), out, "g1") == 4
    text = out.read_text(encoding="utf-8")
    assert not LEAK.findall(text) and masks["ef3"] in text
    filled = text.replace(f"{masks['ef3']},derive,,", f"{masks['ef3']},derive,\"1,5\",")
    out.write_text(filled, encoding="utf-8")
    assert import_points(engine, cfg.manifest("tiny01"), out, "tutor1").written == 1
    with Session(engine) as session:
        assert session.execute(select(PaperPoints.points).where(PaperPoints.student_id == "ef3",
                                                                PaperPoints.task == "derive")).scalar_one() == "3/2"


@SQLITE
def test_switching_and_revealing_are_audited_admin_actions(course: tuple[Any, CourseConfig]) -> None:
    app, _ = course
    boss, tutor = logged_in(app, "boss"), logged_in(app, "tutor1")
    assert tutor.post("/admin/anonymity", data={"sheet": "tiny01", "on": "on"}).status_code == 403
    assert boss.post("/admin/anonymity", data={"sheet": "tiny01", "on": "on", "reason": "blind grading"}).status_code == 200
    masks = aliases(app.state.engine, "tiny01", IDS) or {}
    assert tutor.post("/admin/anonymity/reveal", data={"sheet": "tiny01", "reason": "curious"}).status_code == 403
    refused = boss.post("/admin/anonymity/reveal", data={"sheet": "tiny01", "reason": " "})
    assert refused.status_code == 400 and "needs a reason" in refused.text
    shown = boss.post("/admin/anonymity/reveal", data={"sheet": "tiny01", "reason": "regrade of a task"}).text
    assert re.search(rf"<td>{masks['ab1']}</td><td>ab1</td><td>Müller, Anna</td>", html.unescape(shown))
    runner = CliRunner()
    from autograder.cli import main

    assert "needs a reason" in runner.invoke(main, ["anonymous", "tiny01", "reveal"]).output
    revealed = runner.invoke(main, ["anonymous", "tiny01", "reveal", "--reason", "exam office", "--author", "boss"])
    assert re.search(rf"{masks['cd2']}\s+cd2\n", revealed.output)
    assert "names shown to tutors" in runner.invoke(main, ["anonymous", "tiny01", "off", "--author", "boss"]).output
    assert aliases(app.state.engine, "tiny01", IDS) is None
    with Session(app.state.engine) as session:
        trail = [tuple(r) for r in session.execute(select(AuditLog.author, AuditLog.entity, AuditLog.new_value,
                                                          AuditLog.reason).where(AuditLog.entity.like("anonymous%"))
                                                   .order_by(AuditLog.id))]
    assert trail == [("boss", "anonymous", "on", "blind grading"),
                     ("boss", "anonymous_reveal", "3 names revealed", "regrade of a task"),
                     ("boss", "anonymous_reveal", "3 names revealed", "exam office"),
                     ("boss", "anonymous", "off", None)]
    set_anonymous(app.state.engine, "tiny01", True, "boss")  # on again: the same pseudonyms
    assert aliases(app.state.engine, "tiny01", IDS) == masks
    assert aliases(app.state.engine, "tiny02", IDS) is None
