"""Sheet manifests: ``source/sheetNN/sheet.toml`` declares a sheet's title, due date and tasks.

Notebook tasks name their nbgrader test cells (grade ids) with the points of each; paper tasks carry
their points directly, a model ``solution`` for tutors and a rubric (``[[task.rubric]]`` items with
``id``, ``text`` and ``points`` that add up to the task's points). ``time_budget_s`` is the cell time
the solution notebook may take. Points are exact (:class:`fractions.Fraction`).

A paper task without a rubric or solution parses (``mlph validate`` reports it); a rubric that is
malformed is a :class:`ManifestError`.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gradebook.course.late_rules import LateRule, parse_late
from gradebook.errors import ManifestError

MANIFEST_NAME = "sheet.toml"
DEFAULT_TIME_BUDGET_S = 2.0
TaskKind = Literal["notebook", "paper"]


def parse_points(value: object, where: str) -> Fraction:
    """Exact points from a TOML/CSV value: ints, decimal strings (``"2.5"``, ``"2,5"``) or ``"3/2"``."""
    if isinstance(value, bool):
        raise ManifestError(f"{where}: points must be a number, not {value!r}")
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, float):
        return Fraction(str(value))
    if isinstance(value, str):
        text = value.strip().replace(",", ".")
        try:
            return Fraction(text)
        except (ValueError, ZeroDivisionError):
            pass
    raise ManifestError(f"{where}: points must be a number, not {value!r}")


@dataclass(frozen=True)
class RubricItem:
    """One statement a tutor ticks for a paper task, worth ``points`` (a deduction when negative); ``note``
    is for tutors only."""
    id: str
    text: str
    points: Fraction
    note: str = ""


@dataclass(frozen=True)
class Task:
    id: str
    title: str
    kind: TaskKind
    points: Fraction
    tests: dict[str, Fraction] = field(default_factory=dict)
    rubric: tuple[RubricItem, ...] = ()
    solution: str | None = None  # paper tasks: the model solution for tutors (never released)
    scoring: str = "points"  # paper tasks: "points" (a grading starts at 0) or "deductions" (at the maximum)

    @property
    def start(self) -> Fraction:
        """Where a rubric grading starts: 0, or the maximum for a task scored by ``deductions`` (full marks
        minus what the ticked items take away)."""
        return self.points if self.scoring == "deductions" else Fraction(0)


# When a paper task's rubric texts reach a student (``rubric_to_students`` in sheet.toml): with that task's
# points once they are entered and the student's deadline has passed (the default), after the deadline
# whether graded or not, or never (tutors always see them).
RUBRIC_TO_STUDENTS = ("with-points", "after-deadline", "never")
# When a sheet's paper points, comments and rubric texts reach the students (``publish_paper`` in sheet.toml,
# else ``[paper] publish`` in mlph.toml): automatically once every paper hand-in is graded, or by an admin.
PUBLISH_PAPER = ("when-graded", "manual")


@dataclass(frozen=True)
class GradingRate:
    """How often a student's hand-ins of a sheet are graded (``[grading]`` in ``sheet.toml``): at most one
    graded run every ``minutes_between`` minutes and ``max_runs`` graded runs in all. Handing in is always
    possible; a hand-in beyond the limit waits for its turn. The hand-in that counts is always graded once
    the deadline has passed. Bounds what the visible checks can tell about the hidden inputs (docs/security.md)."""

    minutes_between: float = 10.0
    max_runs: int = 30


@dataclass(frozen=True)
class Manifest:
    id: str
    title: str
    notebook: str
    due: datetime
    tasks: tuple[Task, ...]
    path: Path
    time_budget_s: float = DEFAULT_TIME_BUDGET_S
    rubric_to_students: str = "with-points"  # one of RUBRIC_TO_STUDENTS
    grading_rate: GradingRate = field(default_factory=lambda: GradingRate())
    late: LateRule = field(default_factory=LateRule)  # [late] and [deadlines] over the course's (late_rules)
    publish_paper: str | None = None  # one of PUBLISH_PAPER; None: the course's ([paper] publish)
    regrade_days: float | None = None  # the regrade window after publishing; None: the course's

    @property
    def directory(self) -> Path:
        return self.path.parent

    @property
    def notebook_tasks(self) -> tuple[Task, ...]:
        return tuple(t for t in self.tasks if t.kind == "notebook")

    @property
    def paper_tasks(self) -> tuple[Task, ...]:
        return tuple(t for t in self.tasks if t.kind == "paper")

    @property
    def test_points(self) -> dict[str, Fraction]:
        """Every autograded test cell's grade id with its points."""
        return {gid: pts for t in self.notebook_tasks for gid, pts in t.tests.items()}

    @property
    def notebook_points(self) -> Fraction:
        return sum((t.points for t in self.notebook_tasks), Fraction(0))

    @property
    def paper_points(self) -> Fraction:
        return sum((t.points for t in self.paper_tasks), Fraction(0))

    @property
    def max_points(self) -> Fraction:
        return self.notebook_points + self.paper_points

    def rubric_shown(self, deadline_passed: bool, graded: bool) -> bool:
        """May a student read a paper task's rubric texts (``rubric_to_students``)?"""
        if self.rubric_to_students == "after-deadline":
            return deadline_passed
        return self.rubric_to_students == "with-points" and deadline_passed and graded

    def paper_task(self, task_id: str) -> Task | None:
        return next((t for t in self.paper_tasks if t.id == task_id), None)


