"""The autograde run: coordinator of discovery, workers, scoring and storage, with progress."""
from __future__ import annotations

import logging
from datetime import datetime, timezone
import traceback
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Executor
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import nbformat
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from gradebook.points.autograde_store import (GRADER_ERROR, graded_fingerprints, graded_runs, require_sheet,
                                              stored_decisions, store_result)
from gradebook.points.grading_turn import KEPT, when_graded
from gradebook.course.config import CourseConfig
from gradebook.store.db import open_gradebook
from gradebook.points.handins import decision_fields, decision_for, latest_handins, roster_ids

from autograder.grading.feedback import write_feedback
from autograder.limits import Limits
from autograder.grading.pipeline import (CHANGED, Submission, collect_reports, default_workers, discover, executor_for, failed_result, finish,
                       make_job, source_hash, source_imports, submit_jobs, test_labels)
from autograder.grading.reference import load_reference
from autograder.sandbox.bwrap import prepare_sandboxes

log = logging.getLogger(__name__)


@dataclass
class Summary:
    sheet: str
    results: list[dict[str, Any]] = field(default_factory=list)
    skipped: int = 0
    held: list[str] = field(default_factory=list)  # in submitted/ but not on the roster: not graded
    changed: list[str] = field(default_factory=list)  # handed in again while this run read it: graded next run
    waiting: dict[str, datetime | None] = field(default_factory=dict)  # student -> their grading turn (None: never)
    kept: list[str] = field(default_factory=list)  # a late hand-in kept, not graded: one made in time counts

    @property
    def counts(self) -> Counter[str]:
        return Counter(r["status"] for r in self.results)

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.results if r["status"] != "graded"]


def _progress(enabled: bool) -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("ETA"),
                    TimeRemainingColumn(), disable=not enabled)


def _save_files(cfg: CourseConfig, sub: Submission, result: dict[str, Any], manifest: Any) -> None:
    """The graded notebook (its outputs already made inert by :func:`finish`) and the feedback page."""
    nb = result.pop("notebook", None)
    out = cfg.data_dir / "autograded" / sub.student / sub.sheet
    if nb is not None:
        out.mkdir(parents=True, exist_ok=True)
        tmp = out / f".{manifest.notebook}.part"
        text = nbformat.v4.writes(nb)  # nbformat.write's bytes, without its validation (it only ever warns)
        tmp.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
        tmp.replace(out / manifest.notebook)
    write_feedback(result, manifest, cfg.data_dir / "feedback", cfg.timezone)


def autograde(cfg: CourseConfig, sheet: str, *, workers: int | None = None, cluster: str | None = None,
              force: bool = False, students: list[str] | None = None, limits: Limits = Limits(),
              progress: bool = True, sandbox: bool = True, executor: Executor | None = None,
              preload: tuple[str, ...] | None = None, last: bool | None = None,
              connect_timeout: float = 20.0) -> Summary:
    """Grade every submission of ``sheet`` not graded yet in its current form (all with ``force``).

    Student code runs in bubblewrap sandboxes (``sandbox=False`` only for trusted notebooks); a
    missing bwrap is a :class:`SandboxUnavailable` before anything runs. ``executor`` reuses a pool
    (``preload``: the modules its kernels import ahead; ``last``: no kernels are needed after this).
    """
    if sandbox and not cluster and executor is None:  # a caller that brings a pool has prepared
        prepare_sandboxes()
    manifest = cfg.manifest(sheet)
    source_path = manifest.directory / manifest.notebook
    source = nbformat.read(source_path, as_version=4)
    shash = source_hash(source_path)
    engine = open_gradebook(cfg.db_url, create=False)
    require_sheet(engine, sheet)
    subs = discover(cfg, manifest, students, latest_handins(engine, sheet))
    roster = roster_ids(engine)
    held = [] if roster is None else sorted(s.student for s in subs if s.student not in roster)
    subs = [s for s in subs if s.student not in held]  # roster first: never graded into the admission list
    done = {} if force else graded_fingerprints(engine, sheet)
    todo = [s for s in subs if done.get(s.student) != s.fingerprint]
    counts = next((s.counts for s in cfg.semester if s.id == sheet), "last_in_time")
    waiting, kept = ({}, []) if force else _not_now(engine, manifest, counts, todo)
    todo = [s for s in todo if s.student not in waiting and s.student not in kept]
    summary = Summary(sheet, skipped=len(subs) - len(todo) - len(waiting), held=held, waiting=waiting, kept=kept)
    if not todo:
        return summary
    preload = source_imports(source) if preload is None else preload
    last = executor is None if last is None else last
    with ExitStack() as stack:
        pool = executor or stack.enter_context(
            executor_for(workers or default_workers(), cluster, (limits, sandbox, preload), connect_timeout))
        context = _Context(cfg, manifest, source, shash, engine, limits, sandbox, preload,
                           workers or default_workers() if last else 0, test_labels(source, manifest))
        _grade(context, todo, summary, pool, progress)
    summary.results.sort(key=lambda r: r["student"])
    return summary


