"""Benchmark of the web application: uvicorn over PostgreSQL (127.0.0.1 only).

A synthetic course of 1000 students × 12 sheets (benchmarks/gradebook.py's builder: 6 autograded cells and
3 paper tasks per sheet, all entered) in a private schema of the local server's database ``test``;
34 tutorial groups of about 30 students, 10 tutors (3-4 groups each) and an admin.

- Saves: 10 tutors save cells of the tutors' grid concurrently (a bounded loop each), every tutor with
  two tabs open on the same group (two version caches: a tab that did not see the other's save sends a
  stale version), while the admin saves into the same cells (real races between processes' requests).
  p50/p95 of a save's round trip; every save must be stored or answered with a conflict, and the audit
  log must hold exactly the stored ones, each based on the value before it (no lost update).
- At the same time, ``--refreshing`` (100) students refresh their dashboards, each ``--refreshes`` (5) times with
  a pause of up to ``--pause`` (1) s between two refreshes (a burst of about 100 dashboards a second while the
  tutors save): p50/p95 of those dashboards under load.
- Pages (round trip on 127.0.0.1, an upper bound of the server time), one at a time after the load: the tutor
  grid of a 30-student group, a student's dashboard, the admin overview and the admission list with 1000 students.

    .venv/bin/python benchmarks/web.py [--saves 60] [--workers 2] [--refreshing 100] [--pg postgresql+psycopg://postgres@127.0.0.1:5432/test]

Two uvicorn workers by default (``--workers``): the pages' standings are kept per worker and version of the
gradebook (:mod:`gradebook.admission.current`), so both workers must see every change the other makes (the audit
check above covers the saves; tests/web/test_pages_see_a_change_made_by_another_process.py the pages). (With an
older uvicorn, ``--workers`` > 1 left Nagle on for accepted connections, ~40 ms per keep-alive request,
Kludex/uvicorn#3149; uvicorn 0.55 binds the socket with IPPROTO_TCP: the static-file floor shows it.)
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from fractions import Fraction
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, insert, select, text

HERE = Path(__file__).resolve().parent
SHEET, TASKS, GROUP_SIZE, TUTORS = "sheet05", ("p0", "p1", "p2"), 30, 10
TARGETS = {"save p95": 0.050, "tutor grid": 0.100, "student dashboard": 0.100, "admin overview": 0.500}


def fill(builder: Any, url: str, students: int, sheets: int) -> None:
    """The gradebook benchmark's course, on PostgreSQL: nbgrader's schema has an enum type there for
    ``grade_cells.cell_type`` (declared a string in gradebook.store.nbgrader_tables), so, in this process only,
    the column is bound as that enum while the builder inserts."""
    from sqlalchemy.dialects.postgresql import ENUM

    from gradebook.store import nbgrader_tables as nt

    column = nt.grade_cells.c.cell_type
    kept = column.type
    column.type = ENUM("code", "markdown", name="grade_cell_type", create_type=False)
    try:
        builder.fill_database(url, students, sheets)
    finally:
        column.type = kept


def _builder() -> Any:
    """benchmarks/gradebook.py (write_course, fill_database), loaded by path (it shares a name with the package)."""
    spec = importlib.util.spec_from_file_location("bench_gradebook", HERE / "gradebook.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def staff_and_groups(url: str, students: int) -> dict[str, list[str]]:
    """Groups of GROUP_SIZE students, tutors t0..t9 (round robin) and admin boss; tutor → groups."""
    from gradebook.store.db import atomic, open_gradebook
    from gradebook.store.models import GroupMembership, Person, TutorialGroup

    now = datetime.now(timezone.utc)
    n_groups = -(-students // GROUP_SIZE)
    groups = [f"g{k:02d}" for k in range(n_groups)]
    with atomic(open_gradebook(url)) as s:
        s.execute(insert(Person), [{"id": f"t{i}", "name": f"Tutor {i}", "role": "tutor"} for i in range(TUTORS)]
                  + [{"id": "boss", "name": "The Admin", "role": "admin"}])
        s.execute(insert(TutorialGroup), [{"id": g, "name": f"Group {g}", "tutor_id": f"t{k % TUTORS}"}
                                          for k, g in enumerate(groups)])
        s.execute(insert(GroupMembership), [{"student_id": f"s{i:05d}", "group_id": groups[i // GROUP_SIZE],
                                             "valid_from": now} for i in range(students)])
    held: dict[str, list[str]] = {f"t{i}": [] for i in range(TUTORS)}
    for k, g in enumerate(groups):
        held[f"t{k % TUTORS}"].append(g)
    return held


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def client(base: str, url: str, who: str) -> httpx.Client:
    from gradebook.store.db import open_gradebook
    from web.security import CSRF_HEADER, SESSION_COOKIE
    from web.testing import session_for

    token, csrf = session_for(open_gradebook(url), who, hours=2)
    return httpx.Client(base_url=base, cookies={SESSION_COOKIE: token}, timeout=30,
                        headers={CSRF_HEADER: csrf, "x-requested-with": "fetch", "accept": "application/json"})


@dataclass
class Outcomes:
    latencies: list[float] = field(default_factory=list)
    server: list[float] = field(default_factory=list)  # the handler's own time (Server-Timing)
    written: list[tuple[str, str, str]] = field(default_factory=list)  # (author, key, new value)
    unchanged: int = 0
    conflicts: int = 0
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def grader(http: httpx.Client, author: str, cells: list[tuple[str, str, str]], saves: int, seed: int,
           out: Outcomes, tabs: int = 2) -> None:
    """``saves`` saves of random cells (group, student, task) from ``tabs`` tabs, each with its own idea
    of the cells' versions (a tab learns a cell's version only from its own saves' answers)."""
    rng = random.Random(seed)
    known: list[dict[tuple[str, str], tuple[int, str]]] = [{} for _ in range(tabs)]
    for _ in range(saves):
        tab = known[rng.randrange(tabs)]
        group, student, task = rng.choice(cells)
        version, seen = tab.get((student, task), (1, ""))  # the builder entered every cell: version 1
        value = rng.choice([v for v in ("0", "0,5", "1", "1.5", "2", "2,5", "3", "3.5", "4") if v != seen])
        t0 = time.perf_counter()
        try:
            r = http.post(f"/tutor/{SHEET}/{group}/cell", json={"student": student, "task": task, "value": value,
                                                               "version": version})
        except httpx.HTTPError as exc:  # a timeout (30 s): the save's fate is unknown to the client
            with out.lock:
                out.latencies.append(time.perf_counter() - t0)
                out.errors.append(f"{author}: {type(exc).__name__} saving {student}/{task}")
            continue
        elapsed = time.perf_counter() - t0
        body = r.json()
        with out.lock:
            out.latencies.append(elapsed)
            out.server.append(server_time(r))
            if r.status_code not in (200, 409):
                out.errors.append(f"{author}: {r.status_code} {body}")
                continue
            cell = body["cell"]
            if r.status_code == 409:
                out.conflicts += 1
            elif cell["written"]:
                out.written.append((author, f"{SHEET}/{task}/{student}", str(Fraction(value.replace(",", ".")))))
            else:
                out.unchanged += 1
        tab[(student, task)] = (cell["version"], cell["points"] or "")


