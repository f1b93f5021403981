"""A course served by ``mlph serve`` as the service of a real JupyterHub on 127.0.0.1 (for the Hub tests).

The Hub gets exactly the lines ``mlph hub-config`` prints (plus the harness's own: ports, the Hub's
``DummyAuthenticator``, ``SimpleLocalProcessSpawner``); the students' servers get the printed
``nbgrader_config.py`` lines in their home directory. ``mlph serve`` runs as a subprocess with
``MLPH_HUB_API_URL`` set, so its start-up check of the Hub runs too. Everything started is stopped.

Hub users: ``alice`` (roster ab1 through the ``login`` column), ``cd2`` (roster id), ``mallory`` (not in the
course), ``boss`` (staff, admin in the gradebook; nothing on the Hub says so).
"""
from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import requests

from autograder.hub import harness
from coursefactory import make_course
from gradebook.course.config import CourseConfig, load_config

BIN = Path(sys.executable).parent
USERS = ["alice", "cd2", "mallory", "ef3", "boss"]
ROSTER = ("student_id,last_name,first_name,email,matriculation,login\n"
          "ab1,Müller,Anna,ab1@uni.de,3700001,alice\n"
          "cd2,García,Carlos,cd2@uni.de,3700002,\n"
          "ef3,O'Brien,Eve,ef3@uni.de,3700003,\n")


@dataclass
class HubCourse:
    cfg: CourseConfig
    hub: harness.RunningHub
    service_url: str  # mlph serve itself
    public_url: str  # mlph through the Hub's proxy: <hub>/services/mlph
    env: dict[str, str]  # the course's environment (MLPH_ROOT etc.)
    serve_log: Path
    servers: dict[str, dict[str, str]] = dataclasses.field(default_factory=dict)

    def server_env(self, user: str) -> dict[str, str]:
        """The environment the Hub gave ``user``'s server (spawned on first use)."""
        if user not in self.servers:
            self.servers[user] = self.hub.spawn(user)
        return self.servers[user]

    def nbgrader(self, user: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """``nbgrader ARGS`` as ``user`` runs it in a terminal of their server (its environment, its home)."""
        full = {**self.server_env(user), **(env or {})}
        full["PATH"] = f"{BIN}:{full.get('PATH', '')}"
        return subprocess.run([str(BIN / "nbgrader"), *args], cwd=full["HOME"], env=full, capture_output=True,
                              text=True, timeout=120)

    def home(self, user: str) -> Path:
        return self.hub.workdir / "home" / user


def _write_course(root: Path, data: Path, soon: datetime, intake: str = "") -> CourseConfig:
    make_course(root, tiny=("tiny01", "tiny02", "tiny03"))
    if intake:  # e.g. the benchmark's bounds on one student's uploads
        config = root / "mlph.toml"
        config.write_text(config.read_text().replace("[intake]\n", f"[intake]\n{intake}\n", 1))
    future = "2027-06-30T10:00:00"
    for sheet, due in (("tiny01", future), ("tiny02", future), ("tiny03", soon.strftime("%Y-%m-%dT%H:%M:%S"))):
        manifest = root / "source" / sheet / "sheet.toml"
        text = manifest.read_text().replace('due = "2026-11-04T10:00:00"', f'due = "{due}"')
        if sheet == "tiny03":  # an exact deadline: UTC, no grace
            text = text.replace('timezone = "Europe/Berlin"', 'timezone = "UTC"').replace("grace_minutes = 15",
                                                                                          "grace_minutes = 0")
        manifest.write_text(text)
    (root / "roster.csv").write_text(ROSTER, encoding="utf-8")
    return load_config(root)


def _prepare_gradebook(cfg: CourseConfig) -> None:
    from autograder.nbgrader_bridge import generate
    from gradebook.course.sheets_state import mark_released
    from gradebook.people.groups import add_staff
    from gradebook.people.roster import import_students
    from gradebook.store.db import open_gradebook

    for sheet in ("tiny01", "tiny03"):  # tiny02 is authored, not generated, not released
        generate(cfg, sheet)
    engine = open_gradebook(cfg.db_url)
    import_students(engine, cfg.root / "roster.csv")
    add_staff(engine, "boss", "The Boss", None, "admin", author="test")
    for sheet in ("tiny01", "tiny03"):
        mark_released(engine, sheet, "test")


def _split(printed: str) -> tuple[list[str], list[str]]:
    hub_part, _, nbgrader_part = printed.partition("# --- nbgrader_config.py")
    hub_lines = [ln for ln in hub_part.splitlines() if ln.startswith("c.")]
    nb_lines = [ln for ln in nbgrader_part.splitlines() if ln.startswith("c.")]
    return hub_lines, nb_lines


def _wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"mlph serve exited ({proc.returncode}): {log.read_text()[-3000:]}")
        try:
            requests.get(url, timeout=2)
            return
        except requests.RequestException:
            time.sleep(0.2)
    raise TimeoutError(f"mlph serve did not answer at {url}: {log.read_text()[-3000:]}")


def start_hub_course(tmp: Path, deadline_in: timedelta = timedelta(minutes=10), intake: str = "") -> Iterator[HubCourse]:
    """Build the course, print its Hub lines with ``mlph hub-config``, start the Hub and ``mlph serve``."""
    root, data = tmp / "course", tmp / "data"
    env = {"MLPH_ROOT": str(root), "MLPH_COURSE_DIR": str(data), "MLPH_WEB_SESSION_HOURS": "1"}
    old = {k: os.environ.get(k) for k in (*env, "MLPH_DB_URL")}
    os.environ.update(env)
    os.environ.pop("MLPH_DB_URL", None)
    try:
        cfg = _write_course(root, data, datetime.now(timezone.utc) + deadline_in, intake)
        _prepare_gradebook(cfg)
        hub_port, mlph_port = harness.free_port(), harness.free_port()
        service_url = f"http://127.0.0.1:{mlph_port}"
        api_url = f"http://127.0.0.1:{hub_port}/hub/api"
        printed = subprocess.run([str(BIN / "mlph"), "hub-config", "--service-url", service_url, "--hub-api-url",
                                  api_url], env={**os.environ}, capture_output=True, text=True, check=True).stdout
        hub_lines, nb_lines = _split(printed)
        assert len(hub_lines) == 3 and len(nb_lines) == 5, printed
        hub = harness.start_hub(tmp / "hub", USERS, [], hub_lines, hub_port=hub_port)
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    serve = None
    try:
        for user in USERS:
            (hub.workdir / "home" / user / "nbgrader_config.py").write_text(
                "c = get_config()  # noqa\n" + "\n".join(nb_lines) + "\n")
        serve_log = tmp / "serve.log"
        serve_env = {**os.environ, **env, "MLPH_HUB_API_URL": api_url, "PATH": f"{BIN}:{os.environ.get('PATH', '')}"}
        serve_env.pop("MLPH_DB_URL", None)
        with open(serve_log, "wb") as log:
            serve = subprocess.Popen([str(BIN / "mlph"), "serve", "--port", str(mlph_port)], cwd=root, env=serve_env,
                                     stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        _wait_http(f"{service_url}/login", serve, serve_log)
        yield HubCourse(cfg, hub, service_url, f"{hub.url}/services/mlph", env, serve_log)
    finally:
        if serve is not None:
            serve.terminate()
            try:
                serve.wait(15)
            except subprocess.TimeoutExpired:
                serve.kill()
                serve.wait(5)
        hub.stop()
