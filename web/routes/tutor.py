"""The tutors' pages: the start page (groups × sheets with what is still empty) and the grid of one
sheet and group, whose cells save themselves one by one (``POST .../cell``, JSON).

A tutor sees and writes only the groups they tutor (``tutorial_group.tutor_id``), an admin every group;
a saved student must be a current member of the URL's group. Every write goes through
:func:`gradebook.points.grid.save_cell` (versioned, audited); a stale save answers 409 with who changed the
cell, to what and when, and the cell as it is now.
"""
from __future__ import annotations

import dataclasses
import json
import time
from datetime import datetime, timezone
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from gradebook.course.anonymity import aliases, anonymous_key, anonymous_sheets
from gradebook.course.config import CourseConfig
from gradebook.course.manifest import Manifest
from gradebook.points.anonymous_grid import anonymize_grid, masked_cell
from gradebook.points.page_images import read_grid_pages
from gradebook.errors import InputError
from gradebook.points.grid import CellState, cell_state, save_cell
from gradebook.points.grid_read import read_grid
from gradebook.points.rubric import ensure_seeded
from gradebook.store.models import GroupMembership, PaperPoints, Person, SheetState, TutorialGroup
from gradebook.points.paper import CellConflict, fmt
from gradebook.points.regrades import requests
from gradebook.store.db import read_retrying, reading

from web.grid_html import grid_panels, grid_rows
from web.security import User, engine_of, require_role
from web.templating import render

router = APIRouter()
staff = require_role("tutor", "admin")
MAX_JSON = 64 * 1024


def _cfg(request: Request) -> CourseConfig:
    return request.app.state.cfg  # type: ignore[no-any-return]


def _allowed_groups(request: Request, user: User) -> list[TutorialGroup]:
    with Session(engine_of(request)) as session:
        query = select(TutorialGroup).order_by(TutorialGroup.id)
        if not user.is_admin:  # the groups they tutor: one statement
            query = query.where(TutorialGroup.tutor_id == user.subject_id)
        return list(session.execute(query).scalars())


def _held_group(conn: Connection, user: User, group: str) -> list[Any]:
    """The groups ``user`` may grade (id, name), by id, in one statement; 404 for a group that does not exist,
    403 for one the tutor does not hold (as :func:`_require_group`; a second statement only then)."""
    query = select(TutorialGroup.id, TutorialGroup.name).order_by(TutorialGroup.id)
    if not user.is_admin:
        query = query.where(TutorialGroup.tutor_id == user.subject_id)
    groups = list(conn.execute(query))
    if not any(g.id == group for g in groups):
        exists = conn.execute(select(TutorialGroup.id).where(TutorialGroup.id == group)).first()
        if exists is None:
            raise HTTPException(404, f"There is no tutorial group {group!r}.")
        raise HTTPException(403, "This is not one of your tutorial groups.")
    return groups


def _require_group(request: Request, user: User, group: str, student: str | None = None) -> None:
    """404 for a group that does not exist, 403 for one the tutor does not hold (and, with ``student``,
    for a student who is not a current member of it); one query."""
    member = select(GroupMembership.id).where(GroupMembership.group_id == group, GroupMembership.student_id == student,
                                              GroupMembership.valid_to.is_(None)).exists()
    with Session(engine_of(request)) as session:
        found = session.execute(select(TutorialGroup.tutor_id, member).where(TutorialGroup.id == group)).first()
    if found is None:
        raise HTTPException(404, f"There is no tutorial group {group!r}.")
    if not user.is_admin and found[0] != user.subject_id:
        raise HTTPException(403, "This is not one of your tutorial groups.")
    if student is not None and not found[1]:
        raise HTTPException(403, f"{student!r} is not a student of group {group!r}.")


def _graded_sheets(cfg: CourseConfig) -> list[tuple[str, str, int]]:
    """(sheet, title, number of paper tasks) of the semester's authored sheets with paper tasks."""
    return [(s.id, s.manifest.title, len(s.manifest.paper_tasks)) for s in cfg.semester
            if s.manifest is not None and s.manifest.paper_tasks]