def server_time(r: httpx.Response) -> float:
    """Seconds from the response's ``Server-Timing: app;dur=…`` (the route handler's own time), or NaN."""
    for part in r.headers.get("server-timing", "").split(","):
        name, _, dur = part.strip().partition(";dur=")
        if name == "app" and dur:
            return float(dur) / 1000
    return float("nan")


def check_audit(url: str, out: Outcomes, since: datetime) -> list[str]:
    """Every stored save is in the audit log once, and each change was based on the value before it."""
    from gradebook.store.db import open_gradebook
    from gradebook.store.models import AuditLog, PaperPoints
    from sqlalchemy.orm import Session

    problems: list[str] = []
    with Session(open_gradebook(url)) as s:
        log = s.execute(select(AuditLog.author, AuditLog.key, AuditLog.old_value, AuditLog.new_value)
                        .where(AuditLog.entity == "paper_points", AuditLog.at >= since).order_by(AuditLog.id)).all()
        final = {f"{p.sheet}/{p.task}/{p.student_id}": p.points for p in s.execute(
            select(PaperPoints).where(PaperPoints.sheet == SHEET)).scalars()}
    if sorted((a, k, v) for a, k, _, v in log) != sorted(out.written):
        problems.append(f"audit log holds {len(log)} changes, the clients saw {len(out.written)} stored")
    last: dict[str, str | None] = {}
    for _, key, old, new in log:
        if key in last and last[key] != old:
            problems.append(f"{key}: a change from {old} followed {last[key]} (a lost update)")
        last[key] = new
    problems += [f"{k}: stored {final.get(k)}, last audited {v}" for k, v in last.items() if final.get(k) != v]
    return problems


