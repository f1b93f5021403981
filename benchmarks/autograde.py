"""Benchmark: stock `nbgrader autograde`, `mlph autograde` and the physical limit, on the same submissions.

Builds N (default 60) honest submissions of *each* of the real sheets (solutions, typical mistakes from
`mistakes.toml`, untouched stubs), grades them with both in the same run and prints, per sheet and for
all together, the wall time of stock nbgrader, of `mlph autograde` (sandbox on) and of the physical
limit, their ratios, and the CPU time per submission. The limit is the cells `mlph` executes (setup,
answers, every test cell with its hidden part, as the worker's job holds them) run by plain ``exec`` in
one forked process per core, numpy and the sheet's imports preloaded, no sandbox, no kernel. CPU time is
measured with a cpuacct cgroup per run (every process of the run: grader, workers, zygotes, sandboxes,
kernels), so other work on the machine does not count; the grader's own cost is the run's CPU minus
the limit's. Scores must agree with stock nbgrader's on every submission.

nbgrader grades one assignment per invocation; `mlph autograde` is timed one sheet per run (as nbgrader)
and with all sheets in one run (one pool); the scores compared are those of that final run.

    .venv/bin/python benchmarks/autograde.py [-n 60] [--sheets sheet01 sheet02 sheet03] [--no-stock]
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import random
import signal
import uuid
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

os.environ.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")  # one process per core,
# before anything here imports numpy (as the sandboxes set it for kernels; stock nbgrader's kernels get it too)
REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# benchmarks/gradebook.py would shadow the gradebook package: keep this directory off the path
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(REPO / "tests"))


def build(root: Path, sheets: list[str], n: int) -> dict[str, list[str]]:
    """The course at root/course and the submissions under root/data/submitted; sheet -> students."""
    from coursefactory import make_course

    from autograder.nbgrader_bridge import CHECK_MODULE, generate
    from autograder.demo.simulate import handin, make_class
    from autograder.sheets.validate import load_mistakes
    from gradebook.course.config import load_config

    course = make_course(root / "course", tiny=(), real=tuple(sheets))
    os.environ.update(MLPH_ROOT=str(course), MLPH_COURSE_DIR=str(root / "data"))
    os.environ.pop("MLPH_DB_URL", None)
    cfg = load_config(course)
    rng = random.Random(7)
    students = make_class(n, seed=7)
    who: dict[str, list[str]] = {}
    for sheet in sheets:
        generate(cfg, sheet)
        m = cfg.manifest(sheet)
        source = nbformat.read(m.directory / m.notebook, as_version=4)
        release = nbformat.read(cfg.release_dir / sheet / m.notebook, as_version=4)
        mistakes = load_mistakes(m)
        for s in students:
            h = handin(s, m, source, release, mistakes, rng)
            d = cfg.data_dir / "submitted" / s.id / sheet
            d.mkdir(parents=True)
            nbformat.write(h.notebook, d / m.notebook)
            shutil.copy2(CHECK_MODULE, d / CHECK_MODULE.name)
            (d / "timestamp.txt").write_text("2026-11-01 12:00:00.000000 UTC")
            who.setdefault(sheet, []).append(s.id)
    return who


def stock_course(root: Path, sheets: list[str]) -> Path:
    """A plain nbgrader course (its own root and gradebook) with the same source and submissions."""
    stock = root / "stock"
    shutil.copytree(root / "course" / "source", stock / "source")
    shutil.copytree(root / "data" / "submitted", stock / "submitted")
    (stock / "nbgrader_config.py").write_text(
        "c = get_config()\nc.CourseDirectory.root = %r\nc.CourseDirectory.course_id = 'mlph'\n"
        "c.CourseDirectory.ignore = ['sheet.toml', 'mistakes.toml', '.ipynb_checkpoints']\n" % str(stock))
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    for sheet in sheets:
        subprocess.run([str(BIN / "nbgrader"), "generate_assignment", sheet, "--force"], cwd=stock, env=env,
                       check=True, capture_output=True)
    return stock


CPUACCT = Path("/sys/fs/cgroup/cpuacct")


class Cpu:
    """CPU-seconds of everything started inside (a cpuacct cgroup of its own; None where there is none)."""

    def __init__(self) -> None:
        self.dir: Path | None = CPUACCT / f"mlph-bench-{uuid.uuid4().hex[:8]}"
        try:
            self.dir.mkdir()
        except OSError:
            self.dir = None
        self.seconds: float | None = None

    def enter(self) -> None:  # in the child, before it executes anything
        if self.dir is not None:
            (self.dir / "cgroup.procs").write_text(str(os.getpid()))

    def usage(self) -> float | None:
        """CPU-seconds so far."""
        return int((self.dir / "cpuacct.usage").read_text()) / 1e9 if self.dir is not None else None

    def done(self) -> None:
        if self.dir is not None:
            self.seconds = self.usage()
            for _ in range(100):
                try:
                    self.dir.rmdir()
                    break
                except OSError:
                    time.sleep(0.05)


def run(cmd: list[str], cwd: Path) -> tuple[float, float | None]:
    """Wall seconds and CPU-seconds of a command."""
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    cpu = Cpu()
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, preexec_fn=cpu.enter)
    wall = time.perf_counter() - t0
    cpu.done()
    if done.returncode not in (0, 1):
        sys.exit(f"{' '.join(cmd)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return wall, cpu.seconds


def jobs_cells(course: Path, sheet: str) -> tuple[list[list[str]], str, tuple[str, ...]]:
    """The code cells of every submission's job, as `mlph autograde` executes them; the check module's text;
    the sheet's imports."""
    from autograder.grading.pipeline import discover, make_job, source_imports
    from autograder.limits import Limits
    from autograder.nbgrader_bridge import CHECK_MODULE
    from gradebook.course.config import load_config

    cfg = load_config(course)
    m = cfg.manifest(sheet)
    source = nbformat.read(m.directory / m.notebook, as_version=4)
    cells = []
    for sub in discover(cfg, m):
        job = make_job(sub, m, source, Limits())
        if "notebook" in job:
            cells.append(["".join(c.source) for c in job["notebook"].cells if c.cell_type == "code"])
    return cells, CHECK_MODULE.read_text(encoding="utf-8"), source_imports(source)


