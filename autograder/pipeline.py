"""`mlph autograde`: find submissions, grade them in parallel, store each result as it arrives.

Stages are functions on plain data: :func:`discover` (filesystem → submissions),
:func:`make_job` (submission → job, or a ready result for an invalid one), the worker's
:func:`~autograder.worker.grade_job` (job → run report), :func:`finish` (run report → result) and
:func:`~gradebook.autograde_store.store_result` (result → one database transaction).
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from fractions import Fraction
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import nbformat
from nbformat import NotebookNode
from nbformat.reader import NotJSONError

from gradebook.config import CourseConfig
from gradebook.manifest import Manifest

from .assemble import assemble
from .harden import harden
from .limits import Limits
from .nbgrader_bridge import CHECK_MODULE
from .scoring import Reference, score_run
from .worker import grade_job

GRADER_VERSION = "1"
MAX_NOTEBOOK_BYTES = 20_000_000
MAX_FILE_BYTES = 1_000_000
IGNORED = {"timestamp.txt", CHECK_MODULE.name}


@dataclass(frozen=True)
class Submission:
    sheet: str
    student: str
    directory: Path
    notebook: Path
    submitted_at: datetime | None
    fingerprint: str


def _timestamp(directory: Path) -> datetime | None:
    path = directory / "timestamp.txt"
    if not path.is_file():
        return None
    from nbgrader.utils import parse_utc

    try:
        return parse_utc(path.read_text().strip()).replace(tzinfo=timezone.utc)
    except (ValueError, OverflowError):
        return None


def fingerprint(directory: Path, source_hash: str) -> str:
    h = hashlib.sha256(f"{GRADER_VERSION}\0{source_hash}\0".encode())
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(directory)).encode() + b"\0")
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def source_hash(source_path: Path) -> str:
    return hashlib.sha256(source_path.read_bytes() + CHECK_MODULE.read_bytes()).hexdigest()


def discover(cfg: CourseConfig, manifest: Manifest, students: Iterable[str] | None = None) -> list[Submission]:
    """Every ``submitted/<student>/<sheet>/`` directory, in student order."""
    shash = source_hash(manifest.directory / manifest.notebook)
    wanted = set(students) if students else None
    subs = []
    for directory in sorted((cfg.data_dir / "submitted").glob(f"*/{manifest.id}")):
        student = directory.parent.name
        if not directory.is_dir() or (wanted is not None and student not in wanted):
            continue
        subs.append(Submission(manifest.id, student, directory, directory / manifest.notebook,
                               _timestamp(directory), fingerprint(directory, shash)))
    return subs


def _files(sub: Submission) -> dict[str, str]:
    """The submission's small text files besides the notebook (modules a student wrote)."""
    files = {}
    for path in sorted(sub.directory.rglob("*")):
        rel = str(path.relative_to(sub.directory))
        if path.is_file() and not path.is_symlink() and path != sub.notebook and rel not in IGNORED \
                and path.stat().st_size <= MAX_FILE_BYTES and path.suffix in {".py", ".txt", ".csv", ".json"}:
            try:
                files[rel] = path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                continue
    return files


def base_result(sub: Submission, manifest: Manifest) -> dict[str, Any]:
    return {"sheet": sub.sheet, "student": sub.student, "fingerprint": sub.fingerprint,
            "submitted_at": sub.submitted_at.isoformat() if sub.submitted_at else None,
            "max_score": str(manifest.notebook_points), "score": "0", "cells": [], "notes": [], "timings": {}}


def failed_result(sub: Submission, manifest: Manifest, status: str, reason: str) -> dict[str, Any]:
    res = base_result(sub, manifest)
    res["cells"] = [{"grade_id": g, "points": "0", "max_points": str(p), "status": "not_run", "message": reason}
                    for g, p in manifest.test_points.items()]
    return res | {"status": status, "reason": reason}


def load_notebook(path: Path) -> NotebookNode:
    """A submitted notebook, or ValueError with the reason it is not a valid one."""
    if path.stat().st_size > MAX_NOTEBOOK_BYTES:
        raise ValueError(f"{path.name} is larger than {MAX_NOTEBOOK_BYTES // 1_000_000} MB")
    try:
        nb = nbformat.reads(path.read_text(encoding="utf-8"), as_version=4)
        nbformat.validate(nb)
    except (UnicodeDecodeError, json.JSONDecodeError, NotJSONError) as exc:
        raise ValueError(f"{path.name} is not a notebook (not JSON: {str(exc)[:120]})") from exc
    except Exception as exc:  # nbformat raises several kinds on a malformed notebook
        raise ValueError(f"{path.name} is not a valid notebook: {str(exc).splitlines()[0][:200]}") from exc
    return nb


def make_job(sub: Submission, manifest: Manifest, source: NotebookNode, limits: Limits,
             sandboxed: bool = True) -> dict[str, Any]:
    """The worker's job for a submission, or a finished result (``"status"`` key) if it cannot run."""
    if not sub.notebook.is_file():
        return failed_result(sub, manifest, "missing", f"no {manifest.notebook} in the submission")
    try:
        submitted = load_notebook(sub.notebook)
    except ValueError as exc:
        return failed_result(sub, manifest, "invalid", str(exc))
    assembly = assemble(source, submitted)
    return {"sheet": sub.sheet, "student": sub.student, "notebook": harden(assembly.notebook),
            "files": _files(sub), "limits": limits.to_dict(), "notes": assembly.notes,
            "sandbox": sandboxed, "prestart": True}


def finish(sub: Submission, manifest: Manifest, source: NotebookNode, reference: Reference,
           run: dict[str, Any], notes: list[str]) -> dict[str, Any]:
    """Score a run report (trusted code, outside the kernel) into the submission's result."""
    run["notebook"] = nbformat.from_dict(run["notebook"])
    cells = score_run(run, reference, manifest.test_points, source)
    status = {"ok": "graded", "timeout": "timeout"}.get(run["status"], "crashed")
    res = base_result(sub, manifest)
    res.update(status=status, reason=run.get("reason", ""), notes=notes, timings=run.get("timings", {}),
               cells=[c.to_json() for c in cells], score=str(sum((c.points for c in cells), Fraction(0))),
               notebook=run["notebook"])
    return res


@contextmanager
def executor_for(workers: int, cluster: str | None) -> Iterator[Executor]:
    """One code path for local and distributed grading: a concurrent.futures Executor either way."""
    if cluster:
        from distributed import Client

        client = Client(cluster)
        try:
            yield client.get_executor()
        finally:
            client.close()
    else:
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("forkserver")) as pool:
            yield pool


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)))


def run_jobs(executor: Executor, jobs: list[dict[str, Any]],
             on_done: Callable[[dict[str, Any], dict[str, Any] | BaseException], None]) -> None:
    """Submit every job; call ``on_done(job, report_or_exception)`` as each finishes."""
    futures: dict[Future[str], dict[str, Any]] = {}
    for job in jobs:
        payload = {k: v for k, v in job.items() if k != "notes"}
        futures[executor.submit(grade_job, payload)] = job
    for fut in as_completed(futures):
        job = futures[fut]
        try:
            on_done(job, json.loads(fut.result()))
        except BaseException as exc:  # a failed submission is data, never a crashed batch
            if isinstance(exc, KeyboardInterrupt):
                raise
            on_done(job, exc)
