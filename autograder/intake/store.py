"""Checked hand-in content → ``submitted/<student>/<sheet>/`` (or ``paper/<sheet>/<student>.pdf``), atomically.

Pure checks first (:func:`check_notebook`, :func:`check_pdf`, :func:`select_files`), then one writer
(:func:`write_submission`, :func:`write_paper`) that writes into a temporary place under the same
directory and renames it into place, so a reader never sees half a hand-in and a refused one leaves
nothing behind.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import tomllib
import uuid
from datetime import datetime, timezone
from pathlib import Path

from gradebook.course.manifest import Manifest

from autograder.intake import boundedjson
from autograder.intake.safe import IntakeRefused, clean_path

MAX_NOTEBOOK_BYTES = 20_000_000
MAX_PDF_BYTES = 25_000_000
MAX_DATA_FILE_BYTES = 1_000_000
MAX_CELLS = 2_000


def declared_files(manifest: Manifest) -> list[str]:
    """Files besides the notebook that the sheet lets students hand in (``[handin] files`` in sheet.toml)."""
    try:
        raw = tomllib.loads(manifest.path.read_text(encoding="utf-8")).get("handin", {})
    except (OSError, tomllib.TOMLDecodeError):
        return []
    files = raw.get("files", []) if isinstance(raw, dict) else []
    return [clean_path(str(f)) for f in files if isinstance(f, str)]


_SOURCE_IDS: dict[tuple[str, float], set[str]] = {}


def source_grade_ids(manifest: Manifest) -> set[str]:
    """The grade ids of the sheet's source notebook (cached per file version)."""
    path = manifest.directory / manifest.notebook
    key = (str(path), path.stat().st_mtime)
    if key not in _SOURCE_IDS:
        nb = json.loads(path.read_text(encoding="utf-8"))
        _SOURCE_IDS[key] = sheet_grade_ids(None, nb)
    return _SOURCE_IDS[key]


def sheet_grade_ids(source_ids: set[str] | None, nb: object) -> set[str]:
    """The nbgrader grade ids in the notebook JSON ``nb`` (only those in ``source_ids``, unless None)."""
    cells = nb.get("cells") if isinstance(nb, dict) else None
    found = set()
    for cell in cells if isinstance(cells, list) else []:
        meta = cell.get("metadata", {}) if isinstance(cell, dict) else {}
        nbg = meta.get("nbgrader", {}) if isinstance(meta, dict) else {}
        gid = nbg.get("grade_id") if isinstance(nbg, dict) else None
        if isinstance(gid, str) and (source_ids is None or gid in source_ids):
            found.add(gid)
    return found


def check_notebook(data: bytes, manifest: Manifest, source_ids: set[str]) -> None:
    """A notebook of this sheet (JSON, nbformat 4, at least one of the sheet's cells, bounded), or IntakeRefused.

    The JSON is bounded (depth, number length, value count) before it is parsed (:mod:`.boundedjson`). Only
    the shape is checked here; the grader reads it again (and a notebook it cannot run is that student's
    ``invalid`` result with the reason)."""
    if len(data) > MAX_NOTEBOOK_BYTES:
        raise IntakeRefused(f"{manifest.notebook} is larger than {MAX_NOTEBOOK_BYTES // 1_000_000} MB")
    nb = boundedjson.loads(data, manifest.notebook)
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list) or nb.get("nbformat") != 4:
        raise IntakeRefused(f"{manifest.notebook} is not a Jupyter notebook (nbformat 4)")
    if len(nb["cells"]) > MAX_CELLS:
        raise IntakeRefused(f"{manifest.notebook} has more than {MAX_CELLS} cells")
    if not sheet_grade_ids(source_ids, nb):
        raise IntakeRefused(f"this notebook is not {manifest.id}: none of its cells belongs to {manifest.notebook} "
                            "(hand in the notebook you fetched for this sheet)")


def check_pdf(data: bytes) -> None:
    """A PDF by its content (``%PDF-`` header, ``%%EOF`` trailer), bounded; or IntakeRefused."""
    if len(data) > MAX_PDF_BYTES:
        raise IntakeRefused(f"the PDF is larger than {MAX_PDF_BYTES // 1_000_000} MB")
    if not data.startswith(b"%PDF-") or b"%%EOF" not in data[-2048:]:
        raise IntakeRefused("the file is not a PDF (scan or photograph your pages into one PDF)")


