"""Groups, tutors, memberships with history; overrides; `mlph status`; the threshold preview."""
from __future__ import annotations

from fractions import Fraction

import pytest
from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session

from autograder.cli import main
from gb_helpers import autograded
from gradebook.store.db import open_gradebook
from gradebook.errors import InputError
from gradebook.people.groups import assign_students, import_groups
from gradebook.store.models import AdmissionOverride, AuditLog, GroupMembership, TutorialGroup


@pytest.fixture
def grouped(gradebook_course, tmp_path):
    g = tmp_path / "groups.csv"
    g.write_text("group,name,tutor_id,tutor_name,tutor_email\nG1,Monday 10:00,tina,Tina Tutor,tina@uni.de\n"
                 "G2,Tuesday 14:00,tom,Tom Tutor,tom@uni.de\n")
    assert str(import_groups(open_gradebook(gradebook_course.db_url), g)) == "2 group(s), 2 tutor(s) written"
    m = tmp_path / "members.csv"
    m.write_text("student_id,group\nab1,G1\ncd2,G1\nef3,G2\n")
    assign_students(open_gradebook(gradebook_course.db_url), m, "admin")
    return gradebook_course


def test_moves_keep_history_and_are_audited(grouped, tmp_path):
    m = tmp_path / "move.csv"
    m.write_text("student_id,group\ncd2,G2\nab1,G1\n")
    report = assign_students(open_gradebook(grouped.db_url), m, "admin")
    assert (report.moved, report.unchanged) == (["cd2"], 1)
    with Session(open_gradebook(grouped.db_url)) as s:
        history = [(r.group_id, r.valid_to is None) for r in s.execute(
            select(GroupMembership).where(GroupMembership.student_id == "cd2").order_by(GroupMembership.id)).scalars()]
        audit = s.execute(select(AuditLog).where(AuditLog.key == "cd2")).scalars().all()
        assert s.get(TutorialGroup, "G2").tutor_id == "tom"
    assert history == [("G1", False), ("G2", True)]
    assert [(a.old_value, a.new_value) for a in audit] == [(None, "G1"), ("G1", "G2")]
    out = tmp_path / "t.csv"
    assert CliRunner().invoke(main, ["points", "template", "tiny01", "--group", "G2", "--output", str(out)]).exit_code == 0
    assert [ln.split(",")[0] for ln in out.read_text().splitlines()[1:]] == ["cd2", "ef3"]


def test_bad_memberships_are_refused_whole(grouped, tmp_path):
    m = tmp_path / "bad.csv"
    m.write_text("student_id,group\nab1,G2\nzz9,G1\nef3,G7\nab1,G1\n")
    with pytest.raises(InputError) as err:
        assign_students(open_gradebook(grouped.db_url), m, "admin")
    assert f"{m}:3: unknown student 'zz9' (not in the roster)" in str(err.value)
    assert f"{m}:4: student 'ef3': unknown group 'G7'" in str(err.value)
    assert f"{m}:5: student 'ab1' already appears in row 2" in str(err.value)
    with Session(open_gradebook(grouped.db_url)) as s:
        assert s.execute(select(GroupMembership.group_id).where(
            GroupMembership.student_id == "ab1", GroupMembership.valid_to.is_(None))).scalar_one() == "G1"


def close_all(cfg):
    from gradebook.course.sheets_state import close_sheet

    for sheet in [s.id for s in cfg.semester]:
        close_sheet(open_gradebook(cfg.db_url), cfg, sheet, "admin", "test: decided")


def test_override_status_and_preview_through_the_cli(grouped):
    autograded(grouped, "tiny01", "ab1", Fraction(1), Fraction(2))
    close_all(grouped)
    run = CliRunner().invoke
    result = run(main, ["status", "ab1", "--as-of", "2027-03-01T00:00:00+00:00"])
    assert result.exit_code == 0, result.output
    assert "total 3 of 32 (9.37%); threshold 16" in result.output  # truncated, never rounded
    assert "status: not_admitted; 13 points still needed" in result.output
    result = run(main, ["override", "set", "ab1", "admitted", "--reason", "repeated course", "--author", "admin"])
    assert result.exit_code == 0, result.output
    result = run(main, ["status", "ab1", "--as-of", "2027-03-01T00:00:00+00:00"])
    assert "total 3 of 32" in result.output and "status: admitted (override: repeated course)" in result.output
    with Session(open_gradebook(grouped.db_url)) as s:
        assert s.execute(select(AdmissionOverride.status)).scalars().all() == ["admitted"]
    assert run(main, ["override", "revoke", "ab1", "--reason", "entered by mistake"]).exit_code == 0
    result = run(main, ["override", "revoke", "ab1", "--reason", "again"])
    assert result.exit_code == 2 and "student 'ab1' has no active override" in result.output
    result = run(main, ["admission", "--preview-threshold", "3 points", "--as-of", "2027-03-01T00:00:00+00:00"])
    assert "ab1\tAnna Müller\tnot_admitted -> admitted" in result.output
    assert "1 student(s) would change status under threshold 3 points" in result.output
    result = run(main, ["status", "nobody"])
    assert result.exit_code == 2 and "unknown student 'nobody'" in result.output


