"""A paper hand-in's pages as images and their tags per task, as a library: rendered once (cached), bounded in
pages and pixels, a PDF that cannot be rendered is a clear message (remembered, not retried); the tags
(a page may serve several tasks) choose each task's pages, every change audited; untagged tasks show every page."""
from __future__ import annotations

import dataclasses
import hashlib
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from coursefactory import RUBRIC_TASK
from pdfpages import blank_pdf, written_pdf

from gradebook.course.config import CourseConfig, load_config
from gradebook.errors import InputError
from gradebook.points import page_images
from gradebook.points.page_images import PageRenderError, pages_for, render_pages
from gradebook.points.page_render import render
from gradebook.points.page_tags import TagOwner, set_tags, shown_pages, student_may_tag, tags_of
from gradebook.store.db import atomic, open_gradebook
from gradebook.store.models import AuditLog, Handin, TeamMember

SQLITE = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@pytest.fixture
def course(gradebook_course: CourseConfig) -> CourseConfig:
    """tiny01 with two paper tasks: "proof" and "derive"."""
    manifest = gradebook_course.root / "source" / "tiny01" / "sheet.toml"
    manifest.write_text(manifest.read_text() + RUBRIC_TASK)
    return dataclasses.replace(load_config(gradebook_course.root), db_url=gradebook_course.db_url)


def hand_in(cfg: CourseConfig, student: str, data: bytes, minutes_ago: int = 5, sheet: str = "tiny01") -> Handin:
    rel = f"paper/{sheet}/{student}.pdf"
    (cfg.data_dir / rel).parent.mkdir(parents=True, exist_ok=True)
    (cfg.data_dir / rel).write_bytes(data)
    with atomic(open_gradebook(cfg.db_url)) as session:
        row = Handin(sheet=sheet, student_id=student, kind="paper", source="web", status="accepted", stored_path=rel,
                     received_at=datetime.now(timezone.utc) - timedelta(minutes=minutes_ago), size=len(data),
                     sha256=hashlib.sha256(data).hexdigest(), original_name="scan.pdf")
        session.add(row)
    return row


