"""The grading queue on SQLite and PostgreSQL: one waiting job per student and sheet, oldest first across
students, never two graders on one job, a job whose grader died taken again, and the graders woken by the
transaction that queues the work."""
from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone

from sqlalchemy import select
from sqlalchemy.orm import Session

from gradebook.points import grading_queue as gq
from gradebook.store.db import atomic, open_gradebook
from gradebook.store.models import Grader, GradingJob
from gradebook.store.wakeup import Waiter

T0 = datetime(2026, 11, 3, 12, 0, tzinfo=timezone.utc)


def _hand_in(engine, student: str, handin_id: int, at: datetime, sheet: str = "sheet01") -> None:
    with atomic(engine) as session:
        gq.enqueue(session, sheet, student, handin_id=handin_id, received_at=at, now=at)


def _jobs(engine) -> list[GradingJob]:
    with Session(engine) as session:
        return list(session.scalars(select(GradingJob).order_by(GradingJob.id)))


def test_a_newer_hand_in_replaces_the_waiting_one_and_keeps_its_place(db_url):
    engine = open_gradebook(db_url)
    _hand_in(engine, "ann", 1, T0)
    _hand_in(engine, "bob", 2, T0 + timedelta(seconds=1))
    for i in range(5):  # ann hands in again and again while both wait
        _hand_in(engine, "ann", 10 + i, T0 + timedelta(seconds=2 + i))
    rows = _jobs(engine)
    assert [(r.student_id, r.state, r.handin_id, r.replaced) for r in rows] == [
        ("ann", "queued", 14, 5), ("bob", "queued", 2, 0)]
    first = gq.claim(engine, "g1", now=T0 + timedelta(seconds=10))
    second = gq.claim(engine, "g1", now=T0 + timedelta(seconds=10))
    assert (first.student, first.handin_id, second.student) == ("ann", 14, "bob")
    assert first.received_at == T0 + timedelta(seconds=6) and first.queued_at == T0


def test_resubmissions_of_one_student_never_push_others_back(db_url):
    engine = open_gradebook(db_url)
    order = []
    for i in range(6):  # others arrive between ann's many hand-ins
        _hand_in(engine, "ann", 100 + i, T0 + timedelta(seconds=2 * i))
        _hand_in(engine, f"s{i}", i, T0 + timedelta(seconds=2 * i + 1))
    while (job := gq.claim(engine, "g", now=T0 + timedelta(minutes=1))) is not None:
        order.append(job.student)
        gq.finish(engine, job, "g", "graded", now=T0 + timedelta(minutes=1))
    assert order == ["ann", "s0", "s1", "s2", "s3", "s4", "s5"]  # ann once, at her first place


def test_the_running_job_finishes_before_the_newer_hand_in_is_taken(db_url):
    engine = open_gradebook(db_url)
    _hand_in(engine, "ann", 1, T0)
    running = gq.claim(engine, "g1", now=T0)
    _hand_in(engine, "ann", 2, T0 + timedelta(seconds=1))  # arrives while the first is graded
    assert gq.claim(engine, "g2", now=T0 + timedelta(seconds=2)) is None  # not beside the running one
    gq.finish(engine, running, "g1", "graded", fingerprint="f1", now=T0 + timedelta(seconds=3))
    newer = gq.claim(engine, "g2", now=T0 + timedelta(seconds=3))
    assert newer is not None and newer.handin_id == 2 and newer.id != running.id
    states = {r.id: (r.state, r.outcome, r.fingerprint) for r in _jobs(engine)}
    assert states[running.id] == ("done", "graded", "f1") and states[newer.id][0] == "running"


def test_a_job_waiting_for_its_turn_is_taken_at_the_turn(db_url):
    engine = open_gradebook(db_url)
    _hand_in(engine, "ann", 1, T0)
    job = gq.claim(engine, "g", now=T0)
    turn = T0 + timedelta(minutes=10)
    gq.finish(engine, job, "g", "waiting", not_before=turn, now=T0)
    assert gq.claim(engine, "g", now=turn - timedelta(seconds=1)) is None
    assert gq.next_turn(engine) == turn
    again = gq.claim(engine, "g", now=turn)
    assert again is not None and again.id == job.id


def test_a_job_whose_grader_died_is_taken_again_first_in_line(db_url):
    engine = open_gradebook(db_url)
    _hand_in(engine, "ann", 1, T0)
    _hand_in(engine, "bob", 2, T0 + timedelta(seconds=1))
    lost = gq.claim(engine, "dead", lease=timedelta(seconds=30), now=T0)
    gq.heartbeat(engine, "dead", [lost.id], timedelta(seconds=30), now=T0 + timedelta(seconds=20))
    assert gq.claim(engine, "alive", now=T0 + timedelta(seconds=45)).student == "bob"  # ann's lease still runs
    retaken = gq.claim(engine, "alive", now=T0 + timedelta(seconds=51))  # ... and now it has run out
    assert (retaken.id, retaken.student, retaken.attempts) == (lost.id, "ann", 2)
    gq.finish(engine, lost, "dead", "graded", now=T0 + timedelta(seconds=52))  # the dead one's late word: ignored
    row = next(r for r in _jobs(engine) if r.id == lost.id)
    assert (row.state, row.grader) == ("running", "alive")


