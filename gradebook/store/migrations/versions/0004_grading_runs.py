"""How often a student's hand-ins of a sheet were graded: ``autograde_result.graded_runs`` and
``last_run_at`` (the per-sheet limit on graded runs, ``[grading]`` in sheet.toml).

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("autograde_result") as batch:
        batch.add_column(sa.Column("graded_runs", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("last_run_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    with op.batch_alter_table("autograde_result") as batch:
        batch.drop_column("last_run_at")
        batch.drop_column("graded_runs")
