"""Static rules on the source notebook (``ast``, no kernel): what a test cell may and must do.

- Every ``check(...)`` in the *visible* part of a test cell (its source without the ``### BEGIN/END
  HIDDEN TESTS`` region) has an expected value (keyword ``expected`` or third positional argument),
  so it can fail in the student's own notebook.
- Every function an answer cell offers (a top-level ``def`` outside its ``### BEGIN/END SOLUTION``
  region) is called, in the visible part of some test cell, inside the value of a
  ``check(..., expected=...)`` (not one that only compares a shape or a literal True/False).
- No ``expected`` is computed with a student's function, and no test cell calls the answer functions
  of another task (each task is graded on its own).
- The notebook's format: nbformat 4.5, unique cell ids, kernel ``python3``, test grade ids ``test_*``.

Names are resolved the simple way: a name used in a ``check`` is followed to the last assignment (or
``def``) of that name earlier in the same cell, transitively; a name the cell does not bind refers
to the notebook's globals (an answer function if an answer cell defines it).
"""
from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass

from nbformat import NotebookNode

from gradebook.course.manifest import Manifest

from autograder.grading.assemble import grade_id, is_answer, is_test
from autograder.grading.scoring import HIDDEN_RE

SOLUTION_RE = re.compile(r"### BEGIN SOLUTION.*?### END SOLUTION", re.S)


@dataclass(frozen=True)
class AnswerFunction:
    name: str
    cell: str          # grade id of the answer cell
    task: str | None   # the task whose test cells follow the answer cell
    contract: bool     # defined outside the solution region: students see its signature


def cell_tasks(manifest: Manifest, source: NotebookNode) -> dict[str, str]:
    """Grade id → task id, for test cells (from the manifest) and answer cells (the task of the
    first test cell after them: a task's test cells follow its answer cells)."""
    of_test = {gid: t.id for t in manifest.notebook_tasks for gid in t.tests}
    tasks: dict[str, str] = {}
    pending: list[str] = []
    for cell in source.cells:
        gid = grade_id(cell)
        if gid and is_answer(cell):
            pending.append(gid)
        elif gid and is_test(cell) and gid in of_test:
            tasks[gid] = of_test[gid]
            tasks.update({a: of_test[gid] for a in pending})
            pending = []
    return tasks


def answer_functions(manifest: Manifest, source: NotebookNode) -> dict[str, AnswerFunction]:
    """Every top-level function defined in an answer cell, by name."""
    tasks = cell_tasks(manifest, source)
    found: dict[str, AnswerFunction] = {}
    for cell in source.cells:
        gid = grade_id(cell)
        if cell.cell_type != "code" or not is_answer(cell) or not gid:
            continue
        text = "".join(cell.source)
        try:
            tree = ast.parse(text)
        except SyntaxError:
            continue
        regions = [(text[:m.start()].count("\n") + 1, text[:m.end()].count("\n") + 1) for m in SOLUTION_RE.finditer(text)]
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                hidden = any(lo <= node.lineno <= hi for lo, hi in regions)
                found[node.name] = AnswerFunction(node.name, gid, tasks.get(gid), not hidden)
    return found


def is_check(node: ast.AST) -> bool:
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    return (isinstance(func, ast.Name) and func.id == "check") or (isinstance(func, ast.Attribute) and func.attr == "check")


def _arg(call: ast.Call, position: int, keyword: str) -> ast.expr | None:
    if len(call.args) > position:
        return call.args[position]
    return next((k.value for k in call.keywords if k.arg == keyword), None)


def expected_of(call: ast.Call) -> ast.expr | None:
    """The expected-value expression of a ``check`` call (None if absent or the literal None)."""
    node = _arg(call, 2, "expected")
    return None if isinstance(node, ast.Constant) and node.value is None else node


def check_name(call: ast.Call) -> str:
    node = _arg(call, 0, "name")
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else "?"


class Flow:
    """Which global functions an expression calls, following the cell's own bindings."""

    def __init__(self, tree: ast.AST):
        self.binds: dict[str, list[tuple[int, list[ast.AST]]]] = {}
        for node in ast.walk(tree):
            if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)) and node.value is not None:
                targets: list[ast.expr] = list(node.targets) if isinstance(node, ast.Assign) else [node.target]
                for name in _names(targets):
                    self.binds.setdefault(name, []).append((node.lineno, [node.value]))
            elif isinstance(node, (ast.For, ast.AsyncFor)):
                for name in _names([node.target]):
                    self.binds.setdefault(name, []).append((node.lineno, [node.iter]))
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                self.binds.setdefault(node.name, []).append((node.lineno, list(node.body)))
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                for alias in node.names:
                    self.binds.setdefault((alias.asname or alias.name).split(".")[0], []).append((node.lineno, []))

    def global_calls(self, expr: ast.AST) -> set[str]:
        """Names of functions called by ``expr`` (directly or through the cell's bindings) that the
        cell itself does not bind before the call."""
        called: set[str] = set()
        seen: set[int] = set()
        todo: list[ast.AST] = [expr]
        while todo:
            for node in ast.walk(todo.pop()):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and self._binding(node.func) is None:
                    called.add(node.func.id)
                if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
                    bound = self._binding(node)
                    if bound is not None and id(bound) not in seen:
                        seen.add(id(bound))
                        todo.extend(bound)
        return called

    def _binding(self, name: ast.Name) -> list[ast.AST] | None:
        """What the cell last bound to ``name`` before its use (None: a global at that point)."""
        earlier = [parts for line, parts in self.binds.get(name.id, []) if line < name.lineno]
        return earlier[-1] if earlier else None


