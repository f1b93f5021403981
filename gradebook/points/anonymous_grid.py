"""The tutors' grid of an anonymous sheet: every student as their pseudonym (:mod:`gradebook.course.anonymity`),
with nothing that names them: no name, id, team name, file name of their upload, or grader's reason text
(which may quote a path with the id); in the order of the pseudonyms, not of the names."""
from __future__ import annotations

import dataclasses

from gradebook.points.grid import CellState, Grid, GridStudent, HandinRef


def _ref(ref: HandinRef | None, alias: str) -> HandinRef | None:
    return None if ref is None else dataclasses.replace(ref, student_id=alias, original_name=None)


def masked_student(s: GridStudent, alias: str, teams: dict[str, str]) -> GridStudent:
    return dataclasses.replace(s, id=alias, last_name=alias, first_name="",
                               team=None if s.team is None else teams[s.team], autograde_reason=None,
                               pdf=_ref(s.pdf, alias), notebook=_ref(s.notebook, alias))


def masked_cell(cell: CellState, alias: str) -> CellState:
    return dataclasses.replace(cell, student=alias)


def anonymize_grid(g: Grid, masks: dict[str, str]) -> Grid:
    """``g`` with each student as ``masks[student]`` (student → pseudonym); teams as "team 1", "team 2"."""
    teams = {t: f"team {n}" for n, t in enumerate(sorted({s.team for s in g.students if s.team}), 1)}
    students = sorted((masked_student(s, masks[s.id], teams) for s in g.students), key=lambda s: s.id)
    cells = {(masks[sid], task): masked_cell(c, masks[sid]) for (sid, task), c in g.cells.items() if sid in masks}
    regrades = {(masks[sid], task): rid for (sid, task), rid in g.regrades.items() if sid in masks}
    return dataclasses.replace(g, students=tuple(students), cells=cells, regrades=regrades)
