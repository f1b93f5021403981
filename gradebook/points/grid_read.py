"""The tutors' grid of a group on a sheet, read in one statement.

Under load a page's latency grows with its round trips (after each, the request's thread must win its worker's
interpreter lock again), so :func:`read_grid` asks for everything the grid shows at once: each part (the group's
heading, its students in roster order with their current group and extension, the teams of the sheet they are in,
the accepted hand-ins, nbgrader's scores, the autograding results, paper points and comments, rubric items, open
regrade requests, the sheet's anonymity) is a scalar subquery that aggregates its rows into one JSON array
(:mod:`gradebook.store.json_rows`). One statement also sees one snapshot, so no transaction
is needed around it. :mod:`gradebook.points.grid` turns the rows into the page's data, with the same functions
it uses for the grade-by-task page's reads.
"""
from __future__ import annotations

import functools
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, String, bindparam, case, func, select, union
from sqlalchemy.orm import aliased
from sqlalchemy.sql import Select

from gradebook.course.config import CourseConfig
from gradebook.course.manifest import Manifest
from gradebook.errors import InputError
from gradebook.points.grid import (COMMENT_COLUMNS, HANDIN_COLUMNS, POINTS_COLUMNS, RESULT_COLUMNS, CommentRow, Grid,
                                   GridStudent, PointsRow, ResultRow, _latest, cells_of, counted_points, latest_handins,
                                   regrades_of)
from gradebook.points.rubric import ITEM_COLUMNS, ItemRow, ensure_seeded, rubrics_seeded
from gradebook.store import nbgrader_tables as nt
from gradebook.store.db import reading
from gradebook.store.json_rows import decoded, flag, json_rows, when
from gradebook.store.models import (AutogradeResult, Extension, GroupMembership, Handin, PaperComment, PaperPoints,
                                    Person, RegradeRequest, RubricItemRow, SheetState, TeamMember, TutorialGroup)


@dataclass(frozen=True)
class GridReading:
    grid: Grid
    pseudonym_key: str | None  # the sheet's key while it is anonymous (never shown; pseudonyms are made from it)


def grid(engine: Engine, cfg: CourseConfig, sheet: str, group: str) -> Grid:
    """Everything the tutors' page shows for ``group`` on ``sheet``; students in roster order."""
    manifest = cfg.manifest(sheet)
    ensure_seeded(engine, manifest)
    with reading(engine) as conn:
        return read_grid(conn, manifest, group).grid


def read_grid(conn: Connection, manifest: Manifest, group: str) -> GridReading:
    """:func:`grid` on ``conn``, in one statement; InputError for a group that does not exist. A sheet whose
    rubrics are not seeded yet shows the manifest's items (``Grid.seeded`` is False: the caller seeds them,
    :func:`gradebook.points.rubric.ensure_seeded`)."""
    row = conn.execute(_statement(conn.dialect.name), {"sheet": manifest.id, "group": group}).one()
    parts = {name: decoded(value) for name, value in row._mapping.items()}
    if not parts["heading"]:
        raise InputError(f"unknown tutorial group {group!r}")
    return _assembled(manifest, group, parts)


