"""Execute one assembled notebook in a kernel, cell by cell, under time and output limits.

Runs in a worker. Input and output are plain JSON-able data; the caller scores the result.
The kernel is the sandboxed executor (:mod:`autograder.sandbox.executor`): one request and one reply
per cell over a socket. Everything in a reply is untrusted: only known output types with fields of the
right types are kept, and every output counts against the cell's and the notebook's output limits
again here (the executor's own bounds only spare us the reading). A cell that times out is
interrupted and costs only itself when the kernel answers the interrupt; a kernel that ignores it, or
leaves processes behind, is restarted and the cells before replayed; a kernel that dies ends the run,
and the cells not run yet are reported as such.
"""
from __future__ import annotations

import json
import time
from typing import Any

from autograder.limits import Limits
from autograder.sandbox.kernels import Kernel, KernelDied, retire, take_kernel

class Node(dict[str, Any]):
    """A part of a notebook with attribute access, as nbformat's ``NotebookNode`` (nbformat is not imported here:
    a worker needs nothing else of it, and its import cost every worker start 0.3 CPU-seconds)."""

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None

    def __setattr__(self, key: str, value: Any) -> None:
        self[key] = value


def node(obj: Any) -> Any:
    """Plain JSON data as :class:`Node` s (as ``nbformat.from_dict``)."""
    if isinstance(obj, dict):
        return Node({k: node(v) for k, v in obj.items()})
    if isinstance(obj, list):
        return [node(v) for v in obj]
    return obj


TRUNCATED = "\n[output truncated: {what} more than {limit} bytes of output]\n"
MAX_ERROR_TEXT = 2000  # characters of an error's name and value kept whatever the output limits
MAX_TRACEBACK = 100  # entries of a traceback kept (nbgrader's LimitOutput keeps 100 lines)


