"""Late rules people use, end to end: a per-day penalty on the part that came late (notebook or PDF), a group
that meets later keeping its own deadline, a cut-off after which every way in refuses the hand-in and the form
is closed; the per-part lines agree on `mlph status`, the parts export, the student's sheet page and dashboard;
a moved due date shows beside the stored decision until `mlph redecide` takes it again, audited."""
from __future__ import annotations

import csv
import dataclasses
import re
from datetime import datetime, timezone
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from autograder.cli import main
from autograder.intake.upload import accept_upload
from coursefactory import TINY_ANSWER, student_notebook
from gb_helpers import autograded
from gradebook.admission.lines import part_lines
from gradebook.admission.rule import compute_standings
from gradebook.course.config import load_config
from gradebook.points.handins import decide_late, group_of, store_decision
from gradebook.points.paper import fmt, import_points
from gradebook.store.db import atomic, open_gradebook
from gradebook.store.models import AuditLog, AutogradeResult, Handin
from web.app import create_app
from web.testing import logged_in, setup_web_course

HTML = {"accept": "text/html"}
AS_OF = ["--as-of", "2026-11-24T00:00:00+00:00"]
RULE = '[late]\npolicy = "per_day"\nper_day = "10%"\ngrace_minutes = 15\ncutoff_days = 3\n\n[deadlines]\ng2 = "+1d"\n'


def _course(cfg: Any, due: str = "2026-11-04T10:00:00") -> Any:
    path = cfg.root / "source" / "tiny01" / "sheet.toml"
    text = re.sub(r'\[late\]\npolicy = "zero"\ngrace_minutes = 15\n', RULE, path.read_text())
    path.write_text(re.sub(r'due = "[^"]+"', f'due = "{due}"', text, count=1))
    return dataclasses.replace(load_config(cfg.root, cfg.data_dir), db_url=cfg.db_url)


@pytest.fixture
def course(gradebook_course: Any) -> Any:
    cfg = _course(gradebook_course)
    setup_web_course(cfg)  # groups: g1 (ab1, ef3), g2 (cd2), whose deadline is a day later
    engine = open_gradebook(cfg.db_url)
    autograded(cfg, "tiny01", "ab1", Fraction(1), Fraction(2), when=datetime(2026, 11, 5, 12, tzinfo=timezone.utc))
    autograded(cfg, "tiny01", "cd2", Fraction(1), Fraction(1), when=datetime(2026, 11, 5, 8, tzinfo=timezone.utc))
    with atomic(engine) as s:  # as the autograder does: the decision taken once, stored with the result
        for row in s.execute(select(AutogradeResult)).scalars():
            store_decision(row, decide_late(row.submitted_at, cfg.manifest("tiny01"), None,
                                            group_of(s, row.student_id)), cfg.timezone)
        s.add(Handin(sheet="tiny01", student_id="ab1", kind="paper", source="web", status="accepted",
                     received_at=datetime(2026, 11, 4, 12, tzinfo=timezone.utc), original_name="p.pdf"))
    points = cfg.root / "paper.csv"
    points.write_text("student_id,task,points\nab1,proof,3\ncd2,proof,2\n")
    import_points(engine, cfg.manifest("tiny01"), points, "tutor1")
    return cfg


def test_each_part_follows_the_rule_by_its_own_lateness_and_the_group_deadline(course: Any) -> None:
    got = {s.student_id: s for s in compute_standings(open_gradebook(course.db_url), course,
                                                        datetime(2026, 11, 24, tzinfo=timezone.utc))}
    ab1, cd2 = got["ab1"].cells["tiny01"], got["cd2"].cells["tiny01"]
    # notebook 1 d 3 h late: 2 started days at -10 %; the PDF 3 h late: 1 day
    assert (ab1.notebook, ab1.counted_notebook, ab1.paper, ab1.counted_paper, ab1.counted, ab1.state) == (
        3, Fraction(12, 5), 3, Fraction(27, 10), Fraction(51, 10), "late")
    # cd2's group meets a day later: in time at 08:00 UTC on the 5th, counted in full, not "extended"
    assert (cd2.counted, cd2.state, cd2.extended, cd2.late) == (4, "graded", False, False)
    assert cd2.deadline == datetime(2026, 11, 5, 9, tzinfo=timezone.utc)
    lines = [line.text() for line in part_lines(ab1, course.semester[0])]
    assert lines == ["notebook: earned 3 of 3, counts 2.4 (late by 1 d 3 h 00 min: 2 started day(s) late at -10% each: "
                     "counts 80% of its points)",
                     "paper: earned 3 of 3, counts 2.7 (PDF late by 3 h 00 min: 1 started day(s) late at -10% each: "
                     "counts 90% of its points)"]


