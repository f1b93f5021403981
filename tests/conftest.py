from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from coursefactory import make_course
from gradebook.config import CourseConfig, load_config


@pytest.fixture
def course_factory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., CourseConfig]]:
    """Build a course in tmp_path and point every `mlph` entry point at it (MLPH_ROOT etc.)."""

    def build(**kw: Any) -> CourseConfig:
        root = make_course(tmp_path / "course", **kw)
        monkeypatch.setenv("MLPH_ROOT", str(root))
        monkeypatch.setenv("MLPH_COURSE_DIR", str(tmp_path / "data"))
        monkeypatch.delenv("MLPH_DB_URL", raising=False)
        monkeypatch.chdir(root)
        return load_config(root)

    yield build
