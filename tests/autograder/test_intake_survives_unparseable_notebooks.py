"""A notebook no JSON parser can take (100 000 levels deep: RecursionError; a 5000-digit integer: ValueError) and
any other failure while one hand-in is read is that hand-in's ``invalid`` record with a fixed reason, recorded
once; the exchange collector, ``--watch``, the LMS zip, the web upload and the grader finish for everyone else,
and the honest students keep their exact results."""
from __future__ import annotations

import time

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import autograder.grading.pipeline as pipeline
import autograder.intake.store as store
from autograder.grading.run import autograde
from autograder.grading.watcher import watch
from autograder.intake.boundedjson import MAX_DEPTH, loads
from autograder.intake.exchange import collect
from autograder.intake.safe import IntakeRefused
from autograder.intake.upload import accept_upload
from autograder.intake.zipimport import import_zip
from gradebook.store.db import open_gradebook
from intake_course import LIMITS, bigint_notebook, deep_notebook, entry, handin_rows, lms_zip, make, notebook

STUDENTS = {"honest": "Hanna Honest", "deep": "Dora Deep", "bigint": "Bert Bigint", "boom": "Bea Boom",
            "rawdeep": "Rita Rawdeep", "rawint": "Ralf Rawint", "rawboom": "Rolf Rawboom"}
DEEP = "is nested deeper than 64 levels"
LONG = "holds a number longer than 100 characters"


def test_the_bounded_parser_refuses_before_the_recursive_one_and_keeps_honest_json():
    honest = {"a": [{"b": [1.5e300, -2, "x[[[[\"{{"]}]} | {"n": 10 ** 99}
    assert loads(json.dumps(honest).encode(), "x.ipynb") == honest
    nested = [[]]
    for _ in range(MAX_DEPTH - 2):
        nested = [nested]
    assert loads(json.dumps(nested).encode(), "x.ipynb") == nested  # exactly the bound
    for data, why in [(b"[" * 100_000 + b"]" * 100_000, DEEP), (b'{"a": ' * 65 + b"1" + b"}" * 65, DEEP),
                      (b"[" + b"9" * 5000 + b"]", LONG), (b"[1." + b"0" * 5000 + b"]", LONG),
                      (b"[" + b"[]," * 2_100_000 + b"[]]", "more than 2,000,000 JSON values"),
                      (b'["' + b"[" * 100_000, DEEP),  # an unterminated string counts as structure
                      (b"\xff[]", "not UTF-8"), (b"[1,]", "invalid JSON at line 1")]:
        with pytest.raises(IntakeRefused, match=why.replace("(", r"\(")):
            loads(data, "x.ipynb")
    # brackets and digits inside strings are text, never structure
    assert loads(b'["' + b"[" * 100_000 + b"9" * 5000 + b'"]', "x.ipynb") == ["[" * 100_000 + "9" * 5000]


LEAVES = (st.none() | st.booleans() | st.integers(-10 ** 40, 10 ** 40) | st.text(max_size=12)
          | st.floats(allow_nan=False, allow_infinity=False))
VALUES = st.recursive(LEAVES, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                                          max_size=3), max_leaves=12)


def _depth(value: object) -> int:
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    return 0


@settings(max_examples=300, deadline=None)
@given(VALUES, st.integers(0, 80), st.booleans())
def test_the_scan_takes_exactly_the_json_within_its_bounds(value, wraps, in_objects):
    for _ in range(wraps):
        value = {"k": value} if in_objects else [value]
    data = json.dumps(value).encode()
    if _depth(value) <= MAX_DEPTH:
        assert loads(data, "x.ipynb") == value
    else:
        with pytest.raises(IntakeRefused, match="nested deeper than 64 levels"):
            loads(data, "x.ipynb")


