"""The tutors' grade-by-task page: one paper task of a sheet across the hand-ins of the tutor's groups (an
admin's: every student), in a stable shuffled order, the student's pages for the task (the page images
rendered at hand-in; the whole PDF with ``p`` or where none are rendered) beside the task's rubric; digit keys
tick items, Enter saves and goes to the next (``POST /tutor/grade/{sheet}/{task}``, JSON).

The queue is :func:`gradebook.points.by_task.task_queue`; a save goes through
:func:`gradebook.points.grid.save_cell` (versioned, audited), the grid's write path; a stale save answers 409
with who changed the grading, to what and when, and the grading as it is now (as the grid does).
"""
from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from gradebook.course.anonymity import aliases, anonymous_key, roster
from gradebook.errors import InputError
from gradebook.points.anonymous_grid import masked_cell
from gradebook.points.by_task import QueueEntry, TaskQueue, task_queue
from gradebook.points.grid import may_grade, save_cell
from gradebook.points.page_images import grid_pages
from gradebook.points.paper import CellConflict, fmt

from web.routes.tutor import (_cell_json, _cfg, _int, _names, _require_sheet, _text, _ticks, _timed, conflict_answer,
                               json_body, saved_answer, staff)
from web.security import User, engine_of, tutor_groups
from web.templating import render

router = APIRouter()


def _groups(request: Request, user: User) -> list[str] | None:
    """The groups whose hand-ins ``user`` grades; None: everyone (an admin)."""
    if user.is_admin:
        return None
    with Session(engine_of(request)) as session:
        return sorted(tutor_groups(session, user.subject_id))


def _queue(request: Request, user: User, sheet: str, task: str) -> TaskQueue:
    _require_sheet(request, sheet)
    manifest = _cfg(request).manifest(sheet)
    if manifest.paper_task(task) is None:
        raise HTTPException(404, f"{sheet} has no paper task {task!r}.")
    return task_queue(engine_of(request), _cfg(request), sheet, task, _groups(request, user))


def _entry_json(e: QueueEntry, names: dict[str, str], masks: dict[str, str] | None = None,
                images: list[str] | None = None) -> dict[str, Any]:
    """One hand-in for the page's script; on an anonymous sheet (``masks``: student → pseudonym) by pseudonym.
    ``images``: the URLs of the task's page images (rendered at hand-in), else the page shows the PDF."""
    common = {"graded": e.graded, "pdf": f"/handins/{e.pdf.id}/pdf", "images": images or [], "regrade": e.regrade,
              "pages": list(e.pages.pages) if e.pages.pages else None, "handed_in": e.pdf.received_at.isoformat()}
    if masks is not None:
        alias = masks[e.student]
        return {"student": alias, "shown": alias, "team": "team" if e.team else None,
                "cell": _cell_json(masked_cell(e.cell, alias), names), **common}
    return {"student": e.student, "shown": e.shown, "team": e.team, "cell": _cell_json(e.cell, names), **common}


def _images(request: Request, q: TaskQueue) -> dict[str, list[str]]:
    """Student → the URLs of the page images that answer the task (tagged pages, else every page), from what
    was rendered at hand-in (no rendering here); a student whose pages are not rendered is left out."""
    rendered = grid_pages(_cfg(request).data_dir, engine_of(request), {e.student: e.pdf.id for e in q.entries})
    out: dict[str, list[str]] = {}
    for student, tasks in rendered.items():
        pages = tasks.get(q.task.id) or tasks.get("")
        if pages is not None and pages.images:
            out[student] = [image.url for image in pages.images]
    return out


@router.get("/tutor/grade/{sheet}/{task}")
def grade_task_page(request: Request, sheet: str, task: str, user: User = Depends(staff)) -> Response:
    started = time.perf_counter()
    q = _queue(request, user, sheet, task)
    names = _names(request, {e.cell.entered_by for e in q.entries if e.cell.entered_by})
    masks = aliases(engine_of(request), sheet, [e.student for e in q.entries])
    images = _images(request, q)
    tasks = [t.id for t in _cfg(request).manifest(sheet).paper_tasks]
    data = {"save_url": f"/tutor/grade/{sheet}/{task}", "max": fmt(q.task.points), "start": fmt(q.task.start),
            "items": [{"key": i.key, "points": fmt(i.points)} for i in q.rubric],
            "entries": [_entry_json(e, names, masks, images.get(e.student)) for e in q.entries]}
    return _timed(render(request, "tutor_grade_task.html", {"q": q, "tasks": tasks, "data": data}), started)


def _save(request: Request, user: User, sheet: str, task: str, body: dict[str, Any] | None) -> Response:
    """Authorize (an admin, or the tutor of the student's group), then check the body and save."""
    if body is None:
        raise InputError("the save must be a JSON object")
    student = body.get("student")
    if not isinstance(student, str) or not student:
        raise InputError("a save names the student")
    _require_sheet(request, sheet)
    engine = engine_of(request)  # the roster is read only for an anonymous sheet
    masks = aliases(engine, sheet, roster(engine)) if anonymous_key(engine, sheet) is not None else None
    if masks is not None:  # an anonymous sheet: the page names the student by the pseudonym
        student = next((sid for sid, alias in masks.items() if alias == student), "")
        if not student:
            raise HTTPException(403, "No student of your groups has that pseudonym on this sheet.")
    if not may_grade(engine_of(request), user.subject_id, student, user.is_admin):
        raise HTTPException(403, f"{student!r} is not a student of your groups.")
    ticks = _ticks(body)
    if ticks is None:
        raise InputError("a save names the ticked rubric items (ticks, possibly empty)")
    manifest = _cfg(request).manifest(sheet)
    try:
        state = save_cell(engine, manifest, student, task, ticks=ticks, adjustment=_text(body, "adjustment") or "",
                          comment=_text(body, "comment"), author=user.subject_id,
                          expected_version=_int(body, "version"), expected_comment_version=_int(body, "comment_version"),
                          reason="graded by task")
    except CellConflict as exc:
        return conflict_answer(request, engine, manifest, student, task, exc, masks, detail=False)
    return saved_answer(state, user, masks.get(student) if masks is not None else None)


@router.post("/tutor/grade/{sheet}/{task}")
async def grade_task_save(request: Request, sheet: str, task: str, user: User = Depends(staff)) -> Response:
    """Save one grading: JSON ``{student, ticks, adjustment?, comment?, version, comment_version}``."""
    started = time.perf_counter()
    body = await json_body(request, "A save")
    return _timed(await run_in_threadpool(_save, request, user, sheet, task, body), started)
