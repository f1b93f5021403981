"""Build the notebook that is executed for a submission: the source's structure, the student's answers.

A pure function on notebooks. Every cell of the source notebook that carries an nbgrader
``grade_id`` is placed in source order; answer cells (``solution: true``) take the student's code,
every other one (setup, test cells with their hidden tests, task descriptions) is taken from the
source, so a student cannot weaken, delete, retag, reorder or duplicate a test. Cells the student
added stay, after the source cell they followed. A deleted answer cell becomes a failing stub.
"""
from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass, field
from typing import Any

import nbformat
from nbformat import NotebookNode

MISSING_ANSWER = "raise NotImplementedError('this answer cell is missing from the submission')"


def nbgrader_meta(cell: NotebookNode) -> dict[str, Any]:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return meta if isinstance(meta, dict) else {}


def grade_id(cell: NotebookNode) -> str | None:
    gid = nbgrader_meta(cell).get("grade_id")
    return gid if isinstance(gid, str) and gid else None


def is_answer(cell: NotebookNode) -> bool:
    return bool(nbgrader_meta(cell).get("solution"))


def is_test(cell: NotebookNode) -> bool:
    meta = nbgrader_meta(cell)
    return bool(meta.get("grade")) and not meta.get("solution") and cell.get("cell_type") == "code"


def test_points(nb: NotebookNode) -> dict[str, float]:
    return {grade_id(c) or "": float(nbgrader_meta(c).get("points", 0)) for c in nb.cells if is_test(c)}


@dataclass
class Assembly:
    notebook: NotebookNode
    notes: list[str] = field(default_factory=list)


def _copy(cell: NotebookNode) -> NotebookNode:
    """A cell of its own (its top-level fields and its metadata's), the deeper values shared: the assembled
    notebook replaces fields, never edits nested values in place, so the source's cells stay as they are
    without a deep copy of every cell for every submission."""
    new = NotebookNode(cell)
    if isinstance(cell.get("metadata"), dict):
        new["metadata"] = NotebookNode(cell["metadata"])
    return new


def _plain(cell: NotebookNode) -> NotebookNode:
    """A student's own cell: no nbgrader powers, no outputs."""
    new = _copy(cell)
    new.get("metadata", {}).pop("nbgrader", None)
    if new.get("cell_type") == "code":
        new["outputs"] = []
        new["execution_count"] = None
    return new


def _answer(source_cell: NotebookNode, student_source: str) -> NotebookNode:
    new = _copy(source_cell)
    new["source"] = student_source
    new["outputs"] = []
    new["execution_count"] = None
    return new


def assemble(source: NotebookNode, submitted: NotebookNode) -> Assembly:
    """The notebook to execute for ``submitted``, graded against ``source``."""
    by_id = {grade_id(c): c for c in source.cells if grade_id(c)}
    answers: dict[str, str] = {}
    extras: dict[str | None, list[NotebookNode]] = {}
    notes: list[str] = []
    anchor: str | None = None
    seen: set[str] = set()
    for cell in submitted.cells:
        gid = grade_id(cell)
        src = by_id.get(gid) if gid else None
        if gid and src is not None:
            if gid in seen:
                notes.append(f"cell {gid!r} appears more than once; the last copy counts")
            seen.add(gid)
            if is_answer(src):
                answers[gid] = "".join(cell.get("source", ""))
            anchor = gid
            continue
        if gid:
            notes.append(f"cell {gid!r} is not part of this sheet; it runs as an ordinary cell")
        extras.setdefault(anchor, []).append(_plain(cell))
    cells: list[NotebookNode] = list(extras.get(None, []))
    for cell in source.cells:
        gid = grade_id(cell)
        if gid and is_answer(cell):
            if gid not in answers:
                notes.append(f"answer cell {gid!r} is missing; it counts as unanswered")
            cells.append(_answer(cell, answers.get(gid, MISSING_ANSWER)))
        else:
            if gid and gid not in seen and is_test(cell):
                notes.append(f"test cell {gid!r} was missing and has been restored")
            cells.append(_copy(cell))
        if gid:
            cells.extend(extras.get(gid, []))
    nb = nbformat.v4.new_notebook(metadata=copy.deepcopy(source.metadata), cells=cells)
    nb.nbformat, nb.nbformat_minor = 4, 5
    _unique_ids(nb)
    return Assembly(nb, notes)


def _unique_ids(nb: NotebookNode) -> None:
    used: set[str] = set()
    for cell in nb.cells:
        cid = cell.get("id")
        if not isinstance(cid, str) or not cid or cid in used:
            cid = uuid.uuid4().hex[:12]
        cell["id"] = cid
        used.add(cid)