@SQLITE
def test_pages_are_rendered_once_and_cached(course: CourseConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    row = hand_in(course, "ab1", written_pdf(["1a) the proof", "1b) continued", "2) the derivation"]))
    rendered = render_pages(course.data_dir, open_gradebook(course.db_url), row)
    assert rendered.total == 3 and [i.number for i in rendered.images] == [1, 2, 3]
    first = rendered.images[0]
    assert first.path.read_bytes().startswith(b"\x89PNG") and (first.width, first.height) == (1241, 1754)  # 150 dpi A4
    assert first.path.is_relative_to(course.data_dir / "page-images" / "tiny01")

    def no_second_render(*_: Any) -> str:
        raise AssertionError("rendered twice")

    monkeypatch.setattr(page_images, "_run_renderer", no_second_render)
    assert render_pages(course.data_dir, open_gradebook(course.db_url), row) == rendered


@SQLITE
def test_page_count_and_pixels_are_bounded(course: CourseConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    huge = hand_in(course, "ab1", blank_pdf(1, 14400, 14400))  # a 5 m × 5 m page
    image = render_pages(course.data_dir, open_gradebook(course.db_url), huge).images[0]
    assert image.width <= page_images.MAX_WIDTH and image.height <= page_images.MAX_HEIGHT
    assert max(image.width, image.height) >= 1400
    monkeypatch.setattr(page_images, "MAX_PAGES", 2)
    many = hand_in(course, "cd2", blank_pdf(5))
    rendered = render_pages(course.data_dir, open_gradebook(course.db_url), many)
    assert rendered.total == 5 and len(rendered.images) == 2 and rendered.truncated


@SQLITE
def test_a_pdf_that_cannot_be_rendered_is_a_clear_message_once(course: CourseConfig,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    broken = hand_in(course, "ef3", b"%PDF-1.4\nthis is no PDF at all\n%%EOF\n")
    with pytest.raises(PageRenderError) as first:
        render_pages(course.data_dir, open_gradebook(course.db_url), broken)
    assert "tiny01, ef3" in str(first.value) and "could not be shown as images (Failed to load document" in str(first.value)
    assert "open the PDF itself" in str(first.value)
    monkeypatch.setattr(page_images, "_run_renderer", lambda *_: pytest.fail("a failed PDF is rendered again"))
    with pytest.raises(PageRenderError):
        render_pages(course.data_dir, open_gradebook(course.db_url), broken)
    shown = pages_for(course.data_dir, open_gradebook(course.db_url), "tiny01", "ef3", "proof")
    assert shown.handin_id == broken.id and shown.images == () and "could not be shown" in shown.error


@SQLITE
def test_a_replaced_pdf_is_not_shown_as_the_older_hand_in(course: CourseConfig) -> None:
    engine = open_gradebook(course.db_url)
    old = hand_in(course, "ab1", blank_pdf(2), minutes_ago=10)
    old_images = render_pages(course.data_dir, engine, old).images
    new = hand_in(course, "ab1", blank_pdf(4))  # the same file name, newer bytes
    assert len(render_pages(course.data_dir, engine, new).images) == 4
    assert not old_images[0].path.exists()  # one hand-in's images per student and sheet are kept
    with pytest.raises(PageRenderError, match="replaced by a newer hand-in"):
        render_pages(course.data_dir, engine, old)


def test_the_images_of_one_hand_in_are_bounded_in_bytes(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "scan.pdf").write_bytes(blank_pdf(3))
    index = render(tmp_path / "scan.pdf", tmp_path / "out", 60, 1400, 2000, max_bytes=1)
    assert index["pages"] == 3 and index["rendered"] == 1 and len(list((tmp_path / "out").glob("*.png"))) == 1


def test_tags_choose_each_tasks_pages_and_are_audited(course: CourseConfig) -> None:
    engine = open_gradebook(course.db_url)
    row = hand_in(course, "ab1", blank_pdf(4))
    manifest = course.manifest("tiny01")
    assert [i.number for i in pages_for(course.data_dir, engine, "tiny01", "ab1", "proof").images] == [1, 2, 3, 4]
    owner = TagOwner(row.id, "tiny01", "ab1")
    assert set_tags(engine, owner, manifest, {"proof": {1, 2}, "derive": {2, 3}}, "ab1", 4, "tagged by the student") == 2
    proof = pages_for(course.data_dir, engine, "tiny01", "ab1", "proof")
    derive = pages_for(course.data_dir, engine, "tiny01", "ab1", "derive")
    assert proof.tagged and [i.number for i in proof.images] == [1, 2]
    assert [i.number for i in derive.images] == [2, 3] and derive.images[0].url == f"/handins/{row.id}/pages/2.png"
    assert set_tags(engine, owner, manifest, {"proof": {1, 2}, "derive": {4}}, "tina", 4, "corrected") == 1
    assert tags_of(engine, row.id) == {"proof": [1, 2], "derive": [4]}
    set_tags(engine, owner, manifest, {"proof": {1, 2}}, "tina", 4)  # derive untagged again: every page
    assert not pages_for(course.data_dir, engine, "tiny01", "ab1", "derive").tagged
    with Session(engine) as session:
        trail = [tuple(r) for r in session.execute(select(AuditLog.author, AuditLog.key, AuditLog.old_value,
                                                          AuditLog.new_value).where(AuditLog.entity == "page_tags")
                                                   .order_by(AuditLog.id))]
    key = f"tiny01/ab1/derive/handin {row.id}"
    assert trail == [("ab1", key, None, "2,3"), ("ab1", f"tiny01/ab1/proof/handin {row.id}", None, "1,2"),
                     ("tina", key, "2,3", "4"), ("tina", key, "4", None)]
    with pytest.raises(InputError, match="tiny01, ab1, task proof: pages must be between 1 and 4"):
        set_tags(engine, owner, manifest, {"proof": {5}}, "ab1", 4)
    with pytest.raises(InputError, match="no paper task 'nope'"):
        set_tags(engine, owner, manifest, {"nope": {1}}, "ab1", 4)


@SQLITE
def test_a_teammates_pdf_is_the_teams_pages(course: CourseConfig) -> None:
    engine = open_gradebook(course.db_url)
    with atomic(engine) as session:
        session.add_all([TeamMember(sheet="tiny01", team="t1", student_id=s) for s in ("ab1", "cd2")])
    row = hand_in(course, "cd2", blank_pdf(2))
    assert pages_for(course.data_dir, engine, "tiny01", "ab1", "proof").handin_id == row.id
    assert pages_for(course.data_dir, engine, "tiny01", "ef3", "proof").handin_id is None


def test_page_lists_are_shown_as_people_write_them() -> None:
    assert shown_pages({1, 2, 3, 5}) == "1-3, 5" and shown_pages({4}) == "4" and shown_pages(set()) == ""
    assert shown_pages({7, 1, 2, 9, 8}) == "1-2, 7-9"


@SQLITE
def test_the_student_tags_until_their_deadline(course: CourseConfig) -> None:
    engine = open_gradebook(course.db_url)
    manifest = course.manifest("tiny01")
    assert student_may_tag(engine, manifest, "ab1", manifest.due - timedelta(minutes=1))
    assert not student_may_tag(engine, manifest, "ab1", manifest.due + timedelta(minutes=1))
