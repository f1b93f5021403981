"""The gradebook's version: one row whose counter every committed write raises in its own transaction
(``gradebook.store.db``), so that every process (each uvicorn worker) can tell whether what it computed
from the gradebook (decided sheets, standings) is still current with one indexed read.

Revision ID: 0005_webperf
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

revision = "0005_webperf"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table("gradebook_version",
                            sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
                            sa.Column("counter", sa.BigInteger(), nullable=False, server_default="0"))
    op.bulk_insert(table, [{"id": 1, "counter": 0}])


def downgrade() -> None:
    op.drop_table("gradebook_version")
