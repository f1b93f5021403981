"""A sheet that is not released takes no hand-in by any way in: the exchange collector and the LMS zip import
refuse it with a message for the instructor and record nothing (the web upload answers 404, see
tests/web/test_unreleased_sheets_do_not_exist_for_students.py); the released sheet is collected as before."""
from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from autograder.intake.exchange import collect
from autograder.intake.safe import IntakeRefused
from autograder.intake.zipimport import import_zip
from autograder.nbgrader_bridge import generate
from gradebook.people.roster import import_students
from gradebook.store.db import open_gradebook
from gradebook.store.models import Handin
from intake_course import entry, lms_zip, notebook


def test_collect_and_zip_refuse_an_unreleased_sheet(course_factory: Any, tmp_path: Any) -> None:
    cfg = course_factory(tiny=("tiny01", "tiny02"))
    generate(cfg, "tiny01")  # tiny02 is authored but never released
    (cfg.root / "r.csv").write_text("student_id,last_name,first_name,email\nann,Aal,Ann,ann@uni.de\n")
    engine = open_gradebook(cfg.db_url)
    import_students(engine, cfg.root / "r.csv")
    entry(cfg, "ann", {"tiny01.ipynb": notebook(cfg)})
    with pytest.raises(IntakeRefused, match="tiny02 is not released"):
        collect(cfg, engine, "tiny02")
    (tmp_path / "lms.zip").write_bytes(lms_zip({"Ann Aal_1_assignsubmission_file_/tiny02.ipynb": notebook(cfg)}))
    with pytest.raises(IntakeRefused, match="tiny02 is not released"):
        import_zip(cfg, engine, "tiny02", tmp_path / "lms.zip")
    with Session(engine) as s:
        assert s.execute(select(func.count()).select_from(Handin).where(Handin.sheet == "tiny02")).scalar_one() == 0
    assert collect(cfg, engine, "tiny01").accepted == ["ann"]
