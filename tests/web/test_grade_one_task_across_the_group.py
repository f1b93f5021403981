"""The grade-by-task page over HTTP (TestClient): each tutor walks the hand-ins of their own groups (an admin
everyone's) in a stable shuffled order; a save goes through the grid's write path (versioned, audited) and a
stale one answers 409 naming who changed it; the admins' rubric page changes every student's points at once."""
from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from test_tutor_grid_pages import grid_course  # type: ignore[import-not-found]
from gradebook.course.config import CourseConfig
from gradebook.points.by_task import shuffle_key
from gradebook.store.db import atomic, open_gradebook
from gradebook.store.models import AuditLog, Handin, PaperPoints

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture
def app(gradebook_course: CourseConfig, tmp_path: Path) -> Any:
    """The grid's course; PDFs handed in by ab1 and ef3 (g1, tutor1) and cd2 (g2, tutor2)."""
    from web.app import create_app

    cfg = grid_course(gradebook_course, tmp_path)
    engine = open_gradebook(cfg.db_url)
    with atomic(engine) as session:
        for sid in ("ab1", "ef3", "cd2"):
            stored = cfg.data_dir / "handins" / f"tiny01-{sid}.pdf"
            stored.parent.mkdir(parents=True, exist_ok=True)
            stored.write_bytes(PDF)
            session.add(Handin(sheet="tiny01", student_id=sid, kind="paper", source="web", status="accepted",
                               received_at=datetime.now(timezone.utc), stored_path=f"handins/tiny01-{sid}.pdf",
                               size=len(PDF), original_name="scan.pdf"))
    return create_app(cfg)


def _client(app: Any, who: str) -> Any:
    from web.testing import logged_in

    return logged_in(app, who)


def _queue(page: str) -> dict[str, Any]:
    match = re.search(r'<script type="application/json" id="queue-data">(.*?)</script>', page, re.S)
    assert match, page[:500]
    return json.loads(match.group(1))  # type: ignore[no-any-return]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_each_tutor_walks_their_groups_hand_ins_in_a_stable_shuffled_order(app: Any) -> None:
    tina = _client(app, "tutor1")
    first = tina.get("/tutor/grade/tiny01/derive", headers={"accept": "text/html"})
    assert first.status_code == 200
    data = _queue(first.text)
    students = [e["student"] for e in data["entries"]]
    assert sorted(students) == ["ab1", "ef3"]  # g1 only
    assert students == sorted(students, key=lambda s: shuffle_key("tiny01", "derive", s))
    assert students == [e["student"] for e in _queue(tina.get("/tutor/grade/tiny01/derive").text)["entries"]]
    assert [i["key"] for i in data["items"]] == ["setup", "result"] and data["max"] == "4"
    assert '<span id="left-count" class="big">2</span>' in first.text
    assert all(e["pdf"].startswith("/handins/") and e["pages"] is None for e in data["entries"])  # all pages
    everyone = _queue(_client(app, "boss").get("/tutor/grade/tiny01/derive").text)
    assert sorted(e["student"] for e in everyone["entries"]) == ["ab1", "cd2", "ef3"]
    assert [e["student"] for e in _queue(_client(app, "tutor2").get("/tutor/grade/tiny01/derive").text)["entries"]] == ["cd2"]
    assert tina.get("/tutor/grade/tiny01/nope", headers={"accept": "text/html"}).status_code == 404
    home = tina.get("/tutor", headers={"accept": "text/html"}).text
    assert 'href="/tutor/grade/tiny01/derive"' in home and "/admin/rubric/" not in home
    assert 'href="/tutor/grade/tiny01/derive"' in tina.get("/tutor/tiny01/g1").text


