"""The `mlph` command line: thin click commands over library functions.

Every error of the two packages is caught once, here, and shown as one message (exit code 2).
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from gradebook.course.config import CourseConfig, load_config
from gradebook.cli.commands import register as register_gradebook_commands
from gradebook.cli.publishing import register as register_publishing_commands
from gradebook.errors import GradebookError
from web.cli import register as register_web_commands

from autograder.errors import AutograderError, ValidationFailed
from autograder.limits import MiB, Limits

console = Console(stderr=False)


class _Root(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ValidationFailed as exc:
            click.echo(f"validation failed: {exc}", err=True)
            sys.exit(1)
        except (AutograderError, GradebookError) as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(2)


@click.group(cls=_Root)
@click.version_option(package_name="mlph-grading")
def main() -> None:
    """Grading system of "Machine Learning and Physics": sheets, autograder, gradebook.

    Every command reads mlph.toml (or $MLPH_ROOT/mlph.toml) and honours MLPH_COURSE_DIR (course
    data directory) and MLPH_DB_URL (database URL; default: SQLite in the course data directory).
    """


def _sheets(cfg: CourseConfig, sheets: tuple[str, ...]) -> list[str]:
    return list(sheets) or cfg.authored_sheets()


@main.command()
@click.argument("sheets", nargs=-1)
@click.option("--strict", is_flag=True, help="Fail on work-in-progress sheets too (`wip = true` in sheet.toml, or "
              "not in the semester plan), instead of reporting their problems as warnings.")
def validate(sheets: tuple[str, ...], strict: bool) -> None:
    """Check sheets (default: every sheet in source/): solutions pass, stubs fail, no leaks, metadata,
    release current, mistakes, the sheet's shape ([conventions] in mlph.toml or the sheet's sheet.toml).

    Records each result in the course data directory: `mlph release` refuses a sheet whose last
    validation failed or whose files changed since. A work-in-progress sheet is validated, but its
    problems are warnings (exit status 0) unless --strict.

    \b
    Example:  mlph validate                  # every sheet; work in progress only warned about
              mlph validate sheet04 --strict
    """
    from autograder.sheets.validate import closing_advice, validate_course

    cfg = load_config()
    names = _sheets(cfg, sheets)
    found = validate_course(cfg, names, say=lambda s: console.print(s, highlight=False, soft_wrap=True, markup=False),
                            heading=lambda s: console.print(f"[bold]{s}[/bold]"), strict=strict)
    for warning in found.warnings:
        console.print(f"[yellow]warning[/yellow] {warning}", highlight=False, soft_wrap=True)
    advice = closing_advice([s for s in names if s not in found.work_in_progress], found.problems)
    if found.problems:
        raise ValidationFailed(found.problems + [advice])
    console.print(f"[green]all checks passed[/green]{' (work in progress: warnings above)' if found.warnings else ''}; "
                  f"{advice}", highlight=False)


@main.command()
@click.argument("sheet")
def generate(sheet: str) -> None:
    """Generate the student version release/SHEET from source/SHEET (nothing goes to students).

    \b
    Example:  mlph generate sheet04      # then `mlph validate sheet04`, commit release/
    """
    from autograder.nbgrader_bridge import generate as generate_release

    click.echo(f"generated {generate_release(load_config(), sheet)}")


@main.command()
@click.argument("sheet")
@click.option("--no-exchange", is_flag=True, help="Generate release/SHEET and release it on the web pages only "
              "(not to the exchange).")
@click.option("--force", is_flag=True, help="Release anyway: again over an earlier release (a corrected sheet), "
              "without a passing validation of the current files, outside the semester plan or past its due date.")
def release(sheet: str, no_exchange: bool, force: bool) -> None:
    """Generate the student version into release/SHEET and release it to the exchange.

    Refuses (without --force) a sheet whose last `mlph validate` failed or is older than its files, a
    sheet not in the semester plan of mlph.toml, and a sheet whose due date is past.

    \b
    Example:  mlph validate sheet04 && mlph release sheet04
              mlph release sheet04 --force      # after a correction; students fetch it again
    """
    from autograder.sheets.release_gate import release_sheet

    for line in release_sheet(load_config(), sheet, no_exchange=no_exchange, force=force):
        click.echo(line)


@main.command()
@click.argument("sheet")
@click.option("--zip", "zip_path", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Import an LMS bulk download (Moodle's 'Download all submissions') instead of the exchange.")
@click.option("--admit", multiple=True, metavar="ID", help="Accept hand-ins of this id although it is not on the roster.")
def collect(sheet: str, zip_path: Path | None, admit: tuple[str, ...]) -> None:
    """Take the newest hand-in of every student of SHEET into submitted/<student>/SHEET/, through the intake's
    checks (no links, bounded sizes, the entry's owner, the server's time of receipt; see the README).

    \b
    Example:  mlph collect sheet04
              mlph collect sheet04 --zip moodle-sheet04.zip
              mlph collect sheet04 --admit gast17      # an id not on the roster
    """
    from gradebook.store.db import open_gradebook

    cfg = load_config()
    engine = open_gradebook(cfg.db_url, create=False)
    if zip_path is not None:
        from autograder.intake.zipimport import import_zip

        zreport = import_zip(cfg, engine, sheet, zip_path)
        click.echo(str(zreport))
        for folder, why in zreport.unmatched:
            click.echo(f"  not imported: {folder}: {why}")
        for student, why in zreport.invalid:
            click.echo(f"  invalid: {student}: {why}")
        for student, why in zreport.ambiguous:
            click.echo(f"  ambiguous, imported for nobody: {student}: {why}")
        for student, folder in zreport.superseded:
            click.echo(f"  older than the hand-in already there: {student}: {folder}")
        return
    from autograder.intake.exchange import collect as collect_exchange

    report = collect_exchange(cfg, engine, sheet, admit=frozenset(admit))
    click.echo(str(report))
    for student, why in report.invalid:
        click.echo(f"  invalid: {student}: {why}")
    for student, why in report.held:
        click.echo(f"  held: {student}: {why}")
    for entry, why in report.refused:
        click.echo(f"  refused: {entry}: {why}")
    for entry, why in report.failed:
        click.echo(f"  not stored: {entry}: {why}")


def print_summary(summary: Any) -> None:
    table = Table(title=f"autograde {summary.sheet}")
    for col in ("status", "submissions", "examples"):
        table.add_column(col)
    for status, n in sorted(summary.counts.items()):
        examples = [f"{r['student']}: {r['reason']}" if r.get("reason") else r["student"]
                    for r in summary.results if r["status"] == status][:3]
        table.add_row(status, str(n), "\n".join(examples))
    console.print(table)
    console.print(f"{len(summary.results)} graded now, {summary.skipped} already up to date")
    if summary.held:
        console.print(f"[bold yellow]{len(summary.held)} hand-in(s) of ids not on the roster were not graded:[/] "
                      f"{', '.join(summary.held[:10])} (add them with `mlph students import`)", highlight=False)


@main.command()
@click.argument("sheets", nargs=-1)
@click.option("--workers", type=int, default=None, help="Parallel submissions (default: one per core).")
@click.option("--cluster", default=None, metavar="ADDRESS", help="Dask scheduler address (tcp://host:8786).")
@click.option("--connect-timeout", type=float, default=20.0, show_default=True,
              help="Seconds to reach the Dask scheduler before giving up with a message.")
@click.option("--force", is_flag=True, help="Regrade every submission, not only new or changed ones.")
@click.option("--student", "students", multiple=True, help="Only this student (repeatable).")
@click.option("--cell-timeout", type=float, default=Limits.cell_timeout, show_default=True, help="Seconds per cell.")
@click.option("--notebook-timeout", type=float, default=Limits.notebook_timeout, show_default=True,
              help="Seconds per notebook.")
@click.option("--output-bytes", type=int, default=Limits.output_bytes, show_default=True,
              help="Output kept per cell, in bytes.")
@click.option("--memory-mib", type=int, default=Limits.memory_bytes // MiB, show_default=True,
              help="Memory per submission (all its processes and its tmpfs), MiB.")
@click.option("--max-processes", type=int, default=Limits.max_processes, show_default=True,
              help="Processes and threads per submission.")
@click.option("--file-mib", type=int, default=Limits.file_bytes // MiB, show_default=True,
              help="Largest file a submission may write, MiB.")
@click.option("--unsafe-no-sandbox", is_flag=True, help="Run kernels without bubblewrap, as you (trusted notebooks only).")
@click.option("--watch", is_flag=True, help="Keep running: serve the grading queue (every hand-in queues its grading; "
                                            "no SHEETS: every released sheet). Log: <course data>/logs/grader.log.")
@click.option("--join", is_flag=True, help="With --watch: start beside a running grader, as an extra worker on the "
                                           "shared queue (without it, a second grader refuses to start).")
@click.option("--lease", type=float, default=30.0, show_default=True,
              help="With --watch: seconds a job stays this grader's without its heartbeat; a grader that died "
                   "leaves its job to the others after this.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def autograde(sheets: tuple[str, ...], workers: int | None, cluster: str | None, force: bool,
              students: tuple[str, ...], cell_timeout: float, notebook_timeout: float, output_bytes: int,
              memory_mib: int, max_processes: int, file_mib: int, unsafe_no_sandbox: bool, watch: bool,
              join: bool, lease: float, no_progress: bool, connect_timeout: float) -> None:
    """Grade every collected submission of SHEETS, each in its own sandbox, and store the scores in the
    gradebook (see the README: the sandbox, its limits and the threat model).

    \b
    Exit codes: 0  every submission has its result (a student's invalid, missing, timed-out or crashed
                   notebook is that student's result, not a failure of the grader);
                3  the grader failed on some submissions (grader_error: they are graded again by the next run);
                2  nothing was graded: a configuration or usage error (the message says which).
    Example:  mlph autograde sheet04
              mlph autograde --watch                    # grade on submit, every released sheet
              mlph autograde --watch --join             # one more grader on the same queue (another machine)
              mlph autograde sheet04 --student ab123 --force
    """
    from datetime import timedelta

    from autograder.grading.run import autograde_sheets
    from autograder.grading.watcher import watch as run_watch

    limits = Limits(cell_timeout=cell_timeout, notebook_timeout=notebook_timeout, output_bytes=output_bytes,
                    memory_bytes=memory_mib * MiB, max_processes=max_processes, file_bytes=file_mib * MiB)
    if unsafe_no_sandbox:
        console.print("[bold red]WARNING: --unsafe-no-sandbox: student code runs as you, with your files, network "
                      "and gradebook in reach. Only for notebooks you trust.[/]")
    if watch:
        run_watch(load_config(), list(sheets) or None, workers=workers, cluster=cluster, limits=limits,
                  sandbox=not unsafe_no_sandbox, say=lambda s: console.print(s, highlight=False, markup=False),
                  connect_timeout=connect_timeout, join=join, lease=timedelta(seconds=lease))
        return
    if not sheets:
        raise click.UsageError("name the sheets to grade (or give --watch)")
    summaries = autograde_sheets(load_config(), list(sheets), workers=workers, cluster=cluster, limits=limits,
                                 sandbox=not unsafe_no_sandbox, force=force, students=list(students) or None,
                                 progress=not no_progress, connect_timeout=connect_timeout)
    for summary in summaries:
        print_summary(summary)
    if any(r["status"] == "grader_error" for summary in summaries for r in summary.results):
        sys.exit(3)


@main.command()
@click.option("--students", "n_students", type=int, default=72, show_default=True, help="Simulated class size.")
@click.option("--seed", type=int, default=2026, show_default=True)
@click.option("--workers", type=int, default=None, help="Parallel submissions (default: one per core).")
@click.option("--serve", is_flag=True, help="Afterwards, serve the demo's course on the web (with grade-on-submit) "
                                            "and print logins for a student, a tutor and an admin.")
@click.option("--port", type=int, default=8000, show_default=True, help="With --serve: the port on 127.0.0.1.")
def demo(n_students: int, seed: int, workers: int | None, serve: bool, port: int) -> None:
    """The whole pipeline on a simulated class: release, submit, collect, autograde, points, admission.

    \b
    Example:  mlph demo                       # outputs in course-data/demo/
              mlph demo --serve --port 8000   # then open http://127.0.0.1:8000 with the printed logins
    """
    from autograder.demo import run_demo

    say = lambda text: console.print(text, soft_wrap=True, highlight=False)  # noqa: E731
    out = run_demo(load_config(), n_students=n_students, seed=seed, workers=workers, say=say)
    if serve:
        from autograder.demo.serve import serve_demo

        serve_demo(out["config"], port, say)


@click.command("notebook")
@click.argument("sheet")
@click.argument("student")
@click.option("--reason", required=True, help="Why (audited).")
@click.option("--author", default=None, help="Who (default: the current user).")
def regrade_notebook(sheet: str, student: str, reason: str, author: str | None) -> None:
    """Have STUDENT's SHEET notebook hand-in graded again by the next `mlph autograde` (or the running --watch).

    \b
    Example:  mlph regrade sheet04 ab123 --reason "sheet04's test_pca fixed"
    (the same as `mlph regrade notebook sheet04 ab123 --reason …`)
    """
    import getpass

    from gradebook.points.autograde_store import mark_for_regrade
    from gradebook.store.db import open_gradebook

    cfg = load_config()
    cfg.manifest(sheet)
    mark_for_regrade(open_gradebook(cfg.db_url, create=False), sheet, student, author or getpass.getuser(), reason)
    click.echo(f"{sheet}, {student}: marked; the next `mlph autograde {sheet}` grades it again")


@main.command("hub-config")
@click.option("--service-url", default="http://127.0.0.1:8100", show_default=True,
              help="Where `mlph serve` listens, as the Hub's proxy reaches it.")
@click.option("--hub-api-url", default=None, help="The Hub's API as `mlph serve` reaches it "
                                                  "(default: $MLPH_HUB_API_URL, else http://127.0.0.1:8081/hub/api).")
@click.option("--service", default=None, help="The service's name (default: $MLPH_HUB_SERVICE, else mlph).")
@click.option("--exchange-url", default=None, help="Where the students' servers reach the service "
                                                   "(default: the service URL and its prefix /services/NAME).")
def hub_config(service_url: str, hub_api_url: str | None, service: str | None, exchange_url: str | None) -> None:
    """Print the jupyterhub_config.py lines (the service, its OAuth client and token, the scopes students'
    servers need) and the nbgrader_config.py lines of the single-user image (the course's exchange).

    \b
    Example:  mlph hub-config --service-url http://10.0.0.5:8100 >> hub-lines.txt
    """
    from autograder.hub.config import hub_config_text

    click.echo(hub_config_text(load_config(), service_url, hub_api_url, service, exchange_url), nl=False)


@main.command()
@click.argument("sheet")
@click.option("--against", multiple=True, metavar="PAST_COURSE_DIR",
              type=click.Path(path_type=Path, file_okay=False, exists=True),
              help="An earlier semester's course directory (its submitted/ hand-ins are references; repeatable).")
def similarity(sheet: str, against: tuple[Path, ...]) -> None:
    """Rank, per answer cell of SHEET, the pairs of students whose answers are unusually similar (copydetect's
    fingerprints, offline); write the report with the answers side by side to <course data>/similarity/SHEET.html.

    \b
    A similarity is a reason to look at two hand-ins, not a verdict. The sheet's given code never counts;
    a team counts as one author. Example:  mlph similarity sheet04 --against /srv/mlph-2025/course-data
    """
    from autograder.similarity.report import similarity_report, summary_table

    report = similarity_report(load_config(), sheet, against, say=lambda s: console.print(s, highlight=False, markup=False))
    console.print(summary_table(report))
    console.print(f"report: {report.path}", highlight=False)


register_gradebook_commands(main)
register_publishing_commands(main, regrade_notebook)
register_web_commands(main)

if __name__ == "__main__":  # pragma: no cover
    main()
