"""Which pages of a paper hand-in answer which paper task (``page_tag``): the student tags them until their
deadline, the tutor of their group or an admin corrects them afterwards. A page may serve several tasks; a
task without tags shows every page. Every change is one audited event per task (old and new pages).

Pages are stored sorted as ``"1,2,3,5"`` and shown as people write them: ``"1-3, 5"``.
"""
from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from gradebook.errors import InputError
from gradebook.points.handins import extension_of
from gradebook.course.manifest import Manifest
from gradebook.store.db import atomic
from gradebook.store.models import AuditLog, Handin, PageTag, TeamMember

MAX_PAGES = 60  # pages rendered and taggable per hand-in


@dataclass(frozen=True)
class TagOwner:
    """The hand-in a tag belongs to: its id, sheet and the student who handed it in."""
    handin_id: int
    sheet: str
    student: str


def shown_pages(pages: Collection[int]) -> str:
    """{1, 2, 3, 5} → "1-3, 5"."""
    out: list[str] = []
    run: list[int] = []
    for p in sorted(pages):
        if run and p == run[-1] + 1:
            run.append(p)
            continue
        if run:
            out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
        run = [p]
    if run:
        out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
    return ", ".join(out)


def tags_of(engine: Engine, handin_id: int) -> dict[str, list[int]]:
    """task → its pages (sorted) of one hand-in; tasks without tags are absent."""
    with Session(engine) as session:
        rows = session.execute(select(PageTag.task, PageTag.pages).where(PageTag.handin_id == handin_id)).all()
    return {task: sorted(int(p) for p in pages.split(",") if p) for task, pages in rows}


def latest_paper(engine: Engine, sheet: str, student: str) -> Handin | None:
    """The newest accepted paper hand-in of ``student`` or a teammate on ``sheet``."""
    with Session(engine) as session:
        team = session.execute(select(TeamMember.team).where(TeamMember.sheet == sheet,
                                                             TeamMember.student_id == student)).scalar_one_or_none()
        members = [student] if team is None else list(session.execute(select(TeamMember.student_id).where(
            TeamMember.sheet == sheet, TeamMember.team == team)).scalars())
        return session.execute(select(Handin).where(Handin.sheet == sheet, Handin.student_id.in_(members),
                                                    Handin.kind == "paper", Handin.status == "accepted")
                               .order_by(Handin.received_at.desc(), Handin.id.desc()).limit(1)).scalar_one_or_none()


def tag_deadline(engine: Engine, manifest: Manifest, student: str) -> datetime:
    """Until when ``student`` tags their pages: their deadline (the sheet's, or their extension)."""
    with Session(engine) as session:
        until = extension_of(session, manifest.id, student)
    deadline = until or manifest.due
    return deadline.replace(tzinfo=timezone.utc) if deadline.tzinfo is None else deadline


def student_may_tag(engine: Engine, manifest: Manifest, student: str, now: datetime | None = None) -> bool:
    """A student tags their pages until their deadline (the sheet's, or their extension)."""
    return (now or datetime.now(timezone.utc)) <= tag_deadline(engine, manifest, student)


def set_tags(engine: Engine, owner: TagOwner, manifest: Manifest, tags: Mapping[str, Collection[int]], author: str,
             page_count: int, reason: str | None = None) -> int:
    """Replace the tags of ``owner``'s hand-in with ``tags`` (task → pages; a task left out or with no pages
    is untagged); audited per changed task. The number of tasks whose pages changed."""
    known = {t.id for t in manifest.paper_tasks}
    where = f"{owner.sheet}, {owner.student}"
    for task, pages in tags.items():
        if task not in known:
            raise InputError(f"{where}: {owner.sheet} has no paper task {task[:40]!r}")
        if any(not 1 <= p <= min(page_count, MAX_PAGES) for p in pages):
            raise InputError(f"{where}, task {task}: pages must be between 1 and {min(page_count, MAX_PAGES)}")
    now = datetime.now(timezone.utc)
    changed = 0
    with atomic(engine) as session:
        rows = {r.task: r for r in session.execute(select(PageTag).where(PageTag.handin_id == owner.handin_id)
                                                   .with_for_update()).scalars()}
        for task in sorted(known):
            new = ",".join(str(p) for p in sorted(set(tags.get(task, ())))) or None
            row = rows.get(task)
            old = row.pages if row is not None else None
            if old == new:
                continue
            if row is not None and new is None:
                session.delete(row)
            elif row is not None and new is not None:
                row.pages, row.tagged_by, row.tagged_at = new, author, now
            elif new is not None:
                session.add(PageTag(handin_id=owner.handin_id, task=task, pages=new, tagged_by=author, tagged_at=now))
            session.add(AuditLog(at=now, author=author, entity="page_tags",
                                 key=f"{owner.sheet}/{owner.student}/{task}/handin {owner.handin_id}",
                                 old_value=old, new_value=new, reason=reason))
            changed += 1
    return changed
