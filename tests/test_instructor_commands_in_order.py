"""The instructor's commands in order, as a user types them: release, collect, autograde, points, admission."""
from __future__ import annotations

import csv

import nbformat
from click.testing import CliRunner

from autograder.grading.assemble import grade_id
from autograder.cli import main
from autograder.nbgrader_bridge import fetch, generate, submit
from autograder.sheets.release_gate import record_validation
from coursefactory import TINY_ANSWER, WRONG_ANSWER


def test_release_collect_autograde_points_admission(course_factory, tmp_path):
    cfg = course_factory(due="2030-01-07T10:00:00")  # submissions made now are on time
    run = CliRunner().invoke
    generate(cfg, "tiny01")
    record_validation(cfg, "tiny01", [])  # as a passing `mlph validate` leaves it (the real one: tests/autograder)
    result = run(main, ["release", "tiny01"])
    assert result.exit_code == 0, result.output
    assert (cfg.exchange_dir / "mlph" / "outbound" / "tiny01" / "tiny01.ipynb").is_file()
    assert "BEGIN SOLUTION" not in (cfg.release_dir / "tiny01" / "tiny01.ipynb").read_text()
    roster = tmp_path / "roster.csv"
    roster.write_text("student_id,last_name,first_name,email\nann,Adler,Ann,ann@uni.de\nbob,Berg,Bob,bob@uni.de\n"
                      "cem,Cinar,Cem,cem@uni.de\n")
    assert "3 added" in run(main, ["students", "import", str(roster)]).output
    for student, answer in (("ann", TINY_ANSWER), ("bob", WRONG_ANSWER)):
        work = tmp_path / student
        nb_path = fetch(cfg, "tiny01", student, work) / "tiny01.ipynb"
        nb = nbformat.read(nb_path, as_version=4)
        for cell in nb.cells:
            if grade_id(cell) == "scale_solution":
                cell.source = answer
        nbformat.write(nb, nb_path)
        submit(cfg, "tiny01", student, work)
    result = run(main, ["collect", "tiny01"])
    assert result.exit_code == 0 and "tiny01: 2 new hand-in(s)" in result.output
    result = run(main, ["autograde", "tiny01", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert (cfg.data_dir / "feedback" / "bob" / "tiny01" / "tiny01.html").is_file()
    template = tmp_path / "template.csv"
    assert run(main, ["points", "template", "tiny01", "--output", str(template)]).exit_code == 0
    filled = template.read_text().replace("ann,proof,,", "ann,proof,3,").replace("bob,proof,,", "bob,proof,1.5,")
    template.write_text(filled)
    result = run(main, ["points", "import", "tiny01", str(template), "--author", "tutor"])
    assert "2 written" in result.output, result.output
    out = tmp_path / "admission.csv"
    result = run(main, ["admission", "--csv", str(out), "--as-of", "2030-02-01T00:00:00+00:00"])
    assert result.exit_code == 0, result.output
    rows = {r["student_id"]: r for r in csv.DictReader(out.open())}
    assert (rows["ann"]["points"], rows["ann"]["max_points"], rows["ann"]["percent"], rows["ann"]["status"]) == (
        "6", "6", "100.00", "admitted")
    assert (rows["bob"]["points"], rows["bob"]["status"], rows["bob"]["points_needed"]) == ("1.5", "not_admitted", "1.5")
    assert (rows["cem"]["points"], rows["cem"]["status"]) == ("0", "not_admitted")
