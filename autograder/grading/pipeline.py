"""`mlph autograde`: find submissions, grade them in parallel, store each result as it arrives.

Stages are functions on plain data: :func:`discover` (filesystem → submissions),
:func:`make_job` (submission → job, or a ready result for an invalid one), the worker's
:func:`~autograder.grading.worker.grade_job` (job → run report), :func:`finish` (run report → result) and
:func:`~gradebook.points.autograde_store.store_results` (results → one database transaction).
"""
from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
import json
import logging
import os
import stat
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import nbformat
from nbformat import NotebookNode
from nbformat.v4.rwbase import rejoin_lines, strip_transient

from gradebook.course.config import CourseConfig
from gradebook.points.handins import HandinRecord
from gradebook.course.manifest import Manifest

from autograder.intake import boundedjson
from autograder.intake.safe import IntakeRefused, TreeLimits, read_tree
from autograder.intake.store import declared_files, receipt_of

from autograder.grading.assemble import assemble, grade_id, is_answer, is_test
from autograder.grading.messages import describe_events, first_failure, label_cells, link_cause
from autograder.grading.sanitize import sanitize_notebook
from autograder.grading.harden import harden
from autograder.sandbox.kernels import start_shared_zygote, worker_init
from autograder.limits import Limits
from autograder.nbgrader_bridge import CHECK_MODULE
from autograder.sandbox.bwrap import check_bwrap
from autograder.grading.scoring import Reference, score_run
from autograder.grading.pool import IsolatingPool, WorkerDied
from autograder.grading.worker import grade_job
from autograder.errors import AutograderError

log = logging.getLogger(__name__)
GRADER_VERSION = "2"  # 2: intake records, validated records, templated feedback
MAX_NOTEBOOK_BYTES = 20_000_000
MAX_FILE_BYTES = 1_000_000


@dataclass(frozen=True)
class Submission:
    sheet: str
    student: str
    directory: Path
    notebook: Path
    submitted_at: datetime | None  # the server's time of receipt (the intake's record); None: unknown
    fingerprint: str
    invalid: str = ""  # the intake refused the student's newest hand-in: why (the directory is not graded)


SUBMITTED = TreeLimits(max_files=10_000, max_total_bytes=1 << 40, max_depth=32, max_dirs=10_000)
CHANGED = "changed"  # make_job's answer when the hand-in was replaced after discover(): graded by the next pass


def _snapshot(directory: Path) -> dict[str, bytes] | str:
    """Every file of a submission directory, read through one descriptor (a replacement renamed into place
    meanwhile is seen whole or not at all), or why it cannot be read."""
    try:
        return read_tree(directory, SUBMITTED)
    except IntakeRefused as exc:
        return str(exc)
    except OSError as exc:  # a file vanished or turned unreadable while it was read
        return f"the submission could not be read ({exc.strerror})"


def fingerprint_of(files: dict[str, bytes] | str, source_hash: str) -> str:
    """What identifies a submission's grading: the grader version, the sheet's source and the files (with the
    time of receipt stored among them); an unreadable directory fingerprints as its reason, so a fix is graded
    again."""
    h = hashlib.sha256(f"{GRADER_VERSION}\0{source_hash}\0".encode())
    if isinstance(files, str):
        h.update(f"unreadable\0{files}".encode())
        return h.hexdigest()
    for name in sorted(files):
        h.update(name.encode() + b"\0")
        h.update(hashlib.sha256(files[name]).digest())
    return h.hexdigest()


def fingerprint(directory: Path, source_hash: str) -> str:
    return fingerprint_of(_snapshot(directory), source_hash)


def source_hash(source_path: Path) -> str:
    return hashlib.sha256(source_path.read_bytes() + CHECK_MODULE.read_bytes()).hexdigest()


