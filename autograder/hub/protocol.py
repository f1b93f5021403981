"""What the exchange (students' side) and ``mlph serve`` (service side) agree on: paths, fields, timestamps.

Every path is relative to the service's URL (``<hub>/services/<name>/`` behind the Hub's proxy). The
student is never named in a request: the service takes them from the Hub's answer for the token.
"""
from __future__ import annotations

from datetime import datetime, timezone

API = "api/exchange/v1"
SHEETS = f"{API}/sheets"  # GET: the released sheets
SUBMISSIONS = f"{API}/submissions"  # GET: the caller's notebook hand-ins (and whether feedback is there)


def sheet_files(sheet: str) -> str:
    """GET: the released student version of ``sheet`` as a zip."""
    return f"{SHEETS}/{sheet}/files"


def sheet_submissions(sheet: str) -> str:
    """POST (multipart, field ``file``): hand in the notebook."""
    return f"{SHEETS}/{sheet}/submissions"


def sheet_feedback(sheet: str) -> str:
    """GET: the feedback of the caller's (or their team's) newest graded hand-in."""
    return f"{SHEETS}/{sheet}/feedback"


TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S.%f UTC"  # nbgrader's default format, always in UTC
MAX_ARCHIVE_BYTES = 50_000_000  # a released sheet, as the exchange accepts it


def timestamp(when: datetime) -> str:
    """The server's time of receipt as nbgrader writes it (``feedback/<timestamp>/`` on the student's side)."""
    when = when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when.astimezone(timezone.utc)
    return when.strftime(TIMESTAMP_FORMAT)
