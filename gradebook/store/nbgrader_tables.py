"""nbgrader's tables as SQLAlchemy Core ``Table`` objects, for reading and writing them without
importing nbgrader (whose package import alone takes about 3 s).

Column names and types follow nbgrader 0.9's ``nbgrader/api.py``; nbgrader itself creates the
tables (see :mod:`gradebook.store.nbgrader_schema`), so this metadata is never used for ``create_all``.
"""
from __future__ import annotations

import uuid
from fractions import Fraction
from functools import lru_cache

from sqlalchemy import Boolean, Column, DateTime, Float, ForeignKey, Interval, MetaData, String, Table, Text

metadata = MetaData()


def new_id() -> str:
    """nbgrader's primary keys: a uuid4 in hex."""
    return uuid.uuid4().hex


student = Table("student", metadata, Column("id", String(128), primary_key=True),
                Column("first_name", String(128)), Column("last_name", String(128)),
                Column("email", String(128)), Column("lms_user_id", String(128)))
assignment = Table("assignment", metadata, Column("id", String(32), primary_key=True),
                   Column("name", String(128)), Column("duedate", DateTime()), Column("course_id", String(128)))
notebook = Table("notebook", metadata, Column("id", String(32), primary_key=True), Column("name", String(128)),
                 Column("assignment_id", String(32), ForeignKey("assignment.id")))
base_cell = Table("base_cell", metadata, Column("id", String(32), primary_key=True), Column("name", String(128)),
                  Column("notebook_id", String(32), ForeignKey("notebook.id")), Column("type", String(50)))
grade_cells = Table("grade_cells", metadata, Column("id", String(32), ForeignKey("base_cell.id"), primary_key=True),
                    Column("max_score", Float()), Column("cell_type", String(16)))
solution_cells = Table("solution_cells", metadata,
                       Column("id", String(32), ForeignKey("base_cell.id"), primary_key=True))
submitted_assignment = Table("submitted_assignment", metadata, Column("id", String(32), primary_key=True),
                             Column("assignment_id", String(32), ForeignKey("assignment.id")),
                             Column("student_id", String(128), ForeignKey("student.id")),
                             Column("timestamp", DateTime()), Column("extension", Interval()))
submitted_notebook = Table("submitted_notebook", metadata, Column("id", String(32), primary_key=True),
                           Column("assignment_id", String(32), ForeignKey("submitted_assignment.id")),
                           Column("notebook_id", String(32), ForeignKey("notebook.id")),
                           Column("flagged", Boolean()), Column("late_submission_penalty", Float()))
grade = Table("grade", metadata, Column("id", String(32), primary_key=True),
              Column("notebook_id", String(32), ForeignKey("submitted_notebook.id")),
              Column("cell_id", String(32), ForeignKey("base_cell.id")),
              Column("auto_score", Float()), Column("manual_score", Float()), Column("extra_credit", Float()),
              Column("needs_manual_grade", Boolean()))
comment = Table("comment", metadata, Column("id", String(32), primary_key=True),
                Column("notebook_id", String(32), ForeignKey("submitted_notebook.id")),
                Column("cell_id", String(32), ForeignKey("base_cell.id")),
                Column("auto_comment", Text()), Column("manual_comment", Text()))


@lru_cache(maxsize=65536)
def exact_score(x: float | None) -> Fraction:
    """nbgrader stores scores as floats; scores take few distinct values, so each is converted once."""
    return Fraction(x).limit_denominator(10**6) if x is not None else Fraction(0)