@functools.lru_cache(maxsize=None)
def _statement(dialect: str) -> Select[Any]:
    """The grid's statement for ``dialect``, with the parameters ``sheet`` and ``group``: built once per process
    (building it costs more than running it)."""
    sheet, group = bindparam("sheet", type_=String), bindparam("group", type_=String)
    gm, mine, theirs = GroupMembership, aliased(GroupMembership), aliased(TeamMember)
    in_group = select(gm.student_id).where(gm.group_id == group, gm.valid_to.is_(None)).cte("in_group")
    teams = select(theirs.team).where(theirs.sheet == sheet, theirs.student_id.in_(select(in_group.c.student_id)))
    crew_cte = union(select(in_group.c.student_id),
                     select(TeamMember.student_id).where(TeamMember.sheet == sheet, TeamMember.team.in_(teams))
                     ).cte("crew")
    crew = select(crew_cte.c.student_id)  # the group's students and all members of their teams
    student = nt.student.c
    current = select(func.min(mine.group_id)).where(mine.student_id == student.id, mine.valid_to.is_(None))
    until = select(Extension.until).where(Extension.student_id == student.id, Extension.sheet == sheet)
    notebooks = select(nt.notebook.c.id).join(nt.assignment, nt.notebook.c.assignment_id == nt.assignment.c.id).where(
        nt.assignment.c.name == sheet)
    submitted = (select(nt.submitted_notebook.c.id)
                 .join(nt.submitted_assignment, nt.submitted_notebook.c.assignment_id == nt.submitted_assignment.c.id)
                 .where(nt.submitted_assignment.c.student_id.in_(crew), nt.submitted_notebook.c.notebook_id.in_(notebooks)))
    score = func.sum(func.coalesce(nt.grade.c.manual_score, nt.grade.c.auto_score, 0.0)
                     + func.coalesce(nt.grade.c.extra_credit, 0.0))
    parts: dict[str, Any] = {  # each a Select of its own row type
        "heading": select(TutorialGroup.name, Person.name).outerjoin(Person, Person.id == TutorialGroup.tutor_id)
        .where(TutorialGroup.id == group),
        "roster": select(student.id, student.last_name, student.first_name, current.scalar_subquery(),
                         until.scalar_subquery(), case((student.id.in_(select(in_group.c.student_id)), 1), else_=0),
                         func.row_number().over(order_by=(student.last_name, student.first_name, student.id)))
        .where(student.id.in_(crew)),
        "teams": select(TeamMember.team, TeamMember.student_id, TeamMember.id).where(
            TeamMember.sheet == sheet, TeamMember.team.in_(teams)),
        "handins": select(*HANDIN_COLUMNS).where(Handin.sheet == sheet, Handin.status == "accepted",
                                                 Handin.student_id.in_(crew)),
        "scores": select(nt.submitted_assignment.c.student_id, nt.submitted_assignment.c.timestamp, score)
        .select_from(nt.grade)
        .join(nt.submitted_notebook, nt.grade.c.notebook_id == nt.submitted_notebook.c.id)
        .join(nt.submitted_assignment, nt.submitted_notebook.c.assignment_id == nt.submitted_assignment.c.id)
        .where(nt.grade.c.notebook_id.in_(submitted),
               nt.grade.c.cell_id.in_(select(nt.base_cell.c.id).where(nt.base_cell.c.notebook_id.in_(notebooks))))
        .group_by(nt.submitted_assignment.c.student_id, nt.submitted_assignment.c.timestamp),
        "results": select(*RESULT_COLUMNS).where(AutogradeResult.sheet == sheet, AutogradeResult.student_id.in_(crew)),
        "points": select(*POINTS_COLUMNS).where(PaperPoints.sheet == sheet, PaperPoints.student_id.in_(crew)),
        "comments": select(*COMMENT_COLUMNS).where(PaperComment.sheet == sheet,
                                                   PaperComment.student_id.in_(select(in_group.c.student_id))),
        "items": select(*ITEM_COLUMNS).where(RubricItemRow.sheet == sheet),
        "regrades": select(RegradeRequest.id, RegradeRequest.student_id, RegradeRequest.task).where(
            RegradeRequest.sheet == sheet, RegradeRequest.answered_at.is_(None), RegradeRequest.student_id.in_(crew)),
        "anonymity": select(SheetState.anonymous, SheetState.pseudonym_key).where(SheetState.sheet == sheet),
    }
    return select(*(json_rows(dialect, name, query) for name, query in parts.items()))


def _assembled(manifest: Manifest, group: str, parts: dict[str, list[list[Any]]]) -> GridReading:
    """The grid from the decoded parts of :func:`_statement`."""
    (group_name, tutor_name), = parts["heading"]
    crew = sorted(parts["roster"], key=lambda r: r[6])  # roster order
    roster = [r for r in crew if r[5]]
    ids = [r[0] for r in roster]
    members: dict[str, list[str]] = defaultdict(list)
    for team, sid, _ in sorted(parts["teams"], key=lambda r: r[2]):
        members[team].append(sid)
    team_of = {sid: team for team, sids in members.items() for sid in sids}
    handins = latest_handins((hid, kind, sid, when(at), name) for hid, kind, sid, at, name in parts["handins"])
    scores = {sid: (nt.exact_score(total), when(stamp)) for sid, stamp, total in parts["scores"]}
    results = {r.student_id: r for r in (ResultRow(sid, status, reason, score, flag(late), when(deadline),
                                                    when(submitted))
                                          for sid, status, reason, score, late, deadline, submitted in parts["results"])}
    extensions = {r[0]: until for r in crew if (until := when(r[4])) is not None}
    groups = {r[0]: r[3] for r in crew if r[3] is not None}
    auto = counted_points(manifest, ids, members, team_of, scores, results, extensions, groups)
    points = [PointsRow(sid, task, pts, version, by, when(at), rubric, adj)
              for sid, task, pts, version, by, at, rubric, adj in parts["points"]]
    comments = [CommentRow(sid, task, text, version, by, when(at)) for sid, task, text, version, by, at in parts["comments"]]
    cells = cells_of(manifest, ids, members, team_of, points, comments)
    rubrics, seeded = rubrics_seeded(manifest, [ItemRow(iid, sheet, task, key, position, pts, text, note, when(gone))
                                                for iid, sheet, task, key, position, pts, text, note, gone in parts["items"]])
    regrades = regrades_of(parts["regrades"], {sid: members.get(team_of.get(sid, ""), [sid]) for sid in ids})
    students = []
    for sid, last, first, *_ in roster:
        crew_ids = members[team_of[sid]] if sid in team_of else [sid]
        result = results.get(sid)
        students.append(GridStudent(
            sid, last or "", first or "", team_of.get(sid), auto.get(sid), result.status if result else None,
            result.reason if result else None, _latest([handins.get((m, "paper")) for m in crew_ids]),
            _latest([handins.get((m, "notebook")) for m in crew_ids])))
    hidden, key = parts["anonymity"][0] if parts["anonymity"] else (False, None)
    return GridReading(Grid(manifest.id, manifest.title, group, group_name, tutor_name, manifest.paper_tasks,
                            manifest.notebook_points, tuple(students), cells, rubrics, regrades, seeded),
                       str(key) if hidden and key else None)

