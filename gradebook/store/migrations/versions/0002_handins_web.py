"""Hand-ins and their decisions, sheet states, paper comments and rubric ticks, web accounts and sessions.

- ``handin``: every hand-in that reached the intake (exchange, web upload, LMS zip), accepted or not,
  with the server's time of receipt; the late decision is taken from it once and stored on
  ``autograde_result`` (``deadline``, ``late``, ``decision``).
- ``sheet_state``: released / closed by an admin (what is decided and what is still pending).
- ``paper_points.rubric`` (ticked rubric items, JSON) and ``paper_comment`` (a comment per task that
  the student sees, versioned like the points).
- ``student_profile.login``: the student's login on the course's Jupyter server (exchange identity).
- ``account``, ``web_session``, ``password_token``, ``login_attempt``: the web application's accounts.

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table("handin", sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
                    sa.Column("sheet", sa.String(128), nullable=False),
                    sa.Column("student_id", sa.String(128), nullable=False),
                    sa.Column("kind", sa.String(16), nullable=False),
                    sa.Column("source", sa.String(16), nullable=False),
                    sa.Column("received_at", TZ, nullable=False),
                    sa.Column("status", sa.String(16), nullable=False),
                    sa.Column("reason", sa.Text),
                    sa.Column("sha256", sa.String(64)),
                    sa.Column("size", sa.Integer),
                    sa.Column("original_name", sa.String(255)),
                    sa.Column("stored_path", sa.String(512)),
                    sa.Column("entry", sa.String(512)),
                    sa.Column("uploaded_by", sa.String(128)))
    op.create_index("ix_handin_sheet_student", "handin", ["sheet", "student_id", "kind"])
    with op.batch_alter_table("autograde_result") as batch:
        batch.add_column(sa.Column("deadline", TZ))
        batch.add_column(sa.Column("late", sa.Boolean))
        batch.add_column(sa.Column("decision", sa.Text))
    op.create_table("sheet_state", sa.Column("sheet", sa.String(128), primary_key=True),
                    sa.Column("released_at", TZ), sa.Column("closed_at", TZ),
                    sa.Column("closed_by", sa.String(128)), sa.Column("close_reason", sa.Text))
    with op.batch_alter_table("paper_points") as batch:
        batch.add_column(sa.Column("rubric", sa.Text))
    op.create_table("paper_comment", sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
                    sa.Column("sheet", sa.String(128), nullable=False), sa.Column("task", sa.String(128), nullable=False),
                    sa.Column("student_id", sa.String(128), nullable=False), sa.Column("text", sa.Text, nullable=False),
                    sa.Column("entered_by", sa.String(128), nullable=False), sa.Column("entered_at", TZ, nullable=False),
                    sa.Column("version", sa.Integer, nullable=False),
                    sa.ForeignKeyConstraint(["student_id"], ["student.id"], ondelete="CASCADE"),
                    sa.UniqueConstraint("sheet", "task", "student_id"))
    with op.batch_alter_table("student_profile") as batch:
        batch.add_column(sa.Column("login", sa.String(128)))
        batch.create_unique_constraint("uq_student_profile_login", ["login"])
    op.create_table("account", sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
                    sa.Column("username", sa.String(128), nullable=False, unique=True),
                    sa.Column("kind", sa.String(16), nullable=False),
                    sa.Column("subject_id", sa.String(128), nullable=False),
                    sa.Column("password_hash", sa.String(255)),
                    sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
                    sa.Column("created_at", TZ, nullable=False), sa.Column("last_login_at", TZ))
    op.create_table("web_session", sa.Column("id", sa.String(64), primary_key=True),
                    sa.Column("account_id", sa.Integer, sa.ForeignKey("account.id", ondelete="CASCADE"), nullable=False),
                    sa.Column("csrf", sa.String(64), nullable=False),
                    sa.Column("created_at", TZ, nullable=False), sa.Column("expires_at", TZ, nullable=False),
                    sa.Column("last_seen_at", TZ), sa.Column("revoked_at", TZ))
    op.create_table("password_token", sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
                    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
                    sa.Column("account_id", sa.Integer, sa.ForeignKey("account.id", ondelete="CASCADE"), nullable=False),
                    sa.Column("created_at", TZ, nullable=False), sa.Column("expires_at", TZ, nullable=False),
                    sa.Column("used_at", TZ), sa.Column("created_by", sa.String(128)))
    op.create_table("login_attempt", sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
                    sa.Column("username", sa.String(128), nullable=False), sa.Column("ip", sa.String(64)),
                    sa.Column("at", TZ, nullable=False), sa.Column("success", sa.Boolean, nullable=False))
    op.create_index("ix_login_attempt_username_at", "login_attempt", ["username", "at"])


def downgrade() -> None:
    for table in ("login_attempt", "password_token", "web_session", "account", "paper_comment", "sheet_state",
                  "handin"):
        op.drop_table(table)
    with op.batch_alter_table("student_profile") as batch:
        batch.drop_constraint("uq_student_profile_login", type_="unique")
        batch.drop_column("login")
    with op.batch_alter_table("paper_points") as batch:
        batch.drop_column("rubric")
    with op.batch_alter_table("autograde_result") as batch:
        for col in ("deadline", "late", "decision"):
            batch.drop_column(col)
