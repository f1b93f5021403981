"""The admins' rubric page: a sheet's paper tasks with their rubric items (points, text for students, note for
tutors); adding, changing and deleting an item goes through :mod:`gradebook.points.rubric_edit` (the
``mlph rubric`` commands' functions), each one transaction and one audited event that rewrites the points
of every student who has the item."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import Response

from gradebook.course.tables import parse_decimal
from gradebook.errors import GradebookError, InputError
from gradebook.points.rubric_edit import add_item, delete_item, item_use, list_items, set_item

from web.security import User, engine_of, require_role
from web.templating import render

router = APIRouter(prefix="/admin")
admin = require_role("admin")


def _manifest(request: Request, sheet: str) -> Any:
    sheets = {s.id: s.manifest for s in request.app.state.cfg.semester if s.manifest is not None}
    if sheet not in sheets or not sheets[sheet].paper_tasks:
        raise HTTPException(404, f"There is no sheet {sheet!r} with paper tasks in this semester.")
    return sheets[sheet]


def _page(request: Request, sheet: str, flash: str = "", error: str = "") -> Response:
    manifest = _manifest(request, sheet)
    sheets = [s.id for s in request.app.state.cfg.semester if s.manifest is not None and s.manifest.paper_tasks]
    return render(request, "admin_rubric.html", {
        "sheet": sheet, "sheets": sheets, "tasks": manifest.paper_tasks,
        "rubrics": list_items(engine_of(request), manifest), "use": item_use(engine_of(request), manifest),
        "flash": flash, "error": error},
        status_code=400 if error else 200)


@router.get("/rubric/{sheet}")
def rubric_page(request: Request, sheet: str, user: User = Depends(admin)) -> Response:
    return _page(request, sheet)


def _points(text: str) -> Any:
    try:
        return parse_decimal(text)
    except ValueError:
        raise InputError(f"points {text!r} is not a number (e.g. 1,5 or -0.5)") from None


@router.post("/rubric/{sheet}")
def rubric_edit(request: Request, sheet: str, action: str = Form(), task: str = Form(max_length=128),
                key: str = Form("", max_length=64), points: str = Form("", max_length=32),
                text: str = Form("", max_length=4000), note: str = Form("", max_length=4000),
                reason: str = Form("", max_length=2000), user: User = Depends(admin)) -> Response:
    """``action`` add | set | delete; ``set`` writes the points, text and note as given."""
    manifest, engine, who = _manifest(request, sheet), engine_of(request), user.username
    try:
        if action == "add":
            change = add_item(engine, manifest, task, _points(points), text, who, note, reason=reason or None)
        elif action == "set":
            change = set_item(engine, manifest, task, key, who, points=_points(points), text=text, note=note,
                              reason=reason or None)
        elif action == "delete":
            change = delete_item(engine, manifest, task, key, who, reason or None)
        else:
            raise InputError(f"unknown action {action!r} (add, set or delete)")
    except GradebookError as exc:
        return _page(request, sheet, error=str(exc))
    return _page(request, sheet, flash=str(change))
