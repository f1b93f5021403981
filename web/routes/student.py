"""The students' pages: the dashboard, a sheet (hand-in, feedback, paper points), the polled grading
state, the hand-in itself (through the single intake) and the uploaded PDFs."""
from __future__ import annotations

import logging
import time
from typing import Any

from fastapi import APIRouter, Depends, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from gradebook.admission.current import student_now
from gradebook.course.anonymity import anonymous_key
from gradebook.course.config import CourseConfig, SemesterSheet
from gradebook.points.page_images import PageRenderError, render_pages
from gradebook.course.sheets_state import handin_refusal, student_sheets
from gradebook.errors import GradebookError
from gradebook.points.regrades import MAX_REASON, request_regrade
from gradebook.store.models import Handin

from web.page_cache import PageCache, cache_headers, course_facts, entity_tag, not_modified, time_slot, utcnow
from web.security import User, can_view_handin, engine_of, require_role, require_student_access, team_of
from web.routes.pages import shown_as
from web.templating import render
from web.views import dashboard, late_notice, sheet_detail

log = logging.getLogger(__name__)
router = APIRouter()
anyone = require_role("student", "tutor", "admin")
KINDS = {"notebook": ".ipynb", "paper": ".pdf"}
_pages = PageCache()  # the dashboards rendered by this process, by tag


def _cfg(request: Request) -> CourseConfig:
    return request.app.state.cfg  # type: ignore[no-any-return]


def _no_sheet(sheet: str) -> HTTPException:
    return HTTPException(404, f"There is no sheet {sheet!r} in this semester.")


def _for_students(request: Request, user: User) -> set[str] | None:
    """The sheets a student may see (authored and released); None: staff see every sheet."""
    return student_sheets(engine_of(request), _cfg(request)) if user.role == "student" else None


def _sheet(request: Request, sheet: str, user: User) -> SemesterSheet:
    """A sheet of the semester; for a student an unreleased sheet is exactly a sheet that does not exist."""
    found = next((s for s in _cfg(request).semester if s.id == sheet), None)
    visible = _for_students(request, user)
    if found is None or (visible is not None and sheet not in visible):
        raise _no_sheet(sheet)
    return found


@router.get("/students/{student}")
def student_dashboard(request: Request, student: str, user: User = Depends(anyone)) -> Response:
    """The dashboard. It depends on the gradebook's versions (the course's, the student's and their team's),
    the course's stored state and deadlines passing, so it is named by a tag of those and the session
    (:mod:`web.page_cache`): a refresh with the tag is answered 304 after one version read, and a page
    rendered before under the same tag is sent again without reading or rendering anything."""
    started = time.perf_counter()
    require_student_access(request, user, student)
    engine, cfg, now = engine_of(request), _cfg(request), utcnow()
    state = student_now(engine, cfg, student, now)
    if state.standing is None:
        raise HTTPException(404, f"There is no student {student!r} on the roster.")
    facts = course_facts(engine, cfg, state.key[0])
    visible: set[str] | None = None
    if user.role == "student":
        visible = set(facts.released)
    elif user.role == "tutor":  # a tutor sees nothing of an anonymous sheet on a named page
        visible = {s.id for s in cfg.semester} - facts.anonymous
    published, live = facts.published(engine, cfg, now, (state.counter, state.key[0]))
    tag = entity_tag(user.session_id, "dashboard", user.role, student, state.key, state.counter if live else None,
                     sorted(visible) if visible is not None else None, sorted(published.items()),
                     time_slot(now, state.next_change))
    if not_modified(request, tag):
        return _timed(Response(status_code=304, headers=cache_headers(tag)), started)
    kept = _pages.get(tag)
    if kept is not None:
        return _timed(HTMLResponse(kept, headers=cache_headers(tag)), started)
    standing, sheets = dashboard(engine, cfg, student, visible, staff=user.role != "student", state=state,
                                 published=published)
    upcoming = [s for s in cfg.semester if user.role == "student" and visible is not None and s.id not in visible]
    response = render(request, "student_dashboard.html", {
        "standing": standing, "sheets": sheets, "student": student, "upcoming": len(upcoming),
        "upcoming_points": sum(s.max_points for s in upcoming)})
    if not any(s.grading for s in sheets):  # while a hand-in is graded the page follows the graders: never kept
        _pages.put(tag, bytes(response.body))
        response.headers.update(cache_headers(tag))
    return _timed(response, started)


