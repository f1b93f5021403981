"""Benchmark: what one sandboxed kernel costs the grader, whatever its cells do (as root, with the zygote).

Two figures, each the CPU-seconds of a cpuacct cgroup holding this process and everything it starts (the
sandbox's chain, bubblewrap, the placeholder, the zygote and its kernels), divided by N, after one warm-up:

* entry: a sandbox (directories, cgroups) and its chain up to the zygote's placeholder running and found, then
  killed and removed: what :meth:`autograder.sandbox.bwrap.Sandbox.start` and the placeholder cost;
* kernel: a whole kernel as a worker takes it: the sandbox, the zygote's fork into it, the executor's set-up with
  numpy preloaded and one cell, then closed.

Compare two versions back to back, alternating, on the same machine load (A/B), e.g. with ``PYTHONPATH`` set to
each worktree in turn and the same venv.

    .venv/bin/python benchmarks/kernel_start.py [-n 60] [--rounds 3]
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from autograder.limits import MiB, Limits
from autograder.sandbox import zygote
from autograder.sandbox.bwrap import SINGLE_THREADED, Sandbox, working_bwrap
from autograder.sandbox.kernels import Kernel

CPUACCT = Path("/sys/fs/cgroup/cpuacct")
LIMITS = Limits(cell_timeout=10, notebook_timeout=60, interrupt_grace=2, memory_bytes=1024 * MiB, max_processes=48,
                file_bytes=8 * MiB, tmp_bytes=64 * MiB)


def entry() -> None:
    box = Sandbox(LIMITS, working_bwrap())
    feed, feed_w = os.pipe()
    ready, said = os.pipe()
    os.write(feed_w, b"\n")
    proc = box.start(zygote.HOLDER, (), stdin=feed, stdout=said, stderr=subprocess.DEVNULL, cwd=str(box.root),
                     env={**os.environ, **SINGLE_THREADED}, start_new_session=True)
    os.close(feed)
    os.close(said)
    try:
        zygote.find_holder(proc.pid, ready=ready)
    finally:
        os.close(ready)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        os.close(feed_w)
        box.close()


def kernel() -> None:
    k = Kernel(LIMITS, sandboxed=True, preload=("numpy",))
    try:
        k.prepare({}, ("numpy",))
    finally:
        k.close()


def per_run(what: Callable[[], None], n: int, usage: Callable[[], float]) -> tuple[float, float]:
    """CPU and wall milliseconds per call of ``what``, over ``n`` calls."""
    c0, t0 = usage(), time.perf_counter()
    for _ in range(n):
        what()
    return 1000 * (usage() - c0) / n, 1000 * (time.perf_counter() - t0) / n


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=60, help="kernels (and entries) per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if os.geteuid() != 0 or not CPUACCT.is_dir():
        sys.exit("needs root and a cpuacct cgroup hierarchy (the zygote, the cgroups and the CPU figures)")
    group = CPUACCT / f"mlph-kernel-bench-{uuid.uuid4().hex[:8]}"
    group.mkdir()
    (group / "cgroup.procs").write_text(str(os.getpid()))
    usage = lambda: int((group / "cpuacct.usage").read_text()) / 1e9  # noqa: E731
    try:
        entry()
        kernel()  # the zygote started and numpy preloaded: outside the count
        for r in range(1, args.rounds + 1):
            load = os.getloadavg()[0]
            for name, what in (("entry", entry), ("kernel", kernel)):
                cpu, wall = per_run(what, args.n, usage)
                print(f"round {r} (load {load:.1f}) {name:6s}: {cpu:6.2f} ms CPU, {wall:6.1f} ms wall each, n={args.n}")
    finally:
        zygote.close_zygote()
        (CPUACCT / "cgroup.procs").write_text(str(os.getpid()))
        group.rmdir()


if __name__ == "__main__":
    main()
