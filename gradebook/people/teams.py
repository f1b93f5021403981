"""Teams per sheet: students who hand in together; a student is in at most one team of a sheet."""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import Engine, delete, select, tuple_
from sqlalchemy.orm import Session

from gradebook.store import nbgrader_tables as nt
from gradebook.store.db import atomic, plain_rows
from gradebook.errors import InputError
from gradebook.course.manifest import Manifest
from gradebook.store.models import AuditLog, TeamMember
from gradebook.course.tables import read_rows


def import_teams(engine: Engine, manifest: Manifest, path: Path, author: str) -> int:
    """Replace the teams of ``manifest``'s sheet by those in CSV/XLSX ``student_id,team``; the count."""
    rows = read_rows(path, ["student_id", "team"])
    errors: list[str] = []
    seen: dict[str, tuple[int, str]] = {}
    with atomic(engine) as session:
        known = set(session.execute(select(nt.student.c.id)).scalars())
        for r in rows:
            sid, team = r.get("student_id"), r.get("team")
            if sid not in known:
                errors.append(f"{path}:{r.line}: unknown student {sid!r} (not in the roster)")
            elif not team:
                errors.append(f"{path}:{r.line}: student {sid!r}: team is empty")
            elif sid in seen:
                line, other = seen[sid]
                errors.append(f"{path}:{r.line}: student {sid!r} is already in team {other!r} of {manifest.id} (row {line})")
            else:
                seen[sid] = (r.line, team)
        if errors:
            raise InputError(f"{path}: nothing imported, {len(errors)} bad row(s):\n" + "\n".join(errors))
        session.execute(delete(TeamMember).where(TeamMember.sheet == manifest.id))
        now = datetime.now(timezone.utc)
        for sid, (_, team) in seen.items():
            session.add(TeamMember(sheet=manifest.id, team=team, student_id=sid))
        session.add(AuditLog(at=now, author=author, entity="team_member", key=manifest.id, old_value=None,
                             new_value=f"{len({t for _, t in seen.values()})} teams", reason=f"import of {path.name}"))
    return len({t for _, t in seen.values()})


def team_of(engine: Engine, sheet: str) -> dict[str, str]:
    """student → team, for the teams of ``sheet``."""
    with engine.connect() as conn:
        return {sid: team for sid, team in conn.execute(
            select(TeamMember.student_id, TeamMember.team).where(TeamMember.sheet == sheet))}


def teams_of(session: Session, only: Collection[str] | None = None,
             sheets: Collection[str] | None = None) -> dict[tuple[str, str], list[str]]:
    """(sheet, team) → all its members, in the order they were stored; in one statement.

    ``only``: the teams that have one of these students as a member (their other members included);
    ``sheets``: the teams of these sheets."""
    query = select(TeamMember.sheet, TeamMember.team, TeamMember.student_id).order_by(TeamMember.id)
    if sheets is not None:
        query = query.where(TeamMember.sheet.in_(sorted(sheets)))
    if only is not None:
        theirs = select(TeamMember.sheet, TeamMember.team).where(TeamMember.student_id.in_(sorted(only)))
        if sheets is not None:
            theirs = theirs.where(TeamMember.sheet.in_(sorted(sheets)))
        query = query.where(tuple_(TeamMember.sheet, TeamMember.team).in_(theirs))
    teams: dict[tuple[str, str], list[str]] = defaultdict(list)
    for sheet, team, sid in plain_rows(session, query):
        teams[(sheet, team)].append(sid)
    return dict(teams)
