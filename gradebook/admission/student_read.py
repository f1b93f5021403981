"""A few students' rows in one statement: what the admission rule reads of them and their teams' members
(:class:`.rule_rows.RuleRows`), and what their dashboard shows besides (:class:`Shown`).

A student's first dashboard read them with nineteen statements (a table each, twice for some); under load every
statement is a round trip after which the request's thread must win its worker's interpreter lock again, and the
tutors' first grids waited behind the students' first dashboards. Here each table is a part of one statement that
aggregates its rows into a JSON array (:mod:`gradebook.store.json_rows`, as the tutors' grid is read), restricted to
the students (an expanding parameter) and the members of their teams; one statement sees one snapshot, so it runs on a
:func:`gradebook.store.db.reading` connection without a transaction. The statement is built once per process.

May import: :mod:`gradebook.points`, :mod:`gradebook.people`, :mod:`gradebook.course`, :mod:`gradebook.store`,
:mod:`.rule_rows`."""
from __future__ import annotations

import functools
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, NamedTuple

from sqlalchemy import Connection, DateTime, String, bindparam, func, select, tuple_, union_all
from sqlalchemy.sql import CompoundSelect, Select

from gradebook.admission.rule_rows import (EXTENSION_COLUMNS, HANDIN_COLUMNS, OVERRIDE_COLUMNS, POINTS_COLUMNS,
                                           RESULT_COLUMNS, RuleRows, score_query, student_query)
from gradebook.course.sheets_state import STATE_COLUMNS, StateRow
from gradebook.points.grading_queue import ALIVE_WITHIN
from gradebook.points.rubric import ITEM_COLUMNS, ItemRow
from gradebook.store import nbgrader_tables as nt
from gradebook.store.json_rows import converters, decoded, json_rows, typed
from gradebook.store.models import (AdmissionOverride, AutogradeResult, Extension, Grader, GroupMembership, Handin,
                                    PaperComment, PaperPoints, StudentProfile, TeamMember)


class ShownResult(NamedTuple):
    """The columns of an ``autograde_result`` row a student's page shows."""
    id: int
    sheet: str
    student_id: str
    status: str
    reason: str | None
    score: str
    late: bool | None
    decision: str | None
    deadline: datetime | None
    submitted_at: datetime | None
    graded_at: datetime
    fingerprint: str
    graded_runs: int | None
    last_run_at: datetime | None
    result_json: str


class ShownHandin(NamedTuple):
    """The columns of a ``handin`` row a student's page shows (every status)."""
    id: int
    sheet: str
    student_id: str
    kind: str
    status: str
    reason: str | None
    received_at: datetime
    original_name: str | None
    stored_path: str | None


class ShownPoints(NamedTuple):
    sheet: str
    task: str
    student_id: str
    points: str
    rubric: str | None


class ShownComment(NamedTuple):
    sheet: str
    task: str
    student_id: str
    text: str


SHOWN_RESULT = (AutogradeResult.id, AutogradeResult.sheet, AutogradeResult.student_id, AutogradeResult.status,
                AutogradeResult.reason, AutogradeResult.score, AutogradeResult.late, AutogradeResult.decision,
                AutogradeResult.deadline, AutogradeResult.submitted_at, AutogradeResult.graded_at,
                AutogradeResult.fingerprint, AutogradeResult.graded_runs, AutogradeResult.last_run_at,
                AutogradeResult.result_json)
SHOWN_HANDIN = (Handin.id, Handin.sheet, Handin.student_id, Handin.kind, Handin.status, Handin.reason,
                Handin.received_at, Handin.original_name, Handin.stored_path)
SHOWN_POINTS = (PaperPoints.sheet, PaperPoints.task, PaperPoints.student_id, PaperPoints.points, PaperPoints.rubric)
SHOWN_COMMENT = (PaperComment.sheet, PaperComment.task, PaperComment.student_id, PaperComment.text)


@dataclass(frozen=True)
class Shown:
    """What a student's dashboard shows of them and their teams' members besides the rule's rows."""

    results: tuple[ShownResult, ...]
    handins: tuple[ShownHandin, ...]  # newest first
    points: tuple[ShownPoints, ...]
    comments: tuple[ShownComment, ...]
    grading_runs: bool  # some grader's heartbeat is fresh
    rubric_items: tuple[ItemRow, ...]  # every sheet's


@dataclass(frozen=True)
class StudentRows:
    rule: RuleRows
    shown: Shown


@dataclass(frozen=True)
class _Statement:
    select: Select[Any]
    convert: dict[str, tuple[Any, ...]]  # part -> its columns' converters (:func:`gradebook.store.json_rows.typed`)


def read_students(conn: Connection, only: set[str], now: datetime | None = None) -> StudentRows:
    """The rows of ``only`` (and their teams' members) in one statement on ``conn``."""
    statement = _statement(conn.dialect.name)
    since = (now or datetime.now(timezone.utc)) - ALIVE_WITHIN
    row = conn.execute(statement.select, {"only": sorted(only), "since": since}).one()
    parts = {name: typed(statement.convert[name], decoded(value)) for name, value in row._mapping.items()
             if name != "graders"}
    return StudentRows(_rule_rows(set(only), parts), _shown(parts, bool(row.graders)))


