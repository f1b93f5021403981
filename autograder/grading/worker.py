"""The worker side: one job (plain JSON data) in, one JSON report out. Never touches the gradebook."""
from __future__ import annotations

import json
from typing import Any

from autograder.grading.execute import execute_notebook
from autograder.limits import Limits
from autograder.checks import CHECK_MODULE


def parse_job(job: dict[str, Any] | str) -> dict[str, Any]:
    """A job as a dict, from the JSON text the grader ships (``pipeline._for_worker``) or a dict."""
    parsed = json.loads(job) if isinstance(job, str) else job
    if not isinstance(parsed, dict):
        raise TypeError(f"a grading job is a JSON object, not {type(parsed).__name__}")
    return parsed


def grade_job(job: dict[str, Any] | str) -> str:
    """Execute a job's assembled notebook in a fresh sandboxed kernel; the run report as a JSON string.

    The job is a dict or its JSON text. Job keys: ``notebook`` (assembled, JSON), ``files`` (name → text, the student's own modules),
    ``limits``, ``sandbox`` (default true), ``prestart`` (take a kernel started ahead of need and
    start the next one unless ``spare`` is false: set by the pipeline for long-lived workers),
    ``preload`` (module names).
    """
    job = parse_job(job)
    limits = Limits(**job["limits"])
    files = dict(job.get("files", {}))
    files[CHECK_MODULE.name] = job.get("check_module") or CHECK_MODULE.read_text(encoding="utf-8")
    run = execute_notebook(job["notebook"], limits, files, sandboxed=job.get("sandbox", True),
                           prestarted=job.get("prestart", False), preload=tuple(job.get("preload", ())),
                           spare=job.get("spare", True))
    return json.dumps(run)  # the notebook is plain dicts and lists: no round trip through nbformat's validator
