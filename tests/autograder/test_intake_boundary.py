"""The intake: every byte a student controls crosses one boundary (links, special files, names, sizes, owners,
time), and a bad hand-in is that student's result while everyone else in the same batch is collected."""
from __future__ import annotations

import io
import json
import os
import stat
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import nbformat
import pytest
from sqlalchemy import text

from autograder.grading.assemble import grade_id
from autograder.grading.run import autograde
from autograder.intake.exchange import collect
from autograder.intake.store import RECEIPT
from autograder.intake.upload import accept_upload
from autograder.intake.zipimport import import_zip
from autograder.limits import Limits
from autograder.nbgrader_bridge import generate
from coursefactory import TINY_ANSWER
from gradebook.store.db import open_gradebook
from gradebook.people.roster import import_students

LIMITS = Limits(cell_timeout=4, notebook_timeout=60, interrupt_grace=2)
ROSTER = "student_id,last_name,first_name,email\n" + "".join(
    f"{s},Name{s},First{s},{s}@uni.de\n" for s in ("honest", "honest2", "selflink", "srclink", "shadow", "dangling",
                                                   "hardlink", "fifo", "device", "badname", "ctrlname", "longname",
                                                   "deep", "many", "huge", "forged", "ab1", "cd2", "zz9"))


def _course(course_factory, due: str | None = None, identity: str = "shared"):
    import dataclasses

    cfg = course_factory(**({"due": due} if due else {}))
    cfg = dataclasses.replace(cfg, intake_identity=identity)
    generate(cfg, "tiny01")
    roster = cfg.root / "roster.csv"
    roster.write_text(ROSTER)
    import_students(open_gradebook(cfg.db_url), roster)
    return cfg


def _notebook(cfg, answer: str = TINY_ANSWER) -> bytes:
    nb = nbformat.read(cfg.release_dir / "tiny01" / "tiny01.ipynb", as_version=4)
    for cell in nb.cells:
        if grade_id(cell) == "scale_solution":
            cell.source = answer
    return nbformat.writes(nb).encode()


def _entry(cfg, student: str, n: int = 0) -> Path:
    d = cfg.exchange_dir / "mlph" / "inbound" / f"{student}+tiny01+2026-11-03 12:00:0{n}.000000 UTC+{student}{n}"
    d.mkdir(parents=True)
    return d


def _honest(cfg, student: str = "honest") -> Path:
    d = _entry(cfg, student)
    (d / "tiny01.ipynb").write_bytes(_notebook(cfg))
    return d


def _handins(cfg) -> dict[str, tuple[str, str]]:
    with open_gradebook(cfg.db_url).connect() as conn:
        rows = conn.execute(text("SELECT student_id, status, reason FROM handin ORDER BY id")).all()
    return {s: (st, r or "") for s, st, r in rows}


