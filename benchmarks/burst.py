"""Benchmark: the deadline rush through the real intake and grade-on-submit.

N (default 300) hand-ins of sheet01 arrive over a window (default 5 minutes; uniform random arrival times),
a share of them (default 20 %) resubmissions of students who handed in before. Every hand-in goes through the
web intake (:func:`autograder.intake.upload.accept_upload`: checks, the file written with its time of
receipt, the record and its grading job in one transaction); one `mlph autograde sheet01 --watch` process
grades them from the queue (sandbox on, local workers, one per core). Printed, from the queue's own records:
p50/p95/max of hand-in → feedback (the job's end, feedback written) and of queue wait (queued, or the
student's grading turn, → started), the throughput, and the check that no hand-in is graded twice (one graded
run per graded job, never two graded jobs of the same files) and that every student's last hand-in is the one
graded. The sheet is due tomorrow, so every hand-in is in time; ``--minutes-between`` sets the sheet's
``[grading]`` rate (default 0: graded as often as handed in; the course's default is 10 minutes, and a
resubmission then waits for its turn, which is not counted as queue wait).

    .venv/bin/python benchmarks/burst.py [--n 300] [--minutes 5] [--resubmit 0.2] [--db-url URL]
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

os.environ.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(REPO / "tests"))

import nbformat  # noqa: E402
from sqlalchemy import select  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402


def build(root: Path, n_students: int, minutes_between: float, db_url: str | None) -> tuple[Any, list[bytes]]:
    """The course (sheet01 due tomorrow) and a pool of honest hand-ins (solutions, mistakes, stubs)."""
    from coursefactory import make_course

    from autograder.demo.simulate import handin, make_class
    from autograder.nbgrader_bridge import generate, release
    from autograder.sheets.validate import load_mistakes
    from gradebook.course.config import load_config

    course = make_course(root / "course", tiny=(), real=("sheet01",))
    toml = course / "source" / "sheet01" / "sheet.toml"
    due = (datetime.now(timezone.utc) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S")
    text = "\n".join(f'due = "{due}"' if line.startswith("due = ") else
                     'timezone = "UTC"' if line.startswith("timezone = ") else line
                     for line in toml.read_text().splitlines())
    toml.write_text(text + f"\n\n[grading]\nminutes_between = {minutes_between}\nmax_runs = 1000\n")
    os.environ.update(MLPH_ROOT=str(course), MLPH_COURSE_DIR=str(root / "data"))
    if db_url:
        os.environ["MLPH_DB_URL"] = db_url
    else:
        os.environ.pop("MLPH_DB_URL", None)
    cfg = load_config(course)
    generate(cfg, "sheet01")
    release(cfg, "sheet01")
    m = cfg.manifest("sheet01")
    source = nbformat.read(m.directory / m.notebook, as_version=4)
    released = nbformat.read(cfg.release_dir / "sheet01" / m.notebook, as_version=4)
    rng = random.Random(11)
    pool = [nbformat.writes(handin(s, m, source, released, load_mistakes(m), rng).notebook).encode()  # type: ignore[arg-type]
            for s in make_class(min(n_students, 60), seed=11)]
    return cfg, pool


def arrivals(n: int, resubmit: float, window: float, seed: int = 5) -> list[tuple[float, str]]:
    """(seconds from the start, student) of every hand-in, in order; resubmissions by students who handed in."""
    rng = random.Random(seed)
    times = sorted(rng.uniform(0, window) for _ in range(n))
    firsts = n - round(n * resubmit)
    kinds = ["first"] * firsts + ["again"] * (n - firsts)
    rng.shuffle(kinds)
    kinds[0] = "first"
    out, seen, k = [], [], 0
    for t, kind in zip(times, kinds):
        if kind == "first" or not seen:
            student = f"st{k:04d}"
            k += 1
            seen.append(student)
        else:
            student = rng.choice(seen)
        out.append((t, student))
    return out


def hand_in_all(cfg: Any, pool: list[bytes], plan: list[tuple[float, str]]) -> list[tuple[int, str]]:
    """Every hand-in of the plan at its time, through the web intake; (handin id, student) of each."""
    from autograder.intake.upload import accept_upload
    from gradebook.store.db import open_gradebook

    engine = open_gradebook(cfg.db_url)
    start = time.monotonic()
    done: list[tuple[int, str]] = []
    lock = threading.Lock()

    def one(i: int, at: float, student: str) -> None:
        time.sleep(max(0.0, at - (time.monotonic() - start)))
        rec = accept_upload(cfg, engine, sheet="sheet01", student=student, kind="notebook", filename="sheet01.ipynb",
                            data=pool[i % len(pool)], uploaded_by=student, per_minute=1000)
        assert rec.status == "accepted" and rec.handin_id is not None, rec.reason
        with lock:
            done.append((rec.handin_id, student))

    with ThreadPoolExecutor(16) as ex:
        for f in [ex.submit(one, i, at, s) for i, (at, s) in enumerate(plan)]:
            f.result()
    return done


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def _utc(when: datetime | None) -> datetime:
    assert when is not None
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when


def settled(engine: Any, handins: list[tuple[int, str]]) -> bool:
    """Every student's newest hand-in is the graded one and nothing waits or runs."""
    from gradebook.store.models import AutogradeResult, GradingJob, Handin

    newest: dict[str, int] = {}
    for hid, student in handins:
        newest[student] = max(hid, newest.get(student, 0))
    with Session(engine) as session:
        active = session.scalar(select(GradingJob.id).where(GradingJob.state.in_(("queued", "running"))).limit(1))
        received = {h.id: _utc(h.received_at) for h in session.scalars(select(Handin))}
        graded = {r.student_id: _utc(r.submitted_at) for r in session.scalars(select(AutogradeResult))
                  if r.submitted_at is not None}
    return active is None and all(graded.get(s) == received[h] for s, h in newest.items())


