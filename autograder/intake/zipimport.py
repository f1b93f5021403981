"""An LMS bulk download (Moodle's "Download all submissions" zip) through the same checks as every hand-in.

Moodle puts each participant's files in a folder ``<Full Name>_<participant id>_assignsubmission_<plugin>_/``.
Folders are mapped to the roster by the LMS's own field, the full name ("First Last" or "Last, First",
case-insensitive, Unicode-normalised), and nothing else: a name that matches several roster students, or two
participants (two participant ids) that map to one roster student, is reported and imported for nobody.
The zip is read member by member, never extracted; each participant's folder is one hand-in with the limits
of every other way in (:class:`~autograder.intake.safe.TreeLimits`: files, directories, bytes per file and in
all), and a member that breaks them (zip-slip, a symbolic link, encryption, a compression ratio over 200:1, a
size its header understates) makes that folder ``invalid`` while the others are imported. Only the zip as a
whole (unreadable, more than 5000 members, over 2 GB) is refused. The time of receipt is the LMS's timestamp
of the newest file (the LMS's clock, not the student's): a local time in the course's time zone, converted to
UTC here, where it enters (in the hour that occurs twice when summer time ends, the first one is taken).
"""
from __future__ import annotations

import logging
import re
import stat
import unicodedata
import zipfile
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from gradebook.store import nbgrader_tables as nt
from gradebook.course.config import CourseConfig
from gradebook.points.handins import ACCEPTED, INVALID, REFUSED, HandinRecord, late_refusal, record_handins
from gradebook.course.manifest import Manifest
from gradebook.store.models import StudentProfile

from autograder.intake.exchange import refuse_unreleased
from autograder.intake.safe import IntakeRefused, TreeLimits, clean_path
from autograder.intake.store import digest, select_files, source_grade_ids, write_submission

MAX_MEMBERS = 5_000
MAX_RATIO = 200
ZIP_LIMITS = TreeLimits(max_total_bytes=2_000_000_000)
HANDIN = TreeLimits()  # one participant's folder: the same bounds as every other way in
log = logging.getLogger(__name__)
FOLDER_RE = re.compile(r"^(?P<name>.+?)_(?P<pid>\d+)_assignsubmission_\w+_?$")


@dataclass
class ZipReport:
    sheet: str
    accepted: list[str] = field(default_factory=list)
    invalid: list[tuple[str, str]] = field(default_factory=list)
    unmatched: list[tuple[str, str]] = field(default_factory=list)  # (folder, why)
    superseded: list[tuple[str, str]] = field(default_factory=list)  # (student, folder): a later hand-in is there
    ambiguous: list[tuple[str, str]] = field(default_factory=list)  # (student, why): imported for nobody
    refused: list[tuple[str, str]] = field(default_factory=list)  # (student, why): after the sheet's cut-off

    def __str__(self) -> str:
        return (f"{self.sheet}: {len(self.accepted)} hand-in(s) imported, {len(self.invalid)} invalid, "
                f"{len(self.unmatched)} folder(s) not matched to the roster, {len(self.ambiguous)} ambiguous, "
                f"{len(self.superseded)} older than the hand-in already there"
                + (f", {len(self.refused)} refused after the cut-off" if self.refused else ""))


def _key(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).casefold().split())


def roster_index(engine: Engine) -> dict[str, set[str]]:
    """Full names on the roster (both ways round) → roster ids."""
    index: dict[str, set[str]] = {}
    with Session(engine) as session:
        rows = session.execute(select(nt.student.c.id, nt.student.c.first_name, nt.student.c.last_name)
                               .join(StudentProfile, StudentProfile.student_id == nt.student.c.id)).all()
    for sid, first, last in rows:
        if not (first or "").strip() or not (last or "").strip():
            continue
        for key in (f"{first} {last}", f"{last}, {first}"):
            index.setdefault(_key(key), set()).add(sid)
    return index


