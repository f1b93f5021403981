"""Benchmark: regrade a whole semester (12 sheets x N students) on local workers and on a Dask cluster.

Builds N (default 300) simulated students' hand-ins of each of the twelve real sheets (solutions, typical
mistakes, stubs, as `benchmarks/autograde.py` builds them), then times `mlph autograde --force` of all
sheets in one run: with local workers (one per core), and on a real Dask cluster on 127.0.0.1 (a
`dask scheduler` and `dask worker` processes, started here, with 1, 2 and 4 worker processes of one thread
each). The solutions' references are computed first, and each configuration grades after a warm-up run of
one sheet (the cluster's workers and kernels started), so that the figures compare the grading itself. Prints the
total time of each, the speed-up of each Dask size over one Dask worker, and that speed-up against the
ideal (linear up to the cores available, flat beyond), and checks that every configuration gives every
submission the same score. For each Dask size it also prints the CPU-seconds per hand-in of the coordinator
(`mlph autograde`), the scheduler, and the workers with their kernels (each in a cpuacct cgroup of its own), and
the cores the run kept busy; from one worker's figure, the CPU-bound ideal: k workers cannot go faster than
all the cores' worth of one worker's run (min(k, cores / cores busy with one worker)), so the two ratios tell a
design that does not scale from a machine that has no idle core left.

    .venv/bin/python benchmarks/semester.py [--students 300] [--sheets sheet01 ...] [--dask 1 2 4] [--no-local]
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SHEETS = [f"sheet{i:02d}" for i in range(1, 13)]


def _autograde_bench():  # type: ignore[no-untyped-def]
    """benchmarks/autograde.py (its builder and timer), loaded by path: this directory is no package."""
    spec = importlib.util.spec_from_file_location("mlph_bench_autograde", Path(__file__).with_name("autograde.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class DaskCluster:
    """A real scheduler and ``workers`` worker processes (one thread each) on 127.0.0.1, as subprocesses."""

    def __init__(self, workers: int, cwd: Path) -> None:
        self.address = f"tcp://127.0.0.1:{_free_port()}"
        env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
        out = open(cwd / f"dask-{workers}.log", "wb")
        bench = _autograde_bench()
        self.cpu = {"scheduler": bench.Cpu(), "workers": bench.Cpu()}
        self.procs = [subprocess.Popen([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port",
                                        self.address.rsplit(":", 1)[1], "--no-dashboard"],
                                       cwd=cwd, env=env, stdout=out, stderr=out, preexec_fn=self.cpu["scheduler"].enter)]
        self.procs.append(subprocess.Popen([str(BIN / "dask"), "worker", self.address, "--nworkers", str(workers),
                                            "--nthreads", "1", "--no-dashboard", "--memory-limit", "0"],
                                           cwd=cwd, env=env, stdout=out, stderr=out,
                                           preexec_fn=self.cpu["workers"].enter))
        self._wait(workers)

    def cpu_seconds(self) -> dict[str, float | None]:
        """CPU-seconds so far of the scheduler and of the worker processes with everything they started."""
        return {name: cpu.usage() for name, cpu in self.cpu.items()}

    def _wait(self, workers: int, timeout: float = 120.0) -> None:
        from distributed import Client

        with Client(self.address, timeout=timeout) as client:
            client.wait_for_workers(workers, timeout=timeout)

    def close(self) -> None:
        for proc in reversed(self.procs):
            proc.terminate()
        for proc in reversed(self.procs):
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for cpu in self.cpu.values():
            cpu.done()


def scores(db: Path) -> dict[tuple[str, str], str]:
    with sqlite3.connect(db) as con:
        return {(sheet, student): score for sheet, student, score in
                con.execute("select sheet, student_id, score from autograde_result")}


def grade(bench, course: Path, sheets: list[str], cluster: str | None, workers: int,  # type: ignore[no-untyped-def]
          warm: bool = False) -> tuple[float, float | None]:
    """Wall and CPU seconds of one `mlph autograde --force` of every sheet (CPU: the grader's processes; a
    Dask cluster's workers run outside that count); ``warm``: of the first sheet only, the warm-up run
    (workers, kernels, references)."""
    where = ["--cluster", cluster] if cluster else ["--workers", str(workers)]
    return bench.run([str(BIN / "mlph"), "autograde", "--no-progress", *where, *(sheets[:1] if warm else sheets),
                      "--force"], course)


def references(course: Path, sheets: list[str]) -> None:
    """Every sheet's reference (the solution's run, sandboxed) computed and cached before any timing: the
    configurations then compare the grading of the hand-ins alone."""
    import nbformat

    from autograder.grading.pipeline import source_hash
    from autograder.grading.reference import load_reference
    from autograder.limits import Limits
    from gradebook.course.config import load_config

    cfg = load_config(course)
    for sheet in sheets:
        m = cfg.manifest(sheet)
        path = m.directory / m.notebook
        load_reference(cfg, m, nbformat.read(path, as_version=4), source_hash(path), Limits(), True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--students", type=int, default=300, help="students (hand-ins of each sheet)")
    ap.add_argument("--sheets", nargs="+", default=SHEETS)
    ap.add_argument("--dask", type=int, nargs="*", default=[1, 2, 4], help="Dask worker processes to try")
    ap.add_argument("--no-local", action="store_true", help="skip the local workers")
    args = ap.parse_args()
    bench = _autograde_bench()
    cores = len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory(prefix="mlph-bench-semester-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        bench.build(root, args.sheets, args.students)
        course, db = root / "course", root / "data" / "gradebook.db"
        references(course, args.sheets)
        n = args.students * len(args.sheets)
        print(f"{len(args.sheets)} sheets x {args.students} students = {n} hand-ins (built in "
              f"{time.perf_counter() - t0:.0f} s); {cores} cores; sandbox on", flush=True)
        rows: dict[str, tuple[float, float | None]] = {}
        busy: dict[int, float] = {}  # cores kept busy by a Dask run of k workers (all its processes)
        results: dict[str, dict[tuple[str, str], str]] = {}
        if not args.no_local:
            grade(bench, course, args.sheets, None, cores, warm=True)
            rows[f"local, {cores} workers"] = grade(bench, course, args.sheets, None, cores)
            results[f"local, {cores} workers"] = scores(db)
            print(f"  local: {rows[f'local, {cores} workers'][0]:.1f} s", flush=True)
        for k in args.dask:
            cluster = DaskCluster(k, root)
            try:
                grade(bench, course, args.sheets, cluster.address, k, warm=True)
                before = cluster.cpu_seconds()
                rows[f"dask, {k} worker{'s' * (k > 1)}"] = wall, coordinator = grade(
                    bench, course, args.sheets, cluster.address, k)
                after = cluster.cpu_seconds()
            finally:
                cluster.close()
            spent = {name: (after[name] or 0) - (before[name] or 0) for name in after}
            busy[k] = ((coordinator or 0) + sum(spent.values())) / wall
            print(f"  dask {k}: CPU-s per hand-in: coordinator {(coordinator or 0) / n:.3f}, scheduler "
                  f"{spent['scheduler'] / n:.3f}, workers with their kernels {spent['workers'] / n:.3f}; cores busy "
                  f"{((coordinator or 0) + sum(spent.values())) / wall:.2f} of {cores}", flush=True)
            results[f"dask, {k} worker{'s' * (k > 1)}"] = scores(db)
            print(f"  dask {k}: {rows[f'dask, {k} worker' + 's' * (k > 1)][0]:.1f} s", flush=True)
        one = next((rows[key][0] for key in rows if key == "dask, 1 worker"), None)
        print(f"{'configuration':18} {'total s':>8} {'per hand-in s':>13} {'speed-up':>9} {'ideal':>6} {'of ideal':>9}"
              f" {'CPU-bound ideal':>16} {'of it':>6}")
        for key, (wall, _) in rows.items():
            k = int(key.split()[1]) if key.startswith("dask") else None
            line = f"{key:18} {wall:8.1f} {wall / n:13.3f}"
            if k is not None and one is not None:
                ideal = min(k, cores)
                line += f" {one / wall:8.2f}x {ideal:5d}x {one / wall / ideal:8.2f}"
                if 1 in busy:  # one worker's run already keeps busy[1] cores busy: k of them cannot get more than all
                    bound = min(k, cores / busy[1])
                    line += f" {bound:15.2f}x {one / wall / bound:6.2f}"
            print(line)
        if 1 in busy:
            print(f"  (CPU-bound ideal: min(k, {cores} cores / the {busy[1]:.2f} cores one worker's run keeps busy: "
                  "its kernel, the worker, the coordinator and the scheduler))")
        first = next(iter(results.values()), {})
        differ = {key: sum(res.get(s) != first.get(s) for s in set(res) | set(first)) for key, res in results.items()}
        print(f"scores: {len(first)} hand-ins graded; configurations disagreeing with the first: "
              f"{ {k: v for k, v in differ.items() if v} or 'none'}")
        print("  (target: the semester <= 20 min here; >= 0.9 x linear speed-up up to the cores available)")


if __name__ == "__main__":
    main()
