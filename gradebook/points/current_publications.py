"""The publishing states kept per process (the admin overview's list of who is waiting, and the students'
dashboards while a sheet could publish itself), brought up to date after each change of the gradebook by reading
only what changed: per-student writes (``student_version``) patch the waiting lists; anything else of the course
(a publication, a team, a sheet's state) or a deadline passing computes them again. Every process (each uvicorn
worker) sees another's write at its next request (:mod:`gradebook.store.db`: the version is read first)."""
from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from gradebook.course.config import CourseConfig, SemesterSheet
from gradebook.course.sheets_state import utc
from gradebook.people.teams import teams_of
from gradebook.points.publishing import Publication, publications, waiting_students
from gradebook.store.db import student_versions
from gradebook.store.models import StudentVersion


@dataclass(frozen=True)
class _KeptPublications:
    """The publishing states (with who is waiting) as computed at one version of the gradebook."""

    version: int  # gradebook_version, read before the rows
    course: int  # its course_counter then
    passed: tuple[str, ...]  # the sheets whose deadline had passed
    found: dict[str, Publication]

    def waiting(self) -> dict[str, list[str]]:
        """Who waits, per sheet not published (the sheets whose waiting lists were computed)."""
        return {sheet: list(p.waiting) for sheet, p in self.found.items() if p.published_at is None}


_publications: dict[tuple[str, int], _KeptPublications] = {}
_publications_lock = threading.Lock()
MAX_PATCHED = 200  # students read again to bring the waiting lists up to date; more: all are read again


def current_publications(engine: Engine, cfg: CourseConfig, now: datetime | None = None,
                         versions: tuple[int, int] | None = None) -> dict[str, Publication]:
    """:func:`gradebook.points.publishing.publications` with who is waiting (``detail``), computed once per version
    of the gradebook (read before the rows: :mod:`gradebook.store.db`) and set of deadlines passed, the only
    ways it changes; every worker sees another's write at its next request. After writes to some students' rows
    only (the course's version unchanged: no publication, team or sheet changed), the waiting lists are brought
    up to date by reading those students (and their teams) alone. ``versions``: (the gradebook's version, the
    course's) as the caller read them before anything else of this request (else they are read here). Treat it
    as read-only."""
    now = utc(now or datetime.now(timezone.utc))
    version, course = versions if versions is not None else student_versions(engine, ())[:2]
    passed = tuple(sem.id for sem in cfg.semester if utc(sem.due) <= now)
    where = (engine.url.render_as_string(hide_password=False), id(cfg))
    with _publications_lock:
        kept = _publications.get(where)
    if kept is not None and kept.passed == passed and kept.version >= version:
        return kept.found  # computed at this version or a newer one (by another request of this process)
    patch = kept is not None and (kept.course, kept.passed) == (course, passed) and kept.version < version
    waiting_of = functools.partial(_waiting_since, kept) if patch and kept is not None else None
    # one that records an automatic publication moves the course's version: the next request reads everything
    found = publications(engine, cfg, now, detail=True, waiting_of=waiting_of)
    with _publications_lock:
        _publications[where] = _KeptPublications(version, course, passed, found)
    return found


def _waiting_since(kept: _KeptPublications, session: Session, cfg: CourseConfig,
                   sems: list[SemesterSheet]) -> dict[str, list[str]]:
    """The waiting lists of ``sems`` now: ``kept``'s, with the students written since (``student_version``)
    and every member of their teams read and decided again; all read again where that is not the way."""
    before = kept.waiting()
    changed = set(session.execute(select(StudentVersion.student_id)
                                  .where(StudentVersion.counter > kept.version)).scalars())
    if any(sem.id not in before for sem in sems) or len(changed) > MAX_PATCHED:
        return waiting_students(session, cfg, sems)
    if not changed:
        return {sem.id: before[sem.id] for sem in sems}
    ids = changed.union(*teams_of(session, changed).values())
    fresh = waiting_students(session, cfg, sems, only=ids)
    return {sem.id: sorted(set(before[sem.id]) - ids | set(fresh.get(sem.id, ()))) for sem in sems}
