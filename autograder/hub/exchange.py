"""nbgrader's exchange over HTTP to ``mlph serve``: the students keep the Assignments tab and
``nbgrader list / fetch_assignment / submit / fetch_feedback``; no shared folder.

Set in the single-user image's ``nbgrader_config.py`` (``mlph hub-config`` prints the lines)::

    c.ExchangeFactory.list = "autograder.hub.exchange.ExchangeList"
    c.ExchangeFactory.fetch_assignment = "autograder.hub.exchange.ExchangeFetchAssignment"
    c.ExchangeFactory.submit = "autograder.hub.exchange.ExchangeSubmit"
    c.ExchangeFactory.fetch_feedback = "autograder.hub.exchange.ExchangeFetchFeedback"

Every request carries the server's own Hub API token (``$JUPYTERHUB_API_TOKEN``); the service asks the
Hub whose token it is, and that user is the student. What this side says about the student (``--student``)
or the time is not believed: ``--student`` is sent only so that the service can log the attempt.
Instructor commands (release, collect) stay with ``mlph``; they are not part of this exchange.
"""
from __future__ import annotations

import hashlib
import io
import os
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any, NoReturn

import requests
from nbgrader.exchange import ExchangeError, abc
from traitlets import Bool, Float, Integer, Unicode, default

from autograder.hub import protocol

_NO_STUDENT = ("", "*")


class Exchange(abc.Exchange):
    """The common part: where the service is, the token, and one request helper that turns every refusal
    into nbgrader's ``ExchangeError`` with the service's own message."""

    service_url = Unicode(help="URL of the course's mlph service as this server reaches it, e.g. "
                               "http://10.0.0.5:8100/services/mlph/ (default: $MLPH_SERVICE_URL, else "
                               "$JUPYTERHUB_PUBLIC_URL/services/<service_name>/)").tag(config=True)
    service_name = Unicode("mlph", help="The service's name in jupyterhub_config.py").tag(config=True)
    api_token = Unicode(help="The Hub API token sent to the service (default: $JUPYTERHUB_API_TOKEN)").tag(config=True)
    request_timeout = Float(60.0, help="Seconds to wait for the service").tag(config=True)
    max_upload_bytes = Integer(20_000_000, help="A notebook larger than this is not sent (the service refuses "
                                                "it anyway)").tag(config=True)
    path_includes_course = Bool(False, help="Fetch into ./<course>/<sheet>/ instead of ./<sheet>/").tag(config=True)

    @default("service_url")
    def _service_url_default(self) -> str:
        if os.environ.get("MLPH_SERVICE_URL"):
            return os.environ["MLPH_SERVICE_URL"]
        public = os.environ.get("JUPYTERHUB_PUBLIC_URL", "")
        return f"{public.rstrip('/')}/services/{self.service_name}/" if public else ""

    @default("api_token")
    def _api_token_default(self) -> str:
        return os.environ.get("JUPYTERHUB_API_TOKEN", "")

    def fail(self, msg: str) -> NoReturn:
        self.log.error(msg)
        raise ExchangeError(msg)

    def _url(self, path: str) -> str:
        if not self.service_url:
            self.fail("The course's grading service is not configured: set c.Exchange.service_url in "
                      "nbgrader_config.py (or run this inside a JupyterHub server)")
        return self.service_url.rstrip("/") + "/" + path

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One call to the service; anything but success is ``ExchangeError`` with the service's message."""
        headers = {"Accept": "application/json"}
        if self.api_token:
            headers["Authorization"] = f"token {self.api_token}"
        url = self._url(path)
        try:
            response = requests.request(method, url, headers=headers, timeout=self.request_timeout,
                                        allow_redirects=False, **kwargs)
        except requests.RequestException as exc:
            self.fail(f"Cannot reach the course's grading service at {url}: {exc}")
        if response.status_code >= 300:
            try:
                message = str(response.json().get("error") or response.text)
            except ValueError:
                message = response.text[:500] or response.reason
            self.fail(f"The grading service refused ({response.status_code}): {message}")
        return response

    def course_id(self) -> str:
        return self.coursedir.course_id if self.coursedir and self.coursedir.course_id else "mlph"

    def sheet_dir(self, sheet: str, course_id: str | None = None) -> Path:
        root = Path(self.assignment_dir)
        return root / (course_id or self.course_id()) / sheet if self.path_includes_course else root / sheet

    def note_claimed_student(self) -> dict[str, str]:
        """``--student X`` is not who hands in (the Hub token is); it is sent so the service logs it."""
        claimed = self.coursedir.student_id if self.coursedir else ""
        if claimed not in _NO_STUDENT:
            self.log.warning("--student %s is ignored: the course's service takes the student from your Hub login",
                             claimed)
            return {"claimed_student": claimed}
        return {}

    def start(self) -> Any:  # no local paths to prepare: everything goes through the service
        self.set_timestamp()
        return self.run()

    def run(self) -> Any:
        raise NotImplementedError


