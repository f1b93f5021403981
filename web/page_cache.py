"""Pages answered from what was rendered before, while nothing they show has changed (the dashboards).

A page that depends only on versions of the gradebook (:mod:`gradebook.store.db`), on the course's stored
state and on time through known deadlines is named by an *entity tag*: a hash of everything it depends on
(:func:`entity_tag`), the viewer's session among it. A request whose ``If-None-Match`` holds the tag is
answered 304 (nothing rendered; a browser's refresh sends it), and a rendered page is kept per process
under its tag (:class:`PageCache`, bounded by bytes, least recently used out first). Any worker computes
the same tag for the same state, so a refresh that lands on another worker is answered 304 too.

Because the tag holds the session's id, one user's tag is never another's (a 304 goes only to the session
that got the page), and a logged-out or revoked session gets no page at all (the session is checked first).

:func:`course_facts`: what every student page reads of the course's stored state (the released and the
anonymous sheets, the stored publications of paper points), read once per ``course_counter``: every write to
those tables moves it (:mod:`gradebook.store.db`).
"""
from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timezone

from fastapi import Request
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from gradebook.course.anonymity import anonymous_sheets
from gradebook.course.config import CourseConfig
from gradebook.course.sheets_state import student_sheets, utc
from gradebook.points.current_publications import current_publications
from gradebook.points.publishing import may_publish_itself
from gradebook.store.models import PaperPublication

FRESH_SECONDS = 600  # a tag holds the 10-minute slot it was made in: a bound for any change with time not modelled
MAX_BYTES = 32 * 1024 * 1024  # rendered pages kept per process


@dataclass(frozen=True)
class CourseFacts:
    """The course's stored state the student pages read, at one ``course_counter``."""

    counter: int
    released: frozenset[str]  # the sheets that exist for students (authored and released)
    anonymous: frozenset[str]  # the sheets graded anonymously
    stored: dict[str, datetime | None]  # the stored publications: sheet -> published at (None: withdrawn)

    def published(self, engine: Engine, cfg: CourseConfig, now: datetime,
                  versions: tuple[int, int]) -> tuple[dict[str, datetime], bool]:
        """(the sheets whose paper points students read, with the time of publication; whether that depends on
        more than the stored rows and the time). It does when an automatic publication could happen now: then
        the publications kept per process are asked (:mod:`gradebook.points.current_publications`: once per
        ``versions``, the gradebook's and the course's as read before, and set of deadlines passed; after a
        tutor's save only the students saved are read), and the answer holds only while nothing is written."""
        if not may_publish_itself(cfg, self.stored, now):
            return {sheet: utc(at) for sheet, at in self.stored.items() if at is not None}, False
        found = current_publications(engine, cfg, now, versions)
        return {sheet: p.published_at for sheet, p in found.items() if p.published_at is not None}, True


_facts: dict[tuple[str, int], CourseFacts] = {}
_facts_lock = threading.Lock()


def course_facts(engine: Engine, cfg: CourseConfig, course_counter: int) -> CourseFacts:
    """:class:`CourseFacts` at ``course_counter`` (read before, e.g. by
    :func:`gradebook.admission.current.student_now`) or newer; read again only when it moved."""
    where = (engine.url.render_as_string(hide_password=False), id(cfg))
    with _facts_lock:
        found = _facts.get(where)
    if found is not None and found.counter >= course_counter:
        return found
    with Session(engine) as session:
        stored = {sheet: at for sheet, at in session.execute(
            select(PaperPublication.sheet, PaperPublication.published_at))}
    found = CourseFacts(course_counter, frozenset(student_sheets(engine, cfg)), frozenset(anonymous_sheets(engine)),
                        stored)
    with _facts_lock:
        if where not in _facts or _facts[where].counter <= course_counter:
            _facts[where] = found
    return found


def time_slot(now: datetime, next_change: datetime | None) -> tuple[int, str]:
    """The time part of a tag: the slot of :data:`FRESH_SECONDS` and the next deadline at which the page
    changes (the same for every request between two deadlines)."""
    return int(utc(now).timestamp()) // FRESH_SECONDS, utc(next_change).isoformat() if next_change else ""


def entity_tag(session_id: str, *parts: object) -> str:
    """A strong entity tag of a page for one session: a hash of the session's id and ``parts`` (their repr)."""
    digest = hashlib.sha256(session_id.encode())
    for part in parts:
        digest.update(b"\x00" + repr(part).encode())
    return f'"{digest.hexdigest()[:40]}"'


def not_modified(request: Request, tag: str) -> bool:
    """Whether the request's ``If-None-Match`` names ``tag`` (weak or strong; ``*`` is never honoured here)."""
    sent = request.headers.get("if-none-match")
    if not sent:
        return False
    return any(t.strip().removeprefix("W/") == tag for t in sent.split(","))


def cache_headers(tag: str) -> dict[str, str]:
    """A page the browser keeps but asks for again each time (with its tag); never kept by a shared cache."""
    return {"ETag": tag, "Cache-Control": "private, no-cache", "Vary": "Cookie"}


class PageCache:
    """Rendered pages by tag, at most ``max_bytes`` of them (least recently used out first); thread-safe."""

    def __init__(self, max_bytes: int = MAX_BYTES) -> None:
        self.max_bytes, self.size = max_bytes, 0
        self._pages: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, tag: str) -> bytes | None:
        with self._lock:
            body = self._pages.get(tag)
            if body is not None:
                self._pages.move_to_end(tag)
            return body

    def put(self, tag: str, body: bytes) -> None:
        if len(body) > self.max_bytes:
            return
        with self._lock:
            old = self._pages.pop(tag, None)
            self.size -= len(old) if old is not None else 0
            self._pages[tag] = body
            self.size += len(body)
            while self.size > self.max_bytes:
                _, dropped = self._pages.popitem(last=False)
                self.size -= len(dropped)

    def __len__(self) -> int:
        return len(self._pages)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)
