"""Benchmark: what publishing paper points costs a student's page.

A synthetic course (benchmarks/gradebook.py's: N students × 12 sheets, 3 paper tasks each, every cell graded)
in a temporary SQLite file. Measured in the same run: the publication predicate (`published_sheets`) while
nothing is recorded yet (it looks for students still waiting on every past sheet, then records the automatic
publications) and once recorded while one past sheet still waits for one student (looked at on every call); and one student's dashboard data as the student reads it
(through the predicate, unpublished paper hidden) against the staff's view of the same student (no predicate).

    .venv/bin/python benchmarks/publish.py [--students 300] [--reps 20]
"""
from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]


def _course_builder() -> object:
    spec = importlib.util.spec_from_file_location("bench_gradebook", Path(__file__).parent / "gradebook.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _ms(fn: object, reps: int) -> float:
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--students", type=int, default=300)
    parser.add_argument("--reps", type=int, default=20)
    args = parser.parse_args()
    builder = _course_builder()
    with tempfile.TemporaryDirectory(prefix="mlph-bench-publish-") as tmp:
        root = Path(tmp)
        builder.write_course(root, 12)  # type: ignore[attr-defined]
        url = f"sqlite:///{root / 'gradebook.db'}"
        builder.fill_database(url, args.students, 12)  # type: ignore[attr-defined]
        import dataclasses

        from gradebook.course.config import load_config
        from gradebook.points.publishing import published_sheets
        from gradebook.store.db import open_gradebook
        from web.views import dashboard

        cfg = dataclasses.replace(load_config(root), data_dir=root, db_url=url)
        engine = open_gradebook(url)
        from sqlalchemy import delete, select

        from gradebook.store.db import atomic
        from gradebook.store.models import PaperPoints

        with atomic(engine) as session:  # one student of sheet01 still waits for one task: sheet01 stays unpublished
            row = session.execute(select(PaperPoints.id).where(PaperPoints.sheet == "sheet01").limit(1)).scalar_one()
            session.execute(delete(PaperPoints).where(PaperPoints.id == row))
        start = time.perf_counter()
        first = published_sheets(engine, cfg)
        unrecorded = (time.perf_counter() - start) * 1000
        recorded = _ms(lambda: published_sheets(engine, cfg), args.reps)  # sheet01 still looked at: one waits
        student = _ms(lambda: dashboard(engine, cfg, "s00007"), args.reps)
        staff = _ms(lambda: dashboard(engine, cfg, "s00007", staff=True), args.reps)
        print(f"{args.students} students x 12 sheets x 3 paper tasks, SQLite; {len(first)} sheets published automatically")
        print(f"published_sheets, nothing recorded yet (finds who waits, records): {unrecorded:8.1f} ms (once)")
        print(f"published_sheets, recorded, one past sheet still waiting:        {recorded:8.1f} ms (median of {args.reps})")
        print(f"dashboard data, as the student (predicate, hidden paper):        {student:8.1f} ms")
        print(f"dashboard data, as staff (no predicate):                         {staff:8.1f} ms")
        print(f"ratio student / staff: {student / staff:.2f}")


if __name__ == "__main__":
    main()
