"""`mlph mail ...`: set-password links, "your sheet was graded", announcements and a test message, each
through the course's one outbox (:mod:`gradebook.mail`); ``--dry-run DIR`` writes .eml files instead."""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from gradebook.cli.common import author_of, console, engine_of
from gradebook.course.config import load_config
from gradebook.mail.notify import Outbox
from gradebook.mail.outbox import SendReport

DRY_RUN = click.option("--dry-run", "dry_run", type=click.Path(path_type=Path, file_okay=False), default=None,
                       help="Write each message as an .eml file into this directory instead of sending it.")
AUTHOR = click.option("--author", default=None, help="Who sends (recorded; default: the current user).")


@contextlib.contextmanager
def _outbox(author: str | None, dry_run: Path | None) -> Iterator[Outbox]:
    """The course's outbox, with a progress bar on the terminal."""
    cfg = load_config()
    columns = (TextColumn("mail"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console(), transient=True) as bar:
        task = bar.add_task("mail", total=None)
        update: Callable[[int, int], None] = lambda done, total: bar.update(task, completed=done, total=total)
        yield Outbox(cfg, engine_of(cfg), author_of(author), dry_run, update)


def _report(report: SendReport, dry_run: Path | None) -> None:
    for line in report.lines():
        click.echo(line)
    if dry_run is not None:
        click.echo(f"(dry run: the messages are in {dry_run})")
    if report.failed:
        raise click.exceptions.Exit(1)


@click.group()
def mail() -> None:
    """Mail to students and staff through the relay of [mail] in mlph.toml (see docs/deployment.md)."""


@mail.command("links")
@click.argument("usernames", nargs=-1)
@click.option("--hours", type=click.IntRange(1, 24 * 30), default=72, show_default=True, help="How long a link works.")
@DRY_RUN
@AUTHOR
def mail_links(usernames: tuple[str, ...], hours: int, dry_run: Path | None, author: str | None) -> None:
    """Mail one-time set-password links to USERNAMES (none: every enabled account without a password).

    A mail never holds a password: the link's token is stored hashed, works once and expires; a new link
    cancels the account's older ones. A dry run issues working links too (into the .eml files).

    \b
    Example:  mlph mail links                      # every account still without a password
              mlph mail links ab1 cd2 --dry-run /tmp/mails
    """
    from gradebook.mail.notify import send_password_links

    with _outbox(author, dry_run) as outbox:
        report = send_password_links(outbox, list(usernames) or None, hours)
    _report(report, dry_run)


@mail.command("graded")
@click.argument("sheet")
@click.option("--part", type=click.Choice(["notebook", "paper"]), default="notebook", show_default=True)
@click.option("--student", "students", multiple=True, metavar="ID", help="Only this student (repeatable).")
@click.option("--again", is_flag=True, help="Also students already told about this part of SHEET.")
@DRY_RUN
@AUTHOR
def mail_graded(sheet: str, part: str, students: tuple[str, ...], again: bool, dry_run: Path | None,
                author: str | None) -> None:
    """Tell every student whose PART of SHEET is graded where to read points and feedback (once each).

    \b
    Example:  mlph autograde sheet04 && mlph mail graded sheet04
              mlph mail graded sheet04 --part paper      # once the paper points are published
    """
    from gradebook.mail.notify import sheet_graded

    with _outbox(author, dry_run) as outbox:
        report = sheet_graded(outbox, sheet, part, list(students) or None, again)
    _report(report, dry_run)


@mail.command("announce")
@click.option("--group", default=None, help="Only this tutorial group (default: the whole course).")
@click.option("--subject", required=True, help="The subject (after the course's name).")
@click.option("--body-file", type=click.Path(path_type=Path, dir_okay=False, exists=True), required=True,
              help="The text (plain UTF-8).")
@click.option("--no-tutors", is_flag=True, help="No copy to the group's tutor (or, for the course, the staff).")
@DRY_RUN
@AUTHOR
def mail_announce(group: str | None, subject: str, body_file: Path, no_tutors: bool, dry_run: Path | None,
                  author: str | None) -> None:
    """Send an announcement to a tutorial group or the whole course (with a copy to the tutors).

    \b
    Example:  mlph mail announce --group G1 --subject "Room change" --body-file note.txt
    """
    from gradebook.mail.notify import announce

    body = body_file.read_text(encoding="utf-8")
    with _outbox(author, dry_run) as outbox:
        report = announce(outbox, subject, body, group, tutors=not no_tutors)
    _report(report, dry_run)


@mail.command("test")
@click.argument("address")
@DRY_RUN
@AUTHOR
def mail_test(address: str, dry_run: Path | None, author: str | None) -> None:
    """Send one test message to ADDRESS (checks [mail] in mlph.toml and the password variable)."""
    from gradebook.mail.notify import test_mail

    with _outbox(author, dry_run) as outbox:
        report = test_mail(outbox, address)
    _report(report, dry_run)
