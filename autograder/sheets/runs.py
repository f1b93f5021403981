"""The kernel runs of `mlph validate`, all in one pool, and what is read off the solution's run.

The solution's reference run carries probes (cells marked ``mlph_probe`` in their metadata, left out
of every figure). Around every locked setup cell (code, neither answer nor test) a cell before it
keeps a reference to the globals, and a cell after it prints, as one line ``MLPH_PROBE ["name",
...]``, the names of the writeable ``numpy.ndarray`` objects the setup cell bound. A first cell
registers IPython ``pre/post_run_cell`` hooks that take the kernel's CPU time of every cell, and a
last one prints them (``MLPH_CPU {execution_count: seconds}``): the time budget is judged on CPU
time, which other processes on a loaded machine do not inflate; wall times are shown next to it.
The probes only read; they never change what the sheet computes. Validate runs trusted notebooks
only, so the printed lines are taken at their word.
"""
from __future__ import annotations

import copy
import json
import math
import re
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import nbformat
from nbformat import NotebookNode
from nbformat.v4 import new_code_cell

from autograder.grading.assemble import grade_id, is_answer, is_test, nbgrader_meta
from autograder.grading.pipeline import collect_reports, default_workers, executor_for, submit_jobs
from autograder.grading.scoring import Reference
from autograder.limits import Limits

PROBE_KEY = "mlph_probe"
PROBE_OUTPUT = "MLPH_PROBE "
PRE_PROBE = "_mlph_probe_before = dict(globals())"
POST_PROBE = f'''
def _mlph_probe_report(before, now):
    import json, re, sys
    np = sys.modules.get("numpy")
    names = [] if np is None else sorted(
        k for k, v in now.items() if isinstance(v, np.ndarray) and v.flags.writeable and before.get(k) is not v
        and not re.fullmatch(r"_+|_\\d+|_mlph_probe_\\w+", k))
    print({PROBE_OUTPUT!r} + json.dumps(names))
_mlph_probe_report(_mlph_probe_before, dict(globals()))
del _mlph_probe_before, _mlph_probe_report
'''.strip()
CPU_OUTPUT = "MLPH_CPU "
CLOCK_START = """
def _mlph_clock():
    import time
    ip, log, started = get_ipython(), {}, [0.0]
    def pre(info):
        started[0] = time.process_time()
    def post(result):
        if result.execution_count is not None:
            log[result.execution_count] = time.process_time() - started[0]
    ip.events.register("pre_run_cell", pre)
    ip.events.register("post_run_cell", post)
    ip._mlph_cpu = log
_mlph_clock()
del _mlph_clock
""".strip()
CLOCK_REPORT = f"import json as _mlph_json\nprint({CPU_OUTPUT!r} + _mlph_json.dumps(get_ipython()._mlph_cpu))\ndel _mlph_json"
CHECK_NAME = re.compile(r"[A-Za-z0-9_]{1,64}")
MAX_ENTRIES = 10_000
MAX_RANK = 4


def is_setup(cell: NotebookNode) -> bool:
    """A locked code cell that is neither an answer nor a test (the sheet's data and helpers)."""
    return (cell.get("cell_type") == "code" and bool(nbgrader_meta(cell).get("locked"))
            and not is_test(cell) and not is_answer(cell))


def _text(value: Any) -> str:
    """An output's text (a list of lines in a notebook written by nbformat)."""
    return "".join(value) if isinstance(value, list) else str(value or "")


def _label(cell: NotebookNode, index: int) -> str:
    return grade_id(cell) or f"cell {index}"


def probed(source: NotebookNode) -> NotebookNode:
    """A copy of the source notebook with a probe before and after every setup cell."""
    nb = copy.deepcopy(source)
    cells: list[NotebookNode] = [new_code_cell(CLOCK_START, metadata={PROBE_KEY: "clock"})]
    for index, cell in enumerate(nb.cells):
        if is_setup(cell):
            cells.append(new_code_cell(PRE_PROBE, metadata={PROBE_KEY: "before"}))
        cells.append(cell)
        if is_setup(cell):
            cells.append(new_code_cell(POST_PROBE, metadata={PROBE_KEY: "after", "of": _label(cell, index)}))
    nb.cells = cells + [new_code_cell(CLOCK_REPORT, metadata={PROBE_KEY: "cpu"})]
    return nb


