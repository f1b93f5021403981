"""The gradebook's version: one row whose counter every committed write raises in its own transaction
(``gradebook.store.db``), so that every process (each uvicorn worker) can tell whether what it computed
from the gradebook (decided sheets, standings) is still current with one indexed read; a second counter
raised only by writes that may change any student's standing, and per student the counter's value at the
last write that changed only named students (``student_version``), so that one student's page stays current
while others are graded. And the indexes
that one student's notebook points need in nbgrader's tables (which have none on these foreign keys:
without them, one student's page scans every grade of the course).

Revision ID: 0005_webperf
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

revision = "0005_webperf"
down_revision = "0004"
branch_labels = None
depends_on = None
INDEXES = (("ix_mlph_submitted_assignment_student", "submitted_assignment", ["student_id"]),
           ("ix_mlph_submitted_notebook_assignment", "submitted_notebook", ["assignment_id"]),
           ("ix_mlph_grade_notebook", "grade", ["notebook_id"]))


def upgrade() -> None:
    table = op.create_table("gradebook_version",
                            sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
                            sa.Column("counter", sa.BigInteger(), nullable=False, server_default="0"),
                            sa.Column("course_counter", sa.BigInteger(), nullable=False, server_default="0"))
    op.bulk_insert(table, [{"id": 1, "counter": 0, "course_counter": 0}])
    op.create_table("student_version", sa.Column("student_id", sa.String(128), primary_key=True),
                    sa.Column("counter", sa.BigInteger(), nullable=False))
    for name, on, columns in INDEXES:
        op.create_index(name, on, columns)


def downgrade() -> None:
    for name, on, _columns in INDEXES:
        op.drop_index(name, table_name=on)
    op.drop_table("student_version")
    op.drop_table("gradebook_version")
