"""Kernels for grading: each in its own sandbox, started ahead of need.

A :class:`Kernel` is started before the submission it will run is known (a worker keeps one spare
per configuration, see :func:`take_kernel`), so the kernel's start-up overlaps the previous
submission instead of adding to it. Nothing of a student reaches a kernel before :meth:`Kernel.install`,
and every kernel is used for one submission only, so no state passes between two students.
Kernels talk ZeroMQ over ``ipc`` sockets (the sandbox has no network); interrupts are messages
on the control channel (a signal to the sandbox's process group could not reach the kernel).
"""
from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
import threading
from multiprocessing import util as mp_util
from pathlib import Path
from typing import IO, Any

from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import run_sync

from .limits import Limits
from .sandbox import Sandbox, check_bwrap

SINGLE_THREADED = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

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


class SandboxedKernelManager(AsyncKernelManager):
    """jupyter_client's manager, with the kernel's command line wrapped in the sandbox."""

    sandbox: Sandbox | None = None

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        cmd = super().format_kernel_cmd(extra_arguments)
        return self.sandbox.wrap(cmd) if self.sandbox else cmd

    def write_connection_file(self, **kwargs: Any) -> None:
        super().write_connection_file(**kwargs)
        if self.sandbox:
            self.sandbox.share(self.connection_file)


class Kernel:
    """One kernel process for one submission; :meth:`close` removes every trace of it."""

    def __init__(self, limits: Limits, sandboxed: bool) -> None:
        self.limits = limits
        self.sandbox = Sandbox(limits, check_bwrap()) if sandboxed else None
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
        self.km.connection_file = str(sockets / "kernel.json")
        spec = self.km.kernel_spec
        if spec is None:
            raise RuntimeError("the python3 kernel spec is not installed")
        spec.interrupt_mode = "message"
        self.log: IO[bytes] = open(self.root / "kernel.log", "wb")
        self.baseline = 0
        self._start()

    def _start(self) -> None:
        cwd = str(self.root) if self.sandbox else self.workdir
        env = {**os.environ, **SINGLE_THREADED}
        run_sync(self.km.start_kernel)(cwd=cwd, env=env, stdout=self.log, stderr=self.log,
                                       extra_arguments=["--HistoryManager.enabled=False"])

    def started(self) -> None:
        """The kernel answered: from now on it cannot create files in the sockets directory."""
        if self.sandbox:
            self.sandbox.seal()
            self.baseline = len(self.sandbox.cgroups.pids_inside())

    def has_strays(self) -> bool:
        """More processes in the sandbox than it started with (left by a cell: a fork bomb, a daemon)."""
        return bool(self.sandbox) and len(self.sandbox.cgroups.pids_inside()) > self.baseline

    def restart(self) -> None:
        """A new kernel in a new sandbox instance (same cgroups); the caller reinstalls files."""
        if self.sandbox:
            self.sandbox.unseal()
        run_sync(self.km.restart_kernel)(now=True)

    def install(self, kc: Any, files: dict[str, str], timeout: float) -> None:
        """Write the submission's files into the (empty) working directory, before any student code."""
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
        try:
            if self.km.has_kernel:
                run_sync(self.km.shutdown_kernel)(now=True)
        except Exception:  # already gone
            pass
        self.log.close()
        if self.sandbox:
            self.sandbox.close()
        else:
            shutil.rmtree(self.root, ignore_errors=True)


_SPARE: dict[tuple[Limits, bool], Kernel] = {}
_LOCK = threading.Lock()


def take_kernel(limits: Limits, sandboxed: bool) -> Kernel:
    """A started kernel for this configuration, and a new spare started for the next submission."""
    key = (limits, sandboxed)
    with _LOCK:
        kernel = _SPARE.pop(key, None)
        if kernel is not None and not kernel.alive():
            kernel.close()
            kernel = None
        if kernel is None:
            kernel = Kernel(limits, sandboxed)
        _SPARE[key] = Kernel(limits, sandboxed)
    return kernel


def close_spares() -> None:
    with _LOCK:
        while _SPARE:
            _SPARE.popitem()[1].close()


atexit.register(close_spares)
mp_util.Finalize(None, close_spares, exitpriority=10)  # pool workers leave through multiprocessing, not atexit
