"""Pages per task and anonymous grading in a real browser (Playwright, Debian's chromium, the app under uvicorn;
the server and browser of tests/web/test_pages_in_a_real_browser.py, a fresh one for this module): the student
hands in a PDF, lands on its pages, ticks which page answers which task and saves; the tutor's grid shows each
task's pages beside the PDF link; with the sheet set anonymous by the admin the grid shows pseudonyms only.
Screenshots: ``page-tags.png`` (the tagging form), ``tutor-grid-anonymous.png``."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from pdfpages import written_pdf
from test_pages_in_a_real_browser import CHROMIUM, Server, browser, inert, open_as, server  # noqa: F401 (fixtures)

from gradebook.points.manual import set_extension
from gradebook.store.db import open_gradebook
from browser_wait import wait_in_page

pytestmark = [pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"),
              pytest.mark.timeout(120)]


def drawn(page: Any, image: Any) -> None:
    """Wait until ``image`` is loaded and drawn (lazy images load when scrolled to)."""
    image.scroll_into_view_if_needed()
    wait_in_page(page, "i => i.complete && i.naturalWidth > 0", arg=image.element_handle(), timeout=10)


def test_student_tags_pages_and_tutor_sees_each_tasks_pages(browser: Any, server: Server, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    engine = open_gradebook(server.cfg.db_url)
    set_extension(engine, "tiny01", "ab1", datetime.now(timezone.utc) + timedelta(days=2), "boss", "ill", cfg=server.cfg)
    scan = tmp_path / "scan.pdf"
    scan.write_bytes(written_pdf(["Task proof:\nby induction on n ...", "... so the proof holds.\nTask derive:\nf'(x) = 2x",
                                  "derive, continued:\nf''(x) = 2"]))
    page = open_as(browser, server, "ab1")
    page.goto(f"{server.base}/students/ab1/sheets/tiny01")
    form = page.locator('form:has(input[name="kind"][value="paper"])')
    form.locator('input[type="file"]').set_input_files(str(scan))
    form.locator('button[type="submit"]').click()
    expect(page.locator(".flash.ok")).to_contain_text("Your paper was received. Now tick")
    expect(page.locator(".card").first).to_contain_text("You can change this until")
    assert "Nov 2026" not in page.locator(".card").first.inner_text()  # ab1's own (extended) deadline
    expect(page.locator("figure.page")).to_have_count(3)
    for n in (1, 2, 3):  # the images came from the server and were drawn (lazily: once scrolled to)
        drawn(page, page.locator(f"#p{n} img"))
        assert page.locator(f"#p{n} img").evaluate("i => i.naturalWidth") == 1241
    for tag in ("proof:1", "proof:2", "derive:2", "derive:3"):  # page 2 answers both tasks
        page.locator(f'input[name="tag"][value="{tag}"]').check()
    page.screenshot(path=str(server.shots / "page-tags.png"), full_page=True)
    page.get_by_role("button", name="Save the pages' tasks").last.click()
    expect(page.locator(".flash.ok")).to_contain_text("Saved")
    expect(page.locator('.tag-summary tr:has-text("proof") td').nth(1)).to_have_text("1-2")
    expect(page.locator('.tag-summary tr:has-text("derive") td').nth(1)).to_have_text("2-3")

    tutor = open_as(browser, server, "tutor1")
    tutor.goto(f"{server.base}/tutor/tiny01/g1")
    tutor.locator('tr[data-student="ab1"] button.pick').click()
    panel = tutor.locator('section.student-panel[data-student="ab1"]')
    derive = panel.locator('.task-box[data-task="derive"] .thumbs')
    expect(derive).to_contain_text("pages 2, 3")
    expect(derive.locator("img")).to_have_count(2)
    drawn(tutor, derive.locator("img").first)
    for p in (page, tutor):
        p.context.close()


def test_admin_sets_the_sheet_anonymous_and_the_grid_shows_pseudonyms(browser: Any, server: Server) -> None:
    from playwright.sync_api import expect

    admin = open_as(browser, server, "boss")
    admin.goto(f"{server.base}/admin/anonymity")
    admin.locator('tr:has-text("tiny01")').get_by_role("button", name="Grade anonymously").click()
    expect(admin.locator(".flash.ok")).to_contain_text("tiny01 graded anonymously")
    tutor = open_as(browser, server, "tutor1")
    tutor.goto(f"{server.base}/tutor/tiny01/g1")
    text = tutor.locator("main").inner_text()
    assert "Müller" not in text and "ab1" not in text and "O'Brien" not in text
    expect(tutor.locator("#grid tbody tr")).to_have_count(3)
    names = tutor.locator("#grid tbody th.who button.pick").all_inner_texts()
    assert len(names) == 3 and all(n.count("-") == 2 for n in names), names
    tutor.screenshot(path=str(server.shots / "tutor-grid-anonymous.png"), full_page=True)
    admin.locator('tr:has-text("tiny01")').get_by_role("button", name="Show names").click()
    expect(admin.locator(".flash.ok")).to_contain_text("shows names to tutors again")
    for p in (admin, tutor):
        p.context.close()
