"""Scoring: the verdict of each test cell, computed outside the student's kernel.

Test cells record values with ``check`` (see ``checks/mlph_check.py``). The reference solution's
run records the expected values; a student's test cell passes when it raised no error and every
check the reference records in that cell was recorded by the student with a matching value,
compared here, with the reference's mode and tolerances. Nothing the student's code does inside
its kernel enters this comparison except the values it recorded, and forging a value requires
knowing the reference solution's output on the hidden inputs.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import Any

from nbformat import NotebookNode

from autograder.grading.assemble import grade_id, is_test
from autograder.checks.mlph_check import MIME, MODES, compare
from autograder.errors import SheetError

HIDDEN_RE = re.compile(r"### BEGIN HIDDEN TESTS(.*?)### END HIDDEN TESTS", re.S)
CHECK_NAME_RE = re.compile(r"check\(\s*(['\"])(.+?)\1")
MESSAGE_LIMIT = 300

Reference = dict[str, dict[str, dict[str, Any]]]  # grade_id -> check name -> record


@dataclass(frozen=True)
class CellResult:
    grade_id: str
    points: Fraction
    max_points: Fraction
    status: str  # passed | failed | error | timeout | not_run | crashed
    message: str

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["points"], d["max_points"] = str(self.points), str(self.max_points)
        return d


def records(cell: NotebookNode) -> list[dict[str, Any]]:
    """The well-formed check records among a cell's outputs."""
    found = []
    for out in cell.get("outputs", []):
        rec = out.get("data", {}).get(MIME) if isinstance(out.get("data"), dict) else None
        if (isinstance(rec, dict) and isinstance(rec.get("name"), str) and isinstance(rec.get("value"), dict)
                and rec.get("mode") in MODES):
            found.append(rec)
    return found


def hidden_check_names(source: str) -> set[str]:
    return {m.group(2) for block in HIDDEN_RE.findall(source) for m in CHECK_NAME_RE.finditer(block)}


TOKEN_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{2,}|\d[\d.e-]{2,}")  # names and numbers of 3+ characters
WITHHELD = "details withheld: the message would show part of a hidden test"


def secret_tokens(source: str) -> set[str]:
    """Identifiers and numbers of a test cell's hidden part that its visible part does not show."""
    hidden = "".join(HIDDEN_RE.findall(source))
    return set(TOKEN_RE.findall(hidden)) - set(TOKEN_RE.findall(HIDDEN_RE.sub("", source)))


def _error(cell: NotebookNode, secret: set[str]) -> str | None:
    """The cell's error as a visible message. Student code can put anything into an exception (the
    hidden test's source, read by an input hook), so a message that shows any token of a hidden
    test is withheld."""
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            text = f"{out.get('ename', 'Error')}: {out.get('evalue', '')}"[:MESSAGE_LIMIT]
            return "a hidden test failed with an error" if shows_secret(text, secret) else text
    return None


def shows_secret(text: str, secret: set[str]) -> bool:
    return bool(secret & set(TOKEN_RE.findall(text)))


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
        err = _error(cell, set())
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


def _verdict(cell: NotebookNode, state: str, expected: dict[str, dict[str, Any]], hidden: set[str],
             secret: set[str]) -> tuple[str, str]:
    if state in ("not_run", "crashed"):
        return state, "not run: the notebook stopped before this cell" if state == "not_run" else "the kernel died here"
    if state == "timeout":
        return "timeout", "this cell ran past its time limit"
    err = _error(cell, secret)
    if err:
        return "error", err
    got: dict[str, list[dict[str, Any]]] = {}
    for rec in records(cell):
        got.setdefault(rec["name"], []).append(rec["value"])
    for name, ref in expected.items():
        label = "a hidden test" if name in hidden else f"check {name!r}"
        values = got.get(name)
        if not values:
            return "failed", f"{label} was not recorded"
        for value in values:
            why = compare(value, ref["value"], ref["mode"], float(ref["rtol"]), float(ref["atol"]))
            if why and (name in hidden or shows_secret(why, secret)):
                return "failed", f"{label} failed" + ("" if name in hidden else f" ({WITHHELD})")
            if why:
                return "failed", f"{label} failed: {why}"
    return "passed", ""


def score_run(run: dict[str, Any], reference: Reference, points: dict[str, Fraction],
              source: NotebookNode) -> list[CellResult]:
    """Per test cell of the sheet (every grade id in ``points``), the points earned."""
    nb: NotebookNode = run["notebook"]
    hidden = {grade_id(c): hidden_check_names("".join(c.source)) for c in source.cells if is_test(c)}
    # every hidden test's tokens: a hook can read one test's source and show it in a later cell's message
    secret = set().union(*(secret_tokens("".join(c.source)) for c in source.cells if is_test(c)))
    all_hidden = set().union(*hidden.values()) if hidden else set()
    where = {grade_id(c): i for i, c in enumerate(nb.cells) if is_test(c)}
    results = []
    for gid, pts in points.items():
        index = where.get(gid)
        if index is None or gid not in reference:
            results.append(CellResult(gid, Fraction(0), pts, "not_run", "test cell missing"))
            continue
        status, message = _verdict(nb.cells[index], run["states"][index], reference[gid], all_hidden,
                                   secret | all_hidden)
        results.append(CellResult(gid, pts if status == "passed" else Fraction(0), pts, status, message))
    return results