def _require_sheet(request: Request, sheet: str) -> None:
    if sheet not in {s for s, _, _ in _graded_sheets(_cfg(request))}:
        raise HTTPException(404, f"There is no sheet {sheet!r} with paper tasks in this semester.")


def _progress(request: Request, groups: list[str]) -> tuple[dict[str, int], dict[tuple[str, str], int]]:
    """Students per group, and paper points entered per (group, sheet), in two queries."""
    current = (GroupMembership.valid_to.is_(None), GroupMembership.group_id.in_(groups))
    with Session(engine_of(request)) as session:
        sizes = {g: int(n) for g, n in session.execute(
            select(GroupMembership.group_id, func.count()).where(*current).group_by(GroupMembership.group_id))}
        entered = {(g, s): int(n) for g, s, n in session.execute(
            select(GroupMembership.group_id, PaperPoints.sheet, func.count())
            .join(PaperPoints, PaperPoints.student_id == GroupMembership.student_id).where(*current)
            .group_by(GroupMembership.group_id, PaperPoints.sheet))}
    return sizes, entered


@router.get("/tutor")
def tutor_home(request: Request, user: User = Depends(staff)) -> Response:
    cfg = _cfg(request)
    groups = _allowed_groups(request, user)
    sizes, entered = _progress(request, [g.id for g in groups])
    due = {s.id: s.manifest.due for s in cfg.semester if s.manifest is not None}
    now = datetime.now(timezone.utc)
    tasks = {s.id: [t.id for t in s.manifest.paper_tasks] for s in cfg.semester if s.manifest is not None}
    sheets = [{"id": s, "title": title, "due": due[s], "past": due[s] <= now, "tasks": tasks[s],
               "groups": [{"group": g, "total": sizes.get(g.id, 0) * n,
                           "empty": sizes.get(g.id, 0) * n - entered.get((g.id, s), 0)} for g in groups]}
              for s, title, n in _graded_sheets(cfg)]
    regrades = requests(engine_of(request), open_only=True, answerable_by=user.subject_id, admin=user.is_admin)
    masks = {r.sheet: aliases(engine_of(request), r.sheet, [x.student for x in regrades if x.sheet == r.sheet])
             for r in regrades}  # on an anonymous sheet a request names the student by the pseudonym
    regrades = [r if masks[r.sheet] is None else dataclasses.replace(r, student=masks[r.sheet][r.student])  # type: ignore[index]
                for r in regrades]
    return render(request, "tutor_home.html", {"groups": groups, "sheets": sheets, "now_sheet": grade_now(sheets),
                                               "regrades": regrades, "anonymous": anonymous_sheets(engine_of(request))})


