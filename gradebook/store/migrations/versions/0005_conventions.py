"""The outbox's record: ``mail_log``, one row per message sent, written (dry run) or failed.

Revision ID: 0005_conventions
Revises: 0005_publish
"""
import sqlalchemy as sa
from alembic import op

revision = "0005_conventions"
down_revision = "0005_publish"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mail_log",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("recipient", sa.String(128), nullable=False),
        sa.Column("address", sa.String(255), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text()),
        sa.Column("author", sa.String(128), nullable=False),
    )
    op.create_index("ix_mail_log_kind_key", "mail_log", ["kind", "key"])


def downgrade() -> None:
    op.drop_index("ix_mail_log_kind_key", table_name="mail_log")
    op.drop_table("mail_log")
