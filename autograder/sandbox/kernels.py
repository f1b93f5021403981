"""Kernels for grading: each in its own sandbox, started ahead of need.

A :class:`Kernel` is started before the submission it will run is known (a worker keeps one spare
per configuration, see :func:`take_kernel`), so the kernel's start-up overlaps the previous
submission instead of adding to it. Nothing of a student reaches a kernel before :meth:`Kernel.prepare`,
and every kernel is used for one submission only, so no state passes between two students.
Kernels talk ZeroMQ over ``ipc`` sockets (the sandbox has no network); interrupts are messages
on the control channel (a signal to the sandbox's process group could not reach the kernel).
"""
from __future__ import annotations

import asyncio
import atexit
import json
import logging
import os
import resource
import secrets
import select
import shutil
import tempfile
import threading
import time
from multiprocessing import util as mp_util
from pathlib import Path
from queue import Empty
from typing import IO, Any

from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_client.manager import AsyncKernelManager
from jupyter_client.session import Session
from jupyter_core.utils import run_sync

from autograder.limits import Limits
from autograder.sandbox.bwrap import HOME, NOBODY, SINGLE_THREADED, Sandbox, is_root, working_bwrap
from autograder.sandbox.zygote import HOLDER, ZygoteUnavailable, close_zygote, find_holder, zygote

log = logging.getLogger(__name__)

# Trusted code run in a fresh kernel before any student code: writes the submission's files into the
# working directory. Its names are deleted afterwards; the payload is data (JSON), never code.
INSTALL = """def _mlph_install(payload):
    import json, pathlib
    for name, text in json.loads(payload).items():
        path = pathlib.Path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
_mlph_install({payload!r})
del _mlph_install
"""


# ipykernel's own launcher, with debugpy blocked: a graded kernel is never debugged, and importing
# the debugger is a fifth of a kernel's start-up.
LAUNCH = ("import sys; sys.modules['debugpy'] = None; sys.path.pop(0)\n"
          "from ipykernel import kernelapp; kernelapp.launch_new_instance()")


def preload_line(modules: tuple[str, ...]) -> str:
    """``import numpy, scipy.optimize; del numpy, scipy``: modules in sys.modules, names gone."""
    tops = sorted({m.split(".")[0] for m in modules})
    return f"import {', '.join(modules)}; del {', '.join(tops)}"


class QuickClient(AsyncKernelClient):
    """jupyter_client's client, ready as soon as the kernel answers on shell *and* iopub.

    The stock wait ends with 0.2 s of silence on iopub, which for a kernel started ahead of need is
    most of its start-up latency. Seeing the status message of our own kernel_info request on iopub
    proves the subscription is live; later stray messages are ignored anyway, since nbclient matches
    every message to its request."""

    async def wait_for_ready(self, timeout: float | None = None) -> None:  # type: ignore[override]
        """A reply on shell to *any* of our kernel_info requests, then any of their statuses on iopub.

        Matching only the latest request would never succeed once one reply took longer than the
        one-second poll (a loaded machine, a slow preload): each round would read the previous reply.
        The status of a request sent before iopub's subscription reached the kernel is lost, so
        iopub is asked again every 20 ms rather than waited on."""
        deadline = time.monotonic() + (timeout if timeout is not None else 60.0)
        asked: set[str] = set()
        while time.monotonic() < deadline:
            asked.add(self.kernel_info())
            try:
                reply = await self.get_shell_msg(timeout=1)
            except Empty:
                reply = None
            if reply and reply["parent_header"].get("msg_id") in asked:
                break
            if not await self._async_is_alive():
                raise RuntimeError("Kernel died before replying to kernel_info")
        while time.monotonic() < deadline:
            if await self._iopub_answers(asked, until=min(deadline, time.monotonic() + 0.02)):
                return
            if not await self._async_is_alive():
                raise RuntimeError("Kernel died before answering on iopub")
            asked.add(self.kernel_info())
        raise RuntimeError(f"Kernel didn't respond in {timeout} seconds")

    async def _iopub_answers(self, asked: set[str], until: float) -> bool:
        while (left := until - time.monotonic()) > 0:
            try:
                msg = await self.get_iopub_msg(timeout=left)
            except Empty:
                return False
            if msg["parent_header"].get("msg_id") in asked:
                return True
        return False


