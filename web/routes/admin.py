"""The admins' pages that read: overview (autograde state per sheet), students, admission list and its
downloads (the same bytes as ``mlph admission --csv/--xlsx``), the preview of another threshold, the
report, the audit log; and the accounts (create, one-time links as CSV, disable)."""
from __future__ import annotations

import io
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gradebook.people import accounts
from gradebook.admission.current import current_standings
from gradebook.admission.rule import preview
from gradebook.course.config import CourseConfig
from gradebook.errors import GradebookError
from gradebook.exports.admission_list import write_csv, write_xlsx
from gradebook.exports.links import write_links_csv
from gradebook.points.current_publications import current_publications
from gradebook.points.regrades import pending_students
from gradebook.store.models import Account

from gradebook.points.grading_queue import queue_state

from web.admin_data import audit_rows, autograde_states, grader_log, log_tail
from web.security import User, engine_of, require_role, settings_of
from web.templating import render

router = APIRouter(prefix="/admin")
admin = require_role("admin")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _cfg(request: Request) -> CourseConfig:
    return request.app.state.cfg  # type: ignore[no-any-return]


@router.get("")
def overview(request: Request, user: User = Depends(admin)) -> Response:
    engine, cfg = engine_of(request), _cfg(request)
    standings = current_standings(engine, cfg)
    with Session(engine) as session:
        n_accounts = session.execute(select(func.count()).select_from(Account)).scalar_one()
    return render(request, "admin_overview.html", {
        "states": autograde_states(engine, cfg), "n_students": len(standings), "n_accounts": n_accounts,
        "status_counts": Counter(s.status for s in standings), "grading": queue_state(engine),
        "has_log": grader_log(cfg).is_file(), "publications": list(current_publications(engine, cfg).values())})


@router.get("/grader-log")
def grader_log_page(request: Request, user: User = Depends(admin)) -> Response:
    """The end of the graders' log (``<course data>/logs/grader.log``), as plain text."""
    return Response(log_tail(grader_log(_cfg(request))), media_type="text/plain; charset=utf-8",
                    headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"})


@router.get("/students")
def students(request: Request, q: str = "", user: User = Depends(admin)) -> Response:
    standings = current_standings(engine_of(request), _cfg(request))
    needle = q.strip().casefold()
    if needle:
        standings = [s for s in standings if needle in f"{s.student_id} {s.first_name} {s.last_name} {s.email} "
                     f"{s.matriculation} {s.group}".casefold()]
    return render(request, "admin_students.html", {"standings": standings, "q": q,
                                                    "sheets": [s.id for s in _cfg(request).semester]})


@router.get("/admission")
def admission(request: Request, user: User = Depends(admin)) -> Response:
    standings = current_standings(engine_of(request), _cfg(request))
    return render(request, "admin_admission.html", {"standings": standings, "pending": pending_students(engine_of(request)),
                                                    "counts": Counter(s.status for s in standings)})


def _export(request: Request, writer: Any, suffix: str) -> bytes:
    standings = current_standings(engine_of(request), _cfg(request))
    with tempfile.TemporaryDirectory(prefix="mlph-export-") as tmp:
        return Path(writer(standings, Path(tmp) / f"admission{suffix}")).read_bytes()


@router.get("/admission.csv")
def admission_csv(request: Request, user: User = Depends(admin)) -> Response:
    return Response(_export(request, write_csv, ".csv"), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="admission.csv"'})


@router.get("/admission.xlsx")
def admission_xlsx(request: Request, user: User = Depends(admin)) -> Response:
    return Response(_export(request, write_xlsx, ".xlsx"), media_type=XLSX,
                    headers={"Content-Disposition": 'attachment; filename="admission.xlsx"'})


@router.get("/preview")
def preview_page(request: Request, threshold: str = "", user: User = Depends(admin)) -> Response:
    changes, error = [], ""
    if threshold.strip():
        try:
            changes = preview(engine_of(request), _cfg(request), threshold)
        except GradebookError as exc:
            error = str(exc)
    return render(request, "admin_preview.html", {"threshold": threshold, "changes": changes, "error": error,
                                                  "current": _cfg(request).rule})


@router.get("/report")
def report(request: Request, user: User = Depends(admin)) -> Response:
    """``gradebook.exports.report``'s page as it is (plots inline as data: images), sandboxed: no script runs."""
    from gradebook.exports.report import write_report

    with tempfile.TemporaryDirectory(prefix="mlph-report-") as tmp:
        page = write_report(engine_of(request), _cfg(request), Path(tmp) / "report.html").read_bytes()
    return Response(page, media_type="text/html; charset=utf-8", headers={
        "Content-Security-Policy": "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'"})


@router.get("/audit")
def audit(request: Request, student: str = "", sheet: str = "", author: str = "",
          user: User = Depends(admin)) -> Response:
    rows = audit_rows(engine_of(request), student.strip(), sheet.strip(), author.strip())
    return render(request, "admin_audit.html", {"rows": rows, "student": student, "sheet": sheet, "author": author})


def _accounts_page(request: Request, flash: str = "", error: str = "", status_code: int = 200) -> Response:
    return render(request, "admin_accounts.html", {"accounts": accounts.list_accounts(engine_of(request)),
                                                   "flash": flash, "error": error}, status_code=status_code)


@router.get("/accounts")
def accounts_page(request: Request, user: User = Depends(admin)) -> Response:
    return _accounts_page(request)


@router.post("/accounts/create")
def accounts_create(request: Request, ids: str = Form(""), students: bool = Form(False), staff: bool = Form(False),
                    user: User = Depends(admin)) -> Response:
    created, existing = accounts.create_accounts(engine_of(request), ids.split(), students=students, staff=staff,
                                                 author=user.username)
    return _accounts_page(request, flash=f"{len(created)} account(s) created, {len(existing)} already there.")


@router.post("/accounts/links")
def accounts_links(request: Request, usernames: str = Form(""), user: User = Depends(admin)) -> Response:
    """One-time set-password links as a CSV to mail out (blank: every enabled account without a password)."""
    settings = settings_of(request)
    base = settings.base_url or str(request.base_url).rstrip("/")
    links = accounts.issue_links(engine_of(request), usernames.split() or None, base, settings.link_hours,
                                 user.username)
    out = io.StringIO()
    write_links_csv(links, out, request.app.state.cfg.timezone)
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="password-links.csv"'})


@router.post("/accounts/{username}/disable")
def accounts_disable(request: Request, username: str, enable: bool = Form(False),
                     user: User = Depends(admin)) -> Response:
    if username == user.username and not enable:
        return _accounts_page(request, error="You cannot disable your own account.", status_code=400)
    accounts.disable_account(engine_of(request), username, user.username, disabled=not enable)
    return _accounts_page(request, flash=f"{username}: {'enabled' if enable else 'disabled'}.")
