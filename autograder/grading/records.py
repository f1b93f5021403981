"""Check records out of a student's kernel, parsed against a strict schema with bounds before any use.

A record is what ``check`` displays under :data:`~autograder.checks.mlph_check.MIME`:
``{"name", "value", "mode", "rtol", "atol"}``. The student's code can display anything under that MIME
type, so every field is checked here: names of bounded length from a fixed alphabet, known modes only,
finite tolerances, and values of the three encoded shapes (``scalar``, ``shape``/``kind``/``data``,
``items``) with bounded rank, size, nesting, string length and integers within float range. A record
that fails any check is dropped: for the scoring it was never recorded (a failed check with a fixed
message), never an exception in the grader.
"""
from __future__ import annotations

import math
import re
from typing import Any

from nbformat import NotebookNode

from autograder.checks.mlph_check import MIME, MODES

NAME_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
MAX_RANK = 8
MAX_ELEMENTS = 100_000
MAX_ITEMS = 1_000
MAX_DEPTH = 6
MAX_STRING = 200
MAX_INT = 2**53
MAX_TOLERANCE = 1e6
MAX_RECORDS_PER_CELL = 1_000


def _scalar_ok(x: Any) -> bool:
    if x is None or isinstance(x, bool):
        return True
    if isinstance(x, int):
        return -MAX_INT <= x <= MAX_INT
    if isinstance(x, float):
        return math.isfinite(x)
    if isinstance(x, str):
        return len(x) <= MAX_STRING
    return isinstance(x, dict) and set(x) == {"nonfinite"} and x["nonfinite"] in ("nan", "inf", "-inf")


def _number_ok(x: Any) -> bool:
    if isinstance(x, bool):
        return True
    if isinstance(x, int):
        return -MAX_INT <= x <= MAX_INT
    if isinstance(x, float):
        return math.isfinite(x)
    return isinstance(x, dict) and set(x) == {"nonfinite"} and x["nonfinite"] in ("nan", "inf", "-inf")


def _numbers_ok(data: list[Any]) -> bool:
    """:func:`_number_ok` for every entry; an array of floats (the usual record) checked in C."""
    if set(map(type, data)) <= {float, bool}:
        return all(map(math.isfinite, data))
    return all(_number_ok(x) for x in data)


def valid_value(v: Any, depth: int = 0) -> bool:
    """True when ``v`` is an encoded value within every bound (see the module doc)."""
    if not isinstance(v, dict) or depth > MAX_DEPTH:
        return False
    if set(v) == {"scalar"}:
        return _scalar_ok(v["scalar"])
    if set(v) == {"items"}:
        items = v["items"]
        return isinstance(items, list) and len(items) <= MAX_ITEMS and all(valid_value(i, depth + 1) for i in items)
    if set(v) == {"shape", "kind", "data"}:
        shape, data = v["shape"], v["data"]
        if v["kind"] not in ("number", "bool") or not isinstance(shape, list) or len(shape) > MAX_RANK:
            return False
        if not all(isinstance(n, int) and not isinstance(n, bool) and 0 <= n <= MAX_ELEMENTS for n in shape):
            return False
        size = math.prod(shape)
        return (size <= MAX_ELEMENTS and isinstance(data, list) and len(data) == size
                and _numbers_ok(data))
    return False


def valid_record(rec: Any) -> dict[str, Any] | None:
    """The record with exactly its five fields when it is well formed, else None."""
    if not isinstance(rec, dict):
        return None
    name, mode, rtol, atol, value = (rec.get(k) for k in ("name", "mode", "rtol", "atol", "value"))
    if not isinstance(name, str) or not NAME_RE.match(name) or mode not in MODES:
        return None
    for tol in (rtol, atol):
        if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not 0 <= tol <= MAX_TOLERANCE:
            return None
    if not valid_value(value):
        return None
    return {"name": name, "mode": mode, "rtol": float(rtol), "atol": float(atol), "value": value}  # type: ignore[arg-type]


def records(cell: NotebookNode, names: set[str] | None = None) -> list[dict[str, Any]]:
    """The well-formed check records among a cell's outputs, only those named in ``names`` when given (records
    under other names are never looked at), at most :data:`MAX_RECORDS_PER_CELL`."""
    found = []
    for out in cell.get("outputs", []):
        data = out.get("data") if isinstance(out, dict) else None
        raw = data.get(MIME) if isinstance(data, dict) else None
        name = raw.get("name") if isinstance(raw, dict) else None
        if names is not None and not (isinstance(name, str) and name in names):
            continue
        rec = valid_record(raw)
        if rec is not None:
            found.append(rec)
            if len(found) >= MAX_RECORDS_PER_CELL:
                break
    return found
