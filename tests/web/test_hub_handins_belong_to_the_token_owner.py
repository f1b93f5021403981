"""JupyterHub as the front door, with a real Hub, its proxy and spawned single-user servers on 127.0.0.1.

A student hands in from their Hub server with the stock ``nbgrader list / fetch_assignment / submit /
fetch_feedback`` and the course's exchange; the hand-in is the Hub token owner's, received at the server's
clock, graded like a web upload, on the dashboard and in the admission list. What a hostile student tries
(another name, a foreign, expired, revoked, unscoped or missing token, oversized or malformed uploads,
unreleased sheets, another's feedback, a replay after the deadline) is refused with a message, or counts
for the token's owner at the server's time, and stores nothing else.
"""
from __future__ import annotations

import http.client
import json
import time
from datetime import datetime, timedelta, timezone
from fractions import Fraction
from pathlib import Path
from typing import Any

import nbformat
import pytest
import requests
from sqlalchemy import select
from sqlalchemy.orm import Session

from autograder.hub import protocol
from coursefactory import TINY_ANSWER
from gradebook.store.db import open_gradebook
from gradebook.store.models import Account, Handin
from hubcourse import HubCourse

ACCESS = "access:services!service=mlph"


def _rows(hc: HubCourse) -> list[tuple[str, str, str, str | None]]:
    with Session(open_gradebook(hc.cfg.db_url)) as session:
        return [(h.sheet, h.student_id, h.status, h.uploaded_by) for h in
                session.execute(select(Handin).order_by(Handin.id)).scalars()]


def _files(hc: HubCourse) -> list[Path]:
    root = hc.cfg.data_dir / "submitted"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else []


def _solved(hc: HubCourse, user: str, sheet: str = "tiny01") -> bytes:
    """The released notebook with the right answer (what the student would save)."""
    nb = nbformat.read(hc.cfg.release_dir / sheet / f"{sheet}.ipynb", as_version=4)
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "scale_solution":
            cell.source = "\n".join(line for line in TINY_ANSWER.splitlines() if "SOLUTION" not in line)
    return nbformat.writes(nb).encode()


def _post(hc: HubCourse, token: str | None, sheet: str, data: bytes, **fields: str) -> requests.Response:
    headers = {"Authorization": f"token {token}"} if token else {}
    return requests.post(f"{hc.service_url}/services/mlph/{protocol.sheet_submissions(sheet)}", headers=headers,
                         files={"file": (f"{sheet}.ipynb", data)}, data=fields, timeout=60)


def _token(hc: HubCourse, user: str) -> str:
    return hc.server_env(user)["JUPYTERHUB_API_TOKEN"]


