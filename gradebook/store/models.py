"""Our tables, beside nbgrader's (which share this MetaData as Core tables, so foreign keys to
``student`` resolve). Points are stored as exact fraction strings ("13/2") and read as Fraction.
The schema is created and changed only by the Alembic migrations in ``gradebook/migrations``."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from gradebook.store.nbgrader_tables import metadata


class Base(DeclarativeBase):
    metadata = metadata


class StudentProfile(Base):
    """What nbgrader's ``student`` table lacks: matriculation number and study programme."""

    __tablename__ = "student_profile"
    student_id: Mapped[str] = mapped_column(String(128), ForeignKey("student.id", ondelete="CASCADE"), primary_key=True)
    matriculation: Mapped[str | None] = mapped_column(String(32), unique=True)
    programme: Mapped[str | None] = mapped_column(String(128))
    login: Mapped[str | None] = mapped_column(String(128), unique=True)  # login on the course's Jupyter server


class Person(Base):
    """Staff who use the gradebook: admins and tutors (students are nbgrader's ``student`` rows)."""

    __tablename__ = "person"
    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    name: Mapped[str] = mapped_column(String(256))
    email: Mapped[str | None] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16))  # admin | tutor


class TutorialGroup(Base):
    __tablename__ = "tutorial_group"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(256))
    tutor_id: Mapped[str | None] = mapped_column(String(128), ForeignKey("person.id"))