def _exec_share(subs: list[list[str]], timeout: float) -> None:
    """In a forked child: every cell of each submission by plain exec, a fresh namespace per submission."""
    def alarm(*_: object) -> None:
        raise TimeoutError

    signal.signal(signal.SIGALRM, alarm)
    sink = io.StringIO()
    for cells in subs:
        ns: dict[str, object] = {"__name__": "__main__"}
        for i, src in enumerate(cells):
            sink.seek(0)
            sink.truncate()
            try:
                code = compile(src, f"<cell {i}>", "exec")
                with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
                    signal.setitimer(signal.ITIMER_REAL, timeout)
                    try:
                        exec(code, ns)
                    finally:
                        signal.setitimer(signal.ITIMER_REAL, 0)
            except BaseException:  # the cell's error is the cell's own work, as in a kernel
                pass


def limit(subs: list[list[str]], check_module: str, imports: tuple[str, ...], workers: int,
          timeout: float = 30.0) -> tuple[float, float | None]:
    """Wall seconds and CPU-seconds of the cells' own work: one forked process per core, imports preloaded."""
    import importlib

    with tempfile.TemporaryDirectory(prefix="mlph-limit-") as work:
        Path(work, "mlph_check.py").write_text(check_module)
        here = os.getcwd()
        os.chdir(work)
        sys.path.insert(0, work)
        try:
            for module in ("numpy", *imports):
                with contextlib.suppress(Exception):
                    importlib.import_module(module)
            cpu = Cpu()
            t0 = time.perf_counter()
            pids = []
            for w in range(workers):
                pid = os.fork()
                if pid == 0:
                    code = 0
                    try:
                        cpu.enter()
                        _exec_share(subs[w::workers], timeout)
                    except BaseException:
                        code = 1
                    os._exit(code)
                pids.append(pid)
            for pid in pids:
                os.waitpid(pid, 0)
            wall = time.perf_counter() - t0
            cpu.done()
        finally:
            os.chdir(here)
            sys.path.remove(work)
    return wall, cpu.seconds


def scores(db_url: str, sheets: list[str]) -> dict[tuple[str, str], float]:
    from nbgrader.api import Gradebook

    out = {}
    with Gradebook(db_url, course_id="mlph") as gb:
        for sheet in sheets:
            for sub in gb.find_assignment(sheet).submissions:
                out[(sub.student.id, sheet)] = round(sub.score, 6)
    return out


def cell_scores(db_url: str, sheet: str, student: str) -> dict[str, float]:
    from nbgrader.api import Gradebook

    with Gradebook(db_url, course_id="mlph") as gb:
        nb = gb.find_submission(sheet, student).notebooks[0]
        return {g.name: g.score for g in nb.grades}


def _cpu(x: float | None, n: int) -> str:
    return "n/a" if x is None else f"{x / n:.3f}"


