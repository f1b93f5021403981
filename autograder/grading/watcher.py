"""Grade on submit: a grader serving the gradebook's grading queue (:mod:`gradebook.points.grading_queue`).

Every hand-in queues its grading when it is recorded (web upload, Hub, exchange collect, LMS zip, `mlph
regrade`); :func:`watch` takes the oldest job whenever one of its worker slots is free, grades it with
:func:`~autograder.grading.run.autograde` for that one student (the rate limit and the late rules decide as
ever), and blocks on a wake-up (:class:`~gradebook.store.wakeup.Waiter`) in between. Beside the queue it
looks at nbgrader's exchange when its inbound directory changes (one ``stat`` a tick) and, as a slow
fallback, sweeps for hand-ins without a job. Several graders (processes, machines, a Dask cluster behind
each) share the queue; each announces itself with a heartbeat row that the web application reads.
The grader's log goes to ``<data dir>/logs/grader.log``.
"""
from __future__ import annotations

import logging
import logging.handlers
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from gradebook.course.config import CourseConfig
from gradebook.points import grading_queue as gq
from gradebook.points.autograde_store import graded_fingerprints
from gradebook.points.handins import latest_handins
from gradebook.store.db import open_gradebook
from gradebook.store.wakeup import Waiter

from autograder.errors import AutograderError, SandboxUnavailable
from autograder.grading.pipeline import default_workers, discover, executor_for
from autograder.grading.run import Summary, _imports, autograde, result_line
from autograder.intake.exchange import COURSE_ID, collect as collect_exchange
from autograder.limits import Limits
from autograder.sandbox.bwrap import prepare_sandboxes

log = logging.getLogger("mlph.grader")
LOG_NAME = "grader.log"


def log_path(cfg: CourseConfig) -> Path:
    """Where graders of the course write their log (the admin page links it)."""
    return cfg.data_dir / "logs" / LOG_NAME


