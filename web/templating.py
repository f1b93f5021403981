"""Jinja2 (autoescape on for every template) and :func:`render`, which every page goes through."""
from __future__ import annotations

import functools
from datetime import datetime, timezone
from fractions import Fraction
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse

from gradebook.exports.admission_list import percent_text
from gradebook.exports.lists import audit_text
from gradebook.points.paper import fmt

from web.security import set_pre_csrf_cookie, template_globals

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"


@functools.lru_cache(maxsize=4096, typed=True)  # a grid shows the same few values hundreds of times
def points_text(value: Fraction | float | int | str | None) -> str:
    if value is None or value == "":
        return "–"
    return fmt(Fraction(value) if not isinstance(value, float) else Fraction(value).limit_denominator(10**6))


def make_env(tz: str) -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATE_DIR), autoescape=True,
                             trim_blocks=True, lstrip_blocks=True,
                             auto_reload=False)  # templates are compiled once per process, not checked per page
    zone = ZoneInfo(tz)

    def local(when: datetime | str | None, pattern: str = "%a %d %b %Y, %H:%M") -> str:
        """A time in the course's zone (a naive time is UTC, as stored); an ISO text (a grading result's
        stamp) is read first, and shown as it is if it is none."""
        if when is None or when == "":
            return "–"
        if isinstance(when, str):
            try:
                when = datetime.fromisoformat(when)
            except ValueError:
                return str(when)
        when = when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when
        return when.astimezone(zone).strftime(pattern + " %Z")

    env.filters.update(points=points_text, local=local, percent=lambda f: percent_text(Fraction(f)),
                       audit_value=audit_text)
    env.globals["timezone"] = tz
    return env


def render(request: Request, template: str, context: dict[str, Any] | None = None, status_code: int = 200) -> HTMLResponse:
    """A page: ``template`` with ``context`` plus ``user``, ``csrf_token``, ``course`` and ``request``."""
    env: jinja2.Environment = request.app.state.jinja
    values = {"request": request, "course": request.app.state.cfg.name, **template_globals(request), **(context or {})}
    response = HTMLResponse(env.get_template(template).render(values), status_code=status_code)
    set_pre_csrf_cookie(request, response)
    return response
