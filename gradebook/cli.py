"""The gradebook's commands; :func:`register` attaches them to the root `mlph` group."""
from __future__ import annotations

import getpass
from datetime import datetime, timezone
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from .config import load_config
from .db import open_gradebook
from .errors import InputError

console = Console()


@click.group()
def students() -> None:
    """The roster."""


@students.command("import")
@click.argument("file", type=click.Path(path_type=Path))
def students_import(file: Path) -> None:
    """Import the roster from CSV/XLSX (header student_id,last_name,first_name,email[,matriculation,programme])."""
    from .roster import import_students

    cfg = load_config()
    click.echo(f"{file}: {import_students(open_gradebook(cfg.db_url), file)}")


@click.group()
def points() -> None:
    """Pen-and-paper points."""


@points.command("import")
@click.argument("sheet")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--author", default=None, help="Who graded (default: the current user).")
@click.option("--reason", default=None, help="Recorded in the audit log (default: the file name).")
def points_import(sheet: str, file: Path, author: str | None, reason: str | None) -> None:
    """Import a tutor's points for SHEET from CSV/XLSX (header student_id,task,points; 2,5 accepted)."""
    from .paper import import_points

    cfg = load_config()
    report = import_points(open_gradebook(cfg.db_url), cfg.manifest(sheet), file, author or getpass.getuser(), reason)
    click.echo(f"{file}: {report}")


@points.command("template")
@click.argument("sheet")
@click.option("--group", default=None, help="Only this tutorial group's students.")
@click.option("--output", type=click.Path(path_type=Path), default=None, help="Default: points-SHEET[-GROUP].csv")
def points_template(sheet: str, group: str | None, output: Path | None) -> None:
    """Write the CSV a tutor fills in: every student × paper task of SHEET, points empty."""
    from .paper import write_template

    cfg = load_config()
    out = output or Path(f"points-{sheet}{'-' + group if group else ''}.csv")
    n = write_template(open_gradebook(cfg.db_url), cfg.manifest(sheet), out, group)
    click.echo(f"{out}: {n} rows")


def _as_of(text: str | None) -> datetime:
    if not text:
        return datetime.now(timezone.utc)
    try:
        when = datetime.fromisoformat(text)
    except ValueError as exc:
        raise InputError(f"--as-of {text!r} is not an ISO date/time") from exc
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


@click.command()
@click.option("--csv", "csv_path", type=click.Path(path_type=Path), default=None, help="Write the list as CSV.")
@click.option("--xlsx", "xlsx_path", type=click.Path(path_type=Path), default=None, help="Write the list as XLSX.")
@click.option("--as-of", default=None, help="Evaluate at this ISO time (default: now).")
def admission(csv_path: Path | None, xlsx_path: Path | None, as_of: str | None) -> None:
    """Every student's points, maximum, percent and status (admitted / not_admitted / open)."""
    from .admission import compute_standings
    from .exports import write_csv, write_xlsx

    cfg = load_config()
    standings = compute_standings(open_gradebook(cfg.db_url), cfg, _as_of(as_of))
    counts: dict[str, int] = {}
    for s in standings:
        counts[s.status] = counts.get(s.status, 0) + 1
    table = Table(title=f"admission ({len(standings)} students, threshold {float(standings[0].threshold) if standings else 0:g} points)")
    table.add_column("status")
    table.add_column("students", justify="right")
    for status, n in sorted(counts.items()):
        table.add_row(status, str(n))
    console.print(table)
    if csv_path:
        click.echo(f"wrote {write_csv(standings, csv_path)}")
    if xlsx_path:
        click.echo(f"wrote {write_xlsx(standings, xlsx_path)}")


def register(group: click.Group) -> None:
    for command in (students, points, admission):
        group.add_command(command)
