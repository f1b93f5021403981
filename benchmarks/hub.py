"""Benchmark of JupyterHub as the front door: a real Hub, its proxy and ``mlph serve`` on 127.0.0.1
(the tests' course: tests/hubcourse.py, set up with the lines ``mlph hub-config`` prints).

- Hub login round trip to the student's dashboard: log in to the Hub (its form), open mlph's Hub login,
  the OAuth redirects (authorize → callback → session) and the dashboard page; a fresh client each time.
  Target (anchors G-Hub-3): p95 <= 1 s.
- A 1 MiB notebook handed in through the exchange's HTTP API with a student server's token and accepted
  (checked and stored by the intake, no grading), through the Hub's proxy and directly; against the floor
  of the same intake call in-process (``accept_upload``: the checks and the fsync'ed write). Target: p95 <= 200 ms.
- Hand-in to feedback visible (what the Assignments tab lists as "feedback ready") with grade-on-submit
  (``mlph autograde SHEET --watch``: the hand-in queues its job and wakes the watcher, no polling interval) against the notebook's own execution (its code
  cells by plain ``exec``). Target: <= that + 2 s.

    .venv/bin/python benchmarks/hub.py [--logins 20] [--handins 50] [--feedback 2]
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parents[1]
# benchmarks/gradebook.py must not shadow the package; the tests' course (hubcourse, coursefactory)
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.append(str(REPO / "tests"))

from autograder.hub import harness, protocol  # noqa: E402
from hubcourse import HubCourse, start_hub_course  # noqa: E402


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


def line(what: str, values: list[float], target: str = "") -> None:
    ms = [v * 1000 for v in values]
    print(f"{what}: median {statistics.median(ms):.1f} ms, p95 {p95(ms):.1f} ms (n={len(ms)}){target}", flush=True)


def login_round_trip(hc: HubCourse, user: str) -> float:
    start = time.perf_counter()
    s = requests.Session()
    page = s.get(f"{hc.hub.url}/hub/login", timeout=30)
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text)
    assert xsrf, "no _xsrf on the Hub's login page"
    r = s.post(f"{hc.hub.url}/hub/login?next=/hub/home", data={"_xsrf": xsrf.group(1), "username": user,
                                                                "password": harness.PASSWORD}, timeout=30,
               allow_redirects=False)
    assert r.status_code == 302, r.status_code
    dash = s.get(f"{hc.public_url}/login/hub?next=/", timeout=30)
    elapsed = time.perf_counter() - start
    assert dash.status_code == 200 and dash.url.endswith("/services/mlph/students/ab1"), (dash.status_code, dash.url)
    assert "Anna" in dash.text
    return elapsed


def notebook_of_size(hc: HubCourse, size: int, solved: bool = True) -> bytes:
    import nbformat

    from coursefactory import TINY_ANSWER

    nb = nbformat.read(hc.cfg.release_dir / "tiny01" / "tiny01.ipynb", as_version=4)
    for cell in nb.cells:
        if solved and cell.metadata.get("nbgrader", {}).get("grade_id") == "scale_solution":
            cell.source = "\n".join(ln for ln in TINY_ANSWER.splitlines() if "SOLUTION" not in ln)
    base = nbformat.writes(nb)
    if size > len(base):
        nb.cells.append(nbformat.v4.new_markdown_cell("x" * (size - len(base) - 200)))
    return nbformat.writes(nb).encode()


def hand_in(url: str, token: str, data: bytes) -> float:
    start = time.perf_counter()
    r = requests.post(f"{url}/{protocol.sheet_submissions('tiny01')}", headers={"Authorization": f"token {token}"},
                      files={"file": ("tiny01.ipynb", data)}, timeout=60)
    elapsed = time.perf_counter() - start
    assert r.status_code == 201, r.text
    return elapsed


def intake_floor(hc: HubCourse, data: bytes, n: int) -> list[float]:
    from autograder.intake.upload import accept_upload
    from gradebook.store.db import open_gradebook

    engine = open_gradebook(hc.cfg.db_url)
    times = []
    for _ in range(n):
        start = time.perf_counter()
        rec = accept_upload(hc.cfg, engine, sheet="tiny01", student="cd2", kind="notebook", filename="tiny01.ipynb",
                            data=data, uploaded_by="bench")
        times.append(time.perf_counter() - start)
        assert rec.status == "accepted", rec.reason
    return times


def exec_time(data: bytes, release: Path) -> float:
    """The notebook's own work: its code cells by plain exec, in one namespace (the physical limit)."""
    nb = json.loads(data)
    code = "\n".join("".join(c["source"]) if isinstance(c["source"], list) else c["source"]
                     for c in nb["cells"] if c["cell_type"] == "code")
    if str(release) not in sys.path:
        sys.path.insert(0, str(release))  # mlph_check, as the fetched sheet has it
    with contextlib.redirect_stdout(io.StringIO()):  # the checks' records, printed outside a kernel
        start = time.perf_counter()
        exec(compile(code, "notebook", "exec"), {})  # noqa: S102 - our own benchmark notebook
        return time.perf_counter() - start


