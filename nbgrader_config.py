"""The course's nbgrader configuration.

Paths come from mlph.toml (and MLPH_COURSE_DIR / MLPH_DB_URL): the course data directory is
nbgrader's course root, while ``source/`` and ``release/`` stay in this repository. Running
``nbgrader formgrader`` (or any nbgrader command) from this directory uses the same settings as
``mlph``: both build them with :func:`autograder.nbgrader_bridge.nbgrader_config`.
"""
from pathlib import Path

from autograder.nbgrader_bridge import nbgrader_config
from gradebook.course.config import load_config

c = get_config()  # type: ignore[name-defined]  # noqa: F821 - provided by traitlets
c.merge(nbgrader_config(load_config(Path(__file__).resolve().parent)))
