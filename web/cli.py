"""The web application's commands (`mlph serve`, `mlph accounts ...`); :func:`register` attaches them."""
from __future__ import annotations

import getpass
import sys
from pathlib import Path

import click


@click.group()
def accounts() -> None:
    """Logins of the web application (students on the roster, tutors and admins)."""


@accounts.command("create")
@click.argument("ids", nargs=-1)
@click.option("--students", is_flag=True, help="An account for every student on the roster.")
@click.option("--staff", is_flag=True, help="An account for every tutor and admin.")
@click.option("--author", default=None)
def accounts_create(ids: tuple[str, ...], students: bool, staff: bool, author: str | None) -> None:
    """Create accounts (user name = roster or staff id) for IDS, --students and/or --staff."""
    from gradebook.people.accounts import create_accounts
    from gradebook.course.config import load_config
    from gradebook.store.db import open_gradebook
    from gradebook.errors import InputError

    if not (ids or students or staff):
        raise InputError("name ids, or give --students and/or --staff")
    created, existing = create_accounts(open_gradebook(load_config().db_url, create=False), ids, students=students, staff=staff,
                                        author=author or getpass.getuser())
    click.echo(f"{len(created)} account(s) created, {len(existing)} already there")


@accounts.command("set-password")
@click.argument("username")
@click.option("--author", default=None)
def accounts_set_password(username: str, author: str | None) -> None:
    """Set USERNAME's password, read from stdin (the first line); ends the account's sessions."""
    from gradebook.people.accounts import set_password
    from gradebook.course.config import load_config
    from gradebook.store.db import open_gradebook

    password = (getpass.getpass("Password: ") if sys.stdin.isatty() else sys.stdin.readline()).rstrip("\r\n")
    set_password(open_gradebook(load_config().db_url, create=False), username, password, author or getpass.getuser())
    click.echo(f"{username}: password set")


@accounts.command("disable")
@click.argument("username")
@click.option("--enable", is_flag=True, help="Enable the account again instead.")
@click.option("--author", default=None)
def accounts_disable(username: str, enable: bool, author: str | None) -> None:
    """Disable USERNAME (its sessions and unused links end at once)."""
    from gradebook.people.accounts import disable_account
    from gradebook.course.config import load_config
    from gradebook.store.db import open_gradebook

    disable_account(open_gradebook(load_config().db_url, create=False), username, author or getpass.getuser(), disabled=not enable)
    click.echo(f"{username}: {'enabled' if enable else 'disabled'}")


@accounts.command("list")
def accounts_list() -> None:
    """Every account: user name, role, name, password set, disabled, last login."""
    from gradebook.people.accounts import list_accounts
    from gradebook.course.config import load_config
    from gradebook.store.db import open_gradebook

    from gradebook.cli.common import local

    cfg = load_config()
    rows = list_accounts(open_gradebook(cfg.db_url, create=False))
    for a in rows:
        last = local(a.last_login_at, cfg) if a.last_login_at else "never"
        click.echo("\t".join([a.username, a.role or "(gone)", a.name, "password" if a.has_password else "no password",
                              "disabled" if a.disabled else "enabled", last]))
    click.echo(f"{len(rows)} account(s)")


@accounts.command("links")
@click.argument("usernames", nargs=-1)
@click.option("--csv", "csv_path", type=click.Path(path_type=Path), required=True, help="Write the links here.")
@click.option("--base-url", default=None, help="The site's address (default: $MLPH_WEB_BASE_URL).")
@click.option("--hours", type=int, default=None, help="Validity (default: $MLPH_WEB_LINK_HOURS or 72).")
@click.option("--author", default=None)
def accounts_links(usernames: tuple[str, ...], csv_path: Path, base_url: str | None, hours: int | None,
                   author: str | None) -> None:
    """One-time set-password links for USERNAMES (none: every enabled account without a password) as a CSV
    to mail out. Only a hash of each link's token is stored; earlier unused links stop working."""
    from gradebook.people.accounts import issue_links
    from gradebook.course.config import load_config
    from gradebook.store.db import open_gradebook
    from gradebook.errors import InputError

    from web.settings import WebSettings

    settings = WebSettings.from_env()
    base = (base_url or settings.base_url).rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise InputError("the links need the site's address: --base-url https://… (or MLPH_WEB_BASE_URL)")
    links = issue_links(open_gradebook(load_config().db_url, create=False), list(usernames) or None, base,
                        hours or settings.link_hours, author or getpass.getuser())
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    from gradebook.exports.links import write_links_csv

    with csv_path.open("w", newline="", encoding="utf-8") as fh:
        write_links_csv(links, fh, load_config().timezone)
    click.echo(f"wrote {len(links)} link(s) to {csv_path}")


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8000, show_default=True)
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="uvicorn worker processes (nothing lives in process memory: any number works)  "
                   "[default: two per core]")
@click.option("--grade", is_flag=True, help="Also run the grader (`mlph autograde --watch`) beside the web server, "
                                            "stopped with it; its log: <course data>/logs/grader.log.")
def serve(host: str, port: int, workers: int | None, grade: bool) -> None:
    """Run the web application with uvicorn (put it behind a TLS reverse proxy; see the README).

    \b
    Example:  mlph serve --grade        # the web application and grade-on-submit under one command
    """
    from gradebook.course.config import load_config
    from gradebook.store.db import open_gradebook

    from web.app import serve_app
    from web.settings import default_workers

    cfg = load_config()
    open_gradebook(cfg.db_url, create=False)  # a bad course or database is an error here, not in every worker
    from autograder.hub.config import check_hub, hub_settings

    hub = hub_settings(cfg)
    if hub is not None:  # the Hub answers, the token is valid and is the registered service's
        version = check_hub(hub)
        click.echo(f"JupyterHub {version} at {hub.api_url}: service {hub.service!r} registered, its token valid; "
                   f"serving under {hub.prefix}/")
    workers = workers or default_workers()
    click.echo(f"serving {cfg.name} (data {cfg.data_dir}, database {cfg.db_url.split('@')[-1]}) on http://{host}:{port}"
               f" with {workers} worker(s)" + (" and the grader beside it" if grade else ""))
    serve_app(cfg, host, port, workers, grade=grade)


def register(group: click.Group) -> None:
    """Attach the web commands to the root `mlph` group."""
    group.add_command(accounts)
    group.add_command(serve)
