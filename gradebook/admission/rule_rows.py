"""The rows the admission rule reads (:class:`RuleRows`), of the course or of some students with their teams'
members, as plain rows: :func:`read_rows` reads them with a statement per table, :mod:`.student_read` a few
students' in one statement; :func:`gradebook.admission.rule.rule_data` makes the rule's data of either.

May import: :mod:`gradebook.points`, :mod:`gradebook.people`, :mod:`gradebook.course`, :mod:`gradebook.store`."""
from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement, Select

from gradebook.course.sheets_state import STATE_COLUMNS, StateRow
from gradebook.people.teams import teams_of
from gradebook.points.handins import current_groups
from gradebook.store import nbgrader_tables as nt
from gradebook.store.db import plain_rows
from gradebook.store.models import (AdmissionOverride, AutogradeResult, Extension, GroupMembership, Handin, PaperPoints,
                                    StudentProfile)

RESULT_COLUMNS = (AutogradeResult.student_id, AutogradeResult.sheet, AutogradeResult.score, AutogradeResult.status,
                  AutogradeResult.late, AutogradeResult.decision, AutogradeResult.submitted_at,
                  AutogradeResult.deadline)  # not the result's JSON
EXTENSION_COLUMNS = (Extension.student_id, Extension.sheet, Extension.until)
POINTS_COLUMNS = (PaperPoints.student_id, PaperPoints.sheet, PaperPoints.task, PaperPoints.points)
HANDIN_COLUMNS = (Handin.sheet, Handin.student_id, Handin.kind, Handin.received_at)  # of the accepted ones
OVERRIDE_COLUMNS = (AdmissionOverride.student_id, AdmissionOverride.status, AdmissionOverride.reason)


@dataclass(frozen=True)
class RuleRows:
    """What the rule reads of the students ``only`` and their teams' members (None: of the course)."""

    only: set[str] | None
    teams: dict[tuple[str, str], list[str]]  # (sheet, team) -> its members, in the order they were stored
    extensions: Sequence[Any]  # EXTENSION_COLUMNS
    groups: dict[str, str]  # student -> current tutorial group
    results: Sequence[Any]  # RESULT_COLUMNS (attributes of those names)
    points: Sequence[Any]  # POINTS_COLUMNS
    handins: Sequence[Any]  # HANDIN_COLUMNS, the accepted hand-ins
    scores: Sequence[Any]  # nbgrader's: student, sheet, submission time, total (:func:`score_query`)
    students: list[Any]  # the roster rows of ``only`` (:func:`student_query`)
    roster: set[str]  # the roster's students among all those read
    states: Mapping[str, StateRow]  # sheet -> its sheet_state row
    generated: Collection[str]  # the sheets generated into nbgrader
    overrides: dict[str, tuple[str, str]]  # student -> (status, reason) of the admission override in force


def crew(only: set[str] | None, teams: Mapping[tuple[str, str], list[str]]) -> set[str] | None:
    """``only`` and the members of their teams (None: the course)."""
    return None if only is None else set(only).union(*(m for m in teams.values() if set(m) & only))


def of_ids(column: Any, ids: Collection[str] | None) -> list[ColumnElement[bool]]:
    """The condition that restricts ``column`` to the students ``ids`` (none: the course)."""
    return [column.in_(ids)] if ids is not None else []


def score_query(*where: ColumnElement[bool]) -> Select[Any]:
    """nbgrader's score of each submission: (student, sheet, timestamp, total)."""
    score = func.sum(func.coalesce(nt.grade.c.manual_score, nt.grade.c.auto_score, 0.0)
                     + func.coalesce(nt.grade.c.extra_credit, 0.0))
    return (select(nt.submitted_assignment.c.student_id, nt.assignment.c.name, nt.submitted_assignment.c.timestamp,
                   score)
            .select_from(nt.grade)
            .join(nt.submitted_notebook, nt.grade.c.notebook_id == nt.submitted_notebook.c.id)
            .join(nt.submitted_assignment, nt.submitted_notebook.c.assignment_id == nt.submitted_assignment.c.id)
            .join(nt.assignment, nt.submitted_assignment.c.assignment_id == nt.assignment.c.id)
            .where(*where)
            .group_by(nt.submitted_assignment.c.student_id, nt.assignment.c.name, nt.submitted_assignment.c.timestamp))


def student_query(*where: ColumnElement[bool]) -> Select[Any]:
    """The roster: students with a profile (ids only nbgrader or the autograder stored are left out), with their
    current tutorial group."""
    current_group = (select(GroupMembership.student_id, func.min(GroupMembership.group_id).label("group_id"))
                     .where(GroupMembership.valid_to.is_(None)).group_by(GroupMembership.student_id).subquery())
    return (select(nt.student.c.id, nt.student.c.last_name, nt.student.c.first_name, nt.student.c.email,
                   StudentProfile.matriculation, current_group.c.group_id)
            .join(StudentProfile, StudentProfile.student_id == nt.student.c.id)
            .outerjoin(current_group, current_group.c.student_id == nt.student.c.id)
            .where(*where))


def read_rows(session: Session, only: set[str] | None = None) -> RuleRows:
    """:class:`RuleRows` read with a statement per table (of the course, or of ``only`` and their teams)."""
    teams = teams_of(session, only)
    ids = crew(only, teams)
    extensions = plain_rows(session, select(*EXTENSION_COLUMNS).where(*of_ids(Extension.student_id, ids)))
    groups = current_groups(session, ids)
    results = plain_rows(session, select(*RESULT_COLUMNS).where(*of_ids(AutogradeResult.student_id, ids)))
    points = plain_rows(session, select(*POINTS_COLUMNS).where(*of_ids(PaperPoints.student_id, ids)))
    handins = plain_rows(session, select(*HANDIN_COLUMNS).where(Handin.status == "accepted",
                                                                *of_ids(Handin.student_id, ids)))
    scores = plain_rows(session, score_query(*of_ids(nt.submitted_assignment.c.student_id, ids)))
    students = list(plain_rows(session, student_query(*of_ids(nt.student.c.id, only))))
    roster = {row[0] for row in students} if only is None or ids == only else set(session.execute(
        select(StudentProfile.student_id).where(*of_ids(StudentProfile.student_id, ids))).scalars())
    states = {row.sheet: row for row in map(StateRow._make, plain_rows(session, select(*STATE_COLUMNS)))}
    generated = set(session.execute(select(nt.assignment.c.name)).scalars())
    overrides = {sid: (status, reason) for sid, status, reason in plain_rows(session, select(*OVERRIDE_COLUMNS).where(
        AdmissionOverride.revoked_at.is_(None), *of_ids(AdmissionOverride.student_id, only))
        .order_by(AdmissionOverride.created_at))}
    return RuleRows(only, teams, extensions, groups, results, points, handins, scores, students, roster, states,
                    generated, overrides)