def report(engine: Any, handins: list[tuple[int, str]], wall: float) -> bool:
    from gradebook.store.models import AutogradeResult, GradingJob, Handin

    with Session(engine) as session:
        jobs = list(session.scalars(select(GradingJob).order_by(GradingJob.id)))
        received = {h.id: _utc(h.received_at) for h in session.scalars(select(Handin))}
        runs = {r.student_id: (r.graded_runs, _utc(r.submitted_at)) for r in session.scalars(select(AutogradeResult))}
    graded = [j for j in jobs if j.outcome == "graded"]
    feedback = [(_utc(j.finished_at) - received[j.handin_id]).total_seconds() for j in graded if j.handin_id]
    waits = [(_utc(j.started_at) - max(_utc(j.queued_at), _utc(j.not_before or j.queued_at))).total_seconds()
             for j in graded]
    per_student: dict[str, list[int]] = {}
    for hid, student in sorted(handins):
        per_student.setdefault(student, []).append(hid)
    pairs = [(j.student_id, j.fingerprint) for j in graded]
    twice = len(pairs) - len(set(pairs))
    wrong_last = [s for s, hids in per_student.items() if runs.get(s, (0, None))[1] != received[hids[-1]]]
    runs_ok = sum(r for r, _ in runs.values()) == len(graded)
    resubmitted = sum(len(h) - 1 for h in per_student.values())
    folded = sum(j.replaced for j in jobs)
    print(f"hand-ins {len(handins)} ({resubmitted} resubmissions) by {len(per_student)} students; "
          f"graded jobs {len(graded)}; hand-ins folded into a waiting job {folded}")
    print(f"hand-in -> feedback  p50 {pct(feedback, 50):6.2f} s   p95 {pct(feedback, 95):6.2f} s   max {max(feedback):6.2f} s")
    print(f"queue wait           p50 {pct(waits, 50):6.2f} s   p95 {pct(waits, 95):6.2f} s   max {max(waits):6.2f} s"
          f"   (target p95 <= 60 s: {'met' if pct(waits, 95) <= 60 else 'MISSED'})")
    print(f"throughput {len(graded) / wall:.2f} graded/s over {wall:.1f} s from the first hand-in to the last feedback")
    print(f"graded twice (same student, same files): {twice}; graded runs stored = graded jobs: {runs_ok}; "
          f"students whose last hand-in is not the graded one: {len(wrong_last)}")
    return twice == 0 and runs_ok and not wrong_last


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=300, help="hand-ins in all")
    ap.add_argument("--minutes", type=float, default=5.0, help="the arrival window")
    ap.add_argument("--resubmit", type=float, default=0.2, help="share of resubmissions")
    ap.add_argument("--minutes-between", type=float, default=0.0, help="the sheet's [grading] rate")
    ap.add_argument("--workers", type=int, default=None, help="grader workers (default: one per core)")
    ap.add_argument("--db-url", default=None, help="a PostgreSQL URL (default: SQLite in the course directory)")
    args = ap.parse_args()
    from gradebook.store.db import open_gradebook

    root = Path(tempfile.mkdtemp(prefix="mlph-burst-"))
    try:
        cfg, pool = build(root, args.n, args.minutes_between, args.db_url)
        engine = open_gradebook(cfg.db_url)
        plan = arrivals(args.n, args.resubmit, args.minutes * 60)
        cmd = [str(BIN / "mlph"), "autograde", "sheet01", "--watch", "--no-progress"]
        cmd += ["--workers", str(args.workers)] if args.workers else []
        print(f"load before: {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} cores; db {cfg.db_url.split('@')[-1]}")
        grader = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(5)  # the grader's workers start their first kernels
            start = time.monotonic()
            handins = hand_in_all(cfg, pool, plan)
            print(f"all {len(handins)} hand-ins made in {time.monotonic() - start:.1f} s; waiting for the last feedback")
            deadline = time.monotonic() + 1800
            while not settled(engine, handins) and time.monotonic() < deadline:
                time.sleep(0.5)
            wall = time.monotonic() - start
        finally:
            grader.send_signal(signal.SIGTERM)
            grader.wait(120)
        ok = report(engine, handins, wall)
        print(f"load after: {os.getloadavg()[0]:.2f} (1 min)")
        sys.exit(0 if ok else 1)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