class RandomIdSession(Session):
    """jupyter_client's session with message ids the kernel cannot predict (the stock ones are
    ``<session>_<pid>_<counter>``): a kernel cannot prepare a reply or a status for a request not sent yet."""

    @property
    def msg_id(self) -> str:
        return secrets.token_hex(16)


class SandboxedKernelManager(AsyncKernelManager):
    """jupyter_client's manager, with the kernel's command line wrapped in the sandbox.

    With a zygote (:mod:`autograder.sandbox.zygote`, root only), the command bubblewrap runs is only the
    sandbox's placeholder and the kernel is forked into it; it counts as alive while both live."""

    sandbox: Sandbox | None = None
    use_zygote = False
    preload: tuple[str, ...] = ()
    log_path = ""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(client_class="autograder.sandbox.kernels.QuickClient", **kwargs)
        self.session = RandomIdSession(parent=self, key=self.session.key, session=self.session.session,
                                       signature_scheme=self.session.signature_scheme)
        self.kernel_pidfd: int | None = None
        self._forking: threading.Thread | None = None
        self._fork_error: ZygoteUnavailable | None = None
        self._launch_kw: dict[str, Any] = {}
        self._argv: list[str] = []
        self._exec_cmd: list[str] = []

    async def _async_wait(self, pollinterval: float = 0.1) -> None:
        while await self._async_is_alive():  # a killed sandbox is gone in milliseconds: poll often
            await asyncio.sleep(0.005)

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        cmd = super().format_kernel_cmd(extra_arguments)
        if cmd[1:3] == ["-m", "ipykernel_launcher"]:  # the same kernel, without its debugger (40 ms of imports)
            cmd[1:3] = ["-c", LAUNCH]
        if not self.sandbox:
            return cmd
        self._argv, self._exec_cmd = cmd[3:], self.sandbox.wrap(cmd)
        return self.sandbox.wrap(HOLDER) if self.use_zygote and cmd[1:3] == ["-c", LAUNCH] else self._exec_cmd

    async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
        """Start bubblewrap; with the zygote, the fork into its placeholder happens on a thread (bwrap
        takes ~20 ms to set the sandbox up: a spare kernel must not hold up the submission being graded).
        :meth:`settle` waits for it."""
        self._forget_kernel_pid()
        await super()._async_launch_kernel(kernel_cmd, **kw)
        if self.sandbox and kernel_cmd != self._exec_cmd:
            self._launch_kw = kw
            self._fork_error = None
            self._forking = threading.Thread(target=self._fork_kernel, daemon=True)
            self._forking.start()

    def settle(self) -> None:
        """The kernel process exists: the fork finished, or failed and the kernel was started the
        ordinary way (the zygote costs time when it cannot help, never a submission)."""
        error = self.join_fork()
        if error is not None:
            log.warning("kernel zygote: %s; starting the kernel without it", error)
            run_sync(self._relaunch_without_zygote)()

    def join_fork(self) -> ZygoteUnavailable | None:
        """Wait for a fork still under way (if any); why it failed, if it did."""
        if self._forking is None:
            return None
        self._forking.join()
        self._forking = None
        return self._fork_error

    async def _relaunch_without_zygote(self) -> None:
        assert self.provisioner is not None
        await self.provisioner.kill()
        await self.provisioner.wait()
        await super()._async_launch_kernel(self._exec_cmd, **self._launch_kw)

    def _fork_kernel(self) -> None:
        try:
            assert self.sandbox is not None and self.provisioner is not None
            process = getattr(self.provisioner, "process", None)
            if process is None:
                raise ZygoteUnavailable("the sandbox has no process")
            holder = find_holder(process.pid)
            pid = zygote().spawn(holder, self.preload, argv=self._argv, log=self.log_path, uid=NOBODY, gid=NOBODY,
                                 cgroups=[str(d) for d in self.sandbox.cgroups.dirs],
                                 rlimits=self.sandbox.rlimits(), env=self.sandbox.env(), cwd=HOME)
            try:
                self.kernel_pidfd = os.pidfd_open(pid)
            except ProcessLookupError:
                raise ZygoteUnavailable("the forked kernel died at once; see its log") from None
        except ZygoteUnavailable as exc:
            self._fork_error = exc

    def _forget_kernel_pid(self) -> None:
        if self.kernel_pidfd is not None:
            os.close(self.kernel_pidfd)
            self.kernel_pidfd = None

    async def _async_is_alive(self) -> bool:
        if not await super()._async_is_alive():
            return False
        if self._forking is not None or self.kernel_pidfd is None:  # not forked yet: the placeholder counts
            return True
        return not select.select([self.kernel_pidfd], [], [], 0)[0]  # a pidfd is readable once its process exited

    def write_connection_file(self, **kwargs: Any) -> None:
        super().write_connection_file(**kwargs)
        if self.sandbox:
            self.sandbox.share(self.connection_file)


