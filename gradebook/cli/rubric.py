"""`mlph rubric list|add|set|delete`: a paper task's rubric items in the database (seeded from the sheet's
manifest). A change of an item's points, or its deletion, changes the points of every student who has it,
in one transaction and one audited event."""
from __future__ import annotations

from fractions import Fraction

import click

from gradebook.cli.common import author_of, engine_of
from gradebook.course.config import load_config
from gradebook.course.tables import parse_decimal
from gradebook.errors import InputError


def _points(text: str, option: str = "POINTS") -> Fraction:
    try:
        return parse_decimal(text)
    except ValueError:
        raise InputError(f"{option} {text!r} is not a number (e.g. 1,5 or -0.5)") from None


@click.group()
def rubric() -> None:
    """Paper tasks' rubric items (points, text for students, note for tutors)."""


@rubric.command("list")
@click.argument("sheet")
@click.argument("task", required=False)
def rubric_list(sheet: str, task: str | None) -> None:
    """The rubric items of SHEET's paper tasks (or of TASK): key, points, text, note.

    \b
    Example:
      mlph rubric list sheet03 p1
    """
    from gradebook.points.paper import fmt
    from gradebook.points.rubric_edit import list_items

    cfg = load_config()
    for task_id, items in list_items(engine_of(cfg), cfg.manifest(sheet), task).items():
        click.echo(f"{sheet}/{task_id}: {len(items)} item(s)")
        for item in items:
            note = f"  [tutors: {item.note}]" if item.note else ""
            click.echo(f"  {item.key:<12} {fmt(item.points):>6}  {item.text}{note}")


@rubric.command("add", context_settings={"ignore_unknown_options": True})
@click.argument("sheet")
@click.argument("task")
@click.argument("points")
@click.argument("text")
@click.option("--note", default="", help="A note for tutors (students never see it).")
@click.option("--key", default=None, help="The item's key (default: i<n>); never reused.")
@click.option("--author", default=None, help="Who edits (default: the current user).")
@click.option("--reason", default=None, help="Recorded in the audit log.")
def rubric_add(sheet: str, task: str, points: str, text: str, note: str, key: str | None, author: str | None,
               reason: str | None) -> None:
    """Add an item worth POINTS (negative: a deduction) with TEXT for students to TASK of SHEET.

    \b
    Example:
      mlph rubric add sheet03 p1 -1 "Sign error in the last step" --note "only once per solution"
    """
    from gradebook.points.rubric_edit import add_item

    cfg = load_config()
    click.echo(str(add_item(engine_of(cfg), cfg.manifest(sheet), task, _points(points), text, author_of(author),
                            note, key, reason)))


@rubric.command("set")
@click.argument("sheet")
@click.argument("task")
@click.argument("item")
@click.option("--points", default=None, help="New points (every student who has the item changes).")
@click.option("--text", default=None, help="New text for students.")
@click.option("--note", default=None, help="New note for tutors.")
@click.option("--author", default=None, help="Who edits (default: the current user).")
@click.option("--reason", default=None, help="Recorded in the audit log.")
def rubric_set(sheet: str, task: str, item: str, points: str | None, text: str | None, note: str | None,
               author: str | None, reason: str | None) -> None:
    """Change ITEM of TASK on SHEET; prints how many students' points changed.

    \b
    Example:
      mlph rubric set sheet03 p1 setup --points 2 --reason "setup weighs more"
    """
    from gradebook.points.rubric_edit import set_item

    cfg = load_config()
    change = set_item(engine_of(cfg), cfg.manifest(sheet), task, item, author_of(author),
                      points=None if points is None else _points(points, "--points"), text=text, note=note,
                      reason=reason)
    click.echo(str(change))


@rubric.command("delete")
@click.argument("sheet")
@click.argument("task")
@click.argument("item")
@click.option("--author", default=None, help="Who edits (default: the current user).")
@click.option("--reason", default=None, help="Recorded in the audit log.")
def rubric_delete(sheet: str, task: str, item: str, author: str | None, reason: str | None) -> None:
    """Delete ITEM of TASK on SHEET: every grading that had it loses it and its points.

    \b
    Example:
      mlph rubric delete sheet03 p1 i4 --reason "duplicate of 'setup'"
    """
    from gradebook.points.rubric_edit import delete_item

    cfg = load_config()
    click.echo(str(delete_item(engine_of(cfg), cfg.manifest(sheet), task, item, author_of(author), reason)))