def test_student_uses_the_stock_commands_from_the_hub_server_and_is_graded_like_a_web_upload(hc: HubCourse) -> None:
    from autograder.grading.run import autograde
    from autograder.limits import Limits
    from gradebook.admission.rule import compute_standings
    from web.app import create_app
    from web.testing import logged_in
    from web.views import dashboard

    listed = hc.nbgrader("alice", "list")
    assert listed.returncode == 0, listed.stderr
    assert "mlph tiny01" in listed.stderr and "mlph tiny03" in listed.stderr
    assert "tiny02" not in listed.stderr  # authored, not released

    fetched = hc.nbgrader("alice", "fetch_assignment", "tiny01")
    assert fetched.returncode == 0, fetched.stderr
    notebook = hc.home("alice") / "tiny01" / "tiny01.ipynb"
    assert notebook.read_bytes() == (hc.cfg.release_dir / "tiny01" / "tiny01.ipynb").read_bytes()
    assert (hc.home("alice") / "tiny01" / "mlph_check.py").is_file()

    notebook.write_bytes(_solved(hc, "alice"))
    before = datetime.now(timezone.utc)
    submitted = hc.nbgrader("alice", "submit", "tiny01")
    after = datetime.now(timezone.utc)
    assert submitted.returncode == 0, submitted.stderr
    with Session(open_gradebook(hc.cfg.db_url)) as session:
        row = session.execute(select(Handin).where(Handin.uploaded_by == "hub:alice")).scalar_one()
    received = row.received_at.replace(tzinfo=timezone.utc) if row.received_at.tzinfo is None else row.received_at
    assert (row.sheet, row.student_id, row.status, row.kind, row.source) == ("tiny01", "ab1", "accepted", "notebook", "hub")
    assert before - timedelta(seconds=1) <= received <= after + timedelta(seconds=1)  # the server's clock
    assert (hc.cfg.data_dir / "submitted" / "ab1" / "tiny01" / "tiny01.ipynb").read_bytes() == notebook.read_bytes()

    # cd2 hands in the same notebook through the web page: both must come out the same
    app = create_app(hc.cfg)
    web = logged_in(app, "cd2")
    up = web.post("/students/cd2/sheets/tiny01/handin", data={"kind": "notebook"},
                  files={"file": ("tiny01.ipynb", _solved(hc, "cd2"), "application/json")})
    assert up.status_code == 303, up.text
    summary = autograde(hc.cfg, "tiny01", limits=Limits(cell_timeout=30), progress=False)
    assert {(r["student"], r["status"], str(r["score"])) for r in summary.results} == {("ab1", "graded", "3"),
                                                                                      ("cd2", "graded", "3")}
    engine = open_gradebook(hc.cfg.db_url)
    views = {}
    for student in ("ab1", "cd2"):
        standing, sheets = dashboard(engine, hc.cfg, student)
        view = next(v for v in sheets if v.sheet.id == "tiny01")
        assert standing is not None
        views[student] = (view.notebook_score, view.autograde_status, view.state, standing.points)
    assert views["ab1"] == views["cd2"]  # before the deadline both show the visible checks only
    assert views["ab1"][:2] == (None, "checked")
    admission = {s.student_id: s.cells["tiny01"] for s in compute_standings(engine, hc.cfg)}
    for cell in (admission["ab1"], admission["cd2"]):  # the same row in the admission list (pending until due)
        assert (cell.state, cell.notebook, cell.counted) == (admission["cd2"].state, Fraction(3), None)

    inbound = hc.nbgrader("alice", "list", "--inbound")
    assert inbound.returncode == 0, inbound.stderr
    assert "(feedback ready to be fetched)" in inbound.stderr
    feedback = hc.nbgrader("alice", "fetch_feedback", "tiny01")
    assert feedback.returncode == 0, feedback.stderr
    stamp = protocol.timestamp(received)
    html = (hc.home("alice") / "tiny01" / "feedback" / stamp / "tiny01.html").read_text()
    sheet_page = logged_in(app, "ab1").get("/students/ab1/sheets/tiny01", headers={"accept": "text/html"}).text
    assert "Visible checks: <b>2 of 2</b> tests pass" in html and "<b>ab1</b>" in html
    assert "Visible checks: <b>2 of 2</b> tests pass" in sheet_page  # what the sheet page shows, too
    assert "scale_hidden_a" not in html and "scale_hidden_b" not in html  # nothing of a hidden check
    again = hc.nbgrader("alice", "list", "--inbound")
    assert "(feedback already fetched)" in again.stderr

    # --student names someone else: ignored (logged on both sides), the feedback is still alice's own
    other = hc.nbgrader("alice", "fetch_feedback", "tiny01", "--student", "cd2")
    assert other.returncode == 0 and "--student cd2 is ignored" in other.stderr
    assert (hc.home("alice") / "tiny01" / "feedback" / stamp / "tiny01.html").read_text() == html
    assert "<b>cd2</b>" not in html


