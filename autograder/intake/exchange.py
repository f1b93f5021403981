"""Collecting from nbgrader's filesystem exchange, without nbgrader's copy (which follows links, as root).

The exchange's ``inbound`` directory is writable by every student (nbgrader's design). An entry is a
directory ``{student}+{sheet}+{timestamp}+{random}`` that its author made; we read it with
:func:`~autograder.intake.safe.read_tree` (no links, no special files, bounded), check who made it
(``[intake] identity``), take the server's time of receipt (the entry's latest inode change: a student can
make it later, never earlier; ``timestamp.txt`` is the student's clock and is ignored), and keep the newest
entry per student. Every entry's fate is recorded in the gradebook's ``handin`` table; a bad entry is
that student's ``invalid`` hand-in and never stops or skips anyone else.
"""
from __future__ import annotations

import logging
import os
import pwd
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import Engine

from gradebook.course.config import CourseConfig
from gradebook.points.handins import ACCEPTED, HELD, INVALID, REFUSED, HandinRecord, logins, record_handins, roster_ids, seen_entries
from gradebook.people.roster import ID_RE

from autograder.intake.safe import IntakeRefused, TreeLimits, read_tree, tree_ctime
from autograder.intake.store import digest, select_files, source_grade_ids, write_submission

log = logging.getLogger(__name__)
COURSE_ID = "mlph"
ReceiptClock = Callable[[Path], datetime]


@dataclass
class CollectReport:
    sheet: str
    accepted: list[str] = field(default_factory=list)
    invalid: list[tuple[str, str]] = field(default_factory=list)  # (student, reason)
    held: list[tuple[str, str]] = field(default_factory=list)  # (student, reason): not on the roster
    refused: list[tuple[str, str]] = field(default_factory=list)  # (entry, reason): not the student's
    unchanged: int = 0

    def __str__(self) -> str:
        return (f"{self.sheet}: {len(self.accepted)} new hand-in(s), {len(self.invalid)} invalid, "
                f"{len(self.held)} held (not on the roster), {len(self.refused)} refused, {self.unchanged} already collected")


def server_clock(entry: Path) -> datetime:
    return datetime.fromtimestamp(tree_ctime(entry), timezone.utc)


def _owner_ok(entry: Path, student: str, known_logins: dict[str, str]) -> str | None:
    """None when the entry belongs to ``student`` (its owner's login is the id, or maps to it); else why not."""
    uid = os.lstat(entry).st_uid
    try:
        login = pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"the entry belongs to uid {uid}, which has no login"
    if login == student or known_logins.get(login) == student:
        return None
    return f"the entry names {student!r} but was made by {login!r}"


def _entries(cfg: CourseConfig, sheet: str) -> list[tuple[Path, str]]:
    inbound = cfg.exchange_dir / COURSE_ID / "inbound"
    if not inbound.is_dir():
        return []
    found = []
    with os.scandir(inbound) as it:
        for e in it:
            parts = e.name.split("+")
            if len(parts) == 4 and parts[1] == sheet:
                found.append((inbound / e.name, parts[0]))
    return sorted(found)


def _judge(cfg: CourseConfig, entry: Path, student: str, roster: set[str] | None, known_logins: dict[str, str],
           admit: frozenset[str], clock: ReceiptClock) -> tuple[HandinRecord, dict[str, bytes] | None]:
    """One entry → its record (and its checked files when accepted); never raises for the entry's content."""
    manifest = cfg.manifest(entry.name.split("+")[1])
    base = HandinRecord(manifest.id, student, "notebook", "exchange", datetime.now(timezone.utc), REFUSED,
                        entry=entry.name)
    try:
        if entry.is_symlink() or not entry.is_dir():
            return replace(base, reason="the entry is not a directory"), None
        base = replace(base, received_at=clock(entry))
        if not ID_RE.match(student):
            return replace(base, reason="the entry's student id is not a valid id"), None
        if cfg.intake_identity == "owner":
            why = _owner_ok(entry, student, known_logins)
            if why:
                log.warning("exchange entry %s refused: %s", entry.name, why)
                return replace(base, reason=why), None
        if roster is not None and student not in roster and student not in admit:
            return replace(base, status=HELD, reason=f"{student!r} is not on the roster (admit with `mlph collect "
                                                     f"{manifest.id} --admit {student}`)"), None
        kept, notes = select_files(read_tree(entry, TreeLimits()), manifest, source_grade_ids(manifest))
        return replace(base, status=ACCEPTED, reason="; ".join(notes), sha256=digest(kept),
                       size=sum(len(v) for v in kept.values()), original_name=manifest.notebook), kept
    except IntakeRefused as exc:
        return replace(base, status=INVALID, reason=str(exc)), None
    except OSError as exc:  # vanished or unreadable meanwhile
        return replace(base, status=INVALID, reason=f"the entry could not be read ({exc.strerror})"), None


def collect(cfg: CourseConfig, engine: Engine, sheet: str, *, admit: frozenset[str] = frozenset(),
            clock: ReceiptClock = server_clock) -> CollectReport:
    """Take every new entry of ``sheet`` from the exchange (see the module doc); the report."""
    cfg.manifest(sheet)  # an unknown sheet is an error here, not an empty collection
    report = CollectReport(sheet)
    done = {e for e, _ in seen_entries(engine, sheet)}
    roster, known_logins = roster_ids(engine), logins(engine)
    judged: list[tuple[HandinRecord, dict[str, bytes] | None]] = []
    for entry, student in _entries(cfg, sheet):
        if entry.name in done:
            report.unchanged += 1
            continue
        judged.append(_judge(cfg, entry, student, roster, known_logins, admit, clock))
    newest: dict[str, tuple[HandinRecord, dict[str, bytes] | None]] = {}
    for item in sorted(judged, key=lambda j: j[0].received_at):
        rec = item[0]
        if rec.status in (ACCEPTED, INVALID):
            newest[rec.student_id] = item
        elif rec.status == HELD:
            report.held.append((rec.student_id, rec.reason))
        else:
            report.refused.append((rec.entry or "", rec.reason))
    for student, (rec, files) in newest.items():
        if files is not None:
            write_submission(cfg.data_dir, sheet, student, files)
            report.accepted.append(student)
        else:
            report.invalid.append((student, rec.reason))
    record_handins(engine, [j[0] for j in judged])
    return report
