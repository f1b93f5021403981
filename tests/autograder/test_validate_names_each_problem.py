"""`mlph validate` passes a sound sheet and names each kind of problem."""
from __future__ import annotations

import json

import nbformat
import pytest
from click.testing import CliRunner

from autograder.cli import main
from autograder.nbgrader_bridge import generate
from autograder.sheets.conventions import Conventions
from autograder.sheets.validate import check_leaks, secret_lines, validate_sheet
from coursefactory import tiny_notebook

# the tiny sheet is smaller than a real one (see test_validate_rules_catch_reviewer_findings.py)
TINY = Conventions(notebook_points=None, paper_points=None, notebook_tasks=(1, 4), paper_tasks=(0, 2),
                   min_mistakes=1, min_mistakes_per_cell=1)


def _edit_source(cfg, edit):
    path = cfg.source_dir / "tiny01" / "tiny01.ipynb"
    nb = nbformat.read(path, as_version=4)
    edit(nb)
    nbformat.write(nb, path)


def test_sound_sheet_passes(course_factory):
    cfg = course_factory(conforming=True)
    generate(cfg, "tiny01")
    report = validate_sheet(cfg, "tiny01", conventions=TINY)
    assert report.problems == []
    assert len(report.passed) == 19


def test_a_test_that_needs_its_expected_computation_is_reported(course_factory):
    """Expected-only statements are not sent to students' kernels; a test whose inputs depend on them
    (here: the expected value consumes random numbers before the hidden input is drawn) is unsound."""
    cfg = course_factory(conforming=True)

    def rng_order(nb):
        nb.cells[4].source = (
            'check("scale_more", scale([[1.0, 0.5]], 4), expected=[[4.0, 2.0]])\n### BEGIN HIDDEN TESTS\n'
            '_ref_rng = np.random.default_rng(5)\n_ref_e = _ref_rng.normal(size=3)\n_ref_x = _readonly(_ref_rng.normal(size=3))\n'
            'check("scale_hidden_b", scale(_ref_x, 2.0) + 0 * _ref_e, expected=2.0 * _ref_x)\n### END HIDDEN TESTS')

    _edit_source(cfg, rng_order)
    generate(cfg, "tiny01")
    report = validate_sheet(cfg, "tiny01", conventions=TINY)
    assert report.problems == []  # here `_e` is used by the value, so it is kept: sound

    def expected_only(nb):
        nb.cells[4].source = nb.cells[4].source.replace("scale(_ref_x, 2.0) + 0 * _ref_e", "scale(_ref_x, 2.0)")

    _edit_source(cfg, expected_only)
    generate(cfg, "tiny01")
    report = validate_sheet(cfg, "tiny01", conventions=TINY)
    assert report.problems == ["tiny01: test cell 'test_scale_more' fails: a hidden test failed"]


def test_vacuous_test_is_reported_through_the_cli(course_factory):
    cfg = course_factory()

    def vacuous(nb):
        nb.cells[4].source = 'check("always", 1.0, expected=1.0)'

    _edit_source(cfg, vacuous)
    generate(cfg, "tiny01")
    result = CliRunner().invoke(main, ["validate", "tiny01"])
    assert result.exit_code == 1
    assert "tiny01: test cell 'test_scale_more' passes on the unanswered student version (vacuous test)" in result.output


def test_leaked_solution_line_in_release_is_reported(course_factory):
    cfg = course_factory()
    generate(cfg, "tiny01")
    path = cfg.release_dir / "tiny01" / "tiny01.ipynb"
    source = nbformat.read(cfg.source_dir / "tiny01" / "tiny01.ipynb", as_version=4)
    nb = nbformat.read(path, as_version=4)
    nb.cells[0].source += "\n\nHint: multiply `x` by `a`."  # the idea in other words is no leak
    nbformat.write(nb, path)
    assert check_leaks(source, path.parent) == []
    nb.cells[0].source += "\n    return a * np.asarray(x, dtype=float)\n"
    nbformat.write(nb, path)
    report = validate_sheet(cfg, "tiny01")
    assert f"tiny01: {path}: contains the secret line 'return a * np.asarray(x, dtype=float)'" in report.problems
    assert ("tiny01: release/tiny01/tiny01.ipynb: release/ is out of date with source/tiny01; regenerate it with "
            "`mlph generate tiny01`") in report.problems


def test_hidden_test_line_in_any_release_file_is_reported(course_factory):
    cfg = course_factory()
    generate(cfg, "tiny01")
    (cfg.release_dir / "tiny01" / "notes.txt").write_text(
        'check("scale_hidden_b", scale(np.linspace(0, 1, 5), 3.25), expected=3.25 * np.linspace(0, 1, 5))\n')
    problems = validate_sheet(cfg, "tiny01").problems
    assert any("notes.txt: contains the secret line 'check(\"scale_hidden_b\"" in p for p in problems)
    assert ("tiny01: release/tiny01/notes.txt: not generated from source/tiny01: release/ is out of date; regenerate "
            "it with `mlph generate tiny01`") in problems


def test_secret_lines_exclude_lines_that_are_public_anyway():
    secrets = secret_lines(tiny_notebook())
    assert "return a * np.asarray(x, dtype=float)" in secrets
    assert "import numpy as np" not in secrets


def test_metadata_disagreement_and_lenient_mistake(course_factory):
    cfg = course_factory()

    def more_points(nb):
        nb.cells[3].metadata["nbgrader"]["points"] = 5

    _edit_source(cfg, more_points)
    (cfg.source_dir / "tiny01" / "mistakes.toml").write_text(
        "[[mistake]]\ncell = \"scale_solution\"\nwhy = \"a correct variant\"\nsource = '''\n"
        "def scale(x, a):\n    return np.multiply(x, a, dtype=float)\n'''\n")
    generate(cfg, "tiny01")
    problems = validate_sheet(cfg, "tiny01").problems
    assert "tiny01: test 'test_scale_visible': 1 points in the manifest, 5 in the notebook" in problems
    assert "tiny01: mistake in scale_solution: a correct variant: gets full points" in problems


def test_failing_solution_is_reported(course_factory):
    cfg = course_factory()

    def broken(nb):
        nb.cells[2].source = nb.cells[2].source.replace("a * np", "a + np")

    _edit_source(cfg, broken)
    generate(cfg, "tiny01")
    problems = validate_sheet(cfg, "tiny01").problems
    assert any("test cell 'test_scale_visible' does not pass on the solution: AssertionError: check 'scale_visible'"
               in p for p in problems)


def test_unknown_sheet_is_a_clear_error(course_factory):
    course_factory()
    result = CliRunner().invoke(main, ["validate", "sheet99"])
    assert result.exit_code == 2
    assert "unknown sheet 'sheet99'" in result.output and "authored sheets: tiny01" in result.output
