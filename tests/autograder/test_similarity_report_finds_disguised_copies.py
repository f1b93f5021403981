"""The similarity report: planted copies found, independent answers and given code not, inert HTML."""
from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from gradebook.course.config import CourseConfig

from autograder.cli import main
from autograder.similarity.answers import sheet_code
from autograder.similarity.detect import Settings, fingerprint, given_hashes, without
from autograder.similarity.report import build_report, similarity_report
from autograder.similarity.seeded import measure, seeded_corpus, write_handins


def _nb(cfg: CourseConfig, part: str, sheet: str) -> dict:
    return json.loads((cfg.root / part / sheet / f"{sheet}.ipynb").read_text(encoding="utf-8"))


def _hand_in(submitted: Path, student: str, sheet: str, release: dict, answers: dict[str, str]) -> Path:
    nb = json.loads(json.dumps(release))
    for cell in nb["cells"]:
        gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if gid in answers:
            cell["source"] = answers[gid]
    path = submitted / student / sheet / f"{sheet}.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb), encoding="utf-8")
    return path


@pytest.fixture
def course(course_factory: Callable[..., CourseConfig]) -> CourseConfig:
    return course_factory(tiny=(), real=("sheet01", "sheet02", "sheet06"))


def test_planted_disguised_copies_are_listed_and_independent_answers_are_not(course: CourseConfig) -> None:
    """Recall and precision over three real sheets' seeded corpora (150 students, 15 copied notebooks each)."""
    found = planted = listed = correct = expected = 0
    for sheet in ("sheet01", "sheet02", "sheet06"):
        corpus = seeded_corpus(_nb(course, "source", sheet), sheet, [f"st{i:03d}" for i in range(150)], seed=11)
        write_handins(corpus, _nb(course, "release", sheet), course.data_dir / "submitted", f"{sheet}.ipynb")
        report = build_report(course, sheet, teams={})
        assert not report.unreadable and report.hand_ins == 150
        m = measure(corpus, {c.grade_id: [(p.a.student, p.b.student) for p in c.pairs] for c in report.cells})
        found, planted, listed, correct = found + m.found, planted + m.planted, listed + m.listed, correct + m.correct
        expected += len(corpus.copied_from) * (len(corpus.answers) - len(corpus.short))
    assert planted == expected >= 15 * 8  # 15 copiers × the answer cells of more than three lines
    assert found / planted >= 0.9, (found, planted)
    assert correct / listed >= 0.8, (correct, listed)


def test_short_task_written_alike_by_everyone_is_not_flagged(course: CourseConfig) -> None:
    corpus = seeded_corpus(_nb(course, "source", "sheet01"), "sheet01", [f"st{i:03d}" for i in range(60)], seed=3,
                           copy_share=0.0)
    assert "center_solution" in corpus.short
    answers = corpus.answers["center_solution"]
    assert len(set(answers.values())) < len(answers)  # identical answers among independent students
    write_handins(corpus, _nb(course, "release", "sheet01"), course.data_dir / "submitted", "sheet01.ipynb")
    report = build_report(course, "sheet01", teams={})
    assert all(not c.pairs for c in report.cells), [(c.grade_id, len(c.pairs)) for c in report.cells]


def test_the_code_the_sheet_gives_never_counts(course: CourseConfig) -> None:
    release = _nb(course, "release", "sheet02")
    given = sheet_code(release)
    settings = Settings()
    drop = given_hashes(list(given.given) + list(given.answer_stubs.values()), settings)
    stub = given.answer_stubs["affinities_solution"]
    assert fingerprint(stub, settings).hashes and not without(fingerprint(stub, settings), drop).hashes
    setup = next(code for code in given.given if "import numpy" in code)
    pasted = stub.replace("raise NotImplementedError()", "pass") + "\n" + setup
    # two students hand in the stubs with the sheet's setup code pasted in: nothing to look at
    for student in ("ab1", "cd2", "ef3"):
        _hand_in(course.data_dir / "submitted", student, "sheet02", release,
                 {gid: (pasted if gid == "affinities_solution" else s) for gid, s in given.answer_stubs.items()})
    report = build_report(course, "sheet02", teams={})
    assert report.hand_ins == 3 and all(not c.pairs for c in report.cells)


def _corpus_course(course: CourseConfig, n: int = 40) -> tuple[dict, object]:
    corpus = seeded_corpus(_nb(course, "source", "sheet02"), "sheet02", [f"st{i:03d}" for i in range(n)], seed=5,
                           copy_share=0.0)
    release = _nb(course, "release", "sheet02")
    write_handins(corpus, release, course.data_dir / "submitted", "sheet02.ipynb")
    return release, corpus


