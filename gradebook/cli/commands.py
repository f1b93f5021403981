"""The gradebook's commands; :func:`register` attaches them to the root `mlph` group.

Thin: each command parses its options, calls one library function and prints its plain data.
Every command but those that create a course (``students import``, ``staff add``) first checks that the
course's data directory and gradebook exist (:func:`gradebook.course.info.course_engine`).
"""
from __future__ import annotations

from pathlib import Path

import click

from gradebook.cli.common import author_of, console, engine_of, left_out_hint, local, parse_time
from gradebook.cli.lists import register_lists
from gradebook.cli.rubric import rubric
from gradebook.course.config import CourseConfig, load_config
from gradebook.errors import InputError

@click.group()
def students() -> None:
    """The roster."""


@students.command("import")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--column", "columns", multiple=True, metavar="NAME=FIELD",
              help="Read the file's column NAME as FIELD (student_id, last_name, first_name, email, "
                   "matriculation, programme, login); repeatable.")
def students_import(file: Path, columns: tuple[str, ...]) -> None:
    """Import the roster from CSV/XLSX (header student_id,last_name,first_name,email[,matriculation,programme,login]).

    German university and LMS exports are read as they are: Matrikelnummer, Nachname, Vorname, E-Mail,
    Kennung/Benutzername, Studiengang and the like are recognised; without an id column the
    matriculation number is the id. Ids are trimmed and compared ignoring case. A file with a bad row or
    a duplicate id, e-mail or matriculation number is refused whole. Creates the course's data
    directory and gradebook if they do not exist yet.

    \b
    Example:
      mlph students import roster.xlsx
      mlph students import heico.csv --column "Uni-Kennung=student_id"
    """
    from gradebook.people.roster import import_students

    cfg = load_config()
    mapping = dict(_column_mapping(c) for c in columns)
    click.echo(f"{file}: {import_students(engine_of(cfg, create=True), file, mapping)}")


def _column_mapping(text: str) -> tuple[str, str]:
    name, sep, target = text.partition("=")
    if not sep or not name.strip() or not target.strip():
        raise click.BadParameter(f"{text!r} is not NAME=FIELD (e.g. Nachname=last_name)", param_hint="--column")
    return name.strip(), target.strip()


@click.group()
def points() -> None:
    """Pen-and-paper points."""


@points.command("import")
@click.argument("sheet")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--author", default=None, help="Who graded (default: the current user).")
@click.option("--reason", default=None, help="Recorded in the audit log (default: the file name).")
def points_import(sheet: str, file: Path, author: str | None, reason: str | None) -> None:
    """Import a tutor's points for SHEET from CSV/XLSX (header student_id,task,points; 2,5 accepted).

    \b
    Example:
      mlph points import sheet03 points-sheet03-G1.csv --author tina
    """
    from gradebook.points.paper import import_points

    cfg = load_config()
    report = import_points(engine_of(cfg), cfg.manifest(sheet), file, author_of(author), reason)
    click.echo(f"{file}: {report}")


@points.command("template")
@click.argument("sheet")
@click.option("--group", default=None, help="Only this tutorial group's students.")
@click.option("--output", type=click.Path(path_type=Path), default=None, help="Default: points-SHEET[-GROUP].csv")
def points_template(sheet: str, group: str | None, output: Path | None) -> None:
    """Write the CSV a tutor fills in: every roster student × paper task of SHEET, points empty.

    \b
    Example:
      mlph points template sheet03 --group G1
    """
    from sqlalchemy.orm import Session

    from gradebook.exports.lists import require_group
    from gradebook.points.paper import write_template

    cfg = load_config()
    engine = engine_of(cfg)
    manifest = cfg.manifest(sheet)
    if group is not None:
        with Session(engine) as session:
            require_group(session, group)
    out = output or Path(f"points-{sheet}{'-' + group if group else ''}.csv")
    n = write_template(engine, manifest, out, group)
    click.echo(f"{out}: {n} rows")


@click.command()
@click.option("--csv", "csv_path", type=click.Path(path_type=Path), default=None, help="Write the list as CSV.")
@click.option("--csv-excel", "excel_path", type=click.Path(path_type=Path), default=None,
              help="Write the list as CSV for German Excel (semicolons, decimal commas, UTF-8 BOM).")
@click.option("--xlsx", "xlsx_path", type=click.Path(path_type=Path), default=None, help="Write the list as XLSX.")
@click.option("--parts-csv", "parts_path", type=click.Path(path_type=Path), default=None,
              help="Write one row per student, sheet and part (earned, counted, the late rule applied) as CSV.")
@click.option("--as-of", default=None, help="Evaluate at this ISO time (course time zone if none; default: now).")
@click.option("--sheets/--no-sheets", "per_sheet", default=False, help="Show every sheet's points in the terminal.")
@click.option("--preview-threshold", default=None, metavar="RULE",
              help="Only list who would change status under this threshold: '50%', '1/2' or '120 points'; writes nothing.")