def _sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


class ExchangeList(Exchange, abc.ExchangeList):
    """The released sheets (``fetched`` when already here) or, with ``--inbound``/``--cached``, the caller's
    hand-ins as the service recorded them (its time of receipt) and whether feedback is ready."""

    def run(self) -> list[dict[str, Any]]:
        if self.remove:
            self.fail("Removing is not possible with the course's service: hand-ins are kept by the course")
        if self.inbound or self.cached:
            return self._submitted()
        return self._released()

    def _released(self) -> list[dict[str, Any]]:
        listing = self.request("GET", protocol.SHEETS).json()
        course = str(listing.get("course_id") or self.course_id())
        wanted = self.coursedir.assignment_id if self.coursedir else ""
        out = []
        self.log.info("Released assignments:")
        for sheet in listing.get("sheets", []):
            sid = str(sheet["id"])
            if wanted and sid != wanted:
                continue
            local = self.sheet_dir(sid, course)
            fetched = local.is_dir()
            info: dict[str, Any] = {"course_id": course, "assignment_id": sid,
                                    "status": "fetched" if fetched else "released",
                                    "path": str(local.resolve()) if fetched else self._url(protocol.sheet_files(sid)),
                                    "due": sheet.get("due"), "notebooks": []}
            for nb in sheet.get("notebooks", []):
                path = local / f"{nb}.ipynb"
                info["notebooks"].append({"notebook_id": nb, "path": str(path.resolve()) if fetched else nb})
            self.log.info("%s %s%s", course, sid, " (already downloaded)" if fetched else "")
            out.append(info)
        return out

    def _submitted(self) -> list[dict[str, Any]]:
        listing = self.request("GET", protocol.SUBMISSIONS).json()
        course = str(listing.get("course_id") or self.course_id())
        student = str(listing.get("student_id", ""))
        wanted = self.coursedir.assignment_id if self.coursedir else ""
        by_sheet: dict[str, list[dict[str, Any]]] = {}
        self.log.info("Submitted assignments:")
        for sub in listing.get("submissions", []):
            sid = str(sub["sheet"])
            if wanted and sid != wanted:
                continue
            by_sheet.setdefault(sid, []).append(self._submission(course, student, sid, sub))
        out = []
        for sid, subs in sorted(by_sheet.items()):
            subs.sort(key=lambda s: s["timestamp"])
            out.append({"course_id": course, "student_id": student, "assignment_id": sid, "status": "submitted",
                        "submissions": subs})
        return out

    def _submission(self, course: str, student: str, sheet: str, sub: dict[str, Any]) -> dict[str, Any]:
        ts = str(sub["timestamp"])
        feedback_dir = self.sheet_dir(sheet, course) / "feedback" / ts
        notebooks = []
        for nb in sub.get("notebooks", []):
            local = feedback_dir / f"{nb}.html"
            local_sum = _sha256(local)
            remote_sum = sub.get("feedback_sha256")
            notebooks.append({"notebook_id": nb, "path": nb, "has_local_feedback": local_sum is not None,
                              "has_exchange_feedback": bool(remote_sum),
                              "local_feedback_path": str(local) if local_sum else None,
                              "feedback_updated": bool(local_sum and remote_sum and local_sum != remote_sum)})
        has_local = bool(notebooks) and all(n["has_local_feedback"] for n in notebooks)
        info = {"course_id": course, "student_id": student, "assignment_id": sheet, "timestamp": ts,
                "status": "submitted", "path": f"{sheet}@{ts}", "notebooks": notebooks,
                "has_local_feedback": has_local,
                "has_exchange_feedback": bool(notebooks) and all(n["has_exchange_feedback"] for n in notebooks),
                "feedback_updated": any(n["feedback_updated"] for n in notebooks),
                "local_feedback_path": str(feedback_dir.resolve()) if has_local else None,
                "late": sub.get("late"), "points": sub.get("points")}
        msg = f"{course} {student} {sheet} {ts}"
        if info["has_exchange_feedback"] and not (has_local and not info["feedback_updated"]):
            msg += " (feedback ready to be fetched)"
        elif has_local:
            msg += " (feedback already fetched)"
        else:
            msg += " (no feedback available)"
        self.log.info(msg)
        return info