def test_student_named_on_the_command_line_is_ignored_and_logged(hc: HubCourse) -> None:
    nb = hc.home("ef3") / "tiny01"
    nb.mkdir(parents=True, exist_ok=True)
    (nb / "tiny01.ipynb").write_bytes(_solved(hc, "ef3"))
    rows = _rows(hc)
    done = hc.nbgrader("ef3", "submit", "tiny01", "--student", "cd2")
    assert done.returncode == 0, done.stderr
    assert "--student cd2 is ignored" in done.stderr
    new = _rows(hc)[len(rows):]
    assert new == [("tiny01", "ef3", "accepted", "hub:ef3")]
    assert 'Hub user \'ef3\' named {"claimed_student": "cd2"}' in hc.serve_log.read_text()


def _refused(hc: HubCourse, response: requests.Response, status: int, words: str, before: Any) -> None:
    assert response.status_code == status, response.text
    assert words in response.json()["error"]
    assert (_rows(hc), _files(hc)) == before


@pytest.mark.parametrize("case", ["no token", "garbage token", "not in the course", "a service's token",
                                  "staff member", "lacks the service scope", "expired", "revoked"])
def test_a_hand_in_without_a_student_token_for_the_service_is_refused_and_stores_nothing(hc: HubCourse,
                                                                                      case: str) -> None:
    expect = {"no token": (401, "No Hub token"), "garbage token": (403, "does not know this token"),
              "not in the course": (403, "is not in this course"), "a service's token": (403, "belongs to a service"),
              "staff member": (403, "only students hand in"), "lacks the service scope": (403, f"lacks the scope {ACCESS}"),
              "expired": (403, "does not know this token"), "revoked": (403, "does not know this token")}
    if case == "no token":
        token = None
    elif case == "garbage token":
        token = "0" * 32
    elif case == "not in the course":
        token = _token(hc, "mallory")
    elif case == "a service's token":
        token = hc.hub.token  # the harness service: admin scopes, but no user
    elif case == "staff member":
        token = hc.hub.user_token("boss", [ACCESS])
    elif case == "lacks the service scope":
        token = hc.hub.user_token("alice", ["read:users:name!user"])
    elif case == "expired":
        token = hc.hub.user_token("alice", [ACCESS], expires_in=1)
        time.sleep(2.5)
    else:
        token = hc.hub.user_token("alice", [ACCESS])
        hc.hub.revoke("alice", token)
    before = (_rows(hc), _files(hc))
    status, words = expect[case]
    _refused(hc, _post(hc, token, "tiny01", _solved(hc, "alice")), status, words, before)


def test_oversized_and_malformed_uploads_are_refused_and_leave_no_file(hc: HubCourse) -> None:
    token = _token(hc, "cd2")
    accepted = [r for r in _rows(hc) if r[2] == "accepted"]
    files = _files(hc)
    big = json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {},
                      "cells": [{"cell_type": "raw", "metadata": {}, "source": "x" * 21_000_000}]}).encode()
    r = _post(hc, token, "tiny01", big)
    assert r.status_code == 413 and "larger than 20 MB" in r.json()["error"]
    r = _post(hc, token, "tiny01", b"{not json")
    assert r.status_code == 422 and "invalid JSON" in r.json()["error"]
    r = requests.post(f"{hc.service_url}/services/mlph/{protocol.sheet_submissions('tiny01')}",
                      headers={"Authorization": f"token {token}", "Content-Type": "multipart/form-data; boundary=x"},
                      data=b"--x\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nunterminated", timeout=30)
    assert r.status_code == 400 and any(w in r.json()["error"] for w in ("not a well-formed upload", "has no notebook"))
    r = requests.post(f"{hc.service_url}/services/mlph/{protocol.sheet_submissions('tiny01')}",
                      headers={"Authorization": f"token {token}"}, data={"note": "no file"}, timeout=30)
    assert r.status_code == 400 and "has no notebook" in r.json()["error"]
    conn = http.client.HTTPConnection(hc.service_url.removeprefix("http://"), timeout=30)
    conn.putrequest("POST", f"/services/mlph/{protocol.sheet_submissions('tiny01')}")
    for key, value in (("Authorization", f"token {token}"), ("Content-Type", "multipart/form-data; boundary=x"),
                       ("Content-Length", str(40 * 1024 * 1024))):  # announced, never sent: refused before reading
        conn.putheader(key, value)
    conn.endheaders(b"x" * 1024)
    huge = conn.getresponse()
    assert huge.status == 413 and b"The upload is too large" in huge.read()
    conn.close()
    assert [r for r in _rows(hc) if r[2] == "accepted"] == accepted and _files(hc) == files
    refused = [r for r in _rows(hc) if r[2] == "refused"]
    assert ("tiny01", "cd2", "refused", "hub:cd2") in refused  # the intake's record of what it refused


