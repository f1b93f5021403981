"""The same grading code path on a Dask cluster (a real LocalCluster with worker processes)."""
from __future__ import annotations

import pytest

from autograder.grading.run import autograde
from autograder.limits import Limits
from autograder.nbgrader_bridge import generate
from coursefactory import TINY_ANSWER, WRONG_ANSWER
from test_autograde_scores_match_nbgrader import put, scores, student_nb


@pytest.fixture
def cluster():
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as c:
        yield c


def test_autograde_on_a_dask_cluster_gives_the_local_scores(course_factory, cluster):
    cfg = course_factory()
    generate(cfg, "tiny01")
    release = cfg.release_dir / "tiny01" / "tiny01.ipynb"
    put(cfg, "right", student_nb(release, TINY_ANSWER.strip("\n")))
    put(cfg, "wrong", student_nb(release, WRONG_ANSWER))
    put(cfg, "broken", "{")
    summary = autograde(cfg, "tiny01", cluster=cluster.scheduler_address, limits=Limits(cell_timeout=10),
                        progress=False)
    assert {r["student"]: (r["status"], r["score"]) for r in summary.results} == {
        "right": ("graded", "3"), "wrong": ("graded", "0"), "broken": ("invalid", "0")}
    assert scores(cfg) == {"right": 3, "wrong": 0, "broken": 0}
