"""Collecting from nbgrader's filesystem exchange, without nbgrader's copy (which follows links, as root).

The exchange's ``inbound`` directory is writable by every student (nbgrader's design). An entry is a
directory ``{student}+{sheet}+{timestamp}+{random}`` that its author made; we read it with
:func:`~autograder.intake.safe.read_tree` (no links, no special files, bounded), check who made it
(``[intake] identity``), take the server's time of receipt (the entry's latest inode change, taken after its
files were read: a student can make it later, never earlier than a byte we grade; ``timestamp.txt`` is the
student's clock and is ignored), and keep the newest entry per student (by that time). Every entry's fate is
recorded in the gradebook's ``handin`` table, once; a bad entry (whatever reading or parsing it raises) is that
student's ``invalid`` hand-in and never stops or skips anyone else.
"""
from __future__ import annotations

import logging
import os
import pwd
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import Engine

from gradebook.course.config import CourseConfig
from gradebook.course.sheets_state import handin_refusal
from gradebook.points.handins import (ACCEPTED, HELD, INVALID, REFUSED, HandinRecord, late_refusal, logins, record_handins,
                                      roster_ids, seen_entries)
from gradebook.people.roster import ID_RE

from autograder.intake.safe import IntakeRefused, TreeLimits, read_snapshot, tree_ctime
from autograder.intake.store import digest, select_files, source_grade_ids, write_submission

log = logging.getLogger(__name__)
COURSE_ID = "mlph"
MAX_NEW_PER_OWNER = 20  # new entries of one login read per pass: thousands of entries cost their maker's turn only
ReceiptClock = Callable[[Path], datetime]


@dataclass
class CollectReport:
    sheet: str
    accepted: list[str] = field(default_factory=list)
    invalid: list[tuple[str, str]] = field(default_factory=list)  # (student, reason)
    held: list[tuple[str, str]] = field(default_factory=list)  # (student, reason): not on the roster
    refused: list[tuple[str, str]] = field(default_factory=list)  # (entry, reason): not the student's
    failed: list[tuple[str, str]] = field(default_factory=list)  # (entry, reason): our storage failed; not recorded
    unchanged: int = 0
    deferred: int = 0  # new entries past MAX_NEW_PER_OWNER of one owner: left for the next pass

    def __str__(self) -> str:
        return (f"{self.sheet}: {len(self.accepted)} new hand-in(s), {len(self.invalid)} invalid, "
                f"{len(self.held)} held (not on the roster), {len(self.refused)} refused, {self.unchanged} already collected"
                + (f", {len(self.failed)} not stored (tried again next time)" if self.failed else "")
                + (f", {self.deferred} left for the next pass (more than {MAX_NEW_PER_OWNER} new by one login)"
                   if self.deferred else ""))


def server_clock(entry: Path) -> datetime:
    """The entry's newest inode change, as a time (for entries that are not read: held, refused)."""
    return datetime.fromtimestamp(tree_ctime(entry), timezone.utc)


def _owner_ok(uid: int, student: str, known_logins: dict[str, str]) -> str | None:
    """None when the entry belongs to ``student`` (its owner's login is the id, or maps to it); else why not."""
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


def _utc(when: datetime) -> datetime:
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when.astimezone(timezone.utc)


def _stamp(entry: Path, clock: ReceiptClock | None) -> datetime:
    try:
        return _utc((clock or server_clock)(entry))
    except OSError:
        return datetime.now(timezone.utc)


