"""Publishing paper points per sheet (``paper_publication``) and students' regrade requests per paper task
(``regrade_request``).

Revision ID: 0005_publish
Revises: 0005_webperf
"""
import sqlalchemy as sa
from alembic import op

revision = "0005_publish"
down_revision = "0005_webperf"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "paper_publication",
        sa.Column("sheet", sa.String(128), primary_key=True),
        sa.Column("published_at", sa.DateTime(timezone=True)),
        sa.Column("how", sa.String(16), nullable=False),
        sa.Column("author", sa.String(128), nullable=False),
    )
    op.create_table(
        "regrade_request",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("sheet", sa.String(128), nullable=False),
        sa.Column("task", sa.String(128), nullable=False),
        sa.Column("student_id", sa.String(128), sa.ForeignKey("student.id", ondelete="CASCADE"), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("grader", sa.String(128)),
        sa.Column("points_before", sa.String(32)),
        sa.Column("answered_at", sa.DateTime(timezone=True)),
        sa.Column("answered_by", sa.String(128)),
        sa.Column("answer", sa.Text()),
        sa.Column("points_after", sa.String(32)),
    )
    op.create_index("ix_regrade_request_open", "regrade_request", ["sheet", "task", "student_id", "answered_at"])


def downgrade() -> None:
    op.drop_index("ix_regrade_request_open", "regrade_request")
    op.drop_table("regrade_request")
    op.drop_table("paper_publication")
