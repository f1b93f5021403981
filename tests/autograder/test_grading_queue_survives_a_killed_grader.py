"""Grade on submit through the queue: a grader killed with SIGKILL mid-job leaves the job to the next grader
and nothing is graded twice; hand-ins made while one is graded are folded into one job (the one in between is
never graded); a second grader of a course starts only as a deliberate extra worker."""
from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from autograder.errors import AutograderError
from autograder.grading.watcher import log_path, watch
from autograder.intake.upload import accept_upload
from autograder.limits import Limits
from autograder.nbgrader_bridge import generate
from sandboxes import sandbox_cgroups, sandbox_processes
from coursefactory import TINY_ANSWER, WRONG_ANSWER, student_notebook
from gradebook.points import grading_queue as gq
from gradebook.store.db import open_gradebook
from gradebook.store.models import AutogradeResult, GradingJob, Handin

LIMITS = Limits(cell_timeout=20)


def _course(course_factory: Any, db_url: str | None = None, monkeypatch: Any = None) -> Any:
    """The tiny sheet due in the future, graded as often as handed in (no rate limit: the queue is tested);
    on ``db_url`` (SQLite or PostgreSQL) when given."""
    cfg = course_factory(due="2099-01-01T10:00:00")
    if db_url is not None:
        monkeypatch.setenv("MLPH_DB_URL", db_url)
        cfg = dataclasses.replace(cfg, db_url=db_url)
    with (cfg.root / "source" / "tiny01" / "sheet.toml").open("a") as fh:
        fh.write("\n[grading]\nminutes_between = 0\n")
    generate(cfg, "tiny01")
    return cfg


def _hand_in(cfg: Any, student: str, answer: str) -> int:
    rec = accept_upload(cfg, open_gradebook(cfg.db_url), sheet="tiny01", student=student, kind="notebook",
                        filename="tiny01.ipynb", data=student_notebook(cfg, answer), uploaded_by=student,
                        per_minute=100)
    assert rec.status == "accepted", rec.reason
    assert rec.handin_id is not None
    return rec.handin_id


def _jobs(cfg: Any) -> list[GradingJob]:
    with Session(open_gradebook(cfg.db_url)) as session:
        return list(session.scalars(select(GradingJob).order_by(GradingJob.id)))


def _results(cfg: Any) -> dict[str, tuple[str, int]]:
    with Session(open_gradebook(cfg.db_url)) as session:
        return {r.student_id: (r.score, r.graded_runs) for r in session.scalars(select(AutogradeResult))}


def _watch_until(cfg: Any, done: Any, timeout: float = 120, **kw: Any) -> list[str]:
    said: list[str] = []
    deadline = time.monotonic() + timeout
    watch(cfg, ["tiny01"], workers=1, limits=LIMITS, say=said.append,
          stop=lambda: done() or time.monotonic() > deadline, **kw)
    return said


SLOW = "import time\ntime.sleep(1.0)\n"


