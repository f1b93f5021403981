"""The server's CPU per request of the hot pages: uvicorn with one worker over PostgreSQL (127.0.0.1), the
course of ``benchmarks/web.py`` (1000 students x 12 sheets), one client sending one request after the other.

For each page: requests per second (round trips, one at a time) and the worker's CPU per request (user + system,
from /proc, so that the client's own CPU and the machine's load do not count): the static-file floor, a
student's dashboard answered 304 (a browser's refresh, If-None-Match), the same dashboard sent from the
worker's page cache (200, nothing rendered), the first dashboard of each of ``--students-first`` students
(200, read and rendered), a tutor's grid of 30 students and the admin overview.

    .venv/bin/python benchmarks/page_cost.py [--n 400] [--keep]      # --keep: print the schema, keep it
    .venv/bin/python benchmarks/page_cost.py --schema bench_web_x --root /tmp/dir   # reuse a kept course

An A/B of two versions of the code on the same course: run it twice back to back with ``PYTHONPATH`` set to the
other checkout (the server is started with this interpreter and environment).
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]  # benchmarks/gradebook.py is not the package


def _web_benchmark() -> Any:
    spec = importlib.util.spec_from_file_location("bench_web", HERE / "web.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_web"] = module
    spec.loader.exec_module(module)
    return module


def measure(bw: Any, pid: int, http: httpx.Client, paths: list[str], headers: dict[str, str]) -> tuple[float, float, int]:
    """(requests per second, the worker's CPU ms per request, the last status) of GETs of ``paths`` in turn."""
    cpu, t0 = bw.server_cpu(pid), time.perf_counter()
    status = 0
    for path in paths:
        status = http.get(path, headers=headers).status_code
    wall, used = time.perf_counter() - t0, bw.server_cpu(pid) - cpu
    return len(paths) / wall, used / len(paths) * 1000, status


def run(bw: Any, base: str, url: str, pid: int, n: int, first: int) -> None:
    html = {"accept": "text/html"}
    student, tutor, admin = (bw.client(base, url, who) for who in ("s00001", "t0", "boss"))
    for _ in range(2):
        r = student.get("/students/s00001", headers=html)
    tag = r.headers["etag"]
    staff = bw.client(base, url, "boss")  # an admin reads any student's dashboard
    cases: list[tuple[str, httpx.Client, list[str], dict[str, str]]] = [
        ("static file (floor)", student, ["/static/grid.css"] * n, {}),
        ("dashboard 304 (If-None-Match)", student, ["/students/s00001"] * n, {**html, "if-none-match": tag}),
        ("dashboard 200 from the page cache", student, ["/students/s00001"] * n, html),
        (f"dashboard 200, first of {first} students", staff, [f"/students/s{k:05d}" for k in range(100, 100 + first)],
         html),
        ("tutor grid (30 students)", tutor, [f"/tutor/{bw.SHEET}/g00"] * max(n // 10, 10), html),
        ("admin overview (1000)", admin, ["/admin"] * max(n // 20, 10), html),
    ]
    print(f"one request at a time; load average {os.getloadavg()[0]:.1f}")
    for name, http, paths, headers in cases:
        http.get(paths[0], headers=headers)  # warm
        rate, cpu, status = measure(bw, pid, http, paths, headers)
        print(f"  {name:<38} {status}  {rate:7.0f} requests/s   server CPU {cpu:6.2f} ms per request  (n={len(paths)})")
    print(f"load average after: {os.getloadavg()[0]:.1f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=400, help="requests per dashboard case")
    ap.add_argument("--students-first", type=int, default=100)
    ap.add_argument("--schema", help="a course kept by an earlier --keep run")
    ap.add_argument("--root", help="its course directory")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--pg", default=os.environ.get("MLPH_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test"))
    args = ap.parse_args()
    if "127.0.0.1" not in args.pg and "localhost" not in args.pg:
        sys.exit("the benchmark runs against a local server only (127.0.0.1)")
    bw = _web_benchmark()
    schema = args.schema or f"bench_web_{uuid.uuid4().hex[:10]}"
    url = f"{args.pg}?options=-csearch_path%3D{schema}"
    root = Path(args.root or tempfile.mkdtemp(prefix="mlph-bench-cost-"))
    admin_engine = create_engine(args.pg)
    if not args.schema:
        with admin_engine.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        builder = bw._builder()
        builder.write_course(root, 12)
        bw.fill(builder, url, 1000, 12)
        bw.staff_and_groups(url, 1000)
        print(f"course built: --schema {schema} --root {root}")
    proc, base = bw.start_server(root, url, 1)
    try:
        run(bw, base, url, proc.pid, args.n, args.students_first)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        if not (args.keep or args.schema):
            with admin_engine.begin() as conn:
                conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin_engine.dispose()


if __name__ == "__main__":
    main()
