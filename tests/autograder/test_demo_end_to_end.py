"""`mlph demo` end to end on the real sheets; its admission list recomputed independently."""
from __future__ import annotations

import csv
from datetime import datetime, timedelta, timezone
from fractions import Fraction

import pytest

from autograder.demo import run_demo

AS_OF = datetime(2026, 11, 24, 12, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("demo")
    from coursefactory import make_course
    from gradebook.course.config import load_config

    course = make_course(root / "course", tiny=(), real=("sheet01", "sheet02", "sheet03"),
                         planned={"sheet04": 20})
    mp.setenv("MLPH_ROOT", str(course))
    mp.setenv("MLPH_COURSE_DIR", str(root / "data"))
    mp.delenv("MLPH_DB_URL", raising=False)
    out = run_demo(load_config(course), n_students=30, seed=11, workers=2, say=lambda s: None, as_of=AS_OF)
    yield out
    mp.undo()


def independent_points(demo) -> dict[str, Fraction]:
    """Each student's total from nbgrader's own API, the tutors' CSV files and the manifests."""
    from nbgrader.api import Gradebook

    cfg = demo["config"]
    totals: dict[str, Fraction] = {s.id: Fraction(0) for s in demo["students"]}
    with Gradebook(cfg.db_url, course_id="mlph") as gb:
        for sheet in cfg.authored_sheets():
            m = cfg.manifest(sheet)
            deadline = (m.due + timedelta(minutes=15)).astimezone(timezone.utc).replace(tzinfo=None)
            for sub in gb.find_assignment(sheet).submissions:
                if sub.timestamp is not None and sub.timestamp <= deadline:
                    totals[sub.student.id] += Fraction(sub.score).limit_denominator(1000)
    for sheet in cfg.authored_sheets():
        with (cfg.data_dir / f"paper-{sheet}.csv").open(encoding="utf-8") as fh:
            for row in csv.DictReader(fh, delimiter=";"):
                totals[row["student_id"]] += Fraction(row["points"].replace(",", "."))
    return totals


def test_admission_list_agrees_with_an_independent_recomputation(demo):
    cfg = demo["config"]
    semester_max = sum(cfg.manifest(s).max_points for s in cfg.authored_sheets()) + 20
    threshold = semester_max / 2
    expected = independent_points(demo)
    rows = {r["student_id"]: r for r in csv.DictReader(demo["outputs"]["csv"].open(encoding="utf-8"))}
    assert set(rows) == set(expected)
    for sid, points in expected.items():
        row = rows[sid]
        assert Fraction(row["points"]) == points, sid
        assert Fraction(row["max_points"]) == semester_max
        status = "admitted" if points >= threshold else "not_admitted" if points + 20 < threshold else "open"
        assert row["status"] == status, sid
    assert {r["status"] for r in rows.values()} == {"admitted", "not_admitted", "open"}


def test_the_class_has_every_kind_of_hand_in(demo):
    figures = demo["figures"]["sheets"]
    assert all(f["status"].get("graded", 0) > 0 for f in figures.values())
    assert any(f["status"].get("invalid", 0) for f in figures.values())  # a broken notebook
    assert sum(f["submitted"] for f in figures.values()) < 3 * 30  # some students hand in nothing
    from nbgrader.api import Gradebook

    cfg = demo["config"]
    late = scores = 0
    with Gradebook(cfg.db_url, course_id="mlph") as gb:
        for sheet in cfg.authored_sheets():
            due = cfg.manifest(sheet).due.astimezone(timezone.utc).replace(tzinfo=None)
            subs = gb.find_assignment(sheet).submissions
            late += sum(1 for s in subs if s.timestamp > due + timedelta(minutes=15))
            scores += len({round(s.score, 3) for s in subs})
    assert late > 0
    assert scores > 9  # correct, partly wrong and empty hand-ins give many different scores


def test_outputs_exist_and_feedback_hides_hidden_tests(demo):
    out = demo["outputs"]
    assert out["xlsx"].stat().st_size > 0 and "| sheet01 |" in out["summary"].read_text()
    pages = list(out["feedback"].glob("*/sheet01/sheet01.html"))
    assert pages
    text = "".join(p.read_text() for p in pages)
    assert "BEGIN HIDDEN TESTS" not in text and "center_small_hidden" not in text


def test_mlph_admission_on_the_demo_directory_gives_the_demos_numbers(demo, tmp_path):
    from click.testing import CliRunner

    from autograder.cli import main

    cfg = demo["config"]
    out = tmp_path / "admission.csv"
    result = CliRunner().invoke(main, ["admission", "--csv", str(out), "--as-of", AS_OF.isoformat()],
                                env={"MLPH_COURSE_DIR": str(cfg.data_dir)})
    assert result.exit_code == 0, result.output
    assert out.read_text(encoding="utf-8") == demo["outputs"]["csv"].read_text(encoding="utf-8")
    counts = demo["figures"]["status"]
    assert (f"{counts.get('admitted', 0)} admitted, {counts.get('open', 0)} open, "
            f"{counts.get('not_admitted', 0)} not_admitted") in result.output
