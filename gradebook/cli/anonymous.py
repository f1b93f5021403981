"""`mlph anonymous SHEET on|off|reveal`: anonymous grading of a sheet (tutors see pseudonyms), audited."""
from __future__ import annotations

import click

from gradebook.cli.common import author_of, console, engine_of
from gradebook.course.config import load_config


@click.command("anonymous")
@click.argument("sheet")
@click.argument("action", type=click.Choice(["on", "off", "reveal", "status"]))
@click.option("--reason", default=None, help="Recorded in the audit log (required for reveal).")
@click.option("--author", default=None, help="Who made the change (default: the current user).")
def anonymous(sheet: str, action: str, reason: str | None, author: str | None) -> None:
    """Grade SHEET anonymously (tutors see a pseudonym, never a name, id, e-mail or login), or not.

    `reveal` prints pseudonym → student for the sheet (an audited admin action). Names written inside
    a student's PDF are not hidden.

    \b
    Examples:
      mlph anonymous sheet03 on
      mlph anonymous sheet03 reveal --reason "regrade request of a student"
    """
    from gradebook.course.anonymity import anonymity_command

    cfg = load_config()
    for line in anonymity_command(engine_of(cfg), cfg.manifest(sheet).id, action, author_of(author), reason):
        console().print(line, highlight=False)
