"""The set-password links as a CSV to mail out (``mlph accounts links`` and the admins' web page):
every cell through the formula guard, as in every other export."""
from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import TextIO

from gradebook.course.spreadsheet import row
from gradebook.people.accounts import Link

HEADER = ["username", "name", "email", "link", "expires_utc"]


def write_links_csv(links: Iterable[Link], out: TextIO) -> int:
    """Write the header and one row per link to ``out``; the number of links."""
    w = csv.writer(out)
    w.writerow(HEADER)
    n = 0
    for link in links:
        w.writerow(row([link.username, link.name, link.email, link.url, f"{link.expires_at:%Y-%m-%d %H:%M}"]))
        n += 1
    return n
