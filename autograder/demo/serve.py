"""`mlph demo --serve`: the demo's course on the web, with logins for one student, one tutor and one admin, and
the grade-on-submit watcher beside it, until Ctrl-C."""
from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gradebook.course.config import CourseConfig
from gradebook.store.db import open_gradebook


def serve_demo(cfg: CourseConfig, port: int, say: Callable[[str], Any]) -> None:
    import uvicorn

    from web.demo import prepare_demo_logins

    logins = prepare_demo_logins(cfg, open_gradebook(cfg.db_url))
    os.environ["MLPH_COURSE_DIR"] = str(cfg.data_dir)  # the app and the watcher find the demo's course
    os.environ.setdefault("MLPH_DB_URL", cfg.db_url)
    sheets = [s.id for s in cfg.semester if s.manifest is not None]
    mlph = str(Path(sys.executable).with_name("mlph"))
    watcher = subprocess.Popen([mlph, "autograde", *sheets, "--watch"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.STDOUT)
    say(f"\nthe demo's course on http://127.0.0.1:{port}  (grade-on-submit running; Ctrl-C stops both)")
    for role, (user, password) in logins.items():
        say(f"  {role:8s} user {user:14s} password {password}")
    try:
        uvicorn.run("web.app:app_from_env", factory=True, host="127.0.0.1", port=port, log_level="warning")
    finally:
        watcher.terminate()
        watcher.wait(30)
