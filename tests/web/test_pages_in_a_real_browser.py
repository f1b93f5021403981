"""The web application in a real browser: Playwright for Python driving Debian's /usr/bin/chromium
against the real app, served by uvicorn on 127.0.0.1 (a free port) over a course built in tmp.

Screenshots of the tutor grid, the student dashboard and sheet page and the admin overview go to ``docs/screenshots/``
when ``MLPH_WRITE_SCREENSHOTS=1`` (the only files these tests may write into the repository), else to tmp.
Every page is watched for dialogs (an ``alert`` that ran) and for console errors (a CSP violation:
something tried to run an inline script)."""
from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from coursefactory import REPO, RUBRIC_TASK, make_course
from gb_helpers import autograded
from gradebook.course.config import CourseConfig, load_config
from gradebook.store.db import atomic, open_gradebook
from gradebook.people.groups import add_staff, assign_students, import_groups
from gradebook.store.models import Handin
from gradebook.people.roster import import_students
from browser_wait import wait_in_page

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"),
              pytest.mark.timeout(120)]
HOSTILE = "<img src=x onerror=alert(1)>"
# the smallest PDF a browser opens: one empty page
PDF = (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj 2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj "
       b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n")


@dataclass
class Server:
    base: str
    cfg: CourseConfig
    env: dict[str, str]
    shots: Path
    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _course(tmp: Path) -> CourseConfig:
    """tiny01 (paper tasks proof, max 3, and derive, max 4 with a rubric) and tiny02; groups g1 (tutor1:
    ab1, ef3 and a student whose roster name is markup) and g2 (tutor2: cd2); admin boss."""
    from autograder.nbgrader_bridge import generate

    root = make_course(tmp / "course", tiny=("tiny01", "tiny02", "tiny03", "tiny04"))
    manifest = root / "source" / "tiny01" / "sheet.toml"
    manifest.write_text(manifest.read_text() + RUBRIC_TASK)
    per_day = root / "source" / "tiny04" / "sheet.toml"  # a week earlier; -10 % per started day, nothing after 3 days
    per_day.write_text(per_day.read_text().replace('policy = "zero"', 'policy = "per_day"\nper_day = "10%"\ncutoff_days = 3')
                       .replace('due = "2026-11-04T10:00:00"', 'due = "2026-10-28T10:00:00"'))
    later = root / "source" / "tiny03" / "sheet.toml"  # open for hand-in for a while yet
    later.write_text(later.read_text().replace('due = "2026-11-04T10:00:00"', 'due = "2099-01-15T10:00:00"'))
    data = tmp / "data"
    cfg = dataclasses.replace(load_config(root), data_dir=data, db_url=f"sqlite:///{data / 'gradebook.db'}")
    for sheet in ("tiny01", "tiny02", "tiny03", "tiny04"):
        generate(cfg, sheet)
    engine = open_gradebook(cfg.db_url)
    (tmp / "roster.csv").write_text("student_id,last_name,first_name,email,matriculation\n"
                                    "ab1,Müller,Anna,ab1@uni.de,3700001\ncd2,García,Carlos,cd2@uni.de,3700002\n"
                                    "ef3,O'Brien,Eve,ef3@uni.de,3700003\n"
                                    f'xs4,"{HOSTILE}",<script>alert(2)</script>,xs4@uni.de,3700004\n')
    import_students(engine, tmp / "roster.csv")
    (tmp / "groups.csv").write_text("group,name,tutor_id,tutor_name\ng1,Monday 10:00,tutor1,Tina Tutor\n"
                                    "g2,Tuesday 14:00,tutor2,Tom Tutor\n")
    (tmp / "members.csv").write_text("student_id,group\nab1,g1\ncd2,g2\nef3,g1\nxs4,g1\n")
    import_groups(engine, tmp / "groups.csv")
    assign_students(engine, tmp / "members.csv", "admin")
    add_staff(engine, "boss", "Bea Boss", None, "admin", "test")
    when = datetime(2026, 11, 3, 12, tzinfo=timezone.utc)
    autograded(cfg, "tiny01", "ab1", Fraction(1), Fraction(3, 2), when)
    autograded(cfg, "tiny01", "ef3", Fraction(1), Fraction(2), when)
    stored = Path("handins") / "tiny01" / "ab1-paper.pdf"
    (data / stored).parent.mkdir(parents=True, exist_ok=True)
    (data / stored).write_bytes(PDF)
    with atomic(engine) as s:
        s.add(Handin(sheet="tiny01", student_id="ab1", kind="paper", source="web", received_at=when, status="accepted",
                     original_name="tiny01-scan.pdf", stored_path=str(stored), size=len(PDF), uploaded_by="ab1"))
    _late_work(cfg, engine, tmp)
    return cfg


def _late_work(cfg: CourseConfig, engine: Any, tmp: Path) -> None:
    """ab1 on tiny04 (per-day rule): the notebook 1 d 3 h late (80 % counts), the PDF 3 h late (90 %)."""
    from gradebook.points.handins import decide_late, store_decision
    from gradebook.points.paper import import_points
    from gradebook.store.models import AutogradeResult

    autograded(cfg, "tiny04", "ab1", Fraction(1), Fraction(2), datetime(2026, 10, 29, 12, tzinfo=timezone.utc))
    with atomic(engine) as s:
        row = s.query(AutogradeResult).filter_by(sheet="tiny04", student_id="ab1").one()
        store_decision(row, decide_late(row.submitted_at, cfg.manifest("tiny04"), None, "g1"), cfg.timezone)
        s.add(Handin(sheet="tiny04", student_id="ab1", kind="paper", source="web", status="accepted",
                     received_at=datetime(2026, 10, 28, 12, tzinfo=timezone.utc), original_name="tiny04-scan.pdf"))
    (tmp / "tiny04-points.csv").write_text("student_id,task,points\nab1,proof,2.5\n")
    import_points(engine, cfg.manifest("tiny04"), tmp / "tiny04-points.csv", "tutor1")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("web")
    cfg = _course(tmp)
    env = {**os.environ, "MLPH_ROOT": str(cfg.root), "MLPH_COURSE_DIR": str(cfg.data_dir), "MLPH_DB_URL": cfg.db_url}
    port = _free_port()
    log = (tmp / "uvicorn.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "web.app:app_from_env", "--factory", "--host",
                             "127.0.0.1", "--port", str(port)], env=env, cwd=cfg.root, stdout=log,
                            stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 40
    while True:
        try:
            urllib.request.urlopen(f"{base}/login", timeout=2).read()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"uvicorn did not start: {(tmp / 'uvicorn.log').read_text()[-2000:]}")
            time.sleep(0.2)
    write = os.environ.get("MLPH_WRITE_SCREENSHOTS") == "1"
    shots = REPO / "docs" / "screenshots" if write else tmp / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    try:
        yield Server(base, cfg, env, shots)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield b
        b.close()


