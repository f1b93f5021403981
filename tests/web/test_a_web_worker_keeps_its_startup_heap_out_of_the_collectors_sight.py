"""A web worker (uvicorn's factory, ``web.app:app_from_env``) moves what it holds once its application is made out
of the garbage collector's sight: a full collection no longer walks the modules, tables and routes (about 200 000
objects, some 70 ms with the worker's interpreter lock held), and what the application made is frozen with it."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from gradebook.store.db import open_gradebook

PROBE = """
import gc, json
from web.app import app_from_env, iter_routes
app = app_from_env()
print(json.dumps({"frozen": gc.get_freeze_count(), "tracked": len(gc.get_objects()), "routes": len(iter_routes(app))}))
"""


def test_the_factory_freezes_the_application_it_made(course_factory: Any, tmp_path: Path) -> None:
    cfg = course_factory()
    open_gradebook(cfg.db_url)  # the web application opens an existing gradebook only
    found = subprocess.run([sys.executable, "-c", PROBE], env=dict(os.environ, MLPH_ROOT=str(cfg.root)),
                           capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert found.returncode == 0, found.stderr[-2000:]
    probe = json.loads(found.stdout.strip().splitlines()[-1])
    assert probe["routes"] > 20
    assert probe["frozen"] > 100_000  # the modules, tables and routes
    assert probe["tracked"] < probe["frozen"] / 10  # what a full collection still walks
