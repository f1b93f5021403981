"""Commands for publishing paper points (`mlph publish`, `mlph unpublish`, `mlph published`) and for the
students' regrade requests on paper tasks (`mlph regrade list`, `mlph regrade answer`): thin wrappers of
:mod:`gradebook.points.publishing` and :mod:`gradebook.points.regrades`."""
from __future__ import annotations

from fractions import Fraction

import click

from gradebook.cli.common import author_of, console, engine_of, local
from gradebook.course.config import load_config
from gradebook.course.tables import parse_decimal
from gradebook.errors import InputError


@click.command()
@click.argument("sheet")
@click.option("--reason", default="", help="Recorded in the audit log.")
@click.option("--author", default=None, help="Who publishes (default: the current user).")
def publish(sheet: str, reason: str, author: str | None) -> None:
    """Publish SHEET's paper points, tutors' comments and rubric marks to its students now (audited).

    \b
    By default a sheet publishes itself once every paper hand-in is graded (`publish_paper` in sheet.toml or
    `[paper] publish` in mlph.toml: "when-graded" or "manual"). A student whose tasks are not all graded yet
    keeps reading "being graded" (never partial points). Example:  mlph publish sheet04
    """
    from gradebook.points.publishing import publish as publish_sheet

    cfg = load_config()
    waiting = publish_sheet(engine_of(cfg), cfg, sheet, author_of(author), reason)
    click.echo(f"{sheet}: paper points published" + (f"; {len(waiting)} student(s) still without all paper points "
                                                     f"read \"being graded\": {', '.join(waiting[:10])}" if waiting else ""))


@click.command()
@click.argument("sheet")
@click.option("--reason", required=True, help="Why (audited).")
@click.option("--author", default=None, help="Who (default: the current user).")
def unpublish(sheet: str, reason: str, author: str | None) -> None:
    """Withdraw SHEET's published paper points (students read "being graded" again; no automatic publication
    follows until `mlph publish`). Example:  mlph unpublish sheet04 --reason "task 2 graded with the wrong key"
    """
    from gradebook.points.publishing import unpublish as unpublish_sheet

    cfg = load_config()
    unpublish_sheet(engine_of(cfg), cfg, sheet, author_of(author), reason)
    click.echo(f"{sheet}: paper points withdrawn from the students")


@click.command()
def published() -> None:
    """Each sheet with paper tasks: its publishing policy, whether (since when, how) its paper points are
    published, and who is still waiting for points."""
    from rich.table import Table

    from gradebook.points.publishing import publications

    cfg = load_config()
    table = Table("sheet", "policy", "published", "waiting for points")
    for p in publications(engine_of(cfg), cfg, detail=True).values():
        state = f"{local(p.published_at, cfg)} ({p.how}, {p.author})" if p.published else (
            "withdrawn" if p.how == "withdrawn" else "no")
        table.add_row(p.sheet, p.policy, state, f"{len(p.waiting)}: {', '.join(p.waiting[:5])}" if p.waiting else "0")
    console().print(table)


class _RegradeGroup(click.Group):
    """`mlph regrade list|answer|notebook …`; any other first word is the older `mlph regrade SHEET STUDENT`."""

    def resolve_command(self, ctx: click.Context, args: list[str]) -> tuple[str | None, click.Command | None, list[str]]:
        if args and args[0] not in self.commands and "notebook" in self.commands:
            args = ["notebook", *args]
        return super().resolve_command(ctx, args)


@click.group(cls=_RegradeGroup)
def regrade() -> None:
    """Regrade requests on paper tasks (`list`, `answer`); `mlph regrade SHEET STUDENT --reason …` (or
    `mlph regrade notebook …`) has a notebook hand-in graded again."""


@regrade.command("list")
@click.option("--sheet", default=None, help="Only this sheet.")
@click.option("--all", "everything", is_flag=True, help="Answered requests too (default: open ones only).")
@click.option("--for", "person", default=None, help="Only those this tutor may answer (not the task's grader).")
def regrade_list(sheet: str | None, everything: bool, person: str | None) -> None:
    """List regrade requests, oldest first. Example:  mlph regrade list --for tutor2"""
    from rich.table import Table

    from gradebook.points.paper import fmt
    from gradebook.points.regrades import requests

    cfg = load_config()
    found = requests(engine_of(cfg), sheet=sheet, open_only=not everything, answerable_by=person)
    table = Table("#", "sheet/task", "student", "asked", "graded by", "points", "reason", "answer")
    for r in found:
        points = fmt(r.points_before) if r.points_before is not None else "-"
        if not r.open and r.changed and r.points_after is not None:
            points += f" → {fmt(r.points_after)}"
        table.add_row(str(r.id), f"{r.sheet}/{r.task}", r.student, local(r.requested_at, cfg), r.grader or "-", points,
                      r.reason[:80], "open" if r.open else f"{r.answered_by}: {(r.answer or '')[:60]}")
    console().print(table)
    click.echo(f"{len(found)} request(s)")


@regrade.command("answer")
@click.argument("request_id", type=int)
@click.option("--answer", "text", required=True, help="The answer the student reads.")
@click.option("--points", default=None, help="New points for the task (decimal comma fine); default: unchanged.")
@click.option("--ticks", default=None, help="Or the rubric items that apply, comma-separated (their sum).")
@click.option("--author", default=None, help="Who answers (default: the current user); not the task's grader.")
@click.option("--admin", "as_admin", is_flag=True, help="Answer as an admin (may answer any request).")
def regrade_answer(request_id: int, text: str, points: str | None, ticks: str | None, author: str | None,
                   as_admin: bool) -> None:
    """Answer regrade request REQUEST_ID (audited; new points go through the grid's write path).

    \b
    Example:  mlph regrade answer 12 --answer "Step 2 is right after all" --points 3,5 --author tutor2
    """
    from gradebook.points.paper import fmt
    from gradebook.mail.notify import answer_mailed
    from gradebook.points.regrades import answer_request

    cfg = load_config()
    value = _points(points)
    done = answer_request(engine_of(cfg), cfg, request_id, author_of(author), as_admin, text, value,
                          [t.strip() for t in ticks.split(",") if t.strip()] if ticks is not None else None)
    after = fmt(done.points_after) if done.points_after is not None else "-"
    click.echo(f"#{done.id} {done.sheet}/{done.task}, {done.student}: answered; points "
               + (f"changed to {after}" if done.changed else f"unchanged ({after})"))
    mailed = answer_mailed(cfg, engine_of(cfg), done, author_of(author))
    click.echo("no mail: no relay in mlph.toml [mail]" if mailed is None else "mail to the student: " + mailed.lines()[0])
    for line in mailed.lines()[1:] if mailed else []:
        click.echo(line, err=True)


def _points(text: str | None) -> Fraction | None:
    if text is None:
        return None
    try:
        return parse_decimal(text)
    except ValueError as exc:
        raise InputError(f"--points {text!r} is not a number") from exc


def register(group: click.Group, notebook_regrade: click.Command | None = None) -> None:
    """Attach the commands; ``notebook_regrade`` (the older `mlph regrade SHEET STUDENT`) becomes
    `mlph regrade notebook`, and `mlph regrade SHEET STUDENT …` keeps working."""
    for command in (publish, unpublish, published):
        group.add_command(command)
    if notebook_regrade is not None:
        regrade.add_command(notebook_regrade, "notebook")
    group.add_command(regrade)
