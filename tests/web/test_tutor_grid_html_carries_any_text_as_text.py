"""The tutor grid's rows and panels are built in Python (web/grid_html.py), not by the template's autoescape:
whatever a student controls (their name from the roster, their team's name, their PDF's file name, an
autograding reason) and whatever staff type (comments, rubric texts, model solutions, task titles) reaches the
page as text. Parsed back, every value reads exactly as it was given, and the page's structure (its tags, its
one row and panel per student, no event handler) does not depend on it. Then the same through the app, with a
hostile roster name and PDF file name."""
from __future__ import annotations

from datetime import datetime, timezone
from fractions import Fraction
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gradebook.course.manifest import Task
from gradebook.points.grid import CellState, Grid, GridStudent, HandinRef
from gradebook.points.page_images import PageImage, TaskPages
from gradebook.points.rubric import Item
from web.grid_html import grid_panels, grid_rows
from web.templating import points_text

TAGS = {"tr", "th", "td", "button", "span", "a", "input", "section", "h2", "h3", "p", "ul", "li", "strong", "div",
        "fieldset", "legend", "label", "textarea", "details", "summary", "pre", "img"}
WHEN = datetime(2026, 11, 4, 12, tzinfo=timezone.utc)
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=30)


class _Page(HTMLParser):
    """Tags and attributes by element, and the text inside each element of a few classes."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.open: list[tuple[str, dict[str, str]]] = []
        self.texts: dict[str, list[str]] = {c: [] for c in ("pick link", "sid", "comment", "message", "muted small",
                                                             "small")}
        self.data: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = (tag, {k: v or "" for k, v in attrs})
        self.tags.append(found)
        if tag not in ("input", "img"):
            self.open.append(found)
        self.data.append("")

    def handle_endtag(self, tag: str) -> None:
        while self.open:
            name, attrs = self.open.pop()
            text = self.data.pop() if self.data else ""
            if attrs.get("class") in self.texts:
                self.texts[attrs["class"]].append(text)
            if self.data:
                self.data[-1] += text
            if name == tag:
                break

    def handle_data(self, data: str) -> None:
        if self.data:
            self.data[-1] += data


def _grid(name: str, team: str, comment: str, staff: str, file: str, reason: str, sid: str) -> tuple[Grid, dict]:
    tasks = (Task(id=f"t1{staff[:3]}", title=staff, kind="paper", points=Fraction(4), solution=staff),
             Task(id="t2", title="plain", kind="paper", points=Fraction(5, 2)))
    pdf = HandinRef(7, "pdf", sid, WHEN, file)
    students = (GridStudent(sid, name, staff, team, None, "invalid", reason, pdf, None),
                GridStudent("other", "Other", "", None, Fraction(3), None, None, None, None))
    cells = {(s.id, t.id): CellState(s.id, t.id, Fraction(1), 1, ("k",), None, None, comment=comment,
                                     team_points=Fraction(2)) for s in students for t in tasks}
    rubrics = {tasks[0].id: (Item("k", Fraction(1), staff, staff),)}
    pages = {sid: {"": TaskPages(7, (PageImage(1, Path("p1.png"), 100, 140, 7),), False)}}
    return Grid("sheet05", staff, "g1", staff, None, tasks, Fraction(10), students, cells, rubrics, {(sid, "t2"): 3}), pages


def _local(when: Any) -> str:
    return "Wed 04 Nov 2026, 13:00 CET"


@settings(max_examples=60, deadline=None)
@given(name=TEXT, team=TEXT, comment=TEXT, staff=TEXT, file=TEXT, reason=TEXT, sid=TEXT, anonymous=st.booleans())
def test_every_value_reads_back_as_given_and_the_structure_stays(name: str, team: str, comment: str, staff: str,
                                                                 file: str, reason: str, sid: str,
                                                                 anonymous: bool) -> None:
    g, pages = _grid(name, team, comment, staff, file, reason, sid)
    page = _Page()
    page.feed(f"<table><tbody>{grid_rows(g, anonymous, _local)}</tbody></table>"
              f"<aside>{grid_panels(g, pages, anonymous, _local)}</aside>")
    page.close()
    assert {tag for tag, _ in page.tags} <= TAGS | {"table", "tbody", "aside"}
    assert not [k for _, attrs in page.tags for k in attrs if k.startswith("on") or k == "style"]
    rows = [attrs for tag, attrs in page.tags if tag == "tr"]
    panels = [attrs for tag, attrs in page.tags if tag == "section"]
    assert [r["data-student"] for r in rows] == [p["data-student"] for p in panels] == [sid, "other"]
    assert page.texts["pick link"] == [s.name for s in g.students]
    inputs = [attrs for tag, attrs in page.tags if tag == "input" and attrs.get("class") == "pts"]
    assert [(i["data-student"], i["data-task"], i["aria-label"]) for i in inputs] == [
        (s.id, t.id, f"{s.name}, {t.id} (0 to {points_text(t.points)})") for s in g.students for t in g.tasks]
    assert all(i["placeholder"] == "2" and i["value"] == "1" for i in inputs)
    assert page.texts["comment"] == [comment] * 4
    assert page.texts["message"] == [staff] * 2  # the model solution, once per student
    ticks = [attrs for tag, attrs in page.tags if tag == "input" and attrs.get("class") == "tick"]
    assert [(t["data-student"], t["value"], "checked" in t) for t in ticks] == [(sid, "k", True), ("other", "k", True)]
    shown_ids = page.texts["sid"][0]
    assert shown_ids == (f" · {team}" if anonymous else f"{sid} · team {team}")
    assert any(text.startswith(f"{file}, handed in ") for text in page.texts["muted small"])
    assert page.texts["small"] == [reason]  # the autograding's reason, in the panel
    assert [a.get("data-regrade") for tag, a in page.tags if tag == "td" and "cell" in a.get("class", "")] == [
        None, "3", None, None]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_hostile_roster_name_and_pdf_file_name_reach_the_grid_as_text(gradebook_course: Any) -> None:
    from gradebook.people.roster import import_students
    from gradebook.store.db import atomic, open_gradebook
    from gradebook.store.models import Handin
    from web.app import create_app
    from web.testing import logged_in, setup_web_course

    evil = "<img src=x onerror=alert(1)>"
    cfg = gradebook_course  # tiny01 has the paper task "proof"
    setup_web_course(cfg)
    engine = open_gradebook(cfg.db_url)
    roster = cfg.root / "evil.csv"
    roster.write_text(f"student_id,last_name,first_name,email\nab1,{evil},Anna,ab1@uni.de\n", encoding="utf-8")
    import_students(engine, roster)
    with atomic(engine) as s:
        s.add(Handin(sheet="tiny01", student_id="ab1", kind="paper", source="web", status="accepted",
                     received_at=WHEN, original_name=f'"><script>alert(2)</script>.pdf'))
    for who in ("tutor1", "boss"):
        page = logged_in(create_app(cfg), who).get("/tutor/tiny01/g1", headers={"accept": "text/html"})
        assert page.status_code == 200
        assert "<img src=x" not in page.text and "<script>alert" not in page.text
        found = _Page()
        found.feed(page.text)
        assert f"{evil}, Anna" in found.texts["pick link"]
        assert any(t.startswith('"><script>alert(2)</script>.pdf, handed in ') for t in found.texts["muted small"])
        assert not [k for _, attrs in found.tags for k in attrs if k.startswith("on")]

