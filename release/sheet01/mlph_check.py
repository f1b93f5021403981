"""``check``: the one assertion helper of the MLPH exercise sheets.

Every test cell records the values it tests with ``check(name, value, expected=..., mode=...)``.

* In your own notebook ``check`` compares ``value`` with ``expected`` and raises ``AssertionError``
  with a readable message when they differ, so the visible tests tell you what is wrong.
* When your submission is graded, the values you recorded are sent out of the kernel as data and
  compared, outside your notebook, with the values the reference solution records for the same
  checks. Nothing your code does inside the kernel can change that comparison.

Comparison modes: ``close`` (numbers and arrays within rtol/atol; the default), ``exact``, ``abs``
(up to the sign of each entry), ``sign`` (up to one overall sign), ``colsign`` (each column up to
its sign, as for eigenvectors), ``subspace`` (the columns span the same space) and ``sorted`` (the
same values in any order).
"""
from __future__ import annotations

import math
from typing import Any

MIME = "application/vnd.mlph.check+json"
MODES = ("close", "exact", "abs", "sign", "colsign", "subspace", "sorted")
MAX_ELEMENTS = 100_000
PLAIN_MODES = ("close", "exact", "abs", "sorted")  # compared without numpy (see _compare_plain)

__all__ = ["check", "encode", "compare", "MIME", "MODES"]


def _scalar(x: Any) -> Any:
    if isinstance(x, bool) or x is None or isinstance(x, str):
        return x
    if isinstance(x, int):
        return x
    f = float(x)
    if math.isnan(f) or math.isinf(f):
        return {"nonfinite": repr(f)}  # strict JSON; never equal to anything, itself included
    return f


def encode(value: Any) -> dict[str, Any]:
    """A JSON-safe description of a value: ``{"shape": [...], "data": [...]}`` or ``{"scalar": x}``."""
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy is always there on the course image
        np = None  # type: ignore[assignment]
    if np is not None and not isinstance(value, (str, bytes, dict)):
        if isinstance(value, (list, tuple, np.ndarray)) or hasattr(value, "__array__"):
            try:
                arr = np.asarray(value)
            except ValueError:  # a ragged sequence (arrays of different shapes): recorded item by item
                if isinstance(value, (list, tuple)):
                    return {"items": [encode(v) for v in value]}
                raise
            if arr.ndim == 0 and arr.dtype.kind in "biuf":
                return {"scalar": _scalar(arr.item())}
            if arr.dtype.kind in "biuf":
                if arr.size > MAX_ELEMENTS:
                    raise ValueError(f"check value has {arr.size} elements; at most {MAX_ELEMENTS}")
                kind = "bool" if arr.dtype.kind == "b" else "number"
                data = [_scalar(v) for v in arr.ravel().tolist()]
                return {"shape": list(arr.shape), "kind": kind, "data": data}
            if arr.dtype.kind == "c":
                raise TypeError("complex values: check the real and imaginary parts separately")
        if isinstance(value, np.generic):
            value = value.item()
    if isinstance(value, (bool, int, float, str)) or value is None:
        return {"scalar": _scalar(value)}
    if isinstance(value, (list, tuple)):
        return {"items": [encode(v) for v in value]}
    raise TypeError(f"check cannot record a value of type {type(value).__name__}")


def compare(actual: dict[str, Any], expected: dict[str, Any], mode: str, rtol: float, atol: float) -> str | None:
    """None when the encoded ``actual`` matches the encoded ``expected``, else the reason."""
    if mode not in MODES:
        return f"unknown comparison mode {mode!r}"
    if "items" in expected:
        items = actual.get("items")
        if not isinstance(items, list) or len(items) != len(expected["items"]):
            return "a sequence of a different length"
        for i, (a, e) in enumerate(zip(items, expected["items"])):
            why = compare(a, e, mode, rtol, atol)
            if why:
                return f"item {i}: {why}"
        return None
    if "scalar" in expected:
        if not isinstance(actual, dict) or "scalar" not in actual:
            if isinstance(actual, dict) and actual.get("shape") == []:
                actual = {"scalar": actual["data"][0]}
            else:
                return f"expected a single value {expected['scalar']!r}"
        return _compare_scalar(actual["scalar"], expected["scalar"], mode, rtol, atol)
    return _compare_array(actual, expected, mode, rtol, atol)


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


