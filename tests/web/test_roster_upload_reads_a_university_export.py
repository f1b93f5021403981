"""The admin's roster upload reads a German university export as it is (the CLI's column names), and
refuses a file with a duplicate e-mail whole, naming both rows."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gradebook.store import nbgrader_tables as nt
from web.app import create_app
from web.testing import logged_in, setup_web_course

HTML = {"accept": "text/html"}


def test_upload_of_a_university_export(gradebook_course: Any) -> None:
    setup_web_course(gradebook_course)
    app = create_app(gradebook_course)
    admin = logged_in(app, "boss")
    assert "Matrikelnummer, Nachname" in admin.get("/admin/groups", headers=HTML).text
    dup = "Matrikelnummer;Nachname;Vorname;E-Mail\n4100001;Schröder;Jana;jana@uni.de\n4100002;Öztürk;Emre;JANA@uni.de\n"
    r = admin.post("/admin/upload/roster", files={"file": ("heico.csv", dup.encode(), "text/csv")}, headers=HTML)
    assert r.status_code == 400
    assert "heico.csv:3: student &#39;4100002&#39;: e-mail &#39;JANA@uni.de&#39; is already &#39;4100001&#39;" in r.text
    good = dup.replace("JANA@uni.de", "emre@uni.de")
    r = admin.post("/admin/upload/roster", files={"file": ("heico.csv", good.encode(), "text/csv")}, headers=HTML)
    assert r.status_code == 200 and "2 added" in r.text
    with Session(app.state.engine) as session:
        rows = dict(session.execute(select(nt.student.c.id, nt.student.c.last_name)
                                    .where(nt.student.c.id.in_(["4100001", "4100002"]))).all())
    assert rows == {"4100001": "Schröder", "4100002": "Öztürk"}
