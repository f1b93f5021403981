"""What any spreadsheet we write may hold, and what an e-mail address on a roster may look like.

:func:`cell` is the one formula guard every writer of a CSV, Excel CSV or XLSX passes each cell through
(admission lists, set-password links, points templates, the web downloads): text that a spreadsheet would
read as a formula or a command (starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return) gets a
leading single quote, as OWASP recommends ("CSV injection"): the name "-Smith" is written ``'-Smith``.
Numbers we wrote pass unchanged: Python numbers, and the text of a number wrapped in :class:`Number`.
"""
from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# name@domain: a letter or digit first (no formula character, no quoting games), a dotted domain
EMAIL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._%+'-]{0,63}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?"
                      r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)+$")


class Number(str):
    """The text of a number we formatted ourselves ("-1.5", "12,5"): passes :func:`cell` unchanged."""


def cell(value: Any) -> Any:
    """``value`` as a spreadsheet cell that can never be a formula (see the module's docstring)."""
    if value is None or isinstance(value, (Number, int, float, Fraction, Decimal, date, datetime)):
        return value
    text = str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def row(values: list[Any]) -> list[Any]:
    return [cell(v) for v in values]


def email_problem(email: str) -> str | None:
    """Why ``email`` is not an address we accept (None: it is)."""
    if len(email) > 254 or not EMAIL_RE.match(email):
        return f"e-mail {email!r} is not an address of the form name@domain.tld"
    return None
