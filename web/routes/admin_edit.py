"""The admins' pages that change the course, each through the gradebook's own function (the CLI's),
audited with the logged-in admin as author: roster and staff, groups and tutors, teams, extensions,
overrides, manual scores, and regrading one submission."""
from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import Response
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from gradebook.points.autograde_store import mark_for_regrade
from gradebook.course.config import CourseConfig
from gradebook.errors import GradebookError, InputError
from gradebook.people.groups import add_staff, assign_students, import_groups
from gradebook.points.manual import set_extension, set_manual_score
from gradebook.store.models import AdmissionOverride, Extension, GroupMembership, Person, TutorialGroup
from gradebook.admission.overrides import revoke_override, set_override
from gradebook.people.roster import import_students
from gradebook.course.tables import parse_decimal
from gradebook.people.teams import import_teams

from web.admin_data import run_import
from web.security import User, engine_of, require_role, settings_of
from web.templating import render

router = APIRouter(prefix="/admin")
admin = require_role("admin")


def _cfg(request: Request) -> CourseConfig:
    return request.app.state.cfg  # type: ignore[no-any-return]


def _groups_context(engine: Engine) -> dict[str, Any]:
    with Session(engine) as session:
        sizes = dict(session.execute(select(GroupMembership.group_id, func.count()).where(
            GroupMembership.valid_to.is_(None)).group_by(GroupMembership.group_id)).all())
        groups = [(g, sizes.get(g.id, 0)) for g in session.execute(select(TutorialGroup).order_by(TutorialGroup.id)).scalars()]
        staff = list(session.execute(select(Person).order_by(Person.role, Person.id)).scalars())
    return {"groups": groups, "staff": staff}


def _page(request: Request, template: str, context: dict[str, Any], flash: str = "", error: str = "") -> Response:
    return render(request, template, {**context, "flash": flash, "error": error,
                                      "sheets": [s.id for s in _cfg(request).semester if s.manifest is not None]},
                  status_code=400 if error else 200)


def _do(request: Request, template: str, context_of: Any, action: Any) -> Response:
    """Run ``action()`` (a gradebook change); the page again with its report, or with the error (400)."""
    try:
        flash, error = str(action()), ""
    except GradebookError as exc:
        flash, error = "", str(exc)
    return _page(request, template, context_of(), flash, error)


@router.get("/groups")
def groups_page(request: Request, user: User = Depends(admin)) -> Response:
    return _page(request, "admin_groups.html", _groups_context(engine_of(request)))


def _upload_action(request: Request, kind: str, file: UploadFile, author: str, sheet: str) -> Any:
    engine, limit = engine_of(request), settings_of(request).max_table_bytes
    if kind == "roster":
        return lambda: f"roster: {run_import(file, limit, lambda p: import_students(engine, p))}"
    if kind == "groups":
        return lambda: f"groups: {run_import(file, limit, lambda p: import_groups(engine, p))}"
    if kind == "assign":
        return lambda: f"memberships: {run_import(file, limit, lambda p: assign_students(engine, p, author))}"
    if kind == "teams":
        manifest = _cfg(request).manifest(sheet)
        return lambda: f"{run_import(file, limit, lambda p: import_teams(engine, manifest, p, author))} team(s) for {sheet}"
    raise HTTPException(400, f"unknown upload {kind!r}")


@router.post("/upload/{kind}")
def upload(request: Request, kind: str, file: UploadFile = File(), sheet: str = Form(""),
           user: User = Depends(admin)) -> Response:
    """Roster (``roster``), groups and tutors (``groups``), memberships (``assign``), a sheet's teams
    (``teams``): CSV or XLSX, the same checks and row-level errors as the CLI; nothing half-imported."""
    try:
        action = _upload_action(request, kind, file, user.username, sheet)
    except GradebookError as exc:
        return _page(request, "admin_groups.html", _groups_context(engine_of(request)), error=str(exc))
    return _do(request, "admin_groups.html", lambda: _groups_context(engine_of(request)), action)


@router.post("/staff")
def staff_add(request: Request, person_id: str = Form(max_length=128), name: str = Form(max_length=256),
              email: str = Form("", max_length=256), role: str = Form(), user: User = Depends(admin)) -> Response:
    engine = engine_of(request)

    def action() -> str:
        add_staff(engine, person_id.strip(), name.strip(), email.strip() or None, role, user.username)
        return f"{person_id}: {role}"

    return _do(request, "admin_groups.html", lambda: _groups_context(engine), action)


def _changes_context(engine: Engine) -> dict[str, Any]:
    with Session(engine) as session:
        overrides = list(session.execute(select(AdmissionOverride).where(AdmissionOverride.revoked_at.is_(None))
                                         .order_by(AdmissionOverride.student_id)).scalars())
        extensions = list(session.execute(select(Extension).order_by(Extension.sheet, Extension.student_id)).scalars())
    return {"overrides": overrides, "extensions": extensions}


@router.get("/changes")
def changes_page(request: Request, user: User = Depends(admin)) -> Response:
    return _page(request, "admin_changes.html", _changes_context(engine_of(request)))


def _changes(request: Request, action: Any) -> Response:
    return _do(request, "admin_changes.html", lambda: _changes_context(engine_of(request)), action)


@router.post("/extension")
def extension(request: Request, sheet: str = Form(), student: str = Form(), until: str = Form(),
              reason: str = Form(max_length=2000), user: User = Depends(admin)) -> Response:
    cfg = _cfg(request)

    def action() -> str:
        cfg.manifest(sheet)
        try:
            when = datetime.fromisoformat(until)
        except ValueError as exc:
            raise InputError(f"{until!r} is not a date and time") from exc
        when = when if when.tzinfo else when.replace(tzinfo=ZoneInfo(cfg.timezone))
        set_extension(engine_of(request), sheet, student.strip(), when, user.username, reason, cfg=cfg)
        return f"{sheet}, {student}: due {when:%Y-%m-%d %H:%M %Z}"

    return _changes(request, action)


@router.post("/override")
def override(request: Request, student: str = Form(), status: str = Form(), reason: str = Form(""),
             replace: str = Form(""), user: User = Depends(admin)) -> Response:
    def action() -> str:
        if status == "revoke":
            revoke_override(engine_of(request), student.strip(), user.username, reason or "revoked on the web page")
            return f"{student}: override revoked"
        old = set_override(engine_of(request), student.strip(), status, reason, user.username, replace=bool(replace))
        return f"{student}: {status} ({reason})" + (f", replacing {old}" if old else "")

    return _changes(request, action)


@router.post("/manual-score")
def manual_score(request: Request, sheet: str = Form(), student: str = Form(), cell: str = Form(),
                 points: str = Form(), reason: str = Form(""), user: User = Depends(admin)) -> Response:
    def action() -> str:
        _cfg(request).manifest(sheet)
        try:
            value = None if points.strip() == "clear" else parse_decimal(points)
        except ValueError as exc:
            raise InputError(f"points {points!r} is not a number (or 'clear')") from exc
        set_manual_score(engine_of(request), sheet, student.strip(), cell.strip(), value, user.username, reason)
        return f"{sheet}/{cell}, {student}: {points}"

    return _changes(request, action)


@router.post("/regrade")
def regrade(request: Request, sheet: str = Form(), student: str = Form(), reason: str = Form(""),
            user: User = Depends(admin)) -> Response:
    def action() -> str:
        mark_for_regrade(engine_of(request), sheet, student.strip(), user.username, reason)
        return f"{sheet}, {student}: marked for regrading (the autograder's next pass grades it)"

    return _changes(request, action)