def test_a_dead_graders_job_is_superseded_by_a_newer_hand_in(db_url):
    engine = open_gradebook(db_url)
    _hand_in(engine, "ann", 1, T0)
    lost = gq.claim(engine, "dead", lease=timedelta(seconds=5), now=T0)
    _hand_in(engine, "ann", 2, T0 + timedelta(seconds=1))
    taken = gq.claim(engine, "alive", now=T0 + timedelta(seconds=10))
    assert taken.handin_id == 2 and taken.id != lost.id
    assert next(r for r in _jobs(engine) if r.id == lost.id).state == "superseded"


def test_concurrent_graders_never_take_one_job_twice(db_url):
    engine = open_gradebook(db_url)
    for i in range(60):
        _hand_in(engine, f"s{i:02d}", i, T0 + timedelta(milliseconds=i))
    taken: list[tuple[str, int]] = []
    lock = threading.Lock()

    together = threading.Barrier(4, timeout=30)

    def grader(name: str) -> None:
        first = True
        while (job := gq.claim(engine, name)) is not None:
            with lock:
                taken.append((name, job.id))
            if first:  # four graders hold a job each at the same moment
                together.wait()
                first = False
            gq.finish(engine, job, name, "graded")

    threads = [threading.Thread(target=grader, args=(f"g{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    ids = [j for _, j in taken]
    assert sorted(ids) == sorted(set(ids)) and len(ids) == 60
    assert len({g for g, _ in taken}) == 4  # the work was shared
    assert all(r.state == "done" for r in _jobs(engine))


def test_the_transaction_that_queues_a_job_wakes_a_waiting_grader(db_url):
    engine = open_gradebook(db_url)
    with Waiter(engine) as waiter:
        assert waiter.wait(0.2) is False  # nothing queued: the wait runs its time

        def hand_in() -> None:
            time.sleep(0.3)
            _hand_in(engine, "ann", 1, datetime.now(timezone.utc))

        t = threading.Thread(target=hand_in)
        start = time.monotonic()
        t.start()
        assert waiter.wait(10) is True
        woke = time.monotonic() - start
        t.join()
    assert 0.25 <= woke < 2.0, woke
    try:  # a rolled-back hand-in queues nothing and wakes nobody
        with atomic(engine) as session:
            gq.enqueue(session, "sheet01", "bob")
            raise RuntimeError("the hand-in failed")
    except RuntimeError:
        pass
    assert [r.student_id for r in _jobs(engine)] == ["ann"]


def test_the_heartbeat_tells_whether_any_grader_is_alive(db_url):
    engine = open_gradebook(db_url)
    with Session(engine) as session:
        assert not gq.grader_alive(session)
    gq.register_grader(engine, "h:1:a", "h", 1, ["sheet01"], now=T0)
    with Session(engine) as session:
        assert gq.grader_alive(session, now=T0 + timedelta(seconds=10))
        assert not gq.grader_alive(session, now=T0 + timedelta(minutes=5))  # its heartbeat stopped
    _hand_in(engine, "ann", 1, T0)
    job = gq.claim(engine, "h:1:a", now=T0)
    gq.finish(engine, job, "h:1:a", "graded", now=T0 + timedelta(seconds=4))
    state = gq.queue_state(engine, now=T0 + timedelta(seconds=5))
    assert state.alive and state.last_finished_at == T0 + timedelta(seconds=4) and state.graders[0].jobs_done == 1
    gq.stop_grader(engine, "h:1:a", now=T0 + timedelta(seconds=6))
    with Session(engine) as session:
        assert session.get(Grader, "h:1:a").stopped_at is not None
        assert not gq.grader_alive(session, now=T0 + timedelta(seconds=7))


def test_a_job_names_the_hand_in_whose_files_it_graded(db_url):
    """A hand-in made after the job was queued but before its files were read is the one graded: the job names
    it (its time of receipt and id), and the next job, with nothing new to grade, is up to date."""
    from gradebook.points.handins import ACCEPTED, HandinRecord, record_handins

    engine = open_gradebook(db_url)
    first, second = record_handins(engine, [
        HandinRecord("sheet01", "ann", "notebook", "web", T0, ACCEPTED),
        HandinRecord("sheet01", "ann", "notebook", "web", T0 + timedelta(seconds=3), ACCEPTED)])
    rows = _jobs(engine)
    assert [(r.handin_id, r.replaced) for r in rows] == [(second.handin_id, 1)]  # one job, the newest hand-in
    with atomic(engine) as session:  # say the job was taken before the second arrived: reset it to the first
        session.get(GradingJob, rows[0].id).handin_id = first.handin_id
        session.get(GradingJob, rows[0].id).received_at = T0
    job = gq.claim(engine, "g", now=T0 + timedelta(seconds=4))
    gq.finish(engine, job, "g", "graded", graded=T0 + timedelta(seconds=3), now=T0 + timedelta(seconds=5))
    row = _jobs(engine)[0]
    assert (row.handin_id, row.received_at.replace(tzinfo=timezone.utc) if row.received_at.tzinfo is None
            else row.received_at) == (second.handin_id, T0 + timedelta(seconds=3))
