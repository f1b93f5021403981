"""Benchmark of the web application: uvicorn over PostgreSQL (127.0.0.1 only).

A synthetic course of 1000 students × 12 sheets (benchmarks/gradebook.py's builder: 6 autograded cells and
3 paper tasks per sheet, all entered) in a private schema of the local server's database ``test``;
34 tutorial groups of about 30 students, 10 tutors (3-4 groups each) and an admin.

- A warm-up first (:func:`warm_up`): the load meets a server that has been running, as at a deadline, not
  workers that compile their templates and statements on the tutors' first grids.
- Load phases, one per ``--tutor-pause`` value (default ``1,0``: a human pace, then the tight loop), each into
  other groups of the tutors:
  - Saves: 10 tutors save cells of the tutors' grid concurrently (``--saves`` each), every tutor with two tabs
    open on the same group (two version caches: a tab that did not see the other's save sends a stale
    version), while the admin saves into the same cells (real races between processes' requests). Before each
    save a tutor pauses a random time of up to ``--tutor-pause`` s (uniform: 1 s is a fast human, two
    keystrokes and a tab per cell; 0 is the tight loop, ~10x more saves a second than ten humans make), and
    loads their grid first (all ten at the same instant; printed apart as well) and after every 20 saves. p50/p95 of a save's round trip and of its handler time;
    every save must be stored or answered with a conflict, and the audit log must hold exactly the stored ones,
    each based on the value before it (no lost update).
  - At the same time ``--refreshing`` (100) students refresh their dashboards until the saves are done, a
    random pause of up to ``--pause`` (1) s before each refresh, in ``--client-processes`` (2) processes of
    their own (so that the client's interpreter lock does not queue the tutors' requests): every other student
    as a browser does (keeping the page's ETag and sending it back as If-None-Match: 304 while nothing changed),
    the others with no conditional request; both figures are printed, with the handler's own time.
  - The admin reads the overview and the admission list in turn (a pause of up to ``--admin-pause`` s).
- Pages (round trip on 127.0.0.1, an upper bound of the server time), one at a time after the load: the tutor
  grid of a 30-student group, a student's dashboard, the admin overview and the admission list with 1000 students.

    .venv/bin/python benchmarks/web.py [--saves 60] [--workers 2] [--refreshing 100] [--tutor-pause 1,0]
        [--pg postgresql+psycopg://postgres@127.0.0.1:5432/test]

As many uvicorn workers as ``mlph serve`` starts by default (``--workers``; two per core: a worker's requests share
one interpreter lock, which a page waits for again after each of its database round trips). The pages' standings
are kept per worker and version of the gradebook (:mod:`gradebook.admission.current`), so every worker must see
every change another makes (the audit
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
import multiprocessing
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
from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy import create_engine, insert, select, text

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]  # not the package
from web.settings import default_workers  # noqa: E402

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
    """Groups of GROUP_SIZE students, tutors t0..t9 (round robin) and admin boss; tutor → groups. Then the
    tables' statistics (``ANALYZE``), as PostgreSQL's autovacuum keeps them on a server where it runs (this
    machine's test server runs with ``autovacuum = off``; without statistics the planner takes the fresh tables for
    empty and joins a student's nbgrader scores from the sheet's side)."""
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
    with open_gradebook(url).connect() as conn:
        tables = conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")).scalars()
        conn.execute(text("ANALYZE " + ", ".join(f'"{t}"' for t in tables)))
        conn.commit()
    held: dict[str, list[str]] = {f"t{i}": [] for i in range(TUTORS)}
    for k, g in enumerate(groups):
        held[f"t{k % TUTORS}"].append(g)
    return held


def proc_cpu(chosen: Callable[[int, str, int], bool]) -> dict[int, float]:
    """CPU seconds (user + system) so far of each process for which ``chosen(pid, command name, parent pid)``."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            head, _, tail = stat.read_text().rpartition(")")
            fields = tail.split()
        except OSError:
            continue
        if fields and chosen(int(stat.parent.name), head.partition("(")[2], int(fields[1])):
            found[int(stat.parent.name)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return found


def server_cpu(pid: int) -> float:
    """CPU seconds so far of the server process ``pid`` and its children (the uvicorn workers)."""
    return sum(proc_cpu(lambda p, _name, parent: pid in (p, parent)).values())


def cpu_shares(server: int, clients: set[int]) -> dict[str, dict[int, float]]:
    """CPU seconds so far of each process of the server, of PostgreSQL (every ``postgres`` process on the
    machine: on a quiet machine, this benchmark's) and of the clients (this process and ``clients``)."""
    return {"server": proc_cpu(lambda p, _name, parent: server in (p, parent)),
            "database": proc_cpu(lambda _p, name, _parent: name == "postgres"),
            "clients": proc_cpu(lambda p, _name, _parent: p == os.getpid() or p in clients)}


def cpu_used(before: dict[str, dict[int, float]], after: dict[str, dict[int, float]]) -> dict[str, float]:
    """CPU seconds between two :func:`cpu_shares`, per share; a lower bound: a process that ended in between (a
    database backend whose connection closed) is left out."""
    return {k: sum(cpu - before[k].get(pid, 0.0) for pid, cpu in after[k].items()) for k in before}


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
           out: Outcomes, tabs: int = 2, pause: float = 0.0, grid: Outcomes | None = None,
           first: Outcomes | None = None) -> None:
    """``saves`` saves of random cells (group, student, task) from ``tabs`` tabs, each with its own idea
    of the cells' versions (a tab learns a cell's version only from its own saves' answers); a pause of up
    to ``pause`` s before each save; with ``grid``, the group's grid is loaded first (into ``first`` as well)
    and after every 20 saves."""
    rng = random.Random(seed)
    known: list[dict[tuple[str, str], tuple[int, str]]] = [{} for _ in range(tabs)]
    for k in range(saves):
        if grid is not None and k % 20 == 0:
            timed_page(http, f"/tutor/{SHEET}/{cells[0][0]}", grid, author, first if k == 0 else None)
        time.sleep(rng.uniform(0, pause))
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


