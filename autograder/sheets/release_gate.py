"""What `mlph release` asks of a sheet before students get it, and the record `mlph validate` leaves.

`mlph validate` writes a small stamp per sheet into the course data directory
(``validation/SHEET.json``): whether it passed, and a fingerprint (SHA-256) of every file of
``source/SHEET/`` and ``release/SHEET/``. `mlph release` refuses, unless forced, a sheet

- whose last validation failed, is missing, or is stale (a file changed since);
- that is not in the semester plan (``mlph.toml``: its points would never count);
- that is marked work in progress (``wip = true`` in its sheet.toml);
- whose due date is already past (every student would be decided "missing" at once).
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from gradebook.course.config import CONFIG_NAME, CourseConfig

from autograder.errors import SheetError

STAMP_DIR = "validation"


class ReleaseRefused(SheetError):
    """`mlph release` will not release a sheet (without ``--force``); the message says why and what to do."""


@dataclass(frozen=True)
class Stamp:
    sheet: str
    fingerprint: str
    passed: bool
    problems: int
    at: str


def fingerprint(cfg: CourseConfig, sheet: str) -> str:
    """SHA-256 over the relative paths and bytes of every file of ``source/SHEET`` and ``release/SHEET``."""
    digest = hashlib.sha256()
    for top in (cfg.source_dir / sheet, cfg.release_dir / sheet):
        files = sorted(p for p in top.rglob("*") if p.is_file() and "__pycache__" not in p.parts
                       and ".ipynb_checkpoints" not in p.parts) if top.is_dir() else []
        digest.update(f"{top.parent.name}/\0".encode())
        for path in files:
            digest.update(str(path.relative_to(top)).encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def stamp_path(cfg: CourseConfig, sheet: str) -> Path:
    return cfg.data_dir / STAMP_DIR / f"{sheet}.json"


def record_validation(cfg: CourseConfig, sheet: str, problems: list[str], now: datetime | None = None) -> Stamp:
    """Write the stamp of a validation run of ``sheet`` (atomically: a crash leaves the old one)."""
    stamp = Stamp(sheet, fingerprint(cfg, sheet), not problems, len(problems),
                  (now or datetime.now(timezone.utc)).isoformat())
    path = stamp_path(cfg, sheet)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{sheet}-", suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(stamp.__dict__, f)
    os.replace(tmp, path)
    return stamp


def read_stamp(cfg: CourseConfig, sheet: str) -> Stamp | None:
    path = stamp_path(cfg, sheet)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return Stamp(str(raw["sheet"]), str(raw["fingerprint"]), bool(raw["passed"]), int(raw["problems"]),
                     str(raw["at"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def validation_problem(cfg: CourseConfig, sheet: str) -> str | None:
    """Why the last validation of ``sheet`` does not allow a release, or None."""
    stamp = read_stamp(cfg, sheet)
    if stamp is None:
        return f"{sheet} has not been validated: run `mlph validate {sheet}`"
    if not stamp.passed:
        return (f"the last validation of {sheet} ({stamp.at}) found {stamp.problems} problem(s): fix them and run "
                f"`mlph validate {sheet}` again")
    if stamp.fingerprint != fingerprint(cfg, sheet):
        return (f"source/{sheet} or release/{sheet} changed since its last validation ({stamp.at}): run "
                f"`mlph validate {sheet}` again")
    return None


def plan_problem(cfg: CourseConfig, sheet: str) -> str | None:
    """Why ``sheet`` would never count (not in the semester plan), or None."""
    if any(s.id == sheet for s in cfg.semester):
        return None
    return (f"{sheet} is not in the semester plan ({cfg.root / CONFIG_NAME}): its points would never count; add "
            f"[[semester.sheet]] id = \"{sheet}\" there")


def wip_problem(cfg: CourseConfig, sheet: str) -> str | None:
    """Why ``sheet`` is not ready (``wip = true`` in its sheet.toml), or None."""
    from autograder.sheets.conventions import sheet_flags

    wip = sheet_flags(cfg.root, cfg.manifest(sheet))
    return f"{sheet} is {wip}: remove the mark when the sheet is ready" if wip else None


def due_problem(cfg: CourseConfig, sheet: str, now: datetime) -> str | None:
    due = cfg.manifest(sheet).due
    if due > now:
        return None
    return (f"{sheet} is due {due.isoformat()}, already past: every student would be decided \"missing\" at once; "
            f"set a later `due` in source/{sheet}/sheet.toml (then validate again)")


def release_problems(cfg: CourseConfig, sheet: str, now: datetime | None = None) -> list[str]:
    """Every reason not to release ``sheet`` now (empty: release)."""
    now = now or datetime.now(timezone.utc)
    found = [plan_problem(cfg, sheet), wip_problem(cfg, sheet), due_problem(cfg, sheet, now),
             validation_problem(cfg, sheet)]
    return [p for p in found if p]


def check_releasable(cfg: CourseConfig, sheet: str, force: bool = False, now: datetime | None = None) -> list[str]:
    """Raise :class:`ReleaseRefused` listing the reasons (unless ``force``); with ``force``, the reasons
    overridden (to be shown as warnings)."""
    problems = release_problems(cfg, sheet, now)
    if problems and not force:
        raise ReleaseRefused(f"{sheet} is not released:\n" + "\n".join(f"  - {p}" for p in problems)
                             + f"\n(release anyway with `mlph release {sheet} --force`)")
    return problems


def release_sheet(cfg: CourseConfig, sheet: str, no_exchange: bool = False, force: bool = False,
                  author: str | None = None, now: datetime | None = None) -> list[str]:
    """`mlph release`: check, generate ``release/SHEET`` and release it (to the exchange, or with
    ``no_exchange`` on the web pages only); the lines to show."""
    import getpass

    from gradebook.course.sheets_state import mark_released
    from gradebook.store.db import open_gradebook

    from autograder.nbgrader_bridge import generate, release

    lines = [f"warning (--force): {p}" for p in check_releasable(cfg, sheet, force, now)]
    lines.append(f"generated {generate(cfg, sheet)}")
    if not no_exchange:
        lines.append(f"released to {release(cfg, sheet, force=force)}")
    else:  # a course without the exchange: students see the sheet on the web pages from now on
        mark_released(open_gradebook(cfg.db_url), sheet, author or getpass.getuser())
        lines.append(f"released {sheet} to the web pages")
    return lines