def _session(server: Server, who: str) -> str:
    from web.testing import session_for

    return session_for(open_gradebook(server.cfg.db_url), who)[0]


def open_as(browser: Any, server: Server, who: str) -> Any:
    """A page whose context holds a live session of ``who``; dialogs and console errors are recorded."""
    from web.security import SESSION_COOKIE

    context = browser.new_context(viewport={"width": 1400, "height": 860}, accept_downloads=True)
    context.add_cookies([{"name": SESSION_COOKIE, "value": _session(server, who), "url": server.base}])
    page = context.new_page()

    def dialog(d: Any) -> None:
        server.dialogs.append(f"{who}: {d.message}")
        d.dismiss()

    page.on("dialog", dialog)
    def console(m: Any) -> None:
        if m.type == "error" and not m.text.startswith("Failed to load resource"):  # those: see response()
            server.errors.append(f"{who}: {m.text}")

    def response(r: Any) -> None:
        if r.status >= 400 and not r.url.endswith("/favicon.ico") and r.request.resource_type != "fetch":
            server.errors.append(f"{who}: {r.status} for {r.url}")

    page.on("console", console)
    page.on("response", response)
    page.on("pageerror", lambda e: server.errors.append(f"{who}: {e}"))
    return page


@pytest.fixture(autouse=True)
def inert(server: Server) -> Iterator[None]:
    """No test may see a dialog or a console error (an injected script that ran, or one the CSP blocked)."""
    server.dialogs.clear()
    server.errors.clear()
    yield
    assert server.dialogs == [] and server.errors == []


