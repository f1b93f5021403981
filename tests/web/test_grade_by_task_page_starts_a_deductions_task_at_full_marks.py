"""The grade-by-task page of a task scored by deductions tells its script where a grading starts (the task's
maximum, so the running total with nothing ticked is full marks) and says so in the rubric's legend; a task
scored by points starts at 0. A save with nothing ticked stores full marks."""
from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from coursefactory import deductions_course
from test_tutor_grid_pages import _client, grid_course  # type: ignore[import-not-found]
from gradebook.course.config import CourseConfig
from gradebook.store.db import atomic, open_gradebook
from gradebook.store.models import Handin


def _data(page: str) -> dict[str, Any]:
    found = re.search(r'<script type="application/json" id="queue-data">(.*?)</script>', page, re.S)
    assert found is not None
    return json.loads(found.group(1))  # type: ignore[no-any-return]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_page_starts_a_deductions_task_at_its_maximum(gradebook_course: CourseConfig, tmp_path: Path) -> None:
    from web.app import create_app

    cfg = grid_course(deductions_course(gradebook_course), tmp_path)
    with atomic(open_gradebook(cfg.db_url)) as session:
        session.add(Handin(sheet="tiny01", student_id="ab1", kind="paper", source="web", status="accepted",
                           received_at=datetime.now(timezone.utc), stored_path="handins/ab1.pdf", size=10))
    tina = _client(create_app(cfg), "tutor1")
    page = tina.get("/tutor/grade/tiny01/derive", headers={"accept": "text/html"}).text
    assert (_data(page)["start"], _data(page)["max"]) == ("4", "4") and "starting from full marks 4" in page
    saved = tina.post("/tutor/grade/tiny01/derive", json={"student": "ab1", "ticks": [], "version": 0})
    assert saved.status_code == 200 and saved.json()["cell"]["points"] == "4"
    proof = tina.get("/tutor/grade/tiny01/proof", headers={"accept": "text/html"}).text
    assert _data(proof)["start"] == "0" and "starting from full marks" not in proof