def test_unreleased_sheets_cannot_be_fetched_or_handed_in(hc: HubCourse) -> None:
    token = _token(hc, "cd2")
    before = (_rows(hc), _files(hc))
    r = requests.get(f"{hc.service_url}/services/mlph/{protocol.sheet_files('tiny02')}",
                     headers={"Authorization": f"token {token}"}, timeout=30)
    assert r.status_code == 404 and r.json()["error"] == "There is no sheet 'tiny02' in this course."
    fetched = hc.nbgrader("cd2", "fetch_assignment", "tiny02")
    assert fetched.returncode != 0 and "There is no sheet 'tiny02' in this course." in fetched.stderr
    assert not (hc.home("cd2") / "tiny02").exists()
    _refused(hc, _post(hc, token, "tiny02", _solved(hc, "cd2")), 404, "There is no sheet 'tiny02'", before)
    nowhere = requests.get(f"{hc.service_url}/services/mlph/{protocol.sheet_files('tiny99')}",
                           headers={"Authorization": f"token {token}"}, timeout=30)
    assert nowhere.json()["error"] == "There is no sheet 'tiny99' in this course."  # the same words


def test_feedback_is_only_the_callers_own(hc: HubCourse) -> None:
    r = requests.get(f"{hc.service_url}/services/mlph/{protocol.sheet_feedback('tiny01')}?student=ab1",
                     headers={"Authorization": f"token {_token(hc, 'mallory')}"}, timeout=30)
    assert r.status_code == 403
    r = requests.get(f"{hc.service_url}/services/mlph/{protocol.sheet_feedback('tiny03')}?student=ab1",
                     headers={"Authorization": f"token {_token(hc, 'cd2')}"}, timeout=30)
    assert r.status_code == 404 and "No feedback for tiny03 yet" in r.json()["error"]


def test_a_replayed_hand_in_after_the_deadline_is_late_by_the_servers_clock(hc: HubCourse) -> None:
    manifest = hc.cfg.root / "source" / "tiny03" / "sheet.toml"
    due = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(seconds=4)
    text = manifest.read_text()
    start = text.index('due = "')
    manifest.write_text(text[:start] + f'due = "{due:%Y-%m-%dT%H:%M:%S}"' + text[text.index('"', start + 7) + 1:])
    body, token = _solved(hc, "cd2", "tiny03"), _token(hc, "cd2")
    first = _post(hc, token, "tiny03", body)
    assert first.status_code == 201 and first.json()["late"] is False, first.text
    time.sleep(max(0.0, (due - datetime.now(timezone.utc)).total_seconds()) + 1)
    replay = _post(hc, token, "tiny03", body)  # the same captured request, sent again
    assert replay.status_code == 201 and replay.json()["late"] is True
    assert datetime.fromisoformat(replay.json()["received_at"]) > due
    assert "late by" in replay.json()["decision"]
    with Session(open_gradebook(hc.cfg.db_url)) as session:
        times = [h.received_at for h in session.execute(select(Handin).where(
            Handin.sheet == "tiny03", Handin.student_id == "cd2").order_by(Handin.id)).scalars()]
    assert len(times) == 2 and times[0].replace(tzinfo=timezone.utc) < due < times[1].replace(tzinfo=timezone.utc)


def test_nobody_outside_the_course_gets_an_account(hc: HubCourse) -> None:
    with Session(open_gradebook(hc.cfg.db_url)) as session:
        names = set(session.execute(select(Account.username)).scalars())
    assert "mallory" not in names