_NUMBER_TYPES = frozenset((int, float, bool))


def _all_numbers(data: list[Any]) -> bool:
    """Every entry an int, float or bool: the types of a decoded record's entries, collected in C (thousands of
    entries per hand-in), else the entries checked one by one (subclasses)."""
    return set(map(type, data)) <= _NUMBER_TYPES or all(isinstance(x, (int, float)) for x in data)


def _show(x: Any) -> str:
    """A recorded value as shown in a message: numbers in full, other values short (a student's record
    is not a channel to carry text out of the grader)."""
    text = repr(x)
    return text if _is_number(x) or len(text) <= 24 else f"a {type(x).__name__} ({text[:16]}...)"


def _compare_scalar(a: Any, e: Any, mode: str, rtol: float, atol: float) -> str | None:
    if isinstance(a, dict) or isinstance(e, dict):
        return f"got {_show(a)}, expected {_show(e)}: not a finite number"
    if _is_number(e) and _is_number(a) and mode != "exact":
        if mode in ("abs", "sign"):
            a, e = abs(a), abs(e)
        if abs(a - e) <= atol + rtol * abs(e):
            return None
        return f"got {a!r}, expected {e!r} (rtol={rtol}, atol={atol})"
    if type(a) is type(e) and a == e:
        return None
    return f"got {_show(a)}, expected {_show(e)}"


def _compare_array(actual: dict[str, Any], expected: dict[str, Any], mode: str, rtol: float, atol: float) -> str | None:
    shape = expected.get("shape")
    if not isinstance(actual, dict) or actual.get("shape") != shape:
        got = actual.get("shape") if isinstance(actual, dict) else None
        return f"shape {tuple(got) if isinstance(got, list) else got} instead of {tuple(shape or ())}"
    data = actual.get("data")
    if not isinstance(data, list) or len(data) != len(expected["data"]):
        return "malformed array"
    if not _all_numbers(data):
        return "the array holds NaN, infinite or non-numeric entries"
    if not _all_numbers(expected["data"]):
        return "the reference holds non-finite entries"
    if data == expected["data"]:  # equal numbers: equal in every mode (most checks of a solution), no arrays made
        return None
    plain_shape = isinstance(shape, list) and all(isinstance(d, int) and d > 0 for d in shape)
    if (mode in PLAIN_MODES and plain_shape and math.isfinite(rtol) and math.isfinite(atol) and atol + 1e-300 > 0
            and rtol >= 0):
        assert isinstance(shape, list)
        a_plain, e_plain = [float(x) for x in data], [float(x) for x in expected["data"]]
        if all(math.isfinite(x) for x in a_plain) and all(math.isfinite(x) for x in e_plain):
            return _compare_plain(a_plain, e_plain, shape, mode, rtol, atol)
    import numpy as np

    a = np.asarray(data, dtype=float).reshape(shape)
    e = np.asarray(expected["data"], dtype=float).reshape(shape)
    if mode == "exact":
        return None if np.array_equal(a, e) else "the values differ"
    a, e = _canonical(a, e, mode)
    if a.shape != e.shape:
        return "shapes differ"
    if np.allclose(a, e, rtol=rtol, atol=atol, equal_nan=False):
        return None
    return _entry_failure(a, e, mode, rtol, atol)