def _judge(cfg: CourseConfig, entry: Path, student: str, roster: set[str] | None, known_logins: dict[str, str],
           admit: frozenset[str], clock: ReceiptClock | None) -> tuple[HandinRecord, dict[str, bytes] | None]:
    """One entry → its record (and its checked files when accepted); never raises for the entry's content.

    The files are read first (:func:`~autograder.intake.safe.read_snapshot`), the time of receipt is taken
    after: it is never earlier than the last change of a byte that is graded."""
    manifest = cfg.manifest(entry.name.split("+")[1])
    base = HandinRecord(manifest.id, student, "notebook", "exchange", datetime.now(timezone.utc), REFUSED,
                        entry=entry.name)
    try:
        if entry.is_symlink() or not entry.is_dir():
            return replace(base, reason="the entry is not a directory"), None
        if not ID_RE.match(student):
            return replace(base, received_at=_stamp(entry, clock), reason="the entry's student id is not a valid id"), None
        if roster is not None and student not in roster and student not in admit:
            return replace(base, received_at=_stamp(entry, clock), status=HELD, reason=(
                f"{student!r} is not on the roster (admit with `mlph collect {manifest.id} --admit {student}`)")), None
        if cfg.intake_identity == "owner" and (why := _owner_ok(os.lstat(entry).st_uid, student, known_logins)):
            log.warning("exchange entry %s refused: %s", entry.name, why)
            return replace(base, received_at=_stamp(entry, clock), reason=why), None
        snap = read_snapshot(entry, TreeLimits())
        base = replace(base, received_at=_utc(clock(entry)) if clock else snap.changed_at)
        if cfg.intake_identity == "owner" and (why := _owner_ok(snap.uid, student, known_logins)):
            return replace(base, reason=why), None  # replaced by someone else's directory while we read
        kept, notes = select_files(snap.files, manifest, source_grade_ids(manifest))
        return replace(base, status=ACCEPTED, reason="; ".join(notes), sha256=digest(kept),
                       size=sum(len(v) for v in kept.values()), original_name=manifest.notebook), kept
    except IntakeRefused as exc:
        return replace(base, received_at=_stamp(entry, clock), status=INVALID, reason=str(exc)), None
    except OSError as exc:  # vanished or unreadable meanwhile
        return replace(base, status=INVALID, reason=f"the entry could not be read ({exc.strerror})"), None
    except Exception as exc:  # RecursionError, MemoryError, a bug: this entry's result, never the batch's
        log.exception("exchange entry %s could not be checked", entry.name)
        return replace(base, status=INVALID, reason=f"the hand-in could not be checked ({type(exc).__name__}); "
                                                    "hand in a notebook as Jupyter saves it"), None


def collect(cfg: CourseConfig, engine: Engine, sheet: str, *, admit: frozenset[str] = frozenset(),
            clock: ReceiptClock | None = None) -> CollectReport:
    """Take every new entry of ``sheet`` from the exchange (see the module doc), one entry in memory at a time:
    each is read, checked, written (when it is the student's newest) and recorded before the next is read. At
    most :data:`MAX_NEW_PER_OWNER` new entries of one owner (login) per pass; the rest wait for the next.
    ``clock``: the time of receipt of an entry instead of its inode change (the demo's simulated clock)."""
    manifest = cfg.manifest(sheet)  # an unknown sheet is an error here, not an empty collection
    refuse_unreleased(engine, cfg, sheet)
    report = CollectReport(sheet)
    done = {e for e, _ in seen_entries(engine, sheet)}
    roster, known_logins = roster_ids(engine), logins(engine)
    per_owner: Counter[int] = Counter()
    for entry, student in _entries(cfg, sheet):
        if entry.name in done:
            report.unchanged += 1
            continue
        if cfg.intake_identity == "owner":  # (with one uid for all, "shared", owners cannot be told apart)
            try:
                owner = os.lstat(entry).st_uid
            except OSError:
                continue  # gone since the listing
            per_owner[owner] += 1
            if per_owner[owner] > MAX_NEW_PER_OWNER:  # a flood by one login waits for later passes
                report.deferred += 1
                continue
        rec, files = _judge(cfg, entry, student, roster, known_logins, admit, clock)
        if files is not None and (why := late_refusal(engine, manifest, student, rec.received_at, cfg.timezone)):
            rec, files = replace(rec, status=REFUSED, reason=why), None  # after the sheet's cut-off
        if files is not None:
            try:
                if write_submission(cfg.data_dir, sheet, student, files, rec.received_at, "exchange") is not None:
                    report.accepted.append(student)
            except OSError as exc:  # our disk, not the student's entry: not recorded, so the next run tries again
                log.exception("storing exchange entry %s failed", entry.name)
                report.failed.append((entry.name, f"could not be stored ({exc.strerror}); collected again next time"))
                continue
        elif rec.status == INVALID:
            report.invalid.append((student, rec.reason))
        elif rec.status == HELD:
            report.held.append((student, rec.reason))
        else:
            report.refused.append((entry.name, rec.reason))
        record_handins(engine, [rec])
    report.accepted = sorted(set(report.accepted))
    return report


def refuse_unreleased(engine: Engine, cfg: CourseConfig, sheet: str) -> None:
    """Nothing is taken in for a sheet students cannot hand in (not released): the one rule of every way in
    (:func:`gradebook.course.sheets_state.handin_refusal`), said to the instructor who runs the command."""
    if handin_refusal(engine, cfg, sheet) is not None:
        raise IntakeRefused(f"{sheet} is not released: students cannot hand it in, so nothing is taken in for it "
                            f"(release it first: `mlph release {sheet}`)")
