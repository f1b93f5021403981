"""After a sheet's cut-off (``cutoff_days`` in its [late] table) nothing is taken in: the exchange collector and
the LMS zip import record the hand-in as refused with the words every way in uses (the web upload and the Hub:
tests/web/test_late_rules_read_alike_on_every_page.py), naming the sheet and the cut-off; a hand-in before the
cut-off, late or not, is taken in as before."""
from __future__ import annotations

import os
import re
from datetime import datetime, timezone
from typing import Any

from autograder.intake.exchange import collect
from autograder.intake.zipimport import import_zip
from autograder.nbgrader_bridge import generate
from gradebook.people.roster import import_students
from gradebook.store.db import open_gradebook
from intake_course import entry, handin_rows, lms_zip, notebook

REFUSAL = ("tiny01 takes no more hand-ins: its cut-off was Sat 07 Nov 2026, 10:00 CET "
           "(deadline Wed 04 Nov 2026, 10:00 CET plus 3 d 0 h 00 min)")


def _course(course_factory: Any) -> Any:
    cfg = course_factory(tiny=("tiny01",))
    path = cfg.root / "source" / "tiny01" / "sheet.toml"
    path.write_text(re.sub(r'grace_minutes = 15\n', 'grace_minutes = 15\ncutoff_days = 3\n', path.read_text()))
    from gradebook.course.config import load_config

    cfg = load_config(cfg.root, cfg.data_dir)
    generate(cfg, "tiny01")
    (cfg.root / "r.csv").write_text("student_id,last_name,first_name,email\nann,Aal,Ann,ann@uni.de\n"
                                    "bob,Bay,Bob,bob@uni.de\n")
    import_students(open_gradebook(cfg.db_url), cfg.root / "r.csv")
    return cfg


def test_the_exchange_refuses_an_entry_after_the_cutoff(course_factory: Any) -> None:
    cfg = _course(course_factory)
    engine = open_gradebook(cfg.db_url)
    entry(cfg, "ann", {"tiny01.ipynb": notebook(cfg)})
    entry(cfg, "bob", {"tiny01.ipynb": notebook(cfg)})
    received = {"ann": datetime(2026, 11, 7, 9, 30, tzinfo=timezone.utc),  # 10:30 CET: past the cut-off
                "bob": datetime(2026, 11, 6, 9, 0, tzinfo=timezone.utc)}  # late, before the cut-off
    report = collect(cfg, engine, "tiny01", clock=lambda e: received[os.path.basename(e).split("+")[0]])
    assert report.accepted == ["bob"] and report.refused == [(next(
        n for n in os.listdir(cfg.exchange_dir / "mlph" / "inbound") if n.startswith("ann")), REFUSAL)]
    assert sorted(handin_rows(cfg)) == [("ann", "exchange", "refused", REFUSAL), ("bob", "exchange", "accepted", "")]
    assert not (cfg.data_dir / "submitted" / "ann").exists()


def test_the_lms_zip_refuses_a_folder_after_the_cutoff(course_factory: Any, tmp_path: Any) -> None:
    cfg = _course(course_factory)
    engine = open_gradebook(cfg.db_url)
    (tmp_path / "late.zip").write_bytes(lms_zip({"Ann Aal_1_assignsubmission_file_/tiny01.ipynb": notebook(cfg)},
                                                when=(2026, 11, 7, 10, 30, 0)))
    (tmp_path / "ok.zip").write_bytes(lms_zip({"Bob Bay_2_assignsubmission_file_/tiny01.ipynb": notebook(cfg)},
                                              when=(2026, 11, 7, 9, 59, 0)))
    late = import_zip(cfg, engine, "tiny01", tmp_path / "late.zip")
    assert (late.accepted, late.refused) == ([], [("ann", REFUSAL)]) and "1 refused after the cut-off" in str(late)
    assert import_zip(cfg, engine, "tiny01", tmp_path / "ok.zip").accepted == ["bob"]
    assert [(s, st, r) for s, _src, st, r in handin_rows(cfg)] == [("ann", "refused", REFUSAL), ("bob", "accepted", "")]
