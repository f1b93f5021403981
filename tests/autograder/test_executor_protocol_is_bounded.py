"""The grader's side of the executor protocol trusts nothing the sandboxed process sends.

The student's code runs in the same interpreter as the executor, so it can write to the executor's
socket, learn the token of the request being run and forge replies. These tests do exactly that and
check what the grader keeps: only the reply to the request it sent, outputs bounded again by the
grader, errors always kept, and a message over the size limit ends the run instead of being read.
"""
from __future__ import annotations

import json

import nbformat

from autograder.grading.execute import execute_notebook
from autograder.limits import Limits

LIMITS = Limits(cell_timeout=10, notebook_timeout=60, interrupt_grace=2, output_bytes=2000)

# Student code: a frame written straight to the executor's socket (fd 3), with the token of the cell
# being run (found in the executor's memory) or a made-up one.
FORGE = """
import gc, json, os, struct
def _send(msg):
    body = json.dumps(msg).encode()
    os.write(3, struct.pack('>I', len(body)) + body)
def _token():
    for obj in gc.get_objects():
        if type(obj).__name__ == 'Executor' and getattr(obj, 'running', None):
            return obj.running
"""


def run(*sources: str, limits: Limits = LIMITS) -> dict:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    return execute_notebook(json.loads(nbformat.writes(nb)), limits, {}, sandboxed=True)


def texts(run_: dict) -> list[str]:
    return ["".join(o.get("text", "") for o in c.outputs if o.output_type == "stream") for c in run_["notebook"].cells]


def test_a_reply_to_a_request_not_sent_is_dropped():
    out = run(FORGE, "_send({'token': 'f' * 32, 'status': 'ok', 'outputs': ["
                     "{'output_type': 'stream', 'name': 'stdout', 'text': 'forged'}]})\nprint('real')",
              "print('next')")
    assert out["status"] == "ok"
    assert texts(out)[1:] == ["real\n", "next\n"]


def test_a_forged_reply_is_bounded_by_the_grader_and_its_error_kept():
    """A reply with the right token is the cell's reply (the student owns that cell anyway): its outputs
    still get the grader's limits, and unknown output types are dropped."""
    out = run(FORGE, "_send({'token': _token(), 'status': 'error', 'outputs': ["
                     "{'output_type': 'stream', 'name': 'stdout', 'text': 'x' * 100000},"
                     "{'output_type': 'mystery', 'text': 'y'}]})\nimport time; time.sleep(0.5)",
              "print('next')")
    cell = out["notebook"].cells[1]
    kept = sum(len(o.get("text", "")) for o in cell.outputs if o.output_type == "stream" and o.name == "stdout")
    assert kept <= LIMITS.output_bytes
    assert any("output truncated" in o.get("text", "") for o in cell.outputs)
    assert [o.output_type for o in cell.outputs if o.output_type not in ("stream",)] == ["error"]  # status error
    assert out["states"][1] == "error"


def test_an_error_after_too_much_output_still_counts_as_an_error():
    out = run("print('z' * 10000)\nraise ValueError('late')", "print('next')")
    cell = out["notebook"].cells[0]
    assert [o.ename for o in cell.outputs if o.output_type == "error"] == ["ValueError"]
    assert out["states"] == ["error", "ok"]


def test_a_message_over_the_size_limit_ends_the_run_unread():
    out = run(FORGE, "os.write(3, struct.pack('>I', 2**31))\nimport time; time.sleep(5)", "print('never')")
    assert out["status"] == "crashed"
    assert out["states"] == ["ok", "crashed", "not_run"]


def test_a_kernel_starts_clean_and_counts_from_one():
    """Forked from a warmed-up shell: nothing of the warm-up is left in the namespace or the count."""
    out = run("print(sorted(k for k in globals() if not k.startswith('__')))", "1 + 1")
    assert "_mlph" not in texts(out)[0] and "_mlph_np" not in texts(out)[0]
    result = out["notebook"].cells[1].outputs[0]
    assert result.output_type == "execute_result" and result.data["text/plain"] == "2"
    assert [c.execution_count for c in out["notebook"].cells] == [1, 2]
