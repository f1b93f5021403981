"""The in-sandbox executor: an IPython shell that runs cells sent over one socket, nothing else.

This file runs *inside* the sandbox, as the student's process: it imports only the standard library and
IPython, nothing of the grader (it is run as ``python -c <this file's text> <fd>``, or loaded by the
zygote, which forks it into the sandbox). Everything it sends is untrusted by the grader, which
re-checks every size and every field (:mod:`autograder.grading.execute`); the bounds here only spare
the grader from reading what it would drop anyway.

Protocol: frames of a 4-byte big-endian length and a JSON object, on the socket ``fd``.

* grader → executor: ``{"op": "setup", "token", "files": {name: text}, "preload": [modules]}`` (the
  submission's files into the working directory, the sheet's imports into ``sys.modules``, no name
  left behind), ``{"op": "run", "token", "code"}`` (one cell), ``{"op": "interrupt", "token"}`` (a
  SIGINT to the cell running under that token, delivered by the reader thread).
* executor → grader: one reply per request, ``{"token", "status": "ok"|"error", "outputs": [...],
  "count": execution count}``, the outputs in nbformat's form (streams merged as nbclient merges them).

Each request carries a fresh random token that the reply must echo: the student's code cannot prepare
a reply to a request that was not sent yet. Tracebacks are IPython's Plain mode (no source context,
no colours: a failing cell costs a millisecond, not forty).
"""
from __future__ import annotations

import base64
import io
import json
import os
import queue
import signal
import socket
import struct
import sys
import threading
from typing import Any

HEADER = struct.Struct(">I")
MAX_REQUEST = 256 * 1024 * 1024
MAX_ERROR_TEXT, MAX_TRACEBACK = 2000, 100  # as the grader keeps them (autograder.grading.execute)
TRUNCATED = "\n[output truncated: {what} more than {limit} bytes of output]\n"


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (bytes, bytearray)):
        return base64.b64encode(bytes(obj)).decode("ascii")
    return repr(obj)[:1000]


def encode(obj: dict[str, Any]) -> bytes:
    body = json.dumps(obj, default=_json_default, ensure_ascii=False).encode("utf-8", "replace")
    return HEADER.pack(len(body)) + body


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    chunks, got = [], 0
    while got < n:
        chunk = sock.recv(min(n - got, 1 << 20))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


class Collector:
    """The outputs of the cell being run, bounded per cell and per notebook (cumulatively, as the grader counts)."""

    def __init__(self, cell_bytes: int, notebook_bytes: int) -> None:
        self.cell_bytes, self.notebook_bytes = cell_bytes, notebook_bytes
        self.total = 0
        self.reset()

    def reset(self) -> None:
        self.outputs: list[dict[str, Any]] = []
        self.used = 0
        self.noted = False
        self.clear_pending = False

    def _admit(self, size: int) -> bool:
        self.used += size
        if self.used <= self.cell_bytes and self.total + size <= self.notebook_bytes:
            self.total += size
            return True
        if not self.noted:
            self.noted = True
            what, limit = (("this cell printed", self.cell_bytes) if self.used > self.cell_bytes
                           else ("the notebook printed", self.notebook_bytes))
            self._append({"output_type": "stream", "name": "stderr", "text": TRUNCATED.format(what=what, limit=limit)})
        return False

    def _append(self, out: dict[str, Any]) -> None:
        if self.clear_pending:
            self.outputs, self.clear_pending = [], False
        last = self.outputs[-1] if self.outputs else None
        if (out["output_type"] == "stream" and last is not None and last["output_type"] == "stream"
                and last["name"] == out["name"]):
            last["text"] += out["text"]
        else:
            self.outputs.append(out)

    def stream(self, name: str, text: str) -> None:
        if text and self._admit(len(text)):
            self._append({"output_type": "stream", "name": name, "text": text})

    def add(self, out: dict[str, Any]) -> None:
        try:
            size = len(json.dumps(out, default=_json_default))
        except (TypeError, ValueError, RecursionError):
            return
        if self._admit(size):
            self._append(out)

    def error(self, ename: str, evalue: str, traceback: list[str]) -> None:
        """An error is always kept, bounded (a cell that raised must look like one however much it printed)."""
        self._append({"output_type": "error", "ename": ename[:MAX_ERROR_TEXT], "evalue": evalue[:MAX_ERROR_TEXT],
                      "traceback": [line[:MAX_ERROR_TEXT] for line in traceback[-MAX_TRACEBACK:]]})

    def clear(self, wait: bool) -> None:
        if wait:
            self.clear_pending = True
        else:
            self.outputs, self.clear_pending = [], False