def _not_now(engine: Any, manifest: Any, counts: str,
             todo: list[Submission]) -> tuple[dict[str, datetime | None], list[str]]:
    """The hand-ins not graded in this run: those waiting for their grading turn (the sheet's ``[grading]``
    limit), with that turn; and the late ones that a graded hand-in made in time outweighs (``counts``)."""
    runs, stored = graded_runs(engine, manifest.id), stored_decisions(engine, manifest.id)
    now = datetime.now(timezone.utc)
    waiting: dict[str, datetime | None] = {}
    kept: list[str] = []
    for sub in todo:
        if sub.invalid:  # nothing of the student's runs: never limited
            continue
        decision = decision_for(engine, manifest, sub.student, sub.submitted_at)
        count, last = runs.get(sub.student, (0, None))
        late, status = stored.get(sub.student, (None, None))
        turn = when_graded(counts, manifest.grading_rate, count, last, late, status, sub.submitted_at, decision, now)
        if turn == KEPT:
            kept.append(sub.student)
        elif turn is None or (isinstance(turn, datetime) and turn > now):
            waiting[sub.student] = turn
    return waiting, kept


@dataclass(frozen=True)
class _Context:
    cfg: CourseConfig
    manifest: Any
    source: Any
    shash: str
    engine: Any
    limits: Limits
    sandbox: bool
    preload: tuple[str, ...]
    last_without_spare: int  # the last jobs of a one-shot run start no spare kernel (nobody would use it)
    labels: dict[str, str]  # grade id -> how the student finds the test cell


def _store(ctx: _Context, sub: Submission, result: dict[str, Any]) -> dict[str, Any]:
    """Save the files and the database row of one result. Anything that fails here (a bug, a full disk, a
    lost database connection) costs this submission only: it is stored as a ``grader_error`` (retried by the
    next run) if that is possible, logged with its traceback for the instructors, and the batch goes on."""
    try:
        decision = decision_for(ctx.engine, ctx.manifest, sub.student, sub.submitted_at)
        result.update(decision_fields(decision, result["score"], ctx.cfg.timezone))
        _save_files(ctx.cfg, sub, result, ctx.manifest)
        store_result(ctx.engine, result)
        return result
    except Exception:
        log.exception("storing the result of %s/%s failed", sub.sheet, sub.student)
        failed = failed_result(sub, ctx.manifest, GRADER_ERROR, "the grader failed while storing this result; "
                               "it is tried again by the next run", ctx.labels)
        try:
            store_result(ctx.engine, failed)
        except Exception:
            log.exception("storing the grader error of %s/%s failed too", sub.sheet, sub.student)
        return failed


