"""Build courses in a temporary directory: a tiny sheet for fast pipeline tests, or copies of the real ones."""
from __future__ import annotations

import shutil
import textwrap
from pathlib import Path
from typing import Any

import nbformat
from nbformat import NotebookNode
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

REPO = Path(__file__).resolve().parents[1]


def _meta(gid: str, *, grade: bool = False, solution: bool = False, locked: bool = False,
          points: float | None = None) -> dict[str, Any]:
    m: dict[str, Any] = {"grade": grade, "solution": solution, "locked": locked, "grade_id": gid, "schema_version": 3}
    if points is not None:
        m["points"] = points
    return {"nbgrader": m}


def code(gid: str, src: str, **kw: Any) -> NotebookNode:
    return new_code_cell(textwrap.dedent(src).strip("\n"), metadata=_meta(gid, **kw))


TINY_SETUP = """
import numpy as np
from mlph_check import check
"""
TINY_ANSWER = """
def scale(x, a):
    \"\"\"Return a * x as a float array.\"\"\"
    ### BEGIN SOLUTION
    return a * np.asarray(x, dtype=float)
    ### END SOLUTION
"""
TINY_TESTS = {
    "test_scale_visible": ("""
check("scale_visible", scale([1, 2, 3], 2), expected=[2.0, 4.0, 6.0])
### BEGIN HIDDEN TESTS
check("scale_hidden_a", scale(np.arange(4.0), -1.5), expected=-1.5 * np.arange(4.0))
### END HIDDEN TESTS
""", 1),
    "test_scale_more": ("""
check("scale_more", scale([[1.0, 0.5]], 4), expected=[[4.0, 2.0]])
### BEGIN HIDDEN TESTS
check("scale_hidden_b", scale(np.linspace(0, 1, 5), 3.25), expected=3.25 * np.linspace(0, 1, 5))
### END HIDDEN TESTS
""", 2),
}
WRONG_ANSWER = "def scale(x, a):\n    return a + np.asarray(x, dtype=float)\n"
HALF_ANSWER = "def scale(x, a):\n    x = np.asarray(x, dtype=float)\n    return a * x if a == 2 else x\n"


def tiny_notebook() -> NotebookNode:
    cells = [new_markdown_cell("# Tiny sheet", metadata=_meta("intro", locked=True)),
             code("setup", TINY_SETUP, locked=True),
             code("scale_solution", TINY_ANSWER, solution=True)]
    cells += [code(gid, src, grade=True, locked=True, points=pts) for gid, (src, pts) in TINY_TESTS.items()]
    cells.append(new_markdown_cell("## Paper task\nProve it.", metadata=_meta("paper_proof", locked=True)))
    nb = new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                            "language": "python"}})
    return nb


# A paper task with a rubric (the tutors' grid tests append it to a tiny sheet's manifest).
RUBRIC_TASK = """
[[task]]
id = "derive"
title = "Derivation"
kind = "paper"
points = 4
solution = "Integrate by parts; the boundary term vanishes."

[[task.rubric]]
id = "setup"
text = "Sets up the integral"
points = 1.5

[[task.rubric]]
id = "result"
text = "Correct result"
points = 2.5
"""

# RUBRIC_TASK scored by deductions (a grading starts at the maximum 4): items "sign" -1 and "units" -0.5
DEDUCTIONS_TASK = RUBRIC_TASK.replace('points = 4\n', 'points = 4\nscoring = "deductions"\n', 1).replace(
    'id = "setup"\ntext = "Sets up the integral"\npoints = 1.5', 'id = "sign"\ntext = "Sign error"\npoints = -1').replace(
    'id = "result"\ntext = "Correct result"\npoints = 2.5', 'id = "units"\ntext = "Units missing"\npoints = -0.5')


def deductions_course(cfg: Any) -> Any:
    """``cfg`` (a CourseConfig) with tiny01's paper task "derive" scored by deductions (DEDUCTIONS_TASK)."""
    import dataclasses

    from gradebook.course.config import load_config

    manifest = cfg.root / "source" / "tiny01" / "sheet.toml"
    manifest.write_text(manifest.read_text() + DEDUCTIONS_TASK)
    return dataclasses.replace(load_config(cfg.root), db_url=cfg.db_url)


TINY_MANIFEST = """
id = "{sheet}"
title = "A tiny sheet"
notebook = "{sheet}.ipynb"
due = "{due}"
timezone = "Europe/Berlin"

[late]
policy = "zero"
grace_minutes = 15

[[task]]
id = "scale"
title = "Scaling"
kind = "notebook"
tests = {{ test_scale_visible = 1, test_scale_more = 2 }}

[[task]]
id = "proof"
title = "A proof"
kind = "paper"
points = 3
"""

CONFIG = """
[course]
name = "Test course"
timezone = "Europe/Berlin"
data_dir = "course-data"

[admission]
threshold = "1/2"

[intake]
identity = "shared"  # the tests submit every student as root
{semester}
"""