def test_links_special_files_and_bad_names_are_refused_and_the_rest_collected(course_factory):
    cfg = _course(course_factory)
    source = cfg.root / "source" / "tiny01" / "tiny01.ipynb"
    _honest(cfg)
    inbound = cfg.exchange_dir / "mlph" / "inbound"
    target = _entry(cfg, "honest2")
    (target / "tiny01.ipynb").write_bytes(_notebook(cfg))
    os.symlink(target, inbound / "selflink+tiny01+2026-11-03 12:00:00.000000 UTC+x")  # the entry itself a link
    os.symlink(source, _entry(cfg, "srclink") / "tiny01.ipynb")  # the instructor's source notebook
    os.symlink("/etc/shadow", _entry(cfg, "shadow") / "tiny01.ipynb")
    os.symlink("/nonexistent/file", _entry(cfg, "dangling") / "tiny01.ipynb")
    os.link(source, _entry(cfg, "hardlink") / "tiny01.ipynb")
    os.mkfifo(_entry(cfg, "fifo") / "tiny01.ipynb")
    os.mknod(_entry(cfg, "device") / "tiny01.ipynb", 0o644 | stat.S_IFCHR, os.makedev(1, 5))  # /dev/zero
    d = _entry(cfg, "badname")
    (d / "tiny01.ipynb").write_bytes(_notebook(cfg))
    os.mkdir(os.path.join(bytes(d), b"\xff\xfe"))
    d = _entry(cfg, "ctrlname")
    (d / "tiny01.ipynb").write_bytes(_notebook(cfg))
    (d / "a\x1b[31mred").write_text("x")
    d = _entry(cfg, "longname")
    (d / "tiny01.ipynb").write_bytes(_notebook(cfg))
    (d / ("n" * 200)).write_text("x")
    d = _entry(cfg, "deep")
    (d / "tiny01.ipynb").write_bytes(_notebook(cfg))
    (d / "a/b/c/d/e/f").mkdir(parents=True)
    d = _entry(cfg, "many")
    (d / "tiny01.ipynb").write_bytes(_notebook(cfg))
    for i in range(3000):
        (d / f"f{i}").write_text("x")
    d = _entry(cfg, "huge")
    with open(d / "tiny01.ipynb", "wb") as fh:
        fh.truncate(30_000_000)
    engine = open_gradebook(cfg.db_url)
    report = collect(cfg, engine, "tiny01")
    assert sorted(report.accepted) == ["honest", "honest2"]
    got = _handins(cfg)
    expect = {"srclink": "symbolic link", "shadow": "symbolic link", "dangling": "symbolic link",
              "hardlink": "hard link", "fifo": "not a regular file", "device": "not a regular file",
              "badname": "not valid UTF-8", "ctrlname": "control characters", "longname": "longer than 128",
              "deep": "nested deeper", "many": "more than 64 files", "huge": "larger than 20 MB"}
    for student, why in expect.items():
        assert got[student][0] == "invalid" and why in got[student][1], (student, got[student])
    assert got["selflink"][0] == "refused"
    # nothing of what the links pointed to was copied; the honest hand-ins are there, byte for byte
    assert not (cfg.data_dir / "submitted" / "shadow").exists()
    assert (cfg.data_dir / "submitted" / "honest" / "tiny01" / "tiny01.ipynb").read_bytes() == _notebook(cfg)
    # a second collection changes nothing (every entry is recorded once)
    assert collect(cfg, engine, "tiny01").unchanged == len(expect) + 3
    # the grader: invalid hand-ins are those students' results with the reason, the honest ones get full points
    summary = autograde(cfg, "tiny01", workers=2, limits=LIMITS, progress=False)
    results = {r["student"]: r for r in summary.results}
    assert results["honest"]["score"] == "3" and results["honest2"]["score"] == "3"
    assert results["shadow"]["status"] == "invalid" and "symbolic link" in results["shadow"]["reason"]
    assert "selflink" not in results


def test_impersonation_and_ids_not_on_the_roster(course_factory):
    """Owner mode: an entry must be made by the student it names (their login, or the roster's login column);
    an id not on the roster is held, never graded, unless admitted."""
    cfg = _course(course_factory, identity="owner")
    engine = open_gradebook(cfg.db_url)
    logins = cfg.root / "logins.csv"
    logins.write_text("student_id,last_name,first_name,email,login\nab1,Nameab1,Firstab1,ab1@uni.de,nobody\n"
                      "cd2,Namecd2,Firstcd2,cd2@uni.de,nobody\n")
    with pytest.raises(Exception, match="login 'nobody' is already 'ab1'"):
        import_students(engine, logins)
    logins.write_text("student_id,last_name,first_name,email,login\nab1,Nameab1,Firstab1,ab1@uni.de,nobody\n")
    assert import_students(engine, logins).changed == ["ab1"]
    own = _entry(cfg, "ab1")
    (own / "tiny01.ipynb").write_bytes(_notebook(cfg))
    forged = _entry(cfg, "cd2")  # made by ab1's login, naming cd2
    (forged / "tiny01.ipynb").write_bytes(_notebook(cfg))
    rooted = _entry(cfg, "zz9")  # made by root, naming zz9
    (rooted / "tiny01.ipynb").write_bytes(_notebook(cfg))
    for path in (own, forged):
        for p in (path, path / "tiny01.ipynb"):
            os.chown(p, 65534, 65534)
    report = collect(cfg, engine, "tiny01")
    assert report.accepted == ["ab1"]
    refused = dict(report.refused)
    assert any("names 'cd2' but was made by 'nobody'" in why for why in refused.values())
    assert any("names 'zz9' but was made by 'root'" in why for why in refused.values())
    # an id that is not on the roster: held, then admitted explicitly
    import dataclasses

    shared = dataclasses.replace(cfg, intake_identity="shared")
    (_entry(shared, "gast17") / "tiny01.ipynb").write_bytes(_notebook(cfg))
    report = collect(shared, engine, "tiny01")
    assert report.held and report.held[0][0] == "gast17" and not (cfg.data_dir / "submitted" / "gast17").exists()
    (_entry(shared, "gast17", 1) / "tiny01.ipynb").write_bytes(_notebook(cfg))
    report = collect(shared, engine, "tiny01", admit=frozenset({"gast17"}))
    assert report.accepted == ["gast17"]