def _finished(ctx: _Context, sub: Submission, job: dict[str, Any], report: dict[str, Any] | BaseException,
              reference: Any) -> dict[str, Any]:
    """A worker's report (or its exception) → the submission's result; never raises."""
    if isinstance(report, BaseException):
        reason = f"the grader failed on this submission: {''.join(traceback.format_exception_only(report)).strip()}"
        log.error("%s/%s: %s", sub.sheet, sub.student, reason)
        return failed_result(sub, ctx.manifest, GRADER_ERROR, reason[:500], ctx.labels)  # retried by the next run
    try:
        return finish(sub, ctx.manifest, ctx.source, reference, report, job.get("notes", []))
    except Exception:
        log.exception("scoring %s/%s failed", sub.sheet, sub.student)
        return failed_result(sub, ctx.manifest, GRADER_ERROR, "the grader failed while scoring this submission; "
                             "it is tried again by the next run", ctx.labels)


def _grade(ctx: _Context, todo: list[Submission], summary: Summary, pool: Executor, progress: bool) -> None:
    by_student = {s.student: s for s in todo}

    with _progress(progress) as bar:
        task = bar.add_task(f"autograding {ctx.manifest.id}", total=len(todo), rate="")

        def record(sub: Submission, result: dict[str, Any]) -> None:
            summary.results.append(_store(ctx, sub, result))
            bar.advance(task)
            elapsed = bar.tasks[0].elapsed or 0.0
            bar.update(task, rate=f"{len(summary.results) / elapsed:.1f}/s" if elapsed else "")

        jobs = []
        for sub in todo:
            job = make_job(sub, ctx.manifest, ctx.source, ctx.limits, ctx.sandbox, ctx.preload, ctx.labels)
            if job.get("status") == CHANGED:  # replaced since discover(): the next pass grades it with its time
                summary.changed.append(sub.student)
                bar.advance(task)
            elif "status" in job:
                record(sub, job)
            else:
                jobs.append(job)
        for job in jobs[len(jobs) - ctx.last_without_spare:]:
            job["spare"] = False
        futures = submit_jobs(pool, jobs)
        try:  # the solution runs here while the workers grade (its reference is needed only to score)
            reference = load_reference(ctx.cfg, ctx.manifest, ctx.source, ctx.shash, ctx.limits, ctx.sandbox)
        except BaseException:
            for fut in futures:
                fut.cancel()
            raise

        def on_done(job: dict[str, Any], report: dict[str, Any] | BaseException) -> None:
            sub = by_student[job["student"]]
            record(sub, _finished(ctx, sub, job, report, reference))

        collect_reports(pool, futures, on_done)


def autograde_sheets(cfg: CourseConfig, sheets: list[str], *, workers: int | None = None,
                     cluster: str | None = None, limits: Limits = Limits(), sandbox: bool = True,
                     connect_timeout: float = 20.0, **options: Any) -> list[Summary]:
    """:func:`autograde` for several sheets with one pool of workers (and their kernels)."""
    if sandbox and not cluster:
        prepare_sandboxes()
    preload = _imports(cfg, sheets)
    n = workers or default_workers()
    with executor_for(n, cluster, (limits, sandbox, preload), connect_timeout) as pool:
        return [autograde(cfg, sheet, workers=n, cluster=cluster, limits=limits, sandbox=sandbox, executor=pool,
                          preload=preload, last=i == len(sheets) - 1, **options) for i, sheet in enumerate(sheets)]


def _imports(cfg: CourseConfig, sheets: list[str]) -> tuple[str, ...]:
    found: set[str] = set()
    for sheet in sheets:
        m = cfg.manifest(sheet)
        found |= set(source_imports(nbformat.read(m.directory / m.notebook, as_version=4)))
    return tuple(sorted(found))


def result_line(r: dict[str, Any]) -> str:
    """One result in one line, with the points the gradebook counts (and why, when that differs)."""
    counted = r.get("counted_score", r["score"])
    line = f"{r['student']}: {counted} / {r['max_score']} points ({r['status']}"
    if r.get("late"):
        line += f"; {r.get('decision', 'late')}"
    return line + (f": {r['reason']}" if r.get("reason") else "") + ")"
