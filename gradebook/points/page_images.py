"""The pages of a paper hand-in as PNG images, rendered once per hand-in on the server and cached in the
course data directory (``page-images/<sheet>/<hand-in id>-<sha256 prefix>/NNN.png``), and
:func:`pages_for`: the images of one paper task of one student (the tagged pages, else all).

Rendering runs in a child process (:mod:`.page_render`, PDFium without its form/JavaScript environment)
under a memory and CPU limit and a timeout, so that a hostile PDF costs only that process; at most
:data:`~.page_tags.MAX_PAGES` pages, each at most :data:`MAX_WIDTH` × :data:`MAX_HEIGHT` pixels. A PDF that
cannot be rendered is remembered (``failed.txt``) and reported as a :class:`PageRenderError` naming the
sheet and the student, never retried on every request.
"""
from __future__ import annotations

import fcntl
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from gradebook.errors import GradebookError
from gradebook.points.page_tags import MAX_PAGES, latest_paper, tags_of
from gradebook.store.models import Handin

MAX_WIDTH, MAX_HEIGHT = 1400, 2000  # pixels per page image (an A4 page at 150 dpi is 1240 × 1754)
MEMORY_LIMIT = 1536 * 1024 * 1024  # bytes of address space of the renderer
CPU_SECONDS, TIMEOUT = 60, 120


class PageRenderError(GradebookError):
    """The pages of a hand-in could not be rendered; the message says why and names sheet and student."""


@dataclass(frozen=True)
class PageImage:
    number: int  # 1-based page of the PDF
    path: Path
    width: int
    height: int
    handin_id: int

    @property
    def url(self) -> str:
        return f"/handins/{self.handin_id}/pages/{self.number}.png"


@dataclass(frozen=True)
class RenderedPages:
    handin_id: int
    total: int  # pages of the PDF
    images: tuple[PageImage, ...]  # the first MAX_PAGES of them

    @property
    def truncated(self) -> bool:
        return self.total > len(self.images)


@dataclass(frozen=True)
class TaskPages:
    """What :func:`pages_for` answers: the images of a task (all pages when ``tagged`` is False)."""
    handin_id: int | None  # None: no PDF handed in
    images: tuple[PageImage, ...] = ()
    tagged: bool = False
    total: int = 0
    error: str = ""  # the PDF could not be rendered: why
    tags: dict[str, list[int]] = field(default_factory=dict)


def _limits() -> None:  # in the child, before exec
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_SECONDS, CPU_SECONDS))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def cache_dir(data_dir: Path, row: Handin) -> Path:
    """``page-images/<sheet>/<the PDF's server-chosen name>/<hand-in id>-<sha256 prefix>``: one folder per
    student and sheet, which keeps only the newest rendered hand-in (the older PDFs are replaced anyway)."""
    stem = Path(row.stored_path or "").stem.strip(".") or "none"
    return data_dir / "page-images" / row.sheet / stem / f"{row.id}-{(row.sha256 or 'nosha')[:16]}"


def _drop_older(folder: Path) -> None:
    """After a hand-in's pages are rendered: the images of the student's older hand-ins of the sheet go."""
    for other in folder.parent.iterdir():
        if other != folder and not other.name.startswith(".") and other.is_dir():
            shutil.rmtree(other, ignore_errors=True)


def _read_index(folder: Path, row: Handin) -> RenderedPages:
    index = json.loads((folder / "index.json").read_text(encoding="utf-8"))
    images = tuple(PageImage(n + 1, folder / f"{n + 1:03d}.png", int(w), int(h), row.id)
                   for n, (w, h) in enumerate(index["sizes"]))
    return RenderedPages(row.id, int(index["pages"]), images)


def _source(data_dir: Path, engine: Engine, row: Handin) -> Path:
    """The hand-in's PDF, if it is still this hand-in's (a newer upload replaces the file of the same name)."""
    from sqlalchemy import or_

    who = f"{row.sheet}, {row.student_id}"
    root = data_dir.resolve()
    path = (root / (row.stored_path or "")).resolve()
    if row.kind != "paper" or not row.stored_path or not path.is_relative_to(root) or not path.is_file():
        raise PageRenderError(f"{who}: this hand-in has no PDF")
    with Session(engine) as session:
        newer = session.execute(select(Handin.id).where(
            Handin.stored_path == row.stored_path, Handin.status == "accepted", Handin.id != row.id,
            or_(Handin.received_at > row.received_at, (Handin.received_at == row.received_at) & (Handin.id > row.id)))
            .limit(1)).first()
    if newer is not None:
        raise PageRenderError(f"{who}: the PDF of this hand-in was replaced by a newer hand-in")
    return path


