"""Benchmark: `mlph admission` (CSV + XLSX) against `nbgrader export` on one synthetic course.

1000 students × 12 sheets (6 autograded cells + 3 paper tasks each), in nbgrader's schema plus
ours, in a temporary SQLite file. Both commands run as whole processes, in the same run; the
script prints both times, the ratio, and checks that both exports agree on every autograded total.

    .venv/bin/python benchmarks/gradebook.py [--students 1000] [--sheets 12]
"""
from __future__ import annotations

import argparse
import csv
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

# this file is called gradebook.py too: keep its directory off the import path
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from sqlalchemy import create_engine, insert, text  # noqa: E402

BIN = Path(sys.executable).parent


def write_course(root: Path, n_sheets: int) -> None:
    plan = ""
    for k in range(1, n_sheets + 1):
        sheet = f"sheet{k:02d}"
        d = root / "source" / sheet
        d.mkdir(parents=True)
        due = datetime(2026, 10, 20, 10) + timedelta(weeks=k)
        tests = ", ".join(f"test_{sheet}_{c} = 2" for c in range(6))
        paper = "".join(f'\n[[task]]\nid = "p{p}"\nkind = "paper"\npoints = 4\n' for p in range(3))
        (d / "sheet.toml").write_text(
            f'id = "{sheet}"\nnotebook = "{sheet}.ipynb"\ndue = "{due:%Y-%m-%dT%H:%M:%S}"\ntimezone = "Europe/Berlin"\n'
            f'[late]\npolicy = "zero"\ngrace_minutes = 15\n[[task]]\nid = "auto"\nkind = "notebook"\n'
            f"tests = {{ {tests} }}\n{paper}")
        plan += f'\n[[semester.sheet]]\nid = "{sheet}"\n'
    (root / "mlph.toml").write_text(f'[course]\nname = "bench"\ntimezone = "Europe/Berlin"\n[admission]\n'
                                    f'threshold = "1/2"\n{plan}')


def fill_database(url: str, n_students: int, n_sheets: int, seed: int = 1) -> None:
    from gradebook.store import nbgrader_tables as nt
    from gradebook.store.db import atomic, open_gradebook
    from gradebook.store.models import PaperPoints, StudentProfile

    rng = random.Random(seed)
    engine = open_gradebook(url)
    students = [{"id": f"s{i:05d}", "first_name": f"First{i}", "last_name": f"Last, {i % 97}",
                 "email": f"s{i:05d}@uni.de"} for i in range(n_students)]
    rows: dict[str, list[dict[str, object]]] = {k: [] for k in ("a", "nb", "bc", "gc", "sa", "sn", "g", "pp")}
    now = datetime.now(timezone.utc)
    for k in range(1, n_sheets + 1):
        sheet = f"sheet{k:02d}"
        due = datetime(2026, 10, 20, 9) + timedelta(weeks=k)
        rows["a"].append({"id": f"a{k}", "name": sheet, "duedate": due, "course_id": "mlph"})
        rows["nb"].append({"id": f"n{k}", "name": sheet, "assignment_id": f"a{k}"})
        for c in range(6):
            rows["bc"].append({"id": f"c{k}_{c}", "name": f"test_{sheet}_{c}", "notebook_id": f"n{k}", "type": "GradeCell"})
            rows["gc"].append({"id": f"c{k}_{c}", "max_score": 2.0, "cell_type": "code"})
        for s in students:
            sa = f"sa{k}_{s['id']}"
            rows["sa"].append({"id": sa, "assignment_id": f"a{k}", "student_id": s["id"],
                               "timestamp": due - timedelta(hours=rng.uniform(1, 48))})
            rows["sn"].append({"id": f"sn{k}_{s['id']}", "assignment_id": sa, "notebook_id": f"n{k}", "flagged": False,
                               "late_submission_penalty": 0.0})
            for c in range(6):
                rows["g"].append({"id": f"g{k}_{c}_{s['id']}", "notebook_id": f"sn{k}_{s['id']}", "cell_id": f"c{k}_{c}",
                                  "auto_score": float(rng.choice([0, 2, 2, 2])), "needs_manual_grade": False})
            for p in range(3):
                rows["pp"].append({"sheet": sheet, "task": f"p{p}", "student_id": s["id"],
                                   "points": str(rng.choice([0, 1, 2, 3, 4])), "entered_by": "tutor", "entered_at": now,
                                   "version": 1})
    with atomic(engine) as session:
        session.execute(insert(_course_table()), [{"id": "mlph"}])
        session.execute(insert(nt.student), students)
        session.execute(insert(StudentProfile), [{"student_id": s["id"], "matriculation": str(3_000_000 + i)}
                                                 for i, s in enumerate(students)])
        for key, table in (("a", nt.assignment), ("nb", nt.notebook), ("bc", nt.base_cell), ("gc", nt.grade_cells),
                           ("sa", nt.submitted_assignment), ("sn", nt.submitted_notebook), ("g", nt.grade)):
            session.execute(insert(table), rows[key])
        session.execute(insert(PaperPoints), rows["pp"])


