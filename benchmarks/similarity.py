"""Benchmark: `mlph similarity` over a whole semester, with its recall and precision measured in the same run.

12 sheets × 300 students: every student's notebook of every real sheet (source/, release/) with each answer
cell written independently in the student's own style, and 10% of the students copying another's notebook
with disguises (renaming, reordering, comments, dead code, loop forms): the seeded corpus of
:mod:`autograder.similarity.seeded`, written as hand-ins to a temporary course data directory. Timed: the
report of each sheet as `mlph similarity` makes it (read the hand-ins with the grader's bounded reader,
fingerprint, rank, write the HTML). The floor printed beside it: only reading and parsing the hand-ins.

    .venv/bin/python benchmarks/similarity.py [--students 300] [--sheets 12] [--seed 1]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# benchmarks/gradebook.py would shadow the gradebook package: keep this directory off the import path
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--students", type=int, default=300)
    ap.add_argument("--sheets", type=int, default=12)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="mlph-similarity-") as tmp:
        os.environ["MLPH_COURSE_DIR"] = tmp
        os.environ.pop("MLPH_DB_URL", None)
        from gradebook.course.config import load_config

        from autograder.grading.pipeline import read_notebook_json
        from autograder.similarity.report import build_report, report_path, write_html
        from autograder.similarity.seeded import Measured, measure, seeded_corpus, write_handins

        cfg = load_config(REPO)
        sheets = cfg.authored_sheets()[:args.sheets]
        students = [f"s{i:04d}" for i in range(args.students)]
        corpora = {}
        t0 = time.perf_counter()
        for sheet in sheets:
            m = cfg.manifest(sheet)
            source = json.loads((m.directory / m.notebook).read_text(encoding="utf-8"))
            release = json.loads((cfg.release_dir / sheet / m.notebook).read_text(encoding="utf-8"))
            corpora[sheet] = seeded_corpus(source, sheet, students, seed=args.seed)
            write_handins(corpora[sheet], release, cfg.data_dir / "submitted", m.notebook)
        n_answers = sum(len(c.answers) * len(c.students) for c in corpora.values())
        print(f"corpus: {len(sheets)} sheets x {args.students} students, {n_answers} answers "
              f"({sum(len(c.copied_from) for c in corpora.values())} copied notebooks), "
              f"written in {time.perf_counter() - t0:.1f} s")

        t0 = time.perf_counter()
        for sheet in sheets:
            for path in sorted((cfg.data_dir / "submitted").glob(f"*/{sheet}/{sheet}.ipynb")):
                read_notebook_json(path)
        floor = time.perf_counter() - t0

        total = Measured(0, 0, 0, 0, 0)
        t_all, cpu_all = time.perf_counter(), time.process_time()
        for sheet in sheets:
            t0 = time.perf_counter()
            report = build_report(cfg, sheet, teams={})
            write_html(report, report_path(cfg, sheet))
            dt = time.perf_counter() - t0
            m = measure(corpora[sheet], {c.grade_id: [(p.a.student, p.b.student) for p in c.pairs] for c in report.cells})
            total = Measured(*(getattr(total, f) + getattr(m, f) for f in ("planted", "found", "listed", "correct",
                                                                            "short_false")))
            print(f"  {sheet}: {dt:5.2f} s  recall {m.recall:.3f} ({m.found}/{m.planted})  precision {m.precision:.3f} "
                  f"({m.correct}/{m.listed})  independent pairs listed in short cells: {m.short_false}", flush=True)
        elapsed, cpu = time.perf_counter() - t_all, time.process_time() - cpu_all
    print(f"similarity, whole semester: {elapsed:.1f} s for {n_answers} answers "
          f"({elapsed / n_answers * 1000:.2f} ms per answer; target <= 60 s); CPU time of this process {cpu:.1f} s "
          f"(on a shared machine the wall time includes waiting for a core)")
    print(f"floor (only reading and parsing the hand-ins): {floor:.1f} s; ratio {elapsed / floor:.1f}x")
    print(f"recall {total.recall:.3f} ({total.found}/{total.planted} planted pairs in cells of more than three lines), "
          f"precision {total.precision:.3f} ({total.correct}/{total.listed} listed pairs), "
          f"independent pairs listed in short cells: {total.short_false}")
    print(f"load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    ok = elapsed <= 60 and total.recall >= 0.9 and total.precision >= 0.8
    print("PASS" if ok else "FAIL: " + ", ".join(w for w, bad in [("time", elapsed > 60), ("recall", total.recall < 0.9),
                                                                   ("precision", total.precision < 0.8)] if bad))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
