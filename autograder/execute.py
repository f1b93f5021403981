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
from pathlib import Path
from typing import Any

import nbformat
from jupyter_core.utils import run_sync
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError
from nbformat import NotebookNode

from .limits import Limits

TRUNCATED = "\n[output truncated: this cell printed more than {limit} bytes]\n"


class LimitedClient(NotebookClient):
    """nbclient's client, keeping at most ``output_bytes`` of output per cell (bytes, not lines)."""

    def __init__(self, nb: NotebookNode, output_bytes: int, **kw: Any):
        super().__init__(nb, **kw)
        self.output_bytes = output_bytes
        self._used: dict[int, int] = {}
        self.timed_out = False

    async def _async_handle_timeout(self, timeout: int, cell: NotebookNode | None = None) -> None | dict[str, Any]:
        self.timed_out = True
        return await super()._async_handle_timeout(timeout, cell)

    def output(self, outs: list[NotebookNode], msg: dict[str, Any], display_id: str | None,
               cell_index: int) -> NotebookNode | None:
        size = len(json.dumps(msg.get("content", {}), default=str))
        used = self._used.get(cell_index, 0)
        self._used[cell_index] = used + size
        if used + size <= self.output_bytes:
            return super().output(outs, msg, display_id, cell_index)
        if used <= self.output_bytes:  # first overflow: leave a note once
            note = nbformat.v4.new_output("stream", name="stderr", text=TRUNCATED.format(limit=self.output_bytes))
            outs.append(note)
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


def _restart_and_replay(client: NotebookClient, nb: NotebookNode, upto: int, states: list[str],
                        limits: Limits) -> None:
    """A kernel stuck in a cell that ignores interrupts: restart it and rerun the cells before
    ``upto`` that ran (outputs discarded), so the cells after it can still be graded."""
    km: Any = client.km  # AsyncKernelManager / AsyncKernelClient: coroutine methods
    kc: Any = client.kc
    run_sync(km.restart_kernel)(now=True)
    run_sync(kc.wait_for_ready)(timeout=limits.startup_timeout)
    for j in range(upto):
        if states[j] in ("ok", "error"):
            client.execute_cell(copy.deepcopy(nb.cells[j]), j)


def _run_cells(client: "LimitedClient", nb: NotebookNode, limits: Limits, states: list[str]) -> tuple[str, str]:
    started = time.monotonic()
    notes = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            states[index] = "skipped"
            continue
        remaining = limits.notebook_timeout - (time.monotonic() - started)
        if remaining <= 0:
            return "timeout", f"the notebook exceeded its {limits.notebook_timeout:g} s limit at cell {index}"
        client.timeout = int(max(1, min(limits.cell_timeout, remaining)))
        client.timed_out = False
        try:
            client.execute_cell(cell, index)
        except DeadKernelError:
            states[index] = "crashed"
            return "crashed", f"the kernel died while running cell {index}"
        if not client.timed_out:
            states[index] = "error" if any(o.get("output_type") == "error" for o in cell.outputs) else "ok"
            continue
        states[index] = "timeout"
        notes.append(f"cell {index} ran past {client.timeout} s")
        if not _responsive(client, limits.interrupt_grace):
            notes[-1] += " and ignored the interrupt; the kernel was restarted"
            _restart_and_replay(client, nb, index, states, limits)
    return "ok", "; ".join(notes)


def execute_notebook(nb_json: dict[str, Any], workdir: str, limits: Limits, kernel_name: str = "python3") -> dict[str, Any]:
    """Execute ``nb_json`` with ``workdir`` as working directory; a JSON-able report."""
    nb = nbformat.from_dict(nb_json)
    states = ["not_run"] * len(nb.cells)
    client = LimitedClient(
        nb, limits.output_bytes, timeout=int(limits.cell_timeout), kernel_name=kernel_name,
        allow_errors=True, interrupt_on_timeout=True, iopub_timeout=int(limits.interrupt_grace),
        error_on_timeout={"ename": "CellTimeoutError", "evalue": "the cell ran past its time limit", "traceback": []}, startup_timeout=int(limits.startup_timeout),
        resources={"metadata": {"path": workdir}}, shutdown_kernel="immediate",
    )
    t0 = time.monotonic()
    timings: dict[str, float] = {}
    status, reason = "ok", ""
    try:
        with client.setup_kernel(cwd=workdir):
            timings["kernel_start"] = time.monotonic() - t0
            t1 = time.monotonic()
            status, reason = _run_cells(client, nb, limits, states)
            timings["cells"] = time.monotonic() - t1
    except DeadKernelError as exc:
        status, reason = "crashed", f"the kernel died: {exc}"
    except RuntimeError as exc:  # kernel failed to start or to answer
        status, reason = "crashed", f"the kernel failed: {exc}"
    timings["total"] = time.monotonic() - t0
    return {"status": status, "reason": reason, "states": states, "timings": timings, "notebook": nb}


def write_workdir(workdir: Path, files: dict[str, str]) -> None:
    """Materialise the submission's supporting files (text) into the execution directory."""
    for name, content in files.items():
        target = (workdir / name).resolve()
        if workdir.resolve() not in target.parents:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")
