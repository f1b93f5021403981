"""The LMS zip maps a participant's folder to a roster student by the LMS's own field (the full name) only: a
second participant named like a classmate, a name two roster students share, or a display name holding another
student's id or matriculation number is reported and imported for nobody; a folder with more files or bytes
than a hand-in may hold is that student's invalid hand-in; the honest students are imported byte for byte."""
from __future__ import annotations


from autograder.intake.exchange import collect
from autograder.intake.zipimport import import_zip
from gradebook.points.handins import latest_handins
from gradebook.store.db import open_gradebook
from intake_course import entry, lms_zip, make, notebook

STUDENTS = {"honest": "Hanna Honest", "victim": "Vera Victim", "twin1": "Tom Twin", "twin2": "Tom Twin",
            "files": "Fiona Files", "bytes": "Bob Bytes", "mallory": "Mallory Mole"}
FOLDER = "{}_{}_assignsubmission_file_/"


def test_ambiguous_and_oversized_folders_are_imported_for_nobody(course_factory, tmp_path):
    cfg = make(course_factory, STUDENTS)
    engine = open_gradebook(cfg.db_url)
    own = notebook(cfg, "def scale(x, a):\n    return a * x  # Vera's own\n")
    entry(cfg, "victim", {"tiny01.ipynb": own})  # the victim's hand-in through the exchange, before the zip
    collect(cfg, engine, "tiny01")
    honest, forged = notebook(cfg), notebook(cfg, "def scale(x, a):\n    return 0  # not Vera's\n")
    members = {FOLDER.format("Hanna Honest", 101) + "tiny01.ipynb": honest,
               FOLDER.format("Vera Victim", 199) + "tiny01.ipynb": forged,  # a second participant, same display name
               FOLDER.format("Vera  VICTIM", 102) + "tiny01.ipynb": own,
               FOLDER.format("Tom Twin", 103) + "tiny01.ipynb": honest,  # the name of two roster students
               FOLDER.format("Max victim 3700002", 104) + "tiny01.ipynb": forged,  # another's id and matriculation
               FOLDER.format("Fiona Files", 105) + "tiny01.ipynb": honest}
    members |= {FOLDER.format("Fiona Files", 105) + f"extra/f{i}.txt": b"x" for i in range(70)}  # 71 files
    members |= {FOLDER.format("Bob Bytes", 106) + "tiny01.ipynb": honest}
    members |= {FOLDER.format("Bob Bytes", 106) + f"data{i}.bin": bytes(14_000_000) for i in range(3)}  # 42 MB
    (tmp_path / "lms.zip").write_bytes(lms_zip(members, stored=True))
    report = import_zip(cfg, engine, "tiny01", tmp_path / "lms.zip")
    assert report.accepted == ["honest"]
    assert [s for s, _ in report.ambiguous] == ["victim"] and "2 participants map to victim" in report.ambiguous[0][1]
    unmatched = dict(report.unmatched)
    assert "matches several students: twin1, twin2" in unmatched[FOLDER.format("Tom Twin", 103)[:-1]]
    assert unmatched[FOLDER.format("Max victim 3700002", 104)[:-1]] == "the name matches no student on the roster"
    assert dict(report.invalid) == {"files": "the hand-in has more than 64 files",
                                    "bytes": "the hand-in is larger than 40 MB"}
    submitted = cfg.data_dir / "submitted"
    assert (submitted / "honest" / "tiny01" / "tiny01.ipynb").read_bytes() == honest
    assert (submitted / "victim" / "tiny01" / "tiny01.ipynb").read_bytes() == own  # untouched
    assert sorted(p.name for p in submitted.iterdir()) == ["honest", "victim"]
    latest = latest_handins(engine, "tiny01")
    assert latest["victim"].source == "exchange" and latest["honest"].source == "zip"
    assert {s: r.status for s, r in latest.items()} == {"victim": "accepted", "honest": "accepted",
                                                        "files": "invalid", "bytes": "invalid"}