def timed_page(http: httpx.Client, path: str, out: Outcomes, who: str, also: Outcomes | None = None) -> None:
    """One GET of a page, its round trip and handler time recorded in ``out`` (an error with its status), and
    in ``also``."""
    t0 = time.perf_counter()
    try:
        r = http.get(path, headers={"accept": "text/html"})
        status: object = r.status_code
    except httpx.HTTPError as exc:
        r, status = None, type(exc).__name__
    elapsed = time.perf_counter() - t0
    for into in (out, also) if also is not None else (out,):
        with into.lock:
            into.latencies.append(elapsed)
            into.server.append(server_time(r) if r is not None else float("nan"))
            if status != 200:
                into.errors.append(f"{who}: {path} {status}")


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


def refresher(http: httpx.Client, student: str, conditional: bool, pause: float, seed: int,
              stop: Any, found: list[tuple[bool, float, float, int]]) -> None:
    """``student``'s dashboard, again and again until ``stop`` is set, a random pause of up to ``pause`` s
    before each: as a browser refreshes it (``conditional``: keeping the page's ETag and sending it back as
    ``If-None-Match``), or with no conditional request. Each: (conditional, round trip, handler time, status)."""
    rng = random.Random(seed)
    tag = None
    while not stop.is_set():
        time.sleep(rng.uniform(0, pause))
        headers = {"accept": "text/html"}
        if conditional and tag:
            headers["if-none-match"] = tag
        t0 = time.perf_counter()
        try:
            r = http.get(f"/students/{student}", headers=headers)
            status, server = r.status_code, server_time(r)
            tag = r.headers.get("etag", tag) if status == 200 else tag
        except httpx.HTTPError:  # a timeout (30 s) counts with its time, as an error
            status, server = 0, float("nan")
        found.append((conditional, time.perf_counter() - t0, server, status))


def refresh_process(base: str, cookie: str, who: list[tuple[str, str, str, bool]], pause: float, seed: int,
                    stop: Any, results: Any) -> None:
    """A client process of its own (its own interpreter lock, apart from the tutors' threads): one thread per
    (student, session token, CSRF token, conditional), until ``stop``; all outcomes put on ``results``."""
    found: list[tuple[bool, float, float, int]] = []
    threads = []
    for k, (sid, token, csrf, conditional) in enumerate(who):
        http = httpx.Client(base_url=base, cookies={cookie: token}, timeout=30, headers={"x-csrf-token": csrf})
        threads.append(threading.Thread(target=refresher, args=(http, sid, conditional, pause, seed + k, stop, found)))
    results.put("ready")
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    results.put(found)


class Refreshers:
    """``n`` students spread over the roster refreshing their dashboards in ``processes`` client processes
    (started at once, stopped by :meth:`stop`); every other one as a browser does (If-None-Match)."""

    def __init__(self, base: str, url: str, students: int, n: int, pause: float, processes: int) -> None:
        from gradebook.store.db import open_gradebook
        from web.security import SESSION_COOKIE
        from web.testing import session_for

        ctx = multiprocessing.get_context("spawn")
        self.stop_event, self.results = ctx.Event(), ctx.Queue()
        ids = [f"s{(k * students) // n:05d}" for k in range(n)]
        who = [(sid, *session_for(open_gradebook(url), sid, hours=2), k % 2 == 0) for k, sid in enumerate(ids)]
        self.procs = [ctx.Process(target=refresh_process, args=(base, SESSION_COOKIE, who[p::processes], pause, 1000 * p,
                                                                self.stop_event, self.results))
                      for p in range(processes)]
        for proc in self.procs:
            proc.daemon = True
            proc.start()
        for _ in self.procs:  # every client process imported and ready before the saves begin
            assert self.results.get(timeout=120) == "ready"

    def stop(self) -> list[tuple[bool, float, float, int]]:
        self.stop_event.set()
        found = [row for _ in self.procs for row in self.results.get(timeout=120)]
        for proc in self.procs:
            proc.join(timeout=30)
        return found