def parse_due(value: object, tz_name: object, where: str) -> datetime:
    """A due date: an ISO local time interpreted in ``tz_name`` (or one with an explicit offset)."""
    if not isinstance(tz_name, str):
        raise ManifestError(f"{where}: 'timezone' must be a name such as 'Europe/Berlin'")
    try:
        tz = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ManifestError(f"{where}: unknown time zone {tz_name!r}") from exc
    if isinstance(value, datetime):
        due = value
    elif isinstance(value, str):
        try:
            due = datetime.fromisoformat(value)
        except ValueError as exc:
            raise ManifestError(f"{where}: due date {value!r} is not ISO 8601") from exc
    else:
        raise ManifestError(f"{where}: 'due' is missing or not a date")
    return due.replace(tzinfo=tz) if due.tzinfo is None else due.astimezone(tz)


SCORINGS = ("points", "deductions")


def _parse_rubric(raw: object, points: Fraction, where: str, scoring: str = "points") -> tuple[RubricItem, ...]:
    """A paper task's ``[[task.rubric]]`` items: unique ids, text, non-zero points (negative: a deduction)
    whose positive ones add up to ``points`` (a task scored by ``deductions`` starts at ``points``: no sum is
    required), an optional tutors' ``note``."""
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(r, dict) for r in raw):
        raise ManifestError(f"{where}: 'rubric' must be a list of [[task.rubric]] tables")
    items: list[RubricItem] = []
    for n, entry in enumerate(raw, 1):
        rid, text = entry.get("id"), entry.get("text")
        if not isinstance(rid, str) or not rid.strip():
            raise ManifestError(f"{where}: rubric item {n} needs a string 'id'")
        if not isinstance(text, str) or not text.strip():
            raise ManifestError(f"{where}: rubric item {rid!r} needs a non-empty 'text'")
        pts = parse_points(entry.get("points"), f"{where}: rubric item {rid!r}")
        if pts == 0:
            raise ManifestError(f"{where}: rubric item {rid!r} must carry points (positive, or negative for a deduction)")
        if any(i.id == rid for i in items):
            raise ManifestError(f"{where}: rubric item id {rid!r} is used twice")
        note = entry.get("note", "")
        if not isinstance(note, str):
            raise ManifestError(f"{where}: rubric item {rid!r}: 'note' must be text")
        items.append(RubricItem(rid, text.strip(), pts, note.strip()))
    total = sum((i.points for i in items if i.points > 0), Fraction(0))
    if items and scoring == "points" and total != points:
        raise ManifestError(f"{where}: the rubric items add up to {total} points, the task has {points}")
    return tuple(items)


def _parse_task(raw: dict[str, Any], where: str) -> Task:
    tid = raw.get("id")
    if not isinstance(tid, str) or not tid:
        raise ManifestError(f"{where}: every [[task]] needs a string 'id'")
    kind = raw.get("kind")
    title = str(raw.get("title", tid))
    if kind != "paper" and ("rubric" in raw or "solution" in raw):
        raise ManifestError(f"{where}: task {tid!r}: 'rubric' and 'solution' belong to paper tasks only")
    if kind != "paper" and "scoring" in raw:
        raise ManifestError(f"{where}: task {tid!r}: 'scoring' belongs to paper tasks only")
    if kind == "notebook":
        tests = raw.get("tests")
        if not isinstance(tests, dict) or not tests:
            raise ManifestError(f"{where}: notebook task {tid!r} needs 'tests = {{grade_id = points}}'")
        parsed = {str(g): parse_points(p, f"{where}: task {tid!r}, test {g!r}") for g, p in tests.items()}
        return Task(tid, title, "notebook", sum(parsed.values(), Fraction(0)), parsed)
    if kind == "paper":
        points = parse_points(raw.get("points"), f"{where}: task {tid!r}")
        if points <= 0:
            raise ManifestError(f"{where}: paper task {tid!r} must carry positive points")
        solution = raw.get("solution")
        if solution is not None and (not isinstance(solution, str) or not solution.strip()):
            raise ManifestError(f"{where}: paper task {tid!r}: 'solution' must be non-empty text")
        scoring = raw.get("scoring", "points")
        if scoring not in SCORINGS:
            raise ManifestError(f"{where}: paper task {tid!r}: 'scoring' must be \"points\" (start at 0 and add "
                                f"the items) or \"deductions\" (start at full marks), not {scoring!r}")
        rubric = _parse_rubric(raw.get("rubric"), points, f"{where}: paper task {tid!r}", scoring)
        return Task(tid, title, "paper", points, rubric=rubric, solution=solution, scoring=scoring)
    raise ManifestError(f"{where}: task {tid!r} has kind {kind!r}; expected 'notebook' or 'paper'")