def test_the_time_of_receipt_is_the_servers_not_the_students(course_factory):
    """A hand-in after the deadline whose timestamp.txt claims an earlier time is late; an extension moves the
    deadline; the decision is stored with its reason and shown in the feedback and nbgrader's late penalty."""
    yesterday = (datetime.now(timezone.utc) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S")
    cfg = _course(course_factory, due=yesterday)
    engine = open_gradebook(cfg.db_url)
    forged = _honest(cfg, "forged")
    (forged / "timestamp.txt").write_text("2026-11-01 12:00:00.000000 UTC")
    _honest(cfg, "honest")
    from gradebook.points.manual import set_extension

    set_extension(engine, "tiny01", "honest", datetime.now(timezone.utc) + timedelta(days=2), "admin", "illness")
    collect(cfg, engine, "tiny01")
    summary = autograde(cfg, "tiny01", workers=2, limits=LIMITS, progress=False)
    res = {r["student"]: r for r in summary.results}
    assert res["forged"]["score"] == "3" and res["forged"]["counted_score"] == "0" and res["forged"]["late"] is True
    assert "late by" in res["forged"]["decision"] and "counts 0 points" in res["forged"]["decision"]
    assert res["honest"]["counted_score"] == "3" and res["honest"]["late"] is False
    assert "(extended)" in res["honest"]["decision"]
    fb = (cfg.data_dir / "feedback" / "forged" / "tiny01" / "tiny01.html").read_text()
    assert "late by" in fb and "it counts <b>0</b> points" in fb  # a late hand-in: visible checks only
    with engine.connect() as conn:
        penalty = dict(conn.execute(text(
            "SELECT sa.student_id, sn.late_submission_penalty FROM submitted_notebook sn JOIN submitted_assignment sa "
            "ON sn.assignment_id = sa.id")).all())
    assert penalty["forged"] == 3.0 and not penalty["honest"]


def _zip(members: dict[str, bytes], symlinks: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, date_time=(2026, 11, 3, 9, 0, 0) if "older" not in name else (2026, 11, 2, 9, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return buf.getvalue()


def test_an_lms_zip_goes_through_the_same_checks(course_factory, tmp_path):
    cfg = _course(course_factory)
    engine = open_gradebook(cfg.db_url)
    nb = _notebook(cfg)
    good = _zip({"Firsthonest Namehonest_101_assignsubmission_file_/tiny01.ipynb": nb,
                 "Nameab1, Firstab1_102_assignsubmission_file_/tiny01.ipynb": nb,
                 "Firstcd2 Namecd2_103_assignsubmission_file_/older/tiny01.ipynb": b"{}",
                 "Firstcd2 Namecd2_104_assignsubmission_file_/tiny01.ipynb": nb,
                 "Unknown Person_105_assignsubmission_file_/tiny01.ipynb": nb,
                 "Firstdeep Namedeep_106_assignsubmission_file_/sub/tiny01.ipynb": b"not json"})
    (tmp_path / "ok.zip").write_bytes(good)
    report = import_zip(cfg, engine, "tiny01", tmp_path / "ok.zip")
    assert sorted(report.accepted) == ["ab1", "honest"]  # two participants named like cd2: imported for nobody
    assert report.unmatched[0][0].startswith("Unknown Person") and report.ambiguous[0][0] == "cd2"
    assert report.invalid[0][0] == "deep" and "not a notebook" in report.invalid[0][1]
    # a bad member costs its own folder (or, outside any folder, itself), never the rest of the zip
    honest_nb = cfg.data_dir / "submitted" / "honest" / "tiny01" / "tiny01.ipynb"
    for bad, why in [({"../../etc/evil/tiny01.ipynb": nb}, "not allowed"),
                     ({"/abs/tiny01.ipynb": nb}, "absolute")]:
        (tmp_path / "bad.zip").write_bytes(_zip(bad | {"Nameab1, Firstab1_102_assignsubmission_file_/tiny01.ipynb": nb}))
        report = import_zip(cfg, engine, "tiny01", tmp_path / "bad.zip")
        assert why in report.unmatched[0][1] and report.accepted == ["ab1"]
    for bad, why in [({"Firsthonest Namehonest_1_assignsubmission_file_/tiny01.ipynb": b"0" * 10_000_000}, "expands")]:
        (tmp_path / "bad.zip").write_bytes(_zip(bad))
        report = import_zip(cfg, engine, "tiny01", tmp_path / "bad.zip")
        assert report.invalid[0][0] == "honest" and why in report.invalid[0][1]
    (tmp_path / "link.zip").write_bytes(_zip({}, {"Firsthonest Namehonest_1_assignsubmission_file_/tiny01.ipynb": "/etc/shadow"}))
    report = import_zip(cfg, engine, "tiny01", tmp_path / "link.zip")
    assert report.invalid[0][0] == "honest" and "symbolic link" in report.invalid[0][1]
    assert honest_nb.read_bytes() == nb
    assert not list(tmp_path.parent.rglob("evil"))


def test_web_uploads_are_checked_by_content_and_leave_nothing_when_refused(course_factory):
    cfg = _course(course_factory)
    engine = open_gradebook(cfg.db_url)
    kw = {"sheet": "tiny01", "student": "honest", "uploaded_by": "honest", "per_minute": 100}
    rec = accept_upload(cfg, engine, kind="notebook", filename="../../x.ipynb", data=_notebook(cfg), **kw)
    assert rec.status == "accepted" and rec.original_name == "x.ipynb"
    assert (cfg.data_dir / rec.stored_path).read_bytes() == _notebook(cfg)
    other = json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        {"cell_type": "code", "metadata": {"nbgrader": {"grade_id": "other_sheet"}}, "source": "", "outputs": []}]})
    for data, why in [(b"{not json", "not a notebook: invalid JSON at line 1"), (other.encode(), "this notebook is not tiny01"),
                      (b"x" * 21_000_000, "larger than 20 MB")]:
        rec = accept_upload(cfg, engine, kind="notebook", filename="tiny01.ipynb", data=data, **kw)
        assert rec.status == "refused" and why in rec.reason
    assert (cfg.data_dir / "submitted" / "honest" / "tiny01" / "tiny01.ipynb").read_bytes() == _notebook(cfg)
    pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
    rec = accept_upload(cfg, engine, kind="paper", filename="scan.pdf", data=pdf, **kw)
    assert rec.status == "accepted" and (cfg.data_dir / "paper" / "tiny01" / "honest.pdf").read_bytes() == pdf
    for data in (b"<html><script>alert(1)</script></html>", b"%PDF-1.4 but no trailer"):
        rec = accept_upload(cfg, engine, kind="paper", filename="scan.pdf", data=data, **kw)
        assert rec.status == "refused" and "not a PDF" in rec.reason
    assert (cfg.data_dir / "paper" / "tiny01" / "honest.pdf").read_bytes() == pdf
    rec = accept_upload(cfg, engine, kind="notebook", filename="x.ipynb", data=_notebook(cfg), sheet="tiny01",
                        student="stranger", uploaded_by="stranger")
    assert rec.status == "refused" and "not on the roster" in rec.reason
    leftovers = [p for p in cfg.data_dir.rglob("*") if p.name.startswith(".") and p.name != RECEIPT]  # the time of receipt stays
    assert leftovers == []


def test_autograde_holds_hand_ins_of_ids_not_on_the_roster(course_factory):
    """Whatever put them into submitted/, ids not on the roster are not graded into the admission list."""
    cfg = _course(course_factory)
    for student in ("honest", "ghost"):
        d = cfg.data_dir / "submitted" / student / "tiny01"
        d.mkdir(parents=True)
        (d / "tiny01.ipynb").write_bytes(_notebook(cfg))
    summary = autograde(cfg, "tiny01", workers=1, limits=LIMITS, progress=False)
    assert [r["student"] for r in summary.results] == ["honest"] and summary.held == ["ghost"]
    with open_gradebook(cfg.db_url).connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM autograde_result WHERE student_id = 'ghost'")).scalar() == 0