def test_a_copy_from_an_earlier_semester_is_listed_as_a_reference(course: CourseConfig, tmp_path: Path) -> None:
    release, corpus = _corpus_course(course)
    past = tmp_path / "course-2025"
    old = seeded_corpus(_nb(course, "source", "sheet02"), "sheet02", [f"old{i:02d}" for i in range(20)], seed=99,
                        copy_share=0.0)
    write_handins(old, release, past / "submitted", "sheet02.ipynb")
    # a current student hands in last year's old07, disguised; two earlier students are never compared
    from random import Random

    from autograder.similarity.seeded import disguise
    copied = {cell: disguise(ans["old07"], Random(cell)) for cell, ans in old.answers.items()}
    _hand_in(course.data_dir / "submitted", "zz999", "sheet02", release, copied)
    report = build_report(course, "sheet02", against=[past], teams={})
    assert report.references == ["course-2025"]
    long_cells = [c for c in report.cells if c.grade_id not in corpus.short]
    for cell in long_cells:
        assert cell.references == 20
        pairs = {frozenset((p.a.author, p.b.author)): p for p in cell.pairs}
        assert frozenset(("zz999", "course-2025/old07")) in pairs, cell.grade_id
        assert pairs[frozenset(("zz999", "course-2025/old07"))].reference
        assert all(not (p.a.origin and p.b.origin) for p in cell.pairs)


def test_team_members_count_as_one_author(course: CourseConfig) -> None:
    release, corpus = _corpus_course(course)
    same = {cell: ans["st001"] for cell, ans in corpus.answers.items()}
    _hand_in(course.data_dir / "submitted", "team_b", "sheet02", release, same)
    together = build_report(course, "sheet02", teams={"st001": "t1", "team_b": "t1"})
    assert all(not c.pairs for c in together.cells)
    apart = build_report(course, "sheet02", teams={})
    assert any(frozenset(("st001", "team_b")) == frozenset((p.a.author, p.b.author))
               for c in apart.cells for p in c.pairs)


def test_unreadable_hand_ins_are_reported_and_the_report_goes_on(course: CourseConfig, tmp_path: Path) -> None:
    release, corpus = _corpus_course(course, n=20)
    sub = course.data_dir / "submitted"
    (sub / "broken" / "sheet02").mkdir(parents=True)
    (sub / "broken" / "sheet02" / "sheet02.ipynb").write_text('{"cells": [', encoding="utf-8")
    (sub / "nested" / "sheet02").mkdir(parents=True)
    (sub / "nested" / "sheet02" / "sheet02.ipynb").write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    (sub / "linked" / "sheet02").mkdir(parents=True)
    secret = tmp_path / "secret.ipynb"
    secret.write_text(json.dumps(release), encoding="utf-8")
    os.symlink(secret, sub / "linked" / "sheet02" / "sheet02.ipynb")
    (sub / "other" / "sheet02").mkdir(parents=True)
    (sub / "other" / "sheet02" / "sheet02.ipynb").write_text('{"cells": "not a list"}', encoding="utf-8")
    report = build_report(course, "sheet02", teams={})
    reasons = {u.student: u.reason for u in report.unreadable}
    assert set(reasons) == {"broken", "nested", "linked", "other"}
    assert "JSON breaks at line 1" in reasons["broken"] and "nested deeper than" in reasons["nested"]
    assert "cannot be read" in reasons["linked"] and "none of the sheet's answer cells" in reasons["other"]
    assert report.hand_ins == 20


HOSTILE = ('def pairwise_sq_distances(X):\n    """x"""\n    # </pre><script>alert(1)</script><img src=x onerror=alert(2)>\n'
           '    s = "</pre><script>alert(3)</script>"\n    X = np.asarray(X, dtype=float)\n    total = 0\n'
           '    for i in range(len(X)):\n        total = total + np.sum(X[i] ** 3) * 7 - 1\n'
           '    G = X @ X.T\n    q = np.diag(G)\n    D = q[:, None] + q[None, :] - 2 * G + total * 0\n'
           '    return np.maximum(D, 0.0)\n')


def test_report_file_is_inert_escapes_student_code_and_says_it_is_no_verdict(course: CourseConfig) -> None:
    release, corpus = _corpus_course(course, n=20)
    for student in ("evil1", "evil2"):
        own = {cell: ans["st003"] for cell, ans in corpus.answers.items()} | {"distances_solution": HOSTILE}
        _hand_in(course.data_dir / "submitted", student, "sheet02", release, own)
    report = similarity_report(course, "sheet02")
    assert report.path == course.data_dir / "similarity" / "sheet02.html"
    html = report.path.read_text(encoding="utf-8")
    assert stat.S_IMODE(report.path.stat().st_mode) == 0o600
    assert "<script" not in html.lower() and "<img" not in html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "&lt;/pre&gt;" in html
    assert "default-src &#39;none&#39;" in html or "default-src 'none'" in html
    assert "a reason to look at the two hand-ins, not a verdict" in html
    assert "<mark>" in html and "evil1" in html and "evil2" in html