def _is_probe(cell: NotebookNode) -> bool:
    return PROBE_KEY in cell.get("metadata", {})


def writeable_setup_arrays(run: dict[str, Any]) -> dict[str, list[str]]:
    """Setup cell → the writeable arrays it bound, from the probes of a run of :func:`probed`."""
    found: dict[str, list[str]] = {}
    for cell in run["notebook"].cells:
        if cell.get("metadata", {}).get(PROBE_KEY) != "after":
            continue
        for out in cell.get("outputs", []):
            for line in _text(out.get("text")).splitlines():
                if line.startswith(PROBE_OUTPUT) and (names := json.loads(line[len(PROBE_OUTPUT):])):
                    found[cell.metadata["of"]] = names
    return found


@dataclass(frozen=True)
class CellTime:
    cell: str     # grade id, or "cell N" (its index in the source notebook)
    wall: float   # seconds, as the grader measures them (cell_seconds)
    cpu: float    # the kernel's CPU seconds (NaN if the clock probe did not report)


def _probe_lines(run: dict[str, Any], kind: str, prefix: str) -> list[str]:
    return [line[len(prefix):] for cell in run["notebook"].cells if cell.get("metadata", {}).get(PROBE_KEY) == kind
            for out in cell.get("outputs", []) for line in _text(out.get("text")).splitlines() if line.startswith(prefix)]


def cell_times(run: dict[str, Any]) -> list[CellTime]:
    """Wall and CPU seconds of every code cell of the sheet in a run of :func:`probed`, probes left out."""
    lines = _probe_lines(run, "cpu", CPU_OUTPUT)
    cpu = {int(k): float(v) for k, v in json.loads(lines[0]).items()} if lines else {}
    times = []
    index = 0
    for cell, wall in zip(run["notebook"].cells, run["cell_seconds"]):
        if _is_probe(cell):
            continue
        if cell.get("cell_type") == "code":
            count = cell.get("execution_count")
            times.append(CellTime(_label(cell, index), float(wall), cpu.get(count, math.nan) if count else 0.0))
        index += 1
    return times


def stderr_output(run: dict[str, Any]) -> list[str]:
    """Cells of the sheet that wrote to stderr (warnings) in a run, with the first line written."""
    problems = []
    index = 0
    for cell in run["notebook"].cells:
        if _is_probe(cell):
            continue
        text = "".join(_text(o.get("text")) for o in cell.get("outputs", [])
                       if o.get("output_type") == "stream" and o.get("name") == "stderr")
        if text.strip():
            first = text.strip().splitlines()[0][:160]
            problems.append(f"cell {_label(cell, index)!r} writes to stderr on the solution: {first}")
        index += 1
    return problems


def _value_problem(value: dict[str, Any]) -> str | None:
    if "items" in value:
        return next((p for p in map(_value_problem, value["items"]) if p), None)
    if "scalar" in value:
        x = value["scalar"]
        if isinstance(x, dict):
            return "is not finite"
        return "is a string or None: record numbers, bools or arrays" if x is None or isinstance(x, str) else None
    shape = value.get("shape", [])
    if len(shape) > MAX_RANK:
        return f"has rank {len(shape)}; at most {MAX_RANK}"
    if math.prod(shape) > MAX_ENTRIES:
        return f"has {math.prod(shape)} entries; at most {MAX_ENTRIES}"
    return "holds NaN or infinite entries" if any(isinstance(x, dict) for x in value.get("data", [])) else None


