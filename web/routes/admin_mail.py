"""The admins' mail page: an announcement to a tutorial group or the whole course, set-password links by
mail, and the outbox's recent record; every message through :mod:`gradebook.mail` (the CLI's functions)."""
from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from gradebook.errors import GradebookError
from gradebook.mail.notify import PARTS, Outbox, announce, send_password_links, sheet_graded
from gradebook.mail.outbox import SendReport
from gradebook.store.models import MailLog, TutorialGroup

from web.security import User, engine_of, require_role, settings_of
from web.templating import render

router = APIRouter(prefix="/admin")
admin = require_role("admin")
SUBJECT_MAX, BODY_MAX = 150, 20_000


def _page(request: Request, report: SendReport | None = None, error: str = "", status_code: int = 200,
          form: dict[str, str] | None = None) -> Response:
    engine = engine_of(request)
    with Session(engine) as session:
        groups = session.execute(select(TutorialGroup.id, TutorialGroup.name).order_by(TutorialGroup.id)).all()
        log = session.execute(select(MailLog).order_by(MailLog.id.desc()).limit(50)).scalars().all()
    cfg = request.app.state.cfg
    mail = cfg.mail
    return render(request, "admin_mail.html", {
        "groups": groups, "sheets": [s.id for s in cfg.semester if s.manifest is not None], "parts": PARTS, "log": log, "report": report, "error": error, "form": form or {},
        "relay": f"{mail.host}:{mail.port}" if mail.host else "",
        "flash": report.lines()[0] if report and not report.failed else "",
        "error": error or (report.lines()[0] if report and report.failed else "")},
        status_code=status_code)


def _outbox(request: Request, user: User) -> Outbox:
    return Outbox(request.app.state.cfg, engine_of(request), user.username)


@router.get("/mail")
def mail_page(request: Request, user: User = Depends(admin)) -> Response:
    return _page(request)


@router.post("/mail/announce")
async def mail_announce(request: Request, group: str = Form(""), subject: str = Form(max_length=SUBJECT_MAX),
                        body: str = Form(max_length=BODY_MAX), tutors: bool = Form(False),
                        user: User = Depends(admin)) -> Response:
    form = {"group": group, "subject": subject, "body": body}
    try:
        report = await run_in_threadpool(announce, _outbox(request, user), subject, body, group or None, tutors)
    except GradebookError as exc:
        return _page(request, error=str(exc), status_code=400, form=form)
    return _page(request, report=report)


@router.post("/mail/links")
async def mail_links(request: Request, usernames: str = Form("", max_length=20_000),
                     user: User = Depends(admin)) -> Response:
    """Set-password links by mail (blank: every enabled account without a password)."""
    hours = settings_of(request).link_hours
    try:
        report = await run_in_threadpool(send_password_links, _outbox(request, user), usernames.split() or None, hours)
    except GradebookError as exc:
        return _page(request, error=str(exc), status_code=400)
    return _page(request, report=report)


@router.post("/mail/graded")
async def mail_graded(request: Request, sheet: str = Form(max_length=128), part: str = Form("notebook"),
                      user: User = Depends(admin)) -> Response:
    """"Your sheet was graded" to every student whose part of the sheet is graded and who was not told yet."""
    try:
        report = await run_in_threadpool(sheet_graded, _outbox(request, user), sheet, part)
    except GradebookError as exc:
        return _page(request, error=str(exc), status_code=400)
    return _page(request, report=report)