def _match(folder: str, index: dict[str, set[str]]) -> tuple[str | None, str]:
    """The roster id of a participant's folder by its full name, or None and why not."""
    m = FOLDER_RE.match(folder)
    if not m:
        return None, "not a participant's folder (<Full Name>_<participant id>_assignsubmission_...)"
    hits = index.get(_key(m.group("name")), set())
    if len(hits) == 1:
        return next(iter(hits)), ""
    return None, ("the name matches several students: " + ", ".join(sorted(hits)) + "; imported for nobody"
                  if hits else "the name matches no student on the roster")


def _check_member(info: zipfile.ZipInfo) -> str:
    """The member's clean relative path, or IntakeRefused."""
    if (info.external_attr >> 16) and stat.S_ISLNK(info.external_attr >> 16):
        raise IntakeRefused(f"{info.filename[:80]!r} is a symbolic link")
    if info.flag_bits & 0x1:
        raise IntakeRefused(f"{info.filename[:80]!r} is encrypted")
    if info.file_size > ZIP_LIMITS.max_file_bytes:
        raise IntakeRefused(f"{info.filename[:80]!r} is larger than {ZIP_LIMITS.max_file_bytes // 1_000_000} MB")
    if info.compress_size and info.file_size / info.compress_size > MAX_RATIO:
        raise IntakeRefused(f"{info.filename[:80]!r} expands {info.file_size // max(1, info.compress_size)}-fold (a zip bomb?)")
    return clean_path(info.filename, TreeLimits(max_depth=6))