def content_size(obj: Any, depth: int = 0) -> int:
    """Bytes an output adds to the notebook (strings' lengths; a cheap, safe upper estimate)."""
    if isinstance(obj, str):
        return len(obj)
    if depth > 20:
        return 1 << 30  # absurdly nested: over any limit
    if isinstance(obj, dict):
        return sum(len(str(k)) + content_size(v, depth + 1) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return sum(content_size(v, depth + 1) for v in obj) + len(obj)
    return 8


def _text(value: Any, limit: int) -> str:
    return value[:limit] if isinstance(value, str) else ""


def _clean(out: Any) -> dict[str, Any] | None:
    """An output of the kernel's reply in nbformat's form, or None if it is not one we keep."""
    if not isinstance(out, dict):
        return None
    kind = out.get("output_type")
    if kind == "stream" and out.get("name") in ("stdout", "stderr") and isinstance(out.get("text"), str):
        return {"output_type": "stream", "name": out["name"], "text": out["text"]}
    if kind == "error":
        trace = out.get("traceback")
        lines = [_text(t, MAX_ERROR_TEXT) for t in trace[-MAX_TRACEBACK:]] if isinstance(trace, list) else []
        return {"output_type": "error", "ename": _text(out.get("ename"), MAX_ERROR_TEXT) or "Error",
                "evalue": _text(out.get("evalue"), MAX_ERROR_TEXT), "traceback": lines}
    if kind in ("display_data", "execute_result", "update_display_data") and isinstance(out.get("data"), dict):
        data = {k: v for k, v in out["data"].items() if isinstance(k, str)}
        meta = out.get("metadata") if isinstance(out.get("metadata"), dict) else {}
        clean: dict[str, Any] = {"output_type": kind, "data": data, "metadata": meta}
        if kind == "execute_result":
            count = out.get("execution_count")
            clean["execution_count"] = count if isinstance(count, int) and not isinstance(count, bool) else None
        transient = out.get("transient")
        if isinstance(transient, dict) and isinstance(transient.get("display_id"), str):
            clean["display_id"] = transient["display_id"][:200]
        return clean
    return None


class OutputBook:
    """The notebook's outputs as they arrive, at most ``output_bytes`` per cell and ``notebook_bytes`` in all.

    Every output counts once as it arrives, cumulatively: streams, display data, results, errors, and display
    updates, which rewrite every earlier output with the same display id and so count once per output they
    rewrite. An error is always kept (its name, value and the end of its traceback, bounded): a cell that
    raised must look like one however much it printed before."""

    def __init__(self, nb: Node, output_bytes: int, notebook_bytes: int) -> None:
        self.nb, self.output_bytes, self.notebook_bytes = nb, output_bytes, notebook_bytes
        self._used: dict[int, int] = {}
        self._total = 0
        self._noted: set[int] = set()
        self._displays: dict[str, list[Node]] = {}

    def _admit(self, size: int, index: int, outs: list[Node]) -> bool:
        used = self._used.get(index, 0)
        self._used[index] = used + size  # a cell's budget counts everything it tried to print
        if used + size <= self.output_bytes and self._total + size <= self.notebook_bytes:
            self._total += size  # the notebook's counts only what was kept
            return True
        if index not in self._noted:
            self._noted.add(index)
            what, limit = (("this cell printed", self.output_bytes) if used + size > self.output_bytes
                           else ("the notebook printed", self.notebook_bytes))
            outs.append(Node(output_type="stream", name="stderr", text=TRUNCATED.format(what=what, limit=limit)))
        return False

    def fill(self, index: int, reply: dict[str, Any]) -> None:
        """The cell's outputs from the kernel's reply (checked and bounded)."""
        cell = self.nb.cells[index]
        outs: list[Node] = []
        raw = reply.get("outputs")
        for out in (_clean(o) for o in (raw if isinstance(raw, list) else [])):
            if out is None:
                continue
            if out["output_type"] == "error":
                outs.append(node(out))
                continue
            if out["output_type"] == "update_display_data":
                self._update(index, outs, out)
                continue
            if not self._admit(content_size(out), index, outs):
                continue
            display_id = out.pop("display_id", None)
            if (out["output_type"] == "stream" and outs and outs[-1].get("output_type") == "stream"
                    and outs[-1].get("name") == out["name"]):
                outs[-1]["text"] += out["text"]  # as nbclient merges a stream's consecutive parts
                continue
            kept = node(out)
            if display_id:
                self._displays.setdefault(display_id, []).append(kept)
            outs.append(kept)
        if reply.get("status") == "error" and not any(o.get("output_type") == "error" for o in outs):
            outs.append(Node(output_type="error", ename="Error", evalue="the cell failed", traceback=[]))
        cell.outputs = outs
        count = reply.get("count")
        cell.execution_count = count if isinstance(count, int) and not isinstance(count, bool) else None

    def _update(self, index: int, outs: list[Node], out: dict[str, Any]) -> None:
        targets = self._displays.get(out.get("display_id") or "", [])
        if targets and self._admit(content_size(out) * len(targets), index, outs):
            for node in targets:
                node["data"], node["metadata"] = out["data"], out["metadata"]


def _restart_and_replay(kernel: Kernel, nb: Node, upto: int, states: list[str], files: dict[str, str],
                        limits: Limits) -> None:
    """A kernel stuck in a cell that ignores interrupts (or that left processes behind): a new kernel in a new
    sandbox instance, the files installed again and the cells before ``upto`` that ran rerun (outputs
    discarded), so the cells after it can still be graded."""
    kernel.restart()
    kernel.prepare(files)
    for j in range(upto):
        if states[j] in ("ok", "error"):
            if kernel.request({"op": "run", "code": nb.cells[j].source}, limits.cell_timeout) is None:
                raise KernelDied(f"the restarted kernel did not finish cell {j} again")


def _run_cells(kernel: Kernel, nb: Node, files: dict[str, str], limits: Limits, states: list[str],
               cell_seconds: list[float], events: list[dict[str, Any]]) -> tuple[str, str]:
    """Run every code cell; ``events`` gets what happened to the run (by cell index), for the feedback."""
    book = OutputBook(nb, limits.output_bytes, limits.notebook_output_bytes)
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
        timeout = int(max(1, min(limits.cell_timeout, remaining)))
        t_cell = time.monotonic()
        try:
            token = kernel.send({"op": "run", "code": cell.source})
            reply = kernel.reply(token, timeout)
            if reply is None:
                kernel.interrupt(token)
                late = kernel.reply(token, limits.interrupt_grace)
        except KernelDied:
            states[index] = "crashed"
            events.append({"cell": index, "kind": "crashed"})
            return "crashed", f"the kernel died while running cell {index}"
        finally:
            cell_seconds[index] = time.monotonic() - t_cell
        if reply is not None:
            book.fill(index, reply)
            states[index] = "error" if any(o.get("output_type") == "error" for o in cell.outputs) else "ok"
            continue
        states[index] = "timeout"
        notes.append(f"cell {index} ran past {timeout} s")
        event: dict[str, Any] = {"cell": index, "kind": "timeout", "seconds": timeout}
        if late is not None:
            book.fill(index, late)
        if late is None:
            notes[-1] += " and ignored the interrupt; the kernel was restarted"
            event["restarted"] = "ignored the interrupt"
            _restart_and_replay(kernel, nb, index, states, files, limits)
        elif kernel.has_strays():
            notes[-1] += " and left processes running; the kernel was restarted"
            event["restarted"] = "left processes running"
            _restart_and_replay(kernel, nb, index, states, files, limits)
        events.append(event)
    return "ok", "; ".join(notes)


def execute_notebook(nb_json: dict[str, Any], limits: Limits, files: dict[str, str] | None = None, *,
                     sandboxed: bool = True, prestarted: bool = False, preload: tuple[str, ...] = (),
                     spare: bool = True) -> dict[str, Any]:
    """Execute ``nb_json`` in a fresh kernel (sandboxed unless told otherwise), with ``files`` in its
    working directory; a JSON-able report. ``prestarted`` takes a kernel started ahead of need,
    ``preload`` are modules the kernel imports before it is ready (the sheet's imports)."""
    nb = node(nb_json)
    for cell in nb.cells:  # sources split into lines (as stored on disk) joined, as nbformat.reads does
        if isinstance(cell.get("source"), list):
            cell.source = "".join(cell.source)
    files = files or {}
    states = ["not_run"] * len(nb.cells)
    cell_seconds = [0.0] * len(nb.cells)  # wall time of each code cell (0 for cells not run)
    events: list[dict[str, Any]] = []
    t0 = time.monotonic()
    timings: dict[str, float] = {}
    status, reason = "ok", ""
    kernel: Kernel | None = None
    try:
        kernel = take_kernel(limits, sandboxed, preload, spare) if prestarted else Kernel(limits, sandboxed, preload)
        kernel.prepare(files, preload)
        timings["kernel_start"] = time.monotonic() - t0
        t1 = time.monotonic()
        status, reason = _run_cells(kernel, nb, files, limits, states, cell_seconds, events)
        timings["cells"] = time.monotonic() - t1
    except KernelDied as exc:
        log = kernel.startup_log() if kernel is not None and "kernel_start" not in timings else ""
        status, reason = "crashed", f"the kernel failed: {exc}" + (f" ({log})" if log else "")
    finally:
        if kernel is not None and prestarted:
            retire(kernel)  # closed while the worker starts on its next job
        elif kernel is not None:
            kernel.close()
    timings["total"] = time.monotonic() - t0
    return {"status": status, "reason": reason, "states": states, "timings": timings, "cell_seconds": cell_seconds,
            "events": events, "notebook": nb}
