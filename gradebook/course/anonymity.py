"""Anonymous grading per sheet: while a sheet is anonymous, tutors see a pseudonym instead of a student's
name, id, e-mail or login on everything of that sheet they can reach.

A pseudonym is ``HMAC-SHA256(key of the sheet, sheet + student id)`` read as a word pair and a number
("amber-otter-4711"): stable within the sheet, different across sheets, meaningless without the key. The
key is random, made when the sheet is first set anonymous and kept (switching it off and on again gives the
same pseudonyms). Setting and revealing are admin actions, each one line of ``audit_log``.

Names written inside a student's PDF are not hidden (the README says so).
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from datetime import datetime, timezone

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from gradebook.errors import InputError
from gradebook.store.db import atomic
from gradebook.store.models import AuditLog, SheetState

ADJECTIVES = ("amber", "azure", "bold", "brave", "bright", "calm", "clever", "coral", "crisp", "curious", "dapper",
              "eager", "early", "fancy", "fair", "gentle", "glad", "golden", "grand", "green", "happy", "hazel",
              "honest", "jolly", "keen", "kind", "lively", "lucky", "mellow", "merry", "mighty", "misty", "modest",
              "noble", "olive", "patient", "plucky", "polite", "proud", "quick", "quiet", "rapid", "ruby", "rustic",
              "sage", "scarlet", "shy", "silver", "sleek", "smooth", "snowy", "solid", "sunny", "swift", "tidy",
              "tender", "upbeat", "vivid", "warm", "wild", "wise", "witty", "young", "zesty")
ANIMALS = ("badger", "bat", "bear", "beaver", "bison", "camel", "cat", "cobra", "crane", "crow", "deer", "dingo",
           "dolphin", "dove", "eagle", "eel", "elk", "falcon", "ferret", "finch", "fox", "frog", "gecko", "gull",
           "hare", "hawk", "heron", "hippo", "ibis", "jackal", "jay", "koala", "lark", "lemur", "lion", "llama",
           "lynx", "mole", "moose", "newt", "otter", "owl", "panda", "parrot", "puffin", "quail", "raven", "robin",
           "salmon", "seal", "shark", "sloth", "snail", "stork", "swan", "tapir", "tiger", "toad", "trout",
           "turtle", "viper", "walrus", "wolf", "yak")


def pseudonym(key: str, sheet: str, student: str) -> str:
    """The pseudonym of ``student`` on ``sheet`` under the sheet's ``key``: "adjective-animal-NNNN"."""
    mac = hmac.new(bytes.fromhex(key), f"{sheet}\0{student}".encode(), hashlib.sha256).digest()
    n = int.from_bytes(mac[:8], "big")
    return f"{ADJECTIVES[n % 64]}-{ANIMALS[(n >> 6) % 64]}-{(n >> 12) % 10000:04d}"


def pseudonyms(key: str, sheet: str, students: Iterable[str]) -> dict[str, str]:
    """student → pseudonym for ``students``, distinct: of two students with the same pseudonym (rare: one in
    41 million pairs) the one with the later id gets a suffix ("-b")."""
    out: dict[str, str] = {}
    taken: set[str] = set()
    for student in sorted(set(students)):
        name, suffix = pseudonym(key, sheet, student), ord("b")
        base = name
        while name in taken:
            name, suffix = f"{base}-{chr(suffix)}", suffix + 1
        taken.add(name)
        out[student] = name
    return out


def anonymous_key(engine: Engine, sheet: str) -> str | None:
    """The sheet's pseudonym key while the sheet is anonymous; None when names are shown."""
    with Session(engine) as session:
        row = session.execute(select(SheetState.anonymous, SheetState.pseudonym_key)
                              .where(SheetState.sheet == sheet)).first()
    return row[1] if row is not None and row[0] and row[1] else None


def anonymous_sheets(engine: Engine) -> set[str]:
    with Session(engine) as session:
        return set(session.execute(select(SheetState.sheet).where(SheetState.anonymous.is_(True))).scalars())


def set_anonymous(engine: Engine, sheet: str, on: bool, author: str, reason: str | None = None) -> bool:
    """Set ``sheet`` anonymous (or not); audited. Whether this changed anything."""
    if not sheet or len(sheet) > 128:
        raise InputError(f"no such sheet {sheet!r}")
    now = datetime.now(timezone.utc)
    with atomic(engine) as session:
        state = session.get(SheetState, sheet) or SheetState(sheet=sheet)
        was = bool(state.anonymous)
        if was == on:
            return False
        state.anonymous = on
        if on and not state.pseudonym_key:
            state.pseudonym_key = secrets.token_hex(32)
        session.add(state)
        session.add(AuditLog(at=now, author=author, entity="anonymous", key=sheet, old_value="on" if was else "off",
                             new_value="on" if on else "off", reason=reason))
    return True


def reveal(engine: Engine, sheet: str, students: Iterable[str], author: str, reason: str) -> dict[str, str]:
    """pseudonym → student id of ``students`` on an anonymous ``sheet``, for an admin; one audited event
    (with its reason, which is required). InputError for a sheet that is not anonymous."""
    if not reason.strip():
        raise InputError(f"revealing the names of {sheet} needs a reason")
    key = anonymous_key(engine, sheet)
    if key is None:
        raise InputError(f"sheet {sheet} is not graded anonymously: its names are shown anyway")
    mapping = pseudonyms(key, sheet, students)
    with atomic(engine) as session:
        session.add(AuditLog(at=datetime.now(timezone.utc), author=author, entity="anonymous_reveal", key=sheet,
                             old_value=None, new_value=f"{len(mapping)} names revealed", reason=reason.strip()[:2000]))
    return {alias: student for student, alias in mapping.items()}


def roster(engine: Engine) -> list[str]:
    from gradebook.store import nbgrader_tables as nt

    with Session(engine) as session:
        return list(session.execute(select(nt.student.c.id)).scalars())


def aliases(engine: Engine, sheet: str, students: Iterable[str]) -> dict[str, str] | None:
    """student → pseudonym on an anonymous ``sheet`` (distinct over the whole roster, so that a group's
    pseudonyms are the same as the course's); None when the sheet shows names."""
    key = anonymous_key(engine, sheet)
    if key is None:
        return None
    wanted = set(students)
    return {s: a for s, a in pseudonyms(key, sheet, set(roster(engine)) | wanted).items() if s in wanted}


def anonymity_command(engine: Engine, sheet: str, action: str, author: str, reason: str | None) -> list[str]:
    """What `mlph anonymous SHEET on|off|reveal|status` does, as the lines it prints."""
    if action == "status":
        return [f"{sheet}: {'anonymous (tutors see pseudonyms)' if anonymous_key(engine, sheet) else 'names shown'}"]
    if action == "reveal":
        mapping = reveal(engine, sheet, roster(engine), author, reason or "")
        return [f"{alias}\t{student}" for alias, student in sorted(mapping.items())]
    on = action == "on"
    changed = set_anonymous(engine, sheet, on, author, reason)
    state = "anonymous: tutors see pseudonyms" if on else "names shown to tutors"
    return [f"{sheet}: {state}" + ("" if changed else " (it already was)")]
