"""A dashboard carries an entity tag; a refresh that sends it back (as a browser's does) is answered 304,
without a page, only while nothing the page shows has changed, only to the session that got the page, and
never once a deadline passed. A page rendered before is sent again without reading the student's rows."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import event

from web.app import create_app
from web.security import SESSION_COOKIE
from web.testing import logged_in, setup_web_course

HTML = {"accept": "text/html"}


@pytest.fixture
def app(gradebook_course: Any) -> Any:
    setup_web_course(gradebook_course)
    return create_app(gradebook_course)


class Statements:
    """The SQL statements an engine runs inside the block."""

    def __init__(self, engine: Any) -> None:
        self.engine, self.seen = engine, []  # type: list[str]

    def __enter__(self) -> list[str]:
        event.listen(self.engine, "before_cursor_execute", self._count)
        return self.seen

    def __exit__(self, *_exc: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._count)

    def _count(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        self.seen.append(statement)


def test_a_refresh_with_the_tag_is_answered_304_after_the_session_and_the_versions(app: Any) -> None:
    student = logged_in(app, "ab1")
    first = student.get("/students/ab1", headers=HTML)
    tag = first.headers["etag"]
    assert first.status_code == 200 and "Anna" in first.text
    assert first.headers["cache-control"] == "private, no-cache"  # kept by the browser, asked for each time
    with Statements(app.state.engine) as seen:
        again = student.get("/students/ab1", headers={**HTML, "if-none-match": tag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == tag
    assert len([s for s in seen if s.startswith("SELECT")]) <= 3, seen  # the session (and its account) and the versions: nothing else is read
    with Statements(app.state.engine) as seen:
        unconditional = student.get("/students/ab1", headers=HTML)
    assert unconditional.status_code == 200 and unconditional.text == first.text  # the page kept by this process
    assert len([s for s in seen if s.startswith("SELECT")]) <= 3, seen


def test_a_tag_is_answered_304_to_no_other_session(app: Any) -> None:
    ab1 = logged_in(app, "ab1")
    tag = ab1.get("/students/ab1", headers=HTML).headers["etag"]
    for other in (logged_in(app, "ab1"), logged_in(app, "boss"), logged_in(app, "tutor1")):
        page = other.get("/students/ab1", headers={**HTML, "if-none-match": tag})
        assert page.status_code == 200 and "Anna" in page.text
        assert page.headers["etag"] != tag
    cd2 = logged_in(app, "cd2")  # another student sending ab1's tag for ab1's page: refused, not 304
    assert cd2.get("/students/ab1", headers={**HTML, "if-none-match": tag}).status_code == 403
    stranger = logged_in(app, "cd2")
    stranger.cookies.delete(SESSION_COOKIE)
    assert stranger.get("/students/ab1", headers={**HTML, "if-none-match": tag}).status_code == 303  # to the login


def test_a_logged_out_session_gets_no_304(app: Any) -> None:
    ab1 = logged_in(app, "ab1")
    tag = ab1.get("/students/ab1", headers=HTML).headers["etag"]
    token = ab1.cookies.get(SESSION_COOKIE)
    assert ab1.post("/logout").status_code in (200, 303)
    ab1.cookies.set(SESSION_COOKIE, token)  # the cookie sent again after the logout
    assert ab1.get("/students/ab1", headers={**HTML, "if-none-match": tag}).status_code == 303


def test_a_deadline_passing_changes_the_tag(app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """sheet09 (planned) is due 2027-02-01 10:00 (Berlin): a refresh after it gets the page again."""
    from web.routes import student as routes

    ab1 = logged_in(app, "ab1")
    before = datetime(2027, 2, 1, 8, 59, 50, tzinfo=timezone.utc)
    monkeypatch.setattr(routes, "utcnow", lambda: before)
    tag = ab1.get("/students/ab1", headers=HTML).headers["etag"]
    monkeypatch.setattr(routes, "utcnow", lambda: before + timedelta(seconds=5))  # the same moment, for the page
    assert ab1.get("/students/ab1", headers={**HTML, "if-none-match": tag}).status_code == 304
    monkeypatch.setattr(routes, "utcnow", lambda: before + timedelta(seconds=20))  # the deadline has passed
    after = ab1.get("/students/ab1", headers={**HTML, "if-none-match": tag})
    assert after.status_code == 200 and after.headers["etag"] != tag


def test_a_page_while_a_handin_is_graded_is_never_kept(app: Any) -> None:
    from gradebook.store.db import atomic
    from gradebook.store.models import Handin

    with atomic(app.state.engine) as session:
        session.add(Handin(sheet="tiny01", student_id="ab1", kind="notebook", source="web", status="accepted",
                           received_at=datetime.now(timezone.utc), original_name="tiny01.ipynb"))
    page = logged_in(app, "ab1").get("/students/ab1", headers=HTML)
    assert "grading is not running" in page.text  # it follows the graders' heartbeats, which carry no version
    assert "etag" not in page.headers and page.headers["cache-control"] == "no-store"
