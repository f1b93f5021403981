"""Test cells as a student's kernel sees them: inputs and recorded values, no expected values.

A test cell in the source computes expected values next to the student's (``check(name, value,
expected=...)``, often with a reference implementation in the hidden part). Our verdict never uses
them: it compares the recorded values with the solution's run, outside the kernel. Sent to a
student's kernel they would be a gift: a student's replacement of ``check`` could record the
``expected`` argument instead of the value, or pick a precomputed reference array out of the
caller's frame. So before a submission runs, every test cell is rewritten (:func:`strip_expected`):

- every ``check(...)`` call loses its expected value (keyword ``expected`` or third positional);
- a top-level statement that only binds names nothing kept uses (a reference implementation, a
  precomputed expected array, an import only they need) is dropped.

The solution notebook itself runs unchanged (it makes the reference, and its own ``expected``
asserts guard the sheet); `mlph validate` grades the solution as a submission to prove that the
rewritten cells still record the same values.
"""
from __future__ import annotations

import ast
import functools

from nbformat import NotebookNode

from autograder.grading.assemble import is_test


class _DropExpected(ast.NodeTransformer):
    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        func = node.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
        if name == "check":
            node.args = node.args[:2]
            node.keywords = [k for k in node.keywords if k.arg != "expected"]
        return node


def _bound(stmt: ast.stmt) -> set[str] | None:
    """Names a pure binding statement binds, or None for a statement with other effects (kept)."""
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {stmt.name}
    if isinstance(stmt, (ast.Import, ast.ImportFrom)):
        return {(a.asname or a.name).split(".")[0] for a in stmt.names}
    if isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
        names = set()
        for target in targets:
            for node in ast.walk(target):
                if isinstance(node, ast.Name):
                    names.add(node.id)
        return names
    return None


def _used(stmt: ast.stmt) -> set[str]:
    return {n.id for n in ast.walk(stmt) if isinstance(n, ast.Name)}


@functools.lru_cache(maxsize=1024)  # every submission of a sheet has the same test cells
def strip_expected(source: str) -> str:
    """The test cell ``source`` without expected values and what only they need (see module doc)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return source  # not Python (a magic?): run as written; validate reports broken test cells
    tree = _DropExpected().visit(tree)
    needed: set[str] = set()
    kept: list[ast.stmt] = []
    for stmt in reversed(tree.body):
        bound = _bound(stmt)
        if bound is not None and not (bound & needed):
            continue
        kept.append(stmt)
        needed |= _used(stmt)
    tree.body = list(reversed(kept))
    return ast.unparse(ast.fix_missing_locations(tree)) + "\n"


def harden(nb: NotebookNode) -> NotebookNode:
    """An assembled notebook whose test cells are stripped of expected values (``nb`` is left as it is)."""
    out = NotebookNode(nb)  # the cells it rewrites are its own, the others shared (never edited in place)
    out["cells"] = [NotebookNode(cell, source=strip_expected("".join(cell.source))) if is_test(cell) else cell
                    for cell in nb.cells]
    return out
