"""`mlph demo --serve`: the demo's course on the web, with logins for one student, one tutor and one admin, and
the grader beside it (`mlph serve --grade`), until Ctrl-C."""
from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from gradebook.course.config import CourseConfig
from gradebook.store.db import open_gradebook


def serve_demo(cfg: CourseConfig, port: int, say: Callable[[str], Any]) -> None:
    from autograder.grading.watcher import log_path
    from web.app import serve_app
    from web.demo import prepare_demo_logins

    logins = prepare_demo_logins(cfg, open_gradebook(cfg.db_url))
    os.environ["MLPH_COURSE_DIR"] = str(cfg.data_dir)  # the app and the grader find the demo's course
    os.environ.setdefault("MLPH_DB_URL", cfg.db_url)
    say(f"\nthe demo's course on http://127.0.0.1:{port}  (the grader runs beside it, log {log_path(cfg)}; "
        "Ctrl-C stops both)")
    for role, (user, password) in logins.items():
        say(f"  {role:8s} user {user:14s} password {password}")
    serve_app(cfg, "127.0.0.1", port, grade=True, log_level="warning")
