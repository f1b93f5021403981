"""Regrade requests on paper tasks: only after publishing, within the window (default 7 days, configurable),
one open request per task (a team shares it); the grader of the task may not answer it, another tutor or an
admin does; the answer and a change of points are audited, the points through the grid's write path."""
from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone
from fractions import Fraction
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from gradebook.course.config import load_config
from gradebook.errors import ConflictError, InputError
from gradebook.points.grid import cell_state, save_cell
from gradebook.points.publishing import publish, published_sheets
from gradebook.points.regrades import (MAX_REASON, answer_request, for_student, pending_students, request_regrade,
                                       requests)
from gradebook.store.db import atomic, open_gradebook
from gradebook.store.models import AuditLog, PaperPoints, TeamMember


@pytest.fixture
def graded(gradebook_course: Any) -> tuple[Any, Any, datetime]:
    """tiny01's paper task graded by tutor1 for ab1 (2 of 3) and cd2 (3), published now."""
    cfg = dataclasses.replace(gradebook_course, publish_paper="manual")
    engine = open_gradebook(cfg.db_url)
    for sid, pts in (("ab1", "2"), ("cd2", "3")):
        save_cell(engine, cfg.manifest("tiny01"), sid, "proof", value=pts, comment="see step 2", author="tutor1")
    publish(engine, cfg, "tiny01", "boss")
    return cfg, engine, published_sheets(engine, cfg)["tiny01"]


def test_nothing_to_ask_before_publishing(gradebook_course: Any) -> None:
    cfg = dataclasses.replace(gradebook_course, publish_paper="manual")
    engine = open_gradebook(cfg.db_url)
    save_cell(engine, cfg.manifest("tiny01"), "ab1", "proof", value="2", author="tutor1")
    with pytest.raises(InputError, match="tiny01/proof, student 'ab1': the paper points of tiny01 are not published"):
        request_regrade(engine, cfg, "tiny01", "proof", "ab1", "please look again")
    assert requests(engine) == []


def test_the_window_closes_after_the_configured_days(graded: Any) -> None:
    cfg, engine, at = graded
    request_regrade(engine, cfg, "tiny01", "proof", "ab1", "step 2", now=at + timedelta(days=7) - timedelta(minutes=1))
    with pytest.raises(InputError, match="could be asked for until"):
        request_regrade(engine, cfg, "tiny01", "proof", "cd2", "late", now=at + timedelta(days=7, minutes=1))
    short = dataclasses.replace(cfg, regrade_days=1.0)
    with pytest.raises(InputError, match="could be asked for until"):
        request_regrade(engine, short, "tiny01", "proof", "cd2", "late", now=at + timedelta(days=1, minutes=1))
    assert [r.student for r in requests(engine)] == ["ab1"]


def test_one_open_request_per_task_and_team(graded: Any) -> None:
    cfg, engine, _ = graded
    with atomic(engine) as session:
        session.add_all([TeamMember(sheet="tiny01", team="t", student_id="ab1"),
                         TeamMember(sheet="tiny01", team="t", student_id="ef3")])
    first = request_regrade(engine, cfg, "tiny01", "proof", "ab1", "step 2 is right")
    with pytest.raises(ConflictError, match=f"already open \\(#{first.id}\\)"):
        request_regrade(engine, cfg, "tiny01", "proof", "ab1", "again")
    with pytest.raises(ConflictError, match="already open"):
        request_regrade(engine, cfg, "tiny01", "proof", "ef3", "my teammate's too")
    answer_request(engine, cfg, first.id, "tutor2", False, "No: step 2 drops a sign.")
    second = request_regrade(engine, cfg, "tiny01", "proof", "ab1", "but the sign cancels in step 3")  # answered: ok
    assert second.id != first.id and [r.open for r in for_student(engine, "tiny01", "ef3")] == [True, False]


def test_the_grader_may_not_answer_another_tutor_or_an_admin_does(graded: Any) -> None:
    cfg, engine, _ = graded
    req = request_regrade(engine, cfg, "tiny01", "proof", "ab1", "step 2 is right")
    assert req.grader == "tutor1" and req.points_before == 2
    assert [r.id for r in requests(engine, open_only=True, answerable_by="tutor1")] == []
    assert [r.id for r in requests(engine, open_only=True, answerable_by="tutor2")] == [req.id]
    with pytest.raises(InputError, match="tutor1 graded this task; another tutor or an admin answers"):
        answer_request(engine, cfg, req.id, "tutor1", False, "Looks fine to me", Fraction(3))
    assert pending_students(engine) == {"ab1"}
    done = answer_request(engine, cfg, req.id, "tutor2", False, "Right: step 2 holds. +1", Fraction(3))
    assert done.changed and done.points_after == 3 and done.answered_by == "tutor2"
    assert pending_students(engine) == set()
    cell = cell_state(engine, cfg.manifest("tiny01"), "ab1", "proof")
    assert cell.points == 3 and cell.entered_by == "tutor2" and cell.version == 2
    with pytest.raises(ConflictError, match="already answered by tutor2"):
        answer_request(engine, cfg, req.id, "boss", True, "again")
    with Session(engine) as session:
        audit = [(a.entity, a.author, a.old_value, a.new_value) for a in session.execute(
            select(AuditLog).where(AuditLog.key == "tiny01/proof/ab1").order_by(AuditLog.id)).scalars()]
    assert audit[-3:] == [("regrade_request", "ab1", None, f"#{req.id} open at 2 points"),
                          ("paper_points", "tutor2", "2", "3"),
                          ("regrade_request", "tutor2", f"#{req.id} open at 2 points", f"#{req.id} answered: 3 points")]
    # the admin answers any request, even on a task they graded
    save_cell(engine, cfg.manifest("tiny01"), "cd2", "proof", value="2", author="boss", expected_version=1)
    other = request_regrade(engine, cfg, "tiny01", "proof", "cd2", "why 2 now?")
    assert answer_request(engine, cfg, other.id, "boss", True, "Typo, back to 3", Fraction(3)).points_after == 3