def _compare_plain(a: list[float], e: list[float], shape: list[int], mode: str, rtol: float, atol: float) -> str | None:
    """:func:`_compare_array` for the modes that need no linear algebra, in plain floats: the same IEEE
    operations numpy's ``allclose`` does entry by entry (the grader then needs no numpy to score)."""
    if mode == "exact":
        return None if a == e else "the values differ"
    if mode == "abs":
        a, e = [abs(x) for x in a], [abs(y) for y in e]
    elif mode == "sorted":
        a, e = sorted(a), sorted(e)
    if all(abs(x - y) <= atol + rtol * abs(y) for x, y in zip(a, e)):
        return None
    diff = [abs(x - y) for x, y in zip(a, e)]
    excess = [d / (atol + rtol * abs(y) + 1e-300) for d, y in zip(diff, e)]
    flat = excess.index(max(excess))
    index, rest = [], flat
    for size in reversed(shape if mode != "sorted" else [len(a)]):
        index.append(rest % size)
        rest //= size
    index.reverse()
    bad = sum(1 for d, y in zip(diff, e) if d > atol + rtol * abs(y))
    return _failure_text(index, mode, a[flat], e[flat], diff[flat], rtol, atol, bad, len(a))


def _failure_text(index: list[int], mode: str, got: float, want: float, diff: float, rtol: float, atol: float,
                  bad: int, size: int) -> str:
    where = {"sorted": " of the sorted values", "abs": " (absolute values)", "sign": " (up to the overall sign)",
             "colsign": " (columns up to their signs)", "subspace": " of the projectors onto the column spaces"}.get(mode, "")
    at = index[0] if len(index) == 1 else tuple(index)
    return (f"entry {at}{where}: got {got!r}, expected {want!r} (difference "
            f"{diff:.3g}; rtol={rtol}, atol={atol}); {bad} of {size} entries out of tolerance")


def _entry_failure(a: Any, e: Any, mode: str, rtol: float, atol: float) -> str:
    """The message for arrays out of tolerance: the entry that fails worst (relative to its own
    tolerance), with its two values, so the student sees which entry, not some other entry's difference."""
    import numpy as np

    diff = np.abs(a - e)
    excess = diff / (atol + rtol * np.abs(e) + 1e-300)
    flat = int(np.argmax(excess))
    index = tuple(int(i) for i in np.unravel_index(flat, a.shape))
    bad = int(np.count_nonzero(diff > atol + rtol * np.abs(e)))
    return _failure_text(list(index), mode, float(a[index]), float(e[index]), float(diff[index]), rtol, atol, bad,
                         int(a.size))


def _canonical(a: Any, e: Any, mode: str) -> tuple[Any, Any]:
    import numpy as np

    if mode == "abs":
        return np.abs(a), np.abs(e)
    if mode == "sorted":
        return np.sort(a, axis=None), np.sort(e, axis=None)
    if mode == "sign":
        flip = -1.0 if np.sum(a * e) < 0 else 1.0
        return flip * a, e
    if mode == "colsign" and a.ndim == 2:
        signs = np.where(np.sum(a * e, axis=0) < 0, -1.0, 1.0)
        return a * signs, e
    if mode == "subspace" and a.ndim == 2:
        def projector(m: Any) -> Any:
            q, _ = np.linalg.qr(m)
            return q @ q.T

        if np.linalg.matrix_rank(a) != np.linalg.matrix_rank(e):
            return np.zeros(1), np.ones(1)
        return projector(a), projector(e)
    return a, e


def check(name: str, value: Any, expected: Any = None, *, mode: str = "close",
          rtol: float = 1e-6, atol: float = 1e-9) -> None:
    """Record ``value`` under ``name``; if ``expected`` is given, assert that they agree."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}")
    record: dict[str, Any] = {"name": str(name), "value": encode(value), "mode": mode, "rtol": float(rtol), "atol": float(atol)}
    try:
        from IPython.display import display

        display({MIME: record}, raw=True)
    except ImportError:  # plain Python: nothing to record into
        pass
    if expected is not None:
        why = compare(record["value"], encode(expected), mode, float(rtol), float(atol))
        if why:
            raise AssertionError(f"check {name!r} failed: {why}")
