"""`mlph autograde`: find submissions, grade them in parallel, store each result as it arrives.

Stages are functions on plain data: :func:`discover` (filesystem → submissions),
:func:`make_job` (submission → job, or a ready result for an invalid one), the worker's
:func:`~autograder.grading.worker.grade_job` (job → run report), :func:`finish` (run report → result) and
:func:`~gradebook.autograde_store.store_result` (result → one database transaction).
"""
from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
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

from autograder.grading.assemble import assemble, is_answer
from autograder.grading.harden import harden
from autograder.sandbox.kernels import worker_init
from autograder.limits import Limits
from autograder.nbgrader_bridge import CHECK_MODULE
from autograder.sandbox.bwrap import check_bwrap
from autograder.grading.scoring import Reference, score_run
from autograder.grading.worker import grade_job

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


def parse_timestamp(text: str) -> datetime:
    """An nbgrader timestamp (``2026-11-03 12:00:00.000000 CET``) as an aware UTC datetime: nbgrader's
    ``parse_utc``, without importing nbgrader (0.6 s) on the grading path."""
    from dateutil.parser import parse
    from dateutil.tz import gettz

    parts = text.strip().split(" ")
    if len(parts) == 3:
        zone: Any = parts[2]
        try:
            zone = int(zone)
        except ValueError:
            zone = gettz(zone)
        when = parse(" ".join(parts[:2] + ["TZ"]), tzinfos={"TZ": zone})
    else:
        when = parse(text)
    return when.astimezone(timezone.utc) if when.tzinfo else when.replace(tzinfo=timezone.utc)


def _timestamp(directory: Path) -> datetime | None:
    path = directory / "timestamp.txt"
    if not path.is_file():
        return None
    try:
        return parse_timestamp(path.read_text())
    except (ValueError, OverflowError):  # dateutil's ParserError is a ValueError
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


def source_imports(source: NotebookNode) -> tuple[str, ...]:
    """Installed modules that the sheet's own cells (setup and tests, as students' kernels get them)
    import: a kernel can import them before it is needed. Answer cells are not looked at."""
    found: set[str] = set()
    for cell in harden(source).cells:
        if cell.cell_type != "code" or is_answer(cell):
            continue
        try:
            tree = ast.parse("".join(cell.source))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.add(node.module)
    return tuple(sorted(m for m in found if m.split(".")[0] != CHECK_MODULE.stem and _installed(m)))


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module.split(".")[0]) is not None
    except (ImportError, ValueError):
        return False


def make_job(sub: Submission, manifest: Manifest, source: NotebookNode, limits: Limits,
             sandboxed: bool = True, preload: tuple[str, ...] = ()) -> dict[str, Any]:
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
            "sandbox": sandboxed, "prestart": True, "preload": list(preload)}


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
def executor_for(workers: int, cluster: str | None, warm: tuple[Limits, bool, tuple[str, ...]] | None = None) -> Iterator[Executor]:
    """One code path for local and distributed grading: a concurrent.futures Executor either way.
    ``warm`` (limits, sandboxed, preload): local workers start their first kernel at once; with a
    sandbox, every Dask worker must be able to run one (else a clear error before any job)."""
    if cluster:
        from distributed import Client

        client = Client(cluster)
        try:
            if warm and warm[1]:
                client.run(check_bwrap)
            yield client.get_executor()
        finally:
            client.close()
    else:
        init = functools.partial(worker_init, os.getpid(), warm)
        ctx = get_context("forkserver")
        ctx.set_forkserver_preload(["autograder.grading.worker"])  # imported once, not once per worker
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=init) as pool:
            if warm:  # workers are spawned on demand: ask for all of them now
                for _ in range(workers):
                    pool.submit(int)
            yield pool


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)))


def submit_jobs(executor: Executor, jobs: list[dict[str, Any]]) -> dict[Future[str], dict[str, Any]]:
    """Hand every job to the executor (workers start at once); the futures, each with its job."""
    return {executor.submit(grade_job, {k: v for k, v in job.items() if k != "notes"}): job for job in jobs}


def collect_reports(futures: dict[Future[str], dict[str, Any]],
                    on_done: Callable[[dict[str, Any], dict[str, Any] | BaseException], None]) -> None:
    """Call ``on_done(job, report_or_exception)`` as each job finishes."""
    for fut in as_completed(futures):
        job = futures[fut]
        try:
            report = json.loads(fut.result())
        except BaseException as exc:  # a failed submission is data, never a crashed batch
            if isinstance(exc, KeyboardInterrupt):
                raise
            on_done(job, exc)
        else:
            on_done(job, report)


def run_jobs(executor: Executor, jobs: list[dict[str, Any]],
             on_done: Callable[[dict[str, Any], dict[str, Any] | BaseException], None]) -> None:
    """Submit every job; call ``on_done(job, report_or_exception)`` as each finishes."""
    collect_reports(submit_jobs(executor, jobs), on_done)