def discover(cfg: CourseConfig, manifest: Manifest, students: Iterable[str] | None = None,
             handins: dict[str, HandinRecord] | None = None) -> list[Submission]:
    """Every ``submitted/<student>/<sheet>/`` directory, and every student whose newest hand-in the intake
    found invalid, in student order. The time of receipt is the one the intake wrote with the files (read with
    them), else ``handins``' (the intake's newest record per student)."""
    shash = source_hash(manifest.directory / manifest.notebook)
    wanted = set(students) if students else None
    handins = handins or {}
    found: dict[str, Submission] = {}
    for directory in sorted((cfg.data_dir / "submitted").glob(f"*/{manifest.id}")):
        student = directory.parent.name
        if directory.is_symlink() or not directory.is_dir() or (wanted is not None and student not in wanted):
            continue
        rec = handins.get(student)
        files = _snapshot(directory)
        received = receipt_of(files) if isinstance(files, dict) else None
        found[student] = Submission(manifest.id, student, directory, directory / manifest.notebook,
                                    received or (rec.received_at if rec else None), fingerprint_of(files, shash))
    for student, rec in handins.items():
        if rec.status == "invalid" and (wanted is None or student in wanted):
            directory = cfg.data_dir / "submitted" / student / manifest.id
            present = found.get(student)
            if present is not None and present.submitted_at is not None and present.submitted_at > rec.received_at:
                continue  # a later hand-in was written after the intake's records were read
            fp = hashlib.sha256(f"{GRADER_VERSION}\0invalid\0{rec.handin_id}\0{rec.reason}".encode()).hexdigest()
            found[student] = Submission(manifest.id, student, directory, directory / manifest.notebook,
                                        rec.received_at, fp, invalid=rec.reason or "the hand-in was refused")
    return [found[s] for s in sorted(found)]


_DECLARED: dict[tuple[str, int], list[str]] = {}


def _declared(manifest: Manifest) -> list[str]:
    """:func:`declared_files`, read once per version of the sheet's manifest (not once per submission)."""
    try:
        key = (str(manifest.path), manifest.path.stat().st_mtime_ns)
    except OSError:
        return declared_files(manifest)
    if key not in _DECLARED:
        _DECLARED[key] = declared_files(manifest)
    return _DECLARED[key]


def _files(tree: dict[str, bytes], manifest: Manifest) -> dict[str, str]:
    """The data files the sheet declares (``[handin] files``), as text: nothing else reaches the sandbox."""
    files = {}
    for name in sorted(set(_declared(manifest)) & set(tree)):
        if len(tree[name]) > MAX_FILE_BYTES:
            continue
        try:
            files[name] = tree[name].decode("utf-8")
        except UnicodeDecodeError:
            continue
    return files


def base_result(sub: Submission, manifest: Manifest) -> dict[str, Any]:
    return {"sheet": sub.sheet, "student": sub.student, "fingerprint": sub.fingerprint,
            "submitted_at": sub.submitted_at.isoformat() if sub.submitted_at else None,
            "max_score": str(manifest.notebook_points), "score": "0", "cells": [], "notes": [], "timings": {}}


NOT_GRADED = {"invalid": "not graded: the hand-in could not be read (see the note at the top)",
              "missing": "not graded: the notebook is missing from the hand-in",
              "grader_error": "not graded yet: the grader failed; it will try again"}


def failed_result(sub: Submission, manifest: Manifest, status: str, reason: str,
                  labels: dict[str, str] | None = None) -> dict[str, Any]:
    """A result without a run: the reason once, every test cell not graded (0 points)."""
    res = base_result(sub, manifest)
    why = NOT_GRADED.get(status, "not graded")
    res["cells"] = [{"grade_id": g, "points": "0", "max_points": str(p), "status": "not_run", "message": why,
                     "label": (labels or {}).get(g, g)} for g, p in manifest.test_points.items()]
    return res | {"status": status, "reason": reason}


def test_labels(source: NotebookNode, manifest: Manifest) -> dict[str, str]:
    """grade id → how the student finds the test cell (its task and first visible line)."""
    task_of = {gid: t.title for t in manifest.notebook_tasks for gid in t.tests}
    labels = label_cells(source, task_of)
    return {gid: labels[i] for i, c in enumerate(source.cells) if (gid := grade_id(c)) in manifest.test_points}