def test_collect_watch_and_autograde_finish_for_everyone_beside_unparseable_hand_ins(course_factory, monkeypatch):
    cfg = make(course_factory, STUDENTS, due="2027-06-01T10:00:00")
    honest = notebook(cfg)
    entry(cfg, "honest", {"tiny01.ipynb": honest})
    entry(cfg, "deep", {"tiny01.ipynb": deep_notebook(cfg)})
    entry(cfg, "bigint", {"tiny01.ipynb": bigint_notebook(cfg)})
    entry(cfg, "boom", {"tiny01.ipynb": honest.replace(b"Tiny sheet", b"BOOM sheet")})
    for student, data in (("rawdeep", deep_notebook(cfg)), ("rawint", bigint_notebook(cfg)),
                          ("rawboom", honest.replace(b"Tiny sheet", b"BOOM sheet"))):
        d = cfg.data_dir / "submitted" / student / "tiny01"  # put there by hand, past the intake
        d.mkdir(parents=True)
        (d / "tiny01.ipynb").write_bytes(data)
    real_scan = store.boundedjson.scan

    def exploding_scan(data, name):  # a failure nobody foresaw, in the intake's and the grader's reading
        if b"BOOM" in data:
            raise MemoryError()
        return real_scan(data, name)

    monkeypatch.setattr(store.boundedjson, "scan", exploding_scan)
    assert pipeline.boundedjson.scan is exploding_scan
    said: list[str] = []
    deadline = time.monotonic() + 120
    watch(cfg, ["tiny01"], workers=1, limits=LIMITS, say=said.append, interval=0,
          stop=lambda: len([s for s in said if " points (" in s]) >= 7 or time.monotonic() > deadline)
    rows = {s: (st, r) for s, src, st, r in handin_rows(cfg)}
    assert rows["honest"] == ("accepted", "")
    assert rows["deep"] == ("invalid", f"tiny01.ipynb {DEEP} (no notebook Jupyter saves is)")
    assert rows["bigint"][0] == "invalid" and rows["bigint"][1].startswith(f"tiny01.ipynb {LONG}")
    assert rows["boom"] == ("invalid", "the hand-in could not be checked (MemoryError); hand in a notebook as Jupyter saves it")
    lines = {line.split(": ", 1)[1].split(":")[0]: line.split(": ", 1)[1] for line in said if " points (" in line}
    assert lines["honest"] == "honest: 3 / 3 points (graded)"
    for student, why in (("deep", DEEP), ("bigint", LONG), ("rawdeep", DEEP), ("rawint", LONG),
                         ("rawboom", "tiny01.ipynb could not be read (MemoryError)")):
        assert lines[student].startswith(f"{student}: 0 / 3 points (invalid: ") and why in lines[student], lines[student]
    # recorded once: a second collection reads none of them again, and the grader does not grade them again
    engine = open_gradebook(cfg.db_url)
    assert collect(cfg, engine, "tiny01").unchanged == 4 and len(handin_rows(cfg)) == 4
    again = autograde(cfg, "tiny01", workers=1, limits=LIMITS, progress=False)
    assert again.results == [] and again.skipped == 7


def test_an_lms_zip_and_the_web_upload_refuse_them_and_take_the_rest(course_factory, tmp_path):
    cfg = make(course_factory, STUDENTS)
    engine = open_gradebook(cfg.db_url)
    honest = notebook(cfg)
    (tmp_path / "lms.zip").write_bytes(lms_zip({
        "Hanna Honest_101_assignsubmission_file_/tiny01.ipynb": honest,
        "Dora Deep_102_assignsubmission_file_/tiny01.ipynb": deep_notebook(cfg),
        "Bert Bigint_103_assignsubmission_file_/tiny01.ipynb": bigint_notebook(cfg)}))
    report = import_zip(cfg, engine, "tiny01", tmp_path / "lms.zip")
    assert report.accepted == ["honest"]
    assert dict(report.invalid) == {"deep": f"tiny01.ipynb {DEEP} (no notebook Jupyter saves is)",
                                    "bigint": f"tiny01.ipynb {LONG} (numbers are written as text in a notebook's outputs)"}
    assert (cfg.data_dir / "submitted" / "honest" / "tiny01" / "tiny01.ipynb").read_bytes() == honest
    for student, data, why in (("deep", deep_notebook(cfg), DEEP), ("bigint", bigint_notebook(cfg), LONG)):
        rec = accept_upload(cfg, engine, sheet="tiny01", student=student, kind="notebook", filename="tiny01.ipynb",
                            data=data, uploaded_by=student)
        assert rec.status == "refused" and why in rec.reason
    rec = accept_upload(cfg, engine, sheet="tiny01", student="honest", kind="notebook", filename="tiny01.ipynb",
                        data=honest, uploaded_by="honest")
    assert rec.status == "accepted"
    assert not (cfg.data_dir / "submitted" / "deep").exists() and not (cfg.data_dir / "submitted" / "bigint").exists()