def _guessable(value: dict[str, Any]) -> bool:
    """True/False, zeros (or only such items): can be recorded without solving anything."""
    if "items" in value:
        return all(_guessable(v) for v in value["items"])
    if "scalar" in value:
        x = value["scalar"]
        return isinstance(x, bool) or (isinstance(x, (int, float)) and x == 0)
    data = value.get("data", [])
    return value.get("kind") == "bool" or all(isinstance(x, (int, float)) and x == 0 for x in data)


def record_problems(reference: Reference) -> list[str]:
    """What the solution records: names ``[A-Za-z0-9_]{1,64}``; finite numbers, bools, arrays of at most
    10 000 entries and rank 4, or sequences of them; and in every test cell something not guessable."""
    problems = []
    for gid, recs in reference.items():
        for name, rec in recs.items():
            if not CHECK_NAME.fullmatch(name):
                problems.append(f"test cell {gid!r}: check name {name!r}: use at most 64 of [A-Za-z0-9_]")
            why = _value_problem(rec["value"])
            if why:
                problems.append(f"test cell {gid!r}: the value of check {name!r} {why}")
        if recs and all(_guessable(r["value"]) for r in recs.values()):
            problems.append(f"test cell {gid!r} records only values that can be guessed without solving the "
                            "task (True/False, zeros): record the student's actual outputs")
    return problems


TOLERANCE_FLOOR = 1e-15


def _entries(value: dict[str, Any]) -> list[float]:
    if "items" in value:
        return [x for v in value["items"] for x in _entries(v)]
    data = [value["scalar"]] if "scalar" in value else value.get("data", [])
    return [float(x) for x in data if isinstance(x, (int, float)) and not isinstance(x, bool)]


def tolerance_problems(reference: Reference) -> list[str]:
    """Checks whose tolerance at some entry of order one or smaller (|e| <= 1) is below 1e-15
    (atol + rtol |e|): a correct answer computed another way differs there by rounding alone."""
    problems = []
    for gid, recs in reference.items():
        for name, rec in recs.items():
            if rec.get("mode") == "exact":
                continue
            rtol, atol = float(rec.get("rtol", 0.0)), float(rec.get("atol", 0.0))
            tight = [e for e in _entries(rec["value"]) if abs(e) <= 1.0 and atol + rtol * abs(e) < TOLERANCE_FLOOR]
            if tight:
                problems.append(f"test cell {gid!r}: check {name!r} allows a difference of only "
                                f"{atol + rtol * abs(tight[0]):.3g} at the value {tight[0]!r} (atol={atol:g}, "
                                f"rtol={rtol:g}): rounding alone exceeds that; use atol >= {TOLERANCE_FLOOR:g}")
    return problems


def run_all(notebooks: dict[str, NotebookNode], limits: Limits, preload: tuple[str, ...],
            first: str) -> dict[str, dict[str, Any] | str]:
    """Run every notebook (name → notebook, run as given) in one pool of sandboxed kernels; name → run
    report (with its notebook as a NotebookNode) or the reason it could not run. If the run ``first``
    crashes, the runs not started yet are cancelled."""
    jobs = [{"name": name, "notebook": nb, "files": {}, "limits": limits.to_dict(), "prestart": True,
             "preload": list(preload)} for name, nb in notebooks.items()]
    jobs.sort(key=lambda j: j["name"] != first)
    reports: dict[str, dict[str, Any] | str] = {}
    futures: dict[Future[str], dict[str, Any]] = {}

    def on_done(job: dict[str, Any], report: dict[str, Any] | BaseException) -> None:
        if isinstance(report, BaseException):
            reports[job["name"]] = f"could not run: {type(report).__name__}: {report}"
        else:
            report["notebook"] = nbformat.from_dict(report["notebook"])
            reports[job["name"]] = report
        if job["name"] == first and (isinstance(report, BaseException) or report.get("status") == "crashed"):
            for fut in futures:
                fut.cancel()

    workers = min(default_workers(), max(1, len(jobs)))
    with executor_for(workers, None, warm=(limits, True, preload)) as executor:
        futures.update(submit_jobs(executor, jobs))
        collect_reports(executor, futures, on_done)
    return reports
