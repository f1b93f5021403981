"""Logging in through the JupyterHub in a real browser (Playwright, Debian's chromium): a student logs in to
the Hub, opens mlph from the Hub's services menu, logs in with the Hub (OAuth) and sees their own dashboard,
not another's; a Hub user outside the course gets the "not in this course" page and no account."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from gradebook.store.db import open_gradebook
from gradebook.store.models import Account, WebSession
from hubcourse import HubCourse

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (scripts/bootstrap.sh installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield b
        b.close()


def _hub_login(page: Any, hc: HubCourse, user: str) -> None:
    from hubcourse import harness

    page.goto(f"{hc.hub.url}/hub/login?next=/hub/home")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", harness.PASSWORD)
    page.click("input[type=submit], button[type=submit]")
    page.wait_for_url("**/hub/home**")


def _through_oauth(page: Any) -> None:
    """Click "Log in with the course's JupyterHub": the Hub confirms the login without a consent page
    (`oauth_no_confirm` in the printed service) and sends the browser back."""
    page.click("text=Log in with the course's JupyterHub")
    page.wait_for_load_state()
    assert "/hub/api/oauth2/authorize" not in page.url


def test_student_logs_in_through_the_hub_and_sees_their_own_dashboard(hc: HubCourse, browser: Any,
                                                                      tmp_path: Path) -> None:
    context = browser.new_context()
    page = context.new_page()
    _hub_login(page, hc, "alice")
    link = page.get_attribute('a[href$="/services/mlph/"]', "href")  # the Hub's services menu
    assert link is not None
    page.goto(f"{hc.hub.url}{link}")
    page.wait_for_url("**/services/mlph/login**")
    assert page.locator("text=Log in with the course's JupyterHub").count() == 1
    assert page.locator("input[name=password]").count() == 1  # the local passwords are still offered
    _through_oauth(page)
    page.wait_for_url("**/services/mlph/students/ab1")
    page.screenshot(path=str(tmp_path / "hub-dashboard.png"), full_page=True)
    body = page.inner_text("body")
    assert "ab1" in body and "tiny01" in body and "Anna" in body
    other = page.goto(f"{hc.hub.url}/services/mlph/students/cd2")
    assert other is not None and other.status == 403
    with Session(open_gradebook(hc.cfg.db_url)) as session:
        account = session.execute(select(Account).where(Account.subject_id == "ab1")).scalar_one()
        assert account.password_hash is None  # made on the Hub login, opened only by the Hub
        assert session.execute(select(WebSession).where(WebSession.account_id == account.id)).first() is not None
    context.close()


def test_hub_user_outside_the_course_gets_no_account(hc: HubCourse, browser: Any) -> None:
    context = browser.new_context()
    page = context.new_page()
    _hub_login(page, hc, "mallory")
    page.goto(f"{hc.hub.url}/services/mlph/login")
    _through_oauth(page)
    assert "Not in this course" in page.inner_text("body")
    assert "mallory is not a student or a member of the course team" in page.inner_text("body")
    with Session(open_gradebook(hc.cfg.db_url)) as session:
        assert session.execute(select(Account).where(Account.username == "mallory")).first() is None
    dashboard = page.goto(f"{hc.hub.url}/services/mlph/students/ab1")
    assert dashboard is not None and "/services/mlph/login" in page.url  # still logged out of mlph
    context.close()
