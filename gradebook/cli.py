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
@click.option("--preview-threshold", default=None, metavar="RULE",
              help="Only list who would change status under this threshold ('2/5' or points); writes nothing.")
def admission(csv_path: Path | None, xlsx_path: Path | None, as_of: str | None, preview_threshold: str | None) -> None:
    """Every student's points, maximum, percent and status (admitted / not_admitted / open)."""
    from .admission import compute_standings, preview
    from .exports import write_csv, write_xlsx

    cfg = load_config()
    if preview_threshold:
        changes = preview(open_gradebook(cfg.db_url), cfg, preview_threshold, _as_of(as_of))
        for sid, name, old, new in changes:
            click.echo(f"{sid}\t{name}\t{old} -> {new}")
        click.echo(f"{len(changes)} student(s) would change status under threshold {preview_threshold}")
        return
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


@click.group()
def groups() -> None:
    """Tutorial groups, tutors and memberships."""


@groups.command("import")
@click.argument("file", type=click.Path(path_type=Path))
def groups_import(file: Path) -> None:
    """Groups and tutors from CSV/XLSX (header group,name,tutor_id[,tutor_name,tutor_email])."""
    from .groups import import_groups

    click.echo(f"{file}: {import_groups(open_gradebook(load_config().db_url), file)}")


@groups.command("assign")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--author", default=None, help="Who made the change (default: the current user).")
def groups_assign(file: Path, author: str | None) -> None:
    """Put students into groups from CSV/XLSX (header student_id,group); moves keep the history."""
    from .groups import assign_students

    report = assign_students(open_gradebook(load_config().db_url), file, author or getpass.getuser())
    click.echo(f"{file}: {report}")


@click.group()
def staff() -> None:
    """Admins and tutors."""


@staff.command("add")
@click.argument("person_id")
@click.option("--name", required=True)
@click.option("--email", default=None)
@click.option("--role", type=click.Choice(["admin", "tutor"]), required=True)
@click.option("--author", default=None)
def staff_add(person_id: str, name: str, email: str | None, role: str, author: str | None) -> None:
    """Add or update an admin or a tutor (audited)."""
    from .groups import add_staff

    add_staff(open_gradebook(load_config().db_url), person_id, name, email, role, author or getpass.getuser())
    click.echo(f"{person_id}: {role}")


@click.group()
def override() -> None:
    """Admission overrides: they change a status, never points."""


@override.command("set")
@click.argument("student")
@click.argument("status", type=click.Choice(["admitted", "not_admitted"]))
@click.option("--reason", required=True, help="E.g. 'medical certificate', 'repeated course'.")
@click.option("--author", default=None)
def override_set(student: str, status: str, reason: str, author: str | None) -> None:
    """Set STUDENT's admission STATUS regardless of points, with a reason (audited)."""
    from .overrides import set_override

    set_override(open_gradebook(load_config().db_url), student, status, reason, author or getpass.getuser())
    click.echo(f"{student}: {status} ({reason})")


@override.command("revoke")
@click.argument("student")
@click.option("--reason", required=True)
@click.option("--author", default=None)
def override_revoke(student: str, reason: str, author: str | None) -> None:
    """Revoke STUDENT's active override (audited)."""
    from .overrides import revoke_override

    revoke_override(open_gradebook(load_config().db_url), student, author or getpass.getuser(), reason)
    click.echo(f"{student}: override revoked")


@click.command()
@click.argument("student")
@click.option("--as-of", default=None, help="Evaluate at this ISO time (default: now).")
def status(student: str, as_of: str | None) -> None:
    """STUDENT's points per sheet, total, maximum, status and the points still needed."""
    from .admission import compute_standings
    from .errors import UnknownStudentError
    from .paper import fmt

    cfg = load_config()
    found = [s for s in compute_standings(open_gradebook(cfg.db_url), cfg, _as_of(as_of)) if s.student_id == student]
    if not found:
        raise UnknownStudentError(f"unknown student {student!r}")
    st = found[0]
    table = Table(title=f"{st.student_id}: {st.first_name} {st.last_name}")
    table.add_column("sheet")
    table.add_column("points", justify="right")
    for sheet, pts in st.sheets.items():
        table.add_row(sheet, "not graded yet" if pts is None else fmt(pts))
    console.print(table)
    click.echo(f"total {fmt(st.points)} of {fmt(st.max_points)} ({float(st.fraction):.2%}); threshold {fmt(st.threshold)}")
    click.echo(f"status: {st.status}" + (f" (override: {st.override_reason})" if st.override_reason else "")
               + (f"; {fmt(st.points_needed)} points still needed" if st.points_needed else ""))


@click.command("grade")
@click.argument("sheet")
@click.argument("student")
@click.argument("cell")
@click.argument("points")
@click.option("--reason", required=True, help="Why the autograder's score is overridden (audited).")
@click.option("--author", default=None)
def grade(sheet: str, student: str, cell: str, points: str, reason: str, author: str | None) -> None:
    """Override the score of test CELL of STUDENT's SHEET submission (POINTS, or 'clear')."""
    from .manual import set_manual_score
    from .tables import parse_decimal

    cfg = load_config()
    cfg.manifest(sheet)
    try:
        value = None if points == "clear" else parse_decimal(points)
    except ValueError as exc:
        raise InputError(f"points {points!r} is not a number") from exc
    set_manual_score(open_gradebook(cfg.db_url), sheet, student, cell, value, author or getpass.getuser(), reason)
    click.echo(f"{sheet}/{cell}, {student}: {points}")


@click.command()
@click.argument("sheet")
@click.argument("student")
@click.argument("until")
@click.option("--reason", required=True)
@click.option("--author", default=None)
def extension(sheet: str, student: str, until: str, reason: str, author: str | None) -> None:
    """Move STUDENT's deadline for SHEET to UNTIL (ISO time, course time zone if none; audited)."""
    from zoneinfo import ZoneInfo

    from .manual import set_extension

    cfg = load_config()
    cfg.manifest(sheet)
    try:
        when = datetime.fromisoformat(until)
    except ValueError as exc:
        raise InputError(f"{until!r} is not an ISO date/time") from exc
    when = when if when.tzinfo else when.replace(tzinfo=ZoneInfo(cfg.timezone))
    set_extension(open_gradebook(cfg.db_url), sheet, student, when, author or getpass.getuser(), reason)
    click.echo(f"{sheet}, {student}: due {when.isoformat()}")


@click.group()
def teams() -> None:
    """Teams that hand in together (per sheet)."""


@teams.command("import")
@click.argument("sheet")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--author", default=None)
def teams_import(sheet: str, file: Path, author: str | None) -> None:
    """Set SHEET's teams from CSV/XLSX (header student_id,team); members share their points."""
    from .teams import import_teams

    cfg = load_config()
    n = import_teams(open_gradebook(cfg.db_url), cfg.manifest(sheet), file, author or getpass.getuser())
    click.echo(f"{file}: {n} team(s) for {sheet}")


@click.command()
@click.option("--output", type=click.Path(path_type=Path), default=Path("report.html"), show_default=True)
@click.option("--as-of", default=None, help="Evaluate at this ISO time (default: now).")
def report(output: Path, as_of: str | None) -> None:
    """HTML report with plots: scores per sheet, task difficulty, status over time, groups."""
    from .report import write_report

    cfg = load_config()
    click.echo(f"wrote {write_report(open_gradebook(cfg.db_url), cfg, output, _as_of(as_of))}")


def register(group: click.Group) -> None:
    for command in (students, points, admission, groups, teams, staff, override, grade, extension, status, report):
        group.add_command(command)
