"""Mail goes through one outbox to a real SMTP server (aiosmtpd on 127.0.0.1): set-password links with an
expiring token and never a password, "your sheet was graded" once per student, regrade answers with the
student's text bounded and inert, announcements to a group; per-recipient failures; a dry run writes .eml files."""
from __future__ import annotations

import dataclasses
import email
import email.policy
from datetime import datetime, timezone

import pytest
from click.testing import CliRunner
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from autograder.cli import main
from gradebook.course.config import load_config
from gradebook.course.mail_settings import MailSettings
from gradebook.errors import ConfigError
from gradebook.mail.notify import Outbox, announce, regrade_answered, send_password_links, sheet_graded
from gradebook.people.accounts import link_account
from gradebook.store import nbgrader_tables as nt
from gradebook.store.db import atomic, open_gradebook
from gradebook.store.models import AutogradeResult, MailLog
from smtpserver import PASSWORD, USER, self_signed, smtp_server
from web.testing import ensure_account, setup_web_course

SITE = "https://grading.example.org"
STUDENT_PASSWORD = "Correct-Horse-Battery-9"


def _outbox(cfg, port, **mail):
    mail = {"starttls": False, **mail}
    settings = MailSettings(host="127.0.0.1", port=port, sender="MLPH Grading <grading@uni.de>", site_url=SITE,
                            timeout_s=10, **mail)
    cfg = dataclasses.replace(cfg, mail=settings)
    return Outbox(cfg, open_gradebook(cfg.db_url), "boss")


def _set_email(engine, student, address):
    with atomic(engine) as session:
        session.execute(update(nt.student).where(nt.student.c.id == student).values(email=address))


def test_set_password_links_arrive_over_starttls_with_a_token_never_a_password(gradebook_course, tmp_path, monkeypatch):
    cert, key = self_signed(tmp_path)
    monkeypatch.setenv("MLPH_TEST_RELAY_PW", PASSWORD)
    with smtp_server(tls=(cert, key), login=True) as (server, port):
        outbox = _outbox(gradebook_course, port, starttls=True, cafile=str(cert), user=USER,
                         password_env="MLPH_TEST_RELAY_PW")
        for sid in ("ab1", "cd2", "ef3"):
            ensure_account(outbox.engine, sid, STUDENT_PASSWORD if sid == "ab1" else None)
        _set_email(outbox.engine, "cd2", "bounce-cd2@uni.de")
        report = send_password_links(outbox, ["ab1", "cd2", "ef3"], hours=48)
    assert [(d.recipient, d.status) for d in report.deliveries] == [("ab1", "sent"), ("cd2", "failed"), ("ef3", "sent")]
    assert "550 5.1.1 no such mailbox here" in report.failed[0].error
    assert report.lines()[0] == "2 message(s) sent, 1 failed"
    assert server.logins == [USER]  # one login for the batch, over STARTTLS (the server requires it)
    assert [r.rcpt_tos for r in server.received] == [["ab1@uni.de"], ["ef3@uni.de"]]
    first = server.received[0].message
    assert first["To"] == "Anna Müller <ab1@uni.de>" and first["From"] == "MLPH Grading <grading@uni.de>"
    assert first["Subject"] == "Test course: set your password" and first["Auto-Submitted"] == "auto-generated"
    assert first["Message-ID"].endswith("@uni.de>") and first["Date"]
    body = first.get_content()
    token = body.split(f"{SITE}/password/")[1].split()[0]
    assert link_account(outbox.engine, token) == "ab1"  # the link works (once, until it expires)
    assert "expires 20" in body and ("CET" in body or "CEST" in body)
    for received in server.received:
        assert STUDENT_PASSWORD.encode() not in received.raw and PASSWORD.encode() not in received.raw
    with Session(outbox.engine) as session:
        log = session.execute(select(MailLog.recipient, MailLog.status).order_by(MailLog.id)).all()
    assert log == [("ab1", "sent"), ("cd2", "failed"), ("ef3", "sent")]