def select_files(files: dict[str, bytes], manifest: Manifest, source_ids: set[str]) -> tuple[dict[str, bytes], list[str]]:
    """From everything in a hand-in: the notebook and the declared data files (checked); the rest is named in
    the notes and left out (it never reaches the sandbox)."""
    wanted = {manifest.notebook, *declared_files(manifest)}
    kept = {name: data for name, data in files.items() if name in wanted}
    if manifest.notebook not in kept:
        raise IntakeRefused(f"no {manifest.notebook} in the hand-in"
                            + (f" (found: {', '.join(sorted(files)[:5])})" if files else " (it is empty)"))
    check_notebook(kept[manifest.notebook], manifest, source_ids)
    for name, data in kept.items():
        if name != manifest.notebook and len(data) > MAX_DATA_FILE_BYTES:
            raise IntakeRefused(f"{name} is larger than {MAX_DATA_FILE_BYTES // 1_000_000} MB")
    ignored = sorted(set(files) - set(kept) - {"timestamp.txt"})
    notes = [f"not passed to the grader (not part of {manifest.id}): {', '.join(ignored[:10])}"] if ignored else []
    return kept, notes


def digest(files: dict[str, bytes]) -> str:
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    return h.hexdigest()


def _fsync_write(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


RECEIPT = ".mlph-receipt.json"  # the time of receipt, written with the files (never a student's file name)


def receipt_of(files: dict[str, bytes]) -> datetime | None:
    """The time of receipt stored with a hand-in's files (UTC), or None when there is none (or it is unreadable)."""
    raw = files.get(RECEIPT)
    try:
        value = json.loads(raw)["received_at"] if raw else None
        when = datetime.fromisoformat(value) if isinstance(value, str) else None
    except (ValueError, TypeError, KeyError):
        return None
    return when.astimezone(timezone.utc) if when is not None and when.tzinfo is not None else None


def _read_receipt(directory: Path) -> datetime | None:
    try:
        return receipt_of({RECEIPT: (directory / RECEIPT).read_bytes()})
    except OSError:
        return None


def write_submission(data_dir: Path, sheet: str, student: str, files: dict[str, bytes],
                     received_at: datetime, source: str) -> Path | None:
    """Replace ``submitted/<student>/<sheet>/`` by ``files`` and their time of receipt (UTC, in :data:`RECEIPT`):
    written aside, then renamed into place, so the grader always reads a notebook with the time it was received.
    Writers of one student take turns (a lock on the student's directory); a hand-in received earlier than the
    one already there does not replace it (None)."""
    if received_at.tzinfo is None:
        raise ValueError("a time of receipt must carry its zone")
    target = data_dir / "submitted" / clean_path(student) / sheet
    target.parent.mkdir(parents=True, exist_ok=True)
    lock = os.open(target.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        present = _read_receipt(target)
        if present is not None and present > received_at:
            return None
        receipt = json.dumps({"received_at": received_at.astimezone(timezone.utc).isoformat(), "source": source})
        _replace_dir(target, sheet, {**{k: v for k, v in files.items() if k != RECEIPT}, RECEIPT: receipt.encode()})
    finally:
        os.close(lock)  # releases the lock
    return target


def _replace_dir(target: Path, sheet: str, files: dict[str, bytes]) -> None:
    staging = target.parent / f".incoming-{sheet}-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        for name, data in files.items():
            path = staging / name
            path.parent.mkdir(parents=True, exist_ok=True)
            _fsync_write(path, data)
        old = target.parent / f".replaced-{sheet}-{uuid.uuid4().hex[:8]}"
        if target.exists():
            target.rename(old)
        staging.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def write_paper(data_dir: Path, sheet: str, student: str, data: bytes) -> Path:
    """The paper part's PDF at ``paper/<sheet>/<student>.pdf``, under a server-chosen name, atomically."""
    target = data_dir / "paper" / sheet / f"{clean_path(student)}.pdf"
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}")
    try:
        _fsync_write(tmp, data)
        tmp.replace(target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target
