"""The gradebook's list commands (`students list`, `groups list`, `staff list`, `overrides list`,
`extensions list`, `audit`, `handins`), the sheets (`sheets`, `sheet close/reopen`) and `mlph info`."""
from __future__ import annotations

from typing import Any

import click
from rich.table import Table

from gradebook.cli.common import author_of, console, engine_of, left_out_hint, local, parse_time
from gradebook.course.config import load_config
from gradebook.points.paper import fmt


def _table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    table = Table(title=title)
    for c in columns:
        table.add_column(c)
    for r in rows:
        table.add_row(*[str(v) for v in r])
    console().print(table)


@click.command("list")
@click.option("--group", default=None, help="Only this tutorial group.")
@click.option("--off-roster", is_flag=True, help="List the ids the gradebook has but the roster lacks instead.")
def students_list(group: str | None, off_roster: bool) -> None:
    """The roster: id, name, e-mail, matriculation, group.

    \b
    Examples:
      mlph students list --group G1
      mlph students list --off-roster
    """
    from gradebook.admission.rule import off_roster as off
    from gradebook.exports.lists import list_students

    engine = engine_of(load_config())
    if off_roster:
        ids = off(engine)
        click.echo("\n".join(ids) if ids else "every id in the gradebook is on the roster")
        return
    rows = list_students(engine, group)
    _table(f"{len(rows)} student(s)" + (f" in group {group}" if group else ""),
           ["student", "last name", "first name", "email", "matriculation", "group"],
           [[s.student_id, s.last_name, s.first_name, s.email, s.matriculation, s.group] for s in rows])
    left_out_hint(engine)


@click.command("list")
def groups_list() -> None:
    """Tutorial groups with their tutors and sizes.

    \b
    Example:
      mlph groups list
    """
    from gradebook.exports.lists import list_groups

    rows = list_groups(engine_of(load_config()))
    _table(f"{len(rows)} group(s)", ["group", "name", "tutor", "tutor name", "students"],
           [[g.id, g.name, g.tutor_id, g.tutor_name, g.size] for g in rows])


@click.command("list")
def staff_list() -> None:
    """Admins and tutors with their groups.

    \b
    Example:
      mlph staff list
    """
    from gradebook.exports.lists import list_staff

    rows = list_staff(engine_of(load_config()))
    _table(f"{len(rows)} staff", ["id", "name", "email", "role", "groups"],
           [[p.id, p.name, p.email, p.role, ", ".join(p.groups)] for p in rows])


@click.command("list")
@click.option("--all", "include_revoked", is_flag=True, help="Include revoked overrides.")
def overrides_list(include_revoked: bool) -> None:
    """Active admission overrides (with --all: revoked ones too).

    \b
    Example:
      mlph overrides list
    """
    from gradebook.exports.lists import list_overrides

    cfg = load_config()
    rows = list_overrides(engine_of(cfg), include_revoked)
    _table(f"{len(rows)} override(s)", ["student", "status", "reason", "by", "since", "revoked"],
           [[o.student_id, o.status, o.reason, o.author, local(o.created_at, cfg), local(o.revoked_at, cfg)]
            for o in rows])


@click.group()
def overrides() -> None:
    """Admission overrides (list; set and revoke are `mlph override set/revoke`)."""


@click.group()
def extensions() -> None:
    """Extensions of deadlines (set one with `mlph extension SHEET STUDENT UNTIL`)."""


@extensions.command("list")
@click.option("--sheet", default=None, help="Only this sheet.")
def extensions_list(sheet: str | None) -> None:
    """Every extension: sheet, student, new deadline, reason, author.

    \b
    Example:
      mlph extensions list --sheet sheet03
    """
    from gradebook.exports.lists import list_extensions
    from gradebook.course.sheets_state import require_sheet

    cfg = load_config()
    if sheet is not None:
        require_sheet(cfg, sheet)
    rows = list_extensions(engine_of(cfg), sheet)
    _table(f"{len(rows)} extension(s)", ["sheet", "student", "until", "reason", "by"],
           [[e.sheet, e.student_id, local(e.until, cfg), e.reason, e.author] for e in rows])


@click.command()
@click.option("--student", default=None, help="Only changes concerning this student.")
@click.option("--sheet", default=None, help="Only changes concerning this sheet.")
@click.option("--author", default=None, help="Only changes by this author.")
@click.option("--since", default=None, help="Only changes since this ISO time (course time zone if none).")
@click.option("--limit", type=int, default=None, help="Only the last N entries.")
def audit(student: str | None, sheet: str | None, author: str | None, since: str | None, limit: int | None) -> None:
    """The audit log: every change to points, overrides, extensions, groups, staff and sheet states.

    \b
    Examples:
      mlph audit --student ab1
      mlph audit --sheet sheet03 --author tina --since 2026-11-01
    """
    from gradebook.exports.lists import audit_log
    from gradebook.course.sheets_state import require_sheet

    cfg = load_config()
    if sheet is not None:
        require_sheet(cfg, sheet)
    rows = audit_log(engine_of(cfg), student, sheet, author, parse_time(since, cfg, "--since") if since else None,
                     limit)
    _table(f"{len(rows)} change(s)", ["when", "by", "what", "key", "old", "new", "reason"],
           [[local(r.at, cfg, seconds=True), r.author, r.entity, r.key, r.old_value, r.new_value, r.reason]
            for r in rows])


