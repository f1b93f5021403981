"""`mlph release` puts on the exchange only a sheet that passed `mlph validate` on its current files, is
in the semester plan and is not yet due (unless --force); validate's advice matches; a stale
release/ is named as such."""
from __future__ import annotations

import nbformat
from click.testing import CliRunner

from autograder.cli import main
from gradebook.course.config import load_config
from autograder.nbgrader_bridge import generate
from autograder.sheets.release_gate import read_stamp, record_validation
from autograder.sheets.validate import validate_sheet, validate_sheets
from autograder.sheets.conventions import Conventions

FUTURE = "2030-01-07T10:00:00"
TINY = Conventions(notebook_points=None, paper_points=None, notebook_tasks=(1, 4), paper_tasks=(0, 2),
                   min_mistakes=1, min_mistakes_per_cell=1)


def _outbound(cfg):
    return cfg.exchange_dir / "mlph" / "outbound" / "tiny01"


def test_an_unvalidated_sheet_is_not_released(course_factory):
    cfg = course_factory(due=FUTURE)
    result = CliRunner().invoke(main, ["release", "tiny01"])
    assert result.exit_code == 2 and "tiny01 has not been validated: run `mlph validate tiny01`" in result.output
    assert "--force" in result.output and "Traceback" not in result.output
    assert not _outbound(cfg).exists()


def test_a_failed_validation_blocks_release_and_validate_says_so(course_factory):
    """The tiny sheet is smaller than the course's shape (13 + 7 points): the real `mlph validate` fails."""
    cfg = course_factory(due=FUTURE)
    generate(cfg, "tiny01")
    runner = CliRunner()
    checked = runner.invoke(main, ["validate", "tiny01"])
    assert checked.exit_code == 1
    assert "`mlph release` refuses tiny01 until `mlph validate` passes" in checked.output
    assert "run `mlph release" not in checked.output
    stamp = read_stamp(cfg, "tiny01")
    assert stamp is not None and not stamp.passed and stamp.problems > 0
    refused = runner.invoke(main, ["release", "tiny01"])
    assert refused.exit_code == 2
    assert f"the last validation of tiny01 ({stamp.at}) found {stamp.problems} problem(s)" in refused.output
    assert not _outbound(cfg).exists()
    forced = runner.invoke(main, ["release", "tiny01", "--force"])
    assert forced.exit_code == 0, forced.output
    assert "warning (--force): the last validation of tiny01" in forced.output
    assert (_outbound(cfg) / "tiny01.ipynb").is_file()


def test_a_passing_validation_releases_until_a_file_changes(course_factory):
    cfg = course_factory(due=FUTURE, conforming=True)
    generate(cfg, "tiny01")
    said: list[str] = []
    assert validate_sheets(cfg, ["tiny01"], say=said.append, conventions=TINY) == []
    assert not any("WARNING" in s for s in said)
    stamp = read_stamp(cfg, "tiny01")
    assert stamp is not None and stamp.passed
    manifest = cfg.source_dir / "tiny01" / "sheet.toml"
    manifest.write_text(manifest.read_text() + "\n# a late edit\n")
    runner = CliRunner()
    stale = runner.invoke(main, ["release", "tiny01"])
    assert stale.exit_code == 2
    assert f"source/tiny01 or release/tiny01 changed since its last validation ({stamp.at})" in stale.output
    assert not _outbound(cfg).exists()
    record_validation(cfg, "tiny01", [])  # as a passing `mlph validate` of the edited files leaves it
    released = runner.invoke(main, ["release", "tiny01"])
    assert released.exit_code == 0, released.output
    assert (_outbound(cfg) / "tiny01.ipynb").is_file() and "warning" not in released.output


def test_a_sheet_outside_the_semester_plan_is_warned_and_not_released(course_factory):
    cfg = course_factory(tiny=("tiny01", "tiny02"), due=FUTURE)
    toml = cfg.root / "mlph.toml"
    toml.write_text(toml.read_text().replace('[[semester.sheet]]\nid = "tiny02"\n', ""))
    generate(cfg, "tiny02")
    record_validation(cfg, "tiny02", [])
    result = CliRunner().invoke(main, ["release", "tiny02"])
    assert result.exit_code == 2
    assert f"tiny02 is not in the semester plan ({toml}): its points would never count" in result.output
    assert "[[semester.sheet]] id = \"tiny02\"" in result.output
    said: list[str] = []
    validate_sheets(load_config(cfg.root), ["tiny02"], say=said.append, conventions=TINY)
    assert any(s.startswith("  WARNING tiny02 is not in the semester plan") and "mlph.toml" in s for s in said)


def test_a_sheet_already_due_is_not_released(course_factory):
    cfg = course_factory(due="2026-11-04T10:00:00")
    generate(cfg, "tiny01")
    record_validation(cfg, "tiny01", [])
    result = CliRunner().invoke(main, ["release", "tiny01", "--no-exchange"])
    assert result.exit_code == 2
    assert "tiny01 is due 2026-11-04T10:00:00+01:00, already past" in result.output
    assert "source/tiny01/sheet.toml" in result.output


def test_a_stale_release_is_named_not_a_missing_answer_cell(course_factory):
    """The answer cell renamed in source/ only: validate says release/ is out of date and how to regenerate."""
    cfg = course_factory(due=FUTURE)
    generate(cfg, "tiny01")
    path = cfg.source_dir / "tiny01" / "tiny01.ipynb"
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.metadata["nbgrader"]["grade_id"] == "scale_solution":
            cell.metadata["nbgrader"]["grade_id"] = "lse_solution"
    nbformat.write(nb, path)
    mistakes = cfg.source_dir / "tiny01" / "mistakes.toml"
    mistakes.write_text(mistakes.read_text().replace('"scale_solution"', '"lse_solution"'))
    report = validate_sheet(cfg, "tiny01", conventions=TINY)
    assert ("tiny01: release/tiny01/tiny01.ipynb: release/ is out of date with source/tiny01; regenerate it with "
            "`mlph generate tiny01`") in report.problems
    assert not any("no answer cell" in p for p in report.problems)
