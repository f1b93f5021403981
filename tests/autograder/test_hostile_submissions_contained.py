"""Hostile submissions, written by someone who has read our source: one batch, one test per attack.

Every attack is graded in the same `mlph autograde` batch as an honest submission; each test
asserts the attack's exact score, that the honest student keeps 3 of 3, and what the attack did
not manage (files unchanged, no process left, nothing leaked into the feedback).
"""
from __future__ import annotations

import hashlib
import html
import json
import subprocess
from pathlib import Path
from typing import Any

import nbformat
import pytest

from autograder.grading.assemble import grade_id
from autograder.grading.run import autograde
from autograder.limits import Limits
from autograder.nbgrader_bridge import generate
from coursefactory import TINY_ANSWER, WRONG_ANSWER, make_course
from gradebook.course.config import load_config

LIMITS = Limits(cell_timeout=6, notebook_timeout=90, interrupt_grace=2)
CORRECT = TINY_ANSWER.strip("\n")
MARKER = "876543.21"
HIDDEN_TOKENS = ("linspace", "3.25", "scale_hidden", "arange(4.0)")


BAD_RECORDS = [
    {"name": "scale_visible", "value": {"scalar": 10**400}, "mode": "close", "rtol": 1e-6, "atol": 1e-9},
    {"name": "scale_visible", "value": {"shape": [10**9, 10**9], "kind": "number", "data": []}, "mode": "close",
     "rtol": 1e-6, "atol": 1e-9},
    {"name": "scale_visible", "value": {"shape": [3], "kind": "number", "data": [2.0, "4", None]}, "mode": "close",
     "rtol": 1e-6, "atol": 1e-9},
    {"name": "scale_visible", "value": {"scalar": 1.0}, "mode": "close", "rtol": -1, "atol": "x"},
    {"name": ["list"], "value": {}, "mode": 7}, "string", None, 12345,
]
ACTIVE_HTML = """from IPython.display import display, HTML, Javascript, SVG
display(HTML('<b>bold</b><script>alert(1)</script><img src=x onerror="alert(2)"><a href="javascript:alert(3)">x</a>'))
display(Javascript('alert(4)'))
display(SVG('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(5)</script></svg>'))
display({'text/html': '<iframe src="javascript:alert(6)"></iframe>', 'text/markdown': '<script>alert(7)</script>',
         'application/vnd.jupyter.widget-view+json': {'model_id': 'x'}}, raw=True)"""
# Reads every test cell's source as it runs and tries every channel into the feedback: the exception's text and
# class name (plain, base64, hex), a record's name, string value and shape, and the output.
EVERY_CHANNEL = """import base64, numpy as np
from IPython.display import display
_src = []
def _grab(info):
    _src.append(info.raw_cell)
    s = "".join(_src)
    for enc in (s, base64.b64encode(s.encode()).decode(), s.encode().hex()):
        display({'application/vnd.mlph.check+json': {'name': 'scale_more', 'value': {'scalar': enc[:190]},
                 'mode': 'close', 'rtol': 0.0, 'atol': 0.0}}, raw=True)
    print(s)
get_ipython().events.register('pre_run_cell', _grab)
def scale(x, a):
    if a == 4:
        s = "".join(_src)
        leak = type(base64.b64encode(s.encode()).decode()[:60].replace('+', '_').replace('/', '_').replace('=', '_'),
                    (ValueError,), {})
        raise leak(s + " | " + base64.b64encode(s.encode()).decode() + " | " + s.encode().hex())
    return a * np.asarray(x, dtype=float)
"""


