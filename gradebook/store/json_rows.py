"""Several tables' rows in one statement: each part a scalar subquery that aggregates its rows into one JSON array
(PostgreSQL's ``json_agg``, SQLite's ``json_group_array``), and the arrays decoded back into rows.

Under load a page's latency grows with its round trips (after each, the request's thread must win its worker's
interpreter lock again); one statement is one round trip and sees one snapshot, so it needs no transaction around it
(:func:`gradebook.store.db.reading`). The tutors' grid (:mod:`gradebook.points.grid_read`) is read this way.
"""
from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func, literal_column, select
from sqlalchemy.sql import Select
from sqlalchemy.sql.elements import Label


def json_rows(dialect: str, name: str, query: Select[Any]) -> Label[Any]:
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