def test_an_answer_based_on_stale_points_is_a_conflict_not_a_lost_change(graded: Any) -> None:
    cfg, engine, _ = graded
    req = request_regrade(engine, cfg, "tiny01", "proof", "ab1", "step 2")
    save_cell(engine, cfg.manifest("tiny01"), "ab1", "proof", value="2,5", author="tutor1", expected_version=1)
    with pytest.raises(ConflictError, match="changed meanwhile by tutor1"):
        answer_request(engine, cfg, req.id, "tutor2", False, "ok", Fraction(3), expected_version=1)
    with Session(engine) as session:
        assert session.execute(select(PaperPoints.points).where(PaperPoints.student_id == "ab1")).scalar_one() == "5/2"
    assert requests(engine, open_only=True)[0].id == req.id  # nothing of the answer was written


def test_reasons_are_bounded_and_cleaned(graded: Any) -> None:
    cfg, engine, _ = graded
    with pytest.raises(InputError, match=f"the reason has {MAX_REASON + 1} characters; at most {MAX_REASON}"):
        request_regrade(engine, cfg, "tiny01", "proof", "ab1", "x" * (MAX_REASON + 1))
    with pytest.raises(InputError, match="the reason is empty"):
        request_regrade(engine, cfg, "tiny01", "proof", "ab1", " \x00\x07 ")
    with pytest.raises(InputError, match="unknown paper task 'nope'"):
        request_regrade(engine, cfg, "tiny01", "nope", "ab1", "why")
    with pytest.raises(InputError, match="has no points yet"):
        request_regrade(engine, cfg, "tiny01", "proof", "ef3", "why")
    req = request_regrade(engine, cfg, "tiny01", "proof", "ab1", "<script>alert(1)</script>\x1b[2J =1+1")
    assert req.reason == "<script>alert(1)</script>[2J =1+1"  # control characters gone; escaped where shown


def test_the_window_comes_from_the_sheet_or_the_course(gradebook_course: Any) -> None:
    manifest = gradebook_course.root / "source" / "tiny01" / "sheet.toml"
    manifest.write_text(manifest.read_text().replace('timezone = "Europe/Berlin"',
                                                     'timezone = "Europe/Berlin"\nregrade_days = 14'))
    cfg = dataclasses.replace(load_config(gradebook_course.root), db_url=gradebook_course.db_url)
    assert cfg.regrade_window_days(cfg.semester[0]) == 14 and cfg.regrade_window_days(cfg.semester[1]) == 7
    engine = open_gradebook(cfg.db_url)
    save_cell(engine, cfg.manifest("tiny01"), "ab1", "proof", value="2", author="tutor1")
    at = published_sheets(engine, cfg, datetime.now(timezone.utc))["tiny01"]  # the default policy: all graded
    assert request_regrade(engine, cfg, "tiny01", "proof", "ab1", "why", now=at + timedelta(days=13)).open


def test_the_answer_is_mailed_to_the_student_when_the_course_has_a_relay(graded: Any) -> None:
    from gradebook.course.mail_settings import MailSettings
    from gradebook.mail.notify import answer_mailed
    from smtpserver import smtp_server

    cfg, engine, _ = graded
    req = request_regrade(engine, cfg, "tiny01", "proof", "ab1", "step 2 is right")
    done = answer_request(engine, cfg, req.id, "tutor2", False, "Right: step 2 holds. +1", Fraction(5, 2))
    assert answer_mailed(cfg, engine, done, "tutor2") is None  # no relay in mlph.toml: no mail, the answer stays
    with smtp_server() as (server, port):
        relay = MailSettings(host="127.0.0.1", port=port, starttls=False, sender="grading@uni.de",
                             site_url="https://grading.example.org", timeout_s=10)
        report = answer_mailed(dataclasses.replace(cfg, mail=relay), engine, done, "tutor2")
    assert report is not None and [(d.recipient, d.status) for d in report.deliveries] == [("ab1", "sent")]
    [mail] = server.received
    body = mail.message.get_content()
    assert mail.rcpt_tos == ["ab1@uni.de"] and "tiny01" in mail.message["Subject"]
    assert "step 2 is right" in body and "Right: step 2 holds. +1" in body and "2 before, 2.5 now" in body
