"""``mlph serve`` as the course's JupyterHub service: the exchange's HTTP API (students' servers, a Hub token
in ``Authorization``) and the login through the Hub's OAuth (browsers).

The student is whoever the Hub says owns the token; a student named by the client (``--student``, a course id,
a user name in the form) is ignored and logged. The time of receipt is this server's clock. A hand-in goes
through the same intake as the web upload (:func:`autograder.intake.upload.accept_upload`: the same limits,
checked before anything is stored; a refused one leaves no file), so the grade-on-submit watcher grades it at
once, and it shows on the dashboard and in the admission list as any upload does. Only released sheets are
served; feedback only the caller's own (or their team's).
"""
from __future__ import annotations

import hmac
import io
import json
import logging
import secrets
import zipfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from autograder.grading.feedback import render as render_feedback
from autograder.grading.feedback import student_view
from autograder.hub import protocol
from gradebook.course.config import CourseConfig, SemesterSheet
from gradebook.points.handins import decision_for
from gradebook.course.sheets_state import handin_refusal, student_sheets
from gradebook.store.models import AutogradeResult, Handin

from gradebook.people.hub_identity import Member, account_of_member, member_for_login
from web.hub import HubGate, HubRefused, bearer_token
from web.security import PRE_CSRF_COOKIE, engine_of, is_secure, set_session_cookie, settings_of, start_session, team_of
from web.templating import render

router = APIRouter()
log = logging.getLogger("mlph.hub")
OAUTH_COOKIE = "mlph_hub_oauth"
COURSE_ID = "mlph"  # nbgrader's course id of this course (autograder.nbgrader_bridge.COURSE_ID)
CLAIM_FIELDS = ("student", "student_id", "claimed_student", "user", "username", "course_id")


def _cfg(request: Request) -> CourseConfig:
    return request.app.state.cfg  # type: ignore[no-any-return]


def _gate(request: Request) -> HubGate:
    gate = getattr(request.app.state, "hub", None)
    if gate is None:
        raise HTTPException(404, "This server is not connected to a JupyterHub.")
    return gate  # type: ignore[no-any-return]


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _student(request: Request, claims: dict[str, str] | None = None) -> Member:
    """The roster student who owns the request's Hub token; HubRefused otherwise."""
    gate = _gate(request)
    token = bearer_token(request.headers.get("authorization"))
    if token is None:
        raise HubRefused(401, "No Hub token: call the course's service from your JupyterHub server "
                              "(its $JUPYTERHUB_API_TOKEN), or log in through the Hub.")
    model = await run_in_threadpool(gate.user_for_token, token)
    name = str(model.get("name", ""))
    caller = await run_in_threadpool(member_for_login, engine_of(request), name)
    said = {k: v for k, v in {**dict(request.query_params), **(claims or {})}.items()
            if k in CLAIM_FIELDS and v not in ("", "*", COURSE_ID)}
    if said:
        log.warning("Hub user %r named %s in a request to %s: ignored (the Hub token decides)", name,
                    json.dumps(said)[:300], request.url.path)
    if caller is None:
        raise HubRefused(403, f"The Hub user {name!r} is not in this course ({_cfg(request).name}): not on the "
                              "roster (by id or login) and not on the course team.")
    if caller.kind != "student":
        raise HubRefused(403, f"{name!r} is on the course team, not a student: only students hand in.")
    return caller


def _refusal(exc: HubRefused) -> JSONResponse:
    return _error(exc.status, str(exc))


def _released(request: Request) -> list[SemesterSheet]:
    """The sheets that exist for students (authored and released: the one rule of every page, API and intake),
    in the semester's order."""
    exists = student_sheets(engine_of(request), _cfg(request))
    return [s for s in _cfg(request).semester if s.id in exists]


def _released_sheet(request: Request, sheet: str) -> SemesterSheet:
    """An unreleased sheet is refused with the same words as one that does not exist."""
    found = next((s for s in _released(request) if s.id == sheet), None)
    if found is None or handin_refusal(engine_of(request), _cfg(request), sheet) is not None:
        raise HubRefused(404, f"There is no sheet {sheet!r} in this course.")
    return found


def _stem(sem: SemesterSheet) -> str:
    assert sem.manifest is not None
    return Path(sem.manifest.notebook).stem


def _utc(when: datetime) -> datetime:
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when.astimezone(timezone.utc)


@router.get(f"/{protocol.SHEETS}")
async def exchange_sheets(request: Request) -> Response:
    try:
        await _student(request)
    except HubRefused as exc:
        return _refusal(exc)
    sheets = [{"id": s.id, "notebooks": [_stem(s)], "due": _utc(s.due).isoformat()}
              for s in await run_in_threadpool(_released, request)]
    return JSONResponse({"course_id": COURSE_ID, "sheets": sheets})


