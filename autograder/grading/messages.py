"""Feedback messages, built from our own templates only.

What a message may contain: the test's and the sheet's own (trusted) text, the reference's expected value
of a *visible* check (it is in the student's notebook anyway), and categorical facts about the student's
run: passed or failed, which kind of failure (:data:`FAILURE_KINDS`), and the type of a built-in exception
(:data:`BUILTIN_ERRORS`; any other class is "an exception of a class defined in your code"). Never the
text of an exception, a recorded value, a shape, a name or an output of the student's code: all of those
can carry what the student's code read from a hidden test while it ran. What still leaks is stated in the
README: per test cell pass/fail, and per visible check the kind of failure and per error the built-in type.
"""
from __future__ import annotations

import builtins
import re
from typing import Any

from nbformat import NotebookNode

BUILTIN_ERRORS = frozenset(name for name, obj in vars(builtins).items()
                           if isinstance(obj, type) and issubclass(obj, BaseException)) | {
    "LinAlgError", "AxisError", "CellTimeoutError", "UFuncTypeError", "ComplexWarning", "DeadKernelError"}

FAILURE_KINDS = {
    "ok": "",
    "not_recorded": "was not recorded (the test stopped before it, or your function returned nothing)",
    "shape": "has the wrong shape or length",
    "nonfinite": "contains NaN or infinite values",
    "type": "has the wrong type (for example an array where a single number is expected)",
    "values": "has the right shape but different values",
    "malformed": "could not be read (the recorded value is malformed)",
}
_KIND_RE = [(re.compile(p), k) for p, k in (
    (r"^item \d+: ", None), (r"not a finite number|NaN, infinite", "nonfinite"), (r"^expected a single value", "type"),
    (r"shape|different length|shapes differ", "shape"), (r"malformed|unknown comparison mode|could not be compared",
                                                         "malformed"))]


def failure_kind(why: str) -> str:
    """The category of a comparison's reason (the reason itself contains the student's values: never shown)."""
    while True:
        for pattern, kind in _KIND_RE:
            if pattern.search(why):
                if kind is None:
                    why = pattern.sub("", why, count=1)
                    break
                return kind
        else:
            return "values"


def error_kind(cell: NotebookNode) -> str | None:
    """None when the cell raised no error; else a built-in exception's name, or "" for any other class."""
    for out in cell.get("outputs", []):
        if isinstance(out, dict) and out.get("output_type") == "error":
            name = out.get("ename")
            return name if isinstance(name, str) and name in BUILTIN_ERRORS else ""
    return None


def _number(x: Any) -> str:
    if isinstance(x, bool) or x is None:
        return repr(x)
    if isinstance(x, (int, float)):
        return f"{x:.6g}"
    if isinstance(x, dict):
        return str(x.get("nonfinite", "?"))
    return "…"


def show_expected(value: dict[str, Any], limit: int = 8) -> str:
    """A reference value (trusted) in a few characters: ``3.25``, ``[2, 4, 6]``, ``array of shape (40, 3)``."""
    if "scalar" in value:
        s = value["scalar"]
        return repr(s)[:40] if isinstance(s, str) else _number(s)
    if "items" in value:
        items = value["items"]
        inner = ", ".join(show_expected(i, 3) for i in items[:limit])
        return f"({inner}{', …' if len(items) > limit else ''})"
    shape, data = value.get("shape", []), value.get("data", [])
    if len(shape) == 1 and len(data) <= limit:
        return "[" + ", ".join(_number(x) for x in data) + "]"
    if len(data) <= limit and len(shape) == 2:
        rows = [data[i * shape[1]:(i + 1) * shape[1]] for i in range(shape[0])]
        return "[" + ", ".join("[" + ", ".join(_number(x) for x in r) + "]" for r in rows) + "]"
    return f"an array of shape {tuple(shape)}"


def error_text(ename: str) -> str:
    if ename == "NotImplementedError":
        return "not implemented yet: the function this test calls still raises NotImplementedError"
    if ename == "CellTimeoutError":
        return "this test ran past its time limit"
    what = f"a {ename}" if ename else "an exception of a class defined in your code"
    return (f"the test stopped with {what}; run this test cell in your notebook to see the message "
            "(graded feedback never shows error messages: they could carry a hidden test out)")


