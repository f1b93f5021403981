"""An LMS bulk download (Moodle's "Download all submissions" zip) through the same checks as every hand-in.

Moodle puts each participant's files in a folder ``<Full Name>_<participant id>_assignsubmission_file_/``.
Folders are mapped to the roster by the full name ("First Last" or "Last, First", case-insensitive),
or by a roster id or matriculation number that appears in the folder name. The zip is read member by
member, never extracted: absolute paths and ``..`` (zip-slip), symbolic-link members, encrypted members and
zip bombs (a declared or actual size over the limit, a compression ratio over 200:1, too many members) are
refused with the member's name; several folders of one student: the latest (by the LMS's timestamp) wins,
the others are reported. The time of receipt is the LMS's timestamp of the file (the LMS's clock, not the
student's), read in the course's time zone.
"""
from __future__ import annotations

import re
import stat
import zipfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from gradebook.store import nbgrader_tables as nt
from gradebook.course.config import CourseConfig
from gradebook.points.handins import ACCEPTED, INVALID, HandinRecord, record_handins
from gradebook.store.models import StudentProfile

from autograder.intake.safe import IntakeRefused, TreeLimits, clean_path
from autograder.intake.store import digest, select_files, source_grade_ids, write_submission

MAX_MEMBERS = 5_000
MAX_RATIO = 200
ZIP_LIMITS = TreeLimits(max_total_bytes=2_000_000_000)
FOLDER_RE = re.compile(r"^(?P<name>.+?)_(?P<pid>\d+)_assignsubmission_\w+_?$")


@dataclass
class ZipReport:
    sheet: str
    accepted: list[str] = field(default_factory=list)
    invalid: list[tuple[str, str]] = field(default_factory=list)
    unmatched: list[tuple[str, str]] = field(default_factory=list)  # (folder, why)
    superseded: list[tuple[str, str]] = field(default_factory=list)  # (student, folder)

    def __str__(self) -> str:
        return (f"{self.sheet}: {len(self.accepted)} hand-in(s) imported, {len(self.invalid)} invalid, "
                f"{len(self.unmatched)} folder(s) not matched to the roster, {len(self.superseded)} older duplicate(s)")


def _key(text: str) -> str:
    return " ".join(text.casefold().split())


def roster_index(engine: Engine) -> dict[str, set[str]]:
    """Lookup keys (full names both ways round, ids, matriculation numbers) → roster ids."""
    index: dict[str, set[str]] = {}
    with Session(engine) as session:
        rows = session.execute(select(nt.student.c.id, nt.student.c.first_name, nt.student.c.last_name,
                                      StudentProfile.matriculation)
                               .join(StudentProfile, StudentProfile.student_id == nt.student.c.id)).all()
    for sid, first, last, matr in rows:
        for key in (f"{first or ''} {last or ''}", f"{last or ''}, {first or ''}", sid, matr or ""):
            if key.strip():
                index.setdefault(_key(key), set()).add(sid)
    return index


def _match(folder: str, index: dict[str, set[str]]) -> tuple[str | None, str]:
    m = FOLDER_RE.match(folder)
    name = m.group("name") if m else folder
    hits = index.get(_key(name), set())
    if not hits:
        hits = set().union(*(index.get(_key(tok), set()) for tok in re.split(r"[\s_]+", folder) if tok))
    if len(hits) == 1:
        return next(iter(hits)), ""
    return None, ("matches several students: " + ", ".join(sorted(hits))) if hits else "matches no student on the roster"


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


def _folders(zf: zipfile.ZipFile) -> dict[str, list[tuple[str, zipfile.ZipInfo]]]:
    members = zf.infolist()
    if len(members) > MAX_MEMBERS:
        raise IntakeRefused(f"the zip has more than {MAX_MEMBERS} members")
    if sum(i.file_size for i in members) > ZIP_LIMITS.max_total_bytes:
        raise IntakeRefused("the zip expands to more than 2 GB")
    folders: dict[str, list[tuple[str, zipfile.ZipInfo]]] = {}
    for info in members:
        if info.is_dir():
            continue
        path = _check_member(info)
        folder, _, rest = path.partition("/")
        if not rest:
            raise IntakeRefused(f"{path!r} is not inside a participant's folder")
        folders.setdefault(folder, []).append((rest, info))
    return folders


def import_zip(cfg: CourseConfig, engine: Engine, sheet: str, zip_path: Path) -> ZipReport:
    """Import ``zip_path`` for ``sheet`` (see the module doc); a broken zip as a whole is IntakeRefused."""
    manifest = cfg.manifest(sheet)
    tz = ZoneInfo(cfg.timezone)
    report = ZipReport(sheet)
    index = roster_index(engine)
    try:
        zf = zipfile.ZipFile(zip_path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise IntakeRefused(f"{zip_path}: not a readable zip file ({exc})") from None
    with zf:
        folders = _folders(zf)
        best: dict[str, tuple[datetime, str, list[tuple[str, zipfile.ZipInfo]]]] = {}
        for folder, members in sorted(folders.items()):
            student, why = _match(folder, index)
            if student is None:
                report.unmatched.append((folder, why))
                continue
            when = max(datetime(*info.date_time, tzinfo=tz) for _, info in members)
            if student in best and best[student][0] >= when:
                report.superseded.append((student, folder))
                continue
            if student in best:
                report.superseded.append((student, best[student][1]))
            best[student] = (when, folder, members)
        records = []
        for student, (when, folder, members) in sorted(best.items()):
            base = HandinRecord(sheet, student, "notebook", "zip", when, INVALID, entry=f"{zip_path.name}:{folder}")
            try:
                files = {rest.rsplit("/", 1)[-1] if rest.endswith(".ipynb") else rest: _read(zf, info)
                         for rest, info in members}
                kept, notes = select_files(files, manifest, source_grade_ids(manifest))
            except IntakeRefused as exc:
                records.append(HandinRecord(**{**base.__dict__, "reason": str(exc)}))
                report.invalid.append((student, str(exc)))
                continue
            write_submission(cfg.data_dir, sheet, student, kept)
            records.append(HandinRecord(**{**base.__dict__, "status": ACCEPTED, "reason": "; ".join(notes),
                                           "sha256": digest(kept), "size": sum(map(len, kept.values())),
                                           "original_name": manifest.notebook}))
            report.accepted.append(student)
    record_handins(engine, records)
    return report
