"""The admin's audit page shows points as people write them ("2.5"), not as stored ("5/2"), and its
times in the course's zone."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from click.testing import CliRunner

from autograder.cli import main
from web.app import create_app
from web.testing import logged_in, setup_web_course


def test_audit_page_shows_decimals(gradebook_course: Any, tmp_path: Path) -> None:
    setup_web_course(gradebook_course)
    f = tmp_path / "tutor.csv"
    f.write_text("student_id;task;points\nab1;proof;2,5\n")
    assert CliRunner().invoke(main, ["points", "import", "tiny01", str(f), "--author", "tina"]).exit_code == 0
    page = logged_in(create_app(gradebook_course), "boss").get("/admin/audit?student=ab1",
                                                               headers={"accept": "text/html"}).text
    assert "tiny01/proof/ab1" in page
    assert "<td class=\"small\">2.5</td>" in page and "5/2" not in page