def _read_bytes(path: Path) -> bytes:
    """A submitted notebook's bytes: no link followed, no special file opened, at most one byte over the limit."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise ValueError(f"{path.name} cannot be read ({exc.strerror})") from None
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError(f"{path.name} is not a regular file")
        return fh.read(MAX_NOTEBOOK_BYTES + 1)


def load_notebook(path: Path) -> NotebookNode:
    """A submitted notebook (read without following links, bounded), or ValueError with the reason it is not a
    valid one: where the JSON breaks (line and column), or which part nbformat rejects."""
    return parse_notebook(_read_bytes(path), path.name)


def read_notebook_json(path: Path) -> Any:
    """A submitted notebook's JSON, read and bounded as :func:`load_notebook` reads it, without nbformat's
    validation (for readers that only look at cells, such as the similarity report)."""
    return parse_notebook_json(_read_bytes(path), path.name)


def parse_notebook_json(raw: bytes, name: str) -> Any:
    """A submitted notebook's bytes as JSON, or ValueError with a fixed reason: bounded (size, then depth,
    number length and value count by :mod:`~autograder.intake.boundedjson`) before any recursive parser sees
    them."""
    if len(raw) > MAX_NOTEBOOK_BYTES:
        raise ValueError(f"{name} is larger than {MAX_NOTEBOOK_BYTES // 1_000_000} MB")
    try:
        return json.loads(boundedjson.scan(raw, name))
    except IntakeRefused as exc:
        raise ValueError(str(exc)) from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{name} is not a notebook: the JSON breaks at line {exc.lineno}, column {exc.colno} "
                         f"({exc.msg}); open it in Jupyter, or hand in the last version that opened") from None


def parse_notebook(raw: bytes, name: str) -> NotebookNode:
    """A submitted notebook's bytes as a notebook, or ValueError with a fixed reason: the JSON bounded by
    :func:`parse_notebook_json`; whatever nbformat still raises is the notebook's reason too."""
    data = parse_notebook_json(raw, name)
    try:
        if isinstance(data, dict) and data.get("nbformat") == 4:  # as nbformat.reads reads it, validated once
            nb = strip_transient(rejoin_lines(nbformat.from_dict(data)))
        else:  # an older format: nbformat converts it (and validates on the way)
            nb = nbformat.reads(json.dumps(data), as_version=4)
        nbformat.validate(nb)
    except Exception as exc:  # nbformat raises several kinds on a malformed notebook
        first = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise ValueError(f"{name} is not a valid notebook: {first}") from None
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
             sandboxed: bool = True, preload: tuple[str, ...] = (), labels: dict[str, str] | None = None) -> dict[str, Any]:
    """The worker's job for a submission, or a finished result (``"status"`` key) if it cannot run; never raises
    for what the submission holds. The files are read once, and only if they are still what :func:`discover`
    fingerprinted (with their time of receipt); else ``{"status": CHANGED}``: the next pass grades them."""
    if sub.invalid:
        return failed_result(sub, manifest, "invalid", sub.invalid, labels)
    try:
        tree = _snapshot(sub.directory)
        if fingerprint_of(tree, source_hash(manifest.directory / manifest.notebook)) != sub.fingerprint:
            return {"status": CHANGED}
        if isinstance(tree, str):
            return failed_result(sub, manifest, "invalid", tree, labels)
        if manifest.notebook not in tree:
            return failed_result(sub, manifest, "missing", f"no {manifest.notebook} in the submission", labels)
        submitted = parse_notebook(tree[manifest.notebook], manifest.notebook)
        assembly = assemble(source, submitted)
        notebook = harden(assembly.notebook)
    except ValueError as exc:
        return failed_result(sub, manifest, "invalid", str(exc), labels)
    except Exception as exc:  # RecursionError, MemoryError, a bug: this submission's result, never the batch's
        log.exception("loading %s/%s failed", sub.sheet, sub.student)
        return failed_result(sub, manifest, "invalid", f"{manifest.notebook} could not be read "
                             f"({type(exc).__name__}); hand in a notebook as Jupyter saves it", labels)
    return {"sheet": sub.sheet, "student": sub.student, "notebook": notebook,
            "files": _files(tree, manifest), "limits": limits.to_dict(), "notes": assembly.notes,
            "sandbox": sandboxed, "prestart": True, "preload": list(preload)}