def cell(page: Any, student: str, task: str) -> Any:
    return page.locator(f'input.pts[data-student="{student}"][data-task="{task}"]')


def test_tutor_enters_a_groups_points_with_the_keyboard_only(browser: Any, server: Server) -> None:
    from playwright.sync_api import expect

    from gradebook.points.grid_read import grid

    page = open_as(browser, server, "tutor1")
    page.goto(f"{server.base}/tutor/tiny01/g1")
    order = page.locator("#grid tbody tr").evaluate_all("rows => rows.map(r => r.dataset.student)")
    assert order == ["xs4", "ab1", "ef3"]  # roster order: "<img…" sorts before "Müller" and "O'Brien"
    expect(cell(page, "xs4", "proof")).to_be_focused()  # the first empty cell
    kb = page.keyboard
    for text in ("2,5", "1", "3"):  # down the proof column; Enter at the bottom goes on to the next column
        kb.type(text)
        kb.press("Enter")
    expect(cell(page, "xs4", "derive")).to_be_focused()
    kb.type("9")
    expect(page.locator("#status")).to_contain_text("9 is outside 0..4: above the task's maximum of 4")
    expect(cell(page, "xs4", "derive")).to_have_attribute("aria-invalid", "true")
    kb.press("Backspace")
    kb.type("3.5")
    expect(cell(page, "xs4", "derive")).to_have_attribute("aria-invalid", "false")
    kb.press("Enter")
    kb.type("4")
    kb.press("ArrowDown")
    kb.type("0")
    kb.press("ArrowUp")  # leaving the cell saves it
    kb.press("ArrowLeft")
    expect(cell(page, "ab1", "proof")).to_be_focused()
    expect(page.locator("#empty-count")).to_have_text("0")
    wait_in_page(page, "() => !document.querySelector('input.pts.saving')")
    page.locator("tr[data-student='ab1'] button.pick").click()
    wait_in_page(page, "() => !document.querySelector('.saved')")  # the green flash of the last save is over
    page.wait_for_timeout(500)  # and its fading
    page.screenshot(path=str(server.shots / "tutor-grid.png"), full_page=True)
    page.reload()
    want = {("xs4", "proof"): "2.5", ("ab1", "proof"): "1", ("ef3", "proof"): "3",
            ("xs4", "derive"): "3.5", ("ab1", "derive"): "4", ("ef3", "derive"): "0"}
    for (student, task), value in want.items():
        expect(cell(page, student, task)).to_have_value(value)
    g = grid(open_gradebook(server.cfg.db_url), server.cfg, "tiny01", "g1")
    assert {k: str(c.points) for k, c in g.cells.items()} == {k: str(Fraction(v)) for k, v in want.items()}
    assert {c.entered_by for c in g.cells.values()} == {"tutor1"} and g.empty == 0
    page.context.close()


def test_a_second_tutors_stale_save_shows_the_conflict(browser: Any, server: Server) -> None:
    from playwright.sync_api import expect

    tina, bea = open_as(browser, server, "tutor1"), open_as(browser, server, "boss")
    for page in (tina, bea):
        page.goto(f"{server.base}/tutor/tiny02/g1")
    cell(tina, "ab1", "proof").fill("2")
    cell(tina, "ab1", "proof").press("Tab")
    expect(cell(tina, "ab1", "proof")).to_have_attribute("data-version", "1")
    cell(bea, "ab1", "proof").fill("1,5")  # Bea's page still shows the empty cell, version 0
    cell(bea, "ab1", "proof").press("Tab")
    box = bea.locator("#conflict")
    expect(box).to_be_visible()
    expect(box).to_contain_text("changed meanwhile by Tina Tutor at ")
    expect(box).to_contain_text(" to 2 (version 1, you edited version 0)")
    bea.get_by_role("button", name="Keep their value").click()
    expect(cell(bea, "ab1", "proof")).to_have_value("2")
    expect(box).to_be_hidden()
    for page in (tina, bea):
        page.context.close()