def test_a_regrade_answer_quotes_the_students_text_bounded_and_inert(gradebook_course):
    with smtp_server() as (server, port):
        outbox = _outbox(gradebook_course, port)
        with atomic(outbox.engine) as session:  # a name that tries to add a header
            session.execute(update(nt.student).where(nt.student.c.id == "ef3")
                            .values(first_name="Eve\r\nBcc: spy@evil.org", last_name="O'Brien"))
        request = "Please look again.\r\nBcc: spy@evil.org\r\n\u202egnp.exe " + "x" * 10_000
        report = regrade_answered(outbox, "ef3", "tiny01", "proof", request, "Your proof is complete: +1.",
                                  points_before="2", points_after="3")
    assert report.lines() == ["1 message(s) sent, 0 failed"]
    (received,) = server.received
    assert received.rcpt_tos == ["ef3@uni.de"]
    message = received.message
    assert message["Bcc"] is None and "\n" not in message["To"] and "Eve Bcc: spy@evil.org O'Brien" in message["To"]
    body = message.get_content()
    assert "> Please look again.\n> Bcc: spy@evil.org\n> gnp.exe xxx" in body and "\u202e" not in body
    assert "[… shortened]" in body and len(body) < 3_000
    assert "Points for proof: 2 before, 3 now." in body and f"{SITE}/students/ef3/sheets/tiny01" in body


def _graded(engine, sheet, students):
    now = datetime.now(timezone.utc)
    with atomic(engine) as session:
        for sid, status in students.items():
            session.add(AutogradeResult(sheet=sheet, student_id=sid, status=status, fingerprint="f", graded_at=now,
                                        score="3", max_score="3", result_json="{}"))


def test_graded_notices_go_once_and_announcements_to_a_group_through_the_command(gradebook_course, tmp_path,
                                                                                 monkeypatch):
    setup_web_course(gradebook_course)
    with smtp_server() as (server, port):
        (gradebook_course.root / "mlph.toml").write_text((gradebook_course.root / "mlph.toml").read_text() + (
            f'\n[mail]\nhost = "127.0.0.1"\nport = {port}\nstarttls = false\nfrom = "Grading <grading@uni.de>"\n'
            f'site_url = "{SITE}"\n'))
        cfg = dataclasses.replace(load_config(gradebook_course.root), db_url=gradebook_course.db_url)
        outbox = Outbox(cfg, open_gradebook(cfg.db_url), "boss")
        _graded(outbox.engine, "tiny01", {"ab1": "graded", "cd2": "timeout", "ef3": "missing"})
        first = sheet_graded(outbox, "tiny01")
        again = sheet_graded(outbox, "tiny01")
        forced = sheet_graded(outbox, "tiny01", students=["cd2"], again=True)
        assert [d.recipient for d in first.deliveries] == ["ab1", "cd2"] and again.deliveries == []
        assert [d.recipient for d in forced.deliveries] == ["cd2"]
        assert "the notebook (autograded part) of tiny01 (A tiny sheet) has been graded" in \
            server.received[0].message.get_content()
        server.received.clear()
        note = tmp_path / "note.txt"
        note.write_text("The tutorial moves to room 1.07 <b>today</b>.\n", encoding="utf-8")
        result = CliRunner().invoke(main, ["mail", "announce", "--group", "g1", "--subject", "Room change",
                                           "--body-file", str(note), "--author", "boss"])
    assert result.exit_code == 1  # the tutor has no address: reported, the others still sent
    assert "2 message(s) sent, 1 failed" in result.output
    assert "failed: tutor1 <>: no e-mail address on the roster" in result.output
    assert sorted(r.rcpt_tos[0] for r in server.received) == ["ab1@uni.de", "ef3@uni.de"]  # not cd2 (group g2)
    message = server.received[0].message
    assert message["Subject"] == "Test course: Room change" and message["Auto-Submitted"] is None
    assert message.get_content_type() == "text/plain"  # plain text: the <b> stays text
    assert "room 1.07 <b>today</b>." in message.get_content() and "(To tutorial group g1.)" in message.get_content()


def test_a_dry_run_writes_eml_files_and_a_dead_relay_fails_each_recipient(gradebook_course, tmp_path):
    setup_web_course(gradebook_course)
    outbox = dataclasses.replace(_outbox(gradebook_course, 1), dry_run=tmp_path / "out")
    report = announce(outbox, "Exam", "The exam is on 2027-02-20.", tutors=False)
    files = sorted((tmp_path / "out").glob("*.eml"))
    assert [f.name for f in files] == ["0001-announcement-ab1.eml", "0002-announcement-cd2.eml",
                                       "0003-announcement-ef3.eml"]
    parsed = email.message_from_bytes(files[1].read_bytes(), policy=email.policy.default)
    assert parsed["To"] == '"Carlos García, Jr." <cd2@uni.de>' and "2027-02-20" in parsed.get_content()
    assert files[0].stat().st_mode & 0o077 == 0 and report.lines()[0] == "3 message(s) written, 0 failed"
    seen: list[tuple[int, int]] = []
    down = dataclasses.replace(_outbox(gradebook_course, 1), progress=lambda done, total: seen.append((done, total)))
    report = announce(down, "Exam", "The exam is on 2027-02-20.", tutors=False)  # nothing listens on port 1
    assert [d.status for d in report.deliveries] == ["failed"] * 3 and seen == [(1, 3), (2, 3), (3, 3)]
    assert all(d.error.startswith("the mail relay 127.0.0.1:1 cannot be used") for d in report.deliveries)


