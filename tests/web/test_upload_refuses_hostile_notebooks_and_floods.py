"""The web upload route: a notebook no JSON parser can take is a 400 with the reason (never a 500); a student's
uploads are bounded per minute (429 with Retry-After, nothing recorded) and in bytes per sheet, counted in the
database so that concurrent uploads cannot pass the bound together; other students hand in undisturbed."""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import nbformat
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from autograder.grading.assemble import grade_id
from autograder.intake.store import RECEIPT
from autograder.intake.upload import UploadThrottled, accept_upload
from coursefactory import TINY_ANSWER
from gradebook.store.models import Handin
from web.app import create_app
from web.testing import logged_in, setup_web_course


@pytest.fixture
def app(gradebook_course: Any) -> Any:
    setup_web_course(gradebook_course)
    return create_app(gradebook_course)


def _notebook(cfg: Any) -> bytes:
    nb = nbformat.read(cfg.release_dir / "tiny01" / "tiny01.ipynb", as_version=4)
    for cell in nb.cells:
        if grade_id(cell) == "scale_solution":
            cell.source = TINY_ANSWER
    return nbformat.writes(nb).encode()


def _post(client: Any, student: str, data: bytes) -> Any:
    return client.post(f"/students/{student}/sheets/tiny01/handin", data={"kind": "notebook", "confirm_late": "yes"},
                       files={"file": ("tiny01.ipynb", data, "application/x-ipynb+json")}, headers={"accept": "text/html"})


def _rows(app: Any, student: str) -> int:
    with Session(app.state.engine) as session:
        return int(session.scalar(select(func.count()).select_from(Handin).where(Handin.student_id == student)) or 0)


def test_unparseable_notebooks_are_a_400_and_honest_uploads_pass(app: Any, gradebook_course: Any) -> None:
    honest = _notebook(gradebook_course)
    deep = honest.replace(b'"metadata": {', b'"metadata": {"x": ' + b"[" * 100_000 + b"]" * 100_000 + b", ", 1)
    bigint = honest.replace(b'"metadata": {', b'"metadata": {"x": ' + b"7" * 5000 + b", ", 1)
    ab1 = logged_in(app, "ab1")
    for data, why in ((deep, "nested deeper than 64 levels"), (bigint, "a number longer than 100 characters")):
        r = _post(ab1, "ab1", data)
        assert r.status_code == 400 and why in r.text
    r = _post(logged_in(app, "cd2"), "cd2", honest)
    assert r.status_code == 303
    assert (gradebook_course.data_dir / "submitted" / "cd2" / "tiny01" / "tiny01.ipynb").read_bytes() == honest
    assert not (gradebook_course.data_dir / "submitted" / "ab1").exists()


def test_a_flood_of_uploads_is_cut_at_the_bound_and_others_hand_in(app: Any, gradebook_course: Any) -> None:
    honest = _notebook(gradebook_course)
    ab1 = logged_in(app, "ab1")
    per_minute = gradebook_course.uploads_per_minute
    assert per_minute == 6  # the default of [intake] uploads_per_minute
    codes = [_post(ab1, "ab1", honest).status_code for _ in range(per_minute)]
    assert codes == [303] * per_minute
    r = _post(ab1, "ab1", honest)
    assert r.status_code == 429 and 0 < int(r.headers["retry-after"]) <= 61 and "at most 6 a minute" in r.text
    assert _rows(app, "ab1") == per_minute  # the refused one is not recorded
    assert _post(logged_in(app, "ef3"), "ef3", honest).status_code == 303  # another student is not throttled
    assert _rows(app, "ef3") == 1