def attacks(root: Path, db: Path) -> dict[str, tuple[str, list[str], int]]:
    """student -> (answer cell source, extra cells after it, exact expected score)."""
    source_nb = root / "source" / "tiny01" / "tiny01.ipynb"
    return {
        "read_source": (
            f"try:\n    exec(open({str(source_nb)!r}).read())\n    print('READ SOURCE')\n"
            f"except OSError as e:\n    print('no source:', type(e).__name__)\n" + WRONG_ANSWER, [], 0),
        "write_gradebook": (
            f"import sqlite3\ntry:\n    c = sqlite3.connect({str(db)!r})\n"
            "    c.execute('UPDATE grade SET manual_score = 300'); c.commit(); print('WROTE DB')\n"
            "except Exception as e:\n    print('no db:', type(e).__name__)\n" + WRONG_ANSWER, [], 0),
        "write_config": (
            f"for p in [{str(root / 'nbgrader_config.py')!r}, {str(root / 'mlph.toml')!r}, {str(source_nb)!r}]:\n"
            "    try:\n        open(p, 'a').write('\\nimport os; os.system(\"touch /tmp/pwned\")\\n')\n"
            "    except OSError as e:\n        print('no write:', type(e).__name__)\n" + WRONG_ANSWER, [], 0),
        "background": (
            f"import subprocess\nsubprocess.Popen(['setsid', 'sh', '-c', 'sleep {MARKER} & sleep {MARKER}'])\n" + CORRECT,
            [], 3),
        "big_output": (CORRECT + "\nprint('x' * 40_000_000)", [], 3),
        "sigint_loop": (CORRECT, ["import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass"], 3),
        "memory_30gb": (CORRECT, ["import numpy as np\nx = np.ones(30 * 2**30 // 8)"], 3),
        "fork_bomb": (CORRECT, ["import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"], 3),
        "network": (
            "import socket\ntry:\n    socket.create_connection(('127.0.0.1', 5432), timeout=2); print('CONNECTED')\n"
            "except OSError as e:\n    print('no network:', type(e).__name__)\n" + CORRECT, [], 3),
        "forge_expected": (
            "import mlph_check\n_real = mlph_check.check\n"
            "def check(name, value, expected=None, **kw):\n"
            "    return _real(name, value if expected is None else expected, **kw)\n"
            "mlph_check.check = check\n" + WRONG_ANSWER, [], 0),
        "frame_peek": (
            "import sys, numpy as np, mlph_check\n_real = mlph_check.check\n"
            "def check(name, value, expected=None, **kw):\n"
            "    g = sys._getframe(1).f_globals\n"
            "    alt = [v for k, v in g.items() if k.startswith('_') and isinstance(v, np.ndarray)"
            " and v.shape == np.shape(value) and not np.array_equal(v, value)]\n"
            "    return _real(name, alt[-1] if alt else value, **kw)\n" + WRONG_ANSWER, [], 0),
        "leak_hidden": (
            "def _leak(info):\n    if 'check(' in info.raw_cell:\n        raise ValueError(info.raw_cell)\n"
            "get_ipython().events.register('pre_run_cell', _leak)\n" + CORRECT, [], 0),
        "leak_record": (  # smuggles a hidden test's inputs out through a later visible check's message
            "import numpy as np\n_seen = []\n"
            "def _spy(info):\n    if 'np.arange' in info.raw_cell:\n"
            "        _seen.append(info.raw_cell[info.raw_cell.index('np.arange'):])\n"
            "get_ipython().events.register('pre_run_cell', _spy)\n"
            "def scale(x, a):\n    if a == 4 and _seen:\n        return _seen[-1]\n"
            "    return a * np.asarray(x, dtype=float)\n", [], 1),
        "malformed_records": (  # records of every malformed kind, shown while each test cell runs
            "from IPython.display import display\nMIME = 'application/vnd.mlph.check+json'\n"
            f"BAD = {BAD_RECORDS!r}\n"
            "def _spam(info):\n    for b in BAD:\n        display({MIME: b}, raw=True)\n"
            "    for i in range(50):\n        display({MIME: {'name': 'n%d' % i, 'value': {'scalar': 1.0}, "
            "'mode': 'close', 'rtol': 0.0, 'atol': 0.0}}, raw=True)\n"
            "get_ipython().events.register('pre_run_cell', _spam)\n" + CORRECT, [], 3),
        "display_amplify": (CORRECT, [
            "from IPython.display import display, update_display\n"
            "for _ in range(100):\n    display({'text/plain': 'x'}, display_id='d', raw=True)\n"
            "for _ in range(40):\n    update_display({'text/plain': 'z' * 500_000}, display_id='d', raw=True)"], 3),
        "active_html": (CORRECT, [ACTIVE_HTML], 3),
        "every_channel": (EVERY_CHANNEL, [], 1),
    }


def _student_nb(release: Path, answer: str, extra: list[str]) -> Any:
    nb = nbformat.read(release, as_version=4)
    for i, cell in enumerate(nb.cells):
        if grade_id(cell) == "scale_solution":
            cell.source = answer
            for j, src in enumerate(extra):
                nb.cells.insert(i + 1 + j, nbformat.v4.new_code_cell(src))
            break
    return nb


