"""The shape every sheet of the course has (source/README.md): points, tasks, rubrics, mistakes.

The numbers are data (:class:`Conventions`). The course sets them in a ``[conventions]`` table of
``mlph.toml`` (defaults: :data:`COURSE`, 13 + 7 points, 3–4 notebook tasks, ...); a sheet may set its
own in a ``[conventions]`` table of its ``sheet.toml`` (a small or a bonus sheet). Each value
remembers the file it came from, and every problem names the rule and that file.
:func:`sheet_conventions` reads both; :func:`sheet_flags` reads a sheet's ``wip`` mark.
"""
from __future__ import annotations

import dataclasses
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from nbformat import NotebookNode

from gradebook.course.manifest import Manifest

from autograder.errors import SheetError

HANDIN = "Hand in the pen-and-paper part as one PDF"
TABLE = "conventions"


class ConventionsError(SheetError):
    """A ``[conventions]`` table (of mlph.toml or a sheet.toml) has an unknown key or a wrong value."""


@dataclass(frozen=True)
class Conventions:
    notebook_points: Fraction | None = Fraction(13)   # None: any
    paper_points: Fraction | None = Fraction(7)
    notebook_tasks: tuple[int, int] = (3, 4)          # inclusive range
    paper_tasks: tuple[int, int] = (1, 2)
    rubric_items: tuple[int, int] = (2, 4)
    min_mistakes: int = 10
    min_mistakes_per_cell: int = 2
    handin_sentence: str | None = HANDIN               # must appear in the notebook's Markdown
    # where each value that is not the default was set, e.g. "mlph.toml [conventions]"
    origin: Mapping[str, str] = field(default_factory=dict, compare=False, hash=False)

    def rule(self, key: str) -> str:
        """The rule ``key`` as written, with where it comes from (for a problem's message)."""
        where = self.origin.get(key)
        value = _shown(getattr(self, key))
        if where is None and getattr(self, key) != getattr(COURSE, key):
            return f"rule {key} = {value}"  # given by the caller (a test)
        if where is None:
            return f"rule {key} = {value}: the default; set it in [{TABLE}] of mlph.toml or of the sheet's sheet.toml"
        return f"rule {key} = {value} from {where}"


COURSE = Conventions()
FIELDS = tuple(f.name for f in dataclasses.fields(Conventions) if f.name != "origin")


def _shown(value: object) -> str:
    if isinstance(value, tuple):
        return f"[{value[0]}, {value[1]}]"
    if value is None:
        return '"any"'
    if isinstance(value, str):
        return repr(value)
    return str(value)


def _range(value: object, where: str) -> tuple[int, int]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value, value]
    if (isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) and not isinstance(v, bool)
                                                            for v in value) and 0 <= value[0] <= value[1]):
        return (value[0], value[1])
    raise ConventionsError(f"{where} must be [least, most] (whole numbers, 0 <= least <= most) or one whole "
                           f"number, not {value!r}")


def _points(value: object, where: str) -> Fraction | None:
    if value == "any":
        return None
    try:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ValueError
        points = Fraction(str(value).strip().replace(",", "."))
    except (ValueError, ZeroDivisionError):
        raise ConventionsError(f"{where} must be points (13, 2.5, \"15/2\") or \"any\", not {value!r}") from None
    if points < 0:
        raise ConventionsError(f"{where} must not be negative, not {value!r}")
    return points