def test_concurrent_uploads_cannot_pass_the_bound_together(app: Any, gradebook_course: Any) -> None:
    honest = _notebook(gradebook_course)
    engine = app.state.engine

    def one(_: int) -> str:
        try:
            return accept_upload(gradebook_course, engine, sheet="tiny01", student="ab1", kind="notebook",
                                 filename="tiny01.ipynb", data=honest, uploaded_by="ab1", per_minute=3).status
        except UploadThrottled:
            return "throttled"
        except Exception as exc:  # SQLite: a writer that waited too long; still no fourth upload
            return type(exc).__name__

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(one, range(12)))
    assert outcomes.count("accepted") == 3 and _rows(app, "ab1") == 3, outcomes


def test_the_bytes_a_student_uploads_per_sheet_are_bounded(app: Any, gradebook_course: Any) -> None:
    honest = _notebook(gradebook_course)
    kw = dict(sheet="tiny01", kind="notebook", filename="tiny01.ipynb", data=honest, per_minute=100,
              bytes_per_sheet=3 * len(honest))
    for _ in range(3):
        assert accept_upload(gradebook_course, app.state.engine, student="ab1", uploaded_by="ab1", **kw).status == "accepted"
    with pytest.raises(UploadThrottled, match="your uploads for tiny01 have reached"):
        accept_upload(gradebook_course, app.state.engine, student="ab1", uploaded_by="ab1", **kw)
    assert accept_upload(gradebook_course, app.state.engine, student="cd2", uploaded_by="cd2", **kw).status == "accepted"


def test_the_bounds_are_the_courses_to_set(gradebook_course: Any) -> None:
    import dataclasses

    from gradebook.course.config import load_config
    from gradebook.errors import ConfigError

    toml = gradebook_course.root / "mlph.toml"
    text = toml.read_text()
    toml.write_text(text.replace("[intake]\n", "[intake]\nuploads_per_minute = 2\nupload_mb_per_sheet = 1\n"))
    cfg = dataclasses.replace(load_config(gradebook_course.root), db_url=gradebook_course.db_url)
    assert (cfg.uploads_per_minute, cfg.upload_mb_per_sheet) == (2, 1)
    from gradebook.store.db import open_gradebook

    engine = open_gradebook(cfg.db_url)
    honest = _notebook(cfg)
    kw = dict(sheet="tiny01", kind="notebook", filename="tiny01.ipynb", data=honest)
    assert [accept_upload(cfg, engine, student="ab1", uploaded_by="ab1", **kw).status for _ in range(2)] == ["accepted"] * 2
    with pytest.raises(UploadThrottled, match="at most 2 a minute"):
        accept_upload(cfg, engine, student="ab1", uploaded_by="ab1", **kw)
    toml.write_text(text.replace("[intake]\n", "[intake]\nuploads_per_minute = 0\n"))
    with pytest.raises(ConfigError, match=r"\[intake\] uploads_per_minute must be a whole number of at least 1"):
        load_config(gradebook_course.root)


def test_the_web_page_and_the_hub_share_one_bound_and_each_record_says_its_door(app: Any, gradebook_course: Any) -> None:
    honest = _notebook(gradebook_course)
    kw = dict(sheet="tiny01", student="ab1", kind="notebook", filename="tiny01.ipynb", data=honest, per_minute=3)
    doors = ["web", "hub", "web"]
    for door in doors:
        assert accept_upload(gradebook_course, app.state.engine, uploaded_by=f"{door}:ab1", source=door,
                             **kw).status == "accepted"  # type: ignore[arg-type]
    with pytest.raises(UploadThrottled, match="at most 3 a minute"):  # the fourth, through either door
        accept_upload(gradebook_course, app.state.engine, uploaded_by="hub:ab1", source="hub", **kw)  # type: ignore[arg-type]
    with Session(app.state.engine) as session:
        stored = session.scalars(select(Handin.source).where(Handin.student_id == "ab1").order_by(Handin.id)).all()
    assert stored == doors
    receipt = json.loads((gradebook_course.data_dir / "submitted" / "ab1" / "tiny01" / RECEIPT).read_text())
    assert receipt["source"] == "web"  # the notebook in place is the last one accepted, from the web page