def admission(csv_path: Path | None, excel_path: Path | None, xlsx_path: Path | None, parts_path: Path | None,
              as_of: str | None, per_sheet: bool, preview_threshold: str | None) -> None:
    """Every roster student's points, maximum, percent and status (admitted / not_admitted / open).

    Only decided sheets count; a sheet not decided yet shows as "pending" (a planned one as "planned")
    and counts as still reachable. The list is printed unless it is written to a file (then the counts).

    \b
    Examples:
      mlph admission
      mlph admission --xlsx admission.xlsx --csv-excel admission-excel.csv
      mlph admission --preview-threshold 45%
      mlph admission --parts-csv parts.csv
    """
    from functools import partial

    from gradebook.admission.rule import compute_standings, preview
    from gradebook.exports.admission_list import print_admission, write_csv, write_excel_csv, write_parts_csv, write_xlsx

    cfg = load_config()
    engine = engine_of(cfg)
    when = parse_time(as_of, cfg)
    if preview_threshold:
        changes = preview(engine, cfg, preview_threshold, when)
        for sid, name, old, new in changes:
            click.echo(f"{sid}\t{name}\t{old} -> {new}")
        click.echo(f"{len(changes)} student(s) would change status under threshold {preview_threshold}")
        return
    standings = compute_standings(engine, cfg, when)
    parts = partial(write_parts_csv, semester=cfg.semester)
    outputs = [(p, w) for p, w in ((csv_path, write_csv), (excel_path, write_excel_csv), (xlsx_path, write_xlsx),
                                   (parts_path, parts)) if p]
    print_admission(console(), standings, cfg, per_sheet, rows=per_sheet or not outputs)
    left_out_hint(engine)
    for path, writer in outputs:
        click.echo(f"wrote {writer(standings, path)}")


@click.group()
def groups() -> None:
    """Tutorial groups, tutors and memberships."""


@groups.command("import")
@click.argument("file", type=click.Path(path_type=Path))
def groups_import(file: Path) -> None:
    """Groups and tutors from CSV/XLSX (header group,name,tutor_id[,tutor_name,tutor_email]).

    Every group needs a name and a tutor; a tutor who is not staff yet needs a tutor_name (then added).

    \b
    Example:
      mlph groups import groups.csv
    """
    from gradebook.people.groups import import_groups

    click.echo(f"{file}: {import_groups(engine_of(load_config()), file)}")


@groups.command("assign")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--author", default=None, help="Who made the change (default: the current user).")
def groups_assign(file: Path, author: str | None) -> None:
    """Put students into groups from CSV/XLSX (header student_id,group); moves keep the history.

    \b
    Example:
      mlph groups assign members.csv
    """
    from gradebook.people.groups import assign_students

    report = assign_students(engine_of(load_config()), file, author_of(author))
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
    """Add or update an admin or a tutor (audited). Creates the course's gradebook if needed.

    \b
    Example:
      mlph staff add tina --name "Tina Tutor" --email tina@uni.de --role tutor
    """
    from gradebook.people.groups import add_staff

    add_staff(engine_of(load_config(), create=True), person_id, name, email, role, author_of(author))
    click.echo(f"{person_id}: {role}")


@click.group()
def override() -> None:
    """Admission overrides: they change a status, never points."""


@override.command("set")
@click.argument("student")
@click.argument("status", type=click.Choice(["admitted", "not_admitted"]))
@click.option("--reason", required=True, help="E.g. 'medical certificate', 'repeated course'.")
@click.option("--replace", is_flag=True, help="Replace the student's active override (named in the error otherwise).")
@click.option("--author", default=None)
def override_set(student: str, status: str, reason: str, replace: bool, author: str | None) -> None:
    """Set STUDENT's admission STATUS regardless of points, with a reason (audited).

    \b
    Example:
      mlph override set ab1 admitted --reason "repeated course, admitted in 2025"
    """
    from gradebook.admission.overrides import set_override

    old = set_override(engine_of(load_config()), student, status, reason, author_of(author), replace=replace)
    click.echo(f"{student}: {status} ({reason})" + (f"; replaces {old}" if old else ""))


@override.command("revoke")
@click.argument("student")
@click.option("--reason", required=True)
@click.option("--author", default=None)
def override_revoke(student: str, reason: str, author: str | None) -> None:
    """Revoke STUDENT's active override (audited).

    \b
    Example:
      mlph override revoke ab1 --reason "entered by mistake"
    """
    from gradebook.admission.overrides import revoke_override

    revoke_override(engine_of(load_config()), student, author_of(author), reason)
    click.echo(f"{student}: override revoked")


