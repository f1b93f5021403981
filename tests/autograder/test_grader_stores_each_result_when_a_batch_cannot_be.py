"""The grader stores results in batches; a batch the database refuses costs no result: each is stored alone."""
from __future__ import annotations

import json

from autograder.grading import run
from autograder.grading.run import autograde
from autograder.limits import Limits
from autograder.nbgrader_bridge import generate
from coursefactory import TINY_ANSWER, WRONG_ANSWER
from test_autograde_scores_match_nbgrader import put, scores, student_nb


def test_results_are_stored_one_by_one_when_their_batch_fails(course_factory, monkeypatch):
    cfg = course_factory()
    generate(cfg, "tiny01")
    release = cfg.release_dir / "tiny01" / "tiny01.ipynb"
    put(cfg, "right", student_nb(release, TINY_ANSWER.strip("\n")))
    put(cfg, "wrong", student_nb(release, WRONG_ANSWER))
    put(cfg, "broken", "{")
    batches = []

    def refuse(engine, results):
        batches.append([r["student"] for r in results])
        raise RuntimeError("the database refused the batch")

    monkeypatch.setattr(run, "store_results", refuse)
    summary = autograde(cfg, "tiny01", limits=Limits(cell_timeout=10), progress=False)
    assert sorted(s for b in batches for s in b) == ["broken", "right", "wrong"]  # every result was offered in a batch
    assert {r["student"]: (r["status"], r["score"]) for r in summary.results} == {
        "right": ("graded", "3"), "wrong": ("graded", "0"), "broken": ("invalid", "0")}
    assert scores(cfg) == {"right": 3, "wrong": 0, "broken": 0}  # ... and then stored alone


def test_the_graded_notebook_file_reads_back_as_the_notebook(course_factory):
    import nbformat

    cfg = course_factory()
    generate(cfg, "tiny01")
    release = cfg.release_dir / "tiny01" / "tiny01.ipynb"
    put(cfg, "right", student_nb(release, TINY_ANSWER.strip("\n") + "\nprint('ünïcode')"))
    autograde(cfg, "tiny01", limits=Limits(cell_timeout=10), progress=False)
    path = cfg.data_dir / "autograded" / "right" / "tiny01" / "tiny01.ipynb"
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert json.loads(path.read_text(encoding="utf-8")) == json.loads(run.notebook_text(nb))
    printed = [o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert any("ünïcode" in t for t in printed)