def test_closing_the_tab_saves_the_cell_being_typed_in(browser: Any, server: Server) -> None:
    """The cell still has the focus (it was never left) when the tab closes: pagehide saves it (keepalive)."""
    from playwright.sync_api import expect

    from gradebook.points.grid import cell_state

    page = open_as(browser, server, "tutor1")
    page.goto(f"{server.base}/tutor/tiny02/g1")
    cell(page, "ef3", "proof").click()
    page.keyboard.type("1,5")
    expect(cell(page, "ef3", "proof")).to_be_focused()
    page.close()
    engine, manifest = open_gradebook(server.cfg.db_url), server.cfg.manifest("tiny02")
    deadline = time.monotonic() + 10
    while cell_state(engine, manifest, "ef3", "proof").points is None and time.monotonic() < deadline:
        time.sleep(0.1)
    state = cell_state(engine, manifest, "ef3", "proof")
    assert (state.points, state.entered_by) == (Fraction(3, 2), "tutor1")
    page.context.close()


def test_rubric_ticks_and_comments_save_from_the_side_panel(browser: Any, server: Server) -> None:
    from playwright.sync_api import expect

    from gradebook.points.grid import student_paper

    page = open_as(browser, server, "tutor1")
    page.goto(f"{server.base}/tutor/tiny01/g1")
    cell(page, "ef3", "derive").click()
    panel = page.locator('.student-panel[data-student="ef3"]')
    expect(panel).to_be_visible()
    panel.get_by_label("Sets up the integral").check()
    expect(cell(page, "ef3", "derive")).to_have_value("1.5")
    panel.get_by_label("Correct result").check()
    expect(cell(page, "ef3", "derive")).to_have_value("4")
    note = panel.locator('textarea.comment[data-task="derive"]')
    note.fill("Clean derivation.")
    cell(page, "ef3", "proof").click()
    expect(note).to_have_attribute("data-version", "1")
    state = student_paper(open_gradebook(server.cfg.db_url), server.cfg.manifest("tiny01"), "ef3")["derive"]
    assert (state.points, state.ticks, state.comment) == (Fraction(4), ("setup", "result"), "Clean derivation.")
    page.context.close()


def test_rubric_ticks_with_the_keyboard_only(browser: Any, server: Server) -> None:
    """Ctrl+Enter in a cell goes to its rubric in the side panel, Space ticks an item (the points follow),
    Tab reaches the next item, Esc goes back to the cell; the tutor's home leads with the sheet to grade."""
    from playwright.sync_api import expect

    from gradebook.points.grid import student_paper

    page = open_as(browser, server, "tutor2")
    page.goto(f"{server.base}/tutor")
    expect(page.locator("#grade-now")).to_contain_text("Grade now: tiny02")  # tiny03 is not yet due
    page.screenshot(path=str(server.shots / "tutor-home.png"), full_page=True)
    page.goto(f"{server.base}/tutor/tiny01/g2")
    kb = page.keyboard
    expect(cell(page, "cd2", "proof")).to_be_focused()
    kb.press("Tab")
    expect(cell(page, "cd2", "derive")).to_be_focused()
    kb.press("Control+Enter")
    panel = page.locator('.student-panel[data-student="cd2"]')
    first = panel.get_by_label("Sets up the integral")
    expect(first).to_be_focused()
    kb.press("Space")
    expect(cell(page, "cd2", "derive")).to_have_value("1.5")
    kb.press("Tab")
    expect(panel.get_by_label("Correct result")).to_be_focused()
    kb.press("Space")
    expect(cell(page, "cd2", "derive")).to_have_value("4")
    kb.press("Escape")
    expect(cell(page, "cd2", "derive")).to_be_focused()
    wait_in_page(page, "() => !document.querySelector('input.pts.saving')")
    state = student_paper(open_gradebook(server.cfg.db_url), server.cfg.manifest("tiny01"), "cd2")["derive"]
    assert (state.points, state.ticks) == (Fraction(4), ("setup", "result"))
    page.context.close()