def timed_get(http: httpx.Client, path: str, n: int) -> tuple[list[float], list[float]]:
    """Round trips and handler times (NaN where the route reports none) of ``n`` GETs after a warm-up."""
    http.get(path, headers={"accept": "text/html"}).raise_for_status()
    times, server = [], []
    for _ in range(n):
        t0 = time.perf_counter()
        r = http.get(path, headers={"accept": "text/html"})
        r.raise_for_status()
        times.append(time.perf_counter() - t0)
        server.append(server_time(r))
    return times, server


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def start_server(root: Path, url: str, workers: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = dict(os.environ, MLPH_ROOT=str(root), MLPH_DB_URL=url, MLPH_COURSE_DIR=str(root / "data"))
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "web.app:app_from_env", "--factory", "--host",
                             "127.0.0.1", "--port", str(port), "--workers", str(workers), "--log-level", "warning"],
                            env=env, cwd=root)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(f"{base}/login", timeout=2)
            return proc, base
        except httpx.HTTPError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                sys.exit("uvicorn did not start")
            time.sleep(0.3)


def refresher(http: httpx.Client, student: str, refreshes: int, pause: float, seed: int, out: Outcomes) -> None:
    """``refreshes`` GETs of ``student``'s dashboard, a random pause of up to ``pause`` s before each."""
    rng = random.Random(seed)
    for _ in range(refreshes):
        time.sleep(rng.uniform(0, pause))
        t0 = time.perf_counter()
        try:
            status = http.get(f"/students/{student}", headers={"accept": "text/html"}).status_code
        except httpx.HTTPError as exc:  # a timeout (30 s) counts with its time, as an error
            status = type(exc).__name__
        elapsed = time.perf_counter() - t0
        with out.lock:
            out.latencies.append(elapsed)
            if status != 200:
                out.errors.append(f"{student}: dashboard {status}")


def refreshers(base: str, url: str, students: int, n: int, refreshes: int, pause: float,
               out: Outcomes) -> list[threading.Thread]:
    """Threads (not started) of ``n`` students spread over the roster refreshing their dashboards."""
    ids = [f"s{(k * students) // n:05d}" for k in range(n)]
    return [threading.Thread(target=refresher, args=(client(base, url, sid), sid, refreshes, pause, k, out))
            for k, sid in enumerate(ids)]


def run_saves(base: str, url: str, held: dict[str, list[str]], saves: int,
              extra: list[threading.Thread] | None = None) -> Outcomes:
    out = Outcomes()
    threads = list(extra or [])
    shared: list[tuple[str, str, str]] = []
    for i in range(TUTORS):
        tutor = f"t{i}"
        group = held[tutor][0]
        first = int(group[1:]) * GROUP_SIZE
        cells = [(group, f"s{first + k:05d}", t) for k in range(GROUP_SIZE) for t in TASKS]
        shared += cells[:12]
        threads.append(threading.Thread(target=grader, args=(client(base, url, tutor), tutor, cells, saves, i, out)))
    # the admin saves into the tutors' first cells at the same time: real races between requests
    threads.append(threading.Thread(target=grader, args=(client(base, url, "boss"), "boss", shared, saves, 99, out, 1)))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def report(name: str, seconds: float, target: float, note: str = "") -> None:
    print(f"  {name:<34} {seconds * 1000:8.1f} ms   target {target * 1000:5.0f} ms   ratio {seconds / target:5.2f}{note}")


def summary(name: str, rounds: list[float], server: list[float], target: float) -> None:
    """Median and p95 of the round trips, and of the handler's time where the route reports it."""
    report(f"{name}, median", statistics.median(rounds), target)
    report(f"{name}, p95", percentile(rounds, 95), target)
    handler = [x for x in server if x == x]
    if handler:
        print(f"  {'':<34} handler alone: median {statistics.median(handler) * 1000:.1f} ms, "
              f"p95 {percentile(handler, 95) * 1000:.1f} ms")


def pages(base: str, url: str, held: dict[str, list[str]], reps: int) -> None:
    tutor, student, admin = client(base, url, "t0"), client(base, url, "s00001"), client(base, url, "boss")
    checks: list[tuple[str, httpx.Client, str, float]] = [
        (f"tutor grid ({GROUP_SIZE} students)", tutor, f"/tutor/{SHEET}/{held['t0'][0]}", TARGETS["tutor grid"]),
        ("student dashboard", student, "/students/s00001", TARGETS["student dashboard"]),
        ("admin overview (1000)", admin, "/admin", TARGETS["admin overview"]),
        ("admission list (1000)", admin, "/admin/admission", TARGETS["admin overview"]),
    ]
    print(f"pages: {reps} GETs each after a warm-up, one at a time (round trip on 127.0.0.1):")
    floor, _ = timed_get(tutor, "/static/grid.css", reps)
    print(f"  {'floor: a static file':<34} {statistics.median(floor) * 1000:8.1f} ms (no session, no database)")
    for name, http, path, target in checks:
        rounds, server = timed_get(http, path, reps)
        summary(name, rounds, server, target)


