"""Logins for the demo's web page: one student, one tutor and one admin with random passwords."""
from __future__ import annotations

import secrets

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from gradebook.store import nbgrader_tables as nt
from gradebook.people.accounts import create_accounts, set_password
from gradebook.course.config import CourseConfig
from gradebook.people.groups import add_staff
from gradebook.store.models import GroupMembership, Person, TutorialGroup


def _pick(engine: Engine) -> tuple[str, str | None, str | None]:
    """A student (one in a group with a tutor if there is one), that group's tutor, and an admin."""
    with Session(engine) as session:
        row = session.execute(select(GroupMembership.student_id, TutorialGroup.tutor_id)
                              .join(TutorialGroup, TutorialGroup.id == GroupMembership.group_id)
                              .where(GroupMembership.valid_to.is_(None), TutorialGroup.tutor_id.is_not(None))
                              .order_by(GroupMembership.student_id).limit(1)).first()
        student = row[0] if row else session.execute(select(nt.student.c.id).order_by(nt.student.c.id).limit(1)).scalar()
        tutor = row[1] if row else session.execute(select(Person.id).where(Person.role == "tutor").limit(1)).scalar()
        admin = session.execute(select(Person.id).where(Person.role == "admin").order_by(Person.id).limit(1)).scalar()
    if student is None:
        raise ValueError("the demo course has no students")
    return str(student), tutor, admin


def prepare_demo_logins(cfg: CourseConfig, engine: Engine) -> dict[str, tuple[str, str]]:
    """role → (user name, password) for one student, one tutor and one admin of the demo course (a tutor
    ``demo-tutor`` and an admin ``demo-admin`` are added when the course has none); fresh passwords each call."""
    student, tutor, admin = _pick(engine)
    if tutor is None:
        tutor = "demo-tutor"
        add_staff(engine, tutor, "Demo Tutor", None, "tutor", author="demo")
    if admin is None:
        admin = "demo-admin"
        add_staff(engine, admin, "Demo Admin", None, "admin", author="demo")
    logins = {}
    for role, ident in (("student", student), ("tutor", tutor), ("admin", admin)):
        create_accounts(engine, [ident], author="demo")
        password = secrets.token_urlsafe(12)
        set_password(engine, ident, password, author="demo")
        logins[role] = (ident, password)
    return logins