def grade_now(sheets: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The sheet to grade now: the latest one past its deadline with an empty cell in one of the groups
    (of two due at once, the later in the semester)."""
    waiting = [s for s in sheets if s["past"] and any(g["empty"] > 0 for g in s["groups"])]
    return max(reversed(waiting), key=lambda s: s["due"]) if waiting else None


def _names(request: Request, ids: set[str]) -> dict[str, str]:
    with Session(engine_of(request)) as session:
        return {pid: name for pid, name in session.execute(select(Person.id, Person.name).where(Person.id.in_(ids)))}


def _cell_json(cell: CellState, names: dict[str, str]) -> dict[str, Any]:
    out = cell.as_json()
    out["entered_by_name"] = names.get(cell.entered_by or "", cell.entered_by)
    out["team_points"] = None if cell.team_points is None else fmt(cell.team_points)
    return out


@router.get("/tutor/{sheet}/{group}")
def tutor_grid(request: Request, sheet: str, group: str, user: User = Depends(staff)) -> Response:
    started = time.perf_counter()
    engine, cfg = engine_of(request), _cfg(request)
    _require_sheet(request, sheet)
    manifest = cfg.manifest(sheet)
    with reading(engine) as conn:  # three statements (two more where PDFs were handed in), no transaction
        groups = _held_group(conn, user, group)
        found = read_grid(conn, manifest, group)
        g = found.grid
        with Session(bind=conn) as session:
            pages = read_grid_pages(session, cfg.data_dir, {s.id: s.pdf.id for s in g.students if s.pdf is not None})
    key = found.pseudonym_key
    if not g.seeded:  # the sheet's first view: the rubrics' rows, after the reading transaction
        ensure_seeded(engine, manifest)
    masks = aliases(engine, sheet, [s.id for s in g.students]) if key is not None else None
    if masks is not None:  # an anonymous sheet: pseudonyms only, for everyone who grades
        g = anonymize_grid(g, masks)
        pages = {masks[sid]: p for sid, p in pages.items()}
    anonymous, local = masks is not None, request.app.state.jinja.filters["local"]
    return _timed(render(request, "tutor_grid.html", {
        "g": g, "groups": groups, "sheets": _graded_sheets(cfg),
        "grade_by_task": [(t.id, f"/tutor/grade/{sheet}/{t.id}") for t in g.tasks],
        "save_url": f"/tutor/{sheet}/{group}/cell", "anonymous": anonymous,
        "rows": grid_rows(g, anonymous, local), "panels": grid_panels(g, pages, anonymous, local)}), started)


def _timed(response: Response, started: float) -> Response:
    """The server's time for the request (handler only) in a Server-Timing header, for benchmarks/web.py."""
    response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
    return response


def _text(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise InputError(f"{key} must be text")
    return str(value)


def _int(body: dict[str, Any], key: str) -> int:
    value = body.get(key, 0)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InputError(f"{key} must be a version number (a whole number ≥ 0)")
    return value


def _ticks(body: dict[str, Any]) -> list[str] | None:
    ticks = body.get("ticks")
    if ticks is None:
        return None
    if not isinstance(ticks, list) or not all(isinstance(t, str) for t in ticks):
        raise InputError("ticks must be a list of rubric item ids")
    return ticks


def _unmask(request: Request, sheet: str, group: str, alias: object) -> tuple[object, dict[str, str] | None]:
    """On an anonymous sheet the page names a student by the pseudonym: the student (None when no student of
    the group has it) and the group's student → pseudonym; elsewhere ``alias`` itself and None."""
    engine = engine_of(request)
    if not isinstance(alias, str) or anonymous_key(engine, sheet) is None:
        return alias, None
    with Session(engine) as session:
        members = list(session.execute(select(GroupMembership.student_id).where(
            GroupMembership.group_id == group, GroupMembership.valid_to.is_(None))).scalars())
    masks = aliases(engine, sheet, members) or {}
    return next((s for s, a in masks.items() if a == alias), None), masks


def _group_check(request: Request, user: User, sheet: str, group: str, student: object) -> tuple[bool, bool]:
    """One query: 404/403 as :func:`_require_group` for the group; (whether ``student`` is a current member of
    it, whether ``sheet`` is anonymous: then the body names a pseudonym)."""
    sid = student if isinstance(student, str) else None
    member = select(GroupMembership.id).where(GroupMembership.group_id == group, GroupMembership.student_id == sid,
                                              GroupMembership.valid_to.is_(None)).exists()
    hidden = select(SheetState.sheet).where(SheetState.sheet == sheet, SheetState.anonymous.is_(True)).exists()
    query = select(TutorialGroup.tutor_id, member, hidden).where(TutorialGroup.id == group)
    found = read_retrying(engine_of(request), lambda conn: conn.execute(query).first())  # no transaction around it
    if found is None:
        raise HTTPException(404, f"There is no tutorial group {group!r}.")
    if not user.is_admin and found[0] != user.subject_id:
        raise HTTPException(403, "This is not one of your tutorial groups.")
    return bool(found[1]), bool(found[2])


def _save(request: Request, user: User, sheet: str, group: str, body: dict[str, Any] | None) -> Response:
    """Authorize (the group, then the student in it), then check the body and save. Where names are shown,
    the group, the student's membership and the sheet's anonymity are one query."""
    named = body.get("student") if body is not None else None
    member, anonymous = _group_check(request, user, sheet, group, named)
    student, masks = _unmask(request, sheet, group, named) if anonymous else (named, None)
    if masks is not None and student is None:
        raise HTTPException(403, "No student of this group has that pseudonym on this sheet.")
    if masks is not None:
        _require_group(request, user, group, student if isinstance(student, str) and student else None)
    elif isinstance(student, str) and student and not member:
        raise HTTPException(403, f"{student!r} is not a student of group {group!r}.")
    if body is None:
        raise InputError("the cell save must be a JSON object")
    task = _text(body, "task")
    if not isinstance(student, str) or not student or not task:
        raise InputError("a cell save needs the student and the task")
    manifest = _cfg(request).manifest(sheet)
    engine = engine_of(request)
    try:
        state = save_cell(engine, manifest, student, task, value=_text(body, "value"), ticks=_ticks(body),
                          comment=_text(body, "comment"), author=user.subject_id,
                          expected_version=_int(body, "version"), expected_comment_version=_int(body, "comment_version"))
    except CellConflict as exc:
        return conflict_answer(request, engine, manifest, student, task, exc, masks, detail=True)
    return saved_answer(state, user, masks.get(student) if masks is not None else None)


def saved_answer(state: CellState, user: User, alias: str | None) -> JSONResponse:
    """A stored save's answer: the cell as it is now (under the student's pseudonym on an anonymous sheet)."""
    return JSONResponse({"cell": _cell_json(masked_cell(state, alias) if alias is not None else state,
                                            {user.subject_id: user.name})})


def conflict_answer(request: Request, engine: Engine, manifest: Manifest, student: str, task: str, exc: CellConflict,
                    masks: dict[str, str] | None, detail: bool) -> JSONResponse:
    """A refused save's answer (409): who changed the cell, the cell as it is now, and (``detail``: the grid's)
    when and to what; on an anonymous sheet (``masks``) the message and key name the pseudonym, not the student."""
    now = cell_state(engine, manifest, student, task)
    names = _names(request, {a for a in (exc.current.author, now.entered_by) if a})
    who = names.get(exc.current.author or "", exc.current.author or "someone")
    message = str(exc).replace(f"by {exc.current.author} ", f"by {who} ", 1)
    what = exc.key
    if masks is not None:  # the cell's key names the student: the pseudonym instead
        message, what, now = message.replace(student, masks[student]), what.replace(student, masks[student]), \
            masked_cell(now, masks[student])
    conflict: dict[str, Any] = {"by": who, "at": exc.current.at.isoformat() if exc.current.at else None,
                                "value": exc.current.value, "what": what} if detail else {"by": who, "what": what}
    return JSONResponse({"error": message, "conflict": conflict, "cell": _cell_json(now, names)}, status_code=409)


@router.post("/tutor/{sheet}/{group}/cell")
async def tutor_save(request: Request, sheet: str, group: str, user: User = Depends(staff)) -> Response:
    """Save one cell: JSON ``{student, task, value | ticks, comment?, version, comment_version}``.
    Authorization comes first: a refused body is answered only to whom may write the group."""
    started = time.perf_counter()
    _require_sheet(request, sheet)
    body = await json_body(request, "A cell save")
    return _timed(await run_in_threadpool(_save, request, user, sheet, group, body), started)


async def json_body(request: Request, what: str) -> dict[str, Any] | None:
    """A save's JSON object (at most MAX_JSON bytes, else 413 naming ``what``); None if it is not one."""
    raw = await request.body()
    if len(raw) > MAX_JSON:
        raise HTTPException(413, f"{what} is at most 64 KiB.")
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        return None
    return body if isinstance(body, dict) else None