def _names(targets: list[ast.expr]) -> Iterator[str]:
    for target in targets:
        for node in ast.walk(target):
            if isinstance(node, ast.Name):
                yield node.id


def _parse(text: str, where: str, problems: list[str]) -> ast.Module | None:
    try:
        return ast.parse(text)
    except SyntaxError as exc:
        problems.append(f"{where}: not valid Python ({exc.msg}, line {exc.lineno})")
        return None


def check_test_cells(manifest: Manifest, source: NotebookNode) -> list[str]:
    """The rules on ``check`` calls and answer functions (module doc), for every test cell."""
    functions = answer_functions(manifest, source)
    tasks = cell_tasks(manifest, source)
    problems: list[str] = []
    visibly_checked: set[str] = set()
    for cell in source.cells:
        gid = grade_id(cell)
        if not is_test(cell) or not gid:
            continue
        text = "".join(cell.source)
        full = _parse(text, f"test cell {gid!r}", problems)
        visible = _parse(HIDDEN_RE.sub("", text), f"test cell {gid!r} without its hidden tests", problems)
        if full is None or visible is None:
            continue
        problems += _visible_checks(gid, visible, functions, visibly_checked)
        problems += _trusted_expected(gid, full, functions)
        problems += _own_task_only(gid, tasks.get(gid), full, functions)
    for fn in functions.values():
        if fn.contract and fn.name not in visibly_checked:
            problems.append(f"answer function {fn.name}() (cell {fn.cell!r}) is not called inside a visible "
                            "check(..., expected=...) of any test cell: students get no feedback on it")
    return problems


def _visible_checks(gid: str, tree: ast.Module, functions: dict[str, AnswerFunction], checked: set[str]) -> list[str]:
    flow = Flow(tree)
    problems = []
    for call in (n for n in ast.walk(tree) if is_check(n)):
        assert isinstance(call, ast.Call)
        if expected_of(call) is None:
            problems.append(f"test cell {gid!r}: check {check_name(call)!r} outside the hidden tests has no "
                            "expected value, so it cannot fail in the student's notebook")
            continue
        value = _arg(call, 1, "value")
        if value is not None and not _weak(call, value):
            checked.update(flow.global_calls(value) & set(functions))
    return problems


def _weak(call: ast.Call, value: ast.expr) -> bool:
    """A check that cannot tell a wrong answer from a right one in general: a shape alone, or a value
    compared with the literal True/False. It does not count as the visible check of a function."""
    expected = expected_of(call)
    if isinstance(expected, ast.Constant) and isinstance(expected.value, bool):
        return True
    return isinstance(value, ast.Attribute) and value.attr == "shape"


def _trusted_expected(gid: str, tree: ast.Module, functions: dict[str, AnswerFunction]) -> list[str]:
    flow = Flow(tree)
    problems = []
    for call in (n for n in ast.walk(tree) if is_check(n)):
        assert isinstance(call, ast.Call)
        expected = expected_of(call)
        used = sorted(flow.global_calls(expected) & set(functions)) if expected is not None else []
        if used:
            problems.append(f"test cell {gid!r}: the expected value of check {check_name(call)!r} uses the "
                            f"student's {', '.join(f + '()' for f in used)}: compute it with trusted code")
    return problems


def _own_task_only(gid: str, task: str | None, tree: ast.Module, functions: dict[str, AnswerFunction]) -> list[str]:
    flow = Flow(tree)
    foreign = sorted({f"{name}() of task {functions[name].task!r}" for name in flow.global_calls(tree) & set(functions)
                      if functions[name].task not in (None, task)})
    if not foreign or task is None:
        return []
    return [f"test cell {gid!r} (task {task!r}) calls {', '.join(foreign)}: build inputs and expected "
            "values with trusted code, so that each task is graded on its own"]


def check_notebook_format(source: NotebookNode) -> list[str]:
    """nbformat 4.5 with unique cell ids, kernel python3, test grade ids ``test_*``."""
    problems = []
    if (source.get("nbformat"), source.get("nbformat_minor", 0)) < (4, 5):
        problems.append(f"nbformat {source.get('nbformat')}.{source.get('nbformat_minor')}: use 4.5 (cell ids)")
    ids = [c.get("id") for c in source.cells]
    if any(not i for i in ids) or len(set(ids)) != len(ids):
        problems.append("cell ids are missing or not unique")
    kernel = source.get("metadata", {}).get("kernelspec", {}).get("name")
    if kernel != "python3":
        problems.append(f"kernelspec {kernel!r}: use 'python3'")
    problems += [f"test cell {grade_id(c)!r}: test grade ids start with 'test_'"
                 for c in source.cells if is_test(c) and not (grade_id(c) or "").startswith("test_")]
    return problems
