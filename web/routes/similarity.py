"""The admins' similarity page: the report of `mlph similarity SHEET` (pairs of hand-ins with unusually similar
answer cells, side by side), made on request from the hand-ins in the course data directory. Admins only:
it shows student code (escaped by the report's own autoescaping template, no script)."""
from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response
from markupsafe import Markup

from autograder.similarity.report import build_report, render_html
from gradebook.course.config import CourseConfig

from web.security import User, require_role
from web.templating import render

router = APIRouter(prefix="/admin/similarity")
admin = require_role("admin")


def _cfg(request: Request) -> CourseConfig:
    return request.app.state.cfg  # type: ignore[no-any-return]


@router.get("")
def sheets(request: Request, user: User = Depends(admin)) -> Response:
    cfg = _cfg(request)
    return render(request, "admin_similarity.html", {"sheets": cfg.authored_sheets(), "sheet": None, "report": None})


@router.get("/{sheet}")
def sheet_report(request: Request, sheet: str, user: User = Depends(admin)) -> Response:
    cfg = _cfg(request)
    if sheet not in cfg.authored_sheets():
        raise HTTPException(404, "No such sheet.")
    report = build_report(cfg, sheet)
    return render(request, "admin_similarity.html", {"sheets": cfg.authored_sheets(), "sheet": sheet,
                                                     "report": Markup(render_html(report, fragment=True))})
