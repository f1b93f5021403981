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


def make_course(root: Path, tiny: tuple[str, ...] = ("tiny01",), real: tuple[str, ...] = (),
                planned: dict[str, int] | None = None, due: str = "2026-11-04T10:00:00") -> Path:
    """A course repository at ``root``: tiny sheets built here, real sheets copied from the repo."""
    root.mkdir(parents=True, exist_ok=True)
    semester = ""
    for sheet in tiny:
        d = root / "source" / sheet
        d.mkdir(parents=True)
        nbformat.write(tiny_notebook(), d / f"{sheet}.ipynb")
        (d / "sheet.toml").write_text(TINY_MANIFEST.format(sheet=sheet, due=due))
        (d / "mistakes.toml").write_text(
            f"[[mistake]]\ncell = \"scale_solution\"\nwhy = \"adds instead of multiplying\"\nsource = '''\n{WRONG_ANSWER}'''\n")
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