class Stream:
    """sys.stdout / sys.stderr of the executor: text into the collector."""

    encoding = "utf-8"
    errors = "replace"

    def __init__(self, name: str, collector: Collector) -> None:
        self.name, self._collector = name, collector

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        self._collector.stream(self.name, text)
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        raise io.UnsupportedOperation("the cell's output is captured: it has no file descriptor")

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False


WARM_UP = ("pass", "1", "1 / 0", "def _mlph_f():\n    raise ValueError('x')\n_mlph_f()", "del _mlph_f", "1 +", "print('')",
           "from IPython.display import display as _mlph_d\n_mlph_d({'text/plain': ''}, raw=True)\ndel _mlph_d")


def _may_transform(lines: list[str]) -> bool:
    """Whether one of IPython's token transformations could apply (conservatively: any ``%``, ``!`` or ``?``
    anywhere, any line starting with an autocall escape)."""
    text = "".join(lines)
    return "%" in text or "!" in text or "?" in text or any(line.lstrip()[:1] in (",", ";", "/") for line in lines)


def make_shell(ipython_dir: str | None = None, cell_bytes: int = 1 << 40, notebook_bytes: int = 1 << 40) -> Any:
    """The IPython shell that runs the cells (made once, in the zygote before it forks, or at start)."""
    from IPython.core.displayhook import DisplayHook
    from IPython.core.displaypub import DisplayPublisher
    from IPython.core.inputtransformer2 import TransformerManager
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    collector = Collector(cell_bytes, notebook_bytes)

    class Hook(DisplayHook):
        def start_displayhook(self) -> None:
            self._msg: dict[str, Any] = {"output_type": "execute_result", "data": {}, "metadata": {},
                                         "execution_count": self.prompt_count}

        def write_output_prompt(self) -> None:
            pass

        def write_format_data(self, format_dict: dict[str, Any], md_dict: Any = None) -> None:
            self._msg["data"], self._msg["metadata"] = format_dict, md_dict or {}

        def finish_displayhook(self) -> None:
            collector.add(self._msg)

    class Publisher(DisplayPublisher):
        def publish(self, data: Any, metadata: Any = None, source: Any = None, *, transient: Any = None,
                    update: bool = False, **kwargs: Any) -> None:
            out = {"output_type": "update_display_data" if update else "display_data", "data": data,
                   "metadata": metadata or {}}
            if transient:
                out["transient"] = transient
            collector.add(out)

        def clear_output(self, wait: bool = False) -> None:
            collector.clear(wait)

    class Transformer(TransformerManager):
        """IPython's input transformations, without tokenizing a cell none of whose token transformations
        (magics ``%``, shell ``!``, help ``?``, the autocall escapes ``, ; /`` at a line's start) can apply:
        the same text, for a tenth of a cell's cost (most cells of a sheet use none of them)."""

        def __init__(self) -> None:
            super().__init__()
            self.default_tokens = list(self.token_transformers)

        def do_token_transforms(self, lines: list[str]) -> list[str]:
            if self.token_transformers == self.default_tokens and not _may_transform(lines):
                return lines
            result: list[str] = super().do_token_transforms(lines)
            return result

    class Shell(InteractiveShell):
        collector: Collector  # the outputs of the cell being run

        def should_run_async(self, raw_cell: str, *, transformed_cell: str | None = None,
                             preprocessing_exc_tuple: Any = None) -> bool:
            if transformed_cell is not None and "await" not in transformed_cell and "async" not in transformed_cell:
                return False  # no top-level await possible: IPython would compile the cell once more to find that
            result: bool = super().should_run_async(raw_cell, transformed_cell=transformed_cell,
                                                    preprocessing_exc_tuple=preprocessing_exc_tuple)
            return result

        def _showtraceback(self, etype: Any, evalue: Any, stb: list[str]) -> None:
            try:
                value = str(evalue)
            except Exception:  # an exception whose __str__ fails is still an error
                value = "<unprintable>"
            collector.error(str(getattr(etype, "__name__", "Error")), value, [str(s) for s in stb])

        def init_virtualenv(self) -> None:
            pass

    cfg = Config()
    cfg.HistoryManager.enabled = False
    shell = Shell.instance(config=cfg, ipython_dir=ipython_dir, xmode="Plain", colors="nocolor", displayhook_class=Hook,
                  display_pub_class=Publisher)
    shell.collector = collector
    shell.input_transformer_manager = Transformer()
    warm_up(shell, WARM_UP)
    return shell