def test_report_has_its_plots_and_task_means(grouped, tmp_path):
    import base64
    import re

    autograded(grouped, "tiny01", "ab1", Fraction(1), Fraction(2))
    autograded(grouped, "tiny01", "cd2", Fraction(1), Fraction(0))
    out = tmp_path / "report.html"
    result = CliRunner().invoke(main, ["report", "--output", str(out), "--as-of", "2026-11-24T00:00:00+00:00"])
    assert result.exit_code == 0, result.output
    page = out.read_text()
    images = re.findall(r"base64,([A-Za-z0-9+/=]+)", page)
    assert len(images) == 4 and all(base64.b64decode(i)[:8] == b"\x89PNG\r\n\x1a\n" for i in images)
    assert "3 students: 0 admitted, 3 open, 0 not admitted." in page
    assert "<td>tiny01/scale</td><td>2.00 / 3</td>" in page  # (3 + 1) / 2 students


def test_manual_score_and_extension_are_audited_and_counted(grouped):
    from gradebook.store.models import AuditLog

    autograded(grouped, "tiny01", "ab1", Fraction(1), Fraction(0), when=__import__("datetime").datetime(
        2026, 11, 5, 12, tzinfo=__import__("datetime").timezone.utc))  # a day late
    close_all(grouped)
    run = CliRunner().invoke
    assert "status: not_admitted" in run(main, ["status", "ab1", "--as-of", "2027-03-01T00:00"]).output
    result = run(main, ["grade", "tiny01", "ab1", "test_scale_more", "2,5", "--reason", "x"])
    assert result.exit_code == 2 and "tiny01/test_scale_more, student 'ab1': 2.5 is outside 0..2" in result.output
    result = run(main, ["grade", "tiny01", "ab1", "test_scale_more", "1.5", "--reason", "partly right", "--author", "prof"])
    assert result.exit_code == 0, result.output
    result = run(main, ["extension", "tiny01", "ab1", "2026-11-06T10:00", "--reason", "ill", "--author", "prof"])
    assert result.exit_code == 0, result.output
    from datetime import datetime, timezone

    from gradebook.admission.rule import compute_standings

    ab1 = [s for s in compute_standings(open_gradebook(grouped.db_url), grouped,
                                        datetime(2027, 3, 1, tzinfo=timezone.utc)) if s.student_id == "ab1"][0]
    assert ab1.sheets["tiny01"] == Fraction(5, 2)  # 1 + manual 1.5, no longer late with the extension
    with Session(open_gradebook(grouped.db_url)) as s:
        audit = [(a.entity, a.key, a.old_value, a.new_value, a.reason) for a in s.execute(
            select(AuditLog).where(AuditLog.author == "prof").order_by(AuditLog.id)).scalars()]
    assert audit[0] == ("manual_score", "tiny01/test_scale_more/ab1", None, "1.5", "partly right")
    assert audit[1][:2] == ("extension", "tiny01/ab1") and audit[1][4] == "ill"
    result = run(main, ["grade", "tiny01", "zz9", "test_scale_more", "1", "--reason", "x"])
    assert "tiny01: no graded cell 'test_scale_more' in a submission of student 'zz9'" in result.output


def test_staff_roles(grouped):
    from gradebook.store.models import Person

    run = CliRunner().invoke
    assert run(main, ["staff", "add", "prof", "--name", "Prof. P", "--role", "admin"]).exit_code == 0
    assert run(main, ["staff", "add", "tina", "--name", "Tina T.", "--role", "admin"]).exit_code == 0  # promoted
    result = run(main, ["staff", "add", "x", "--name", "X", "--role", "student"])
    assert result.exit_code == 2 and "Invalid value for '--role'" in result.output
    with Session(open_gradebook(grouped.db_url)) as s:
        assert {p.id: p.role for p in s.execute(select(Person)).scalars()} == {"prof": "admin", "tina": "admin",
                                                                                "tom": "tutor"}