def _read(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """The member's bytes, counted while decompressing (a lying header cannot make us read more)."""
    out, total = [], 0
    with zf.open(info) as fh:
        while chunk := fh.read(1 << 20):
            total += len(chunk)
            if total > min(ZIP_LIMITS.max_file_bytes, max(info.file_size, 1)):
                raise IntakeRefused(f"{info.filename[:80]!r} is larger than its header says")
            out.append(chunk)
    return b"".join(out)


class _Folder:
    """One participant's folders (a participant id may have one per submission plugin): members or why not."""

    def __init__(self) -> None:
        self.members: list[tuple[str, zipfile.ZipInfo]] = []
        self.broken = ""
        self.names: list[str] = []
        self.latest = (1980, 1, 1, 0, 0, 0)  # the LMS's newest time stamp of any member (a broken folder's too)

    def add(self, rest: str, info: zipfile.ZipInfo) -> None:
        self.latest = max(self.latest, info.date_time)
        if self.broken:
            return
        try:
            _check_member(info)
            self.members.append((clean_path(rest, TreeLimits(max_depth=HANDIN.max_depth)), info))
            dirs = {p.rsplit("/", 1)[0] for p, _ in self.members if "/" in p}
            if len(self.members) > HANDIN.max_files:
                raise IntakeRefused(f"the hand-in has more than {HANDIN.max_files} files")
            if len(dirs) > HANDIN.max_dirs:
                raise IntakeRefused(f"the hand-in has more than {HANDIN.max_dirs} directories")
            if sum(i.file_size for _, i in self.members) > HANDIN.max_total_bytes:
                raise IntakeRefused(f"the hand-in is larger than {HANDIN.max_total_bytes // 1_000_000} MB")
        except IntakeRefused as exc:
            self.broken, self.members = str(exc), []


def _folders(zf: zipfile.ZipFile, report: ZipReport) -> dict[str, _Folder]:
    """Participant id (or folder name) → its members; members outside any participant folder are reported."""
    members = zf.infolist()
    if len(members) > MAX_MEMBERS:
        raise IntakeRefused(f"the zip has more than {MAX_MEMBERS} members")
    if sum(i.file_size for i in members) > ZIP_LIMITS.max_total_bytes:
        raise IntakeRefused("the zip expands to more than 2 GB")
    folders: dict[str, _Folder] = {}
    for info in members:
        if info.is_dir():
            continue
        raw_folder, _, rest = info.filename.replace("\\", "/").partition("/")
        try:
            if info.filename.startswith(("/", "\\")) or info.filename[1:2] == ":":
                raise IntakeRefused("the path is absolute")
            folder = clean_path(raw_folder)
            if not rest:
                raise IntakeRefused("not inside a participant's folder")
        except IntakeRefused as exc:
            report.unmatched.append((info.filename[:80], f"not imported: {exc}"))
            continue
        m = FOLDER_RE.match(folder)
        key = f"{m.group('name')}\0{m.group('pid')}" if m else folder
        entry = folders.setdefault(key, _Folder())
        if folder not in entry.names:
            entry.names.append(folder)
        entry.add(rest, info)
    return folders


def _participants(folders: dict[str, _Folder], index: dict[str, set[str]],
                  report: ZipReport) -> dict[str, _Folder]:
    """Roster id → its one participant's folder; ambiguous ones (two participants, one student) go nowhere."""
    by_student: dict[str, list[_Folder]] = {}
    for folder in folders.values():
        student, why = _match(folder.names[0], index)
        if student is None:
            report.unmatched.extend((name, why) for name in folder.names)
        else:
            by_student.setdefault(student, []).append(folder)
    chosen = {}
    for student, found in sorted(by_student.items()):
        if len(found) > 1:
            names = [n for f in found for n in f.names]
            report.ambiguous.append((student, f"{len(found)} participants map to {student}: {'; '.join(names)}; "
                                              "imported for nobody (rename them in the LMS, or import by hand)"))
        else:
            chosen[student] = found[0]
    return chosen


def _handin(zf: zipfile.ZipFile, folder: _Folder, manifest: Manifest) -> tuple[dict[str, bytes], list[str]]:
    """The folder's checked files (the notebook wherever it lies in the folder) and notes; or IntakeRefused."""
    if folder.broken:
        raise IntakeRefused(folder.broken)
    files, total = {}, 0
    for rest, info in folder.members:
        data = _read(zf, info)
        total += len(data)
        if total > HANDIN.max_total_bytes:
            raise IntakeRefused(f"the hand-in is larger than {HANDIN.max_total_bytes // 1_000_000} MB")
        files[rest.rsplit("/", 1)[-1] if rest.endswith(".ipynb") else rest] = data
    return select_files(files, manifest, source_grade_ids(manifest))


def import_zip(cfg: CourseConfig, engine: Engine, sheet: str, zip_path: Path) -> ZipReport:
    """Import ``zip_path`` for ``sheet`` (see the module doc); a broken zip as a whole is IntakeRefused, a broken
    folder is that student's ``invalid`` hand-in. One participant's files are in memory at a time."""
    manifest = cfg.manifest(sheet)
    refuse_unreleased(engine, cfg, sheet)
    tz = ZoneInfo(cfg.timezone)
    report = ZipReport(sheet)
    index = roster_index(engine)
    try:
        zf = zipfile.ZipFile(zip_path)
    except (OSError, zipfile.BadZipFile, ValueError) as exc:
        raise IntakeRefused(f"{zip_path}: not a readable zip file ({exc})") from None
    with zf:
        chosen = _participants(_folders(zf, report), index, report)
        for student, folder in sorted(chosen.items()):
            when = datetime(*folder.latest, tzinfo=tz).astimezone(timezone.utc)  # stored as UTC, everywhere
            rec = HandinRecord(sheet, student, "notebook", "zip", when, INVALID, entry=f"{zip_path.name}:{folder.names[0]}")
            if why := late_refusal(engine, manifest, student, when, cfg.timezone):  # after the sheet's cut-off
                report.refused.append((student, why))
                record_handins(engine, [replace(rec, status=REFUSED, reason=why)])
                continue
            try:
                kept, notes = _handin(zf, folder, manifest)
            except IntakeRefused as exc:
                rec = replace(rec, reason=str(exc))
            except Exception as exc:  # RecursionError, MemoryError, zlib errors, a bug: this folder's result only
                log.exception("zip folder %s could not be checked", folder.names[0])
                rec = replace(rec, reason=f"the hand-in could not be checked ({type(exc).__name__})")
            else:
                rec = replace(rec, status=ACCEPTED, reason="; ".join(notes), sha256=digest(kept),
                              size=sum(map(len, kept.values())), original_name=manifest.notebook)
                if write_submission(cfg.data_dir, sheet, student, kept, when, "zip") is None:
                    report.superseded.append((student, folder.names[0]))
                else:
                    report.accepted.append(student)
            if rec.status == INVALID:
                report.invalid.append((student, rec.reason))
            record_handins(engine, [rec])
    return report
