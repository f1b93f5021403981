"""A simulated class for `mlph demo`: students with abilities, habits and the mistakes students make.

Pure functions of a seed: who hands in what, which answer each answer cell gets (the solution, a
mistake from the sheet's ``mistakes.toml``, or the untouched stub), when it is submitted, and the
pen-and-paper points a tutor would give.
"""
from __future__ import annotations

import copy
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction

from nbformat import NotebookNode

from gradebook.course.manifest import Manifest

from autograder.grading.assemble import grade_id, is_answer

FIRST = ["Anna", "Ben", "Chiara", "David", "Elif", "Felix", "Greta", "Hannes", "Ines", "Jonas", "Katharina",
         "Lukas", "Mia", "Niklas", "Olga", "Paul", "Qi", "Rania", "Sophie", "Tobias", "Ute", "Viktor",
         "Wen", "Xaver", "Yasmin", "Zoe", "Ömer", "Łukasz", "José", "Aoife"]
LAST = ["Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz",
        "Hoffmann", "Koch", "Richter", "Klein", "Wolf", "Neumann", "Schwarz", "Zimmermann", "Braun",
        "Krüger", "Hofmann", "O'Brien", "van der Berg", "García, Jr.", "Nguyen", "Yılmaz", "Kowalski",
        "Rossi", "Chen", "Papadopoulos", "Dubois"]
PROGRAMMES = ["MSc Physics", "MSc Physics", "MSc Physics", "MSc Scientific Computing", "MSc Data and Computer Science"]
INFINITE_LOOP = "import time\nwhile True:\n    time.sleep(0.1)\n"


@dataclass(frozen=True)
class SimStudent:
    id: str
    first_name: str
    last_name: str
    email: str
    matriculation: str
    programme: str
    ability: float  # probability of a correct answer
    diligence: float  # probability of handing in at all
    punctuality: float  # probability of handing in on time


def make_class(n: int, seed: int) -> list[SimStudent]:
    rng = random.Random(seed)
    students = []
    for i in range(n):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        sid = f"{first[0]}{last[0]}{100 + i}".lower().encode("ascii", "ignore").decode() or f"s{100 + i}"
        ability = min(0.98, max(0.05, rng.betavariate(3.0, 1.6)))
        students.append(SimStudent(
            id=sid, first_name=first, last_name=last,
            email=f"{sid}@stud.uni-heidelberg.de", matriculation=str(3_700_000 + rng.randrange(100_000)),
            programme=rng.choice(PROGRAMMES), ability=ability,
            diligence=0.5 if i % 9 == 4 else min(0.99, 0.75 + ability / 4),
            punctuality=0.85 if i % 7 == 3 else 0.97))
    return students


@dataclass(frozen=True)
class Handin:
    """What one simulated student hands in for one sheet (``notebook`` None: nothing)."""

    student: SimStudent
    notebook: NotebookNode | None
    raw: str | None  # a broken file instead of a notebook
    clock: datetime
    answers: dict[str, str]  # answer cell -> "solution" | "stub" | "mistake: <why>" | "endless loop"


def _answer(rng: random.Random, ability: float, options: list[dict[str, str]]) -> tuple[str, str | None]:
    roll = rng.random()
    if roll < ability:
        return "solution", None
    if options and roll < ability + (1 - ability) * 0.75:
        m = rng.choice(options)
        return f"mistake: {m['why']}", m["source"]
    return "stub", None


def handin(student: SimStudent, manifest: Manifest, source: NotebookNode, release: NotebookNode,
           mistakes: list[dict[str, str]], rng: random.Random, chaos: str | None = None) -> Handin:
    """One student's hand-in for one sheet; ``chaos`` forces "broken" or "loop" for the demo's edge cases."""
    late = rng.random() > student.punctuality
    offset = timedelta(hours=rng.uniform(1, 30)) if late else -timedelta(hours=rng.uniform(0.2, 70))
    clock = manifest.due + offset
    if chaos == "broken":
        return Handin(student, None, '{"cells": [ {"cell_type": "code", "source": "oops"', clock, {})
    solutions = {grade_id(c): "".join(c.source) for c in source.cells if is_answer(c)}
    nb = copy.deepcopy(release)
    answers: dict[str, str] = {}
    for cell in nb.cells:
        gid = grade_id(cell)
        if not gid or not is_answer(cell):
            continue
        options = [m for m in mistakes if m["cell"] == gid]
        what, code = _answer(rng, student.ability, options)
        if chaos == "loop" and not answers:
            what, code = "endless loop", INFINITE_LOOP
        answers[gid] = what
        cell.source = solutions[gid] if what == "solution" else (code if code is not None else cell.source)
    return Handin(student, nb, None, clock, answers)


def paper_points(student: SimStudent, manifest: Manifest, rng: random.Random) -> dict[str, Fraction]:
    """A tutor's marks, in half points, for a student who handed in the sheet."""
    marks = {}
    for task in manifest.paper_tasks:
        share = min(1.0, max(0.0, rng.gauss(student.ability, 0.2)))
        marks[task.id] = Fraction(round(float(task.points) * share * 2), 2)
    return marks
