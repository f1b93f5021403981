"""The grading queue and the graders' heartbeats.

- ``grading_job``: one row per grading of a (sheet, student) hand-in, with when the hand-in was received,
  queued, started and finished. At most one job per (sheet, student) is ``queued`` (a partial unique index):
  a newer hand-in replaces the queued one's hand-in instead of queueing a second job. A ``running`` job
  holds a lease (``lease_until``) that its grader extends; a job whose grader died is taken again.
- ``grader``: every grading process (``mlph autograde --watch``, ``mlph serve --grade``) with its heartbeat
  and when it last finished a job, so the web application can say whether grading runs.

Revision ID: 0005_queue
Revises: 0005_conventions
"""
import sqlalchemy as sa
from alembic import op

revision = "0005_queue"
down_revision = "0005_conventions"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table("grading_job", sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
                    sa.Column("sheet", sa.String(128), nullable=False),
                    sa.Column("student_id", sa.String(128), nullable=False),
                    sa.Column("state", sa.String(16), nullable=False),
                    sa.Column("handin_id", sa.Integer),
                    sa.Column("received_at", TZ),
                    sa.Column("queued_at", TZ, nullable=False),
                    sa.Column("not_before", TZ),
                    sa.Column("started_at", TZ),
                    sa.Column("finished_at", TZ),
                    sa.Column("grader", sa.String(128)),
                    sa.Column("lease_until", TZ),
                    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
                    sa.Column("replaced", sa.Integer, nullable=False, server_default="0"),
                    sa.Column("outcome", sa.String(32)),
                    sa.Column("fingerprint", sa.String(64)),
                    sa.Column("reason", sa.Text))
    op.create_index("uq_grading_job_queued", "grading_job", ["sheet", "student_id"], unique=True,
                    sqlite_where=sa.text("state = 'queued'"), postgresql_where=sa.text("state = 'queued'"))
    op.create_index("ix_grading_job_state_queued_at", "grading_job", ["state", "queued_at"])
    op.create_table("grader", sa.Column("id", sa.String(128), primary_key=True),
                    sa.Column("host", sa.String(255), nullable=False),
                    sa.Column("pid", sa.Integer, nullable=False),
                    sa.Column("sheets", sa.Text, nullable=False),
                    sa.Column("started_at", TZ, nullable=False),
                    sa.Column("heartbeat_at", TZ, nullable=False),
                    sa.Column("last_finished_at", TZ),
                    sa.Column("jobs_done", sa.Integer, nullable=False, server_default="0"),
                    sa.Column("log_path", sa.String(1024)),
                    sa.Column("stopped_at", TZ))


def downgrade() -> None:
    op.drop_table("grader")
    op.drop_index("ix_grading_job_state_queued_at", "grading_job")
    op.drop_index("uq_grading_job_queued", "grading_job")
    op.drop_table("grading_job")
