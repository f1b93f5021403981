"""Kernels for grading: each an executor (:mod:`autograder.sandbox.executor`) in its own sandbox, started ahead of need.

A :class:`Kernel` is started before the submission it will run is known (a worker keeps one spare
per configuration, see :func:`take_kernel`), so the kernel's start-up overlaps the previous
submission instead of adding to it. Nothing of a student reaches a kernel before :meth:`Kernel.prepare`,
and every kernel is used for one submission only, so no state passes between two students.

The grader talks to its kernel over one end of a socket pair, the kernel holds the other: no file,
no network, no listening socket. As root the kernel is forked by the zygote
(:mod:`autograder.sandbox.zygote`) into a sandbox whose placeholder bubblewrap started, and the socket
reaches it through the zygote (``SCM_RIGHTS``); otherwise bubblewrap executes a fresh Python running
the executor, the socket inherited. Interrupts are messages on the socket (the executor's reader
thread turns them into a SIGINT of its main thread); a kernel that ignores them is killed.
"""
from __future__ import annotations

import atexit
import json
import queue
import logging
import os
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from multiprocessing import util as mp_util
from pathlib import Path
from typing import IO, Any

from autograder.errors import SandboxUnavailable
from autograder.limits import Limits
from autograder.sandbox.bwrap import HOME, NOBODY, SINGLE_THREADED, Sandbox, is_root, readable, working_bwrap
from autograder.sandbox.executor import HEADER
from autograder.sandbox.zygote import (HOLDER, Zygote, ZygoteUnavailable, close_zygote, find_holder, share_zygote,
                                       sweep_stale_zygotes, zygote)

log = logging.getLogger(__name__)

EXECUTOR_SOURCE = Path(__file__).with_name("executor.py").read_text(encoding="utf-8")
FRAME_SLACK = 1 << 20  # bytes a reply may carry beyond eight times the cell's output limit (JSON escapes)


class KernelDied(RuntimeError):
    """The kernel process ended (or broke the protocol) while the grader waited for it."""


def zygote_wanted() -> bool:
    """Fork sandboxed kernels from a zygote: as root, unless ``MLPH_KERNEL_ZYGOTE=0`` (then every kernel is
    a fresh Python, 0.3 CPU-seconds more per submission, as without root)."""
    return is_root() and os.environ.get("MLPH_KERNEL_ZYGOTE", "1") != "0"


