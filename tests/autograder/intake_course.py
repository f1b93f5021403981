"""A tiny course for the intake's tests: a roster with names (the LMS zip matches them), honest notebooks, hostile
ones, exchange entries, LMS zips."""
from __future__ import annotations

import dataclasses
import io
import zipfile
from pathlib import Path
from typing import Any

import nbformat
from sqlalchemy import text

from autograder.grading.assemble import grade_id
from autograder.limits import Limits
from autograder.nbgrader_bridge import generate
from coursefactory import TINY_ANSWER
from gradebook.course.config import CourseConfig
from gradebook.store.db import open_gradebook
from gradebook.people.roster import import_students

LIMITS = Limits(cell_timeout=4, notebook_timeout=60, interrupt_grace=2)


def make(course_factory: Any, students: dict[str, str], due: str | None = None, db_url: str | None = None,
         tz: str | None = None) -> CourseConfig:
    """A released tiny01 with ``students`` (id → "First Last"; matriculation numbers 3700001, … in order) on the
    roster."""
    cfg = course_factory(**({"due": due} if due else {}))
    if db_url:
        cfg = dataclasses.replace(cfg, db_url=db_url)
    generate(cfg, "tiny01")
    roster = cfg.root / "roster.csv"
    roster.write_text("student_id,last_name,first_name,email,matriculation\n" + "".join(
        f"{sid},{name.split(' ', 1)[1]},{name.split(' ', 1)[0]},{sid}@uni.de,{3700001 + i}\n"
        for i, (sid, name) in enumerate(students.items())))
    import_students(open_gradebook(cfg.db_url), roster)
    return cfg


def notebook(cfg: CourseConfig, answer: str = TINY_ANSWER) -> bytes:
    nb = nbformat.read(cfg.release_dir / "tiny01" / "tiny01.ipynb", as_version=4)
    for cell in nb.cells:
        if grade_id(cell) == "scale_solution":
            cell.source = answer
    return nbformat.writes(nb).encode()


def deep_notebook(cfg: CourseConfig, depth: int = 100_000) -> bytes:
    """The honest notebook with a metadata value nested ``depth`` levels deep (RecursionError in json.loads)."""
    honest = notebook(cfg)
    return honest.replace(b'"metadata": {', b'"metadata": {"x": ' + b"[" * depth + b"]" * depth + b", ", 1)


def bigint_notebook(cfg: CourseConfig, digits: int = 5000) -> bytes:
    """The honest notebook with a 5000-digit integer literal (ValueError: the int-string conversion limit)."""
    honest = notebook(cfg)
    return honest.replace(b'"metadata": {', b'"metadata": {"x": ' + b"7" * digits + b", ", 1)


def entry(cfg: CourseConfig, student: str, files: dict[str, bytes], n: int = 0) -> Path:
    d = cfg.exchange_dir / "mlph" / "inbound" / f"{student}+tiny01+2026-11-03 12:00:0{n}.000000 UTC+{student}{n}"
    d.mkdir(parents=True)
    for name, data in files.items():
        (d / name).parent.mkdir(parents=True, exist_ok=True)
        (d / name).write_bytes(data)
    return d


def lms_zip(members: dict[str, bytes], when: tuple[int, int, int, int, int, int] = (2026, 11, 3, 9, 0, 0),
            stored: bool = False) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, date_time=when)
            info.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return buf.getvalue()


def handin_rows(cfg: CourseConfig) -> list[tuple[str, str, str, str]]:
    """(student, source, status, reason) of every hand-in record, in order."""
    with open_gradebook(cfg.db_url).connect() as conn:
        return [(s, src, st, r or "") for s, src, st, r in conn.execute(
            text("SELECT student_id, source, status, reason FROM handin ORDER BY id")).all()]
