"""The pages of a paper hand-in: the page images (``/handins/{id}/pages/{n}.png``) and the page that shows them
with the tags, which pages answer which paper task (``/handins/{id}/pages``, a form).

Who sees them: exactly who sees the PDF (:func:`web.security.can_view_handin`: the student and their team,
the tutor of their group, admins; for a student only on a released sheet). Who tags: the student (or a
teammate) until their deadline; the tutor of their group and admins at any time (corrections, audited). On an
anonymous sheet staff see the pseudonym, never the name, id or the upload's file name.
"""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from gradebook.course.anonymity import aliases
from gradebook.course.config import CourseConfig
from gradebook.course.sheets_state import student_sheets
from gradebook.errors import GradebookError, InputError
from gradebook.points.page_images import PageRenderError, RenderedPages, render_pages
from gradebook.points.page_tags import TagOwner, set_tags, shown_pages, student_may_tag, tag_deadline, tags_of
from gradebook.store.models import Handin

from web.security import User, can_view_handin, engine_of, require_role
from web.templating import render

router = APIRouter()
anyone = require_role("student", "tutor", "admin")
MAX_FORM_FIELDS = 4000


def _cfg(request: Request) -> CourseConfig:
    return request.app.state.cfg  # type: ignore[no-any-return]


def paper_handin(request: Request, user: User, handin_id: int) -> Handin:
    """An accepted paper hand-in that ``user`` may see (the PDF's rule), else 404."""
    engine = engine_of(request)
    with Session(engine) as session:
        row = session.get(Handin, handin_id)
    if row is None or row.kind != "paper" or row.status != "accepted" \
            or not can_view_handin(engine, user, row.sheet, row.student_id) \
            or (user.role == "student" and row.sheet not in student_sheets(engine, _cfg(request))):
        raise HTTPException(404, "No such hand-in.")
    return row


def shown_as(request: Request, user: User, row: Handin) -> str | None:
    """How staff see the hand-in's student on an anonymous sheet (the pseudonym); None: by name."""
    if user.role == "student":
        return None
    masks = aliases(engine_of(request), row.sheet, [row.student_id])
    return None if masks is None else masks[row.student_id]


@router.get("/handins/{handin_id}/pages/{number}.png")
def page_image(request: Request, handin_id: int, number: int, user: User = Depends(anyone)) -> Response:
    row = paper_handin(request, user, handin_id)
    try:
        rendered = render_pages(_cfg(request).data_dir, engine_of(request), row)
    except PageRenderError as exc:
        raise HTTPException(404, f"This page cannot be shown: {str(exc).split(': ', 1)[-1]}") from None
    image = next((i for i in rendered.images if i.number == number), None)
    if image is None:
        raise HTTPException(404, f"The PDF has no page {number} shown as an image.")
    return FileResponse(image.path, media_type="image/png", headers={
        "X-Content-Type-Options": "nosniff", "Cache-Control": "private, max-age=600",
        "Content-Disposition": f'inline; filename="page-{number}.png"'})


def _may_tag(request: Request, user: User, row: Handin) -> bool:
    if user.role != "student":
        return True  # staff who see the hand-in: an admin, or the tutor of the student's group
    return student_may_tag(engine_of(request), _cfg(request).manifest(row.sheet), user.subject_id)


def _context(request: Request, user: User, row: Handin) -> dict[str, Any]:
    manifest = _cfg(request).manifest(row.sheet)
    rendered: RenderedPages | None = None
    error = ""
    try:
        rendered = render_pages(_cfg(request).data_dir, engine_of(request), row)
    except PageRenderError as exc:
        error = str(exc).split(": ", 1)[-1]
    tags = tags_of(engine_of(request), row.id)
    alias = shown_as(request, user, row)
    return {"row": row, "tasks": manifest.paper_tasks, "rendered": rendered, "error": error, "tags": tags,
            "tagged": {t: shown_pages(p) for t, p in tags.items()}, "alias": alias,
            "who": alias or row.student_id, "original_name": None if alias else row.original_name,
            "editable": _may_tag(request, user, row) and rendered is not None and bool(rendered.images),
            "staff": user.role != "student",
            "due": tag_deadline(engine_of(request), manifest, user.subject_id) if user.role == "student" else None}


@router.get("/handins/{handin_id}/pages")
def handin_pages(request: Request, handin_id: int, user: User = Depends(anyone)) -> Response:
    row = paper_handin(request, user, handin_id)
    return render(request, "handin_pages.html", _context(request, user, row))


def _read_tags(form: Any, tasks: set[str], count: int) -> dict[str, set[int]]:
    """The form's checkboxes: fields ``task`` = "<task>:<page>" (one per ticked box)."""
    values = form.getlist("tag")
    if len(values) > MAX_FORM_FIELDS:
        raise GradebookError(f"at most {MAX_FORM_FIELDS} ticks")
    out: dict[str, set[int]] = {t: set() for t in tasks}
    for value in values:
        task, _, page = str(value).rpartition(":")
        if task not in tasks or not page.isdigit() or not 1 <= int(page) <= count:
            raise InputError(f"{str(value)[:40]!r} is not a task and page of this hand-in")
        out[task].add(int(page))
    return out


@router.post("/handins/{handin_id}/pages")
async def save_tags(request: Request, handin_id: int, user: User = Depends(anyone)) -> Response:
    row = paper_handin(request, user, handin_id)
    if not _may_tag(request, user, row):
        raise HTTPException(403, "The deadline has passed: your tutor can still correct the pages' tasks.")
    form = await request.form(max_fields=MAX_FORM_FIELDS + 10)
    manifest = _cfg(request).manifest(row.sheet)
    try:
        rendered = await run_in_threadpool(render_pages, _cfg(request).data_dir, engine_of(request), row)
        tags = _read_tags(form, {t.id for t in manifest.paper_tasks}, len(rendered.images))
        reason = str(form.get("reason") or "")[:500] or ("tagged by the student" if user.role == "student"
                                                          else "corrected by staff")
        changed = await run_in_threadpool(set_tags, engine_of(request), TagOwner(row.id, row.sheet, row.student_id),
                                          manifest, tags, user.subject_id, len(rendered.images), reason)
    except GradebookError as exc:
        context = _context(request, user, row)
        alias = context["alias"]  # the library's messages name the student: the pseudonym on an anonymous sheet
        context["flash_error"] = str(exc).replace(row.student_id, alias) if alias else str(exc)
        return render(request, "handin_pages.html", context, status_code=400)
    return RedirectResponse(f"/handins/{row.id}/pages?saved={changed}", status_code=303)