def zygote_wanted() -> bool:
    """Fork sandboxed kernels from a zygote: as root, unless ``MLPH_KERNEL_ZYGOTE=0`` (then every kernel is
    a fresh Python, 0.4 CPU-seconds more per submission, as without root)."""
    return is_root() and os.environ.get("MLPH_KERNEL_ZYGOTE", "1") != "0"


class Kernel:
    """One kernel process for one submission; :meth:`close` removes every trace of it."""

    def __init__(self, limits: Limits, sandboxed: bool, preload: tuple[str, ...] = (), spare: bool = False) -> None:
        """``spare``: started ahead of need; :meth:`settle` before use (the others are settled here)."""
        self.preload = preload
        self.sandbox = Sandbox(limits, working_bwrap()) if sandboxed else None
        if self.sandbox:
            self.root, sockets, self.workdir = self.sandbox.root, self.sandbox.sockets, self.sandbox.workdir
        else:
            self.root = Path(tempfile.mkdtemp(prefix="mlph-kernel-"))
            sockets = self.root / "run"
            sockets.mkdir()
            (self.root / "work").mkdir()
            self.workdir = str(self.root / "work")
        self.km = SandboxedKernelManager(kernel_name="python3", transport="ipc", ip=str(sockets / "k"))
        self.km.sandbox = self.sandbox
        self.km.use_zygote = bool(self.sandbox) and zygote_wanted()
        self.km.preload = preload
        self.km.log_path = str(self.root / "kernel.log")
        self.km.connection_file = str(sockets / "kernel.json")
        spec = self.km.kernel_spec
        if spec is None:
            raise RuntimeError("the python3 kernel spec is not installed")
        spec.interrupt_mode = "message"
        self.log: IO[bytes] = open(self.root / "kernel.log", "wb")
        self.baseline = 0
        self._start()
        if not spare:
            self.settle()

    def settle(self) -> None:
        self.km.settle()

    def _start(self) -> None:
        cwd = str(self.root) if self.sandbox else self.workdir
        env = {**os.environ, **SINGLE_THREADED}
        args = ["--HistoryManager.enabled=False"]
        if self.preload:  # the sheet's own imports, done while the kernel waits; no name is left behind
            args.append(f"--IPKernelApp.exec_lines={preload_line(self.preload)}")
        run_sync(self.km.start_kernel)(cwd=cwd, env=env, stdout=self.log, stderr=self.log, extra_arguments=args)

    def started(self) -> None:
        """The kernel answered: from now on it cannot create files in the sockets directory."""
        if self.sandbox:
            self.sandbox.seal()
            self.baseline = len(self.sandbox.cgroups.pids_inside())

    def has_strays(self) -> bool:
        """More processes in the sandbox than it started with (left by a cell: a fork bomb, a daemon)."""
        return self.sandbox is not None and len(self.sandbox.cgroups.pids_inside()) > self.baseline

    def restart(self) -> None:
        """A new kernel in a new sandbox instance (same cgroups, emptied first: what a fork bomb left
        must not count against the new kernel's process limit); the caller reinstalls files."""
        run_sync(self.km.shutdown_kernel)(now=True, restart=True)
        if self.sandbox:
            self.sandbox.cgroups.kill_all()
            self.sandbox.unseal()
        self._start()
        self.settle()

    def prepare(self, kc: Any, files: dict[str, str], timeout: float) -> None:
        """The kernel answered (:meth:`started`): write the submission's files into its (empty) working
        directory, before any student code."""
        self.started()
        code = INSTALL.format(payload=json.dumps(files))
        reply = run_sync(kc.execute_interactive)(code, silent=True, store_history=False, timeout=timeout,
                                                 output_hook=lambda msg: None)
        if reply["content"].get("status") != "ok":
            raise RuntimeError(f"could not prepare the working directory: {reply['content'].get('evalue', '')}")

    def startup_log(self, limit: int = 600) -> str:
        """The end of what the kernel printed (only meaningful before student code ran)."""
        try:
            return (self.root / "kernel.log").read_bytes()[-limit:].decode("utf-8", "replace").strip()
        except OSError:
            return ""

    def alive(self) -> bool:
        return bool(run_sync(self.km.is_alive)())

    def close(self) -> None:
        self.km.join_fork()  # a spare still being forked: let that finish, then kill it all
        try:
            if self.km.has_kernel:
                run_sync(self.km.shutdown_kernel)(now=True)
        except Exception:  # already gone
            pass
        self.km._forget_kernel_pid()
        self.log.close()
        if self.sandbox:
            self.sandbox.close()
        else:
            shutil.rmtree(self.root, ignore_errors=True)


