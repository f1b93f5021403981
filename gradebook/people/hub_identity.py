"""Which course member a JupyterHub user is: a roster student by the roster's ``login`` column, then by the
roster id; else a staff member by their id; else nobody (not in this course). Roles stay here, in the
gradebook: Hub groups and the Hub's admin flag mean nothing to mlph.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from gradebook.people.accounts import STUDENT, create_accounts
from gradebook.store import nbgrader_tables as nt
from gradebook.store.models import Account, Person, StudentProfile

STAFF = "staff"


@dataclass(frozen=True)
class Member:
    login: str  # the Hub user name
    kind: str  # student | staff
    subject_id: str  # roster id or staff id


def member_for_login(engine: Engine, login: str) -> Member | None:
    """The course member with this Hub login, or None."""
    with Session(engine) as session:
        sid = session.execute(select(StudentProfile.student_id).where(StudentProfile.login == login)).scalar_one_or_none()
        if sid is None:
            sid = session.execute(select(nt.student.c.id).where(nt.student.c.id == login)).scalar_one_or_none()
        if sid is not None:
            return Member(login, STUDENT, str(sid))
        if session.get(Person, login) is not None:
            return Member(login, STAFF, login)
    return None


def account_of_member(engine: Engine, member: Member) -> tuple[int, bool]:
    """(account id, disabled) of a member who logged in through the Hub; the account is made on their first
    Hub login, without a password (only the Hub's login opens it until one is set)."""
    def find() -> tuple[int, bool] | None:
        with Session(engine) as session:
            row = session.execute(select(Account.id, Account.disabled).where(
                Account.subject_id == member.subject_id, Account.kind == member.kind)).first()
        return (int(row[0]), bool(row[1])) if row else None

    found = find()
    if found is None:
        create_accounts(engine, [member.subject_id], author=f"hub:{member.login}")
        found = find()
    assert found is not None
    return found
