"""The time of receipt travels with the files it belongs to: a late upload that lands between the grader's reading
of the intake's records and its reading of the files is graded as late (the grader takes the time written with
the files), and a hand-in replaced after the grader found it is not graded under the time it found
(make_job answers "changed"; the next pass grades the new one). The honest student keeps full points."""
from __future__ import annotations

from datetime import timedelta, timezone

from autograder.grading.pipeline import CHANGED, discover, make_job
from autograder.grading.run import autograde
from autograder.intake.upload import accept_upload
from gradebook.points.handins import decision_for, latest_handins
from gradebook.store.db import open_gradebook
from intake_course import LIMITS, make, notebook

STUDENTS = {"honest": "Hanna Honest", "racer": "Rex Racer"}
EMPTY = "def scale(x, a):\n    pass\n"


def test_a_late_upload_between_record_and_file_is_graded_late(course_factory):
    cfg = make(course_factory, STUDENTS)
    engine = open_gradebook(cfg.db_url)
    manifest = cfg.manifest("tiny01")
    due = manifest.due
    kw = dict(sheet="tiny01", kind="notebook", filename="tiny01.ipynb")
    for student in STUDENTS:
        rec = accept_upload(cfg, engine, student=student, uploaded_by=student, data=notebook(cfg) if student == "honest" else notebook(cfg, EMPTY),
                            now=due - timedelta(minutes=10), **kw)
        assert rec.status == "accepted"
    records = latest_handins(engine, "tiny01")  # the grader has read the records ...
    late = due + timedelta(hours=2)
    assert accept_upload(cfg, engine, student="racer", uploaded_by="racer", data=notebook(cfg), now=late, **kw).status == "accepted"
    subs = {s.student: s for s in discover(cfg, manifest, None, records)}  # ... and now reads the files
    assert records["racer"].received_at == due - timedelta(minutes=10)
    assert subs["racer"].submitted_at == late  # the time written with the file it will grade
    assert decision_for(engine, manifest, "racer", subs["racer"].submitted_at).counts_zero
    assert not decision_for(engine, manifest, "honest", subs["honest"].submitted_at).late
    # replaced once more after discover(): not graded under the time discover() read
    later = late + timedelta(minutes=1)
    accept_upload(cfg, engine, student="racer", uploaded_by="racer", data=notebook(cfg, EMPTY), now=later, **kw)
    assert make_job(subs["racer"], manifest, None, LIMITS) == {"status": CHANGED}  # type: ignore[arg-type]
    summary = autograde(cfg, "tiny01", workers=1, limits=LIMITS, progress=False)
    results = {r["student"]: r for r in summary.results}
    assert results["honest"]["counted_score"] == "3" and results["honest"]["late"] is False
    assert results["racer"]["late"] is True and results["racer"]["counted_score"] == "0"
    assert results["racer"]["submitted_at"] == later.astimezone(timezone.utc).isoformat()  # stored as UTC