@pytest.mark.parametrize("db_url", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_saves_go_through_the_one_write_path_and_conflict_like_the_grid(app: Any) -> None:
    tina, boss = _client(app, "tutor1"), _client(app, "boss")
    url = "/tutor/grade/tiny01/derive"
    ok = tina.post(url, json={"student": "ab1", "ticks": ["setup"], "adjustment": "0,5", "comment": "see (3)",
                              "version": 0, "comment_version": 0})
    assert ok.status_code == 200, ok.text
    cell = ok.json()["cell"]
    assert (cell["points"], cell["ticks"], cell["adjustment"], cell["comment"]) == ("2", ["setup"], "0.5", "see (3)")
    stale = boss.post(url, json={"student": "ab1", "ticks": [], "version": 0})
    assert stale.status_code == 409
    assert "changed meanwhile by Tina Tutor" in stale.json()["error"] and stale.json()["cell"]["version"] == 1
    assert tina.post(url, json={"student": "cd2", "ticks": [], "version": 0}).status_code == 403  # not g1
    assert tina.post(url, json={"student": "ab1", "ticks": ["bogus"], "version": 1}).status_code == 400
    zero = tina.post(url, json={"student": "ef3", "ticks": [], "version": 0})  # Enter with nothing ticked: 0 points
    assert zero.status_code == 200 and zero.json()["cell"]["points"] == "0"
    with Session(open_gradebook(app.state.cfg.db_url)) as s:
        reasons = set(s.execute(select(AuditLog.reason).where(AuditLog.entity == "paper_points")).scalars())
    assert reasons == {"graded by task"}
    page = tina.get(url, headers={"accept": "text/html"}).text
    assert '<span id="left-count" class="big">0</span>' in page


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_rubric_page_changes_everyone_who_has_the_item(app: Any) -> None:
    tina, boss = _client(app, "tutor1"), _client(app, "boss")
    tina.post("/tutor/grade/tiny01/derive", json={"student": "ab1", "ticks": ["setup", "result"], "version": 0})
    assert tina.get("/admin/rubric/tiny01", headers={"accept": "text/html"}).status_code == 403
    page = boss.get("/admin/rubric/tiny01", headers={"accept": "text/html"})
    assert page.status_code == 200 and 'value="Sets up the integral"' in page.text
    assert re.search(r"<code>result</code><div class=\"small muted\">1 graded</div>", page.text)
    done = boss.post("/admin/rubric/tiny01", data={"action": "set", "task": "derive", "key": "result", "points": "2",
                                                   "text": "Correct result", "note": "<b>units</b>", "reason": "fairer"})
    assert done.status_code == 200 and "item result: changed; 1 student(s)&#39; points changed" in done.text
    assert "&lt;b&gt;units&lt;/b&gt;" in done.text and "<b>units</b>" not in done.text
    with Session(open_gradebook(app.state.cfg.db_url)) as s:
        assert s.execute(select(PaperPoints.points).where(PaperPoints.student_id == "ab1")).scalar() == "7/2"
    bad = boss.post("/admin/rubric/tiny01", data={"action": "add", "task": "derive", "points": "x", "text": "t"})
    assert bad.status_code == 400 and "points &#39;x&#39; is not a number" in bad.text
    gone = boss.post("/admin/rubric/tiny01", data={"action": "delete", "task": "derive", "key": "setup"})
    assert gone.status_code == 200 and "deleted; 1 student(s)&#39; points changed" in gone.text
    assert 'href="/admin/rubric/tiny01"' in boss.get("/tutor", headers={"accept": "text/html"}).text


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_under_the_hubs_service_prefix_the_page_saves_and_shows_pdfs_under_it(
        gradebook_course: CourseConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from web.app import create_app
    from web.settings import WebSettings

    monkeypatch.setenv("MLPH_HUB_API_URL", "http://127.0.0.1:9/hub/api")  # nothing listens
    monkeypatch.setenv("MLPH_HUB_API_TOKEN", "t" * 64)
    app = create_app(grid_course(gradebook_course, tmp_path), WebSettings())
    page = _client(app, "tutor1").get("/services/mlph/tutor/grade/tiny01/derive", headers={"accept": "text/html"})
    assert page.status_code == 200
    assert 'data-save-url="/services/mlph/tutor/grade/tiny01/derive" data-root-url="/services/mlph/"' in page.text
    assert 'src="/services/mlph/static/grade_task.js"' in page.text
