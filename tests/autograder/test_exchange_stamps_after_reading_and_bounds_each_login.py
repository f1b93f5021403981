"""The filesystem exchange: the recorded time of receipt is never earlier than the last change of a byte that is
graded (the entry is read first, stamped after), directories are bounded like files, the collector holds one
entry in memory at a time, and a flood of entries by one login costs that login's turn only. The attack: a notebook rewritten after the deadline while the collector walks the
entry (as a student watching with inotify would), beside an honest student who handed in at the same moment."""
from __future__ import annotations

import dataclasses
import os
import time
from datetime import datetime, timedelta, timezone

import autograder.intake.exchange as exchange
import autograder.intake.safe as safe
from autograder.intake.exchange import MAX_NEW_PER_OWNER, collect
from gradebook.course.late_rules import LateRule
from gradebook.points.handins import decide_late, latest_handins
from gradebook.people.roster import import_students
from gradebook.store.db import open_gradebook
from intake_course import entry, handin_rows, make, notebook

STUDENTS = {"honest": "Hanna Honest", "racer": "Rex Racer", "padder": "Paul Padder", "other": "Otto Other"}
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _ns(when: datetime) -> int:
    return (when - EPOCH) // timedelta(microseconds=1) * 1000


EMPTY = "def scale(x, a):\n    pass\n"


def test_a_notebook_rewritten_while_the_collector_reads_is_stamped_after_the_rewrite(course_factory, monkeypatch):
    cfg = make(course_factory, STUDENTS)
    engine = open_gradebook(cfg.db_url)
    honest = entry(cfg, "honest", {"tiny01.ipynb": notebook(cfg, EMPTY)})
    racer = entry(cfg, "racer", {"tiny01.ipynb": notebook(cfg, EMPTY)})
    before = max(os.stat(honest / "tiny01.ipynb").st_ctime, os.stat(racer / "tiny01.ipynb").st_ctime)
    time.sleep(0.05)
    deadline = time.time()  # both handed in before it
    time.sleep(0.05)
    late = notebook(cfg)  # the full solution, written after the deadline, while the collector is in the entry
    real_read = safe._read_fd

    def read_while_racing(fd, name, limit):
        if os.fstat(fd).st_ino == os.stat(racer / "tiny01.ipynb").st_ino and not getattr(read_while_racing, "done", 0):
            read_while_racing.done = 1
            with open(racer / "tiny01.ipynb", "r+b") as fh:  # in place, the same inode the collector has open
                fh.write(late)
        return real_read(fd, name, limit)

    monkeypatch.setattr(safe, "_read_fd", read_while_racing)
    report = collect(cfg, engine, "tiny01")
    assert report.accepted == ["honest", "racer"]
    graded = (cfg.data_dir / "submitted" / "racer" / "tiny01" / "tiny01.ipynb").read_bytes()
    assert graded.startswith(late)  # what the grader will grade is the late content ...
    changed = os.stat(racer / "tiny01.ipynb").st_ctime_ns
    recs = latest_handins(engine, "tiny01")
    assert _ns(recs["racer"].received_at) >= changed > deadline * 1e9  # ... and its time is after its last change
    assert recs["honest"].received_at.timestamp() <= before + 1e-3
    manifest = dataclasses.replace(cfg.manifest("tiny01"), due=datetime.fromtimestamp(deadline, timezone.utc),
                                   late=LateRule("zero"))
    assert decide_late(recs["racer"].received_at, manifest, None).counts_zero
    assert not decide_late(recs["honest"].received_at, manifest, None).late


def test_directories_are_bounded_like_files_and_one_entry_is_in_memory_at_a_time(course_factory, monkeypatch):
    cfg = make(course_factory, STUDENTS)
    engine = open_gradebook(cfg.db_url)
    entry(cfg, "honest", {"tiny01.ipynb": notebook(cfg)})
    padded = entry(cfg, "padder", {"tiny01.ipynb": notebook(cfg)})
    for i in range(5000):  # thousands of empty directories: nothing to read, everything to walk
        os.mkdir(padded / f"d{i}")
    nested = entry(cfg, "other", {"tiny01.ipynb": notebook(cfg)})
    for i in range(40):  # few entries per directory, but more directories than a hand-in may hold
        os.makedirs(nested / f"a{i}" / "b")
    events: list[str] = []
    real_read, real_record = exchange.read_snapshot, exchange.record_handins
    monkeypatch.setattr(exchange, "read_snapshot", lambda *a, **k: events.append("read") or real_read(*a, **k))
    monkeypatch.setattr(exchange, "record_handins", lambda *a, **k: events.append("record") or real_record(*a, **k))
    started = time.perf_counter()
    report = collect(cfg, engine, "tiny01")
    took = time.perf_counter() - started
    assert report.accepted == ["honest"]
    assert dict(report.invalid) == {"padder": "the hand-in has more than 64 files and 32 directories (its top folder alone)",
                                    "other": "the hand-in has more than 32 directories"}
    assert events == ["read", "record"] * 3  # each entry is recorded (and its files dropped) before the next is read
    assert took < 5, took
    assert [r[2] for r in handin_rows(cfg)] == ["accepted", "invalid", "invalid"]


def test_a_flood_of_entries_by_one_login_waits_its_turn(course_factory):
    cfg = dataclasses.replace(make(course_factory, STUDENTS), intake_identity="owner")
    engine = open_gradebook(cfg.db_url)
    logins = cfg.root / "logins.csv"
    logins.write_text("student_id,last_name,first_name,email,login\nhonest,Honest,Hanna,honest@uni.de,root\n"
                      "other,Other,Otto,other@uni.de,nobody\n")
    import_students(engine, logins)
    flood = MAX_NEW_PER_OWNER + 10
    for i in range(flood):  # made by the login "nobody" (uid 65534), each a full entry
        d = entry(cfg, "other", {"tiny01.ipynb": notebook(cfg)}, n=i % 10)
        d = d.rename(d.with_name(d.name + f"-{i:03d}"))
        for p in (d, d / "tiny01.ipynb"):
            os.chown(p, 65534, 65534)
    entry(cfg, "honest", {"tiny01.ipynb": notebook(cfg)})  # made by root, whose roster login is "root"
    report = collect(cfg, engine, "tiny01")
    assert report.accepted == ["honest", "other"] and report.deferred == 10
    assert len(handin_rows(cfg)) == MAX_NEW_PER_OWNER + 1
    report = collect(cfg, engine, "tiny01")
    assert report.deferred == 0 and report.unchanged == MAX_NEW_PER_OWNER + 1
    assert len(handin_rows(cfg)) == flood + 1
