"""Call guards for `mlph validate`: what a test cell hands to an answer function, and what it rebinds.

Two simulations, each a copy of a trusted notebook with probe cells (``mlph_probe`` metadata, left out
of every figure) that wrap every top-level function of every answer cell right after that cell:

- **read-only inputs** (in the solution's reference run): when a test cell calls an answer function,
  every ``numpy.ndarray`` among its arguments (also inside lists, tuples and dicts) must be read-only,
  unless an answer function returned it (the student's own output passed on, e.g. a cache). An answer
  that modifies its input in place then fails in its own task at home and at grading alike.
- **shadowing** (a run of its own): right after every answer cell, each name that a test cell binds at
  top level is pre-bound to a sentinel, as if the student's answer cell had defined a helper or a
  constant of that name. When a test cell then calls an answer function, every sentinel must still be
  in place: a test cell that rebound one replaced the student's own helper (``_softmax``,
  ``_forward``) for the call, and a correct answer would fail. Names a setup cell binds (the sheet's
  data) and names starting with ``_ref_`` (reserved for tests, the authoring guide says so) are exempt.

The guard cells print one line ``MLPH_GUARD {...}``; validate runs trusted notebooks only.
"""
from __future__ import annotations

import ast
import copy
import json
from collections.abc import Sequence
from typing import Any

from nbformat import NotebookNode
from nbformat.v4 import new_code_cell

from autograder.grading.assemble import grade_id, is_answer, is_test, nbgrader_meta

PROBE_KEY = "mlph_probe"
GUARD_OUTPUT = "MLPH_GUARD "
RESERVED_PREFIX = "_ref_"

GUARD_START = r'''
def _mlph_guards():
    import functools, sys
    state = {"cell": None, "depth": 0, "returned": {}, "writeable": {}, "shadowed": {}, "sentinels": {}}

    def arrays(x, depth=0):
        np = sys.modules.get("numpy")
        if np is not None and isinstance(x, np.ndarray):
            yield x
        elif depth < 4 and isinstance(x, (list, tuple)):
            for v in x:
                yield from arrays(v, depth + 1)
        elif depth < 4 and isinstance(x, dict):
            for v in x.values():
                yield from arrays(v, depth + 1)

    def guard(f, g):
        @functools.wraps(f)
        def guarded(*args, **kwargs):
            outer = state["depth"] == 0 and state["cell"] is not None
            if outer:
                cell = state["cell"]
                for i, a in enumerate((*args, *kwargs.values())):
                    if any(x.flags.writeable and id(x) not in state["returned"] for x in arrays(a)):
                        where = f"{f.__name__}() argument {i + 1 if i < len(args) else list(kwargs)[i - len(args)]}"
                        state["writeable"].setdefault(cell, [])
                        if where not in state["writeable"][cell]:
                            state["writeable"][cell].append(where)
                for n, v in state["sentinels"].items():  # each name reported once, at the first call it affects
                    if g.get(n) is not v and not any(n in names for names in state["shadowed"].values()):
                        state["shadowed"].setdefault(cell, []).append(n)
            state["depth"] += 1
            try:
                out = f(*args, **kwargs)
            finally:
                state["depth"] -= 1
            if outer:  # what a test cell got back (and may pass on): the student's own output
                for x in arrays(out):
                    state["returned"][id(x)] = x
            return out
        return guarded
    return state, guard


_mlph_state, _mlph_guard = _mlph_guards()
del _mlph_guards
'''.strip()
GUARD_REPORT = ('import json as _mlph_json\nprint(' + repr(GUARD_OUTPUT) + ' + _mlph_json.dumps({k: _mlph_state[k] '
                'for k in ("writeable", "shadowed")}))\ndel _mlph_json')


def _bound_names(tree: ast.Module) -> set[str]:
    """Names a cell binds at top level (assignments, loop and with targets, defs, classes, imports;
    also inside top-level if/for/while/try/with blocks, never inside functions or comprehensions)."""
    names: set[str] = set()

    def targets(node: ast.AST) -> None:
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name):
                names.add(sub.id)

    def visit(stmts: list[ast.stmt]) -> None:
        for s in stmts:
            if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(s.name)
                continue
            if isinstance(s, (ast.Import, ast.ImportFrom)):
                names.update((a.asname or a.name).split(".")[0] for a in s.names)
            elif isinstance(s, ast.Assign):
                for t in s.targets:
                    targets(t)
            elif isinstance(s, (ast.AnnAssign, ast.AugAssign)):
                targets(s.target)
            elif isinstance(s, (ast.For, ast.AsyncFor)):
                targets(s.target)
            elif isinstance(s, (ast.With, ast.AsyncWith)):
                for item in s.items:
                    if item.optional_vars is not None:
                        targets(item.optional_vars)
            for sub in ast.walk(s):
                if isinstance(sub, ast.NamedExpr):
                    targets(sub.target)
            for field in ("body", "orelse", "finalbody"):
                visit(getattr(s, field, []) or [])
            for handler in getattr(s, "handlers", []) or []:
                if handler.name:
                    names.add(handler.name)
                visit(handler.body)

    visit(tree.body)
    return names


