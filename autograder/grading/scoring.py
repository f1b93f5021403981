"""Scoring: the verdict of each test cell, computed outside the student's kernel.

Test cells record values with ``check`` (see ``checks/mlph_check.py``). The reference solution's
run records the expected values; a student's test cell passes when it raised no error and every
check the reference records in that cell was recorded by the student with a matching value,
compared here, with the reference's mode and tolerances.

Everything that comes out of a student's kernel is untrusted data: a check record is parsed by
:mod:`.records` against a strict schema with bounds before it is compared (a malformed one is a failed
check with a fixed message), and no exception of the comparison ever leaves :func:`score_run`.

The messages are ours (:mod:`.messages`): built from templates, the trusted source and the reference's
*visible* expected values, plus categorical facts about the student's run (which check, passed or
failed, the kind of failure, a built-in exception's type). No text, number or name the student's code
produced reaches them, so nothing read from a hidden test inside the kernel can come back out.
"""
from __future__ import annotations

import logging
import re
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from typing import Any

from nbformat import NotebookNode

from autograder.checks.mlph_check import compare
from autograder.errors import SheetError
from autograder.grading.assemble import grade_id, is_test
from autograder.grading.messages import HIDDEN_RE, error_kind, failure_kind, show_expected
from autograder.grading.records import records

log = logging.getLogger(__name__)
CHECK_NAME_RE = re.compile(r"check\(\s*(['\"])(.+?)\1")

Reference = dict[str, dict[str, dict[str, Any]]]  # grade_id -> check name -> record

__all__ = ["CellResult", "Reference", "reference_from_run", "score_run", "hidden_check_names", "CHECK_NAME_RE",
           "HIDDEN_RE", "records"]


@dataclass(frozen=True)
class CellResult:
    grade_id: str
    points: Fraction
    max_points: Fraction
    status: str  # passed | failed | error | timeout | not_run | crashed
    message: str  # ours, from templates: safe to show the student
    ename: str = ""  # a built-in exception type, when status is error ("" otherwise or when not built-in)
    checks: list[dict[str, str]] = field(default_factory=list)  # visible checks: name, outcome, expected

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["points"], d["max_points"] = str(self.points), str(self.max_points)
        return d


def hidden_check_names(source: str) -> set[str]:
    return {m.group(2) for block in HIDDEN_RE.findall(source) for m in CHECK_NAME_RE.finditer(block)}


def _trusted_error(cell: NotebookNode) -> str | None:
    """The solution's own error text (trusted: only for `mlph validate` and the instructors)."""
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            return f"{out.get('ename', 'Error')}: {str(out.get('evalue', ''))[:300]}"
    return None


def reference_from_run(run: dict[str, Any], sheet: str) -> Reference:
    """Expected records per test cell from the solution notebook's run; every test must pass there."""
    nb: NotebookNode = run["notebook"]
    if run.get("status") == "crashed":
        raise SheetError(f"{sheet}: the solution notebook could not run: {run.get('reason', '')}")
    ref: Reference = {}
    problems = []
    for index, cell in enumerate(nb.cells):
        if not is_test(cell):
            continue
        gid = grade_id(cell) or f"cell {index}"
        err = _trusted_error(cell)
        if run["states"][index] != "ok" or err:
            problems.append(f"{sheet}: test cell {gid!r} does not pass on the solution: {err or run['states'][index]}")
            continue
        recs = records(cell)
        if not recs:
            problems.append(f"{sheet}: test cell {gid!r} records no check")
        names = [r["name"] for r in recs]
        if len(set(names)) != len(names):
            problems.append(f"{sheet}: test cell {gid!r} records a check name twice")
        ref[gid] = {r["name"]: {k: r[k] for k in ("value", "mode", "rtol", "atol")} for r in recs}
    if problems:
        raise SheetError("\n".join(problems))
    return ref


def _compare(value: dict[str, Any], ref: dict[str, Any]) -> str | None:
    """compare(), which never raises on a validated value (and if it did, counts as a mismatch)."""
    try:
        return compare(value, ref["value"], ref["mode"], float(ref["rtol"]), float(ref["atol"]))
    except Exception:  # pragma: no cover - records are validated; a bug here must not stop the batch
        log.exception("comparison failed")
        return "the values could not be compared"


def _check_outcomes(cell: NotebookNode, expected: dict[str, dict[str, Any]], hidden: set[str]) -> list[dict[str, str]]:
    got: dict[str, list[dict[str, Any]]] = {}
    for rec in records(cell, set(expected)):
        got.setdefault(rec["name"], []).append(rec["value"])
    outcomes = []
    for name, ref in expected.items():
        values = got.get(name)
        if not values:
            kind = "not_recorded"
        else:
            whys = [_compare(v, ref) for v in values]
            kind = next((failure_kind(w) for w in whys if w), "ok")
        entry = {"name": "" if name in hidden else name, "hidden": "yes" if name in hidden else "",
                 "outcome": kind}
        if name not in hidden and kind != "ok":
            entry["expected"] = show_expected(ref["value"])
        outcomes.append(entry)
    return outcomes


def _verdict(cell: NotebookNode, state: str, expected: dict[str, dict[str, Any]],
             hidden: set[str]) -> tuple[str, str, list[dict[str, str]]]:
    """(status, ename, check outcomes) of one test cell; the message is made by :mod:`.messages`."""
    if state in ("not_run", "crashed"):
        return state, "", _check_outcomes(cell, expected, hidden)
    outcomes = _check_outcomes(cell, expected, hidden)  # also when it stopped: which checks it recorded first
    if state == "timeout":
        return state, "", outcomes
    ename = error_kind(cell)
    if ename is not None:
        return "error", ename, outcomes
    return ("passed" if all(o["outcome"] == "ok" for o in outcomes) else "failed"), "", outcomes


def score_run(run: dict[str, Any], reference: Reference, points: dict[str, Fraction],
              source: NotebookNode) -> list[CellResult]:
    """Per test cell of the sheet (every grade id in ``points``), the points earned. Never raises for anything
    the student's run contains: a cell that cannot be scored is a failed cell with a fixed message."""
    from autograder.grading.messages import cell_message

    nb: NotebookNode = run["notebook"]
    hidden = set().union(*(hidden_check_names("".join(c.source)) for c in source.cells if is_test(c)))
    where = {grade_id(c): i for i, c in enumerate(nb.cells) if is_test(c)}
    states = run.get("states", [])
    results = []
    for gid, pts in points.items():
        index = where.get(gid)
        if index is None or gid not in reference or index >= len(states):
            results.append(CellResult(gid, Fraction(0), pts, "not_run", "this test cell is missing"))
            continue
        try:
            status, ename, checks = _verdict(nb.cells[index], states[index], reference[gid], hidden)
        except Exception:  # never the batch: the record parser and comparison are total, this is a last guard
            log.exception("scoring %s failed", gid)
            status, ename, checks = "failed", "", [{"name": "", "hidden": "", "outcome": "malformed"}]
        results.append(CellResult(gid, pts if status == "passed" else Fraction(0), pts, status,
                                  cell_message(status, ename, checks), ename, checks))
    return results
