"""The set-password links as a CSV to mail out (``mlph accounts links`` and the admins' web page):
every cell through the formula guard, as in every other export."""
from __future__ import annotations

import csv
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import TextIO
from zoneinfo import ZoneInfo

from gradebook.course.spreadsheet import row
from gradebook.people.accounts import Link

HEADER = ["username", "name", "email", "link", "expires"]


def write_links_csv(links: Iterable[Link], out: TextIO, tz: str) -> int:
    """Write the header and one row per link to ``out``; the number of links. The expiry reads in the
    course's time zone ``tz``, with the zone's name, as every time a person reads."""
    zone = ZoneInfo(tz)
    w = csv.writer(out)
    w.writerow(HEADER)
    n = 0
    for link in links:
        w.writerow(row([link.username, link.name, link.email, link.url, _local(link.expires_at, zone)]))
        n += 1
    return n


def _local(when: datetime, zone: ZoneInfo) -> str:
    when = when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when
    return f"{when.astimezone(zone):%Y-%m-%d %H:%M %Z}"
