"""The autograde run: coordinator of discovery, workers, scoring and storage, with progress."""
from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
import time
import traceback
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Executor, Future
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import nbformat
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from gradebook.points.autograde_store import (GRADER_ERROR, graded_fingerprints, graded_runs, require_sheet,
                                              stored_decisions, store_result, store_results)
from gradebook.points.grading_turn import KEPT, when_graded
from gradebook.course.config import CourseConfig
from gradebook.store.db import open_gradebook
from gradebook.points.handins import decision_fields, decision_for, decisions_for, latest_handins, roster_ids

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


def notebook_text(nb: dict[str, Any]) -> str:
    """A graded notebook as a file, one cell per line: JSON that nbformat and Jupyter read as they read their
    own files (keys sorted, text as strings), written by the C encoder in one pass instead of nbformat's
    deep copy and indented pure-Python encoding (3/4 of the coordinator's time per submission). Without the
    transient fields nbformat strips on writing; the notebook is the caller's and is edited."""
    meta = dict(nb.get("metadata") or {})
    for key in ("orig_nbformat", "orig_nbformat_minor", "signature"):
        meta.pop(key, None)
    cells = []
    for cell in nb.get("cells", []):
        if isinstance(cell.get("metadata"), dict) and "trusted" in cell["metadata"]:
            cell["metadata"] = {k: v for k, v in cell["metadata"].items() if k != "trusted"}
        cells.append("  " + json.dumps(cell, sort_keys=True, ensure_ascii=False))
    return ('{\n "cells": [\n' + ",\n".join(cells) + '\n ],\n "metadata": '
            + json.dumps(meta, sort_keys=True, ensure_ascii=False)
            + f',\n "nbformat": {int(nb.get("nbformat", 4))},\n "nbformat_minor": {int(nb.get("nbformat_minor", 5))}\n}}\n')


def _save_files(cfg: CourseConfig, sub: Submission, result: dict[str, Any], manifest: Any) -> None:
    """The graded notebook (its outputs already made inert by :func:`finish`) and the feedback page."""
    nb = result.pop("notebook", None)
    out = cfg.data_dir / "autograded" / sub.student / sub.sheet
    if nb is not None:
        out.mkdir(parents=True, exist_ok=True)
        tmp = out / f".{manifest.notebook}.part"
        tmp.write_text(notebook_text(nb), encoding="utf-8")
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
    decisions = decisions_for(engine, manifest, {sub.student: sub.submitted_at for sub in todo if not sub.invalid})
    for sub in todo:
        if sub.invalid:  # nothing of the student's runs: never limited
            continue
        decision = decisions[sub.student]
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


STORE_BATCH = 32  # results whose database rows are written in one transaction ...
STORE_AFTER = 0.5  # ... or fewer, once the first of them has waited this many seconds


class _Store:
    """The results of a run as they arrive: each one's files (graded notebook, feedback) at once, the database
    rows of several in one transaction (:func:`store_results`). Anything that fails here (a bug, a full disk, a
    lost database connection) costs the submission it concerns only: a batch that cannot be stored is stored
    one by one, and a result that still fails is stored as a ``grader_error`` (retried by the next run) if
    that is possible, logged with its traceback for the instructors; the run goes on."""

    def __init__(self, ctx: _Context, done: Callable[[dict[str, Any]], None]) -> None:
        self.ctx, self.done = ctx, done
        self.pending: list[tuple[Submission, dict[str, Any]]] = []
        self.since = 0.0

    def add(self, sub: Submission, result: dict[str, Any]) -> None:
        if not self.pending:
            self.since = time.monotonic()
        self.pending.append((sub, result))
        if len(self.pending) >= STORE_BATCH:
            self.flush()

    def due(self) -> None:
        """Store what has waited long enough (called between results and while the workers are busy)."""
        if self.pending and time.monotonic() - self.since >= STORE_AFTER:
            self.flush()

    def flush(self) -> None:
        batch, self.pending = self.pending, []
        if not batch:
            return
        ctx = self.ctx
        try:
            decisions = decisions_for(ctx.engine, ctx.manifest, {sub.student: sub.submitted_at for sub, _ in batch})
        except Exception:
            log.exception("reading the late decisions of %s failed", ctx.manifest.id)
            decisions = {}
        ready = [(sub, self._files(sub, result, decisions.get(sub.student))) for sub, result in batch]
        try:
            store_results(ctx.engine, [result for _, result in ready])
        except Exception:
            log.exception("storing %d results of %s at once failed; storing them one by one", len(ready), ctx.manifest.id)
            ready = [(sub, self._one(sub, result)) for sub, result in ready]
        for _, result in ready:
            self.done(result)

    def _failed(self, sub: Submission) -> dict[str, Any]:
        return failed_result(sub, self.ctx.manifest, GRADER_ERROR, "the grader failed while storing this result; "
                             "it is tried again by the next run", self.ctx.labels)

    def _files(self, sub: Submission, result: dict[str, Any], decision: Any) -> dict[str, Any]:
        ctx = self.ctx
        try:
            if decision is None:
                decision = decision_for(ctx.engine, ctx.manifest, sub.student, sub.submitted_at)
            result.update(decision_fields(decision, result["score"], ctx.cfg.timezone))
            _save_files(ctx.cfg, sub, result, ctx.manifest)
            return result
        except Exception:
            log.exception("storing the result of %s/%s failed", sub.sheet, sub.student)
            return self._failed(sub)

    def _one(self, sub: Submission, result: dict[str, Any]) -> dict[str, Any]:
        try:
            store_result(self.ctx.engine, result)
            return result
        except Exception:
            log.exception("storing the result of %s/%s failed", sub.sheet, sub.student)
        failed = self._failed(sub)
        try:
            store_result(self.ctx.engine, failed)
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

        def stored(result: dict[str, Any]) -> None:
            summary.results.append(result)
            bar.advance(task)
            elapsed = bar.tasks[0].elapsed or 0.0
            bar.update(task, rate=f"{len(summary.results) / elapsed:.1f}/s" if elapsed else "")

        store = _Store(ctx, stored)
        futures: dict[Future[str], dict[str, Any]] = {}
        last = len(todo) - ctx.last_without_spare
        for i, sub in enumerate(todo):  # each job to the workers as soon as it is made: they start at once
            job = make_job(sub, ctx.manifest, ctx.source, ctx.limits, ctx.sandbox, ctx.preload, ctx.labels)
            if job.get("status") == CHANGED:  # replaced since discover(): the next pass grades it with its time
                summary.changed.append(sub.student)
                bar.advance(task)
            elif "status" in job:
                store.add(sub, job)
            else:
                if i >= last:
                    job["spare"] = False
                futures.update(submit_jobs(pool, [job]))
        try:  # the solution runs here while the workers grade (its reference is needed only to score)
            reference = load_reference(ctx.cfg, ctx.manifest, ctx.source, ctx.shash, ctx.limits, ctx.sandbox)
        except BaseException:
            for fut in futures:
                fut.cancel()
            store.flush()
            raise

        def on_done(job: dict[str, Any], report: dict[str, Any] | BaseException) -> None:
            sub = by_student[job["student"]]
            store.add(sub, _finished(ctx, sub, job, report, reference))
            store.due()

        try:
            collect_reports(pool, futures, on_done, idle=store.due)
        finally:
            store.flush()


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
