"""An extension moves a student's deadline later; one ending at or before the sheet's deadline is refused,
with both times in the course's zone, and nothing is written."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session

from autograder.cli import main
from gradebook.errors import InputError
from gradebook.points.manual import set_extension
from gradebook.store.db import open_gradebook
from gradebook.store.models import AuditLog, Extension


def test_an_extension_before_the_deadline_is_refused(gradebook_course):
    cfg = gradebook_course  # tiny01 due 2026-11-04T10:00 Europe/Berlin (09:00 UTC)
    engine = open_gradebook(cfg.db_url)
    with pytest.raises(InputError, match=r"extension of tiny01 for 'ab1': 2026-11-03 10:00 CET is not after the "
                                         r"sheet's deadline 2026-11-04 10:00 CET"):
        set_extension(engine, "tiny01", "ab1", datetime(2026, 11, 3, 9, tzinfo=timezone.utc), "prof", "ill", cfg)
    with pytest.raises(InputError, match="not after the sheet's deadline"):  # the deadline itself extends nothing
        set_extension(engine, "tiny01", "ab1", datetime(2026, 11, 4, 9, tzinfo=timezone.utc), "prof", "ill", cfg)
    result = CliRunner().invoke(main, ["extension", "tiny01", "ab1", "2026-11-01T10:00", "--reason", "ill"])
    assert result.exit_code == 2 and "is not after the sheet's deadline 2026-11-04 10:00 CET" in result.output
    with Session(engine) as s:
        assert s.execute(select(Extension)).first() is None
        assert s.execute(select(AuditLog).where(AuditLog.entity == "extension")).first() is None
    set_extension(engine, "tiny01", "ab1", datetime(2026, 11, 4, 9, 1, tzinfo=timezone.utc), "prof", "ill", cfg)
    with Session(engine) as s:
        row = s.execute(select(Extension)).scalar_one()
        assert row.until.replace(tzinfo=timezone.utc) == datetime(2026, 11, 4, 9, 1, tzinfo=timezone.utc)


def test_an_extension_must_end_after_the_students_group_deadline(gradebook_course):
    import dataclasses

    from gradebook.course.config import load_config
    from web.testing import setup_web_course

    path = gradebook_course.root / "source" / "tiny01" / "sheet.toml"
    path.write_text(path.read_text().replace("[late]", '[deadlines]\ng2 = "+2d"\n\n[late]'))
    cfg = dataclasses.replace(load_config(gradebook_course.root, gradebook_course.data_dir), db_url=gradebook_course.db_url)
    setup_web_course(cfg)  # cd2 is in group g2, which meets two days later
    engine = open_gradebook(cfg.db_url)
    with pytest.raises(InputError, match=r"2026-11-05 10:00 CET is not after group g2's deadline 2026-11-06 10:00 CET"):
        set_extension(engine, "tiny01", "cd2", datetime(2026, 11, 5, 9, tzinfo=timezone.utc), "prof", "ill", cfg)
    set_extension(engine, "tiny01", "ab1", datetime(2026, 11, 5, 9, tzinfo=timezone.utc), "prof", "ill", cfg)  # g1
    set_extension(engine, "tiny01", "cd2", datetime(2026, 11, 7, 9, tzinfo=timezone.utc), "prof", "ill", cfg)
    with Session(engine) as s:
        assert sorted(s.execute(select(Extension.student_id)).scalars()) == ["ab1", "cd2"]
