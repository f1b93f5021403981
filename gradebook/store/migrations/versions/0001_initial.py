"""Our tables beside nbgrader's: profiles, staff, groups, teams, points, audit, overrides, results.

Revision ID: 0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def _student_fk() -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["student_id"], ["student.id"], ondelete="CASCADE")


def upgrade() -> None:
    op.create_table("student_profile", sa.Column("student_id", sa.String(128), primary_key=True),
                    sa.Column("matriculation", sa.String(32), unique=True), sa.Column("programme", sa.String(128)),
                    _student_fk())
    op.create_table("person", sa.Column("id", sa.String(128), primary_key=True), sa.Column("name", sa.String(256)),
                    sa.Column("email", sa.String(256)), sa.Column("role", sa.String(16), nullable=False))
    op.create_table("tutorial_group", sa.Column("id", sa.String(64), primary_key=True),
                    sa.Column("name", sa.String(256), nullable=False),
                    sa.Column("tutor_id", sa.String(128), sa.ForeignKey("person.id")))
    op.create_table("group_membership", sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
                    sa.Column("student_id", sa.String(128), nullable=False),
                    sa.Column("group_id", sa.String(64), sa.ForeignKey("tutorial_group.id"), nullable=False),
                    sa.Column("valid_from", TZ, nullable=False), sa.Column("valid_to", TZ), _student_fk())
    op.create_table("team_member", sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
                    sa.Column("sheet", sa.String(128), nullable=False), sa.Column("team", sa.String(128), nullable=False),
                    sa.Column("student_id", sa.String(128), nullable=False), _student_fk(),
                    sa.UniqueConstraint("sheet", "student_id"))
    op.create_table("paper_points", sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
                    sa.Column("sheet", sa.String(128), nullable=False), sa.Column("task", sa.String(128), nullable=False),
                    sa.Column("student_id", sa.String(128), nullable=False),
                    sa.Column("points", sa.String(32), nullable=False),
                    sa.Column("entered_by", sa.String(128), nullable=False), sa.Column("entered_at", TZ, nullable=False),
                    sa.Column("version", sa.Integer, nullable=False, server_default="1"), _student_fk(),
                    sa.UniqueConstraint("sheet", "task", "student_id"))
    op.create_table("audit_log", sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
                    sa.Column("at", TZ, nullable=False), sa.Column("author", sa.String(128), nullable=False),
                    sa.Column("entity", sa.String(64), nullable=False), sa.Column("key", sa.String(512), nullable=False),
                    sa.Column("old_value", sa.Text), sa.Column("new_value", sa.Text), sa.Column("reason", sa.Text))
    op.create_table("admission_override", sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
                    sa.Column("student_id", sa.String(128), nullable=False), sa.Column("status", sa.String(16), nullable=False),
                    sa.Column("reason", sa.Text, nullable=False), sa.Column("author", sa.String(128), nullable=False),
                    sa.Column("created_at", TZ, nullable=False), sa.Column("revoked_at", TZ), _student_fk())
    op.create_table("extension", sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
                    sa.Column("sheet", sa.String(128), nullable=False), sa.Column("student_id", sa.String(128), nullable=False),
                    sa.Column("until", TZ, nullable=False), sa.Column("reason", sa.Text),
                    sa.Column("author", sa.String(128), nullable=False), _student_fk(),
                    sa.UniqueConstraint("sheet", "student_id"))
    op.create_table("autograde_result", sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
                    sa.Column("sheet", sa.String(128), nullable=False), sa.Column("student_id", sa.String(128), nullable=False),
                    sa.Column("status", sa.String(16), nullable=False), sa.Column("reason", sa.Text),
                    sa.Column("fingerprint", sa.String(64), nullable=False), sa.Column("submitted_at", TZ),
                    sa.Column("graded_at", TZ, nullable=False), sa.Column("score", sa.String(32), nullable=False),
                    sa.Column("max_score", sa.String(32), nullable=False), sa.Column("result_json", sa.Text, nullable=False),
                    sa.UniqueConstraint("sheet", "student_id"))


def downgrade() -> None:
    for table in ("autograde_result", "extension", "admission_override", "audit_log", "paper_points", "team_member",
                  "group_membership", "tutorial_group", "person", "student_profile"):
        op.drop_table(table)