def test_status_export_sheet_page_and_dashboard_show_the_same_lines(course: Any, tmp_path: Path) -> None:
    engine = open_gradebook(course.db_url)
    standing = next(s for s in compute_standings(engine, course) if s.student_id == "ab1")
    lines = part_lines(standing.cells["tiny01"], course.semester[0], for_student=True)
    status = CliRunner().invoke(main, ["status", "ab1"])
    assert status.exit_code == 0, status.output
    flat = " ".join(status.output.split())
    for line in lines:
        assert " ".join(f"tiny01: {line.text()}".split()) in flat
    exported = CliRunner().invoke(main, ["admission", "--parts-csv", str(tmp_path / "parts.csv")])
    assert exported.exit_code == 0, exported.output
    rows = [r for r in csv.DictReader((tmp_path / "parts.csv").open()) if r["student_id"] == "ab1"
            and r["sheet"] == "tiny01"]
    assert [(r["part"], r["earned"], r["counted"], r["rule"]) for r in rows] == [
        (line.part, fmt(line.earned), fmt(line.counted), line.rule) for line in lines]
    app = create_app(course)
    client = logged_in(app, "ab1")
    page = client.get("/students/ab1/sheets/tiny01", headers=HTML).text
    table = page[page.index("<h2>What counts</h2>"):page.index("</table>", page.index("<h2>What counts</h2>"))]
    cells = [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", c)).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>",
                                                                                        table, re.S)]
    assert cells[:8] == ["notebook", "3 / 3", "2.4", f"late {lines[0].rule}",
                         "paper", "3 / 3", "2.7", f"late {lines[1].rule}"]
    assert cells[8] == "sheet" and cells[10].startswith("5.1 / 6")
    dash = re.sub(r"\s+", " ", client.get("/students/ab1", headers=HTML).text)
    assert "counts 2.4" in dash and "counts 2.7" in dash
    for line in lines:
        assert line.text() in dash


def test_after_the_cutoff_every_way_in_refuses_and_the_form_is_closed(course: Any) -> None:
    engine = open_gradebook(course.db_url)
    now = datetime(2026, 11, 7, 10, tzinfo=timezone.utc)  # ab1: cut-off Sat 07 Nov 10:00 CET (= 09:00 UTC)
    rec = accept_upload(course, engine, sheet="tiny01", student="ab1", kind="notebook", filename="tiny01.ipynb",
                        data=student_notebook(course, TINY_ANSWER), uploaded_by="ab1", now=now)
    assert rec.status == "refused"
    assert rec.reason == ("tiny01 takes no more hand-ins: its cut-off was Sat 07 Nov 2026, 10:00 CET "
                          "(deadline Wed 04 Nov 2026, 10:00 CET plus 3 d 0 h 00 min)")
    # cd2's group deadline is a day later, and so is the cut-off: still taken in (late)
    rec = accept_upload(course, engine, sheet="tiny01", student="cd2", kind="paper", filename="p.pdf",
                        data=b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n", uploaded_by="cd2", now=now)
    assert (rec.status, rec.reason) == ("accepted", "")
    standing = next(s for s in compute_standings(engine, course) if s.student_id == "cd2")
    assert part_lines(standing.cells["tiny01"], course.semester[0])[1].rule.startswith("PDF late by 2 d 1 h 00 min: 3 ")
    page = logged_in(create_app(course), "ab1").get("/students/ab1/sheets/tiny01", headers=HTML).text
    assert "takes no more hand-ins" in page  # the form is closed (now: past it)
    assert 'action="/students/ab1/sheets/tiny01/handin"' not in page


def test_a_moved_due_date_shows_beside_the_stored_decision_until_redecided(course: Any, monkeypatch: Any) -> None:
    moved = _course(course, due="2026-11-06T10:00:00")
    before = CliRunner().invoke(main, ["status", "ab1", *AS_OF])
    assert "the deadline is now Fri 06 Nov 10:00; the stored decision was taken against Wed 04 Nov 10:00" in \
        " ".join(before.output.split())
    assert "counts 2.4" in before.output  # the stored decision still counts until it is taken again
    result = CliRunner().invoke(main, ["redecide", "tiny01", "--reason", "due date moved", "--author", "prof"])
    assert result.exit_code == 0, result.output
    assert "tiny01: 2 decision(s) changed" in result.output
    engine = open_gradebook(moved.db_url)
    cell = next(s for s in compute_standings(engine, moved) if s.student_id == "ab1").cells["tiny01"]
    assert (cell.counted_notebook, cell.counted_paper, cell.state) == (3, 3, "graded")  # both parts now in time
    with atomic(engine) as s:
        audit = s.execute(select(AuditLog).where(AuditLog.entity == "late_decision")).scalars().all()
        assert {(a.key, a.author, a.reason) for a in audit} == {("tiny01/ab1", "prof", "due date moved"),
                                                                ("tiny01/cd2", "prof", "due date moved")}
        assert "late by 1 d 3 h" in next(a.old_value for a in audit if a.key == "tiny01/ab1")
    after = CliRunner().invoke(main, ["status", "ab1", *AS_OF])
    assert "stored decision was taken against" not in after.output