class Kernel:
    """One executor process for one submission; :meth:`close` removes every trace of it."""

    def __init__(self, limits: Limits, sandboxed: bool, preload: tuple[str, ...] = (), spare: bool = False) -> None:
        """``spare``: started ahead of need; :meth:`settle` before use (the others are settled here)."""
        self.limits, self.preload = limits, preload
        self.sandbox = Sandbox(limits, working_bwrap()) if sandboxed else None
        if self.sandbox:
            self.root, self.workdir = self.sandbox.root, self.sandbox.workdir
        else:
            self.root = Path(tempfile.mkdtemp(prefix="mlph-kernel-"))
            (self.root / "work").mkdir()
            self.workdir = str(self.root / "work")
        self.use_zygote = bool(self.sandbox) and zygote_wanted()
        self.log: IO[bytes] = open(self.root / "kernel.log", "wb")
        self.max_frame = 8 * limits.output_bytes + FRAME_SLACK
        self.baseline = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.pidfd: int | None = None  # the kernel process itself (zygote) or what holds it (bwrap, python)
        self.sock: socket.socket | None = None
        self._buf = bytearray()
        self._forking: threading.Thread | None = None
        self._holder_feed: int | None = None  # the zygote's placeholder's stdin, open while it lives
        self._fork_error: ZygoteUnavailable | None = None
        try:
            self._start()
            if not spare:
                self.settle()
        except BaseException:
            self.close()  # its sandbox's directories and cgroups too
            raise

    # -- start-up -------------------------------------------------------------------------------------------

    def _popen(self, cmd: list[str], pass_fds: tuple[int, ...] = (), stdin: int = subprocess.DEVNULL,
               stdout: int | None = None) -> None:
        out = self.log if stdout is None else stdout
        if self.sandbox:  # bwrap clears the environment and sets the sandbox's own
            try:
                self.proc = self.sandbox.start(cmd, pass_fds, stdin=stdin, stdout=out, stderr=self.log,
                                               cwd=str(self.root), env={**os.environ, **SINGLE_THREADED},
                                               start_new_session=True)
            except SandboxUnavailable as exc:  # this kernel's, not the machine's: the submission's kernel failed
                raise KernelDied(str(exc)) from None
        else:
            env = {**os.environ, **SINGLE_THREADED, "IPYTHONDIR": str(self.root / "ipython"), "MPLBACKEND": "Agg"}
            self.proc = subprocess.Popen(cmd, stdin=stdin, stdout=out, stderr=self.log, cwd=self.workdir, env=env,
                                         pass_fds=pass_fds, start_new_session=True)
        self.pidfd = os.pidfd_open(self.proc.pid)

    def _start(self) -> None:
        self.sock, theirs = socket.socketpair()
        self._buf = bytearray()
        if self.sandbox and self.use_zygote:
            # the placeholder (cat) echoes a line it finds waiting on its stdin once it runs; that pipe stays
            # open for its lifetime (closed, the placeholder and so the sandbox end)
            feed, self._holder_feed = os.pipe()
            ready, said = os.pipe()
            try:
                os.write(self._holder_feed, b"\n")
                self._popen(HOLDER, stdin=feed, stdout=said)
            finally:
                os.close(feed)
                os.close(said)
            self._fork_error = None
            self._forking = threading.Thread(target=self._fork_kernel, args=(theirs, ready), daemon=True)
            self._forking.start()
        else:
            self._exec_kernel(theirs)

    def _exec_kernel(self, theirs: socket.socket) -> None:
        """A fresh Python running the executor (in the sandbox unless it is off)."""
        with theirs:
            self._popen([sys.executable, "-c", EXECUTOR_SOURCE, str(theirs.fileno())], (theirs.fileno(),))

    def _fork_kernel(self, theirs: socket.socket, ready: int) -> None:
        """On a thread: bubblewrap takes ~20 ms to set the sandbox up, a spare kernel must not hold up the
        submission being graded. :meth:`settle` waits for it."""
        try:
            assert self.sandbox is not None and self.proc is not None
            holder = find_holder(self.proc.pid, ready=ready)
            pid = zygote().spawn(holder, self.preload, theirs.fileno(), log=str(self.root / "kernel.log"), uid=NOBODY,
                                 gid=NOBODY, cgroups=[str(d) for d in self.sandbox.cgroups.dirs],
                                 rlimits=self.sandbox.rlimits(), env=self.sandbox.env(), cwd=HOME)
            try:
                fd = os.pidfd_open(pid)
            except ProcessLookupError:
                raise ZygoteUnavailable("the forked kernel died at once; see its log") from None
            holder_fd, self.pidfd = self.pidfd, fd
            if holder_fd is not None:
                os.close(holder_fd)
        except ZygoteUnavailable as exc:
            self._fork_error = exc
        except Exception as exc:  # a bug here costs time (the ordinary start), never a submission
            self._fork_error = ZygoteUnavailable(f"{type(exc).__name__}: {exc}")
        finally:
            theirs.close()
            os.close(ready)

    def settle(self) -> None:
        """The kernel process exists: the fork finished, or failed and the kernel was started the
        ordinary way (the zygote costs time when it cannot help, never a submission)."""
        if self._forking is None:
            return
        self._forking.join()
        self._forking = None
        if self._fork_error is not None:
            log.warning("kernel zygote: %s; starting the kernel without it", self._fork_error)
            self._stop()
            self.sock, theirs = socket.socketpair()
            self._exec_kernel(theirs)

    def started(self) -> None:
        """Before the submission's first cell: how many processes the sandbox holds on its own."""
        if self.sandbox:
            self.baseline = len(self.sandbox.cgroups.pids_inside())

    def has_strays(self) -> bool:
        """More processes in the sandbox than it started with (left by a cell: a fork bomb, a daemon)."""
        return self.sandbox is not None and len(self.sandbox.cgroups.pids_inside()) > self.baseline

    def prepare(self, files: dict[str, str], preload: tuple[str, ...] = ()) -> None:
        """Write the submission's files into the kernel's (empty) working directory, before any student code;
        the sheet's imports too (a forked kernel has them already)."""
        reply = self.request({"op": "setup", "files": files, "preload": list(preload or self.preload),
                              "limits": {"output_bytes": self.limits.output_bytes,
                                         "notebook_output_bytes": self.limits.notebook_output_bytes}},
                             self.limits.startup_timeout)
        if reply is None or reply.get("status") != "ok":
            why = "no answer" if reply is None else str(reply.get("reason", ""))[:300]
            raise KernelDied(f"could not prepare the working directory: {why}")
        self.started()  # the kernel answered: every process of its own start-up is there

    # -- the protocol ---------------------------------------------------------------------------------------

    def send(self, req: dict[str, Any]) -> str:
        """Send a request with a fresh token; the token."""
        assert self.sock is not None
        token = secrets.token_hex(16)
        body = json.dumps({**req, "token": token}).encode("utf-8")
        try:
            self.sock.sendall(HEADER.pack(len(body)) + body)
        except OSError as exc:
            raise KernelDied(f"the kernel is gone ({exc.strerror or exc})") from None
        return token

    def request(self, req: dict[str, Any], timeout: float) -> dict[str, Any] | None:
        return self.reply(self.send(req), timeout)

    def interrupt(self, token: str) -> None:
        assert self.sock is not None
        body = json.dumps({"op": "interrupt", "token": token}).encode("utf-8")
        try:
            self.sock.sendall(HEADER.pack(len(body)) + body)
        except OSError:
            pass

    def reply(self, token: str, timeout: float) -> dict[str, Any] | None:
        """The reply to the request ``token`` (replies to other tokens are dropped), or None after ``timeout``
        seconds. :class:`KernelDied` when the kernel ends or sends what the protocol does not allow."""
        deadline = time.monotonic() + timeout
        while True:
            frame = self._frame(deadline)
            if frame is None:
                return None
            try:
                msg = json.loads(frame)
            except ValueError:
                continue  # not JSON: never a reply
            if isinstance(msg, dict) and msg.get("token") == token:
                return msg

    def _frame(self, deadline: float) -> bytes | None:
        assert self.sock is not None and self.pidfd is not None
        while True:
            if len(self._buf) >= HEADER.size:
                (size,) = HEADER.unpack_from(self._buf)
                if size > self.max_frame:
                    raise KernelDied(f"the kernel sent a message of {size} bytes (at most {self.max_frame})")
                if len(self._buf) >= HEADER.size + size:
                    frame = bytes(self._buf[HEADER.size:HEADER.size + size])
                    del self._buf[:HEADER.size + size]
                    return frame
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready = readable([self.sock, self.pidfd], left)
            if self.sock.fileno() in ready:
                try:
                    chunk = self.sock.recv(1 << 20)
                except OSError:
                    chunk = b""
                if not chunk:
                    raise KernelDied("the kernel closed its connection")
                self._buf += chunk
            elif self.pidfd in ready:  # the process exited; what it sent before is still read above
                raise KernelDied("the kernel process exited")

    # -- the end --------------------------------------------------------------------------------------------

    def startup_log(self, limit: int = 600) -> str:
        """The end of what the kernel printed (only meaningful before student code ran)."""
        try:
            return (self.root / "kernel.log").read_bytes()[-limit:].decode("utf-8", "replace").strip()
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.pidfd is not None and not readable([self.pidfd], 0)

    def restart(self) -> None:
        """A new kernel in a new sandbox instance (same cgroups, emptied first: what a fork bomb left
        must not count against the new kernel's process limit); the caller prepares it again."""
        self._stop()
        self._start()
        self.settle()

    def _stop(self) -> None:
        """Kill the kernel and everything it started; the sandbox's directories and cgroups stay."""
        if self._forking is not None:  # a spare still being forked: let that finish, then kill it all
            self._forking.join()
            self._forking = None
        if self.pidfd is not None:
            try:
                signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
            except OSError:
                pass
            os.close(self.pidfd)
            self.pidfd = None
        if self.proc is not None:
            if self.proc.poll() is None:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except OSError:
                    pass
            self.proc.wait()
            self.proc = None
        if self.sandbox:
            self.sandbox.cgroups.kill_all()
        if self._holder_feed is not None:
            os.close(self._holder_feed)
            self._holder_feed = None
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def close(self) -> None:
        self._stop()
        self.log.close()
        if self.sandbox:
            self.sandbox.close()
        else:
            shutil.rmtree(self.root, ignore_errors=True)