def test_mail_settings_name_mlph_toml_and_never_hold_a_password(course_factory, monkeypatch):
    cfg = course_factory()
    toml = cfg.root / "mlph.toml"
    base = toml.read_text()
    toml.write_text(base + '\n[mail]\nhost = "smtp.uni.de"\nfrom = "g@uni.de"\nuser = "g"\npassword = "hunter2"\n')
    with pytest.raises(ConfigError, match=r"mlph.toml: \[mail\] password: never put the SMTP password into a file"):
        load_config(cfg.root)
    toml.write_text(base + '\n[mail]\nhost = "smtp.uni.de"\n')
    with pytest.raises(ConfigError, match=r"mlph.toml: \[mail\] from is missing"):
        load_config(cfg.root)
    toml.write_text(base + '\n[mail]\nhost = "smtp.uni.de"\nport = 465\nssl = true\nfrom = "Grading <g@uni.de>"\n')
    mail = load_config(cfg.root).mail
    assert (mail.host, mail.port, mail.ssl, mail.starttls, mail.password_env) == ("smtp.uni.de", 465, True, False,
                                                                                   "MLPH_SMTP_PASSWORD")
    toml.write_text(base + '\n[mail]\nhost = "smtp.uni.de"\nfrom = "Grading <g@uni.de>"\nuser = "g"\n'
                           'password_env = "MLPH_TEST_RELAY_PW"\nsite_url = "https://grading.example.org"\n')
    monkeypatch.setenv("MLPH_TEST_RELAY_PW", "hunter2-secret")
    shown = CliRunner().invoke(main, ["info"]).output
    assert ("mail:           smtp.uni.de:587 (STARTTLS, login g (password from $MLPH_TEST_RELAY_PW: set)), from "
            "Grading <g@uni.de>, links to https://grading.example.org") in shown and "hunter2" not in shown


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")  # the test server's, on purpose
def test_per_minute_paces_the_relay_and_the_relay_password_never_leaves(gradebook_course, monkeypatch):
    from gradebook.mail.outbox import Letter, send

    monkeypatch.setenv("MLPH_TEST_RELAY_PW", PASSWORD)
    waits: list[float] = []
    letters = [Letter(s, s, f"{s}@uni.de", "Hi", f"Hello {s}", kind="test") for s in ("ab1", "cd2")]
    letters.append(Letter("ef3", "ef3", "ef3@uni.de", "Hi", f"the relay's password is {PASSWORD}", kind="test"))
    with smtp_server(login=True) as (server, port):
        outbox = _outbox(gradebook_course, port, per_minute=120, user=USER, password_env="MLPH_TEST_RELAY_PW")
        report = send(outbox.engine, outbox.cfg.mail, letters, "boss", sleep=waits.append)
    assert [d.status for d in report.deliveries] == ["sent", "sent", "failed"]
    assert report.failed[0].error == "refused: the message contains the relay's password"
    assert waits == [0.5, 0.5] and len(server.received) == 2


def test_an_account_without_an_address_keeps_its_link_and_is_reported(gradebook_course, tmp_path):
    outbox = dataclasses.replace(_outbox(gradebook_course, 1), dry_run=tmp_path / "out")
    for sid in ("ab1", "cd2"):
        ensure_account(outbox.engine, sid)
    from gradebook.people.accounts import issue_links

    handed_out = issue_links(outbox.engine, ["cd2"], SITE, 24, "boss")[0].url.rsplit("/", 1)[1]  # e.g. by CSV
    _set_email(outbox.engine, "cd2", None)
    report = send_password_links(outbox, None, hours=24)  # every account without a password
    assert [(d.recipient, d.status, d.error) for d in report.deliveries] == [
        ("cd2", "failed", "no e-mail address on the roster"), ("ab1", "written", "")]
    assert link_account(outbox.engine, handed_out) == "cd2"  # not cancelled by a link that could not be sent
    assert len(list((tmp_path / "out").glob("*.eml"))) == 1