def byte_compile() -> None:
    """The project's modules byte-compiled, as installing it does (pip writes every .pyc; nbgrader's are there):
    under PYTHONDONTWRITEBYTECODE, which this machine's sessions set, a working copy's modules would otherwise be
    compiled from source in every process of every run (0.3-0.4 CPU-seconds per run, measured)."""
    import compileall

    for package in ("autograder", "gradebook", "web"):
        compileall.compile_dir(str(REPO / package), quiet=1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=60, help="submissions of each sheet")
    ap.add_argument("--sheets", nargs="+", default=["sheet01", "sheet02", "sheet03"])
    ap.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--no-stock", action="store_true", help="skip stock nbgrader (no comparison of scores)")
    args = ap.parse_args()
    byte_compile()
    with tempfile.TemporaryDirectory(prefix="mlph-bench-ag-") as tmp:
        root = Path(tmp)
        who = build(root, args.sheets, args.n)
        course = root / "course"
        stock = None if args.no_stock else stock_course(root, args.sheets)
        rows = {}
        for s in args.sheets:
            t_stock = None if stock is None else run([str(BIN / "nbgrader"), "autograde", s, "--force"], stock)
            mlph = [str(BIN / "mlph"), "autograde", "--no-progress", "--workers", str(args.workers), s, "--force"]
            run(mlph, course)  # the sheet's reference (the solution's run), cached: measured below, in the run of all
            t_ours = run(mlph, course)
            t_limit = limit(*jobs_cells(course, s), args.workers)
            rows[s] = (t_stock, t_ours, t_limit)
        shutil.rmtree(root / "data" / ".mlph" / "reference")  # the run of all sheets runs each solution once
        t_all = run([str(BIN / "mlph"), "autograde", "--no-progress", "--workers", str(args.workers), *args.sheets,
                     "--force"], course)
        n = args.n
        print(f"{n} submissions of each of {', '.join(args.sheets)}; {args.workers} workers; sandbox on; "
              f"CPU from cpuacct cgroups")
        print(f"{'sheet':8} {'stock s':>8} {'mlph s':>7} {'limit s':>8} {'stock/mlph':>10} {'mlph/limit':>10} "
              f"{'mlph CPU/sub':>12} {'limit CPU/sub':>13} {'grader CPU/sub':>14}")
        for s, (t_stock, t_ours, t_limit) in rows.items():
            own = None if t_ours[1] is None or t_limit[1] is None else t_ours[1] - t_limit[1]
            st = "-" if t_stock is None else f"{t_stock[0]:8.1f}"
            ratio = "-" if t_stock is None else f"{t_stock[0] / t_ours[0]:9.1f}x"
            print(f"{s:8} {st:>8} {t_ours[0]:7.2f} {t_limit[0]:8.2f} {ratio:>10} {t_ours[0] / t_limit[0]:9.2f}x "
                  f"{_cpu(t_ours[1], n):>12} {_cpu(t_limit[1], n):>13} {_cpu(own, n):>14}")
        print("  (mlph per sheet: its reference cached by a run before; grader CPU = mlph CPU - limit CPU; "
              "target mlph/limit <= 1.5, grader <= 0.040 CPU-s)")
        lim_wall = sum(r[2][0] for r in rows.values())
        cpus = [r[2][1] for r in rows.values()]
        lim_cpu = None if any(c is None for c in cpus) else sum(c for c in cpus if c is not None)
        total = n * len(args.sheets)
        own_all = None if t_all[1] is None or lim_cpu is None else t_all[1] - lim_cpu
        print(f"all sheets in one run ({total} submissions, the solutions' runs included): mlph {t_all[0]:.2f} s, "
              f"limit {lim_wall:.2f} s, ratio {t_all[0] / lim_wall:.2f}x; CPU per submission mlph "
              f"{_cpu(t_all[1], total)}, limit {_cpu(lim_cpu, total)}, grader {_cpu(own_all, total)}")
        if stock is not None:
            t_stock_all = sum(r[0][0] for r in rows.values() if r[0] is not None)
            print(f"stock nbgrader, all sheets: {t_stock_all:.1f} s ({t_stock_all / total:.2f} s per submission); "
                  f"stock / mlph (one run): {t_stock_all / t_all[0]:.1f}x")
            theirs = scores(f"sqlite:///{stock / 'gradebook.db'}", args.sheets)
            ours = scores(f"sqlite:///{root / 'data' / 'gradebook.db'}", args.sheets)
            differ = sorted(k for k in set(ours) | set(theirs) if ours.get(k) != theirs.get(k))
            print(f"scores: {len(ours) - len([d for d in differ if d in ours])} of {len(ours)} agree with stock "
                  f"({len(theirs)} graded by stock)")
            for sid, sheet in differ:
                a = cell_scores(f"sqlite:///{stock / 'gradebook.db'}", sheet, sid)
                b = cell_scores(f"sqlite:///{root / 'data' / 'gradebook.db'}", sheet, sid)
                print(f"  {sid} {sheet}: " + ", ".join(f"{c} stock {a[c]:g} / ours {b.get(c, 0):g}"
                                                       for c in a if a[c] != b.get(c)))
                if os.environ.get("MLPH_BENCH_KEEP"):
                    print(f"    stock notebook: {stock / 'autograded' / sid / sheet}")
        del who


if __name__ == "__main__":
    main()
