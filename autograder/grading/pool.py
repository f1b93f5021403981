"""A local process pool in which a worker that dies costs only the job it held.

``concurrent.futures.ProcessPoolExecutor`` breaks as a whole when one worker dies (every pending job
fails with ``BrokenProcessPool``), so one submission that kills its worker would cost every other
submission in flight. Here each worker is driven by its own thread over its own pipe, one job at a
time: when the worker dies, exactly that job's future fails with :class:`WorkerDied`, a new worker takes
the slot, and the other jobs go on. Workers are trusted grader processes (the student's code runs in
their sandboxed kernels, never in them).
"""
from __future__ import annotations

import queue
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from multiprocessing.connection import Connection
from multiprocessing.context import BaseContext
from typing import Any

from autograder.errors import AutograderError


class WorkerDied(AutograderError):
    """The worker process grading this job died (killed, out of memory); the job may be retried."""


def _worker_main(conn: Connection, initializer: Callable[..., None] | None, initargs: tuple[Any, ...]) -> None:
    if initializer is not None:
        initializer(*initargs)
    while True:
        try:
            item = conn.recv()
        except EOFError:
            return
        if item is None:
            return
        fn, args, kwargs = item
        try:
            conn.send((True, fn(*args, **kwargs)))
        except BaseException as exc:  # reported to the coordinator as text, never raised here
            conn.send((False, f"{type(exc).__name__}: {exc}"))


_SPAWNING = threading.Lock()


class _main_script_hidden:
    """While a worker starts: the ``__main__`` script's path hidden from multiprocessing, which would otherwise
    run the whole script again in every worker (for `mlph`, importing the CLI, the gradebook and SQLAlchemy:
    ~0.4 CPU-seconds per worker). The workers need nothing of it: their function and initializer live in
    importable modules. A main module run by name (``python -m``) is left alone."""

    def __enter__(self) -> None:
        main = sys.modules.get("__main__")
        self.saved = None
        if main is not None and getattr(main, "__spec__", None) is None and "__file__" in vars(main):
            self.main, self.saved = main, vars(main).pop("__file__")

    def __exit__(self, *exc: object) -> None:
        if self.saved is not None:
            self.main.__file__ = self.saved


class IsolatingPool(Executor):
    def __init__(self, workers: int, ctx: BaseContext, initializer: Callable[..., None] | None = None,
                 initargs: tuple[Any, ...] = ()) -> None:
        self._ctx, self._init, self._initargs = ctx, initializer, initargs
        self._jobs: queue.Queue[tuple[Future[Any], Callable[..., Any], tuple[Any, ...], dict[str, Any]] | None] = \
            queue.Queue()
        self._slots = [threading.Thread(target=self._slot, daemon=True, name=f"pool-slot-{i}") for i in range(workers)]
        self._shutdown = False
        for slot in self._slots:
            slot.start()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        if self._shutdown:
            raise RuntimeError("the pool is shut down")
        fut: Future[Any] = Future()
        self._jobs.put((fut, fn, args, kwargs))
        return fut

    def _spawn(self) -> tuple[Any, Connection]:
        parent, child = self._ctx.Pipe()  # type: ignore[attr-defined]
        proc = self._ctx.Process(target=_worker_main, args=(child, self._init, self._initargs))  # type: ignore[attr-defined]
        with _SPAWNING, _main_script_hidden():
            proc.start()
        child.close()
        return proc, parent

    def _slot(self) -> None:
        proc, conn = self._spawn()  # started at once: its first kernel warms up before any job
        while True:
            item = self._jobs.get()
            if item is None:
                break
            fut, fn, args, kwargs = item
            if not fut.set_running_or_notify_cancel():
                continue
            if proc is None or not proc.is_alive():
                proc, conn = self._spawn()
            try:
                conn.send((fn, args, kwargs))
                ok, value = conn.recv()
            except (EOFError, OSError):
                proc.join(5)
                fut.set_exception(WorkerDied(f"the worker process grading this job died (exit code {proc.exitcode})"))
                conn.close()
                proc = None
                continue
            if ok:
                fut.set_result(value)
            else:
                fut.set_exception(AutograderError(value))
        if proc is not None:
            try:
                conn.send(None)
            except OSError:
                pass
            proc.join(30)
            if proc.is_alive():
                proc.kill()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._shutdown = True
        if cancel_futures:
            while True:
                try:
                    item = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if item is not None:
                    item[0].cancel()
        for _ in self._slots:
            self._jobs.put(None)
        if wait:
            for slot in self._slots:
                slot.join()