def warm_up(shell: Any, cells: tuple[str, ...]) -> None:
    """Run ``cells`` (what a first cell, a first result and a first traceback import lazily) and forget them:
    the namespace, the execution count and the outputs are as before."""
    saved, count = dict(shell.user_ns), shell.execution_count
    for code in cells:
        shell.run_cell(code, store_history=False, silent=False)
    shell.user_ns.clear()
    shell.user_ns.update(saved)
    shell.execution_count = count
    for cache in ("Out", "_oh"):
        if isinstance(shell.user_ns.get(cache), dict):
            shell.user_ns[cache].clear()
    shell.collector.reset()
    shell.collector.total = 0


NUMPY_WARM_UP = ("import numpy as _mlph_np\n_mlph_np.zeros((2, 2))", "_mlph_np.float64(1.5)", "del _mlph_np")


class Executor:
    def __init__(self, sock: socket.socket, shell: Any) -> None:
        self.sock, self.shell = sock, shell
        self.collector: Collector = shell.collector
        self.requests: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.running: str | None = None  # the token of the cell being run
        self.main = threading.get_ident()
        self._send_lock = threading.Lock()

    def send(self, obj: dict[str, Any]) -> None:
        with self._send_lock:
            self.sock.sendall(encode(obj))

    def _reader(self) -> None:
        try:
            while True:
                (size,) = HEADER.unpack(_recv_exact(self.sock, HEADER.size))
                if size > MAX_REQUEST:
                    break
                req = json.loads(_recv_exact(self.sock, size))
                if req.get("op") == "interrupt":
                    if req.get("token") is not None and req.get("token") == self.running:
                        signal.pthread_kill(self.main, signal.SIGINT)
                else:
                    self.requests.put(req)
        except (EOFError, OSError, ValueError):
            pass
        os._exit(0)  # the grader is gone (or spoke nonsense): nothing more to do

    def setup(self, req: dict[str, Any]) -> dict[str, Any]:
        import importlib
        import pathlib

        limits = req.get("limits", {})
        self.collector.cell_bytes = int(limits.get("output_bytes", self.collector.cell_bytes))
        self.collector.notebook_bytes = int(limits.get("notebook_output_bytes", self.collector.notebook_bytes))
        for name, text in req.get("files", {}).items():
            path = pathlib.Path(name)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        for module in req.get("preload", []):
            try:
                importlib.import_module(module)
            except Exception:  # the cell that imports it reports the error
                pass
        return {"status": "ok", "outputs": []}

    def run(self, req: dict[str, Any]) -> dict[str, Any]:
        self.collector.reset()
        shell = self.shell
        count = shell.execution_count
        self.running = req["token"]
        try:
            result = shell.run_cell(req["code"], store_history=True, silent=False)
            ok = result.error_before_exec is None and result.error_in_exec is None
        except KeyboardInterrupt:  # the interrupt arrived in IPython's own code, not the cell's: still an answer
            self.collector.error("KeyboardInterrupt", "", [])
            ok = False
        finally:
            self.running = None
        return {"status": "ok" if ok else "error", "outputs": self.collector.outputs, "count": count}

    def serve(self) -> None:
        sys.stdin = open(os.devnull)
        sys.stdout = Stream("stdout", self.collector)  # type: ignore[assignment]
        sys.stderr = Stream("stderr", self.collector)  # type: ignore[assignment]
        signal.signal(signal.SIGINT, signal.default_int_handler)
        threading.Thread(target=self._reader, daemon=True, name="mlph-reader").start()
        while True:
            try:
                req = self.requests.get()
                if req is None:
                    return
                token = req.get("token")
                reply = self.setup(req) if req.get("op") == "setup" else self.run(req)
                reply["token"] = token
                self.send(reply)
            except KeyboardInterrupt:  # an interrupt that came after its cell had finished
                continue
            except Exception as exc:  # a request the executor could not handle: the grader sees why
                try:
                    self.send({"token": req.get("token") if isinstance(req, dict) else None, "status": "failed",
                               "reason": f"{type(exc).__name__}: {exc}"[:500], "outputs": []})
                except OSError:
                    os._exit(0)


def serve(fd: int, shell: Any = None) -> None:
    """Run requests from socket ``fd`` until the grader closes it (does not return)."""
    if "" not in sys.path:  # the working directory's modules (the student's helpers, the check module)
        sys.path.insert(0, "")
    sock = socket.socket(fileno=fd)
    Executor(sock, shell if shell is not None else make_shell()).serve()
    os._exit(0)


if __name__ == "__main__":
    serve(int(sys.argv[1]))
