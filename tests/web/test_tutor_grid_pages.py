"""The tutors' pages over HTTP (TestClient): who sees which grid, the cell save's answers (saved,
refused with the reason, conflict naming the tutor), and the page's inertness (no inline script).

``GRID_EXPECT`` is this module's part of the authorization matrix (tests/web/test_authorization_matrix.py merges it):
``(method, path template) → (concrete url, {role: outcome})`` on the matrix's fixture course
(students ab1/ef3 in g1, cd2 in g2; tutor1 holds g1, tutor2 g2; admin boss)."""
from __future__ import annotations

import dataclasses
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from coursefactory import RUBRIC_TASK

from gradebook.course.config import CourseConfig, load_config
from gradebook.store.db import open_gradebook
from gradebook.people.groups import add_staff, assign_students, import_groups

_STAFF = {"anon": "login", "student_a": "deny", "student_b": "deny", "tutor1": "ok", "tutor2": "ok", "admin": "ok"}
_G1 = {**_STAFF, "tutor2": "deny"}
GRID_EXPECT: dict[tuple[str, str], tuple[str, dict[str, str]]] = {
    ("GET", "/tutor"): ("/tutor", _STAFF),
    ("GET", "/tutor/{sheet}/{group}"): ("/tutor/tiny01/g1", _G1),
    ("POST", "/tutor/{sheet}/{group}/cell"): ("/tutor/tiny01/g1/cell", _G1),
    # the grade-by-task page (tests/web/test_grade_one_task_across_the_group.py): each tutor their own groups'
    # hand-ins; a save for a student outside them is refused there (an empty body is a 400 for staff)
    ("GET", "/tutor/grade/{sheet}/{task}"): ("/tutor/grade/tiny01/proof", _STAFF),
    ("POST", "/tutor/grade/{sheet}/{task}"): ("/tutor/grade/tiny01/proof", _STAFF),
}

def grid_course(cfg: CourseConfig, tmp_path: Path) -> CourseConfig:
    """The matrix's course: tiny01 gains a paper task "derive" (max 4, with a rubric); groups g1 (tutor1:
    ab1, ef3) and g2 (tutor2: cd2); admin boss."""
    manifest = cfg.root / "source" / "tiny01" / "sheet.toml"
    if "derive" not in manifest.read_text():
        manifest.write_text(manifest.read_text() + RUBRIC_TASK)
    engine = open_gradebook(cfg.db_url)
    (tmp_path / "groups.csv").write_text("group,name,tutor_id,tutor_name\n"
                                         "g1,Monday 10:00,tutor1,Tina Tutor\ng2,Tuesday 14:00,tutor2,Tom Tutor\n")
    (tmp_path / "members.csv").write_text("student_id,group\nab1,g1\ncd2,g2\nef3,g1\n")
    import_groups(engine, tmp_path / "groups.csv")
    assign_students(engine, tmp_path / "members.csv", "admin")
    add_staff(engine, "boss", "Bea Boss", None, "admin", "test")
    return dataclasses.replace(load_config(cfg.root), db_url=cfg.db_url)


@pytest.fixture
def app(gradebook_course: CourseConfig, tmp_path: Path) -> Any:
    from web.app import create_app

    return create_app(grid_course(gradebook_course, tmp_path))