def _run_renderer(pdf: Path, out: Path) -> str:
    """Render ``pdf`` into ``out`` in a bounded child process; '' on success, else the reason."""
    cmd = [sys.executable, "-m", "gradebook.points.page_render", str(pdf), str(out), str(MAX_PAGES),
           str(MAX_WIDTH), str(MAX_HEIGHT)]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=TIMEOUT, preexec_fn=_limits, env=env,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return f"rendering took longer than {TIMEOUT} s"
    if proc.returncode == 0:
        return ""
    detail = proc.stderr.decode("utf-8", "replace").strip().splitlines()
    if proc.returncode < 0 or not detail:
        return "the renderer stopped (the PDF needs more memory or time than allowed)"
    return detail[-1][:300]


def render_pages(data_dir: Path, engine: Engine, row: Handin) -> RenderedPages:
    """The page images of a paper hand-in, rendered on the first call (one render at a time per hand-in,
    others wait for it) and read from the cache afterwards. PageRenderError when the PDF cannot be rendered."""
    folder = cache_dir(data_dir, row)
    who = f"{row.sheet}, {row.student_id}"
    if (folder / "index.json").is_file():
        return _read_index(folder, row)
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f".{folder.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (folder / "index.json").is_file():
            return _read_index(folder, row)
        failed = folder.parent / f"{folder.name}.failed.txt"
        if failed.is_file():
            raise PageRenderError(f"{who}: the PDF could not be shown as images ({failed.read_text()[:300]}); "
                                  "open the PDF itself")
        pdf = _source(data_dir, engine, row)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
        try:
            reason = _run_renderer(pdf, tmp)
            if reason:
                failed.write_text(reason, encoding="utf-8")
                raise PageRenderError(f"{who}: the PDF could not be shown as images ({reason}); open the PDF itself")
            tmp.replace(folder)
            _drop_older(folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return _read_index(folder, row)


def pages_for(data_dir: Path, engine: Engine, sheet: str, student_id: str, task: str) -> TaskPages:
    """The page images of ``task`` in the newest paper hand-in of ``student_id`` (or a teammate) on ``sheet``:
    the tagged pages, or every page when the task is not tagged. A PDF that cannot be rendered is a
    ``TaskPages`` with ``error`` set (the PDF itself stays available); no PDF: ``handin_id`` None."""
    row = latest_paper(engine, sheet, student_id)
    if row is None:
        return TaskPages(None)
    try:
        rendered = render_pages(data_dir, engine, row)
    except PageRenderError as exc:
        return TaskPages(row.id, error=str(exc))
    tags = tags_of(engine, row.id)
    wanted = set(tags.get(task, ()))
    images = tuple(i for i in rendered.images if i.number in wanted) if wanted else rendered.images
    return TaskPages(row.id, images, bool(wanted), rendered.total, tags=tags)


def cached_pages(data_dir: Path, row: Handin) -> RenderedPages | None:
    """The page images of a hand-in if they were rendered already (never renders)."""
    folder = cache_dir(data_dir, row)
    return _read_index(folder, row) if (folder / "index.json").is_file() else None


def grid_pages(data_dir: Path, engine: Engine, handin_ids: dict[str, int]) -> dict[str, dict[str, TaskPages]]:
    """For the tutors' grid (student → the id of their paper hand-in): student → task → the task's pages,
    from what is rendered already (two queries, no rendering); a student whose pages are not rendered yet
    is left out (the page links to the pages view, which renders them)."""
    with Session(engine) as session:
        return read_grid_pages(session, data_dir, handin_ids)


def read_grid_pages(session: Session, data_dir: Path, handin_ids: dict[str, int]) -> dict[str, dict[str, TaskPages]]:
    """:func:`grid_pages` in ``session``: no statement when nobody handed in a PDF."""
    from gradebook.store.models import PageTag

    ids = set(handin_ids.values())
    if not ids:
        return {}
    rows = {r.id: r for r in session.execute(select(Handin).where(Handin.id.in_(ids))).scalars()}
    tags: dict[int, dict[str, set[int]]] = {}
    for hid, task, pages in session.execute(select(PageTag.handin_id, PageTag.task, PageTag.pages)
                                            .where(PageTag.handin_id.in_(ids))):
        tags.setdefault(hid, {})[task] = {int(p) for p in pages.split(",") if p}
    out: dict[str, dict[str, TaskPages]] = {}
    for student, hid in handin_ids.items():
        row = rows.get(hid)
        rendered = cached_pages(data_dir, row) if row is not None else None
        if rendered is None:
            continue
        mine = tags.get(hid, {})
        out[student] = {task: TaskPages(hid, tuple(i for i in rendered.images if i.number in pages), True,
                                        rendered.total) for task, pages in mine.items()}
        out[student][""] = TaskPages(hid, rendered.images, False, rendered.total)  # untagged tasks: every page
    return out
