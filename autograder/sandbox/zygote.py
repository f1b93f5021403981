"""The grader's side of the kernel zygote (:mod:`autograder.sandbox.zygote_server`): one per grader, shared by its
local worker processes over a socket in a root-only directory (else one per worker process).

A sandboxed kernel normally costs a fresh Python importing IPython and the sheet's numpy stack
(about 0.3 CPU-seconds here, per submission). With the zygote, bubblewrap starts only a placeholder
(``cat``, see :data:`HOLDER`) with the sandbox's namespaces, mounts, cgroups and limits, and the kernel is a
fork of a process that has everything imported, entering those namespaces and dropping to the sandbox's uid
before it runs anything (see the server's doc for the steps).

Only for a grader running as root (entering another user's namespaces needs it). Anything that
goes wrong here is reported as :class:`ZygoteUnavailable`, and the kernel is started the ordinary
way instead: the zygote is an optimisation, never a condition for grading.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any

from autograder.sandbox.bwrap import SINGLE_THREADED, is_root, readable
from autograder.sandbox.zygote_server import start_time

SERVER = Path(__file__).with_name("zygote_server.py")
# The sandbox's placeholder process, executed by bwrap itself once every namespace and mount is set up; the
# kernel is forked in beside it. ``cat`` with a line waiting on its stdin (a pipe the grader holds open while the
# sandbox lives) says that it runs by echoing the line to its stdout (a pipe to the grader), and then waits on
# its stdin. The grader waits on that pipe instead of polling /proc, and no shell is executed for it (before:
# ``sh -c "echo; exec sleep infinity >&-"``, one exec more). bwrap's own --info-fd and --json-status-fd speak
# right after it clones the sandbox, before the mounts: too early for a placeholder to be entered.
HOLDER = ["cat"]
ANSWER_TIMEOUT = 60.0  # seconds; a spawn takes milliseconds, a first preload (scipy, sklearn) a few seconds


class ZygoteUnavailable(RuntimeError):
    """The zygote could not start this kernel (the caller starts it the ordinary way)."""


class Zygote:
    """A zygote this process started (``listen``: one its worker processes share, see :meth:`connect`)."""

    def __init__(self, listen: bool = False) -> None:
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": "/nonexistent", "MPLBACKEND": "Agg",
               "PYTHONDONTWRITEBYTECODE": "1", **SINGLE_THREADED}
        self.channel, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.path: str | None = None  # where workers connect (a root-only directory), for a shared zygote
        cmd = [sys.executable, str(SERVER)]
        keep: tuple[int, ...] = ()
        listener = None
        if listen:
            self.path = os.path.join(tempfile.mkdtemp(prefix="mlph-zygote-"), "socket")  # mode 0700
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            listener.bind(self.path)
            listener.listen(64)
            cmd, keep = [*cmd, "--listen", str(listener.fileno())], (listener.fileno(),)
        with theirs:
            self.proc: subprocess.Popen[bytes] | None = subprocess.Popen(
                cmd, stdin=theirs.fileno(), stdout=theirs.fileno(), stderr=subprocess.DEVNULL, cwd="/", env=env,
                close_fds=True, pass_fds=keep)
        if listener is not None:
            listener.close()
        self.loaded: set[str] = set()
        self._lock = threading.Lock()
        try:
            self._read({"op": "start"})
        except ZygoteUnavailable:
            self.close()
            raise

    @classmethod
    def connect(cls, path: str) -> "Zygote":
        """A worker's connection to the zygote its grader shares among its workers (at ``path``)."""
        self = cls.__new__(cls)
        self.channel = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.channel.connect(path)
        except OSError as exc:
            self.channel.close()
            raise ZygoteUnavailable(f"cannot reach the shared zygote: {exc}") from None
        self.proc, self.path, self.loaded, self._lock = None, None, set(), threading.Lock()
        return self

    def _read(self, req: dict[str, Any]) -> dict[str, Any]:
        # one answer per request, one message each (SOCK_SEQPACKET keeps their boundaries)
        if not readable([self.channel], ANSWER_TIMEOUT):
            if self.proc is not None:
                self.proc.kill()
            raise ZygoteUnavailable(f"the zygote did not answer {req.get('op')} within {ANSWER_TIMEOUT:g} s")
        try:
            data = self.channel.recv(1 << 20)
        except OSError as exc:
            raise ZygoteUnavailable(f"the zygote is gone: {exc}") from exc
        if not data:
            code = "shared" if self.proc is None else self.proc.poll()
            raise ZygoteUnavailable(f"the zygote exited (code {code}) before answering {req.get('op')}")
        answer: dict[str, Any] = json.loads(data)
        if "error" in answer:
            raise ZygoteUnavailable(answer["error"])
        return answer

    def ask(self, req: dict[str, Any], fds: tuple[int, ...] = ()) -> dict[str, Any]:
        """Send a request (with ``fds`` passed along) and wait for its answer."""
        with self._lock:
            try:
                socket.send_fds(self.channel, [json.dumps(req).encode()], list(fds))
            except OSError as exc:
                raise ZygoteUnavailable(f"the zygote is gone: {exc}") from exc
            return self._read(req)

    def spawn(self, holder: int, preload: tuple[str, ...], channel: int, **req: Any) -> int:
        """Fork a kernel into the sandbox of ``holder`` (checked to be the process :func:`find_holder`
        found, not a later one with its pid), talking over the socket ``channel``; the kernel's host pid."""
        try:
            req["holder_start"] = start_time(holder)
        except OSError:
            raise ZygoteUnavailable(f"the sandbox's placeholder {holder} is gone") from None
        missing = [m for m in preload if m not in self.loaded]
        if missing:
            self.ask({"op": "preload", "modules": missing})
            self.loaded.update(missing)
        return int(self.ask({"op": "spawn", "holder": holder, **req}, (channel,))["pid"])

    def alive(self) -> bool:
        if self.proc is None:  # a shared zygote's connection: readable between requests only when it was closed
            return not readable([self.channel], 0)
        return self.proc.poll() is None

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.channel.close()
        if self.path is not None:
            shutil.rmtree(os.path.dirname(self.path), ignore_errors=True)