class GroupMembership(Base):
    """A student's membership in a group from ``valid_from`` until ``valid_to`` (None: current)."""

    __tablename__ = "group_membership"
    __table_args__ = (Index("ix_group_membership_student", "student_id"),
                      Index("ix_group_membership_group", "group_id"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    student_id: Mapped[str] = mapped_column(String(128), ForeignKey("student.id", ondelete="CASCADE"))
    group_id: Mapped[str] = mapped_column(String(64), ForeignKey("tutorial_group.id"))
    valid_from: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    valid_to: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class TeamMember(Base):
    """Teams hand in together per sheet; a student is in at most one team of a sheet."""

    __tablename__ = "team_member"
    __table_args__ = (UniqueConstraint("sheet", "student_id"), Index("ix_team_member_student", "student_id", "sheet"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sheet: Mapped[str] = mapped_column(String(128))
    team: Mapped[str] = mapped_column(String(128))
    student_id: Mapped[str] = mapped_column(String(128), ForeignKey("student.id", ondelete="CASCADE"))


class PaperPoints(Base):
    __tablename__ = "paper_points"
    __table_args__ = (UniqueConstraint("sheet", "task", "student_id"),
                      Index("ix_paper_points_student", "student_id", "sheet"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sheet: Mapped[str] = mapped_column(String(128))
    task: Mapped[str] = mapped_column(String(128))
    student_id: Mapped[str] = mapped_column(String(128), ForeignKey("student.id", ondelete="CASCADE"))
    points: Mapped[str] = mapped_column(String(32))
    entered_by: Mapped[str] = mapped_column(String(128))
    entered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(Integer, default=1)  # optimistic concurrency for the web page
    # A grading by rubric: the JSON list of the keys of the ``rubric_item`` rows it applies (references, in
    # rubric order; None: the points were typed), and an adjustment added to their sum. ``points`` caches
    # clamp(sum of the items' points + adjustment, 0, task maximum), rewritten whenever an item changes.
    rubric: Mapped[str | None] = mapped_column(Text)
    adjustment: Mapped[str | None] = mapped_column(String(32))


class RubricItemRow(Base):
    """One item of a paper task's rubric (seeded from the sheet's manifest, then edited by admins): points
    (positive or negative), the text students read, a note for tutors. Gradings reference it by ``key``
    (never reused; a deleted item keeps its row with ``deleted_at``)."""

    __tablename__ = "rubric_item"
    __table_args__ = (UniqueConstraint("sheet", "task", "key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sheet: Mapped[str] = mapped_column(String(128))
    task: Mapped[str] = mapped_column(String(128))
    key: Mapped[str] = mapped_column(String(64))
    position: Mapped[int] = mapped_column(Integer)
    points: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(Text)
    note: Mapped[str] = mapped_column(Text, default="", server_default="")
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class PaperComment(Base):
    """A tutor's comment on one paper task of one student (the student sees it), versioned like the points."""

    __tablename__ = "paper_comment"
    __table_args__ = (UniqueConstraint("sheet", "task", "student_id"),
                      Index("ix_paper_comment_student", "student_id", "sheet"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sheet: Mapped[str] = mapped_column(String(128))
    task: Mapped[str] = mapped_column(String(128))
    student_id: Mapped[str] = mapped_column(String(128), ForeignKey("student.id", ondelete="CASCADE"))
    text: Mapped[str] = mapped_column(Text)
    entered_by: Mapped[str] = mapped_column(String(128))
    entered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(Integer, default=1)


class AuditLog(Base):
    """Append-only: every change to any points, override or extension."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_entity_key", "entity", "key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    author: Mapped[str] = mapped_column(String(128))
    entity: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(512))
    old_value: Mapped[str | None] = mapped_column(Text)
    new_value: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)


class AdmissionOverride(Base):
    __tablename__ = "admission_override"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    student_id: Mapped[str] = mapped_column(String(128), ForeignKey("student.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16))  # admitted | not_admitted
    reason: Mapped[str] = mapped_column(Text)
    author: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Extension(Base):
    __tablename__ = "extension"
    __table_args__ = (UniqueConstraint("sheet", "student_id"), Index("ix_extension_student", "student_id", "sheet"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sheet: Mapped[str] = mapped_column(String(128))
    student_id: Mapped[str] = mapped_column(String(128), ForeignKey("student.id", ondelete="CASCADE"))
    until: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    reason: Mapped[str | None] = mapped_column(Text)
    author: Mapped[str] = mapped_column(String(128))


class AutogradeResult(Base):
    """The autograder's verdict per submission, with the fingerprint that makes reruns resumable."""

    __tablename__ = "autograde_result"
    __table_args__ = (UniqueConstraint("sheet", "student_id"),
                      Index("ix_autograde_result_student", "student_id", "sheet"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sheet: Mapped[str] = mapped_column(String(128))
    student_id: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16))  # graded | timeout | crashed | invalid | missing | grader_error
    reason: Mapped[str | None] = mapped_column(Text)
    fingerprint: Mapped[str] = mapped_column(String(64))
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    graded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    score: Mapped[str] = mapped_column(String(32))
    max_score: Mapped[str] = mapped_column(String(32))
    result_json: Mapped[str] = mapped_column(Text)
    # The late decision, taken once from the hand-in's time of receipt (see gradebook.points.handins.decide_late)
    deadline: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # the student's (extended) deadline
    late: Mapped[bool | None] = mapped_column(Boolean)
    decision: Mapped[str | None] = mapped_column(Text)  # the decision in words, shown everywhere
    # Graded runs of this student's hand-ins of the sheet (the student's code ran), for the rate limit
    graded_runs: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_run_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Handin(Base):
    """Every hand-in that reached the intake, accepted or not, with the server's time of receipt."""

    __tablename__ = "handin"
    __table_args__ = (Index("ix_handin_student", "student_id", "sheet"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sheet: Mapped[str] = mapped_column(String(128))
    student_id: Mapped[str] = mapped_column(String(128))  # not a foreign key: ids not on the roster are held
    kind: Mapped[str] = mapped_column(String(16))  # notebook | paper
    source: Mapped[str] = mapped_column(String(16))  # exchange | web | hub | zip
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16))  # accepted | invalid | held | refused
    reason: Mapped[str | None] = mapped_column(Text)
    sha256: Mapped[str | None] = mapped_column(String(64))
    size: Mapped[int | None] = mapped_column(Integer)
    original_name: Mapped[str | None] = mapped_column(String(255))  # as the student named it (sanitised)
    stored_path: Mapped[str | None] = mapped_column(String(512))  # relative to the course data directory
    entry: Mapped[str | None] = mapped_column(String(512))  # exchange entry / zip member it came from
    uploaded_by: Mapped[str | None] = mapped_column(String(128))  # the web account, for uploads


class SheetState(Base):
    """A sheet's life cycle beyond its manifest: released, and closed by an admin (decided)."""

    __tablename__ = "sheet_state"
    sheet: Mapped[str] = mapped_column(String(128), primary_key=True)
    released_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_by: Mapped[str | None] = mapped_column(String(128))
    close_reason: Mapped[str | None] = mapped_column(Text)
    anonymous: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")  # tutors see pseudonyms
    pseudonym_key: Mapped[str | None] = mapped_column(String(64))  # the sheet's HMAC key of the pseudonyms


class PageTag(Base):
    """Which pages (1-based, ``"1,2,5"``) of a paper hand-in's PDF answer one paper task."""

    __tablename__ = "page_tag"
    __table_args__ = (UniqueConstraint("handin_id", "task"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    handin_id: Mapped[int] = mapped_column(Integer, ForeignKey("handin.id", ondelete="CASCADE"))
    task: Mapped[str] = mapped_column(String(128))
    pages: Mapped[str] = mapped_column(String(1024))
    tagged_by: Mapped[str] = mapped_column(String(128))
    tagged_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Account(Base):
    """A login of the web application: a student (``subject_id`` = roster id) or staff (``person.id``)."""

    __tablename__ = "account"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(128), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # student | staff
    subject_id: Mapped[str] = mapped_column(String(128))
    password_hash: Mapped[str | None] = mapped_column(String(255))  # argon2id; None until set
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class WebSession(Base):
    """A server-side session: ``id`` is the SHA-256 of the cookie's token (the token itself is never stored)."""

    __tablename__ = "web_session"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[int] = mapped_column(Integer, ForeignKey("account.id", ondelete="CASCADE"))
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class PasswordToken(Base):
    """A one-time set-password link: only the SHA-256 of its token is stored; it expires."""

    __tablename__ = "password_token"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    account_id: Mapped[int] = mapped_column(Integer, ForeignKey("account.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str | None] = mapped_column(String(128))


class LoginAttempt(Base):
    """Login attempts, for throttling (shared by every server process)."""

    __tablename__ = "login_attempt"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(128))
    ip: Mapped[str | None] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    success: Mapped[bool] = mapped_column(Boolean)


class GradingJob(Base):
    """One grading of a student's newest hand-in of a sheet (the grading queue; see
    :mod:`gradebook.points.grading_queue`). ``state``: queued | running | done | failed | superseded."""

    __tablename__ = "grading_job"
    __table_args__ = (Index("uq_grading_job_queued", "sheet", "student_id", unique=True,
                            sqlite_where=text("state = 'queued'"), postgresql_where=text("state = 'queued'")),
                      Index("ix_grading_job_state_queued_at", "state", "queued_at"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sheet: Mapped[str] = mapped_column(String(128))
    student_id: Mapped[str] = mapped_column(String(128))
    state: Mapped[str] = mapped_column(String(16))
    handin_id: Mapped[int | None] = mapped_column(Integer)  # the newest hand-in it grades (None: a regrade, a sweep)
    received_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # that hand-in's time of receipt
    queued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))  # its place in the line (kept when replaced)
    not_before: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # the student's grading turn
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    grader: Mapped[str | None] = mapped_column(String(128))  # ``grader.id`` holding (or that held) it
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    replaced: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # newer hand-ins folded in
    outcome: Mapped[str | None] = mapped_column(String(32))  # graded | timeout | … | kept | never | held | up_to_date
    fingerprint: Mapped[str | None] = mapped_column(String(64))  # of the files it graded
    reason: Mapped[str | None] = mapped_column(Text)


class Grader(Base):
    """A grading process and its heartbeat (``mlph autograde --watch``, ``mlph serve --grade``)."""

    __tablename__ = "grader"
    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    sheets: Mapped[str] = mapped_column(Text)  # the sheets it grades, comma-separated
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    jobs_done: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    log_path: Mapped[str | None] = mapped_column(String(1024))
    stopped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class PaperPublication(Base):
    """When a sheet's paper points, comments and rubric texts reached the students (``published_at``; None:
    withdrawn by an admin, which also stops publishing them automatically). ``how``: "auto" (every paper
    hand-in graded, policy ``when-graded``) or "admin"."""

    __tablename__ = "paper_publication"
    sheet: Mapped[str] = mapped_column(String(128), primary_key=True)
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    how: Mapped[str] = mapped_column(String(16))  # auto | admin | withdrawn
    author: Mapped[str] = mapped_column(String(128))


class RegradeRequest(Base):
    """A student's request to have one paper task graded again, and its answer (by another grader)."""

    __tablename__ = "regrade_request"
    __table_args__ = (Index("ix_regrade_request_open", "sheet", "task", "student_id", "answered_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sheet: Mapped[str] = mapped_column(String(128))
    task: Mapped[str] = mapped_column(String(128))
    student_id: Mapped[str] = mapped_column(String(128), ForeignKey("student.id", ondelete="CASCADE"))
    reason: Mapped[str] = mapped_column(Text)
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    grader: Mapped[str | None] = mapped_column(String(128))  # who had graded the task then (may not answer)
    points_before: Mapped[str | None] = mapped_column(String(32))
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    answered_by: Mapped[str | None] = mapped_column(String(128))
    answer: Mapped[str | None] = mapped_column(Text)
    points_after: Mapped[str | None] = mapped_column(String(32))


class GradebookVersion(Base):
    """One row (id 1): ``counter`` is raised by every committed write to the gradebook, in the write's own
    transaction (:mod:`gradebook.store.db`), and ``course_counter`` set to it by writes that may change any
    student's standing; what a process computed at one value is current while it stays."""

    __tablename__ = "gradebook_version"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    counter: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    course_counter: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")


class StudentVersion(Base):
    """``gradebook_version.counter`` as of the last write that changed only named students' rows, per student."""

    __tablename__ = "student_version"
    student_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    counter: Mapped[int] = mapped_column(BigInteger, nullable=False)


class MailLog(Base):
    """One message the outbox handled: to whom, what (``kind`` and ``key``, e.g. "graded", "sheet04/notebook"),
    and how it went (sent, written by a dry run, or failed with the relay's answer)."""

    __tablename__ = "mail_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    kind: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(255))
    recipient: Mapped[str] = mapped_column(String(128))  # the roster or staff id
    address: Mapped[str] = mapped_column(String(255))
    subject: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))  # sent | written | failed
    error: Mapped[str | None] = mapped_column(Text)
    author: Mapped[str] = mapped_column(String(128))
    __table_args__ = (Index("ix_mail_log_kind_key", "kind", "key"),)