@click.command()
@click.argument("student")
@click.option("--as-of", default=None, help="Evaluate at this ISO time (course time zone if none; default: now).")
def status(student: str, as_of: str | None) -> None:
    """STUDENT's sheets (notebook and paper points, state, hand-in time, deadline, late decision),
    total, percentage, status and the points still needed.

    \b
    Example:
      mlph status ab1
    """
    from gradebook.admission.status import print_status, student_standing

    cfg = load_config()
    print_status(console(), student_standing(engine_of(cfg), cfg, student, parse_time(as_of, cfg)), cfg)


@click.command("grade")
@click.argument("sheet")
@click.argument("student")
@click.argument("cell")
@click.argument("points")
@click.option("--reason", required=True, help="Why the autograder's score is overridden (audited).")
@click.option("--author", default=None)
def grade(sheet: str, student: str, cell: str, points: str, reason: str, author: str | None) -> None:
    """Override the score of test CELL of STUDENT's SHEET submission (POINTS, or 'clear').

    \b
    Example:
      mlph grade sheet03 ab1 test_fit_hidden 1,5 --reason "correct up to a sign convention"
    """
    from gradebook.points.manual import set_manual_score
    from gradebook.course.tables import parse_decimal

    cfg = load_config()
    cfg.manifest(sheet)
    try:
        value = None if points == "clear" else parse_decimal(points)
    except ValueError as exc:
        raise InputError(f"points {points!r} is not a number") from exc
    set_manual_score(engine_of(cfg), sheet, student, cell, value, author_of(author), reason)
    click.echo(f"{sheet}/{cell}, {student}: {points}")


@click.command()
@click.argument("sheet")
@click.argument("student")
@click.argument("until")
@click.option("--reason", required=True)
@click.option("--author", default=None)
def extension(sheet: str, student: str, until: str, reason: str, author: str | None) -> None:
    """Move STUDENT's deadline for SHEET to UNTIL (ISO time, course time zone if none; audited).

    The late decision of a hand-in already graded is taken again and stored at once.

    \b
    Example:
      mlph extension sheet03 ab1 2026-11-13T10:00 --reason "medical certificate"
    """
    from gradebook.points.manual import set_extension

    cfg = load_config()
    when = parse_time(until, cfg, "UNTIL")
    decision = set_extension(engine_of(cfg), sheet, student, when, author_of(author), reason, cfg=cfg)
    click.echo(f"{sheet}, {student}: due {local(when, cfg)}")
    if decision is not None:
        click.echo(f"hand-in: {decision.text(cfg.timezone)}")


@click.command()
@click.argument("sheet")
@click.option("--reason", required=True)
@click.option("--author", default=None)
def redecide(sheet: str, reason: str, author: str | None) -> None:
    """Take the late decision of every graded hand-in of SHEET again (after its due date, group deadlines or
    late rule changed in sheet.toml), in one transaction; each changed decision is audited.

    `mlph status` shows a stored decision taken against an older deadline beside the new one.

    \b
    Example:
      mlph redecide sheet03 --reason "due date moved to Friday"
    """
    from gradebook.points.manual import redecide_sheet

    cfg = load_config()
    changed = redecide_sheet(engine_of(cfg), cfg, sheet, author_of(author), reason)
    for student, _old, new in changed:
        click.echo(f"{student}: {new}")
    click.echo(f"{sheet}: {len(changed)} decision(s) changed")


@click.group()
def teams() -> None:
    """Teams that hand in together (per sheet)."""


@teams.command("import")
@click.argument("sheet")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--author", default=None)
def teams_import(sheet: str, file: Path, author: str | None) -> None:
    """Set SHEET's teams from CSV/XLSX (header student_id,team); members share their points.

    \b
    Example:
      mlph teams import sheet03 teams-sheet03.csv
    """
    from gradebook.people.teams import import_teams

    cfg = load_config()
    n = import_teams(engine_of(cfg), cfg.manifest(sheet), file, author_of(author))
    click.echo(f"{file}: {n} team(s) for {sheet}")


@click.command()
@click.option("--output", type=click.Path(path_type=Path), default=Path("report.html"), show_default=True)
@click.option("--as-of", default=None, help="Evaluate at this ISO time (course time zone if none; default: now).")
def report(output: Path, as_of: str | None) -> None:
    """HTML report: scores of the decided sheets, task difficulty, status over time, groups, and tables of
    missing / invalid / timed-out / held hand-ins and of the students at risk.

    \b
    Example:
      mlph report --output report.html
    """
    from gradebook.exports.report import write_report

    cfg = load_config()
    click.echo(f"wrote {write_report(engine_of(cfg), cfg, output, parse_time(as_of, cfg))}")


def register(group: click.Group) -> None:
    from gradebook.cli.anonymous import anonymous
    from gradebook.cli.mail import mail

    group.add_command(anonymous)
    group.add_command(mail)
    for command in (students, points, rubric, admission, groups, teams, staff, override, grade, extension, redecide, status, report):
        group.add_command(command)
    register_lists(group, students=students, groups=groups, staff=staff, override=override)