def sequential_saves(base: str, url: str, held: dict[str, list[str]], n: int) -> Outcomes:
    """One tutor alone, one save after the other: the cost of a save without queueing."""
    out = Outcomes()
    group = held["t1"][1]
    first = int(group[1:]) * GROUP_SIZE
    cells = [(group, f"s{first + k:05d}", t) for k in range(GROUP_SIZE) for t in TASKS]
    grader(client(base, url, "t1"), "t1", cells, n, 7, out, tabs=1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--students", type=int, default=1000)
    ap.add_argument("--sheets", type=int, default=12)
    ap.add_argument("--saves", type=int, default=60, help="saves per tutor (and by the admin)")
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--refreshing", type=int, default=100, help="students refreshing their dashboards during the saves")
    ap.add_argument("--refreshes", type=int, default=5, help="dashboard refreshes per such student")
    ap.add_argument("--pause", type=float, default=1.0, help="longest pause (s) before a refresh")
    ap.add_argument("--pg", default=os.environ.get("MLPH_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test"))
    args = ap.parse_args()
    if "127.0.0.1" not in args.pg and "localhost" not in args.pg:
        sys.exit("the benchmark runs against a local server only (127.0.0.1)")
    schema = f"bench_web_{uuid.uuid4().hex[:10]}"
    admin_engine = create_engine(args.pg)
    with admin_engine.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    url = f"{args.pg}?options=-csearch_path%3D{schema}"
    proc = None
    try:
        with tempfile.TemporaryDirectory(prefix="mlph-bench-web-") as tmp:
            root = Path(tmp)
            builder = _builder()
            builder.write_course(root, args.sheets)
            t0 = time.perf_counter()
            fill(builder, url, args.students, args.sheets)
            held = staff_and_groups(url, args.students)
            print(f"course: {args.students} students x {args.sheets} sheets on PostgreSQL (schema {schema}), "
                  f"{len(sum(held.values(), []))} groups, {TUTORS} tutors; built in {time.perf_counter() - t0:.1f} s")
            proc, base = start_server(root, url, args.workers)
            print(f"uvicorn on {base}, {args.workers} worker(s); load average before: "
                  f"{' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPU(s)")
            since = datetime.now(timezone.utc)
            dash = Outcomes()
            storm = refreshers(base, url, args.students, args.refreshing, args.refreshes, args.pause, dash)
            t0 = time.perf_counter()
            out = run_saves(base, url, held, args.saves, storm)
            wall = time.perf_counter() - t0
            n = len(out.latencies)
            print(f"saves: {TUTORS} tutors x {args.saves} (two tabs each) + admin {args.saves}, concurrently: {n} saves "
                  f"in {wall:.1f} s ({n / wall:.0f}/s); {len(out.written)} stored, {out.unchanged} unchanged, "
                  f"{out.conflicts} conflicts, {len(out.errors)} errors")
            summary("save under load", out.latencies, out.server, TARGETS["save p95"])
            if dash.latencies:
                print(f"dashboards at the same time: {args.refreshing} students x {args.refreshes} refreshes "
                      f"(pause up to {args.pause} s): {len(dash.latencies)} pages, {len(dash.errors)} errors")
                summary("dashboard under load", dash.latencies, [], TARGETS["student dashboard"])
            problems = out.errors[:5] + dash.errors[:5] + check_audit(url, out, since)
            alone = sequential_saves(base, url, held, 4 * args.reps)
            print(f"saves by one tutor alone, one after the other ({len(alone.latencies)}):")
            summary("save alone", alone.latencies, alone.server, TARGETS["save p95"])
            problems += alone.errors[:5]
            print("lost updates: none (every save stored or answered with a conflict; the audit log holds exactly "
                  "the stored ones, each based on the value before it)" if not problems else
                  "PROBLEMS:\n  " + "\n  ".join(problems[:20]))
            pages(base, url, held, args.reps)
            print(f"load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
            if problems:
                sys.exit(1)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=20)
        from gradebook.store import db as gbdb

        for key in [u for u in gbdb._ready if schema in u]:
            gbdb._ready.pop(key).dispose()
        with admin_engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin_engine.dispose()


if __name__ == "__main__":
    main()