def _zip_release(directory: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(directory.rglob("*")):
            rel = path.relative_to(directory)
            if path.is_file() and not path.is_symlink() and not any(p.startswith(".") for p in rel.parts) \
                    and "__pycache__" not in rel.parts:
                archive.write(path, rel.as_posix())
    return buffer.getvalue()


@router.get("/" + protocol.sheet_files("{sheet}"))
async def exchange_files(request: Request, sheet: str) -> Response:
    try:
        await _student(request)
        await run_in_threadpool(_released_sheet, request, sheet)
    except HubRefused as exc:
        return _refusal(exc)
    directory = _cfg(request).release_dir / sheet
    if not directory.is_dir():
        return _error(404, f"Sheet {sheet} is released but its student version is missing on the server; "
                           "tell the course team.")
    data = await run_in_threadpool(_zip_release, directory)
    return Response(data, media_type="application/zip",
                    headers={"Content-Disposition": f'attachment; filename="{sheet}.zip"'})


@router.post("/" + protocol.sheet_submissions("{sheet}"))
async def exchange_submit(request: Request, sheet: str) -> Response:
    """A notebook hand-in; the identity is checked before the body is read (the size limit of the app's
    BodyLimit holds before that too)."""
    from autograder.intake.upload import accept_upload

    try:
        caller = await _student(request)
        sem = await run_in_threadpool(_released_sheet, request, sheet)
    except HubRefused as exc:
        return _refusal(exc)
    try:
        form = await request.form(max_files=1, max_fields=8)
    except Exception as exc:  # malformed multipart
        return _error(400, f"The hand-in is not a well-formed upload ({type(exc).__name__}); send the notebook "
                           "as the multipart field 'file'.")
    upload = form.get("file")
    claims = {k: str(v) for k, v in form.items() if k != "file" and isinstance(v, str)}
    if claims:
        try:
            await _student(request, claims)  # cached: only logs what the client named
        except HubRefused as exc:
            return _refusal(exc)
    if not isinstance(upload, UploadFile):
        return _error(400, "The hand-in has no notebook: send it as the multipart field 'file'.")
    data = await upload.read()
    cfg, engine = _cfg(request), engine_of(request)
    try:
        record = await run_in_threadpool(lambda: accept_upload(cfg, engine, sheet=sheet, student=caller.subject_id,
                                                               kind="notebook", filename=upload.filename or "",
                                                               data=data, uploaded_by=f"hub:{caller.login}",
                                                               source="hub"))
    except Exception as exc:  # the intake refuses a file by its record; a bound on uploads (or a fault) is raised
        retry = getattr(exc, "retry_after", None)
        if retry is not None:
            return JSONResponse({"error": f"Your notebook for {sheet} was not accepted: {exc}."}, status_code=429,
                                headers={"Retry-After": str(retry)})
        log.exception("the Hub hand-in of %s for %s failed", caller.subject_id, sheet)
        return _error(503, f"Your notebook for {sheet} could not be stored just now; please try again.")
    if record.status != "accepted":
        log.info("Hub hand-in of %s (%s) for %s refused: %s", caller.subject_id, caller.login, sheet, record.reason)
        return _error(413 if "larger than" in (record.reason or "") else 422,
                      f"Your notebook for {sheet} was not accepted: {record.reason}")
    manifest = cfg.manifest(sheet)  # read as the intake and the grader read it (a changed deadline counts)
    decision = decision_for(engine, manifest, caller.subject_id, record.received_at)  # extension, group
    return JSONResponse({"course_id": COURSE_ID, "sheet": sheet, "student_id": caller.subject_id,
                         "timestamp": protocol.timestamp(record.received_at),
                         "received_at": _utc(record.received_at).isoformat(), "sha256": record.sha256,
                         "late": decision.late, "decision": decision.text(cfg.timezone)}, status_code=201)


def _results(session: Session, sheet: str, members: list[str]) -> list[AutogradeResult]:
    return list(session.execute(select(AutogradeResult).where(
        AutogradeResult.sheet == sheet, AutogradeResult.student_id.in_(members))
        .order_by(AutogradeResult.graded_at.desc())).scalars())


def _feedback(cfg: CourseConfig, session: Session, sem: SemesterSheet, student: str) -> tuple[AutogradeResult, str] | None:
    """The newest result of ``student``'s team on the sheet and its feedback page as the student may see it now
    (as the sheet page shows it: before the deadline, and for a late hand-in, nothing of the hidden checks)."""
    assert sem.manifest is not None
    for row in _results(session, sem.id, team_of(session, sem.id, student)):
        try:
            result = json.loads(row.result_json)
        except ValueError:
            continue
        if not isinstance(result, dict) or "cells" not in result:
            continue
        result.setdefault("student", row.student_id)
        if row.deadline is not None:  # the stored decision's deadline (an extension re-decides it)
            result["deadline"] = _utc(row.deadline).isoformat()
        view = student_view(result, sem.manifest, datetime.now(timezone.utc))
        return row, render_feedback(view, sem.manifest, cfg.timezone)
    return None


def _submissions(request: Request, student: str) -> list[dict[str, Any]]:
    import hashlib

    cfg, out = _cfg(request), []
    with Session(engine_of(request)) as session:
        for sem in _released(request):
            handins = session.execute(select(Handin).where(
                Handin.sheet == sem.id, Handin.student_id.in_(team_of(session, sem.id, student)),
                Handin.kind == "notebook", Handin.status == "accepted").order_by(Handin.received_at)).scalars().all()
            found = _feedback(cfg, session, sem, student) if handins else None
            graded_at = _utc(found[0].submitted_at) if found and found[0].submitted_at else None
            for h in handins:
                with_feedback = found is not None and graded_at is not None and _utc(h.received_at) == graded_at
                out.append({"sheet": sem.id, "timestamp": protocol.timestamp(h.received_at), "notebooks": [_stem(sem)],
                            "handed_in_by": h.student_id,
                            "feedback_sha256": hashlib.sha256(found[1].encode()).hexdigest()
                            if with_feedback and found else None})
    return out


@router.get(f"/{protocol.SUBMISSIONS}")
async def exchange_submissions(request: Request) -> Response:
    try:
        caller = await _student(request)
    except HubRefused as exc:
        return _refusal(exc)
    subs = await run_in_threadpool(_submissions, request, caller.subject_id)
    return JSONResponse({"course_id": COURSE_ID, "student_id": caller.subject_id, "submissions": subs})


@router.get("/" + protocol.sheet_feedback("{sheet}"))
async def exchange_feedback(request: Request, sheet: str) -> Response:
    try:
        caller = await _student(request)
        sem = await run_in_threadpool(_released_sheet, request, sheet)
    except HubRefused as exc:
        return _refusal(exc)
    with Session(engine_of(request)) as session:
        found = _feedback(_cfg(request), session, sem, caller.subject_id)
    if found is None:
        return _error(404, f"No feedback for {sheet} yet: it appears once your hand-in is graded.")
    result, page = found
    when = result.submitted_at or result.graded_at
    return JSONResponse({"course_id": COURSE_ID, "sheet": sheet, "notebook_id": _stem(sem),
                         "timestamp": protocol.timestamp(when), "html": page})


# --- login through the Hub (OAuth 2 authorization code with PKCE) --------------------------------------

def _safe_next(target: str) -> str:
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else "/"


@router.get("/login/hub")
def hub_login(request: Request, next: str = "/") -> Response:
    gate = _gate(request)
    verifier, challenge, _method = gate.auth.generate_pkce_code_challenge()
    state = secrets.token_urlsafe(24)
    origin = f"{'https' if is_secure(request) else 'http'}://{request.headers.get('host', '')}"
    response = RedirectResponse(gate.authorize_url(state, challenge, origin), status_code=303)
    response.set_cookie(OAUTH_COOKIE, f"{state}|{verifier}|{quote(_safe_next(next), safe='')}", max_age=600,
                        path="/", httponly=True, samesite="lax", secure=is_secure(request))
    return response


@router.get("/oauth_callback")
async def hub_callback(request: Request, code: str = "", state: str = "", error: str = "") -> Response:
    gate = _gate(request)
    saved = request.cookies.get(OAUTH_COOKIE, "").split("|")
    if error or len(saved) != 3 or not state or not hmac.compare_digest(saved[0].encode(), state.encode()) or not code:
        raise HTTPException(400, "The login through the JupyterHub did not complete (expired, refused or not started "
                                 "here). Please try again from the login page.")
    try:
        token = await run_in_threadpool(gate.token_for_code, code, saved[1])
        model = await run_in_threadpool(gate.user_for_token, token, False)
    except HubRefused as exc:
        raise HTTPException(exc.status, str(exc)) from None
    except Exception as exc:  # the Hub refused the code (reused, expired)
        log.warning("Hub OAuth code refused: %s", exc)
        raise HTTPException(400, "The JupyterHub did not confirm the login; please try again.") from None
    engine, name = engine_of(request), str(model.get("name", ""))
    caller = await run_in_threadpool(member_for_login, engine, name)
    if caller is None:
        log.info("Hub user %r logged in but is not in this course", name)
        page = render(request, "error.html", {
            "title": "Not in this course",
            "message": f"You are logged in to the JupyterHub as {name}, but {name} is not a student or a member of "
                       f"the course team of {_cfg(request).name}. If you take this course, ask the course team to add "
                       "your Hub login to the roster."}, status_code=403)
        page.delete_cookie(OAUTH_COOKIE, path="/")
        return page
    account_id, disabled = await run_in_threadpool(account_of_member, engine, caller)
    if disabled:
        raise HTTPException(403, f"The account of {caller.subject_id} is disabled; ask the course team.")
    session_token = await run_in_threadpool(start_session, engine, account_id, settings_of(request).session_hours)
    response = RedirectResponse(_safe_next(unquote(saved[2])), status_code=303)
    set_session_cookie(request, response, session_token)
    response.delete_cookie(OAUTH_COOKIE, path="/")
    response.delete_cookie(PRE_CSRF_COOKIE, path="/")
    return response
