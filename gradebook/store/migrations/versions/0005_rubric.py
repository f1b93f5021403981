"""Rubric items by reference: ``rubric_item`` (a paper task's items in the database, seeded from the
manifest, edited by admins) and ``paper_points.adjustment`` (a grading's points beside its items).

Revision ID: 0005_rubric
Revises: 0005_queue
"""
import sqlalchemy as sa
from alembic import op

revision = "0005_rubric"
down_revision = "0005_queue"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rubric_item",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("sheet", sa.String(128), nullable=False),
        sa.Column("task", sa.String(128), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("points", sa.String(32), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False, server_default=""),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("sheet", "task", "key"),
    )
    with op.batch_alter_table("paper_points") as batch:
        batch.add_column(sa.Column("adjustment", sa.String(32)))


def downgrade() -> None:
    with op.batch_alter_table("paper_points") as batch:
        batch.drop_column("adjustment")
    op.drop_table("rubric_item")