CONFORMING_PAPER = """
solution = '''
By linearity of the expectation, E[a X] = a E[X] for every constant a.
'''
[[task.rubric]]
id = "linearity"
text = "Uses the linearity of the expectation"
points = 2
[[task.rubric]]
id = "conclusion"
text = "Concludes E[a X] = a E[X]"
points = 1
"""
HANDIN_TEXT = ("\n\nHand in the pen-and-paper part as one PDF (scan or photo of handwriting, or typeset) on the "
               "course web page, next to your notebook.")
SETUP_DATA = ("\nX_data = np.linspace(0.0, 1.0, 5)\nX_data.flags.writeable = False\n\n\n"
              "def _readonly(a):\n    a.flags.writeable = False\n    return a\n")
DATA_TEST = "\ncheck(\"scale_data\", scale(X_data, 3.0), expected=3.0 * np.linspace(0.0, 1.0, 5))\n"


def conform(sheet_dir: Path) -> None:
    """Bring a tiny sheet to this round's conventions (source/README.md): a time budget, a rubric and a
    model solution for the paper task, the mistake's task, the hand-in sentence, read-only setup data."""
    sheet = sheet_dir.name
    manifest = sheet_dir / "sheet.toml"
    text = manifest.read_text().replace('timezone = "Europe/Berlin"\n', 'timezone = "Europe/Berlin"\ntime_budget_s = 2.0\n', 1)
    manifest.write_text(text + CONFORMING_PAPER)
    mistakes = sheet_dir / "mistakes.toml"
    mistakes.write_text(mistakes.read_text().replace('cell = "scale_solution"\n', 'cell = "scale_solution"\ntask = "scale"\n'))
    nb = nbformat.read(sheet_dir / f"{sheet}.ipynb", as_version=4)
    by_id = {c.metadata["nbgrader"]["grade_id"]: c for c in nb.cells}
    by_id["intro"].source += HANDIN_TEXT
    by_id["setup"].source += SETUP_DATA
    by_id["test_scale_more"].source = DATA_TEST.strip() + "\n" + by_id["test_scale_more"].source
    for gid in ("test_scale_visible", "test_scale_more"):  # every test input read-only
        by_id[gid].source = by_id[gid].source.replace("scale(np.arange(4.0)", "scale(_readonly(np.arange(4.0))").replace(
            "scale(np.linspace(0, 1, 5)", "scale(_readonly(np.linspace(0, 1, 5))")
    nbformat.write(nb, sheet_dir / f"{sheet}.ipynb")


def make_course(root: Path, tiny: tuple[str, ...] = ("tiny01",), real: tuple[str, ...] = (),
                planned: dict[str, int] | None = None, due: str = "2026-11-04T10:00:00",
                conforming: bool = False) -> Path:
    """A course repository at ``root``: tiny sheets built here, real sheets copied from the repo.
    ``conforming``: the tiny sheets follow this round's conventions (:func:`conform`)."""
    root.mkdir(parents=True, exist_ok=True)
    semester = ""
    for sheet in tiny:
        d = root / "source" / sheet
        d.mkdir(parents=True)
        nbformat.write(tiny_notebook(), d / f"{sheet}.ipynb")
        (d / "sheet.toml").write_text(TINY_MANIFEST.format(sheet=sheet, due=due))
        (d / "mistakes.toml").write_text(
            f"[[mistake]]\ncell = \"scale_solution\"\nwhy = \"adds instead of multiplying\"\nsource = '''\n{WRONG_ANSWER}'''\n")
        if conforming:
            conform(d)
        semester += f'\n[[semester.sheet]]\nid = "{sheet}"\n'
    for sheet in real:
        shutil.copytree(REPO / "source" / sheet, root / "source" / sheet)
        if (REPO / "release" / sheet).is_dir():
            shutil.copytree(REPO / "release" / sheet, root / "release" / sheet)
        semester += f'\n[[semester.sheet]]\nid = "{sheet}"\n'
    for sheet, pts in (planned or {}).items():
        semester += f'\n[[semester.sheet]]\nid = "{sheet}"\nplanned_points = {pts}\ndue = "2027-02-01T10:00:00"\n'
    (root / "mlph.toml").write_text(CONFIG.format(semester=semester))
    shutil.copy2(REPO / "nbgrader_config.py", root / "nbgrader_config.py")
    return root


def student_notebook(cfg: Any, answer: str, sheet: str = "tiny01") -> bytes:
    """The released tiny notebook with ``answer`` in its answer cell, as a student hands it in."""
    nb = nbformat.read(cfg.release_dir / sheet / f"{sheet}.ipynb", as_version=4)
    for cell in nb.cells:
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "scale_solution":
            cell.source = answer
    return nbformat.writes(nb).encode()
