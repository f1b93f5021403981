"""The admins' mail page in a real browser (Playwright, Debian's chromium) against the app served by uvicorn
on 127.0.0.1 with a real SMTP server (aiosmtpd): an announcement to a group typed into the form arrives, the
page lists who was not reached, and no script runs (a roster name with markup stays text). Screenshot
``admin-mail.png`` to ``docs/screenshots/`` with ``MLPH_WRITE_SCREENSHOTS=1``."""
from __future__ import annotations

import dataclasses
import os
import socket
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import update

from coursefactory import REPO
from gradebook.course.mail_settings import MailSettings
from gradebook.store import nbgrader_tables as nt
from gradebook.store.db import atomic, open_gradebook
from smtpserver import smtp_server
from web.testing import session_for, setup_web_course

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"),
              pytest.mark.timeout(120)]
HOSTILE = "<img src=x onerror=alert(1)>"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_an_admin_sends_an_announcement_from_the_mail_page(gradebook_course, tmp_path):
    import uvicorn
    from playwright.sync_api import sync_playwright

    from web.app import create_app
    from web.security import SESSION_COOKIE

    setup_web_course(gradebook_course)
    engine = open_gradebook(gradebook_course.db_url)
    with atomic(engine) as session:
        session.execute(update(nt.student).where(nt.student.c.id == "ef3").values(first_name=HOSTILE,
                                                                                  email="bounce-ef3@uni.de"))
    with smtp_server() as (relay, smtp_port):
        cfg = dataclasses.replace(gradebook_course, mail=MailSettings(
            host="127.0.0.1", port=smtp_port, starttls=False, sender="MLPH grading <grading@uni.de>",
            site_url="https://grading.example.org"))
        port = _free_port()
        server = uvicorn.Server(uvicorn.Config(create_app(cfg), host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
                context = browser.new_context(viewport={"width": 1400, "height": 900})
                base = f"http://127.0.0.1:{port}"
                context.add_cookies([{"name": SESSION_COOKIE, "value": session_for(engine, "boss")[0], "url": base}])
                page = context.new_page()
                dialogs: list[str] = []
                page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
                page.goto(f"{base}/admin/mail")
                page.select_option("select[name=group]", "g1")
                page.fill("input[name=subject]", "No tutorial on Friday")
                page.fill("textarea[name=body]", "The tutorial of Friday is cancelled; see you next week.")
                page.click("form[action='/admin/mail/announce'] button[type=submit]")
                page.wait_for_selector("p.flash.error")
                flash = page.inner_text("p.flash.error")
                failed = page.inner_text("div.card[role=alert]")
                shots = REPO / "docs" / "screenshots" if os.environ.get("MLPH_WRITE_SCREENSHOTS") == "1" else tmp_path
                page.screenshot(path=str(shots / "admin-mail.png"), full_page=True)
                browser.close()
        finally:
            server.should_exit = True
            thread.join(timeout=10)
    assert flash == "1 message(s) sent, 2 failed" and dialogs == []
    assert "ef3 <bounce-ef3@uni.de>: 550 5.1.1 no such mailbox here" in failed
    assert "tutor1 (no address): no e-mail address on the roster" in failed
    assert [r.rcpt_tos for r in relay.received] == [["ab1@uni.de"]]
    assert relay.received[0].message["Subject"] == "Test course: No tutorial on Friday"