class _Housekeeper:
    """A worker's kernel chores off its critical path, in order, on one thread: starting the next spare
    kernel (a sandbox, bubblewrap, the fork) and closing used ones (killing, emptying cgroups, removing)."""

    def __init__(self) -> None:
        self._chores: queue.Queue[tuple[Future[Any], Callable[[], Any]]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, chore: Callable[[], Any]) -> Future[Any]:
        fut: Future[Any] = Future()
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, daemon=True, name="mlph-kernel-chores")
                self._thread.start()
        self._chores.put((fut, chore))
        return fut

    def _run(self) -> None:
        while True:
            fut, chore = self._chores.get()
            try:
                fut.set_result(chore())
            except BaseException as exc:  # the caller sees it (a spare that failed is started again in place)
                fut.set_exception(exc)
            finally:
                self._chores.task_done()

    def drain(self) -> None:
        """Wait until every chore submitted so far is done."""
        self._chores.join()


_SPARE: dict[tuple[Limits, bool, tuple[str, ...]], Future[Kernel]] = {}
_LOCK = threading.Lock()
_HOUSE = _Housekeeper()
_CLEANUP_FOR: list[int] = []


def _close_spares_at_exit() -> None:
    """Pool workers leave through multiprocessing (os._exit), not atexit: register there too, once
    per process (a finalizer registered in the forkserver is ignored in its children)."""
    if os.getpid() not in _CLEANUP_FOR:
        _CLEANUP_FOR.append(os.getpid())
        mp_util.Finalize(None, close_spares, exitpriority=10)