def _safe_member(name: str) -> PurePosixPath | None:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not path.parts or "\\" in name:
        return None
    return path


class ExchangeFetchAssignment(Exchange, abc.ExchangeFetchAssignment):
    """The released student version into ``./<sheet>/`` (files already there are kept unless missing)."""

    def run(self) -> None:
        sheet = self.coursedir.assignment_id
        dest = self.sheet_dir(sheet)
        if dest.is_dir() and not self.replace_missing_files:
            self.fail(f"You already have a copy of the assignment in this directory: {dest}")
        response = self.request("GET", protocol.sheet_files(sheet), stream=True)
        data = response.raw.read(protocol.MAX_ARCHIVE_BYTES + 1, decode_content=True)
        if len(data) > protocol.MAX_ARCHIVE_BYTES:
            self.fail(f"The sheet {sheet} is larger than {protocol.MAX_ARCHIVE_BYTES} bytes")
        try:
            archive = zipfile.ZipFile(io.BytesIO(data))
        except zipfile.BadZipFile:
            self.fail(f"The service sent no sheet archive for {sheet}")
        dest.mkdir(parents=True, exist_ok=True)
        for member in archive.infolist():
            path = _safe_member(member.filename)
            if path is None or member.is_dir():
                continue
            target = dest.joinpath(*path.parts)
            if target.exists():
                continue
            if self.replace_missing_files:
                self.log.warning("Replacing missing file '%s'", target)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.read(member))
        self.log.info("Fetched as: %s %s", self.course_id(), sheet)


class ExchangeSubmit(Exchange, abc.ExchangeSubmit):
    """Hand in ``./<sheet>/<notebook>.ipynb``: the service checks it through the course's intake and records
    its own time of receipt (what this machine's clock says does not matter)."""

    def run(self) -> dict[str, Any]:
        sheet = self.coursedir.assignment_id
        src = self.sheet_dir(sheet)
        if not src.is_dir():
            self.fail(f"Assignment not found at: {src.resolve()} (fetch it first: nbgrader fetch_assignment {sheet})")
        listing = self.request("GET", protocol.SHEETS).json()
        sheet_info = next((s for s in listing.get("sheets", []) if s.get("id") == sheet), None)
        if sheet_info is None:
            self.fail(f"{sheet} is not a released sheet of this course")
        expected = [f"{nb}.ipynb" for nb in sheet_info.get("notebooks", [])]
        missing = [name for name in expected if not (src / name).is_file()]
        if missing:
            self.fail(f"{', '.join(missing)} is missing in {src} (the notebook must keep its name)")
        name = expected[0]
        size = (src / name).stat().st_size
        if size > self.max_upload_bytes:
            self.fail(f"{name} is {size} bytes, more than the {self.max_upload_bytes} the course accepts; "
                      "clear large outputs and save again")
        with open(src / name, "rb") as fh:
            data = fh.read(self.max_upload_bytes + 1)
        response = self.request("POST", protocol.sheet_submissions(sheet), data=self.note_claimed_student(),
                                files={"file": (name, data, "application/x-ipynb+json")})
        receipt = response.json()
        late = " (after the deadline)" if receipt.get("late") else ""
        self.log.info("Submitted as: %s %s %s%s", receipt.get("course_id", self.course_id()), sheet,
                      receipt.get("timestamp", ""), late)
        return dict(receipt)


class ExchangeFetchFeedback(Exchange, abc.ExchangeFetchFeedback):
    """The feedback of the newest graded hand-in into ``./<sheet>/feedback/<time of receipt>/``."""

    def run(self) -> None:
        sheet = self.coursedir.assignment_id
        self.note_claimed_student()
        feedback = self.request("GET", protocol.sheet_feedback(sheet)).json()
        ts = str(feedback["timestamp"])
        notebook = PurePosixPath(str(feedback["notebook_id"])).name
        if "/" in ts or ts.startswith("."):
            self.fail("The service sent a malformed time of receipt")
        dest = self.sheet_dir(sheet) / "feedback" / ts
        dest.mkdir(parents=True, exist_ok=True)
        out = dest / f"{notebook}.html"
        out.write_text(str(feedback["html"]), encoding="utf-8")
        self.log.info("Fetched feedback: %s", out)
