"""The admins' page of anonymous grading: which sheets are graded anonymously (tutors see pseudonyms), the
switch per sheet, and revealing the names of a sheet (pseudonym → student), each an audited action through
:mod:`gradebook.course.anonymity` (the same functions as `mlph anonymous`)."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from gradebook.course.anonymity import anonymous_sheets, reveal, roster, set_anonymous
from gradebook.course.config import CourseConfig
from gradebook.errors import GradebookError, InputError
from gradebook.store import nbgrader_tables as nt

from web.security import User, engine_of, require_role
from web.templating import render

router = APIRouter(prefix="/admin")
admin = require_role("admin")


def _cfg(request: Request) -> CourseConfig:
    return request.app.state.cfg  # type: ignore[no-any-return]


def _context(request: Request) -> dict[str, Any]:
    on = anonymous_sheets(engine_of(request))
    return {"sheets": [(s.id, s.manifest.title if s.manifest else "", s.id in on) for s in _cfg(request).semester
                       if s.manifest is not None and s.manifest.paper_tasks]}


def _page(request: Request, flash: str = "", error: str = "", revealed: Any = None) -> Response:
    return render(request, "admin_anonymity.html", {**_context(request), "flash": flash, "error": error,
                                                     "revealed": revealed}, status_code=400 if error else 200)


@router.get("/anonymity")
def anonymity_page(request: Request, user: User = Depends(admin)) -> Response:
    return _page(request)


def _sheet(request: Request, sheet: str) -> str:
    if sheet not in {s.id for s in _cfg(request).semester if s.manifest is not None}:
        raise InputError(f"there is no sheet {sheet[:40]!r} in this semester")
    return sheet


@router.post("/anonymity")
def anonymity_switch(request: Request, sheet: str = Form(), on: str = Form(), reason: str = Form("", max_length=2000),
                     user: User = Depends(admin)) -> Response:
    try:
        changed = set_anonymous(engine_of(request), _sheet(request, sheet), on == "on", user.username, reason or None)
    except GradebookError as exc:
        return _page(request, error=str(exc))
    state = "graded anonymously: tutors see pseudonyms" if on == "on" else "shows names to tutors again"
    return _page(request, flash=f"{sheet} {state}." + ("" if changed else " (No change: it already did.)"))


@router.post("/anonymity/reveal")
def anonymity_reveal(request: Request, sheet: str = Form(), reason: str = Form(max_length=2000),
                     user: User = Depends(admin)) -> Response:
    engine = engine_of(request)
    try:
        mapping = reveal(engine, _sheet(request, sheet), roster(engine), user.username, reason)
    except GradebookError as exc:
        return _page(request, error=str(exc))
    with Session(engine) as session:
        names = {sid: f"{last or ''}, {first or ''}".strip(", ") for sid, last, first in session.execute(
            select(nt.student.c.id, nt.student.c.last_name, nt.student.c.first_name))}
    rows = [(alias, sid, names.get(sid, "")) for alias, sid in sorted(mapping.items())]
    return _page(request, flash=f"The names of {sheet} are revealed to you (recorded in the audit log).",
                 revealed={"sheet": sheet, "rows": rows})
