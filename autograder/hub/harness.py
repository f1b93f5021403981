"""A real JupyterHub on 127.0.0.1 for the tests and benchmarks: ``jupyterhub`` (the ``hub`` extra) with
configurable-http-proxy from ``.hub/`` (``scripts/bootstrap.sh``), in a directory of its own.

Users log in with the Hub's own ``DummyAuthenticator`` (one shared password): PAM would need Unix accounts
with passwords on the machine, created and removed by the tests as root, while what is under test (the
Hub's OAuth, its tokens and scopes, the proxy) is the same whatever authenticates. Servers are spawned by
``SimpleLocalProcessSpawner`` (real ``jupyterhub-singleuser`` processes, as the Hub's user, each with the
environment the Hub gives a server). The harness talks to the Hub's REST API with a token of its own
service (``harness``, admin scopes). :meth:`RunningHub.stop` ends the Hub, and with it the proxy and every
server it spawned (stragglers are ended by process id).
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "hub-test-password"
HARNESS_SCOPES = ["admin:users", "admin:servers", "tokens", "read:users", "list:users", "read:services",
                  "access:servers"]


def proxy_command() -> str | None:
    """configurable-http-proxy: the project's ``.hub/`` install, else one on the PATH; None if neither."""
    local = REPO / ".hub" / "node_modules" / ".bin" / "configurable-http-proxy"
    if local.is_file():
        return str(local)
    return shutil.which("configurable-http-proxy")


