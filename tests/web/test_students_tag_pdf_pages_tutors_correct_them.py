"""Pages per task over HTTP: the student hands in a PDF and lands on its pages, ticks which page answers which
task (until the deadline); the page images are served exactly to whom the PDF is (another student, another
group's tutor: 404); the tutor of the group corrects the tags afterwards (audited with their name) and sees
each task's pages in the grid; a PDF that cannot be rendered is a clear message, not a server error."""
from __future__ import annotations

import dataclasses
import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from coursefactory import RUBRIC_TASK
from pdfpages import blank_pdf, written_pdf

from gradebook.course.config import load_config
from gradebook.points.manual import set_extension
from gradebook.points.page_images import pages_for
from gradebook.store.models import AuditLog
from web.app import create_app
from web.testing import logged_in, setup_web_course

HTML = {"accept": "text/html"}
SQLITE = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@pytest.fixture
def app(gradebook_course: Any) -> Any:
    """tiny01 with the paper tasks proof and derive; ab1 and ef3 in g1 (tutor1), cd2 in g2 (tutor2); ab1's deadline
    extended to tomorrow (tiny01's own has passed)."""
    manifest = gradebook_course.root / "source" / "tiny01" / "sheet.toml"
    manifest.write_text(manifest.read_text() + RUBRIC_TASK)
    cfg = dataclasses.replace(load_config(gradebook_course.root), db_url=gradebook_course.db_url)
    setup_web_course(cfg)
    app = create_app(cfg)
    set_extension(app.state.engine, "tiny01", "ab1", datetime.now(timezone.utc) + timedelta(days=1), "boss", "ill", cfg=cfg)
    return app


def upload(client: Any, student: str, data: bytes) -> Any:
    return client.post(f"/students/{student}/sheets/tiny01/handin", data={"kind": "paper", "confirm_late": "yes"},
                       files={"file": ("Anna-scan.pdf", data, "application/pdf")}, headers=HTML)


def handin_id(response: Any) -> int:
    match = re.fullmatch(r"/handins/(\d+)/pages\?handed_in=paper", response.headers.get("location", ""))
    assert response.status_code == 303 and match, (response.status_code, response.headers, response.text[:300])
    return int(match.group(1))


@SQLITE
def test_the_student_tags_pages_after_the_upload_and_the_tutor_corrects_them(app: Any, tmp_path: Path) -> None:
    ab1 = logged_in(app, "ab1")
    hid = handin_id(upload(ab1, "ab1", written_pdf(["Task proof: by induction", "proof, continued",
                                                    "Task derive: d/dx x^2 = 2x"])))
    page = ab1.get(f"/handins/{hid}/pages?handed_in=paper", headers=HTML)
    assert page.status_code == 200 and "Your paper was received" in page.text, page.text
    assert "cannot be shown" not in page.text, re.findall(r"flash error[^<]*", page.text)
    assert all(f'src="/handins/{hid}/pages/{n}.png"' in page.text for n in (1, 2, 3))
    assert 'value="proof:1"' in page.text and 'value="derive:3"' in page.text and "disabled" not in page.text
    saved = ab1.post(f"/handins/{hid}/pages", data={"tag": ["proof:1", "proof:2", "derive:2", "derive:3"],
                                                    "csrf_token": ab1.csrf})
    assert saved.status_code == 303
    engine = app.state.engine
    data_dir = app.state.cfg.data_dir
    assert [i.number for i in pages_for(data_dir, engine, "tiny01", "ab1", "proof").images] == [1, 2]
    assert [i.number for i in pages_for(data_dir, engine, "tiny01", "ab1", "derive").images] == [2, 3]
    image = ab1.get(f"/handins/{hid}/pages/2.png")
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert image.content.startswith(b"\x89PNG") and image.headers["x-content-type-options"] == "nosniff"
    for other in ("cd2", "tutor2"):  # exactly the PDF's rule: neither sees the pages
        client = logged_in(app, other)
        assert client.get(f"/handins/{hid}/pdf").status_code == 404
        assert client.get(f"/handins/{hid}/pages/2.png").status_code == 404
        assert client.get(f"/handins/{hid}/pages", headers=HTML).status_code == 404
        assert client.post(f"/handins/{hid}/pages", data={"tag": "proof:3"}).status_code == 404
    assert ab1.get(f"/handins/{hid}/pages/4.png").status_code == 404  # no such page

    tutor = logged_in(app, "tutor1")
    grid = tutor.get("/tutor/tiny01/g1", headers=HTML).text
    assert f'src="/handins/{hid}/pages/3.png"' in grid and "pages 2, 3" in grid  # derive's pages beside the PDF
    assert tutor.post(f"/handins/{hid}/pages", data={"tag": ["proof:1", "derive:3"], "reason": "page 2 is proof"}
                      ).status_code == 303
    assert [i.number for i in pages_for(data_dir, engine, "tiny01", "ab1", "proof").images] == [1]
    with Session(engine) as session:
        trail = session.execute(select(AuditLog.author, AuditLog.old_value, AuditLog.new_value, AuditLog.reason)
                                .where(AuditLog.entity == "page_tags").order_by(AuditLog.id)).all()
    assert [tuple(r) for r in trail][-2:] == [("tutor1", "2,3", "3", "page 2 is proof"),
                                              ("tutor1", "1,2", "1", "page 2 is proof")]
    for task, shown in (("proof", [1]), ("derive", [3])):  # grading by task: that task's page images only
        html = tutor.get(f"/tutor/grade/tiny01/{task}", headers=HTML).text
        queue = json.loads(re.search(r'<script type="application/json" id="queue-data">(.*?)</script>', html, re.S)[1])
        [entry] = [e for e in queue["entries"] if e["pdf"] == f"/handins/{hid}/pdf"]
        assert entry["images"] == [f"/handins/{hid}/pages/{n}.png" for n in shown] and entry["pages"] == shown
    refused = tutor.post(f"/handins/{hid}/pages", data={"tag": "proof:9"}, headers=HTML)
    assert refused.status_code == 400 and "is not a task and page of this hand-in" in refused.text


@SQLITE
def test_after_the_deadline_only_staff_change_the_tags(app: Any) -> None:
    ef3 = logged_in(app, "ef3")  # no extension: tiny01's deadline has passed
    hid = handin_id(upload(ef3, "ef3", blank_pdf(2)))
    page = ef3.get(f"/handins/{hid}/pages", headers=HTML).text
    assert "The deadline has passed; your tutor can still correct the tags." in page and "disabled" in page
    assert ef3.post(f"/handins/{hid}/pages", data={"tag": "proof:1"}).status_code == 403
    assert logged_in(app, "boss").post(f"/handins/{hid}/pages", data={"tag": "proof:2"}).status_code == 303


@SQLITE
def test_a_pdf_that_cannot_be_rendered_is_said_not_a_server_error(app: Any) -> None:
    ab1 = logged_in(app, "ab1")
    hid = handin_id(upload(ab1, "ab1", b"%PDF-1.4\nnot really a PDF\n%%EOF\n"))
    page = ab1.get(f"/handins/{hid}/pages", headers=HTML)
    assert page.status_code == 200 and "cannot be shown as images" in page.text and "open it with the link" in page.text
    image = ab1.get(f"/handins/{hid}/pages/1.png", headers=HTML)
    assert image.status_code == 404 and "cannot be shown" in image.text
    assert ab1.get(f"/handins/{hid}/pdf").status_code == 200  # the PDF itself is there
    grid = logged_in(app, "tutor1").get("/tutor/tiny01/g1", headers=HTML)
    assert grid.status_code == 200 and f"/handins/{hid}/pages" in grid.text
