"""Operations: a grader killed with SIGKILL resumes without losing or doubling anything; grade-on-submit."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbformat

from autograder.grading.assemble import grade_id
from autograder.grading.run import autograde
from autograder.grading.watcher import watch
from autograder.limits import Limits
from autograder.nbgrader_bridge import fetch, generate, release, submit
from sandboxes import sandbox_cgroups, sandbox_processes
from coursefactory import TINY_ANSWER, WRONG_ANSWER

SLOW = "import time\ntime.sleep(0.6)\n"


def _put(cfg, student: str, answer: str) -> None:
    nb = nbformat.read(cfg.release_dir / "tiny01" / "tiny01.ipynb", as_version=4)
    for cell in nb.cells:
        if grade_id(cell) == "scale_solution":
            cell.source = answer
    d = cfg.data_dir / "submitted" / student / "tiny01"
    d.mkdir(parents=True, exist_ok=True)
    (d / "timestamp.txt").write_text("2026-11-03 12:00:00.000000 UTC")
    nbformat.write(nb, d / "tiny01.ipynb")


def _stored(db: Path) -> int:
    try:
        with sqlite3.connect(db) as conn:
            return conn.execute("SELECT count(*) FROM autograde_result").fetchone()[0]
    except sqlite3.OperationalError:  # not created yet
        return 0


def test_a_grader_killed_with_sigkill_resumes_without_loss_or_double_counting(course_factory, monkeypatch):
    cfg = course_factory()
    generate(cfg, "tiny01")
    expected = {}
    for i in range(12):
        right = i % 3 != 0
        _put(cfg, f"s{i:02d}", SLOW + (TINY_ANSWER if right else WRONG_ANSWER))
        expected[f"s{i:02d}"] = "3" if right else "0"
    db = Path(cfg.db_url.removeprefix("sqlite:///"))
    env = dict(os.environ, MLPH_ROOT=str(cfg.root))
    others, groups = sandbox_processes(), sandbox_cgroups()
    grader = subprocess.Popen([str(Path(sys.executable).parent / "mlph"), "autograde", "tiny01", "--no-progress",
                               "--workers", "2"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while _stored(db) < 4 and time.monotonic() < deadline and grader.poll() is None:
        time.sleep(0.05)
    os.kill(grader.pid, signal.SIGKILL)
    grader.wait()
    before = _stored(db)
    assert 4 <= before < 12, "the grader should have been killed mid-batch"
    deadline = time.monotonic() + 10  # its workers and their kernels follow it
    while sandbox_processes() - others and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not sandbox_processes() - others
    from autograder.sandbox import bwrap

    monkeypatch.setattr(bwrap, "STALE_AFTER", 0.0)  # what the killed grader's sandboxes left is swept at once
    bwrap.sweep_stale()
    assert not sandbox_cgroups() - groups

    summary = autograde(cfg, "tiny01", workers=2, limits=Limits(cell_timeout=10), progress=False)

    assert summary.skipped == before  # what was stored before the kill is not graded again
    assert len(summary.results) == 12 - before
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT student_id, score FROM autograde_result").fetchall()
        reasons = conn.execute("SELECT student_id, status, result_json FROM autograde_result").fetchall()
        subs = conn.execute("SELECT count(*) FROM submitted_assignment").fetchone()[0]
    assert len(rows) == 12 and subs == 12  # every submission exactly once
    assert {s: str(score) for s, score in rows} == expected, [r for r in reasons if r[1] != "graded"]


def test_watch_grades_a_submission_seconds_after_it_arrives(course_factory, tmp_path):
    cfg = course_factory(due="2030-01-07T10:00:00")
    generate(cfg, "tiny01")
    release(cfg, "tiny01")
    stop = threading.Event()
    said: list[str] = []
    watcher = threading.Thread(target=watch, args=(cfg, ["tiny01"]),
                               kwargs=dict(workers=1, limits=Limits(cell_timeout=10), interval=0.5,
                                           say=said.append, stop=stop.is_set))
    watcher.start()
    try:
        work = tmp_path / "ann"
        nb_path = fetch(cfg, "tiny01", "ann", work) / "tiny01.ipynb"
        nb = nbformat.read(nb_path, as_version=4)
        for cell in nb.cells:
            if grade_id(cell) == "scale_solution":
                cell.source = TINY_ANSWER
        nbformat.write(nb, nb_path)
        submitted = time.monotonic()
        submit(cfg, "tiny01", "ann", work)
        feedback = cfg.data_dir / "feedback" / "ann" / "tiny01" / "tiny01.html"
        while not feedback.is_file() and time.monotonic() - submitted < 60:
            time.sleep(0.05)
        latency = time.monotonic() - submitted
    finally:
        stop.set()
        watcher.join(timeout=60)
    # handed in after the tiny sheet's deadline: the student's feedback shows the visible checks only
    assert feedback.is_file() and "2 of 2</b> tests pass" in feedback.read_text()
    print(f"watch: feedback {latency:.2f} s after submitting")
    assert latency < 10, f"graded {latency:.1f} s after submitting"
    assert any(line.startswith("tiny01: ann: 3 / 3 points (graded") for line in said), said
    assert not watcher.is_alive()


def test_a_grader_failure_is_reported_and_retried_by_the_next_run(course_factory, monkeypatch):
    """A worker that dies (here: raises) fails its submission as `grader_error`, never the batch; the
    next run grades that submission again and leaves the others alone."""
    from concurrent.futures import ThreadPoolExecutor

    from autograder.grading import pipeline
    from autograder.grading.worker import parse_job

    cfg = course_factory()
    generate(cfg, "tiny01")
    for student in ("ann", "bob"):
        _put(cfg, student, TINY_ANSWER)
    real = pipeline.grade_job

    def dying(job):
        if parse_job(job)["student"] == "bob":
            raise RuntimeError("worker lost")
        return real(job)

    monkeypatch.setattr(pipeline, "grade_job", dying)
    with ThreadPoolExecutor(1) as pool:
        first = autograde(cfg, "tiny01", limits=Limits(cell_timeout=10), progress=False, executor=pool)
    by = {r["student"]: r for r in first.results}
    assert by["ann"]["status"] == "graded" and by["bob"]["status"] == "grader_error"
    assert "worker lost" in by["bob"]["reason"] and [r["student"] for r in first.failed] == ["bob"]
    monkeypatch.setattr(pipeline, "grade_job", real)
    second = autograde(cfg, "tiny01", limits=Limits(cell_timeout=10), progress=False)
    assert [(r["student"], r["status"], r["score"]) for r in second.results] == [("bob", "graded", "3")]
    assert second.skipped == 1


def test_nothing_passes_from_one_student_to_the_next(course_factory):
    """One worker, kernels started ahead of need: the second student's kernel shows no trace of the first."""
    cfg = course_factory()
    generate(cfg, "tiny01")
    leave = ("import os, sys, numpy\nopen('/tmp/trace', 'w').write('a'); open('trace', 'w').write('a')\n"
             "os.environ['TRACE'] = 'a'; numpy.TRACE = 'a'; sys.modules['trace_mod'] = numpy\n")
    look = ("import os, sys, numpy\nprint('TRACES', os.path.exists('/tmp/trace'), os.path.exists('trace'), "
            "'TRACE' in os.environ, hasattr(numpy, 'TRACE'), 'trace_mod' in sys.modules)\n")
    _put(cfg, "a_leaves", leave + TINY_ANSWER)
    _put(cfg, "b_looks", look + TINY_ANSWER)
    summary = autograde(cfg, "tiny01", workers=1, limits=Limits(cell_timeout=10), progress=False)
    assert [(r["student"], r["score"]) for r in summary.results] == [("a_leaves", "3"), ("b_looks", "3")]
    nb = nbformat.read(cfg.data_dir / "autograded" / "b_looks" / "tiny01" / "tiny01.ipynb", as_version=4)
    printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "TRACES False False False False False" in printed


