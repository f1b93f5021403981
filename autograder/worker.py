"""The worker side: one job (plain JSON data) in, one JSON report out. Never touches the gradebook."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import nbformat

from .execute import execute_notebook, write_workdir
from .limits import Limits
from .nbgrader_bridge import CHECK_MODULE


# One BLAS thread per kernel: the workers already run one kernel per core, and oversubscribed
# OpenBLAS threads made parallel grading slower than serial.
SINGLE_THREADED = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def grade_job(job: dict[str, Any]) -> str:
    """Execute a job's assembled notebook in a fresh directory; the run report as a JSON string."""
    os.environ.update(SINGLE_THREADED)
    limits = Limits(**job["limits"])
    with tempfile.TemporaryDirectory(prefix="mlph-grade-") as tmp:
        workdir = Path(tmp)
        write_workdir(workdir, job.get("files", {}))
        (workdir / CHECK_MODULE.name).write_text(job.get("check_module") or CHECK_MODULE.read_text(), encoding="utf-8")
        run = execute_notebook(job["notebook"], str(workdir), limits, job.get("kernel", "python3"))
    run["notebook"] = json.loads(nbformat.writes(run["notebook"]))
    return json.dumps(run)