def _start_spare(key: tuple[Limits, bool, tuple[str, ...]]) -> None:
    limits, sandboxed, preload = key
    with _LOCK:
        if key not in _SPARE:
            _SPARE[key] = _HOUSE.submit(lambda: Kernel(limits, sandboxed, preload, spare=True))


def take_kernel(limits: Limits, sandboxed: bool, preload: tuple[str, ...] = (), spare: bool = True) -> Kernel:
    """A started kernel for this configuration, and (``spare``) a new one started, off the critical path,
    for the next submission."""
    key = (limits, sandboxed, preload)
    _close_spares_at_exit()
    with _LOCK:
        pending = _SPARE.pop(key, None)
    kernel: Kernel | None = None
    if pending is not None:
        try:
            kernel = pending.result()
        except Exception as exc:  # started again here, where a failure is this submission's to report
            log.warning("a spare kernel failed to start: %s", exc)
        if kernel is not None:
            try:
                kernel.settle()
            except KernelDied as exc:
                log.warning("a spare kernel failed to start: %s", exc)
                kernel.close()
                kernel = None
        if kernel is not None:
            if not kernel.alive():
                kernel.close()
                kernel = None
    if kernel is None:
        kernel = Kernel(limits, sandboxed, preload)
    if spare:
        _start_spare(key)
    return kernel


def retire(kernel: Kernel) -> None:
    """Close a used kernel off the critical path (:func:`close_spares` waits for it)."""
    _HOUSE.submit(kernel.close)


WORKER_MEMORY_MIB = 4096  # address space of a worker process (it holds one notebook: output is bounded too)


def bound_worker_memory() -> None:
    """A worker's own address space is capped (soft limit; ``MLPH_WORKER_MEMORY_MIB``): running out is a
    MemoryError for the job it holds (that submission's grader_error), never the machine's memory."""
    mib = int(os.environ.get("MLPH_WORKER_MEMORY_MIB", WORKER_MEMORY_MIB))
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = mib * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit if hard == resource.RLIM_INFINITY else min(limit, hard), hard))


def worker_init(coordinator: int, warm: tuple[Limits, bool, tuple[str, ...]] | None,
                shared_zygote: str | None = None) -> None:
    """Pool initializer: leave with the coordinator (a ``kill -9``'d grader must not leave workers and
    their spare kernels behind), bound the worker's memory, use the coordinator's zygote (its socket's
    path, :func:`start_shared_zygote`) and start the first spare kernel while the coordinator prepares jobs."""
    threading.Thread(target=_exit_with, args=(coordinator,), daemon=True).start()
    bound_worker_memory()
    share_zygote(shared_zygote)
    if warm:
        warm_up(*warm)


def _exit_with(pid: int) -> None:
    try:
        fd = os.pidfd_open(pid)
    except (ProcessLookupError, OSError):
        fd = None
    if fd is not None:
        readable([fd], None)  # readable when the process has exited
    close_spares()
    os._exit(1)


def warm_up(limits: Limits, sandboxed: bool, preload: tuple[str, ...] = ()) -> None:
    """The worker's first spare kernel, started before any job arrives."""
    _close_spares_at_exit()
    _start_spare((limits, sandboxed, preload))


def start_shared_zygote(preload: tuple[str, ...] = ()) -> Zygote | None:
    """A zygote for all of a grader's local workers (one Python with IPython and the sheets' imports instead of
    one per worker: 0.18 CPU-seconds less per extra worker and run), with ``preload`` imported; None where
    the zygote is not used (not root, ``MLPH_KERNEL_ZYGOTE=0``) or cannot start (each worker then tries its own)."""
    if not zygote_wanted():
        return None
    sweep_stale_zygotes()  # what a killed grader's shared zygote left
    try:
        shared = Zygote(listen=True)
    except (ZygoteUnavailable, OSError) as exc:
        log.warning("shared kernel zygote: %s", exc)
        return None
    if preload:
        try:
            shared.ask({"op": "preload", "modules": list(preload)})
        except ZygoteUnavailable as exc:
            log.warning("shared kernel zygote: %s", exc)
            shared.close()
            return None
    return shared


def close_spares() -> None:
    """Every spare closed, every retired kernel closed; then the zygote."""
    with _LOCK:
        pending = list(_SPARE.values())
        _SPARE.clear()
    for fut in pending:
        try:
            fut.result().close()
        except Exception:  # a spare that never started has nothing to close
            pass
    _HOUSE.drain()
    close_zygote()


atexit.register(close_spares)
