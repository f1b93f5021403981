"""Answer cells out of hand-ins, read the way the grader reads them, and the code the sheet gave.

A hand-in is ``<course data>/submitted/<student>/<sheet>/<notebook>``, read by the grader's bounded reader
(:func:`~autograder.grading.pipeline.read_notebook_json`: no links, size-capped, JSON only); an answer cell
is a cell whose nbgrader ``grade_id`` is one of the sheet's answer cells (the last copy counts, as for the
grader). A hand-in that cannot be read is an :class:`Unreadable` with the reason, never an exception.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from autograder.grading.pipeline import read_notebook_json

MAX_ANSWER_CHARS = 40_000  # longer answer cells are cut here (the report says so)


@dataclass(frozen=True)
class Answer:
    """One hand-in's answer to one answer cell. ``author``: who counts as one author (a team is one);
    ``origin``: empty for this course, else the earlier course it comes from (a reference)."""
    author: str
    student: str
    code: str
    origin: str = ""

    @property
    def label(self) -> str:
        who = self.author if self.author == self.student else f"{self.student} ({self.author})"
        return f"{who} [{self.origin}]" if self.origin else who


@dataclass(frozen=True)
class Unreadable:
    student: str
    origin: str
    reason: str


def _source(cell: Mapping[str, object]) -> str:
    src = cell.get("source", "")
    if isinstance(src, list):
        return "".join(s for s in src if isinstance(s, str))
    return src if isinstance(src, str) else ""


def _grade_id(cell: object) -> str | None:
    meta = cell.get("metadata") if isinstance(cell, dict) else None
    nbg = meta.get("nbgrader") if isinstance(meta, dict) else None
    gid = nbg.get("grade_id") if isinstance(nbg, dict) else None
    return gid if isinstance(gid, str) and gid else None


def cells_by_id(nb: object, wanted: Iterable[str]) -> dict[str, str]:
    """grade id → source of the cells of notebook JSON ``nb`` with one of the ``wanted`` ids (last copy counts);
    any shape is tolerated (a cell that is not a dict, a source that is neither text nor a list of text)."""
    wanted = set(wanted)
    cells = nb.get("cells") if isinstance(nb, dict) else None
    found: dict[str, str] = {}
    for cell in cells if isinstance(cells, list) else []:
        gid = _grade_id(cell)
        if gid in wanted and isinstance(cell, dict) and cell.get("cell_type") == "code":
            found[gid] = _source(cell)[:MAX_ANSWER_CHARS]
    return found


@dataclass(frozen=True)
class SheetCode:
    """What the sheet gives: its answer cells (grade id → the release's stub) and the code of every other
    code cell of the release notebook (setup, helpers, visible tests): boilerplate that never counts."""
    answer_stubs: dict[str, str]
    given: tuple[str, ...]


def sheet_code(release_nb: object) -> SheetCode:
    cells = release_nb.get("cells") if isinstance(release_nb, dict) else None
    stubs: dict[str, str] = {}
    given: list[str] = []
    for cell in cells if isinstance(cells, list) else []:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        meta = cell.get("metadata", {}).get("nbgrader", {})
        gid = _grade_id(cell)
        if gid and isinstance(meta, dict) and meta.get("solution"):
            stubs[gid] = _source(cell)
        else:
            given.append(_source(cell))
    return SheetCode(stubs, tuple(given))


def read_handins(submitted: Path, sheet: str, notebook: str, answer_ids: Iterable[str],
                 team_of: Mapping[str, str] | None = None, origin: str = "",
                 ) -> tuple[dict[str, list[Answer]], list[Unreadable]]:
    """Every hand-in of ``sheet`` under ``submitted`` (``<student>/<sheet>/<notebook>``): answer cell id →
    the answers (in student order), and the hand-ins that could not be read, each with its reason."""
    ids = list(answer_ids)
    answers: dict[str, list[Answer]] = {gid: [] for gid in ids}
    unreadable: list[Unreadable] = []
    team_of = team_of or {}
    for directory in sorted(submitted.glob(f"*/{sheet}")) if submitted.is_dir() else []:
        student = directory.parent.name
        if directory.is_symlink() or directory.parent.is_symlink() or not directory.is_dir():
            unreadable.append(Unreadable(student, origin, "the hand-in directory is a link (not read)"))
            continue
        try:
            nb = read_notebook_json(directory / notebook)
        except ValueError as exc:
            unreadable.append(Unreadable(student, origin, str(exc)))
            continue
        except Exception as exc:  # any failure is this hand-in's result, never a stopped report
            unreadable.append(Unreadable(student, origin, f"{type(exc).__name__}: {exc}"[:300]))
            continue
        found = cells_by_id(nb, ids)
        if not found:
            unreadable.append(Unreadable(student, origin, f"{notebook} has none of the sheet's answer cells"))
            continue
        team = team_of.get(student)
        author = f"{origin}/{student}" if origin else (f"team {team}" if team else student)
        for gid, code in found.items():
            answers[gid].append(Answer(author, student, code, origin))
    return answers, unreadable


def answer_tasks(source_nb: object, task_of_test: Mapping[str, str]) -> dict[str, str]:
    """Answer cell grade id → the title of the task whose first test cell follows it (else the id itself)."""
    cells = source_nb.get("cells") if isinstance(source_nb, dict) else None
    found: dict[str, str] = {}
    pending: list[str] = []
    for cell in cells if isinstance(cells, list) else []:
        gid = _grade_id(cell)
        meta = cell.get("metadata", {}).get("nbgrader", {}) if isinstance(cell, dict) else {}
        if gid and isinstance(meta, dict) and meta.get("solution"):
            pending.append(gid)
        elif gid is not None and gid in task_of_test:
            found.update({a: task_of_test[gid] for a in pending})
            pending = []
    return found | {a: a for a in pending}
