"""The demo's data directory carries its own plan and rule (course.toml): every command on it
(`mlph admission`, `mlph info`, …) counts the demo's semester, not the repository's, and the hint the
demo prints works as printed."""
from __future__ import annotations

import csv
import os
import subprocess
import sys
from datetime import datetime, timezone
from fractions import Fraction

from click.testing import CliRunner

from autograder.cli import main
from autograder.demo.run import command_prefix, demo_config
from gradebook.admission.rule import compute_standings
from gradebook.course.config import load_config
from gradebook.people.roster import import_students
from gradebook.store.db import open_gradebook

AS_OF = datetime(2026, 12, 1, 12, tzinfo=timezone.utc)


def _demo(course_factory, tmp_path):
    # tiny01, tiny02 (6 points each) due 2026-11-04; two planned sheets of 20 due 2027-02-01: the demo keeps the
    # next one only (32 points), the repository's plan has 52
    cfg = course_factory(tiny=("tiny01", "tiny02"), planned={"sheet09": 20, "sheet10": 20})
    toml = cfg.root / "mlph.toml"
    toml.write_text(toml.read_text().replace('threshold = "1/2"', 'threshold = "40%"\nmin_per_sheet = "1/10"'))
    cfg = load_config()  # the root from MLPH_ROOT, as a user would set it
    demo = demo_config(cfg, AS_OF)
    roster = tmp_path / "roster.csv"
    roster.write_text("student_id,last_name,first_name,email\nann,Adler,Ann,ann@uni.de\nbob,Berg,Bob,bob@uni.de\n")
    import_students(open_gradebook(demo.db_url), roster)
    return cfg, demo


def test_commands_on_the_demo_directory_read_the_demos_plan(course_factory, tmp_path, monkeypatch):
    cfg, demo = _demo(course_factory, tmp_path)
    assert cfg.semester_max == 52 and [s.id for s in cfg.semester] == ["tiny01", "tiny02", "sheet09", "sheet10"]
    monkeypatch.setenv("MLPH_COURSE_DIR", str(demo.data_dir))
    again = load_config()
    assert [s.id for s in again.semester] == ["tiny01", "tiny02", "sheet09"] == [s.id for s in demo.semester]
    assert again.semester_max == demo.semester_max == 32
    assert again.rule == demo.rule == cfg.rule  # 40 %, at least a tenth of every sheet: the course's own rule
    assert again.intake_identity == "shared" and again.db_url == demo.db_url
    assert again.db_url.endswith(f"{demo.data_dir}/gradebook.db")
    out = tmp_path / "admission.csv"
    result = CliRunner().invoke(main, ["admission", "--csv", str(out), "--as-of", AS_OF.isoformat()])
    assert result.exit_code == 0, result.output
    rows = {r["student_id"]: r for r in csv.DictReader(out.open(encoding="utf-8"))}
    expected = {s.student_id: s for s in compute_standings(open_gradebook(demo.db_url), demo, as_of=AS_OF)}
    assert set(rows) == set(expected) == {"ann", "bob"}
    for sid, row in rows.items():
        assert Fraction(row["max_points"]) == 32 and row["status"] == expected[sid].status
    info = CliRunner().invoke(main, ["info"])
    assert f"plan and rule:  {demo.data_dir / 'course.toml'}" in info.output


def test_the_printed_hint_runs_as_printed(course_factory, tmp_path, monkeypatch):
    _, demo = _demo(course_factory, tmp_path)
    venv_bin = os.path.dirname(sys.executable)
    for path in ("/usr/bin:/bin", f"{venv_bin}:/usr/bin:/bin"):  # a shell without and with the venv on PATH
        monkeypatch.setenv("PATH", path)
        hint = command_prefix(demo)
        assert hint.endswith(" mlph") == path.startswith(venv_bin), hint
        env = {k: v for k, v in os.environ.items() if k not in ("MLPH_COURSE_DIR", "MLPH_DB_URL", "MLPH_ROOT")}
        done = subprocess.run(["bash", "-c", f"{hint} admission --as-of {AS_OF.isoformat()}"], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert "admission: 2 roster students, maximum 32, threshold 12.8 points" in done.stdout, done.stdout
        assert "0 admitted, 2 open, 0 not_admitted" in done.stdout