def _tampered(release: Path) -> dict[str, Any]:
    """Test cells edited, retagged, duplicated: the source's tests are restored in every case."""
    edited = _student_nb(release, WRONG_ANSWER, [])
    for cell in edited.cells:
        if grade_id(cell) == "test_scale_visible":
            cell.source = "check('scale_visible', [2.0, 4.0, 6.0])\ncheck('scale_hidden_a', [0.0, -1.5, -3.0, -4.5])"
    retagged = _student_nb(release, WRONG_ANSWER, [])
    for cell in retagged.cells:
        if grade_id(cell) == "test_scale_more":
            cell.metadata["nbgrader"].update(grade=False, grade_id="my_cell", points=0)
    duplicated = _student_nb(release, CORRECT, [])
    duplicated.cells.append(nbformat.v4.new_code_cell("print('dup')", id=duplicated.cells[1].id))
    return {"edited_tests": (edited, 0), "retagged_tests": (retagged, 0), "duplicate_ids": (duplicated, 3)}


def _digest(paths: list[Path]) -> list[str]:
    return [hashlib.sha256(p.read_bytes()).hexdigest() for p in paths]


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("hostile") / "course"
    make_course(root)
    mp = pytest.MonkeyPatch()
    mp.setenv("MLPH_ROOT", str(root))
    cfg = load_config()
    generate(cfg, "tiny01")
    db = Path(cfg.db_url.removeprefix("sqlite:///"))
    release = cfg.release_dir / "tiny01" / "tiny01.ipynb"
    expected: dict[str, int] = {"honest": 3}
    notebooks = {"honest": _student_nb(release, CORRECT, [])}
    for sid, (answer, extra, score) in attacks(root, db).items():
        notebooks[sid], expected[sid] = _student_nb(release, answer, extra), score
    for sid, (nb, score) in _tampered(release).items():
        notebooks[sid], expected[sid] = nb, score
    added_md = notebooks["active_html"]
    added_md.cells.insert(3, nbformat.v4.new_markdown_cell('<script>alert(8)</script><img src=x onerror="alert(9)">',
                                                           attachments={"a.svg": {"image/svg+xml": "PHN2Zz4="}}))
    for sid, nb in notebooks.items():
        d = cfg.data_dir / "submitted" / sid / "tiny01"
        d.mkdir(parents=True)
        (d / "timestamp.txt").write_text("2026-11-03 12:00:00.000000 UTC")
        nbformat.write(nb, d / "tiny01.ipynb")
    protected = [root / "nbgrader_config.py", root / "mlph.toml", root / "source" / "tiny01" / "tiny01.ipynb"]
    before = _digest(protected)
    summary = autograde(cfg, "tiny01", workers=2, limits=LIMITS, progress=False)
    results = {r["student"]: r for r in summary.results}
    yield {"cfg": cfg, "results": results, "expected": expected, "protected": protected, "before": before}
    mp.undo()


def _output(batch: dict[str, Any], student: str) -> str:
    nb = nbformat.read(batch["cfg"].data_dir / "autograded" / student / "tiny01" / "tiny01.ipynb", as_version=4)
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)


def _assert_score(batch: dict[str, Any], student: str) -> dict[str, Any]:
    res = batch["results"][student]
    assert res["score"] == str(batch["expected"][student]), (student, res["status"], res["reason"], res["cells"])
    assert batch["results"]["honest"]["score"] == "3" and batch["results"]["honest"]["status"] == "graded"
    return res


def test_reading_the_source_notebook_finds_nothing(batch):
    _assert_score(batch, "read_source")
    assert "no source: FileNotFoundError" in _output(batch, "read_source")


def test_the_gradebook_is_out_of_reach(batch):
    _assert_score(batch, "write_gradebook")
    assert "WROTE DB" not in _output(batch, "write_gradebook")
    from nbgrader.api import Gradebook

    with Gradebook(batch["cfg"].db_url, course_id="mlph") as gb:
        scores = {s.student.id: s.score for s in gb.find_assignment("tiny01").submissions}
    assert scores["write_gradebook"] == 0 and scores["honest"] == 3 and max(scores.values()) == 3


def test_configuration_and_source_cannot_be_changed(batch):
    _assert_score(batch, "write_config")
    assert _digest(batch["protected"]) == batch["before"]
    assert _output(batch, "write_config").count("no write: FileNotFoundError") == 3
    assert not Path("/tmp/pwned").exists()


def test_no_background_process_outlives_grading(batch):
    _assert_score(batch, "background")
    assert subprocess.run(["pgrep", "-f", f"sleep {MARKER}"], capture_output=True, text=True).stdout == ""