def cell_bindings(cell: NotebookNode) -> set[str]:
    try:
        return _bound_names(ast.parse("".join(cell.source)))
    except SyntaxError:
        return set()


def _is_setup(cell: NotebookNode) -> bool:
    return (cell.get("cell_type") == "code" and bool(nbgrader_meta(cell).get("locked"))
            and not is_test(cell) and not is_answer(cell))


def names_tests_bind(nb: NotebookNode) -> list[str]:
    """Names the test cells of ``nb`` bind at top level that an answer cell could define: not bound by
    a setup cell, not ``_ref_*``, not the probes' own."""
    setup = set().union(*[cell_bindings(c) for c in nb.cells if _is_setup(c)])
    tests = set().union(*[cell_bindings(c) for c in nb.cells if is_test(c)])
    return sorted(n for n in tests - setup if not n.startswith((RESERVED_PREFIX, "_mlph")))


def answer_defs(cell: NotebookNode) -> list[str]:
    try:
        tree = ast.parse("".join(cell.source))
    except SyntaxError:
        return []
    return [s.name for s in tree.body if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))]


def guarded(nb: NotebookNode, sentinels: Sequence[str] = ()) -> NotebookNode:
    """A copy of ``nb`` whose answer functions are guarded (module doc); with ``sentinels``, each of these
    names is pre-bound to a sentinel right after every answer cell."""
    new = copy.deepcopy(nb)
    cells: list[NotebookNode] = [new_code_cell(GUARD_START, metadata={PROBE_KEY: "guard"})]
    for cell in new.cells:
        test = is_test(cell)
        if test:
            cells.append(new_code_cell(f"_mlph_state['cell'] = {grade_id(cell)!r}", metadata={PROBE_KEY: "guard"}))
        cells.append(cell)
        if test:
            cells.append(new_code_cell("_mlph_state['cell'] = None", metadata={PROBE_KEY: "guard"}))
        if is_answer(cell) and cell.get("cell_type") == "code":
            lines = [f"_mlph_state['sentinels'].setdefault({n!r}, object())" for n in sentinels]
            lines += [f"globals()[{n!r}] = _mlph_state['sentinels'][{n!r}]" for n in sentinels]
            lines += [f"if callable(globals().get({f!r})): {f} = _mlph_guard({f}, globals())" for f in answer_defs(cell)]
            if lines:
                cells.append(new_code_cell("\n".join(lines), metadata={PROBE_KEY: "guard"}))
    new.cells = cells + [new_code_cell(GUARD_REPORT, metadata={PROBE_KEY: "guard"})]
    return new


def guard_report(run: dict[str, Any]) -> dict[str, dict[str, list[str]]]:
    """``{"writeable": {cell: [where]}, "shadowed": {cell: [names]}}`` from a run of :func:`guarded`
    (empty if the report cell did not run)."""
    for cell in reversed(run["notebook"].cells):
        if cell.get("metadata", {}).get(PROBE_KEY) != "guard":
            continue
        for out in cell.get("outputs", []):
            text = out.get("text", "")
            text = "".join(text) if isinstance(text, list) else str(text)
            for line in text.splitlines():
                if line.startswith(GUARD_OUTPUT):
                    data = json.loads(line[len(GUARD_OUTPUT):])
                    return {k: {c: v for c, v in data.get(k, {}).items() if v} for k in ("writeable", "shadowed")}
    return {"writeable": {}, "shadowed": {}}


def writeable_problems(report: dict[str, dict[str, list[str]]]) -> list[str]:
    return [f"test cell {cell!r} passes writeable arrays: {', '.join(where)} (make every test input read-only: "
            "X.flags.writeable = False, or the setup cell's helper)" for cell, where in report["writeable"].items()]


def shadow_problems(report: dict[str, dict[str, list[str]]] | str) -> list[str]:
    if isinstance(report, str):
        return [f"the shadowing simulation {report}"]
    return [f"test cell {cell!r} calls an answer function after a test cell (this or an earlier one) rebound "
            f"{', '.join(names)}, which a student's answer cell may define (the student's own helper or constant "
            f"would be replaced): prefix the test's names with {RESERVED_PREFIX!r} or move helpers into mlph_check"
            for cell, names in report["shadowed"].items()]
