"""One student's standing, as `mlph status` and the web's dashboard show it: per sheet the notebook and
paper points, the state (graded / late / missing / invalid / pending / planned …), the hand-in time, the
deadline and the stored late decision; then the total, percentage, status and points still needed."""
from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from gradebook.store import nbgrader_tables as nt
from gradebook.admission.lines import part_lines
from gradebook.admission.rule import Standing, compute_standings, percent_text
from gradebook.course.config import CourseConfig
from gradebook.errors import UnknownStudentError
from gradebook.points.paper import fmt


def student_standing(engine: Engine, cfg: CourseConfig, student: str, as_of: datetime | None = None) -> Standing:
    """``student``'s standing; an error for an id not on the roster (saying whether the gradebook has it)."""
    found = [s for s in compute_standings(engine, cfg, as_of) if s.student_id == student]
    if found:
        return found[0]
    with Session(engine) as session:
        known = session.execute(select(nt.student.c.id).where(nt.student.c.id == student)).first() is not None
    if known:
        raise UnknownStudentError(f"{student!r} is not on the roster (an id the autograder stored before the "
                                  f"roster existed): import it with `mlph students import` to count it")
    raise UnknownStudentError(f"unknown student {student!r} (not on the roster; `mlph students list` lists it)")


def _when(when: datetime | None, tz: str, seconds: bool = False) -> str:
    if when is None:
        return ""
    when = when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when
    return f"{when.astimezone(ZoneInfo(tz)):%a %d %b %H:%M{':%S' if seconds else ''}}"


def _opt(value: object) -> str:
    return "" if value is None else fmt(value)  # type: ignore[arg-type]


def status_lines(st: Standing, cfg: CourseConfig) -> list[str]:
    """The summary under the table (also what a test or the web reads)."""
    pending = [c.sheet for c in st.cells.values() if not c.decided]
    lines = [f"total {fmt(st.points)} of {fmt(st.max_points)} ({percent_text(st.fraction)}%); "
             f"threshold {fmt(st.threshold)}"]
    lines.append(f"status: {st.status}" + (f" (override: {st.override_reason})" if st.override_reason else "")
                 + (f"; {fmt(st.points_needed)} points still needed" if st.points_needed else ""))
    if pending:
        lines.append(f"not decided yet: {', '.join(pending)} (up to {fmt(st.still_reachable)} points still reachable)")
    semester = {sem.id: sem for sem in cfg.semester}
    for c in st.cells.values():
        if c.decision:
            lines.append(f"{c.sheet}: {c.decision}")
        if c.stored_deadline is not None and c.stored_deadline != c.deadline:
            lines.append(f"{c.sheet}: the deadline is now {_when(c.deadline, cfg.timezone)}; the stored decision was "
                         f"taken against {_when(c.stored_deadline, cfg.timezone)} (`mlph redecide {c.sheet} --reason …` "
                         "takes it again)")
        if c.sheet in semester and (c.late or c.decided):
            lines.extend(f"{c.sheet}: {line.text()}" for line in part_lines(c, semester[c.sheet]) if line.rule)
    return lines


def print_status(console: Console, st: Standing, cfg: CourseConfig) -> None:
    table = Table(title=f"{st.student_id}: {st.first_name} {st.last_name}" + (f" (group {st.group})" if st.group else ""),
                  caption=f"times in {cfg.timezone}")
    for name, justify in (("sheet", "left"), ("notebook", "right"), ("paper", "right"), ("counts", "right"),
                          ("state", "left"), ("handed in", "left"), ("deadline", "left")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for c in st.cells.values():
        counts = fmt(c.counted) if c.counted is not None else c.state
        table.add_row(c.sheet, _opt(c.notebook), _opt(c.paper), counts, c.state + (" (late)" if c.late and
                                                                                     c.state != "late" else ""),
                      _when(c.received_at, cfg.timezone), _when(c.deadline, cfg.timezone) + (" ext." if c.extended else ""))
    console.print(table)
    for line in status_lines(st, cfg):
        console.print(line, highlight=False, soft_wrap=True)