def _worker_trouble(job):
    """In a real pool worker: one student's job kills its worker, another's exhausts the worker's memory."""
    import os

    from autograder.grading.worker import grade_job, parse_job

    if parse_job(job)["student"] == "killer":
        os._exit(9)
    if parse_job(job)["student"] == "hog":
        _ = bytearray(8 * 2**30)
    return grade_job(job)


def test_a_dead_or_exhausted_worker_costs_only_the_job_it_held(course_factory, monkeypatch):
    """Real worker processes: a worker that dies fails only the job it held (tried once more, then
    grader_error), a worker out of memory fails only its job (MemoryError), and every other submission in
    the same batch is graded."""
    from autograder.grading import pipeline

    cfg = course_factory()
    generate(cfg, "tiny01")
    students = ["ann", "bob", "cem", "dan", "hog", "killer"]
    for student in students:
        _put(cfg, student, TINY_ANSWER)
    monkeypatch.setattr(pipeline, "grade_job", _worker_trouble)
    monkeypatch.setenv("MLPH_WORKER_MEMORY_MIB", "3072")
    summary = autograde(cfg, "tiny01", workers=2, limits=Limits(cell_timeout=20), progress=False)
    by = {r["student"]: r for r in summary.results}
    assert sorted(by) == students
    assert all(by[s]["status"] == "graded" and by[s]["score"] == "3" for s in ("ann", "bob", "cem", "dan"))
    assert by["killer"]["status"] == "grader_error" and "worker process grading this job died" in by["killer"]["reason"]
    assert by["hog"]["status"] == "grader_error" and "MemoryError" in by["hog"]["reason"]
