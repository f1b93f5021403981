"""Every time is stored as UTC, converted where it enters: a hand-in through each way in (web upload, filesystem
exchange, LMS zip, whose times are the LMS's local wall clock) 30 minutes before and 20 minutes after the deadline
(past the 15 minutes' grace) is on time and late, in winter (CET) and summer (CEST), on SQLite and PostgreSQL:
the stored record, the time the grader reads with the files, the decision and the stored result agree."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from autograder.grading.pipeline import discover
from autograder.grading.run import autograde
from autograder.intake.exchange import collect
from autograder.intake.upload import accept_upload
from autograder.intake.zipimport import import_zip
from gradebook.points.handins import decide_late, latest_handins
from gradebook.store.db import open_gradebook
from gradebook.store.models import AutogradeResult
from intake_course import LIMITS, entry, lms_zip, make, notebook

STUDENTS = {"webin": "Wanda Webin", "webout": "Walt Webout", "exin": "Emma Exin", "exout": "Egon Exout",
            "zipin": "Zora Zipin", "zipout": "Zack Zipout"}
SEASONS = {"winter": ("2026-11-04T10:00:00", timedelta(hours=1)), "summer": ("2027-06-10T10:00:00", timedelta(hours=2))}


@pytest.mark.parametrize("season", sorted(SEASONS))
def test_each_way_in_is_on_time_before_and_late_after_the_deadline(course_factory, db_url, season, tmp_path):
    due_local, offset = SEASONS[season]
    cfg = make(course_factory, STUDENTS, due=due_local, db_url=db_url)
    engine = open_gradebook(cfg.db_url)
    manifest = cfg.manifest("tiny01")
    due_utc = datetime.fromisoformat(due_local).replace(tzinfo=timezone.utc) - offset
    assert manifest.due == due_utc
    at = {"in": due_utc - timedelta(minutes=30), "out": due_utc + timedelta(minutes=20)}
    nb = notebook(cfg)
    for side, when in at.items():
        rec = accept_upload(cfg, engine, sheet="tiny01", student=f"web{side}", kind="notebook", filename="tiny01.ipynb",
                            data=nb, uploaded_by=f"web{side}", now=when)
        assert rec.status == "accepted"
        entry(cfg, f"ex{side}", {"tiny01.ipynb": nb})
        wall = (when + offset).replace(tzinfo=None)  # the LMS writes its local time into the zip
        (tmp_path / f"{side}.zip").write_bytes(lms_zip(
            {f"{STUDENTS[f'zip{side}']}_{len(side)}_assignsubmission_file_/tiny01.ipynb": nb}, when=wall.timetuple()[:6]))
        assert import_zip(cfg, engine, "tiny01", tmp_path / f"{side}.zip").accepted == [f"zip{side}"]
    report = collect(cfg, engine, "tiny01", clock=lambda path: at[path.name.split("+")[0][2:]])
    assert report.accepted == ["exin", "exout"]
    records = latest_handins(engine, "tiny01")
    subs = {s.student: s for s in discover(cfg, manifest, None, records)}
    for student in STUDENTS:
        expected = at["in" if student.endswith("in") else "out"]
        assert records[student].received_at == expected, (student, records[student].received_at)  # stored as UTC
        assert subs[student].submitted_at == expected  # written with the files as UTC
        assert decide_late(expected, manifest, None).late is student.endswith("out")
    if season == "summer":  # the whole chain once per database: the grader's stored results
        summary = autograde(cfg, "tiny01", workers=1, limits=LIMITS, progress=False)
        counted = {r["student"]: (r["late"], r["counted_score"]) for r in summary.results}
        assert counted == {s: (s.endswith("out"), "0" if s.endswith("out") else "3") for s in STUDENTS}
        with Session(engine) as session:
            stored = dict(session.execute(select(AutogradeResult.student_id, AutogradeResult.submitted_at)).all())
        for student, when in stored.items():
            when = when if when.tzinfo else when.replace(tzinfo=timezone.utc)
            assert when == at["in" if student.endswith("in") else "out"], (student, when)