def test_admin_audit_shows_points_as_decimals(browser: Any, server: Server) -> None:
    """After the tutors' saves above: the audit page reads "1.5", never the stored "3/2", in the course's time."""
    from playwright.sync_api import expect

    page = open_as(browser, server, "boss")
    page.goto(f"{server.base}/admin/audit?student=cd2")
    row = page.locator("tr", has_text="tiny01/derive/cd2").first
    expect(row).to_contain_text("1.5")
    expect(row).to_contain_text("CET")
    assert "3/2" not in page.locator("table").inner_text()
    page.screenshot(path=str(server.shots / "admin-audit.png"), full_page=True)
    page.context.close()


def test_admin_downloads_the_xlsx_equal_to_the_cli(browser: Any, server: Server, tmp_path: Path) -> None:
    from openpyxl import load_workbook

    page = open_as(browser, server, "boss")
    page.goto(f"{server.base}/admin")
    page.screenshot(path=str(server.shots / "admin-overview.png"), full_page=True)
    page.goto(f"{server.base}/admin/admission")
    with page.expect_download() as download:
        page.get_by_role("link", name="XLSX").click()
    web_file = tmp_path / "web.xlsx"
    download.value.save_as(web_file)
    cli_file = tmp_path / "cli.xlsx"
    cli = subprocess.run([str(Path(sys.executable).parent / "mlph"), "admission", "--xlsx", str(cli_file)],
                         env=server.env, cwd=server.cfg.root, capture_output=True, text=True)
    assert cli.returncode == 0, cli.stdout + cli.stderr

    def values(path: Path) -> dict[str, list[tuple[Any, ...]]]:
        wb = load_workbook(path, read_only=True)
        return {ws.title: list(ws.iter_rows(values_only=True)) for ws in wb.worksheets}

    got, want = values(web_file), values(cli_file)
    assert got == want and any(HOSTILE in str(row) for rows in got.values() for row in rows)
    page.context.close()


def test_markup_in_roster_names_is_inert_everywhere(browser: Any, server: Server) -> None:
    from playwright.sync_api import expect

    pages = [(open_as(browser, server, "tutor1"), ["/tutor", "/tutor/tiny01/g1"]),
             (open_as(browser, server, "boss"), ["/admin", "/admin/students", "/admin/admission", "/admin/groups"]),
             (open_as(browser, server, "xs4"), ["/students/xs4", "/students/xs4/sheets/tiny01"])]
    for page, paths in pages:
        for path in paths:
            page.goto(server.base + path)
            assert page.locator('img[src="x"]').count() == 0, path
            assert page.evaluate("() => document.querySelectorAll('[onerror]').length") == 0, path
            if path not in ("/tutor", "/admin", "/admin/groups"):  # the pages that name the student
                expect(page.get_by_text(HOSTILE).first, path).to_be_visible()
        page.context.close()


def test_student_dashboard_shows_points(browser: Any, server: Server) -> None:
    from playwright.sync_api import expect

    page = open_as(browser, server, "ab1")
    page.goto(f"{server.base}/students/ab1")
    expect(page.get_by_text("tiny01").first).to_be_visible()
    page.screenshot(path=str(server.shots / "student-dashboard.png"), full_page=True)
    page.context.close()


