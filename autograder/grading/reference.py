"""The reference: what the solution notebook records in each test cell, computed once per source.

It holds the hidden tests' expected values, so it lives in the course data directory (mode 0600),
never in a sandbox or a worker's job.
"""
from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import nbformat
from nbformat import NotebookNode

from gradebook.course.config import CourseConfig
from gradebook.course.manifest import Manifest

from autograder.limits import Limits
from autograder.grading.scoring import Reference, reference_from_run
from autograder.grading.worker import grade_job


def run_source(source: NotebookNode, limits: Limits, sandboxed: bool = True) -> dict[str, Any]:
    """Execute the solution notebook exactly as a submission is executed (in the sandbox too)."""
    job = {"notebook": source, "files": {}, "limits": limits.to_dict(), "sandbox": sandboxed}
    run: dict[str, Any] = json.loads(grade_job(job))
    run["notebook"] = nbformat.from_dict(run["notebook"])
    return run


def reference_path(cfg: CourseConfig, sheet: str) -> Path:
    return cfg.data_dir / ".mlph" / "reference" / f"{sheet}.json"


def load_reference(cfg: CourseConfig, manifest: Manifest, source: NotebookNode, shash: str,
                   limits: Limits, sandboxed: bool = True) -> Reference:
    """The cached reference for this exact source, or a fresh one from running the solution."""
    path = reference_path(cfg, manifest.id)
    if path.is_file():
        cached = json.loads(path.read_text())
        if cached.get("source_hash") == shash:
            ref: Reference = cached["reference"]
            return ref
    ref = reference_from_run(run_source(source, limits, sandboxed), manifest.id)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")  # two graders' slots may write at once
    tmp.write_text(json.dumps({"source_hash": shash, "reference": ref}))
    os.chmod(tmp, 0o600)
    tmp.replace(path)
    return ref