@click.command()
@click.argument("sheet")
@click.option("--status", "state", default=None,
              help="Only one state: missing, invalid, refused, held, timeout, crashed, late, graded, ungraded.")
def handins(sheet: str, state: str | None) -> None:
    """Per roster student of SHEET: the hand-in's state (missing / invalid / held / timeout / late / graded …),
    its time of receipt and the reason; held hand-ins of ids not on the roster follow.

    \b
    Examples:
      mlph handins sheet03
      mlph handins sheet03 --status missing
    """
    from gradebook.exports.lists import handin_rows

    cfg = load_config()
    rows = handin_rows(engine_of(cfg), cfg, sheet, state)
    _table(f"{sheet}: {len(rows)} row(s)" + (f" with state {state}" if state else "") + f" (times in {cfg.timezone})",
           ["student", "name", "state", "received", "detail"],
           [[r.student_id, r.name, r.state, local(r.received_at, cfg, seconds=True), r.detail] for r in rows])


@click.command()
@click.option("--as-of", default=None, help="Evaluate at this ISO time (course time zone if none; default: now).")
def sheets(as_of: str | None) -> None:
    """Every sheet of the semester with its state (planned / not released / open for hand-in / pending /
    decided / closed) and counts: handed in, graded, paper points entered; what keeps a sheet pending.

    \b
    Example:
      mlph sheets
    """
    from gradebook.course.sheets_state import sheet_rows

    cfg = load_config()
    rows = sheet_rows(engine_of(cfg), cfg, parse_time(as_of, cfg))
    _table(f"{len(rows)} sheet(s) (times in {cfg.timezone})",
           ["sheet", "due", "max", "state", "handed in", "graded", "paper entered"],
           [[r.id, local(r.due, cfg), fmt(r.max_points), r.state, r.handed_in, r.graded, r.paper_entered]
            for r in rows])
    for r in rows:
        if r.state == "pending":
            click.echo(f"{r.id} pending: {'; '.join(r.missing)}")
        if r.state == "closed":
            click.echo(f"{r.id} closed by {r.closed_by}: {r.close_reason}")


@click.group()
def sheet() -> None:
    """Close a sheet (decided whatever is missing) or reopen it."""


@sheet.command("close")
@click.argument("sheet_id", metavar="SHEET")
@click.option("--reason", required=True, help="Recorded with who and when (audited).")
@click.option("--author", default=None)
def sheet_close(sheet_id: str, reason: str, author: str | None) -> None:
    """Decide SHEET now: it counts for everyone, what is missing counts 0. Prints what was missing.

    \b
    Example:
      mlph sheet close sheet03 --reason "grading finished; two hand-ins lost"
    """
    from gradebook.course.sheets_state import close_sheet

    cfg = load_config()
    missing = close_sheet(engine_of(cfg), cfg, sheet_id, author_of(author), reason)
    for line in missing:
        click.echo(f"missing: {line}")
    click.echo(f"{sheet_id}: closed" + (" (nothing was missing)" if not missing else ""))


@sheet.command("reopen")
@click.argument("sheet_id", metavar="SHEET")
@click.option("--reason", required=True)
@click.option("--author", default=None)
def sheet_reopen(sheet_id: str, reason: str, author: str | None) -> None:
    """Undo `mlph sheet close SHEET` (audited).

    \b
    Example:
      mlph sheet reopen sheet03 --reason "late paper points arrived"
    """
    from gradebook.course.sheets_state import reopen_sheet

    cfg = load_config()
    reopen_sheet(engine_of(cfg), cfg, sheet_id, author_of(author), reason)
    click.echo(f"{sheet_id}: reopened")


@click.command()
def info() -> None:
    """Which course this command line works on: root, data directory, database (password masked), how each
    was found (environment or mlph.toml), the sheets and their state, the roster size.

    \b
    Example:
      MLPH_COURSE_DIR=/srv/mlph-data mlph info
    """
    from gradebook.course.info import course_info

    cfg = load_config()
    ci = course_info(cfg)
    o = ci.origins
    click.echo(f"course:         {ci.name} (time zone {ci.timezone})")
    click.echo(f"root:           {ci.root}  [{o.get('root', '')}]")
    click.echo(f"data directory: {ci.data_dir}{'' if ci.data_dir_exists else ' (MISSING)'}  [{o.get('data_dir', '')}]")
    click.echo(f"database:       {ci.db_url}  [{o.get('db_url', '')}]")
    if o.get("plan"):
        click.echo(f"plan and rule:  {o['plan']} (the data directory's own, instead of mlph.toml's)")
    click.echo(f"mail:           {cfg.mail.describe()}")
    if ci.error:
        click.echo(f"gradebook:      not readable: {ci.error}")
        return
    click.echo(f"roster:         {ci.roster} student(s)" + (f", {ci.off_roster} id(s) not on the roster"
                                                           if ci.off_roster else ""))
    for r in ci.sheets:
        click.echo(f"  {r.id:<10} due {local(r.due, cfg)}  {r.state:<17} {r.handed_in} handed in, {r.graded} graded, "
                   f"{r.paper_entered} with paper points")


def register_lists(group: click.Group, **groups: click.Group) -> None:
    groups["students"].add_command(students_list)
    groups["groups"].add_command(groups_list)
    groups["staff"].add_command(staff_list)
    groups["override"].add_command(overrides_list)
    overrides.add_command(overrides_list)
    for command in (overrides, extensions, audit, handins, sheets, sheet, info):
        group.add_command(command)