def _rule_rows(only: set[str], parts: dict[str, list[tuple[Any, ...]]]) -> RuleRows:
    teams: dict[tuple[str, str], list[str]] = defaultdict(list)
    for sheet, team, sid, _ in sorted(parts["teams"], key=lambda r: r[3]):
        teams[(sheet, team)].append(sid)
    rule_result = RuleResult._make
    results = [rule_result((r.student_id, r.sheet, r.score, r.status, r.late, r.decision, r.submitted_at, r.deadline))
               for r in map(ShownResult._make, parts["results"])]
    handins = [RuleHandin(h.sheet, h.student_id, h.kind, h.received_at)
               for h in map(ShownHandin._make, parts["handins"]) if h.status == "accepted"]
    overrides = {sid: (status, reason)
                 for sid, status, reason, *_ in sorted(parts["overrides"], key=lambda r: (r[3], r[4]))}
    return RuleRows(only, dict(teams), parts["extensions"], {sid: gid for sid, gid in parts["groups"]}, results,
                    [(sid, sheet, task, pts) for sheet, task, sid, pts, _ in parts["points"]],
                    handins, parts["scores"], parts["students"], {sid for sid, in parts["roster"]},
                    {r.sheet: r for r in map(StateRow._make, parts["states"])}, {name for name, in parts["generated"]},
                    overrides)


def _shown(parts: dict[str, list[tuple[Any, ...]]], grading: bool) -> Shown:
    handins = sorted(map(ShownHandin._make, parts["handins"]), key=lambda h: (h.received_at, h.id), reverse=True)
    return Shown(tuple(map(ShownResult._make, parts["results"])), tuple(handins),
                 tuple(map(ShownPoints._make, parts["points"])), tuple(map(ShownComment._make, parts["comments"])),
                 grading, tuple(map(ItemRow._make, parts["items"])))


class RuleResult(NamedTuple):
    """:data:`.rule_rows.RESULT_COLUMNS` by name."""
    student_id: str
    sheet: str
    score: str
    status: str
    late: bool | None
    decision: str | None
    submitted_at: datetime | None
    deadline: datetime | None


class RuleHandin(NamedTuple):
    """:data:`.rule_rows.HANDIN_COLUMNS` by name."""
    sheet: str
    student_id: str
    kind: str
    received_at: datetime | None


@functools.lru_cache(maxsize=None)
def _statement(dialect: str) -> _Statement:
    """The statement for ``dialect``, with the parameters ``only`` (the students) and ``since`` (a grader's
    heartbeat that counts as alive): built once per process (building it costs more than running it)."""
    only = bindparam("only", expanding=True, type_=String)
    theirs = select(TeamMember.sheet, TeamMember.team).where(TeamMember.student_id.in_(only))
    mates = select(TeamMember.student_id).where(tuple_(TeamMember.sheet, TeamMember.team).in_(theirs)).cte("mates")

    def of(query: Any, column: Any) -> CompoundSelect:
        """``query``'s rows of the students and of their teams' other members: two branches, each of which the
        planner restricts by an index (an OR of the two conditions is a scan of the whole table)."""
        return union_all(query.where(column.in_(only)),
                         query.where(column.in_(select(mates.c.student_id)), column.not_in(only)))

    assert {c.key for c in RESULT_COLUMNS} <= {c.key for c in SHOWN_RESULT}
    assert [c.key for c in HANDIN_COLUMNS] == ["sheet", "student_id", "kind", "received_at"]
    assert {c.key for c in POINTS_COLUMNS} <= {c.key for c in SHOWN_POINTS}
    parts: dict[str, Any] = {  # each a Select of its own row type
        "teams": select(TeamMember.sheet, TeamMember.team, TeamMember.student_id, TeamMember.id).where(
            tuple_(TeamMember.sheet, TeamMember.team).in_(theirs)),
        "extensions": of(select(*EXTENSION_COLUMNS), Extension.student_id),
        "groups": of(select(GroupMembership.student_id, func.min(GroupMembership.group_id))
                     .where(GroupMembership.valid_to.is_(None)).group_by(GroupMembership.student_id),
                     GroupMembership.student_id),
        "results": of(select(*SHOWN_RESULT), AutogradeResult.student_id),
        "handins": of(select(*SHOWN_HANDIN), Handin.student_id),
        "points": of(select(*SHOWN_POINTS), PaperPoints.student_id),
        "comments": of(select(*SHOWN_COMMENT), PaperComment.student_id),
        "scores": of(score_query(), nt.submitted_assignment.c.student_id),
        "students": student_query(nt.student.c.id.in_(only)),
        "roster": of(select(StudentProfile.student_id), StudentProfile.student_id),
        "states": select(*STATE_COLUMNS),
        "generated": select(nt.assignment.c.name),
        "overrides": select(*OVERRIDE_COLUMNS, AdmissionOverride.created_at, AdmissionOverride.id).where(
            AdmissionOverride.revoked_at.is_(None), AdmissionOverride.student_id.in_(only)),
        "items": select(*ITEM_COLUMNS),
    }
    since = bindparam("since", type_=DateTime(timezone=True))
    graders = select(func.count()).select_from(Grader).where(Grader.stopped_at.is_(None), Grader.heartbeat_at >= since)
    statement = select(*(json_rows(dialect, name, query) for name, query in parts.items()),
                       graders.scalar_subquery().label("graders"))
    return _Statement(statement, {name: converters(query) for name, query in parts.items()})
