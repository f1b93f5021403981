"""The audit log shows points as people write them ("2.5"), not as stored exactly ("5/2"); a value whose
decimal never ends stays an exact fraction; other values are shown as they are."""
from __future__ import annotations

from click.testing import CliRunner

from autograder.cli import main
from gradebook.exports.lists import audit_log, audit_text
from gradebook.store.db import open_gradebook


def test_audit_values_as_decimals() -> None:
    assert [audit_text(v) for v in ("5/2", "3/2", "-1/4", "1/3", "3", "", None, "G1", "2026/11/03", "1/0")] == \
        ["2.5", "1.5", "-0.25", "1/3", "3", "", "", "G1", "2026/11/03", "1/0"]


def test_audit_command_shows_paper_points_as_decimals(gradebook_course, tmp_path) -> None:
    f = tmp_path / "tutor.csv"
    f.write_text("student_id;task;points\nab1;proof;2,5\n")
    runner = CliRunner()
    assert runner.invoke(main, ["points", "import", "tiny01", str(f), "--author", "tina"]).exit_code == 0
    f.write_text("student_id;task;points\nab1;proof;1,75\n")
    assert runner.invoke(main, ["points", "import", "tiny01", str(f), "--author", "tina"]).exit_code == 0
    rows = [r for r in audit_log(open_gradebook(gradebook_course.db_url), student="ab1") if r.entity == "paper_points"]
    assert [(r.old_value, r.new_value) for r in rows] == [("", "2.5"), ("2.5", "1.75")]
    result = runner.invoke(main, ["audit", "--student", "ab1"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "1.75" in result.output and "2.5" in result.output
    assert "5/2" not in result.output and "7/4" not in result.output