def finish(sub: Submission, manifest: Manifest, source: NotebookNode, reference: Reference,
           run: dict[str, Any], notes: list[str]) -> dict[str, Any]:
    """Score a run report (trusted code, outside the kernel) into the submission's result."""
    nb = report_notebook(run["notebook"])
    run["notebook"] = nb
    cells = score_run(run, reference, manifest.test_points, source)
    status = {"ok": "graded", "timeout": "timeout"}.get(run["status"], "crashed")
    task_of = {gid: t.title for t in manifest.notebook_tasks for gid in t.tests}
    task_of |= {c_gid: task_of.get(t_gid, "") for c_gid, t_gid in _answer_tasks(nb, task_of).items()}
    labels = label_cells(nb, task_of)
    shown = test_labels(source, manifest)  # a test cell as the student's notebook shows it (expected included)
    labels = [shown.get(grade_id(c) or "", label) if is_test(c) else label for c, label in zip(nb.cells, labels)]
    states = list(run.get("states", []))
    events = [e for e in run.get("events", []) if isinstance(e, dict)]
    cause = first_failure(nb, states)
    where = {grade_id(c): i for i, c in enumerate(nb.cells) if is_test(c)}
    out = []
    for c in cells:
        d = c.to_json()
        i = where.get(c.grade_id, -1)
        d["label"] = labels[i] if i >= 0 else c.grade_id
        if c.status == "error":
            d["message"] = link_cause(c.message, c.ename, i, cause, labels, states)
        out.append(d)
    described = describe_events(events, labels)
    tests = {i for i, c in enumerate(nb.cells) if is_test(c)}  # what happened in a test cell may be hidden
    student_notes = list(notes) + describe_events([e for e in events if e.get("cell") not in tests], labels)
    reason = ""
    if status in ("timeout", "crashed"):  # the event that ended the run is the reason; the others are notes
        reason = described.pop() if described else {"timeout": "the notebook ran past its time limit",
                                                     "crashed": "the kernel stopped (memory or process limit?)"}[status]
    res = base_result(sub, manifest)
    res.update(status=status, reason=reason, detail=run.get("reason", ""),
               notes=list(notes) + described, student_notes=student_notes, timings=run.get("timings", {}),
               cells=out, score=str(sum((c.points for c in cells), Fraction(0))),
               notebook=sanitize_notebook(nb, set(manifest.test_points) | set(task_of) | _source_ids(source),
                                          in_place=True))
    return res


def report_notebook(data: dict[str, Any]) -> NotebookNode:
    """A run report's notebook (plain JSON from the worker) as nodes down to each output: the scoring reads the
    cells by attribute and everything below them with ``get``, so the outputs' data (the check records' arrays)
    stay plain dicts and lists instead of a node per number (``nbformat.from_dict``)."""
    nb = NotebookNode(data)
    nb["metadata"] = NotebookNode(nb.get("metadata") or {})
    cells = []
    for raw in nb.get("cells") or []:
        cell = NotebookNode(raw)
        cell["metadata"] = NotebookNode(cell.get("metadata") or {})
        if isinstance(cell.get("outputs"), list):
            cell["outputs"] = [NotebookNode(o) if isinstance(o, dict) else o for o in cell["outputs"]]
        cells.append(cell)
    nb["cells"] = cells
    return nb


def _source_ids(source: NotebookNode) -> set[str]:
    return {gid for c in source.cells if (gid := grade_id(c))}


def _answer_tasks(nb: NotebookNode, task_of: dict[str, str]) -> dict[str, str]:
    """Answer cell grade id → the grade id of the first test cell after it (whose task it answers)."""
    found: dict[str, str] = {}
    pending: list[str] = []
    for cell in nb.cells:
        gid = grade_id(cell)
        if gid and is_answer(cell):
            pending.append(gid)
        elif gid and is_test(cell) and gid in task_of:
            found.update({a: gid for a in pending})
            pending = []
    return found


