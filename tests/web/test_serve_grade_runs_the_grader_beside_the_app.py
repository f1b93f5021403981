"""`mlph serve --grade`: the web application and the grader under one command; a hand-in is graded while it
runs, the grader announces itself (heartbeat) and logs to the course's data directory, and stops with it."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import select
from sqlalchemy.orm import Session

from autograder.intake.upload import accept_upload
from autograder.nbgrader_bridge import generate, release
from coursefactory import TINY_ANSWER, student_notebook
from gradebook.store.db import open_gradebook
from gradebook.store.models import AutogradeResult, Grader


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _until(what: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (found := what()):
            return found
        time.sleep(0.1)
    return None


def test_serve_grade_grades_hand_ins_and_stops_its_grader_with_it(course_factory: Any, tmp_path: Path) -> None:
    cfg = course_factory(due="2099-01-01T10:00:00")
    generate(cfg, "tiny01")
    release(cfg, "tiny01")
    engine = open_gradebook(cfg.db_url)
    port = _free_port()
    out = (tmp_path / "serve.out").open("wb")
    server = subprocess.Popen([str(Path(sys.executable).parent / "mlph"), "serve", "--grade", "--port", str(port)],
                              env=dict(os.environ, MLPH_ROOT=str(cfg.root)), stdout=out, stderr=subprocess.STDOUT)
    try:
        def up() -> bool:
            try:
                return requests.get(f"http://127.0.0.1:{port}/login", timeout=2).status_code == 200
            except requests.RequestException:
                return False

        def grader() -> Grader | None:
            with Session(engine) as session:
                return session.scalars(select(Grader).where(Grader.stopped_at.is_(None))).first()

        assert _until(up, 60), (tmp_path / "serve.out").read_text()[-2000:]
        running = _until(grader, 60)
        assert running is not None and running.pid != server.pid  # a child beside the web server
        rec = accept_upload(cfg, engine, sheet="tiny01", student="ann", kind="notebook", filename="tiny01.ipynb",
                            data=student_notebook(cfg, TINY_ANSWER), uploaded_by="ann")
        assert rec.status == "accepted"

        def graded() -> str | None:
            with Session(engine) as session:
                return session.scalar(select(AutogradeResult.score).where(AutogradeResult.student_id == "ann"))

        assert _until(graded, 90) == "3"
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(60)
        out.close()
    with Session(engine) as session:
        row = session.get(Grader, running.id)
        assert row is not None and row.stopped_at is not None and row.jobs_done == 1
    assert _until(lambda: not Path(f"/proc/{running.pid}").exists(), 30)
    assert "ann: 3 / 3 points (graded)" in (cfg.data_dir / "logs" / "grader.log").read_text()
