"""Helpers every gradebook command shares: the console, the course's engine, the author, times in the
course's time zone, and the hint about ids left off the roster."""
from __future__ import annotations

import getpass
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import click
from rich.console import Console
from sqlalchemy import Engine

from gradebook.course.config import CourseConfig
from gradebook.errors import InputError


def console() -> Console:
    """A console made per command, so that it sees the terminal (or $COLUMNS) of this run."""
    return Console()


def engine_of(cfg: CourseConfig, create: bool = False) -> Engine:
    from gradebook.course.info import course_engine

    return course_engine(cfg, create=create)


def author_of(author: str | None) -> str:
    return author or getpass.getuser()


def local(when: datetime | None, cfg: CourseConfig, seconds: bool = False) -> str:
    """A time in the course's time zone."""
    if when is None:
        return ""
    when = when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when
    return f"{when.astimezone(ZoneInfo(cfg.timezone)):%Y-%m-%d %H:%M{':%S' if seconds else ''} %Z}"


def parse_time(text: str | None, cfg: CourseConfig, option: str = "--as-of") -> datetime:
    """An ISO date/time; without an offset it is read in the course's time zone. None: now."""
    if not text:
        return datetime.now(timezone.utc)
    try:
        when = datetime.fromisoformat(text)
    except ValueError as exc:
        raise InputError(f"{option} {text!r} is not an ISO date/time (e.g. 2026-11-24T10:00)") from exc
    return when if when.tzinfo else when.replace(tzinfo=ZoneInfo(cfg.timezone))


def left_out_hint(engine: Engine) -> None:
    """Say how many ids the gradebook has that the roster lacks (they are left out of every list)."""
    from gradebook.admission.rule import off_roster

    off = off_roster(engine)
    if off:
        shown = ", ".join(off[:5]) + (" …" if len(off) > 5 else "")
        click.echo(f"{len(off)} id(s) not on the roster left out ({shown}): "
                   "see `mlph students list --off-roster`; import them with `mlph students import` to count them")
