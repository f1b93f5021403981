"""The similarity page: admins see the report of a sheet (the answers side by side, student code escaped,
no script); tutors and students are refused, anonymous visitors sent to the login."""
from __future__ import annotations

import json
from typing import Any

import pytest

from web.app import create_app
from web.testing import logged_in, setup_web_course

HTML = {"accept": "text/html"}
HOSTILE = ('def scale(x, a):\n    """</pre><script>alert(1)</script>"""\n'
           '    # <img src=x onerror=alert(2)>\n    x = np.asarray(x, dtype=float)\n    out = np.empty_like(x)\n'
           '    for i in range(len(x)):\n        out[i] = x[i] * a + 0.0 * np.sum(x[:i] ** 3)\n'
           '    total = float(np.sum(out)) if len(out) else 0.0\n    return out + 0 * total\n')


def _hand_in(cfg: Any, student: str, answer: str) -> None:
    nb = json.loads((cfg.release_dir / "tiny01" / "tiny01.ipynb").read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "scale_solution":
            cell["source"] = answer
    path = cfg.data_dir / "submitted" / student / "tiny01" / "tiny01.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb), encoding="utf-8")


@pytest.fixture
def app(gradebook_course: Any) -> Any:
    setup_web_course(gradebook_course)
    _hand_in(gradebook_course, "ab1", HOSTILE)
    _hand_in(gradebook_course, "cd2", HOSTILE.replace("out", "result"))
    _hand_in(gradebook_course, "ef3", "def scale(x, a):\n    return a * np.asarray(x, dtype=float)\n")
    return create_app(gradebook_course)


def test_admin_sees_the_pair_side_by_side_with_student_code_escaped(app: Any) -> None:
    r = logged_in(app, "boss").get("/admin/similarity/tiny01", headers=HTML)
    assert r.status_code == 200
    assert "ab1" in r.text and "cd2" in r.text and "<mark>" in r.text
    assert "a reason to look at the two hand-ins, not a verdict" in r.text
    assert "&lt;/pre&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in r.text
    assert "<script>alert" not in r.text and "<img src=x" not in r.text
    index = logged_in(app, "boss").get("/admin/similarity", headers=HTML)
    assert index.status_code == 200 and 'href="/admin/similarity/tiny02"' in index.text


@pytest.mark.parametrize("who", ["tutor1", "ab1", "cd2"])
def test_tutors_and_students_are_refused(app: Any, who: str) -> None:
    client = logged_in(app, who)
    for url in ("/admin/similarity/tiny01", "/admin/similarity"):
        r = client.get(url, headers=HTML)
        assert r.status_code in (403, 404), (who, url, r.status_code)
        assert "alert(1)" not in r.text and "def scale" not in r.text and "<mark>" not in r.text


def test_an_unknown_sheet_is_not_found(app: Any) -> None:
    r = logged_in(app, "boss").get("/admin/similarity/..%2Fetc", headers=HTML)
    assert r.status_code == 404
