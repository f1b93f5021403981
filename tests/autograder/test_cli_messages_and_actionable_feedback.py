"""The autograder side of "a CLI that never leaves the user guessing": re-release, unknown sheets, an
unreachable scheduler, and feedback a student can act on (cells named as they see them, the cause of a
follow-up error, a stub, a broken notebook's line and column)."""
from __future__ import annotations

import time

import nbformat
from click.testing import CliRunner

from autograder.cli import main
from autograder.grading.assemble import grade_id
from autograder.grading.run import autograde
from autograder.limits import Limits
from autograder.nbgrader_bridge import generate
from autograder.sheets.release_gate import record_validation
from coursefactory import TINY_ANSWER

LIMITS = Limits(cell_timeout=3, notebook_timeout=60, interrupt_grace=2)


def _put(cfg, student: str, answer: str | None, raw: str | None = None) -> None:
    d = cfg.data_dir / "submitted" / student / "tiny01"
    d.mkdir(parents=True)
    if raw is not None:
        (d / "tiny01.ipynb").write_text(raw)
        return
    nb = nbformat.read(cfg.release_dir / "tiny01" / "tiny01.ipynb", as_version=4)
    for cell in nb.cells:
        if grade_id(cell) == "scale_solution" and answer is not None:
            cell.source = answer
    nbformat.write(nb, d / "tiny01.ipynb")


def test_a_corrected_sheet_is_released_again_only_with_force(course_factory):
    cfg = course_factory(due="2030-01-07T10:00:00")
    generate(cfg, "tiny01")
    record_validation(cfg, "tiny01", [])  # as a passing `mlph validate` leaves it
    runner = CliRunner()
    assert runner.invoke(main, ["release", "tiny01"]).exit_code == 0
    again = runner.invoke(main, ["release", "tiny01"])
    assert again.exit_code == 2 and "already released" in again.output and "--force" in again.output
    assert "Traceback" not in again.output
    forced = runner.invoke(main, ["release", "tiny01", "--force"])
    assert forced.exit_code == 0, forced.output


def test_unknown_sheet_and_unreachable_scheduler_are_messages(course_factory):
    cfg = course_factory()
    runner = CliRunner()
    generate(cfg, "tiny01")
    result = runner.invoke(main, ["collect", "sheet99"])
    assert result.exit_code == 2 and "unknown sheet 'sheet99'" in result.output
    t0 = time.monotonic()
    result = runner.invoke(main, ["autograde", "tiny01", "--cluster", "tcp://127.0.0.1:9", "--connect-timeout", "2",
                                  "--no-progress"])
    assert result.exit_code == 2 and "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in result.output
    assert time.monotonic() - t0 < 30 and "Traceback" not in result.output


def test_feedback_names_cells_as_the_student_sees_them_and_links_causes(course_factory):
    cfg = course_factory()
    generate(cfg, "tiny01")
    _put(cfg, "stuck", "import time\ntime.sleep(30)\n" + TINY_ANSWER)  # the answer cell never finishes
    _put(cfg, "stub", None)
    _put(cfg, "broken", None, raw='{"cells": [\n  {"cell_type": "code",\n   "source": oops}\n]}')
    summary = autograde(cfg, "tiny01", workers=2, limits=LIMITS, progress=False)
    res = {r["student"]: r for r in summary.results}
    stuck = res["stuck"]
    assert any("your answer cell `import time` (task Scaling) ran past its 3 s limit" in n for n in stuck["notes"])
    assert not any("cell 2" in n for n in stuck["notes"])  # no 0-based index
    for cell in stuck["cells"]:
        assert cell["label"].startswith("the test `check(") and "(task Scaling)" in cell["label"]
        assert "most likely because your answer cell `import time` (task Scaling) ran past its time limit" in cell["message"]
    assert all(c["message"].startswith("not implemented yet") for c in res["stub"]["cells"])
    broken = res["broken"]
    assert broken["status"] == "invalid" and "line 3, column 14" in broken["reason"]
    assert all("see the note at the top" in c["message"] for c in broken["cells"])
    page = (cfg.data_dir / "feedback" / "stuck" / "tiny01" / "tiny01.html").read_text()
    assert "handed in:" in page and "deadline:" in page