def admin_reader(http: httpx.Client, pages: dict[str, Outcomes], pause: float, stop: threading.Event) -> None:
    """The admin looking at the overview and the admission list in turn, a pause of up to ``pause`` s between."""
    rng = random.Random(5)
    while not stop.is_set():
        for path, out in pages.items():
            timed_page(http, path, out, "boss")
            time.sleep(rng.uniform(0, pause))


def run_saves(base: str, url: str, held: dict[str, list[str]], saves: int, pause: float = 0.0, slot: int = 0,
              grid: Outcomes | None = None, first_grids: Outcomes | None = None) -> Outcomes:
    """Every tutor saving into their ``slot``-th group, the admin into the tutors' first cells, concurrently."""
    out = Outcomes()
    threads = []
    shared: list[tuple[str, str, str]] = []
    for i in range(TUTORS):
        tutor = f"t{i}"
        group = held[tutor][slot]
        first = int(group[1:]) * GROUP_SIZE
        cells = [(group, f"s{first + k:05d}", t) for k in range(GROUP_SIZE) for t in TASKS]
        shared += cells[:12]
        threads.append(threading.Thread(target=grader, args=(client(base, url, tutor), tutor, cells, saves, i, out),
                                        kwargs={"pause": pause, "grid": grid, "first": first_grids}))
    # the admin saves into the tutors' first cells at the same time: real races between requests
    threads.append(threading.Thread(target=grader, args=(client(base, url, "boss"), "boss", shared, saves, 99, out, 1),
                                    kwargs={"pause": pause}))
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
    group = held["t1"][2]  # a group the load phases do not save into
    first = int(group[1:]) * GROUP_SIZE
    cells = [(group, f"s{first + k:05d}", t) for k in range(GROUP_SIZE) for t in TASKS]
    grader(client(base, url, "t1"), "t1", cells, n, 7, out, tabs=1)
    return out


def warm_up(base: str, url: str, held: dict[str, list[str]], students: int) -> float:
    """A server that has been running (as at a deadline): every worker has compiled its templates and
    statements and read the course once. Each tutor loads a grid of their third group (which the load phases do
    not save into) six times, the admin the overview and the admission list four times each from three
    connections, and 40 students' dashboards are read (none of the refreshing students'), all concurrently, so
    that the requests spread over the workers. Returns the seconds it took."""
    def pages(http: httpx.Client, paths: list[str]) -> None:
        for path in paths:
            http.get(path, headers={"accept": "text/html"}).raise_for_status()

    jobs = [(client(base, url, f"t{i}"), [f"/tutor/{SHEET}/{held[f't{i}'][2]}"] * 6) for i in range(TUTORS)]
    jobs += [(client(base, url, "boss"), ["/admin", "/admin/admission"] * 4) for _ in range(3)]
    jobs += [(client(base, url, "boss"), [f"/students/s{students - 1 - k:05d}" for k in range(j, 40, 4)])
             for j in range(4)]
    threads = [threading.Thread(target=pages, args=job) for job in jobs]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - t0