def _file_log(cfg: CourseConfig) -> logging.Handler:
    path = log_path(cfg)
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.handlers.RotatingFileHandler(path, maxBytes=5_000_000, backupCount=3, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"))
    for name in ("mlph.grader", "autograder", "gradebook"):
        logging.getLogger(name).addHandler(handler)
    logging.getLogger("mlph.grader").setLevel(logging.INFO)
    return handler


def _outcome(summary: Summary, student: str) -> tuple[str, str | None, datetime | None, str | None]:
    """(outcome, fingerprint, not_before, reason) of a one-student run."""
    if summary.results:
        r = summary.results[0]
        return str(r["status"]), r.get("fingerprint"), None, r.get("reason") or None
    return _not_graded(summary, student)


def _graded_receipt(summary: Summary) -> datetime | None:
    """The time of receipt of the files a one-student run graded."""
    when = summary.results[0].get("submitted_at") if summary.results else None
    return datetime.fromisoformat(when) if isinstance(when, str) else None


def _not_graded(summary: Summary, student: str) -> tuple[str, str | None, datetime | None, str | None]:
    if student in summary.waiting:
        turn = summary.waiting[student]
        return ("never", None, None, "late and beyond the sheet's limit of graded runs") if turn is None \
            else ("waiting", None, turn, "waits for the student's grading turn")
    if student in summary.kept:
        return "kept", None, None, "late; the hand-in made in time counts"
    if student in summary.held:
        return "held", None, None, "not on the roster"
    if student in summary.changed:
        return "changed", None, None, "handed in again while it was read; the newer hand-in is queued"
    return "up_to_date", None, None, None


class _Grader:
    """One watcher process: its identity, its pool, its slots."""

    def __init__(self, cfg: CourseConfig, engine: Engine, sheets: list[str] | None, pool: Executor, slots: int,
                 limits: Limits, sandbox: bool, preload: tuple[str, ...], say: Callable[[str], None],
                 lease: timedelta) -> None:
        self.cfg, self.engine, self.sheets, self.pool = cfg, engine, sheets, pool
        self.limits, self.sandbox, self.preload, self.say, self.lease = limits, sandbox, preload, say, lease
        self.id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.free = threading.Semaphore(slots)
        self.running: dict[int, gq.Job] = {}
        self.lock = threading.Lock()
        self.threads = ThreadPoolExecutor(slots, thread_name_prefix="grader-slot")

    def run_job(self, job: gq.Job, waiter: Waiter) -> None:
        try:
            summary = autograde(self.cfg, job.sheet, students=[job.student], limits=self.limits, progress=False,
                                sandbox=self.sandbox, executor=self.pool, preload=self.preload)
            outcome, fp, turn, reason = _outcome(summary, job.student)
            gq.finish(self.engine, job, self.id, outcome, fingerprint=fp, reason=reason, not_before=turn,
                      graded=_graded_receipt(summary))
            for r in summary.results:
                self.say(f"{job.sheet}: {result_line(r)}")
            if outcome in ("waiting", "never", "kept", "held"):
                self.say(f"{job.sheet}: {job.student}: {reason}" + (f" (at {turn:%Y-%m-%d %H:%M:%S} UTC)" if turn else ""))
        except Exception as exc:  # this job's grader error (the sweep queues it again); the grader goes on
            log.exception("grading %s/%s failed", job.sheet, job.student)
            self.say(f"{job.sheet}: grading {job.student} failed ({type(exc).__name__}: {str(exc)[:200]})")
            gq.finish(self.engine, job, self.id, "grader_error", reason=f"{type(exc).__name__}: {str(exc)[:300]}")
        finally:
            with self.lock:
                self.running.pop(job.id, None)
            self.free.release()
            waiter.poke()

    def fill(self, waiter: Waiter) -> None:
        """Claim jobs while a slot is free."""
        while self.free.acquire(blocking=False):
            job = gq.claim(self.engine, self.id, self.sheets, lease=self.lease)
            if job is None:
                self.free.release()
                return
            with self.lock:
                self.running[job.id] = job
            self.threads.submit(self.run_job, job, waiter)

    def beat(self) -> None:
        with self.lock:
            jobs = list(self.running)
        gq.heartbeat(self.engine, self.id, jobs, self.lease)


class _Exchange:
    """nbgrader's exchange, looked at when its inbound directory changes (and on every sweep)."""

    def __init__(self, cfg: CourseConfig, engine: Engine, sheets: list[str] | None, say: Callable[[str], None]):
        self.cfg, self.engine, self.sheets, self.say = cfg, engine, sheets, say
        self.inbound = cfg.exchange_dir / COURSE_ID / "inbound"
        self.seen: int | None = None

    def changed(self) -> bool:
        try:
            stamp = self.inbound.stat().st_mtime_ns
        except OSError:
            return False
        new, self.seen = stamp != self.seen, stamp
        return new

    def collect(self) -> None:
        for sheet in self.sheets if self.sheets is not None else _gradable(self.cfg, self.engine):
            try:
                report = collect_exchange(self.cfg, self.engine, sheet)
            except Exception as exc:  # an unreleased sheet, the database away: said, and tried again later
                log.info("collecting %s: %s", sheet, exc)
                continue
            for student, why in report.held + report.refused + report.failed:
                self.say(f"{sheet}: hand-in {student} not accepted: {why}")


def _gradable(cfg: CourseConfig, engine: Engine) -> list[str]:
    """The sheets of the semester that are in the gradebook (released)."""
    from gradebook.course.sheets_state import student_sheets

    return [s for s in cfg.authored_sheets() if s in student_sheets(engine, cfg)]


def watch(cfg: CourseConfig, sheets: list[str] | None, *, workers: int | None = None, cluster: str | None = None,
          limits: Limits = Limits(), sandbox: bool = True, interval: float = 0.5, sweep_every: float = 60.0,
          say: Callable[[str], None] = print, stop: Callable[[], bool] = lambda: False,
          connect_timeout: float = 20.0, join: bool = False, lease: timedelta = gq.LEASE) -> None:
    """Serve the grading queue for ``sheets`` (None: every released sheet) until ``stop()`` or Ctrl-C.

    ``interval``: how often the exchange's inbound directory is looked at (one stat); the queue itself wakes
    the grader. Refuses to start beside a live grader of the course unless ``join`` (several graders share the
    queue safely: this one is then a deliberate extra worker)."""
    engine = open_gradebook(cfg.db_url, create=False)
    with Session(engine) as session:
        alive = [g for g in gq.graders(session) if g.alive]
    if alive and not join:
        g = alive[0]
        raise AutograderError(f"a grader is already running on this course ({g.host}, process {g.pid}, since "
                              f"{g.started_at:%Y-%m-%d %H:%M} UTC, heartbeat {g.heartbeat_at:%H:%M:%S} UTC). Graders share "
                              "the queue safely: start this one with --join to add it as an extra worker")
    if sandbox and not cluster:
        prepare_sandboxes()
    handler = _file_log(cfg)

    def said(text: str) -> None:  # said, and in the grader's log
        log.info("%s", text)
        say(text)

    preload = _imports(cfg, sheets if sheets is not None else _gradable(cfg, engine))
    n = workers or default_workers()
    try:
        with executor_for(n, cluster, (limits, sandbox, preload), connect_timeout) as pool, Waiter(engine) as waiter:
            grader = _Grader(cfg, engine, sheets, pool, n, limits, sandbox, preload, said, lease)
            gq.register_grader(engine, grader.id, socket.gethostname(), os.getpid(), sheets, str(log_path(cfg)))
            said(f"grading {', '.join(sheets) if sheets else 'every released sheet'} as hand-ins arrive "
                 f"({n} worker(s), grader {grader.id}; log {log_path(cfg)}; Ctrl-C to stop)")
            try:
                with _terminate_as_interrupt():
                    _serve(grader, _Exchange(cfg, engine, sheets, said), waiter, stop, interval, sweep_every)
            except KeyboardInterrupt:
                said("stopping: the jobs in hand are finished first")
            finally:
                grader.threads.shutdown(wait=True, cancel_futures=True)
                gq.stop_grader(engine, grader.id)
    finally:
        for name in ("mlph.grader", "autograder", "gradebook"):
            logging.getLogger(name).removeHandler(handler)
        handler.close()


@contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM (systemd, `mlph serve --grade` stopping) ends the grader as Ctrl-C does: cleanly, its heartbeat
    row marked stopped and its jobs handed back."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    before = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


def _serve(grader: _Grader, exchange: _Exchange, waiter: Waiter, stop: Callable[[], bool], interval: float,
           sweep_every: float) -> None:
    """The grader's rounds: the queue is looked at after a wake-up, a change in the exchange, a finished job, at
    a waiting job's turn and with each heartbeat (which also takes over the jobs of graders that died);
    between them the grader blocks (waking every ``interval`` only to ``stat`` the exchange's inbound)."""
    next_sweep = next_beat = 0.0
    beat_every = grader.lease.total_seconds() / 4
    woke, turn = True, None
    while not stop():
        now = time.monotonic()
        try:
            look = woke or now >= next_beat or (turn is not None and turn <= datetime.now(timezone.utc))
            if exchange.changed():
                time.sleep(0.2)  # let the student's copy into the entry finish
                exchange.collect()
                look = True
            if now >= next_sweep:
                exchange.collect()
                for sheet in grader.sheets if grader.sheets is not None else _gradable(grader.cfg, grader.engine):
                    _sweep(grader.cfg, grader.engine, sheet)
                next_sweep, look = now + sweep_every, True
            if now >= next_beat:
                grader.beat()
                next_beat = now + beat_every
            if look:
                grader.fill(waiter)
                turn = gq.next_turn(grader.engine, grader.sheets)
        except (SandboxUnavailable, KeyboardInterrupt):
            raise
        except Exception as exc:  # the database away, a bug: said and logged; the next round runs
            log.exception("the grader's round failed")
            grader.say(f"this round failed ({type(exc).__name__}: {str(exc)[:200]}); trying again")
            turn = None
            time.sleep(1.0)
        timeout = min(interval if exchange.inbound.is_dir() else sweep_every,
                      max(next_beat - time.monotonic(), 0.0), max(next_sweep - time.monotonic(), 0.0))
        if turn is not None:
            timeout = min(timeout, max((turn - datetime.now(timezone.utc)).total_seconds(), 0.05))
        woke = waiter.wait(timeout)


def _sweep(cfg: CourseConfig, engine: Engine, sheet: str) -> None:
    """Queue what is in ``submitted/`` and not graded in its current form but has no job (the fallback)."""
    manifest = cfg.manifest(sheet)
    subs = discover(cfg, manifest, None, latest_handins(engine, sheet))
    done = graded_fingerprints(engine, sheet)
    queued = gq.enqueue_stale(engine, sheet, {s.student: s.fingerprint for s in subs if done.get(s.student) != s.fingerprint})
    if queued:
        log.info("%s: %d hand-in(s) without a job queued by the sweep", sheet, queued)


def spawn_grader(cfg: CourseConfig, *extra: str) -> subprocess.Popen[bytes]:
    """``mlph autograde --watch`` for every released sheet, as a child process (for `mlph serve --grade`
    and `mlph demo --serve`); its log goes to :func:`log_path`."""
    mlph = str(Path(sys.executable).with_name("mlph"))
    env = dict(os.environ, MLPH_COURSE_DIR=str(cfg.data_dir), MLPH_DB_URL=cfg.db_url)
    path = log_path(cfg)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("ab") as errors:  # what it says goes to the log by itself; its errors (a refusal) too
        return subprocess.Popen([mlph, "autograde", "--watch", "--no-progress", *extra], env=env,
                                stdout=subprocess.DEVNULL, stderr=errors)


def stop_child(proc: subprocess.Popen[bytes], wait: float = 30.0) -> None:
    proc.terminate()
    try:
        proc.wait(wait)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()