def test_a_grader_killed_mid_job_leaves_it_to_the_next_and_nothing_is_graded_twice(course_factory, db_url,
                                                                                   monkeypatch):
    cfg = _course(course_factory, db_url, monkeypatch)
    expected = {}
    for i in range(6):
        right = i % 2 == 0
        _hand_in(cfg, f"s{i}", SLOW + (TINY_ANSWER if right else WRONG_ANSWER))
        expected[f"s{i}"] = ("3" if right else "0", 1)
    others, groups = sandbox_processes(), sandbox_cgroups()
    grader = subprocess.Popen([str(Path(sys.executable).parent / "mlph"), "autograde", "tiny01", "--watch",
                               "--workers", "1", "--lease", "3"], env=dict(os.environ, MLPH_ROOT=str(cfg.root)),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    victim = None
    while time.monotonic() < deadline and grader.poll() is None:
        jobs = _jobs(cfg)
        if sum(j.state == "done" for j in jobs) >= 2 and (running := [j for j in jobs if j.state == "running"]):
            victim = running[0]
            break
        time.sleep(0.05)
    os.kill(grader.pid, signal.SIGKILL)
    grader.wait()
    assert victim is not None, "the grader should have been killed while grading"
    deadline = time.monotonic() + 10  # its workers and their kernels follow it
    while sandbox_processes() - others and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not sandbox_processes() - others
    from autograder.sandbox import bwrap

    monkeypatch.setattr(bwrap, "STALE_AFTER", 0.0)  # what the killed grader's sandboxes left is swept at once
    bwrap.sweep_stale()
    assert not sandbox_cgroups() - groups
    before = _results(cfg)
    assert 2 <= len(before) < 6 and victim.student_id not in before

    # the killed grader's heartbeat is still fresh: the next one joins deliberately, and takes the job over
    said = _watch_until(cfg, lambda: len(_results(cfg)) == 6, join=True, lease=timedelta(seconds=3))

    assert _results(cfg) == expected, said  # every hand-in graded exactly once (one graded run each)
    jobs = _jobs(cfg)
    again = next(j for j in jobs if j.id == victim.id)
    assert (again.state, again.outcome, again.attempts) == ("done", "graded", 2)
    assert again.grader != victim.grader  # the second grader took it over
    assert len(jobs) == 6 and all(j.state == "done" for j in jobs)
    assert all(j.received_at is not None and j.queued_at <= j.started_at <= j.finished_at for j in jobs)


def test_hand_ins_made_while_one_is_graded_are_folded_into_one_job(course_factory, db_url, monkeypatch):
    cfg = _course(course_factory, db_url, monkeypatch)
    first = _hand_in(cfg, "ann", SLOW * 3 + WRONG_ANSWER)
    seen: dict[str, Any] = {}

    def resubmit_while_graded() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(j.state == "running" for j in _jobs(cfg)):
            time.sleep(0.05)
        time.sleep(1.0)  # the first hand-in's code runs now
        seen["middle"] = _hand_in(cfg, "ann", WRONG_ANSWER)
        seen["last"] = _hand_in(cfg, "ann", TINY_ANSWER)
        seen["bob"] = _hand_in(cfg, "bob", TINY_ANSWER)

    def settled() -> bool:
        jobs = _jobs(cfg)
        return "bob" in seen and all(j.state == "done" for j in jobs) and {j.handin_id for j in jobs
                                                                           if j.outcome == "graded"} >= {seen["last"], seen["bob"]}

    t = threading.Thread(target=resubmit_while_graded)
    t.start()
    _watch_until(cfg, settled)
    t.join()
    jobs = _jobs(cfg)
    ann = [j for j in jobs if j.student_id == "ann"]
    graded = [j.handin_id for j in ann if j.outcome == "graded"]
    # the first job ran on (graded, or found its files replaced before it read them); then the newest hand-in
    # was graded in one job that took the middle one's place: the middle one is never graded
    assert ann[0].handin_id == first and ann[0].outcome in ("graded", "changed")
    assert graded[-1] == seen["last"] and seen["middle"] not in graded and set(graded) <= {first, seen["last"]}
    assert [(j.handin_id, j.replaced) for j in ann[1:]] == [(seen["last"], 1)]
    assert _results(cfg) == {"ann": ("3", len(graded)), "bob": ("3", 1)}
    with Session(open_gradebook(cfg.db_url)) as session:
        assert session.get(Handin, seen["middle"]).status == "accepted"  # kept, listed: just never graded
    assert "ann: 3 / 3 points (graded)" in log_path(cfg).read_text()  # the grader's log, in the data directory


def test_a_second_grader_starts_only_as_a_deliberate_extra_worker(course_factory):
    cfg = _course(course_factory)
    engine = open_gradebook(cfg.db_url)
    gq.register_grader(engine, "elsewhere:4242:abc", "elsewhere", 4242, ["tiny01"])
    with pytest.raises(AutograderError, match="already running on this course .*elsewhere, process 4242.*--join"):
        watch(cfg, ["tiny01"], workers=1, limits=LIMITS, say=lambda s: None, stop=lambda: True)
    _hand_in(cfg, "ann", TINY_ANSWER)
    _watch_until(cfg, lambda: "ann" in _results(cfg), join=True)
    assert _results(cfg) == {"ann": ("3", 1)}