def _timed(response: Response, started: float) -> Response:
    """The handler's own time in a Server-Timing header (benchmarks/web.py reads it)."""
    response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
    return response


def _refuse_anonymous(request: Request, user: User, sheet: str) -> None:
    """A tutor does not open a student's own pages of an anonymous sheet (they name the student): the grid."""
    if user.role == "tutor" and anonymous_key(engine_of(request), sheet) is not None:
        raise HTTPException(403, "This sheet is graded anonymously: its hand-ins are in your grading grid.")


def _sheet_context(request: Request, user: User, student: str, sheet: str) -> dict[str, Any]:
    _refuse_anonymous(request, user, sheet)
    require_student_access(request, user, student)
    _sheet(request, sheet, user)
    standing, view = sheet_detail(engine_of(request), _cfg(request), student, sheet, staff=user.role != "student")
    if standing is None:
        raise HTTPException(404, f"There is no student {student!r} on the roster.")
    can_hand_in = (user.role == "student" and user.subject_id == student and view.sheet.manifest is not None
                   and not view.closed)  # past the cut-off the form is closed (view.closed says why)
    notice = late_notice(engine_of(request), view.sheet, student) if can_hand_in else None
    return {"standing": standing, "view": view, "student": student, "can_hand_in": can_hand_in, "kinds": KINDS,
            "late_notice": notice, "own": user.role == "student" and user.subject_id == student,
            "max_reason": MAX_REASON}


@router.get("/students/{student}/sheets/{sheet}")
def student_sheet(request: Request, student: str, sheet: str, user: User = Depends(anyone)) -> Response:
    return render(request, "student_sheet.html", _sheet_context(request, user, student, sheet))


@router.get("/students/{student}/sheets/{sheet}/grading")
def grading_fragment(request: Request, student: str, sheet: str, user: User = Depends(anyone)) -> Response:
    """The grading part of the sheet page alone (polled every 2 s while a notebook is being graded)."""
    return render(request, "_grading.html", _sheet_context(request, user, student, sheet))


@router.post("/students/{student}/sheets/{sheet}/regrade")
def ask_regrade(request: Request, student: str, sheet: str, task: str = Form(""), reason: str = Form(""),
                user: User = Depends(require_role("student"))) -> Response:
    """A student's regrade request for one paper task of their own (:func:`gradebook.points.regrades.request_regrade`)."""
    if user.subject_id != student:
        raise HTTPException(403, "You can ask for a regrade only of your own work.")
    _sheet(request, sheet, user)
    try:
        request_regrade(engine_of(request), _cfg(request), sheet, task[:128], student, reason[:MAX_REASON * 2])
    except GradebookError as exc:
        context = _sheet_context(request, user, student, sheet)
        context["flash_error"] = f"Your regrade request was not recorded: {exc}"
        return render(request, "student_sheet.html", context, status_code=400)
    return RedirectResponse(f"/students/{student}/sheets/{sheet}?regrade=asked", status_code=303)


def _accept_upload() -> Any:
    try:
        from autograder.intake.upload import accept_upload
    except ImportError:
        return None
    return accept_upload


