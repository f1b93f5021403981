"""The admins' mail page sends an announcement to a tutorial group through the course's outbox (a real SMTP
server on 127.0.0.1), lists what did not arrive, and shows the outbox's record with every text escaped."""
from __future__ import annotations

import dataclasses

from sqlalchemy import update

from gradebook.course.mail_settings import MailSettings
from gradebook.store import nbgrader_tables as nt
from gradebook.store.db import atomic, open_gradebook
from smtpserver import smtp_server
from web.app import create_app
from web.testing import logged_in, setup_web_course


def test_an_admin_announces_to_a_group_and_sees_who_was_not_reached(gradebook_course):
    setup_web_course(gradebook_course)
    engine = open_gradebook(gradebook_course.db_url)
    with atomic(engine) as session:  # a student-controlled name that would be markup on a page
        session.execute(update(nt.student).where(nt.student.c.id == "ef3").values(email="bounce-<b>ef3</b>@uni.de"))
    with smtp_server() as (server, port):
        cfg = dataclasses.replace(gradebook_course, mail=MailSettings(
            host="127.0.0.1", port=port, starttls=False, sender="Grading <grading@uni.de>",
            site_url="https://grading.example.org"))
        client = logged_in(create_app(cfg), "boss")
        page = client.get("/admin/mail")
        assert page.status_code == 200 and "Sent through 127.0.0.1:" in page.text
        assert '<option value="g1" >tutorial group g1 (Group 1)</option>' in page.text
        sent = client.post("/admin/mail/announce", data={"group": "g1", "subject": "No tutorial on Friday",
                                                         "body": "Enjoy the holiday.", "tutors": "true",
                                                         "csrf_token": client.csrf})
    assert sent.status_code == 200
    assert [r.rcpt_tos for r in server.received] == [["ab1@uni.de"]]  # ef3's address is broken, tutor1 has none
    assert server.received[0].message["Subject"] == "Test course: No tutorial on Friday"
    assert "1 message(s) sent, 2 failed" in sent.text
    assert ("ef3 &lt;bounce-&lt;b&gt;ef3&lt;/b&gt;@uni.de&gt;: &#39;bounce-&lt;b&gt;ef3&lt;/b&gt;@uni.de&#39; is not a mail "
            "address") in sent.text and "<b>ef3</b>" not in sent.text
    assert "tutor1 (no address): no e-mail address on the roster" in sent.text
    assert sent.text.count("announcement g1") == 3  # the record: every recipient with its result


def test_an_admin_tells_the_graded_students_once(gradebook_course):
    from datetime import datetime, timezone

    from gradebook.store.models import AutogradeResult

    engine = open_gradebook(gradebook_course.db_url)
    with atomic(engine) as session:
        session.add(AutogradeResult(sheet="tiny02", student_id="cd2", status="graded", fingerprint="f",
                                    graded_at=datetime.now(timezone.utc), score="1", max_score="3", result_json="{}"))
    setup_web_course(gradebook_course)
    with smtp_server() as (server, port):
        cfg = dataclasses.replace(gradebook_course, mail=MailSettings(
            host="127.0.0.1", port=port, starttls=False, sender="Grading <grading@uni.de>",
            site_url="https://grading.example.org"))
        client = logged_in(create_app(cfg), "boss")
        assert '<option>tiny02</option>' in client.get("/admin/mail").text
        first = client.post("/admin/mail/graded", data={"sheet": "tiny02", "part": "notebook", "csrf_token": client.csrf})
        second = client.post("/admin/mail/graded", data={"sheet": "tiny02", "part": "notebook", "csrf_token": client.csrf})
        wrong = client.post("/admin/mail/graded", data={"sheet": "tiny02", "part": "oral", "csrf_token": client.csrf})
    assert "1 message(s) sent, 0 failed" in first.text and "0 message(s) sent, 0 failed" in second.text
    assert [r.rcpt_tos for r in server.received] == [["cd2@uni.de"]]
    assert "https://grading.example.org/students/cd2/sheets/tiny02" in server.received[0].message.get_content()
    assert wrong.status_code == 400 and "part must be one of notebook, paper, not &#39;oral&#39;" in wrong.text