def under_load(base: str, url: str, held: dict[str, list[str]], args: argparse.Namespace, slot: int,
               pause: float, server: int) -> list[str]:
    """One load phase: the tutors' saves (a pause of up to ``pause`` s before each) into their ``slot``-th
    group, while ``args.refreshing`` students refresh their dashboards and the admin reads the overview and the
    admission list, until the saves are done; prints the figures, returns the problems found."""
    pace = "tight loop, no pause" if pause == 0 else f"pause up to {pause:g} s before each save"
    print(f"\nunder load, tutors at {'a human pace' if pause else 'full speed'} ({pace}); load average "
          f"{os.getloadavg()[0]:.1f}:")
    since = datetime.now(timezone.utc)
    storm = Refreshers(base, url, args.students, args.refreshing, args.pause, args.client_processes)
    grid, first, admin = Outcomes(), Outcomes(), {"/admin": Outcomes(), "/admin/admission": Outcomes()}
    stop = threading.Event()
    reader = threading.Thread(target=admin_reader, args=(client(base, url, "boss"), admin, args.admin_pause, stop))
    t0, cpu = time.perf_counter(), cpu_shares(server, {p.pid for p in storm.procs if p.pid is not None})
    reader.start()
    try:
        out = run_saves(base, url, held, args.saves, pause, slot, grid, first)
        wall = time.perf_counter() - t0
        after = cpu_shares(server, {p.pid for p in storm.procs if p.pid is not None})  # before the clients stop
    finally:
        stop.set()
        dash = storm.stop()
        reader.join()
    n = len(out.latencies)
    print(f"saves: {TUTORS} tutors x {args.saves} (two tabs each) + admin {args.saves}, concurrently: {n} saves "
          f"in {wall:.1f} s ({n / wall:.0f}/s); {len(out.written)} stored, {out.unchanged} unchanged, "
          f"{out.conflicts} conflicts, {len(out.errors)} errors")
    summary("save under load", out.latencies, out.server, TARGETS["save p95"])
    errors = [f"dashboard {status}" for *_, status in dash if status not in (200, 304)]
    for conditional, label in ((True, "dashboard, browser (If-None-Match)"), (False, "dashboard, no conditional GET")):
        mine = [(t, srv, st) for c, t, srv, st in dash if c == conditional]
        if mine:
            print(f"{label}: {len(mine)} pages ({sum(st == 304 for *_, st in mine)} answered 304), {args.refreshing // 2}"
                  f" students in {args.client_processes} client processes, pause up to {args.pause:g} s")
            summary(label, [t for t, _, _ in mine], [srv for _, srv, _ in mine], TARGETS["student dashboard"])
    summary(f"tutor grid under load ({len(grid.latencies)})", grid.latencies, grid.server, TARGETS["tutor grid"])
    later = grid.latencies[:]
    for t in first.latencies:
        later.remove(t)
    print(f"  {'':<34} of these, the {len(first.latencies)} tutors' first grids (opened at the same instant): median "
          f"{statistics.median(first.latencies) * 1000:.0f} ms, slowest {max(first.latencies) * 1000:.0f} ms; the "
          f"others: median {statistics.median(later) * 1000:.0f} ms, p95 {percentile(later, 95) * 1000:.0f} ms")
    for path, pages_ in admin.items():
        if pages_.latencies:
            summary(f"{path} under load ({len(pages_.latencies)})", pages_.latencies, pages_.server,
                    TARGETS["admin overview"])
    used = cpu_used(cpu, after)
    requests = n + len(dash) + len(grid.latencies) + sum(len(o.latencies) for o in admin.values())
    print(f"  (load average at the end of the phase: {os.getloadavg()[0]:.1f}; {len(dash) / wall:.0f} dashboards/s; "
          f"the server's workers used {used['server']:.1f} CPU-s in {wall:.1f} s for {requests} requests, "
          f"{used['server'] / max(requests, 1) * 1000:.1f} ms each; PostgreSQL at least {used['database']:.1f} CPU-s "
          f"({used['database'] / max(requests, 1) * 1000:.1f} ms a request), the clients {used['clients']:.1f}: "
          f"at least {sum(used.values()) / wall:.2f} of the {os.cpu_count()} cores busy)")
    return out.errors[:5] + errors[:5] + grid.errors[:5] + check_audit(url, out, since)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--students", type=int, default=1000)
    ap.add_argument("--sheets", type=int, default=12)
    ap.add_argument("--saves", type=int, default=60, help="saves per tutor (and by the admin)")
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--workers", type=int, default=default_workers(), help="uvicorn workers (default: as `mlph serve`)")
    ap.add_argument("--refreshing", type=int, default=100, help="students refreshing their dashboards during the saves")
    ap.add_argument("--pause", type=float, default=1.0, help="longest pause (s) before a refresh")
    ap.add_argument("--tutor-pause", type=lambda v: [float(x) for x in v.split(",")], default=[1.0, 0.0],
                    help="longest pause (s) before a tutor's save, one load phase per value (at most 2): 1,0")
    ap.add_argument("--admin-pause", type=float, default=2.0, help="longest pause (s) between the admin's pages")
    ap.add_argument("--client-processes", type=int, default=2, help="processes the refreshing students run in")
    ap.add_argument("--pg", default=os.environ.get("MLPH_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test"))
    args = ap.parse_args()
    if not 1 <= len(args.tutor_pause) <= 2:
        sys.exit("--tutor-pause: one or two values (each phase saves into another of the tutors' groups)")
    if args.students < (3 * TUTORS - 1) * GROUP_SIZE + 1:
        sys.exit(f"at least {(3 * TUTORS - 1) * GROUP_SIZE + 1} students: every tutor holds three groups here")
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
            print(f"warm-up (a running server: each worker's templates, statements and course read once): "
                  f"{warm_up(base, url, held, args.students):.1f} s")
            problems: list[str] = []
            for slot, pause in enumerate(args.tutor_pause):
                problems += under_load(base, url, held, args, slot, pause, proc.pid)
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