def cell_message(status: str, ename: str, checks: list[dict[str, str]]) -> str:
    """The message of one test cell's result (the cause of a follow-up error is added by the feedback)."""
    if status == "passed":
        return ""
    if status == "timeout":
        return "this test ran past its time limit and was interrupted"
    if status == "not_run":
        return "not run: the notebook stopped before this test (see the notes above)"
    if status == "crashed":
        return "the kernel died while running this test (memory or process limit?)"
    if status == "error":
        return error_text(ename)
    parts = []
    for c in checks:
        if c["outcome"] == "ok":
            continue
        if c.get("hidden"):
            parts.append("a hidden test failed")
        else:
            text = f"check {c['name']!r} {FAILURE_KINDS.get(c['outcome'], 'failed')}"
            parts.append(text + (f"; expected {c['expected']}" if c.get("expected") else ""))
    return "; ".join(dict.fromkeys(parts)) or "failed"


# --- naming cells as the student sees them, and explaining what happened to the run ------------------------------

def first_line(source: str, limit: int = 70) -> str:
    """The first line of code that is not blank or a comment (shortened)."""
    for line in source.splitlines():
        s = line.strip()
        if s and not s.startswith("#"):
            return s if len(s) <= limit else s[: limit - 1] + "…"
    return "(empty cell)"


HIDDEN_RE = re.compile(r"### BEGIN HIDDEN TESTS(.*?)### END HIDDEN TESTS", re.S)


def visible_source(source: str) -> str:
    return HIDDEN_RE.sub("", source)


def label_cells(nb: NotebookNode, task_of: dict[str, str]) -> list[str]:
    """A label per cell of the executed notebook, as the student would find it: the task, the kind of cell and
    its first line (test cells: their visible part; answer and added cells: the student's own code, which was
    fixed when it was handed in and so cannot carry anything out of the grader)."""
    from autograder.grading.assemble import grade_id, is_answer, is_test

    labels = []
    anchor = "the top of the notebook"
    for cell in nb.cells:
        gid = grade_id(cell)
        src = "".join(cell.get("source", ""))
        task = task_of.get(gid or "", "")
        where = f" (task {task})" if task else ""
        if gid and is_test(cell):
            labels.append(f"the test `{first_line(visible_source(src))}`{where}")
        elif gid and is_answer(cell):
            labels.append(f"your answer cell `{first_line(src)}`{where}")
        elif gid:
            labels.append(f"the sheet's cell `{first_line(src)}`")
        else:
            labels.append(f"a cell you added after {anchor}: `{first_line(src)}`")
        if gid:
            anchor = labels[-1].split(" (task")[0]
    return labels


def describe_events(events: list[dict[str, Any]], labels: list[str]) -> list[str]:
    """What happened to the run, cell by cell, in words (no index counting from 0)."""
    notes = []
    for e in events:
        i = e.get("cell", -1)
        label = labels[i] if isinstance(i, int) and 0 <= i < len(labels) else "a cell"
        kind = e.get("kind")
        if kind == "timeout":
            text = f"{label} ran past its {e.get('seconds', '?')} s limit and was interrupted"
            if e.get("restarted"):
                text += f"; it {e['restarted']}, so the kernel was restarted and the cells before it run again"
            notes.append(text)
        elif kind == "crashed":
            notes.append(f"the kernel died while running {label} (memory or process limit?); the tests after it "
                         "were not run")
        elif kind == "notebook_timeout":
            notes.append(f"the whole notebook ran past its {e.get('seconds', '?')} s limit before {label}; "
                         "the tests after it were not run")
    return notes


def first_failure(nb: NotebookNode, states: list[str]) -> int | None:
    """The index of the first answer or added cell that failed (error, timeout, crash), if any."""
    from autograder.grading.assemble import is_test

    for i, cell in enumerate(nb.cells):
        if cell.get("cell_type") == "code" and not is_test(cell) and i < len(states) \
                and states[i] in ("error", "timeout", "crashed"):
            return i
    return None


def link_cause(message: str, ename: str, index: int, cause: int | None, labels: list[str], states: list[str]) -> str:
    """A NameError after a failed answer cell is (almost always) its consequence: say so."""
    if cause is None or index <= cause or ename != "NameError":
        return message
    what = {"timeout": "ran past its time limit", "crashed": "crashed"}.get(states[cause], "raised an error")
    return (f"a NameError: a name this test needs is not defined, most likely because {labels[cause]} {what} "
            "before it — fix that first")