def _count(value: object, where: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise ConventionsError(f"{where} must be a whole number >= 0, not {value!r}")


def _sentence(value: object, where: str) -> str | None:
    if isinstance(value, str):
        return value.strip() or None
    raise ConventionsError(f"{where} must be text (\"\": no sentence required), not {value!r}")


_PARSE = {"notebook_points": _points, "paper_points": _points, "notebook_tasks": _range, "paper_tasks": _range,
          "rubric_items": _range, "min_mistakes": _count, "min_mistakes_per_cell": _count,
          "handin_sentence": _sentence}


def apply_table(base: Conventions, table: object, where: str) -> Conventions:
    """``base`` with the values of a ``[conventions]`` table read from ``where`` (a file's name)."""
    if not isinstance(table, dict):
        raise ConventionsError(f"{where}: [{TABLE}] must be a table")
    unknown = sorted(set(table) - set(FIELDS))
    if unknown:
        raise ConventionsError(f"{where}: [{TABLE}] has unknown key(s) {', '.join(unknown)} (known: {', '.join(FIELDS)})")
    values: dict[str, Any] = {key: _PARSE[key](value, f"{where}: [{TABLE}] {key}") for key, value in table.items()}
    origin = {**base.origin, **{key: f"{where} [{TABLE}]" for key in values}}
    return dataclasses.replace(base, **values, origin=origin)


def _read(path: Path, shown: str) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConventionsError(f"{shown}: {exc}") from exc


def _shown_path(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def sheet_conventions(root: Path, manifest: Manifest) -> Conventions:
    """The conventions a sheet is validated against: the defaults, then ``mlph.toml``'s ``[conventions]``
    (the course's), then the sheet's own in its ``sheet.toml``. A wrong value raises
    :class:`ConventionsError` naming the file and the key."""
    conv = COURSE
    for path in (root / "mlph.toml", manifest.path):
        shown = _shown_path(path, root)
        raw = _read(path, shown) if path.is_file() else {}
        if TABLE in raw:
            conv = apply_table(conv, raw[TABLE], shown)
    return conv


def sheet_flags(root: Path, manifest: Manifest) -> str | None:
    """Why the sheet is work in progress (``wip = true`` in its sheet.toml), or None."""
    shown = _shown_path(manifest.path, root)
    wip = _read(manifest.path, shown).get("wip", False)
    if not isinstance(wip, bool):
        raise ConventionsError(f"{shown}: wip must be true or false, not {wip!r}")
    return f"marked work in progress (wip = true in {shown})" if wip else None


def _bounds(what: str, n: int, conv: Conventions, key: str) -> list[str]:
    lo, hi = getattr(conv, key)
    return [] if lo <= n <= hi else [f"{n} {what}; a sheet has {lo}–{hi} ({conv.rule(key)})"]


def _plain(text: str) -> str:
    """Markdown as words: emphasis marks dropped, whitespace collapsed."""
    return " ".join(re.sub(r"[*_`]", "", text).split())


def check_conventions(manifest: Manifest, source: NotebookNode, conv: Conventions) -> list[str]:
    """Points and task counts, each paper task's rubric and model solution, the hand-in sentence."""
    name = manifest.path.name
    problems = _bounds("notebook tasks", len(manifest.notebook_tasks), conv, "notebook_tasks")
    problems += _bounds("paper tasks", len(manifest.paper_tasks), conv, "paper_tasks")
    for part, have, key in (("autograded", manifest.notebook_points, "notebook_points"),
                            ("pen-and-paper", manifest.paper_points, "paper_points")):
        want = getattr(conv, key)
        if want is not None and have != want:
            problems.append(f"{have} {part} points in {name}; a sheet has {want} ({conv.rule(key)})")
    for task in manifest.paper_tasks:
        if not task.rubric:
            problems.append(f"paper task {task.id!r} has no rubric in {name} ([[task.rubric]] items with id, "
                            "text and points that add up to the task's points)")
        else:
            problems += [f"paper task {task.id!r}: {p}"
                         for p in _bounds("rubric items", len(task.rubric), conv, "rubric_items")]
        if not task.solution:
            problems.append(f"paper task {task.id!r} has no model solution in {name} (solution = '''...''')")
    if conv.handin_sentence and manifest.paper_tasks:
        text = _plain(" ".join("".join(c.source) for c in source.cells if c.cell_type == "markdown"))
        if _plain(conv.handin_sentence) not in text:
            problems.append(f"the notebook's text does not say how to hand in the paper part: "
                            f"\"{conv.handin_sentence} ...\" ({conv.rule('handin_sentence')})")
    return problems
