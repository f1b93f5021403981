"""An index on audit_log(entity, key): a cell's history (the tutors' grid counts it to keep versions from
repeating after a clear) is read without scanning the whole log.

Revision ID: 0003
Revises: 0002
"""
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_audit_log_entity_key", "audit_log", ["entity", "key"])


def downgrade() -> None:
    op.drop_index("ix_audit_log_entity_key", table_name="audit_log")
