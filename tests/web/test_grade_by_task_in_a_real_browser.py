"""The grade-by-task page in a real browser (Playwright + Debian's chromium, the fixtures of
test_pages_in_a_real_browser.py): a tutor grades one task for their group with the keyboard only, one hand-in
after the other ("1" then Enter is a common response: two keystrokes), meets another tutor's change as a
conflict and saves over it; the hostile roster name stays text. Screenshots of the page and of the admins'
rubric page go to docs/screenshots/ with MLPH_WRITE_SCREENSHOTS=1."""
from __future__ import annotations

from datetime import datetime, timezone
from fractions import Fraction
from pathlib import Path
from typing import Any

from test_pages_in_a_real_browser import Server, browser, inert, open_as, pytestmark, server  # noqa: F401
from sqlalchemy import select
from sqlalchemy.orm import Session

from gradebook.points.by_task import shuffle_key
from gradebook.points.grid import save_cell, student_paper
from gradebook.points.page_images import render_pages
from gradebook.store.db import atomic, open_gradebook
from gradebook.store.models import Handin
from browser_wait import wait_in_page

STUDENTS = ("ab1", "ef3", "xs4")  # group g1 (tutor1); ab1 handed in a PDF already


def _scan(lines: list[str]) -> bytes:
    """A one-page PDF with a few lines of text (what a scanned answer stands in for in the screenshot)."""
    text = " ".join(f"({line}) Tj 0 -30 Td" for line in lines)
    stream = f"BT /F1 20 Tf 60 780 Td {text} ET".encode()
    return (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
            b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 595 842]/Contents 4 0 R/Resources<</Font<</F1 5 0 R>>>>>>"
            b"endobj\n4 0 obj<</Length " + str(len(stream)).encode() + b">>stream\n" + stream + b"\nendstream endobj\n"
            b"5 0 obj<</Type/Font/Subtype/Type1/BaseFont/Helvetica>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n")


def _hand_in(server: Server) -> None:
    when = datetime(2026, 11, 3, 12, tzinfo=timezone.utc)
    with atomic(open_gradebook(server.cfg.db_url)) as s:
        for sid in ("ef3", "xs4"):
            stored = Path("handins") / "tiny01" / f"{sid}-paper.pdf"
            scan = _scan(["Task 2 (derive)", "I = int_0^inf x e^{-x} dx", "= [-x e^{-x}]_0^inf + int_0^inf e^{-x} dx",
                          "boundary term vanishes", "= 1"])
            (server.cfg.data_dir / stored).write_bytes(scan)
            s.add(Handin(sheet="tiny01", student_id=sid, kind="paper", source="web", received_at=when,
                         status="accepted", original_name="scan.pdf", stored_path=str(stored), size=len(scan)))
    engine = open_gradebook(server.cfg.db_url)
    with Session(engine, expire_on_commit=False) as s:
        rows = list(s.execute(select(Handin).where(Handin.sheet == "tiny01", Handin.kind == "paper",
                                                  Handin.student_id.in_(("ef3", "xs4")))).scalars())
    for row in rows:  # rendered as an upload does at hand-in
        render_pages(server.cfg.data_dir, engine, row)


def test_a_tutor_grades_one_task_for_the_group_with_the_keyboard_only(browser: Any, server: Server) -> None:
    from playwright.sync_api import expect

    _hand_in(server)
    engine, manifest = open_gradebook(server.cfg.db_url), server.cfg.manifest("tiny01")
    order = sorted(STUDENTS, key=lambda s: shuffle_key("tiny01", "derive", s))
    page = open_as(browser, server, "tutor1")
    page.goto(f"{server.base}/tutor")
    page.get_by_role("link", name="derive").first.click()  # the tutor's home links the page
    expect(page.locator("h1")).to_contain_text("tiny01, derive: Derivation")
    expect(page.locator("#left-count")).to_have_text("3")
    expect(page.locator("#who")).to_contain_text(f"({order[0]})")
    kb = page.keyboard
    kb.press("1")  # "Sets up the integral", 1.5
    expect(page.locator("#total")).to_have_text("1.5")
    expect(page.locator("#page-images img")).to_have_count(1)  # the task's page as an image, no PDF viewer
    expect(page.locator("#pdf")).to_be_hidden()
    wait_in_page(page, "() => document.querySelector('#page-images img').naturalWidth > 0")
    page.screenshot(path=str(server.shots / "tutor-grade-by-task.png"), full_page=True)
    kb.press("p")  # the whole PDF instead, and back
    expect(page.locator("#pdf")).to_be_visible()
    expect(page.locator("#page-images")).to_be_hidden()
    kb.press("p")
    expect(page.locator("#page-images img")).to_have_count(1)
    kb.press("Enter")
    expect(page.locator("#left-count")).to_have_text("2")
    expect(page.locator("#who")).to_contain_text(f"({order[1]})")
    kb.press("1")
    kb.press("2")
    kb.press("a")  # the adjustment: a half point off
    kb.type("-0,5")
    kb.press("Escape")
    kb.press("c")
    kb.type("Mind the boundary term.")
    kb.press("Control+Enter")
    expect(page.locator("#left-count")).to_have_text("1")
    expect(page.locator("#who")).to_contain_text(f"({order[2]})")
    # meanwhile the admin grades the last one: Enter meets the conflict, a second Enter saves over it
    save_cell(engine, manifest, order[2], "derive", value="1", author="boss")
    kb.press("2")
    kb.press("Enter")
    expect(page.locator("#conflict")).to_be_visible()
    expect(page.locator("#conflict-text")).to_contain_text("changed meanwhile by Bea Boss")
    kb.press("Enter")
    expect(page.locator("#left-count")).to_have_text("0")
    expect(page.locator("#status")).to_contain_text("All graded")
    got = {sid: student_paper(engine, manifest, sid)["derive"] for sid in STUDENTS}
    assert (got[order[0]].points, got[order[0]].ticks) == (Fraction(3, 2), ("setup",))
    assert (got[order[1]].points, got[order[1]].ticks, got[order[1]].adjustment, got[order[1]].comment) == (
        Fraction(7, 2), ("setup", "result"), Fraction(-1, 2), "Mind the boundary term.")
    assert (got[order[2]].points, got[order[2]].ticks, got[order[2]].entered_by) == (Fraction(5, 2), ("result",), "tutor1")
    for _ in range(3):  # walking on with the arrows: the hostile roster name stays text
        if "xs4" in (page.locator("#who").text_content() or ""):
            break
        kb.press("ArrowRight")
    expect(page.locator("#who")).to_contain_text("<img src=x onerror=alert(1)>")
    page.context.close()


def test_the_admins_rubric_page(browser: Any, server: Server) -> None:
    from playwright.sync_api import expect

    page = open_as(browser, server, "boss")
    page.goto(f"{server.base}/admin/rubric/tiny01")
    expect(page.locator("#task-derive")).to_be_visible()
    page.screenshot(path=str(server.shots / "admin-rubric.png"), full_page=True)
    page.context.close()
