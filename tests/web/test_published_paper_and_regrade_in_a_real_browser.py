"""In a real browser (Playwright + Debian's chromium, the app under uvicorn): a student reads "paper: being
graded" until an admin publishes the sheet with the overview's button, then the rubric items as got / not got;
they ask for a regrade of one task, a second tutor answers it from their home page, and the student reads the
answer and the new points; the grading tutor's grid marks the cell "regrade pending" until then. Screenshots (with ``MLPH_WRITE_SCREENSHOTS=1``) go to ``docs/screenshots/``."""
from __future__ import annotations

from typing import Any

import pytest

from gradebook.points.grid import save_cell
from gradebook.store.db import open_gradebook
from test_pages_in_a_real_browser import CHROMIUM, Server, browser, inert, open_as, server  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"),
              pytest.mark.timeout(180)]


def test_student_reads_published_rubric_items_and_a_regrade_answer(browser: Any, server: Server) -> None:
    from playwright.sync_api import expect

    engine, manifest = open_gradebook(server.cfg.db_url), server.cfg.manifest("tiny01")
    save_cell(engine, manifest, "ab1", "proof", value="2", comment="Step 3 is missing.", author="tutor1")
    save_cell(engine, manifest, "ab1", "derive", ticks=["setup"], comment="The result is off by a sign.",
              author="tutor1")

    student = open_as(browser, server, "ab1")
    student.goto(f"{server.base}/students/ab1/sheets/tiny01")
    expect(student.locator("p.flash[role=status]")).to_contain_text("Paper: being graded")
    assert student.locator("ul.rubric").count() == 0 and "Step 3 is missing" not in student.content()
    student.screenshot(path=str(server.shots / "student-sheet-paper-being-graded.png"), full_page=True)

    admin = open_as(browser, server, "boss")
    admin.goto(f"{server.base}/admin#paper-publishing")
    row = admin.locator("#paper-publishing + table tr", has_text="tiny01")
    expect(row).to_contain_text("not yet")
    row.get_by_role("button", name="publish now").click()
    expect(admin.locator("#paper-publishing + p.flash")).to_contain_text("tiny01: paper points published")
    expect(admin.locator("#paper-publishing ~ table tr", has_text="tiny01")).to_contain_text("published")
    admin.locator("#paper-publishing").scroll_into_view_if_needed()
    admin.screenshot(path=str(server.shots / "admin-paper-publishing.png"), full_page=True)

    student.reload()
    derive = student.locator("tr", has_text="Derivation")
    expect(derive.locator("li", has_text="Sets up the integral")).to_contain_text("✔")
    expect(derive.locator("li", has_text="Correct result")).to_contain_text("✘")
    expect(derive).to_contain_text("1.5 / 4")
    derive.get_by_text("Ask for a regrade of derive").click()
    derive.get_by_label("Why should it be graded again?").fill("The sign cancels in step 3: the result is right.")
    derive.get_by_role("button", name="Ask for a regrade").click()
    expect(student.locator("p.flash.ok")).to_contain_text("Your regrade request was recorded")
    expect(derive).to_contain_text("waiting for an answer")

    grader = open_as(browser, server, "tutor1")  # the group's tutor sees the request in the grid, on that cell only
    grader.goto(f"{server.base}/tutor/tiny01/g1")
    row = grader.locator("tr", has=grader.locator("td.cell.regrade"))
    expect(row.locator("td.cell.regrade .regrade-flag")).to_have_text("regrade pending")
    assert grader.locator("td.cell.regrade").count() == 1 and row.count() == 1
    row.locator("td.cell.regrade").scroll_into_view_if_needed()
    grader.screenshot(path=str(server.shots / "tutor-grid-regrade-pending.png"), full_page=True)

    tutor = open_as(browser, server, "tutor2")  # tutor1 graded it: the second tutor answers
    tutor.goto(f"{server.base}/tutor")
    tutor.get_by_role("link", name="tiny01 / derive, ab1").click()
    expect(tutor.locator("h1")).to_contain_text("tiny01 / Derivation")
    tutor.get_by_label("Answer to the student").fill("Right: the sign cancels in step 3. Full points.")
    tutor.get_by_label("set the points from these rubric items").check()
    tutor.get_by_label("Correct result").check()
    tutor.screenshot(path=str(server.shots / "tutor-regrade-answer.png"), full_page=True)
    tutor.get_by_role("button", name="Answer").click()
    expect(tutor.locator("p.flash.ok")).to_contain_text("Answered")

    student.reload()
    derive = student.locator("tr", has_text="Derivation")
    expect(derive).to_contain_text("Right: the sign cancels in step 3. Full points.")
    expect(derive).to_contain_text("Points changed from 1.5 to 4.")
    expect(derive).to_contain_text("4 / 4")
    expect(derive.locator("li", has_text="Correct result")).to_contain_text("✔")
    derive.scroll_into_view_if_needed()
    student.screenshot(path=str(server.shots / "student-sheet-regrade-answered.png"), full_page=True)
    grader.reload()  # answered: the mark is gone
    expect(grader.locator("td.cell.regrade")).to_have_count(0)
    for page in (student, admin, tutor, grader):
        page.context.close()
