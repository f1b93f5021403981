"""Helpers for gradebook tests: autograded scores written as the autograder writes them."""
from __future__ import annotations

from datetime import datetime, timezone
from fractions import Fraction

from gradebook.points.autograde_store import store_result
from gradebook.store.db import open_gradebook


def autograded(cfg, sheet: str, student: str, visible: Fraction, more: Fraction,
               when: datetime = datetime(2026, 11, 3, 12, tzinfo=timezone.utc)) -> None:
    """Store an autograde result with the given points on the tiny sheet's two test cells."""
    cells = [{"grade_id": "test_scale_visible", "points": str(visible), "max_points": "1", "status": "passed",
              "message": ""},
             {"grade_id": "test_scale_more", "points": str(more), "max_points": "2", "status": "passed", "message": ""}]
    store_result(open_gradebook(cfg.db_url), {
        "sheet": sheet, "student": student, "status": "graded", "reason": "", "fingerprint": "f" * 64,
        "submitted_at": when.isoformat(), "cells": cells, "score": str(visible + more), "max_score": "3"})
