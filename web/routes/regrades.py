"""Regrade requests for staff, and publishing paper points for admins.

``/regrades``: the requests the signed-in tutor may answer (not the ones on tasks they graded; admins: all),
``/regrades/{id}``: one request with the student's points, rubric and PDF, answered through
:func:`gradebook.points.regrades.answer_request` (the one answer path). ``POST /admin/publish``: publish or
withdraw a sheet's paper points (:mod:`gradebook.points.publishing`). Students ask for a regrade on their sheet
page (``web.routes.student``).
"""
from __future__ import annotations

import logging

from fastapi import APIRouter, BackgroundTasks, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from gradebook.course.config import CourseConfig
from gradebook.course.tables import parse_decimal
from gradebook.errors import GradebookError, InputError
from gradebook.mail.notify import answer_mailed
from gradebook.points.grid import cell_state
from gradebook.points.publishing import publish, unpublish
from gradebook.points.regrades import MAX_ANSWER, Request as Regrade, answer_request, get_request, may_answer, requests
from gradebook.store.models import Handin

from web.routes.student import _pdf_response
from web.security import User, engine_of, require_role
from web.templating import render

log = logging.getLogger("mlph.web")
router = APIRouter()
staff = require_role("tutor", "admin")
admin = require_role("admin")


def _cfg(request: Request) -> CourseConfig:
    return request.app.state.cfg  # type: ignore[no-any-return]


def _mine(request: Request, user: User, request_id: int) -> Regrade:
    """The request, if this user may answer it (or has answered it); else 404 (a tutor learns nothing of
    requests on tasks they graded)."""
    found = get_request(engine_of(request), request_id)
    if found is None or not (may_answer(found, user.subject_id, user.is_admin) or found.answered_by == user.subject_id):
        raise HTTPException(404, "No such regrade request.")
    return found


@router.get("/regrades")
def regrade_list(request: Request, answered: bool = False, user: User = Depends(staff)) -> Response:
    found = requests(engine_of(request), open_only=not answered, answerable_by=user.subject_id, admin=user.is_admin)
    return render(request, "regrades.html", {"requests": found[::-1] if answered else found, "answered": answered})


def _context(request: Request, found: Regrade) -> dict[str, object]:
    cfg = _cfg(request)
    manifest = cfg.manifest(found.sheet)
    task = manifest.paper_task(found.task)
    cell = cell_state(engine_of(request), manifest, found.student, found.task)
    return {"r": found, "task": task, "cell": cell, "max_answer": MAX_ANSWER}


@router.get("/regrades/{request_id}")
def regrade_page(request: Request, request_id: int, user: User = Depends(staff)) -> Response:
    return render(request, "regrade.html", _context(request, _mine(request, user, request_id)))


@router.post("/regrades/{request_id}")
def regrade_answer(request: Request, request_id: int, later: BackgroundTasks, answer: str = Form(""),
                   points: str = Form(""), ticks: list[str] = Form([]), use_ticks: str = Form(""), version: str = Form(""),
                   user: User = Depends(staff)) -> Response:
    found = _mine(request, user, request_id)
    try:
        value = parse_decimal(points) if points.strip() else None
    except ValueError:
        value = None
        error: str | None = f"points {points[:20]!r} is not a number"
    else:
        error = None
    if error is None:
        try:
            done = answer_request(engine_of(request), _cfg(request), request_id, user.subject_id, user.is_admin,
                                  answer[:MAX_ANSWER * 2], value, ticks if use_ticks and value is None else None,
                                  int(version) if version.isdigit() else None)
        except GradebookError as exc:
            error = str(exc)
        else:  # the student's mail goes out after the response (a slow relay never holds the page)
            later.add_task(_mail_answer, _cfg(request), engine_of(request), done, user.subject_id)
    if error is not None:
        context = _context(request, found)
        context["flash_error"] = error
        return render(request, "regrade.html", context, status_code=400)
    return RedirectResponse(f"/regrades/{request_id}?answered=1", status_code=303)


def _mail_answer(cfg: CourseConfig, engine: Engine, done: Regrade, author: str) -> None:
    try:
        report = answer_mailed(cfg, engine, done, author)
    except GradebookError as exc:
        log.warning("regrade #%s answered; its mail to %s was not sent: %s", done.id, done.student, exc)
        return
    for failed in report.failed if report else []:
        log.warning("regrade #%s answered; its mail failed: %s", done.id, failed)


@router.get("/regrades/{request_id}/paper.pdf")
def regrade_pdf(request: Request, request_id: int, user: User = Depends(staff)) -> Response:
    """The student's newest paper PDF of the sheet, for whoever may answer the request (the second grader may
    tutor another group)."""
    found = _mine(request, user, request_id)
    with Session(engine_of(request)) as session:
        row = session.execute(select(Handin).where(Handin.sheet == found.sheet, Handin.student_id == found.student,
                                                   Handin.kind == "paper", Handin.status == "accepted")
                              .order_by(Handin.received_at.desc()).limit(1)).scalar_one_or_none()
    if row is None:
        raise HTTPException(404, "No PDF was handed in for this sheet.")
    return _pdf_response(request, row)


@router.post("/admin/publish")
def publish_paper(request: Request, sheet: str = Form(""), action: str = Form("publish"), reason: str = Form(""),
                  user: User = Depends(admin)) -> Response:
    """Publish (or withdraw) a sheet's paper points; audited. Back to the overview."""
    try:
        if action == "publish":
            publish(engine_of(request), _cfg(request), sheet, user.subject_id, reason[:2000])
        elif action == "unpublish":
            unpublish(engine_of(request), _cfg(request), sheet, user.subject_id, reason[:2000])
        else:
            raise InputError(f"unknown action {action[:20]!r} (publish or unpublish)")
    except GradebookError as exc:
        return render(request, "error.html", {"title": "Not changed", "message": str(exc)}, status_code=400)
    return RedirectResponse(f"/admin?{action}ed={sheet}#paper-publishing", status_code=303)