def missing_parts() -> str | None:
    """Why a Hub cannot be started here (None: it can)."""
    bindir = Path(sys.executable).parent
    if not (bindir / "jupyterhub").is_file() and shutil.which("jupyterhub") is None:
        return "jupyterhub is not installed (pip install -e '.[hub]', or scripts/bootstrap.sh)"
    if proxy_command() is None:
        return "configurable-http-proxy is not installed (scripts/bootstrap.sh puts it into .hub/)"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _children(pid: int) -> list[int]:
    """Every descendant of ``pid`` (from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        kids = [c for c, pp in parents.items() if pp == p]
        found += kids
        todo += kids
    return found


@dataclass
class RunningHub:
    url: str  # the public URL (the proxy)
    api_url: str  # the Hub's API (direct)
    token: str  # the harness service's admin token
    workdir: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    _pids: set[int] = field(default_factory=set)
    _token_ids: dict[str, str] = field(default_factory=dict)

    def api(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"token {token or self.token}"}
        return requests.request(method, f"{self.api_url}/{path.lstrip('/')}", headers=headers, timeout=30, **kwargs)

    def user_token(self, user: str, scopes: list[str], expires_in: int | None = None, note: str = "test") -> str:
        """A token of ``user`` with ``scopes`` (only those the user holds are granted, as for a server's token)."""
        body: dict[str, Any] = {"scopes": scopes, "note": note}
        if expires_in is not None:
            body["expires_in"] = expires_in
        r = self.api("POST", f"users/{user}/tokens", json=body)
        r.raise_for_status()
        self._token_ids[r.json()["token"]] = str(r.json()["id"])
        return str(r.json()["token"])

    def revoke(self, user: str, token: str) -> None:
        """Revoke a token made by :meth:`user_token` (as the user does on the Hub's token page)."""
        self.api("DELETE", f"users/{user}/tokens/{self._token_ids[token]}").raise_for_status()

    def spawn(self, user: str, timeout: float = 90) -> dict[str, str]:
        """Start ``user``'s server; the environment the Hub gave it (read from the running process)."""
        r = self.api("POST", f"users/{user}/server")
        if r.status_code not in (201, 202, 400):  # 400: already running
            r.raise_for_status()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            model = self.api("GET", f"users/{user}").json()
            if model.get("servers", {}).get("", {}).get("ready"):
                break
            time.sleep(0.3)
        else:
            raise TimeoutError(f"{user}'s server did not start within {timeout} s; see {self.log_path}")
        for pid in _children(self.process.pid):
            self._pids.add(pid)
            try:
                raw = Path(f"/proc/{pid}/environ").read_bytes()
            except OSError:
                continue
            env = dict(kv.split("=", 1) for kv in raw.decode(errors="replace").split("\0") if "=" in kv)
            if env.get("JUPYTERHUB_USER") == user and "JUPYTERHUB_API_TOKEN" in env:
                return env
        raise RuntimeError(f"no process of {user}'s server found")

    def stop(self) -> None:
        """End the Hub (it stops the proxy and the servers), then any process of it still there."""
        self._pids.update(_children(self.process.pid))
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        for pid in self._pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def hub_config(workdir: Path, port: int, hub_port: int, proxy_api_port: int, token: str, users: list[str],
               admins: list[str], extra: list[str]) -> str:
    lines = [
        f"c.JupyterHub.ip = '127.0.0.1'", f"c.JupyterHub.port = {port}",
        f"c.JupyterHub.hub_ip = '127.0.0.1'", f"c.JupyterHub.hub_port = {hub_port}",
        f"c.ConfigurableHTTPProxy.command = [{proxy_command()!r}]",
        f"c.ConfigurableHTTPProxy.api_url = 'http://127.0.0.1:{proxy_api_port}'",
        f"c.JupyterHub.db_url = 'sqlite:///{workdir / 'jupyterhub.sqlite'}'",
        f"c.JupyterHub.cookie_secret_file = {str(workdir / 'cookie_secret')!r}",
        f"c.JupyterHub.pid_file = {str(workdir / 'jupyterhub.pid')!r}",
        "c.JupyterHub.authenticator_class = 'dummy'",
        f"c.DummyAuthenticator.password = {PASSWORD!r}",
        f"c.Authenticator.allowed_users = {set(users) | set(admins)!r}",
        f"c.Authenticator.admin_users = {set(admins)!r}",
        "c.JupyterHub.spawner_class = 'simple'",
        f"c.SimpleLocalProcessSpawner.home_dir_template = {str(workdir / 'home' / '{username}')!r}",
        f"c.Spawner.cmd = [{str(Path(sys.executable).parent / 'jupyterhub-singleuser')!r}]",
        "c.Spawner.args = ['--allow-root']",
        "c.Spawner.http_timeout = 90", "c.Spawner.start_timeout = 90",
        "c.JupyterHub.services = []", "c.JupyterHub.load_roles = []",
        f"c.JupyterHub.services.append({{'name': 'harness', 'api_token': {token!r}}})",
        f"c.JupyterHub.load_roles.append({{'name': 'harness', 'services': ['harness'], 'scopes': {HARNESS_SCOPES!r}}})",
        *extra,
    ]
    return "\n".join(lines) + "\n"


def start_hub(workdir: Path, users: list[str], admins: list[str] = (), extra_config: list[str] = (),  # type: ignore[assignment]
              env: dict[str, str] | None = None, timeout: float = 90, hub_port: int | None = None) -> RunningHub:
    """Start a Hub in ``workdir`` with ``extra_config`` lines (e.g. those ``mlph hub-config`` prints) and wait
    until its API answers through the proxy."""
    workdir.mkdir(parents=True, exist_ok=True)
    for user in [*users, *admins]:
        (workdir / "home" / user).mkdir(parents=True, exist_ok=True)
    port, hub_port, proxy_port = free_port(), hub_port or free_port(), free_port()
    token = os.urandom(24).hex()
    config = workdir / "jupyterhub_config.py"
    config.write_text(hub_config(workdir, port, hub_port, proxy_port, token, list(users), list(admins),
                                 list(extra_config)))
    log_path = workdir / "jupyterhub.log"
    bindir = Path(sys.executable).parent
    full_env = {**os.environ, "PATH": f"{bindir}:{os.environ.get('PATH', '')}", **(env or {})}
    for name in [k for k in full_env if k.startswith("JUPYTERHUB_")]:
        del full_env[name]
    with open(log_path, "ab") as log:
        process = subprocess.Popen([str(bindir / "jupyterhub"), "-f", str(config)], cwd=workdir, env=full_env,
                                   stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    hub = RunningHub(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{hub_port}/hub/api", token, workdir, process,
                     log_path)
    try:
        _wait_until_up(hub, timeout)
    except BaseException:  # also Ctrl-C while waiting: nothing of the Hub is left running
        hub.stop()
        raise
    return hub


def _wait_until_up(hub: RunningHub, timeout: float) -> None:
    process, log_path = hub.process, hub.log_path
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the Hub exited ({process.returncode}): {log_path.read_text()[-3000:]}")
        try:
            if requests.get(f"{hub.url}/hub/api/", timeout=2).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"the Hub did not answer within {timeout} s: {log_path.read_text()[-3000:]}")
