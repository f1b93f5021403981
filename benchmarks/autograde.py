"""Benchmark: stock `nbgrader autograde` against `mlph autograde` on the same simulated submissions.

Builds N (default 60) honest submissions of the real sheets (solutions, typical mistakes from
`mistakes.toml`, untouched stubs; spread over the sheets), grades them with both in the same run,
prints both times, the ratio, the per-submission overhead beyond the cells' own execution, and
checks that both give the same scores. nbgrader grades one assignment per invocation; `mlph
autograde` takes several sheets at once (one pool): it is timed both ways, the scores compared are
those of its final run (all sheets at once, `--force`).

    .venv/bin/python benchmarks/autograde.py [-n 60] [--sheets sheet01 sheet02 sheet03]
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

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
    for i, sheet in enumerate(sheets):
        generate(cfg, sheet)
        m = cfg.manifest(sheet)
        source = nbformat.read(m.directory / m.notebook, as_version=4)
        release = nbformat.read(cfg.release_dir / sheet / m.notebook, as_version=4)
        mistakes = load_mistakes(m)
        for s in students[i::len(sheets)]:
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


def run(cmd: list[str], cwd: Path) -> float:
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode not in (0, 1):
        sys.exit(f"{' '.join(cmd)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return time.perf_counter() - t0


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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=60)
    ap.add_argument("--sheets", nargs="+", default=["sheet01", "sheet02", "sheet03"])
    ap.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="mlph-bench-ag-") as tmp:
        root = Path(tmp)
        who = build(root, args.sheets, args.n)
        stock = stock_course(root, args.sheets)
        t_stock = sum(run([str(BIN / "nbgrader"), "autograde", s, "--force"], stock) for s in args.sheets)
        mlph = [str(BIN / "mlph"), "autograde", "--no-progress", "--workers", str(args.workers)]
        t_each = sum(run(mlph + [s, "--force"], root / "course") for s in args.sheets)
        shutil.rmtree(root / "data" / ".mlph" / "reference")  # both ways run the solutions once per sheet
        t_ours = run(mlph + args.sheets + ["--force"], root / "course")
        theirs = scores(f"sqlite:///{stock / 'gradebook.db'}", args.sheets)
        ours = scores(f"sqlite:///{root / 'data' / 'gradebook.db'}", args.sheets)
        cells, totals = cell_seconds(root / "data" / "gradebook.db")
        n = sum(len(v) for v in who.values())
        differ = sorted(k for k in ours if ours.get(k) != theirs.get(k))
        print(f"{n} submissions of {', '.join(args.sheets)}")
        print(f"stock nbgrader autograde: {t_stock:7.1f} s  ({t_stock / n:.2f} s per submission)")
        print(f"mlph autograde:           {t_ours:7.1f} s  ({t_ours / n:.2f} s per submission, sandboxed, "
              f"{args.workers} workers, one run for all sheets)")
        print(f"ratio: {t_stock / t_ours:.2f}x (target: >= 4x with the sandbox on)")
        print(f"mlph autograde, one run per sheet as nbgrader needs: {t_each:5.1f} s, ratio {t_stock / t_each:.2f}x")
        print(f"cells' own execution: {cells / n:.3f} s per submission")
        print(f"mlph overhead beyond the cells' own execution: {(args.workers * t_ours - cells) / n:.3f} s of "
              f"worker time per submission ({args.workers} workers x wall time - cell time, over {n}; "
              "includes process start-up and the reference run of each sheet)")
        print(f"  of which inside the worker, per submission (kernel hand-over, files, teardown): "
              f"{(totals - cells) / n:.3f} s")
        print(f"  and outside the jobs (start-up of the grader, its workers and their zygotes, the solutions' runs, "
              f"a worker idle at the end): {(args.workers * t_ours - totals) / n:.3f} s")
        print(f"scores: {len(ours) - len(differ)} of {len(ours)} agree")
        for sid, sheet in differ:
            a = cell_scores(f"sqlite:///{stock / 'gradebook.db'}", sheet, sid)
            b = cell_scores(f"sqlite:///{root / 'data' / 'gradebook.db'}", sheet, sid)
            print(f"  {sid} {sheet}: " + ", ".join(f"{c} stock {a[c]:g} / ours {b.get(c, 0):g}"
                                                   for c in a if a[c] != b.get(c)))
            if os.environ.get("MLPH_BENCH_KEEP"):
                print(f"    stock notebook: {stock / 'autograded' / sid / sheet}")


def cell_seconds(db: Path) -> tuple[float, float]:
    """Summed over submissions: the cells' own execution, and the worker's whole time per submission."""
    import json
    import sqlite3

    with sqlite3.connect(db) as conn:
        rows = [json.loads(r[0]).get("timings", {}) for r in conn.execute("SELECT result_json FROM autograde_result")]
    return sum(r.get("cells", 0.0) for r in rows), sum(r.get("total", 0.0) for r in rows)


if __name__ == "__main__":
    main()