_ZYGOTE: Zygote | None = None
_ZLOCK = threading.Lock()
_SHARED: str | None = None  # the path of the zygote this worker's grader shares among its workers, if any


STALE_AFTER = 60.0  # seconds: a shared zygote's directory is made a moment before its zygote listens there


def sweep_stale_zygotes(now: float | None = None) -> int:
    """Remove the directories of shared zygotes that are gone (their grader was ``kill -9``'d: nothing
    removed them): older than a minute, and nothing listens on their socket any more. The number removed."""
    now = time.time() if now is None else now
    removed = 0
    for d in Path(tempfile.gettempdir()).glob("mlph-zygote-*"):
        try:
            if not d.is_dir() or d.is_symlink() or d.stat().st_uid != os.geteuid() or now - d.stat().st_mtime < STALE_AFTER:
                continue
        except OSError:
            continue
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            probe.connect(str(d / "socket"))
            continue  # a zygote still listens there (another grader's)
        except OSError:
            pass
        finally:
            probe.close()
        shutil.rmtree(d, ignore_errors=True)
        removed += 1
    return removed


def share_zygote(path: str | None) -> None:
    """Use the zygote at ``path`` (started by the grader, :class:`Zygote` with ``listen``) instead of starting
    one for this process; one that cannot be reached (or has gone) is replaced by one of this process's own."""
    global _SHARED
    _SHARED = path


def zygote() -> Zygote:
    """This process's zygote: the shared one, else its own, started on first use (and again if it died)."""
    global _ZYGOTE, _SHARED
    if not is_root():
        raise ZygoteUnavailable("the zygote needs a grader running as root")
    with _ZLOCK:
        if _ZYGOTE is None or not _ZYGOTE.alive():
            if _ZYGOTE is not None:
                _ZYGOTE.close()
                _ZYGOTE = None
                _SHARED = None  # it served once and is gone: this process starts its own from now on
            if _SHARED is not None:
                try:
                    _ZYGOTE = Zygote.connect(_SHARED)
                except ZygoteUnavailable:
                    _SHARED = None
            if _ZYGOTE is None:
                _ZYGOTE = Zygote()
        return _ZYGOTE


def close_zygote() -> None:
    global _ZYGOTE
    with _ZLOCK:
        if _ZYGOTE is not None:
            _ZYGOTE.close()
            _ZYGOTE = None


def find_holder(bwrap_pid: int, timeout: float = 10.0, ready: int | None = None) -> int:
    """The host pid of the placeholder inside the sandbox that ``bwrap_pid`` sets up, once bubblewrap has
    finished (mounts, namespaces) and executed it. ``ready``: a pipe the placeholder writes to when it runs
    (see :data:`HOLDER`); without it, /proc is polled until the placeholder appears."""
    deadline = time.monotonic() + timeout
    want = os.path.realpath(f"/usr/bin/{HOLDER[0]}")
    pause = 0.002
    if ready is not None:  # then only the moment between its word and its exec is left to poll
        if not readable([ready], timeout):
            raise ZygoteUnavailable(f"no placeholder in the sandbox after {timeout} s")
        if not os.read(ready, 1):
            raise ZygoteUnavailable("the sandbox exited before its placeholder started")
        pause = 0.0005  # it runs: found on the first walk
    while time.monotonic() < deadline:
        todo = [bwrap_pid]
        while todo:
            pid = todo.pop()
            try:
                if pid != bwrap_pid and os.path.realpath(f"/proc/{pid}/exe") == want:
                    return pid
                todo += [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
            except OSError:
                if pid == bwrap_pid:
                    raise ZygoteUnavailable("the sandbox exited before its placeholder started") from None
        time.sleep(pause)
    raise ZygoteUnavailable(f"no placeholder in the sandbox after {timeout} s")