def _course_table():  # nbgrader's course table, for the one row its export needs
    from sqlalchemy import Column, MetaData, String, Table

    return Table("course", MetaData(), Column("id", String(128), primary_key=True))


def timed(cmd: list[str], env: dict[str, str], cwd: Path) -> float:
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}")
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--students", type=int, default=1000)
    ap.add_argument("--sheets", type=int, default=12)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="mlph-bench-gb-") as tmp:
        root = Path(tmp)
        write_course(root, args.sheets)
        (root / "data").mkdir()  # commands other than those creating a course need it
        url = f"sqlite:///{root / 'gradebook.db'}"
        t0 = time.perf_counter()
        fill_database(url, args.students, args.sheets)
        print(f"synthetic course: {args.students} students x {args.sheets} sheets "
              f"(6 autograded cells + 3 paper tasks each), built in {time.perf_counter() - t0:.1f} s")
        env = dict(os.environ, MLPH_ROOT=str(root), MLPH_DB_URL=url, MLPH_COURSE_DIR=str(root / "data"),
                   PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
        ours = timed([str(BIN / "mlph"), "admission", "--csv", "ours.csv", "--xlsx", "ours.xlsx",
                      "--as-of", "2027-03-01T00:00:00+00:00"], env, root)
        stock = timed([str(BIN / "nbgrader"), "export", f"--CourseDirectory.db_url={url}",
                       "--CourseDirectory.course_id=mlph", "--CsvExportPlugin.to=nbgrader.csv"], env, root)
        check_agreement(root / "ours.csv", root / "nbgrader.csv", url)
        print(f"mlph admission (CSV + XLSX), whole process: {ours:6.2f} s")
        print(f"nbgrader export (CSV),         whole process: {stock:6.2f} s")
        print(f"ratio: mlph admission is {stock / ours:.1f}x faster (target: >= 25x, <= 2 s)")


def check_agreement(ours: Path, theirs: Path, url: str) -> None:
    """Every (student, sheet) total of ours = nbgrader's raw score + the paper points in the database."""
    from fractions import Fraction

    with create_engine(url).connect() as conn:
        paper: dict[tuple[str, str], Fraction] = {}
        for sid, sheet, pts in conn.execute(text("SELECT student_id, sheet, points FROM paper_points")):
            paper[(sid, sheet)] = paper.get((sid, sheet), Fraction(0)) + Fraction(pts)
    with theirs.open() as fh:
        reader = csv.reader(fh)
        width = len(next(reader))
        lines = list(reader)
    # nbgrader writes rows with str.format, unquoted: a last name with a comma shifts the columns.
    # Read from both ends (assignment, _, _, student_id first; raw_score is 4th from the end).
    shifted = sum(1 for f in lines if len(f) != width)
    stock = {(f[3], f[0]): Fraction(f[-4]) for f in lines}
    print(f"nbgrader export: {shifted} of {len(lines)} rows have shifted columns (unquoted commas in names)")
    with ours.open() as fh:
        rows = list(csv.DictReader(fh))
    checked = 0
    for r in rows:
        for (sid, sheet), raw in ((k, v) for k, v in stock.items() if k[0] == r["student_id"]):
            assert Fraction(r[sheet]) == raw + paper.get((sid, sheet), Fraction(0)), (sid, sheet)
            checked += 1
    assert checked == len(stock) > 0
    print(f"agreement: {checked} (student, sheet) totals = nbgrader's raw score + paper points")


if __name__ == "__main__":
    main()
