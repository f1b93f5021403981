"""Pages per paper task and anonymous grading per sheet.

- ``page_tag``: which pages of a paper hand-in (its PDF) answer which paper task; one row per hand-in and
  task, the pages as a sorted comma list ("1,2,5"); who tagged them and when (the changes are audited).
- ``sheet_state.anonymous``: tutors see pseudonyms instead of names on this sheet;
  ``sheet_state.pseudonym_key``: the sheet's random key of the pseudonyms (HMAC), made once, kept when the
  sheet is set anonymous again (the same pseudonyms).

Revision ID: 0005_pages
Revises: 0005_rubric
"""
import sqlalchemy as sa
from alembic import op

revision = "0005_pages"
down_revision = "0005_rubric"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("page_tag", sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
                    sa.Column("handin_id", sa.Integer, sa.ForeignKey("handin.id", ondelete="CASCADE"), nullable=False),
                    sa.Column("task", sa.String(128), nullable=False),
                    sa.Column("pages", sa.String(1024), nullable=False),
                    sa.Column("tagged_by", sa.String(128), nullable=False),
                    sa.Column("tagged_at", sa.DateTime(timezone=True), nullable=False),
                    sa.UniqueConstraint("handin_id", "task"))
    with op.batch_alter_table("sheet_state") as batch:
        batch.add_column(sa.Column("anonymous", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("pseudonym_key", sa.String(64)))


def downgrade() -> None:
    with op.batch_alter_table("sheet_state") as batch:
        batch.drop_column("pseudonym_key")
        batch.drop_column("anonymous")
    op.drop_table("page_tag")
