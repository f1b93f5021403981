"""One line per part of a sheet (notebook, paper): earned, counted, the maximum, and which rule reduced what.

:func:`part_lines` is the one source of these lines for ``mlph status``, the student's sheet page and
dashboard, and the parts export (``mlph admission --parts-csv``): all of them show the same numbers.
Pure: a :class:`~gradebook.admission.rule.SheetCell` and its sheet in, plain data out.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from fractions import Fraction

from gradebook.admission.rule import SheetCell, Standing
from gradebook.course.config import SemesterSheet
from gradebook.points.handins import format_delta
from gradebook.points.paper import fmt

PARTS = ("notebook", "paper")


@dataclass(frozen=True)
class PartLine:
    sheet: str
    part: str  # notebook | paper
    earned: Fraction | None  # as graded (None: nothing graded / entered)
    counted: Fraction | None  # what counts towards admission (None: the sheet is not decided yet)
    maximum: Fraction
    rule: str  # which rule reduced or zeroed the part ("" when it counts as earned)

    @property
    def reduced(self) -> bool:
        return self.earned is not None and self.counted is not None and self.counted < self.earned

    def text(self) -> str:
        """``notebook: earned 13 of 13, counts 0 (late by …: counts 0 points under the sheet's late policy)``."""
        earned = "—" if self.earned is None else fmt(self.earned)
        counted = "pending" if self.counted is None else fmt(self.counted)
        return (f"{self.part}: earned {earned} of {fmt(self.maximum)}, counts {counted}"
                + (f" ({self.rule})" if self.rule else ""))


def _notebook_rule(cell: SheetCell, sem: SemesterSheet) -> str:
    """The late rule's effect on the notebook, from its stored decision (as :func:`gradebook.points.handins.stored_share` counts it)."""
    if not cell.notebook_late or cell.notebook is None or sem.manifest is None:
        return ""
    decision = cell.decision_of
    if not isinstance(decision, str):
        return decision.rule_words() and f"late by {format_delta(decision.late_by)}: {decision.rule_words()}"
    least = sem.manifest.late.grace + timedelta(microseconds=1)  # stored as late: at least one started day
    late_by = cell.received_at - (cell.stored_deadline or cell.deadline) if cell.received_at else least
    effect = sem.manifest.late.effect(max(late_by, least))
    return effect and f"late by {format_delta(max(late_by, timedelta(0)))}: {effect}"


def _paper_rule(cell: SheetCell) -> str:
    pdf = cell.paper_decision
    if pdf is None or not pdf.late:
        return ""
    return f"PDF late by {format_delta(pdf.late_by)}: {pdf.rule_words()}"


def part_lines(cell: SheetCell, sem: SemesterSheet, for_student: bool = False) -> list[PartLine]:
    """The sheet's parts (those it has) for one student, each with earned and counted points and the rule.
    ``for_student``: what the student may read: nothing earned before the sheet is decided, and not what a late
    notebook that counts 0 earned (its hidden tests' results are never shown)."""
    decided = cell.decided
    lines = []
    if sem.part_max("notebook"):
        counted = (cell.counted_notebook or Fraction(0)) if decided else None
        earned = cell.notebook
        if for_student and (not decided or (cell.late and counted == 0 and cell.notebook_late)):
            earned = None
        lines.append(PartLine(sem.id, "notebook", earned, counted, sem.part_max("notebook"),
                              _notebook_rule(cell, sem)))
    if sem.part_max("paper"):
        counted = (cell.counted_paper or Fraction(0)) if decided else None
        earned = cell.paper if decided or not for_student else None
        lines.append(PartLine(sem.id, "paper", earned, counted, sem.part_max("paper"), _paper_rule(cell)))
    return lines


def standing_lines(standing: Standing, semester: tuple[SemesterSheet, ...],
                   for_student: bool = False) -> list[PartLine]:
    """Every sheet's part lines of one student, in the semester's order."""
    return [line for sem in semester if sem.id in standing.cells
            for line in part_lines(standing.cells[sem.id], sem, for_student)]