def test_student_reads_what_late_work_counts_per_part(browser: Any, server: Server) -> None:
    """The sheet page's "What counts": one line per part with earned, counted and the rule; past the cut-off the
    hand-in form is closed and says why; the dashboard shows the same counted points."""
    from playwright.sync_api import expect

    page = open_as(browser, server, "ab1")
    page.goto(f"{server.base}/students/ab1/sheets/tiny04")
    parts = page.locator("table.parts tbody tr")
    expect(parts.nth(0)).to_contain_text("notebook")
    expect(parts.nth(0)).to_contain_text("2.4")
    expect(parts.nth(0)).to_contain_text("2 started day(s) late at -10% each: counts 80% of its points")
    expect(parts.nth(1)).to_contain_text("2.25")
    expect(parts.nth(1)).to_contain_text("PDF late by 3 h 00 min")
    expect(parts.nth(2)).to_contain_text("4.65")
    expect(page.get_by_text("tiny04 takes no more hand-ins")).to_be_visible()
    assert page.locator('form[action$="/handin"]').count() == 0
    page.screenshot(path=str(server.shots / "student-sheet-late.png"), full_page=True)
    page.goto(f"{server.base}/students/ab1")
    row = page.locator("table.sheets tbody tr", has_text="tiny04")
    expect(row).to_contain_text("counts 2.4")
    expect(row).to_contain_text("counts 2.25")
    page.context.close()


def _submission(cfg: CourseConfig, path: Path) -> Path:
    """tiny03's released notebook, answered correctly, with a markdown cell that tries to run a script."""
    import nbformat
    from nbformat.v4 import new_markdown_cell

    nb = nbformat.read(cfg.release_dir / "tiny03" / "tiny03.ipynb", as_version=4)
    for c in nb.cells:
        if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "scale_solution":
            c.source = "def scale(x, a):\n    return a * np.asarray(x, dtype=float)\n"
    nb.cells.append(new_markdown_cell('My notes <script>alert("nb")</script><img src=x onerror=alert(4)>'))
    nbformat.write(nb, path)
    return path


def test_student_hands_in_and_sees_the_points_appear(browser: Any, server: Server, tmp_path: Path) -> None:
    """Through the sheet page and the intake; graded by `mlph autograde` (what `--watch` does on submit);
    the points appear on the open page without a reload; the tutor's grid shows the PDF."""
    from playwright.sync_api import expect

    pytest.importorskip("autograder.intake.upload", reason="needs the intake (autograder.intake.upload)")
    page = open_as(browser, server, "ab1")
    page.goto(f"{server.base}/students/ab1/sheets/tiny03")
    (tmp_path / "scan.pdf").write_bytes(PDF)
    for kind, file in (("paper", tmp_path / "scan.pdf"), ("notebook", _submission(server.cfg, tmp_path / "tiny03.ipynb"))):
        page.goto(f"{server.base}/students/ab1/sheets/tiny03")  # (a PDF's upload lands on its pages)
        form = page.locator(f'form:has(input[name="kind"][value="{kind}"])')
        form.locator('input[type="file"]').set_input_files(str(file))
        form.locator('button[type="submit"]').click()
        expect(page.locator(".flash.ok")).to_contain_text(f"Your {kind} was received")
    expect(page.locator("#grading")).to_contain_text("your hand-in is safe and will be graded when it starts")
    page.screenshot(path=str(server.shots / "student-sheet-grading-not-running.png"), full_page=True)
    graded = subprocess.run([str(Path(sys.executable).parent / "mlph"), "autograde", "tiny03", "--workers", "1"],
                            env=server.env, cwd=server.cfg.root, capture_output=True, text=True, timeout=150)
    assert graded.returncode == 0, graded.stdout[-2000:] + graded.stderr[-2000:]
    # polled, no reload; before the deadline the visible checks only (no points a hidden test could change)
    expect(page.locator("#grading")).to_contain_text("Visible checks: 2 of 2 tests pass", timeout=15000)
    page.screenshot(path=str(server.shots / "student-sheet.png"), full_page=True)
    assert page.locator('img[src="x"]').count() == 0
    tutor = open_as(browser, server, "tutor1")
    tutor.goto(f"{server.base}/tutor/tiny03/g1")
    flag = tutor.locator('tr[data-student="ab1"] a.pdf-flag')
    expect(flag).to_have_text("PDF")
    pdf = tutor.request.get(server.base + (flag.get_attribute("href") or ""))
    assert pdf.ok and pdf.body() == PDF and pdf.headers["content-type"] == "application/pdf"
    for p in (page, tutor):
        p.context.close()
