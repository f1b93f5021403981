"""nbgrader's own tables, created in-process.

nbgrader's ``Gradebook()`` on an empty database shells out to the ``alembic`` command to learn its
schema revision (3-4 s, and it fails outside an activated venv, leaving no ``alembic_version``).
Creating the tables and stamping the head revision here, in-process, avoids both.
"""
from __future__ import annotations

import os

from sqlalchemy import Engine, inspect, text


def nbgrader_head_revision() -> str:
    import nbgrader
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", os.path.join(os.path.dirname(nbgrader.__file__), "alembic"))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head is not None
    return head


def ensure_nbgrader_schema(engine: Engine) -> None:
    """Create nbgrader's tables and its ``alembic_version`` row if the database lacks them."""
    tables = set(inspect(engine).get_table_names())
    if "alembic_version" in tables and "grade" in tables:
        return
    from nbgrader.api import Base  # a 3 s import: only when the database is new

    Base.metadata.create_all(bind=engine)
    with engine.begin() as conn:
        if "alembic_version" not in tables:
            conn.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)"))
            conn.execute(text("INSERT INTO alembic_version (version_num) VALUES (:v)"), {"v": nbgrader_head_revision()})