@router.post("/students/{student}/sheets/{sheet}/handin")
async def hand_in(request: Request, student: str, sheet: str, kind: str = Form(), file: UploadFile = File(),
                  confirm_late: str = Form(""), user: User = Depends(require_role("student"))) -> Response:
    """A hand-in, by the student themself, through the intake (``autograder.intake.upload``): the
    intake checks it, stores it under a server-chosen name and records it; this route writes nothing."""
    if user.subject_id != student:
        raise HTTPException(403, "You can hand in only for yourself.")
    sem = _sheet(request, sheet, user)
    if handin_refusal(engine_of(request), _cfg(request), sheet) is not None:  # the intake's own check
        raise _no_sheet(sheet)
    if kind not in KINDS:
        raise HTTPException(400, f"Sheet {sheet} takes no hand-in of kind {kind!r}.")
    if late_notice(engine_of(request), sem, student) and confirm_late != "yes":
        context = _sheet_context(request, user, student, sheet)
        context["flash_error"] = "This hand-in would be late: read what it counts and confirm it below."
        return render(request, "student_sheet.html", context, status_code=409)
    accept = _accept_upload()
    if accept is None:
        raise HTTPException(503, "Handing in through the web page is not available yet on this server.")
    data = await file.read()
    try:
        record = await run_in_threadpool(lambda: accept(_cfg(request), engine_of(request), sheet=sheet, student=student,
                                                        kind=kind, filename=file.filename or "", data=data,
                                                        uploaded_by=user.username))
    except Exception as exc:  # the intake refuses a file by its record; a bound on uploads (or a fault) is raised
        retry = getattr(exc, "retry_after", None)
        if retry is not None:
            raise HTTPException(429, f"Your {kind} was not accepted: {exc}.", headers={"Retry-After": str(retry)}) from None
        log.exception("the hand-in of %s for %s failed", student, sheet)
        raise HTTPException(503, f"Your {kind} could not be stored just now; please try again.") from None
    if getattr(record, "status", "") != "accepted":
        context = _sheet_context(request, user, student, sheet)
        context["flash_error"] = f"Your {kind} was not accepted: {getattr(record, 'reason', '') or 'refused'}"
        return render(request, "student_sheet.html", context, status_code=400)
    if kind == "paper" and getattr(record, "handin_id", None):  # its pages, rendered once, to be tagged
        await run_in_threadpool(_render_quietly, request, int(record.handin_id))
        return RedirectResponse(f"/handins/{record.handin_id}/pages?handed_in=paper", status_code=303)
    return RedirectResponse(f"/students/{student}/sheets/{sheet}?handed_in={kind}", status_code=303)


def _render_quietly(request: Request, handin_id: int) -> None:
    """Render a new PDF's pages now (the tagging page shows them); a PDF that cannot be rendered is said there."""
    with Session(engine_of(request)) as session:
        row = session.get(Handin, handin_id)
    if row is not None:
        try:
            render_pages(_cfg(request).data_dir, engine_of(request), row)
        except PageRenderError:
            pass


def _pdf_response(request: Request, row: Handin, user: User) -> Response:
    root = _cfg(request).data_dir.resolve()
    path = (root / (row.stored_path or "")).resolve()
    if row.kind != "paper" or not row.stored_path or not path.is_relative_to(root) or not path.is_file():
        raise HTTPException(404, "This hand-in has no PDF.")
    name = f"{row.sheet}-{shown_as(request, user, row) or row.student_id}-paper.pdf"
    return FileResponse(path, media_type="application/pdf", headers={
        "Content-Disposition": f'inline; filename="{name}"', "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox", "Cache-Control": "private, no-store"})


@router.get("/handins/{handin_id}/pdf")
def handin_pdf(request: Request, handin_id: int, user: User = Depends(anyone)) -> Response:
    """An uploaded PDF: its owner and their team, their tutor, admins. Never run in our origin."""
    with Session(engine_of(request)) as session:
        row = session.get(Handin, handin_id)
    if row is None or not can_view_handin(engine_of(request), user, row.sheet, row.student_id):
        raise HTTPException(404, "No such hand-in.")
    visible = _for_students(request, user)
    if visible is not None and row.sheet not in visible:
        raise HTTPException(404, "No such hand-in.")
    return _pdf_response(request, row, user)


@router.get("/students/{student}/sheets/{sheet}/paper.pdf")
def latest_pdf(request: Request, student: str, sheet: str, user: User = Depends(anyone)) -> Response:
    """The newest accepted paper PDF of ``student`` (or their team) on ``sheet``."""
    engine = engine_of(request)
    _refuse_anonymous(request, user, sheet)
    if not can_view_handin(engine, user, sheet, student):
        raise HTTPException(403, "You cannot see this hand-in.")
    visible = _for_students(request, user)
    if visible is not None and sheet not in visible:
        raise HTTPException(404, "No PDF was handed in for this sheet.")
    with Session(engine) as session:
        members = team_of(session, sheet, student)
        row = session.execute(select(Handin).where(Handin.sheet == sheet, Handin.student_id.in_(members),
                                                   Handin.kind == "paper", Handin.status == "accepted")
                              .order_by(Handin.received_at.desc()).limit(1)).scalar_one_or_none()
    if row is None:
        raise HTTPException(404, "No PDF was handed in for this sheet.")
    return _pdf_response(request, row, user)


