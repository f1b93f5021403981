"""``CourseConfig.manifest`` (asked on every grid, save and hand-in page) reads the sheet's file each time but
parses it only when its bytes changed: an edit counts at once, even one of the same size within the file
system's timestamp tick; line endings are read as before; a missing or undecodable file is a clear error."""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from gradebook.course.config import CourseConfig
from gradebook.errors import ConfigError, ManifestError


def test_an_unchanged_file_is_parsed_once_an_edit_counts_at_once(course_factory: Callable[..., CourseConfig]) -> None:
    cfg = course_factory()
    path = cfg.root / "source" / "tiny01" / "sheet.toml"
    first = cfg.manifest("tiny01")
    assert cfg.manifest("tiny01") is first
    text = path.read_text(encoding="utf-8")
    assert 'title = "A proof"' in text
    path.write_text(text.replace('title = "A proof"', 'title = "B proof"'), encoding="utf-8")  # the same size
    edited = cfg.manifest("tiny01")
    assert edited is not first and [t.title for t in edited.paper_tasks] == ["B proof"]
    path.write_text(text, encoding="utf-8")
    assert [t.title for t in cfg.manifest("tiny01").paper_tasks] == ["A proof"]


def test_windows_line_endings_read_as_before(course_factory: Callable[..., CourseConfig]) -> None:
    cfg = course_factory()
    path = cfg.root / "source" / "tiny01" / "sheet.toml"
    plain = cfg.manifest("tiny01")
    text = path.read_text(encoding="utf-8") + '\n[[task]]\nid = "derive"\nkind = "paper"\npoints = 1\n' \
                                               'solution = """first\nsecond"""\n'
    path.write_bytes(text.replace("\n", "\r\n").encode("utf-8"))
    windows = cfg.manifest("tiny01")
    assert windows.paper_tasks[-1].solution == "first\nsecond"
    assert windows.due == plain.due and [t.id for t in windows.tasks][:-1] == [t.id for t in plain.tasks]


def test_a_replaced_config_parses_with_its_own_settings(course_factory: Callable[..., CourseConfig]) -> None:
    cfg = course_factory()
    kept = cfg.manifest("tiny01")
    other = dataclasses.replace(cfg, late_default={"policy": "accept"})
    assert other.manifest("tiny01") is not kept
    assert cfg.manifest("tiny01") is kept


@pytest.mark.parametrize("damage", ["missing", "binary"])
def test_a_missing_or_undecodable_file_is_a_clear_error(course_factory: Callable[..., CourseConfig],
                                                        damage: str) -> None:
    cfg = course_factory()
    path = cfg.root / "source" / "tiny01" / "sheet.toml"
    cfg.manifest("tiny01")
    error: Any
    if damage == "missing":
        path.unlink()
        error = ConfigError
    else:
        path.write_bytes(b'id = "tiny01"\ntitle = "\xff\xfe"\n')
        error = ManifestError
    with pytest.raises(error) as raised:
        cfg.manifest("tiny01")
    assert "tiny01" in str(raised.value)
    assert ("no " if damage == "missing" else "not UTF-8") in str(raised.value)