def _client(app: Any, who: str) -> Any:
    from web.testing import logged_in

    return logged_in(app, who)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_tutors_see_their_groups_admins_all(app: Any) -> None:
    home = _client(app, "tutor1").get("/tutor", headers={"accept": "text/html"})
    assert home.status_code == 200 and "/tutor/tiny01/g1" in home.text and "/tutor/tiny01/g2" not in home.text
    assert "4 of 4 empty" in home.text  # two students × two paper tasks
    boss = _client(app, "boss").get("/tutor", headers={"accept": "text/html"}).text
    assert "/tutor/tiny01/g1" in boss and "/tutor/tiny01/g2" in boss
    assert _client(app, "tutor2").get("/tutor/tiny01/g1", headers={"accept": "text/html"}).status_code == 403
    assert _client(app, "tutor1").get("/tutor/tiny01/g9", headers={"accept": "text/html"}).status_code == 404
    assert _client(app, "tutor1").get("/tutor/nosheet/g1", headers={"accept": "text/html"}).status_code == 404
    assert _client(app, "ab1").get("/tutor/tiny01/g1", headers={"accept": "text/html"}).status_code == 403


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[str] = []
        self.handlers: list[str] = []
        self.styled = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            self.scripts.append(dict(attrs).get("src") or "")
        self.handlers += [f"{tag} {k}" for k, _ in attrs if k.startswith("on")]
        self.styled = self.styled or any(k == "style" for k, _ in attrs)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_grid_page_lists_the_group_and_runs_no_inline_script(app: Any) -> None:
    page = _client(app, "tutor1").get("/tutor/tiny01/g1", headers={"accept": "text/html"})
    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["content-security-policy"]
    html = page.text
    assert html.index('data-student="ab1"') < html.index('data-student="ef3"')  # Müller before O'Brien
    assert 'data-student="cd2"' not in html  # not in g1
    assert "Sets up the integral" in html and "Model solution" in html and 'data-max="4"' in html
    found = _Tags()
    found.feed(html)
    assert found.scripts and all(src.startswith("/static/") for src in found.scripts)
    assert found.handlers == [] and not found.styled  # no inline handlers or styles (the CSP would block them)


@pytest.mark.parametrize("db_url", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_cell_saves_refusals_and_conflicts(app: Any) -> None:
    tina, boss = _client(app, "tutor1"), _client(app, "boss")
    url = "/tutor/tiny01/g1/cell"
    ok = tina.post(url, json={"student": "ab1", "task": "derive", "value": "2,5", "version": 0})
    assert ok.status_code == 200 and ok.json()["cell"]["points"] == "2.5" and ok.json()["cell"]["version"] == 1
    too_much = tina.post(url, json={"student": "ab1", "task": "derive", "value": "9", "version": 1})
    assert too_much.status_code == 400 and "9 is outside 0..4: above the task's maximum of 4" in too_much.json()["error"]
    stale = boss.post(url, json={"student": "ab1", "task": "derive", "value": "1", "version": 0})
    assert stale.status_code == 409
    body = stale.json()
    assert "changed meanwhile by Tina Tutor at " in body["error"] and " to 2.5 " in body["error"]
    assert body["conflict"]["by"] == "Tina Tutor" and body["cell"]["version"] == 1 and body["cell"]["points"] == "2.5"
    ticks = boss.post(url, json={"student": "ab1", "task": "derive", "ticks": ["setup", "result"], "version": 1})
    assert ticks.status_code == 200 and ticks.json()["cell"]["points"] == "4"
    comment = tina.post(url, json={"student": "ef3", "task": "proof", "comment": "<b>see (3)</b>", "comment_version": 0})
    assert comment.status_code == 200 and comment.json()["cell"]["comment_version"] == 1
    other_group = tina.post(url, json={"student": "cd2", "task": "proof", "value": "1", "version": 0})
    assert other_group.status_code == 403
    assert _client(app, "tutor2").post(url, json={"student": "ab1", "task": "proof", "value": "1"}).status_code == 403
    assert tina.post(url, content=b"[1]", headers={"content-type": "application/json"}).status_code == 400
    bad_version = tina.post(url, json={"student": "ab1", "task": "proof", "value": "1", "version": "x"})
    assert bad_version.status_code == 400 and "version" in bad_version.json()["error"]
    page = tina.get("/tutor/tiny01/g1", headers={"accept": "text/html"}).text
    assert "&lt;b&gt;see (3)&lt;/b&gt;" in page and "<b>see" not in page
    assert re.search(r'<span id="empty-count" class="big">3</span>', page)  # ab1/proof, ef3/proof, ef3/derive


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_cell_save_needs_the_csrf_token(app: Any) -> None:
    tina = _client(app, "tutor1")
    del tina.headers["x-csrf-token"]
    r = tina.post("/tutor/tiny01/g1/cell", json={"student": "ab1", "task": "proof", "value": "1", "version": 0})
    assert r.status_code == 403