def feedback_latency(hc: HubCourse, tokens: list[str], data: bytes) -> list[float]:
    """One hand-in per student (the sheet's grading rate grades a student's first run at once, later ones
    at their turn), each timed from the POST to its feedback listed as ready."""
    env = {**hc.env, "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"}
    log = open(hc.hub.workdir.parent / "watch.log", "wb")
    watch = subprocess.Popen([str(Path(sys.executable).parent / "mlph"), "autograde", "tiny01", "--watch",
                              "--workers", "1", "--no-progress"], cwd=hc.cfg.root, env=env, stdout=log,
                             stderr=subprocess.STDOUT)
    times = []
    try:
        time.sleep(15)  # the watcher's pool and kernel up before the first hand-in
        for i, token in enumerate(tokens):
            nb = json.loads(data)  # a new version each time (the same content is not graded again)
            nb["cells"].append({"cell_type": "markdown", "metadata": {}, "source": f"version {i} {time.time()}"})
            body = json.dumps(nb).encode()
            start = time.perf_counter()
            r = requests.post(f"{hc.public_url}/{protocol.sheet_submissions('tiny01')}",
                              headers={"Authorization": f"token {token}"}, files={"file": ("tiny01.ipynb", body)},
                              timeout=60)
            assert r.status_code == 201, r.text
            stamp = r.json()["timestamp"]
            while time.perf_counter() - start < 120:
                subs = requests.get(f"{hc.public_url}/{protocol.SUBMISSIONS}", headers={"Authorization": f"token {token}"},
                                    timeout=30).json()["submissions"]
                if any(s["timestamp"] == stamp and s["feedback_sha256"] for s in subs):
                    break
                time.sleep(0.05)
            else:
                raise TimeoutError(f"no feedback after 120 s; see {log.name}")
            times.append(time.perf_counter() - start)
    finally:
        watch.terminate()
        try:
            watch.wait(30)
        except subprocess.TimeoutExpired:
            watch.kill()
            watch.wait(5)
        log.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--logins", type=int, default=20)
    parser.add_argument("--handins", type=int, default=50)
    parser.add_argument("--feedback", type=int, default=2, choices=(1, 2), help="students handing in once each")
    args = parser.parse_args()
    why = harness.missing_parts()
    if why:
        sys.exit(f"cannot start a Hub: {why}")
    # one student hands in 100+ times here: the course's bounds on a student's uploads (6 a minute, 200 MB a
    # sheet) are lifted for the benchmark, so that every request is measured, none throttled
    gen = start_hub_course(Path(tempfile.mkdtemp(prefix="mlph-hub-bench-")),
                           intake="uploads_per_minute = 100000\nupload_mb_per_sheet = 100000")
    t0 = time.perf_counter()
    hc: HubCourse = next(gen)
    print(f"Hub {hc.hub.url}, mlph serve {hc.service_url}: up in {time.perf_counter() - t0:.1f} s", flush=True)
    try:
        login_round_trip(hc, "alice")  # warm-up (first OAuth client use, first account)
        logins = [login_round_trip(hc, "alice") for _ in range(args.logins)]
        line("Hub login round trip to the dashboard", logins, f"; target p95 <= 1000 ms: "
             f"{'met' if p95(logins) <= 1.0 else 'NOT met'}")

        token = hc.server_env("cd2")["JUPYTERHUB_API_TOKEN"]
        mib = notebook_of_size(hc, 1024 * 1024)
        assert abs(len(mib) - 1024 * 1024) < 4096, len(mib)
        first = hand_in(hc.public_url, token, mib)  # the Hub is asked about the token (then cached <= 60 s)
        print(f"1 MiB hand-in, first with this token (the Hub asked): {first * 1000:.1f} ms", flush=True)
        proxied = [hand_in(hc.public_url, token, mib) for _ in range(args.handins)]
        direct = [hand_in(f"{hc.service_url}/services/mlph", token, mib) for _ in range(args.handins)]
        floor = intake_floor(hc, mib, args.handins)
        line("1 MiB hand-in accepted, through the Hub's proxy", proxied,
             f"; target p95 <= 200 ms: {'met' if p95(proxied) <= 0.2 else 'NOT met'}")
        line("1 MiB hand-in accepted, direct to mlph serve", direct)
        line("floor: the same intake call in-process (checks + fsync'ed write)", floor)
        print(f"ratio proxied/floor (medians): {statistics.median(proxied) / statistics.median(floor):.2f}", flush=True)

        solved = notebook_of_size(hc, 0)
        own = min(exec_time(solved, hc.cfg.release_dir / "tiny01") for _ in range(3))
        access = "access:services!service=mlph"
        # students with no graded run yet (cd2's 1 MiB hand-ins above would take its first run)
        students = [hc.hub.user_token(user, [access]) for user in ("alice", "ef3")]
        lat = feedback_latency(hc, students[:args.feedback], solved)
        line("hand-in to feedback visible (grade-on-submit, --watch woken by the queue)", lat,
             f"; the notebook's own exec {own * 1000:.1f} ms; target <= exec + 2000 ms: "
             f"{'met' if max(lat) <= own + 2.0 else 'NOT met'}")
    finally:
        try:
            next(gen)
        except StopIteration:
            pass


if __name__ == "__main__":
    main()