def load_manifest(path: Path, course_late: dict[str, Any] | None = None,
                  course_deadlines: dict[str, Any] | None = None, content: bytes | None = None) -> Manifest:
    """Read and check one ``sheet.toml`` (``content``: its bytes, read already); raises :class:`ManifestError`
    naming the file. ``course_late`` / ``course_deadlines``: the course's ``[late]`` and ``[deadlines]``
    (mlph.toml), under the sheet's own."""
    where = str(path)
    try:
        text = (path.read_bytes() if content is None else content).decode("utf-8")
        raw = tomllib.loads(text.replace("\r\n", "\n").replace("\r", "\n"))  # newlines as read_text reads them
    except UnicodeDecodeError as exc:
        raise ManifestError(f"{where}: not UTF-8 text: {exc}") from exc
    except FileNotFoundError as exc:
        raise ManifestError(f"{where}: no manifest") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError(f"{where}: not valid TOML: {exc}") from exc
    sheet_id = raw.get("id", path.parent.name)
    if sheet_id != path.parent.name:
        raise ManifestError(f"{where}: id {sheet_id!r} differs from its directory {path.parent.name!r}")
    tasks = tuple(_parse_task(t, where) for t in raw.get("task", []))
    if not tasks:
        raise ManifestError(f"{where}: declares no [[task]]")
    seen: set[str] = set()
    for name in [t.id for t in tasks] + [g for t in tasks for g in t.tests]:
        if name in seen:
            raise ManifestError(f"{where}: id {name!r} is declared twice")
        seen.add(name)
    late = raw.get("late", {})
    if not isinstance(late, dict):
        raise ManifestError(f"{where}: [late] must be a table")
    rubric_to_students = raw.get("rubric_to_students", "with-points")
    if rubric_to_students not in RUBRIC_TO_STUDENTS:
        raise ManifestError(f"{where}: 'rubric_to_students' must be one of {', '.join(RUBRIC_TO_STUDENTS)}, "
                            f"not {rubric_to_students!r}")
    rate = _grading_rate(raw.get("grading", {}), where)
    publish, days = paper_settings(raw, where)
    budget = raw.get("time_budget_s", DEFAULT_TIME_BUDGET_S)
    if isinstance(budget, bool) or not isinstance(budget, (int, float)) or not 0 < budget < float("inf"):
        raise ManifestError(f"{where}: 'time_budget_s' must be a positive number of seconds, not {budget!r}")
    due = parse_due(raw.get("due"), raw.get("timezone"), where)
    rule = parse_late(late, course_late or {}, raw.get("deadlines", {}), course_deadlines or {}, due, where)
    return Manifest(
        id=sheet_id,
        title=str(raw.get("title", sheet_id)),
        notebook=str(raw.get("notebook", f"{sheet_id}.ipynb")),
        due=due,
        tasks=tasks,
        path=path,
        time_budget_s=float(budget),
        rubric_to_students=str(rubric_to_students),
        grading_rate=rate,
        late=rule,
        publish_paper=publish,
        regrade_days=days,
    )


def paper_settings(raw: dict[str, Any], where: str, publish_key: str = "publish_paper") -> tuple[str | None, float | None]:
    """``publish_paper`` and ``regrade_days`` of a manifest (or ``[paper] publish``/``regrade_days`` of mlph.toml),
    checked; None where absent."""
    publish, days = raw.get(publish_key), raw.get("regrade_days")
    if publish is not None and publish not in PUBLISH_PAPER:
        raise ManifestError(f"{where}: '{publish_key}' must be one of {', '.join(PUBLISH_PAPER)}, not {publish!r}")
    if days is not None and (isinstance(days, bool) or not isinstance(days, (int, float)) or not 0 <= days <= 366):
        raise ManifestError(f"{where}: 'regrade_days' must be a number of days from 0 to 366, not {days!r}")
    return (None if publish is None else str(publish)), (None if days is None else float(days))


def _grading_rate(raw: Any, where: str) -> GradingRate:
    if not isinstance(raw, dict):
        raise ManifestError(f"{where}: [grading] must be a table")
    unknown = set(raw) - {"minutes_between", "max_runs"}
    if unknown:
        raise ManifestError(f"{where}: [grading] has unknown key(s) {', '.join(sorted(unknown))} "
                            "(known: minutes_between, max_runs)")
    minutes, runs = raw.get("minutes_between", 10.0), raw.get("max_runs", 30)
    if isinstance(minutes, bool) or not isinstance(minutes, (int, float)) or not 0 <= minutes < 10**6:
        raise ManifestError(f"{where}: [grading] minutes_between must be a number of minutes >= 0, not {minutes!r}")
    if isinstance(runs, bool) or not isinstance(runs, int) or runs < 1:
        raise ManifestError(f"{where}: [grading] max_runs must be a whole number >= 1, not {runs!r}")
    return GradingRate(float(minutes), runs)