def test_40_mb_on_one_line_is_cut_to_the_output_limit(batch):
    _assert_score(batch, "big_output")
    path = batch["cfg"].data_dir / "autograded" / "big_output" / "tiny01" / "tiny01.ipynb"
    assert path.stat().st_size < 2 * LIMITS.output_bytes
    assert "output truncated" in path.read_text()


def test_a_loop_ignoring_sigint_costs_only_its_own_cell(batch):
    res = _assert_score(batch, "sigint_loop")
    assert any("ignored the interrupt, so the kernel was restarted" in n for n in res["notes"])
    assert any("a cell you added after your answer cell `def scale(x, a):`" in n for n in res["notes"])


def test_a_30_gb_allocation_fails_inside_the_sandbox_only(batch):
    _assert_score(batch, "memory_30gb")


def test_a_fork_bomb_is_contained_and_cleaned_up(batch):
    res = _assert_score(batch, "fork_bomb")
    assert any("the kernel was restarted" in n for n in res["notes"])


def test_there_is_no_network(batch):
    _assert_score(batch, "network")
    assert "no network: ConnectionRefusedError" in _output(batch, "network")


def test_a_check_that_records_the_expected_value_gains_nothing(batch):
    _assert_score(batch, "forge_expected")


def test_reference_values_are_not_in_the_kernel_to_be_picked(batch):
    _assert_score(batch, "frame_peek")


def _encodings(token: str) -> list[str]:
    import base64

    return [token, base64.b64encode(token.encode()).decode()[:8], token.encode().hex()[:8]]


@pytest.mark.parametrize("student, shown, to_student", [
    ("leak_hidden", "the test stopped with a ValueError", False),  # raised in a hidden part: staff only
    ("leak_record", "check 'scale_more' has the wrong shape", True),  # a visible check: the student too
    ("every_channel", "an exception of a class defined in your code", False)])
def test_hidden_test_source_does_not_leak_into_feedback(batch, student, shown, to_student):
    """Every channel a student's code has into the feedback (exception text and class name, record names,
    values and shapes, printed output), plain or encoded: no hidden name, input or number comes out."""
    res = _assert_score(batch, student)
    feedback = (batch["cfg"].data_dir / "feedback" / student / "tiny01" / "tiny01.html").read_text()
    assert shown in " ".join(c["message"] for c in res["cells"])  # the staff's result
    assert (html.escape(shown) in feedback) is to_student
    stored = batch["cfg"].data_dir / "feedback" / student
    from sqlalchemy import create_engine, text

    with create_engine(batch["cfg"].db_url).connect() as conn:
        row = conn.execute(text("SELECT result_json FROM autograde_result WHERE student_id = :s"), {"s": student}).one()
    public = json.loads(row[0])
    public_text = feedback + json.dumps({k: public[k] for k in ("cells", "notes", "reason")})
    for token in HIDDEN_TOKENS:
        for enc in _encodings(token):
            assert enc not in public_text, (token, enc)
    assert stored.is_dir()


def test_malformed_and_out_of_range_records_never_stop_the_grader(batch):
    res = _assert_score(batch, "malformed_records")
    assert res["status"] == "graded"


def test_display_updates_cannot_amplify_output(batch):
    _assert_score(batch, "display_amplify")
    path = batch["cfg"].data_dir / "autograded" / "display_amplify" / "tiny01" / "tiny01.ipynb"
    assert path.stat().st_size < 3 * LIMITS.output_bytes
    assert "output truncated" in path.read_text()


def test_active_content_in_outputs_is_stored_inert(batch):
    _assert_score(batch, "active_html")
    nb = nbformat.read(batch["cfg"].data_dir / "autograded" / "active_html" / "tiny01" / "tiny01.ipynb", as_version=4)
    # what a browser renders: outputs, Markdown and raw cells, attachments (code is shown as text)
    rendered = json.dumps([c.get("outputs", []) for c in nb.cells] + [c for c in nb.cells if c.cell_type != "code"])
    assert "<b>bold</b>" in rendered  # harmless HTML is kept
    for active in ("<script", "onerror", "javascript:", "application/javascript", "image/svg+xml", "<iframe",
                   "widget-view", "attachments"):
        assert active not in rendered, active


@pytest.mark.parametrize("student", ["edited_tests", "retagged_tests", "duplicate_ids"])
def test_tampered_test_cells_are_restored(batch, student):
    _assert_score(batch, student)