_SPARE: dict[tuple[Limits, bool, tuple[str, ...]], Kernel] = {}
_LOCK = threading.Lock()


_CLEANUP_FOR: list[int] = []


def _close_spares_at_exit() -> None:
    """Pool workers leave through multiprocessing (os._exit), not atexit: register there too, once
    per process (a finalizer registered in the forkserver is ignored in its children)."""
    if os.getpid() not in _CLEANUP_FOR:
        _CLEANUP_FOR.append(os.getpid())
        mp_util.Finalize(None, close_spares, exitpriority=10)


def take_kernel(limits: Limits, sandboxed: bool, preload: tuple[str, ...] = (), spare: bool = True) -> Kernel:
    """A started kernel for this configuration, and (``spare``) a new one started for the next submission."""
    key = (limits, sandboxed, preload)
    _close_spares_at_exit()
    with _LOCK:
        kernel = _SPARE.pop(key, None)
        if kernel is not None:
            kernel.settle()
            if not kernel.alive():
                kernel.close()
                kernel = None
        if kernel is None:
            kernel = Kernel(limits, sandboxed, preload)
        if spare:
            _SPARE[key] = Kernel(limits, sandboxed, preload, spare=True)
    return kernel


WORKER_MEMORY_MIB = 4096  # address space of a worker process (it holds one notebook: output is bounded too)


def bound_worker_memory() -> None:
    """A worker's own address space is capped (soft limit; ``MLPH_WORKER_MEMORY_MIB``): running out is a
    MemoryError for the job it holds (that submission's grader_error), never the machine's memory."""
    mib = int(os.environ.get("MLPH_WORKER_MEMORY_MIB", WORKER_MEMORY_MIB))
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = mib * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit if hard == resource.RLIM_INFINITY else min(limit, hard), hard))


def worker_init(coordinator: int, warm: tuple[Limits, bool, tuple[str, ...]] | None) -> None:
    """Pool initializer: leave with the coordinator (a ``kill -9``'d grader must not leave workers and
    their spare kernels behind), bound the worker's memory, and start the first spare kernel while the
    coordinator prepares jobs."""
    threading.Thread(target=_exit_with, args=(coordinator,), daemon=True).start()
    bound_worker_memory()
    if warm:
        warm_up(*warm)


def _exit_with(pid: int) -> None:
    try:
        fd = os.pidfd_open(pid)
    except (ProcessLookupError, OSError):
        fd = None
    if fd is not None:
        select.select([fd], [], [])  # readable when the process has exited
    close_spares()
    os._exit(1)


def warm_up(limits: Limits, sandboxed: bool, preload: tuple[str, ...] = ()) -> None:
    """The worker's first spare kernel, started before any job arrives."""
    _close_spares_at_exit()
    with _LOCK:
        key = (limits, sandboxed, preload)
        if key not in _SPARE:
            _SPARE[key] = Kernel(limits, sandboxed, preload, spare=True)


def close_spares() -> None:
    with _LOCK:
        while _SPARE:
            _SPARE.popitem()[1].close()
    close_zygote()


atexit.register(close_spares)