def test_matching_regions_are_marked_and_added_dead_code_is_not(course: CourseConfig) -> None:
    release, corpus = _corpus_course(course, n=30)
    original = corpus.answers["affinities_solution"]["st004"]
    copy = original.replace("    return", "    if False:\n        print('unrelated dead code here')\n    return", 1)
    answers = {cell: ans["st004"] for cell, ans in corpus.answers.items()} | {"affinities_solution": copy}
    _hand_in(course.data_dir / "submitted", "copier", "sheet02", release, answers)
    report = build_report(course, "sheet02", teams={})
    cell = next(c for c in report.cells if c.grade_id == "affinities_solution")
    pair = next(p for p in cell.pairs if {p.a.student, p.b.student} == {"st004", "copier"})
    mine = pair.segments_a if pair.a.student == "copier" else pair.segments_b
    assert "".join(s.text for s in mine) == copy
    marked = "".join(s.text for s in mine if s.marked)
    assert "unrelated dead code" not in marked and len(marked) > 200
    assert "Row-stochastic affinities" not in marked  # the given docstring


def test_cli_prints_a_table_and_names_the_report(course: CourseConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    from autograder import cli

    monkeypatch.setattr(cli.console, "width", 250)
    _corpus_course(course, n=20)
    result = CliRunner().invoke(main, ["similarity", "sheet02"])
    assert result.exit_code == 0, result.output
    assert "similarity sheet02: 20 hand-ins" in result.output and "affinities_solution" in result.output
    assert f"report: {course.data_dir / 'similarity' / 'sheet02.html'}" in result.output
    bad = CliRunner().invoke(main, ["similarity", "sheet02", "--against", str(course.root)])
    assert bad.exit_code == 2 and "no hand-ins there" in bad.output


def test_teams_come_from_the_gradebook(gradebook_course: CourseConfig) -> None:
    from gradebook.people.teams import import_teams
    from gradebook.store.db import open_gradebook

    cfg = gradebook_course
    (cfg.root / "teams.csv").write_text("student_id,team\nab1,t1\ncd2,t1\n", encoding="utf-8")
    import_teams(open_gradebook(cfg.db_url), cfg.manifest("tiny01"), cfg.root / "teams.csv", "test")
    release = _nb(cfg, "release", "tiny01")
    answer = HOSTILE.replace("pairwise_sq_distances(X)", "scale(x, a)")
    for student in ("ab1", "cd2"):
        _hand_in(cfg.data_dir / "submitted", student, "tiny01", release, {"scale_solution": answer})
    _hand_in(cfg.data_dir / "submitted", "ef3", "tiny01", release, {"scale_solution": "def scale(x, a):\n    return a * x\n"})
    report = build_report(cfg, "tiny01")
    cell = next(c for c in report.cells if c.grade_id == "scale_solution")
    assert report.hand_ins == 3 and cell.answers == 2  # ab1 and cd2 are one author
    assert not cell.pairs


@pytest.mark.parametrize("sheet", ["sheet03", "sheet05", "sheet06"])
def test_seeded_answers_pass_the_sheets_own_tests(sheet: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The corpus is made of correct answers: independent and disguised copies alike pass the visible and
    hidden tests of the sheet (trusted code of our generator, run by plain exec)."""
    import contextlib
    import io

    repo = Path(__file__).resolve().parents[2]
    monkeypatch.syspath_prepend(str(repo / "release" / sheet))  # mlph_check
    source = json.loads((repo / "source" / sheet / f"{sheet}.ipynb").read_text(encoding="utf-8"))
    corpus = seeded_corpus(source, sheet, [f"st{i:02d}" for i in range(10)], seed=4, copy_share=0.3)
    assert corpus.copied_from
    for student in corpus.students:
        namespace: dict = {}
        for cell in source["cells"]:
            if cell["cell_type"] != "code":
                continue
            gid = cell["metadata"].get("nbgrader", {}).get("grade_id")
            code = corpus.answers[gid][student] if gid in corpus.answers else "".join(cell["source"])
            with contextlib.redirect_stdout(io.StringIO()):
                exec(compile(code, f"{student}:{gid}", "exec"), namespace)  # raises on a failed check
