"""Execute one assembled notebook in a kernel, cell by cell, under time and output limits.

Runs in a worker. Input and output are plain JSON-able data; the caller scores the result.
A cell that times out is interrupted and costs only itself when the kernel answers the
interrupt; a kernel that dies or stops answering ends the run, and the cells not run yet are
reported as such.
"""
from __future__ import annotations

import copy
import json
import queue
import time
from typing import Any

import nbformat
from jupyter_core.utils import run_sync
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError
from nbformat import NotebookNode

from autograder.sandbox.kernels import Kernel, take_kernel
from autograder.limits import Limits

TRUNCATED = "\n[output truncated: {what} more than {limit} bytes of output]\n"


def content_size(obj: Any, depth: int = 0) -> int:
    """Bytes a message's content adds to the notebook (strings' lengths; a cheap, safe upper estimate)."""
    if isinstance(obj, str):
        return len(obj)
    if depth > 20:
        return 1 << 30  # absurdly nested: over any limit
    if isinstance(obj, dict):
        return sum(len(str(k)) + content_size(v, depth + 1) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return sum(content_size(v, depth + 1) for v in obj) + len(obj)
    return 8


class LimitedClient(NotebookClient):
    """nbclient's client, keeping at most ``output_bytes`` of output per cell and ``notebook_bytes`` per notebook.

    Every way output enters the notebook is counted as it arrives, cumulatively (clearing does not give
    bytes back): streams, display data, execute results and errors (:meth:`output`), and display updates
    (:meth:`_update_display_id`), which rewrite every earlier output with the same display id and so count
    once per output they rewrite. Widget (comm) messages are ignored: no output capture by widgets."""

    def __init__(self, nb: NotebookNode, output_bytes: int, notebook_bytes: int, **kw: Any):
        super().__init__(nb, **kw)
        self.output_bytes = output_bytes
        self.notebook_bytes = notebook_bytes
        self._used: dict[int, int] = {}
        self._total = 0
        self._noted: set[int] = set()
        self.timed_out = False
        self.current_cell = 0

    async def _async_handle_timeout(self, timeout: int, cell: NotebookNode | None = None) -> None | dict[str, Any]:
        self.timed_out = True
        return await super()._async_handle_timeout(timeout, cell)

    def _admit(self, size: int, cell_index: int, outs: list[NotebookNode] | None) -> bool:
        """Count ``size`` bytes for the cell; False (and a note in the cell, once) when a limit is exceeded."""
        used = self._used.get(cell_index, 0)
        self._used[cell_index] = used + size  # a cell's budget counts everything it tried to print
        if used + size <= self.output_bytes and self._total + size <= self.notebook_bytes:
            self._total += size  # the notebook's counts only what was kept
            return True
        if outs is not None and cell_index not in self._noted:
            self._noted.add(cell_index)
            what, limit = (("this cell printed", self.output_bytes) if used + size > self.output_bytes
                           else ("the notebook printed", self.notebook_bytes))
            outs.append(nbformat.v4.new_output("stream", name="stderr", text=TRUNCATED.format(what=what, limit=limit)))
        return False

    def output(self, outs: list[NotebookNode], msg: dict[str, Any], display_id: str | None,
               cell_index: int) -> NotebookNode | None:
        if self._admit(content_size(msg.get("content", {})), cell_index, outs):
            return super().output(outs, msg, display_id, cell_index)
        return None

    def _update_display_id(self, display_id: str, msg: dict[str, Any]) -> None:
        targets = sum(len(ix) for ix in self._display_id_map.get(display_id, {}).values())
        if not targets:
            return
        outs = self.nb.cells[self.current_cell].get("outputs") if self.current_cell < len(self.nb.cells) else None
        if self._admit(content_size(msg.get("content", {})) * targets, self.current_cell, outs):
            super()._update_display_id(display_id, msg)

    def handle_comm_msg(self, outs: list[NotebookNode], msg: dict[str, Any], cell_index: int) -> None:
        return None


def _responsive(client: NotebookClient, grace: float) -> bool:
    """True if the kernel answers a kernel_info request within ``grace`` seconds (it is idle)."""
    kc: Any = client.kc  # nbclient's client is a jupyter_client AsyncKernelClient
    msg_id = kc.kernel_info()
    deadline = time.monotonic() + grace
    while (left := deadline - time.monotonic()) > 0:
        try:
            reply = run_sync(kc.get_shell_msg)(timeout=left)
        except queue.Empty:
            return False
        if reply.get("parent_header", {}).get("msg_id") == msg_id:
            return True
    return False


def _restart_and_replay(client: NotebookClient, kernel: Kernel, nb: NotebookNode, upto: int, states: list[str],
                        files: dict[str, str], limits: Limits) -> None:
    """A kernel stuck in a cell that ignores interrupts: restart it (a new sandbox instance), reinstall
    the files and rerun the cells before ``upto`` that ran (outputs discarded), so the cells after it
    can still be graded."""
    kc: Any = client.kc  # nbclient's client is a jupyter_client AsyncKernelClient
    kernel.restart()
    run_sync(kc.wait_for_ready)(timeout=limits.startup_timeout)
    kernel.prepare(kc, files, limits.startup_timeout)
    for j in range(upto):
        if states[j] in ("ok", "error"):
            client.execute_cell(copy.deepcopy(nb.cells[j]), j)


def _run_cells(client: "LimitedClient", kernel: Kernel, nb: NotebookNode, files: dict[str, str], limits: Limits,
               states: list[str], cell_seconds: list[float], events: list[dict[str, Any]]) -> tuple[str, str]:
    """Run every code cell; ``events`` gets what happened to the run (by cell index), for the feedback."""
    started = time.monotonic()
    notes = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            states[index] = "skipped"
            continue
        remaining = limits.notebook_timeout - (time.monotonic() - started)
        if remaining <= 0:
            events.append({"cell": index, "kind": "notebook_timeout", "seconds": limits.notebook_timeout})
            return "timeout", f"the notebook exceeded its {limits.notebook_timeout:g} s limit at cell {index}"
        client.timeout = int(max(1, min(limits.cell_timeout, remaining)))
        client.timed_out = False
        client.current_cell = index
        t_cell = time.monotonic()
        try:
            client.execute_cell(cell, index)
        except DeadKernelError:
            states[index] = "crashed"
            events.append({"cell": index, "kind": "crashed"})
            return "crashed", f"the kernel died while running cell {index}"
        finally:
            cell_seconds[index] = time.monotonic() - t_cell
        if not client.timed_out:
            states[index] = "error" if any(o.get("output_type") == "error" for o in cell.outputs) else "ok"
            continue
        states[index] = "timeout"
        notes.append(f"cell {index} ran past {client.timeout} s")
        event: dict[str, Any] = {"cell": index, "kind": "timeout", "seconds": client.timeout}
        if not _responsive(client, limits.interrupt_grace):
            notes[-1] += " and ignored the interrupt; the kernel was restarted"
            event["restarted"] = "ignored the interrupt"
            _restart_and_replay(client, kernel, nb, index, states, files, limits)
        elif kernel.has_strays():
            notes[-1] += " and left processes running; the kernel was restarted"
            event["restarted"] = "left processes running"
            _restart_and_replay(client, kernel, nb, index, states, files, limits)
        events.append(event)
    return "ok", "; ".join(notes)


def execute_notebook(nb_json: dict[str, Any], limits: Limits, files: dict[str, str] | None = None, *,
                     sandboxed: bool = True, prestarted: bool = False, preload: tuple[str, ...] = (),
                     spare: bool = True) -> dict[str, Any]:
    """Execute ``nb_json`` in a fresh kernel (sandboxed unless told otherwise), with ``files`` in its
    working directory; a JSON-able report. ``prestarted`` takes a kernel started ahead of need,
    ``preload`` are modules the kernel imports before it is ready (the sheet's imports)."""
    nb = nbformat.reads(json.dumps(nb_json), as_version=4)  # also joins sources split into lines
    files = files or {}
    states = ["not_run"] * len(nb.cells)
    cell_seconds = [0.0] * len(nb.cells)  # wall time of each code cell (0 for cells not run)
    events: list[dict[str, Any]] = []
    t0 = time.monotonic()
    kernel = take_kernel(limits, sandboxed, preload, spare) if prestarted else Kernel(limits, sandboxed, preload)
    client = LimitedClient(
        nb, limits.output_bytes, limits.notebook_output_bytes, km=kernel.km, timeout=int(limits.cell_timeout), allow_errors=True,
        interrupt_on_timeout=True, iopub_timeout=int(max(10, limits.interrupt_grace)), startup_timeout=int(limits.startup_timeout),
        error_on_timeout={"ename": "CellTimeoutError", "evalue": "the cell ran past its time limit", "traceback": []},
        resources={"metadata": {"path": kernel.workdir}}, shutdown_kernel="immediate",
    )
    timings: dict[str, float] = {}
    status, reason = "ok", ""
    try:
        with client.setup_kernel(cleanup_kc=True):
            kernel.prepare(client.kc, files, limits.startup_timeout)
            timings["kernel_start"] = time.monotonic() - t0
            t1 = time.monotonic()
            status, reason = _run_cells(client, kernel, nb, files, limits, states, cell_seconds, events)
            timings["cells"] = time.monotonic() - t1
    except DeadKernelError as exc:
        status, reason = "crashed", f"the kernel died: {exc}"
    except RuntimeError as exc:  # kernel failed to start or to answer
        log = kernel.startup_log() if "kernel_start" not in timings else ""
        status, reason = "crashed", f"the kernel failed: {exc}" + (f" ({log})" if log else "")
    finally:
        kernel.close()
    timings["total"] = time.monotonic() - t0
    return {"status": status, "reason": reason, "states": states, "timings": timings, "cell_seconds": cell_seconds,
            "events": events, "notebook": nb}
