"""The sheet's shape (points, task counts, mistakes) is the course's `[conventions]` in mlph.toml, or a sheet's
own in its sheet.toml; every problem names the rule and the file it comes from. A work-in-progress sheet
(`wip = true`, or outside the semester plan) is only warned about by `mlph validate`, unless `--strict`."""
from __future__ import annotations

from fractions import Fraction

import nbformat
import pytest
from click.testing import CliRunner

from autograder.cli import main
from autograder.nbgrader_bridge import generate
from autograder.sheets.conventions import ConventionsError, check_conventions, sheet_conventions
from autograder.sheets.release_gate import record_validation

FUTURE = "2030-01-01T10:00:00"
# the tiny conforming sheet: 1 notebook task of 3 points, 1 paper task of 3 points (2 rubric items), 1 mistake
SMALL = ("\n[conventions]\nnotebook_points = 3\npaper_points = \"3\"\nnotebook_tasks = [1, 2]\npaper_tasks = 1\n"
         "min_mistakes = 1\nmin_mistakes_per_cell = 1\n")


def _append(path, text):
    path.write_text(path.read_text() + text)


def _problems(cfg, sheet="tiny01"):
    manifest = cfg.manifest(sheet)
    nb = nbformat.read(manifest.directory / manifest.notebook, as_version=4)
    return check_conventions(manifest, nb, sheet_conventions(cfg.root, manifest))


def test_the_defaults_refuse_a_small_sheet_naming_each_rule(course_factory):
    cfg = course_factory(conforming=True)
    problems = _problems(cfg)
    assert problems[0] == ("1 notebook tasks; a sheet has 3–4 (rule notebook_tasks = [3, 4]: the default; set it in "
                           "[conventions] of mlph.toml or of the sheet's sheet.toml)")
    assert any(p.startswith("3 autograded points in sheet.toml; a sheet has 13 (rule notebook_points = 13: the default")
               for p in problems)
    assert len(problems) == 3  # tasks, autograded and paper points; the rubric and hand-in sentence are fine


def test_the_course_sets_its_conventions_in_mlph_toml_and_a_sheet_its_own(course_factory):
    cfg = course_factory(conforming=True)
    _append(cfg.root / "mlph.toml", "\n[conventions]\nnotebook_points = 3\nnotebook_tasks = [1, 3]\n")
    problems = _problems(cfg)
    assert problems == ["3 pen-and-paper points in sheet.toml; a sheet has 7 (rule paper_points = 7: the default; set "
                        "it in [conventions] of mlph.toml or of the sheet's sheet.toml)"]
    _append(cfg.root / "mlph.toml", "paper_tasks = [2, 2]\npaper_points = \"any\"\n")
    assert _problems(cfg) == ["1 paper tasks; a sheet has 2–2 (rule paper_tasks = [2, 2] from mlph.toml [conventions])"]
    manifest = cfg.source_dir / "tiny01" / "sheet.toml"
    _append(manifest, "\n[conventions]\npaper_tasks = [0, 1]\nnotebook_points = 2.5\n")  # the sheet's own win
    conv = sheet_conventions(cfg.root, cfg.manifest("tiny01"))
    assert conv.notebook_points == Fraction(5, 2) and conv.notebook_tasks == (1, 3) and conv.paper_points is None
    assert _problems(cfg) == ["3 autograded points in sheet.toml; a sheet has 5/2 (rule notebook_points = 5/2 from "
                              "source/tiny01/sheet.toml [conventions])"]


