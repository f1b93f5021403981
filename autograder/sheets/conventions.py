"""The shape every sheet of the course has (source/README.md): points, tasks, rubrics, mistakes.

The numbers are data (:class:`Conventions`), so that the tests can validate a tiny sheet with the
same code; `mlph validate` uses :data:`COURSE`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

from nbformat import NotebookNode

from gradebook.course.manifest import Manifest

HANDIN = "Hand in the pen-and-paper part as one PDF"


@dataclass(frozen=True)
class Conventions:
    notebook_points: Fraction | None = Fraction(13)   # None: any
    paper_points: Fraction | None = Fraction(7)
    notebook_tasks: tuple[int, int] = (3, 4)          # inclusive range
    paper_tasks: tuple[int, int] = (1, 2)
    rubric_items: tuple[int, int] = (2, 4)
    min_mistakes: int = 10
    min_mistakes_per_cell: int = 2
    handin_sentence: str | None = HANDIN               # must appear in the notebook's Markdown


COURSE = Conventions()


def _count(what: str, n: int, bounds: tuple[int, int]) -> list[str]:
    lo, hi = bounds
    return [] if lo <= n <= hi else [f"{n} {what}; a sheet has {lo}–{hi}"]


def _plain(text: str) -> str:
    """Markdown as words: emphasis marks dropped, whitespace collapsed."""
    return " ".join(re.sub(r"[*_`]", "", text).split())


def check_conventions(manifest: Manifest, source: NotebookNode, conv: Conventions) -> list[str]:
    """Points and task counts, each paper task's rubric and model solution, the hand-in sentence."""
    name = manifest.path.name
    problems = _count("notebook tasks", len(manifest.notebook_tasks), conv.notebook_tasks)
    problems += _count("paper tasks", len(manifest.paper_tasks), conv.paper_tasks)
    for part, have, want in (("autograded", manifest.notebook_points, conv.notebook_points),
                             ("pen-and-paper", manifest.paper_points, conv.paper_points)):
        if want is not None and have != want:
            problems.append(f"{have} {part} points in {name}; a sheet has {want}")
    for task in manifest.paper_tasks:
        if not task.rubric:
            problems.append(f"paper task {task.id!r} has no rubric in {name} ([[task.rubric]] items with id, "
                            "text and points that add up to the task's points)")
        else:
            problems += [f"paper task {task.id!r}: {p}" for p in _count("rubric items", len(task.rubric), conv.rubric_items)]
        if not task.solution:
            problems.append(f"paper task {task.id!r} has no model solution in {name} (solution = '''...''')")
    if conv.handin_sentence and manifest.paper_tasks:
        text = _plain(" ".join("".join(c.source) for c in source.cells if c.cell_type == "markdown"))
        if _plain(conv.handin_sentence) not in text:
            problems.append(f"the notebook's text does not say how to hand in the paper part: "
                            f"\"{conv.handin_sentence} ...\"")
    return problems