@contextmanager
def executor_for(workers: int, cluster: str | None, warm: tuple[Limits, bool, tuple[str, ...]] | None = None,
                 connect_timeout: float = 20.0) -> Iterator[Executor]:
    """One code path for local and distributed grading: a concurrent.futures Executor either way.
    ``warm`` (limits, sandboxed, preload): local workers start their first kernel at once; with a
    sandbox, every Dask worker must be able to run one (else a clear error before any job). Locally, a
    worker that dies costs only the job it held (:class:`~autograder.grading.pool.IsolatingPool`)."""
    if cluster:
        client = _dask_client(cluster, connect_timeout)
        try:
            if warm and warm[1]:
                client.run(check_bwrap)
            yield client.get_executor(pure=False)  # a fresh run each time: no hashing of the job into a key
        finally:
            client.close()
    else:
        shared = start_shared_zygote(warm[2]) if warm and warm[1] and workers > 1 else None
        init = functools.partial(worker_init, os.getpid(), warm, shared.path if shared else None)
        ctx = get_context("forkserver")
        ctx.set_forkserver_preload(["autograder.grading.worker", "autograder.grading.pool"])
        try:
            pool = IsolatingPool(workers, ctx, initializer=init)
            try:
                yield pool
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
        finally:
            if shared is not None:
                shared.close()


def _dask_client(cluster: str, timeout: float) -> Any:
    from distributed import Client

    try:
        return Client(cluster, timeout=timeout)
    except (OSError, TimeoutError) as exc:
        raise AutograderError(f"cannot reach the Dask scheduler at {cluster} within {timeout:g} s "
                              f"(--connect-timeout): {exc}") from None
    except ValueError as exc:
        raise AutograderError(f"{cluster!r} is not a Dask scheduler address (tcp://host:8786): {exc}") from None


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)))


def _for_worker(job: dict[str, Any]) -> str:
    """The job as the worker gets it: one JSON string. Its nodes arrive as plain dicts and lists (unpickling
    nbformat's classes would import nbformat into every worker), and a Dask client ships a string as it is,
    where a nested dict is walked node by node to build the task."""
    return json.dumps({k: v for k, v in job.items() if k not in ("notes", "attempt", "labels")})


def submit_jobs(executor: Executor, jobs: list[dict[str, Any]]) -> dict[Future[str], dict[str, Any]]:
    """Hand every job to the executor (workers start at once); the futures, each with its job."""
    return {executor.submit(grade_job, _for_worker(job)): job for job in jobs}


def collect_reports(executor: Executor, futures: dict[Future[str], dict[str, Any]],
                    on_done: Callable[[dict[str, Any], dict[str, Any] | BaseException], None],
                    retries: int = 1, idle: Callable[[], None] | None = None, every: float = 0.25) -> None:
    """Call ``on_done(job, report_or_exception)`` as each job finishes; a job whose worker died is tried
    again (``retries`` times) before its exception is reported. ``idle()`` is called every ``every`` seconds
    while no job finishes."""
    pending = dict(futures)
    while pending:
        done, _ = wait(pending, timeout=every if idle else None, return_when=FIRST_COMPLETED)
        if not done and idle is not None:
            idle()
        for fut in done:
            job = pending.pop(fut)
            try:
                report = json.loads(fut.result())
            except WorkerDied as exc:
                if job.get("attempt", 0) < retries:
                    job["attempt"] = job.get("attempt", 0) + 1
                    pending[executor.submit(grade_job, _for_worker(job))] = job
                else:
                    on_done(job, exc)
            except BaseException as exc:  # a failed submission is data, never a crashed batch
                if isinstance(exc, KeyboardInterrupt):
                    raise
                on_done(job, exc)
            else:
                on_done(job, report)


def run_jobs(executor: Executor, jobs: list[dict[str, Any]],
             on_done: Callable[[dict[str, Any], dict[str, Any] | BaseException], None]) -> None:
    """Submit every job; call ``on_done(job, report_or_exception)`` as each finishes."""
    collect_reports(executor, submit_jobs(executor, jobs), on_done)
