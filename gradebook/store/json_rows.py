"""Several tables' rows in one statement: each part a scalar subquery that aggregates its rows into one JSON array
(PostgreSQL's ``json_agg``, SQLite's ``json_group_array``), and the arrays decoded back into rows.

Under load a page's latency grows with its round trips (after each, the request's thread must win its worker's
interpreter lock again); one statement is one round trip and sees one snapshot, so it needs no transaction around it
(:func:`gradebook.store.db.reading`). The tutors' grid (:mod:`gradebook.points.grid_read`) and a student's rows
(:mod:`gradebook.admission.student_read`) are read this way.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Boolean, DateTime, func, literal_column, select
from sqlalchemy.sql import CompoundSelect, Select
from sqlalchemy.sql.elements import Label


def json_rows(dialect: str, name: str, query: Select[Any] | CompoundSelect) -> Label[Any]:
    """``query``'s rows as one JSON array of arrays, labelled ``name``."""
    columns = list(query.subquery().c)
    rows: Any
    if dialect == "postgresql":
        rows = func.coalesce(func.json_agg(func.json_build_array(*columns)), literal_column("'[]'::json"))
    else:
        rows = func.json_group_array(func.json_array(*columns))
    return select(rows).scalar_subquery().label(name)


def decoded(value: Any) -> list[list[Any]]:
    """A part's rows: psycopg hands back JSON decoded, SQLite as text."""
    rows = json.loads(value) if isinstance(value, (str, bytes)) else value
    return list(rows or [])


def when(value: Any) -> datetime | None:
    """A time as the JSON carries it (ISO 8601), in UTC (SQLite's naive times are UTC)."""
    if not value:
        return None
    at = datetime.fromisoformat(value)
    return at.replace(tzinfo=timezone.utc) if at.tzinfo is None else at.astimezone(timezone.utc)


def flag(value: Any) -> bool | None:
    return None if value is None else bool(value)


def _same(value: Any) -> Any:
    return value


def converters(query: Select[Any] | CompoundSelect) -> tuple[Callable[[Any], Any], ...]:
    """For each column of ``query``, what makes the JSON's value the column's Python value again: times
    (:func:`when`) and flags (:func:`flag`); numbers and strings are JSON's own."""
    out: list[Callable[[Any], Any]] = []
    for column in query.selected_columns:
        kind = column.type
        out.append(when if isinstance(kind, DateTime) else flag if isinstance(kind, Boolean) else _same)
    return tuple(out)


def typed(convert: tuple[Callable[[Any], Any], ...], rows: list[list[Any]]) -> list[tuple[Any, ...]]:
    """``rows`` decoded with :func:`converters`' functions, column by column."""
    return [tuple(f(v) for f, v in zip(convert, row)) for row in rows]