@pytest.mark.parametrize("table, message", [
    ("notebook_tasks = [4, 3]", "notebook_tasks must be [least, most]"),
    ("min_mistakes = -1", "min_mistakes must be a whole number >= 0"),
    ("paper_points = \"seven\"", "paper_points must be points"),
    ("notebook_task = [1, 2]", "unknown key(s) notebook_task"),
])
def test_a_wrong_value_names_its_file_and_key(course_factory, table, message):
    cfg = course_factory(conforming=True)
    _append(cfg.source_dir / "tiny01" / "sheet.toml", f"\n[conventions]\n{table}\n")
    with pytest.raises(ConventionsError) as err:
        sheet_conventions(cfg.root, cfg.manifest("tiny01"))
    assert str(err.value).startswith("source/tiny01/sheet.toml: [conventions]") and message in str(err.value)
    _append(cfg.root / "mlph.toml", "\n[conventions]\nrubric_items = \"2-4\"\n")  # the course's file comes first
    with pytest.raises(ConventionsError, match=r"^mlph.toml: \[conventions\] rubric_items must be \[least, most\]"):
        sheet_conventions(cfg.root, cfg.manifest("tiny01"))


def test_validate_fails_a_small_sheet_on_the_defaults_and_passes_it_with_its_own(course_factory):
    cfg = course_factory(conforming=True, due=FUTURE)
    generate(cfg, "tiny01")
    runner = CliRunner()
    failed = runner.invoke(main, ["validate", "tiny01"])
    assert failed.exit_code != 0
    assert "tiny01: 1 notebook tasks; a sheet has 3–4 (rule notebook_tasks = [3, 4]: the default" in failed.output
    assert "mistakes.toml: 1 mistakes; a sheet has at least 10 (rule min_mistakes = 10: the default" in failed.output
    _append(cfg.source_dir / "tiny01" / "sheet.toml", SMALL)
    passed = runner.invoke(main, ["validate", "tiny01"])
    assert passed.exit_code == 0, passed.output
    assert "all checks passed" in passed.output and "`mlph release tiny01`" in passed.output
    _append(cfg.source_dir / "tiny01" / "sheet.toml", "notebook_tasks_extra = 1\n")
    broken = runner.invoke(main, ["validate", "tiny01"])
    assert broken.exit_code != 0
    assert "tiny01: source/tiny01/sheet.toml: [conventions] has unknown key(s) notebook_tasks_extra" in broken.output


def test_a_work_in_progress_sheet_warns_and_fails_only_when_strict(course_factory):
    cfg = course_factory(tiny=("tiny01", "tiny02"), conforming=True, due=FUTURE)
    _append(cfg.source_dir / "tiny01" / "sheet.toml", SMALL)
    wip = cfg.source_dir / "tiny02" / "sheet.toml"
    wip.write_text("wip = true\n" + wip.read_text())  # the defaults: far too small, and wip
    for sheet in ("tiny01", "tiny02"):
        generate(cfg, sheet)
    runner = CliRunner()
    result = runner.invoke(main, ["validate"])
    lenient = " ".join(result.output.split())
    assert result.exit_code == 0, result.output
    assert "WARNING marked work in progress (wip = true in source/tiny02/sheet.toml)" in lenient
    assert ("warning tiny02 (work in progress: marked work in progress (wip = true in source/tiny02/sheet.toml)): 1 "
            "notebook tasks; a sheet has 3–4") in lenient
    assert lenient.endswith("all checks passed (work in progress: warnings above); release with `mlph release tiny01`")
    result = runner.invoke(main, ["validate", "--strict"])
    strict = " ".join(result.output.split())
    assert result.exit_code != 0
    assert "tiny02: 1 notebook tasks; a sheet has 3–4" in strict
    assert "tiny02: marked work in progress (wip = true in source/tiny02/sheet.toml) (--strict)" in strict
    assert "tiny01:" not in strict.split("problem(s):")[1]  # the finished sheet still passes
    record_validation(cfg, "tiny02", [])  # even a passing validation does not release a wip sheet
    refused = runner.invoke(main, ["release", "tiny02", "--no-exchange"])
    assert refused.exit_code != 0
    assert "tiny02 is marked work in progress (wip = true in source/tiny02/sheet.toml)" in refused.output
