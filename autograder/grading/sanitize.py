"""Student outputs made inert before they are stored in ``autograded/`` (and before any page shows them).

Whoever opens a graded notebook (nbgrader's formgrader, which can change grades; JupyterLab; our pages)
must not run anything a student wrote. Per output only an allowlist of MIME types survives: plain text,
PNG/JPEG images whose data is real base64, HTML cleaned by ``nh3`` (no scripts, no event handlers, no
``javascript:`` URLs, no styles or forms), Markdown cleaned the same way, and the grader's own check
records (data, never rendered). Everything else (JavaScript, SVG, LaTeX, widgets, vendor types) is
dropped; output metadata is dropped. Cells the student added keep no metadata and no attachments, and
their Markdown/raw source is cleaned too (nbconvert renders raw HTML in Markdown).
"""
from __future__ import annotations

import base64
import binascii
import copy
import re
from typing import Any

import nh3
from nbformat import NotebookNode

from autograder.checks.mlph_check import MIME
from autograder.grading.assemble import grade_id

KEEP_TEXT = ("text/plain",)
IMAGES = ("image/png", "image/jpeg")
HTML_LIKE = ("text/html", "text/markdown")
B64_RE = re.compile(r"^[A-Za-z0-9+/=\s]*$")
MAX_IMAGE_BYTES = 2_000_000


def clean_html(text: str) -> str:
    """HTML with nothing active left (nh3's allowlist: no script, style, iframe, form, on* attributes)."""
    return nh3.clean(text, url_schemes={"http", "https", "mailto"}, link_rel="noopener noreferrer nofollow")


def _text(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def _image_ok(value: Any) -> bool:
    text = _text(value)
    if len(text) > MAX_IMAGE_BYTES * 4 // 3 + 16 or not B64_RE.match(text):
        return False
    try:
        base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def clean_data(data: Any) -> dict[str, Any]:
    """A MIME bundle with only inert representations."""
    out: dict[str, Any] = {}
    if not isinstance(data, dict):
        return out
    for mime, value in data.items():
        if mime in KEEP_TEXT:
            out[mime] = _text(value)
        elif mime in IMAGES and _image_ok(value):
            out[mime] = "".join(_text(value).split())
        elif mime in HTML_LIKE:
            out[mime] = clean_html(_text(value))
        elif mime == MIME and isinstance(value, dict):
            out[mime] = value
    return out


def clean_output(out: Any) -> NotebookNode | None:
    if not isinstance(out, dict):
        return None
    kind = out.get("output_type")
    if kind == "stream":
        return NotebookNode(output_type="stream", name="stderr" if out.get("name") == "stderr" else "stdout",
                            text=_text(out.get("text", "")))
    if kind == "error":
        tb = out.get("traceback", [])
        return NotebookNode(output_type="error", ename=_text(out.get("ename", ""))[:200],
                            evalue=_text(out.get("evalue", "")),
                            traceback=[_text(x) for x in tb] if isinstance(tb, list) else [])
    if kind in ("display_data", "execute_result"):
        node = NotebookNode(output_type=kind, data=clean_data(out.get("data")), metadata=NotebookNode())
        if kind == "execute_result":
            count = out.get("execution_count")
            node["execution_count"] = count if isinstance(count, int) else None
        return node
    return None


def sanitize_notebook(nb: NotebookNode, trusted_ids: set[str], *, in_place: bool = False) -> NotebookNode:
    """A copy of an executed notebook with every output inert, and the student's own cells cleaned.
    ``trusted_ids``: grade ids of cells that come from the source (their source and metadata are ours).
    ``in_place``: ``nb`` itself is cleaned and returned (for a caller that owns it and keeps only the result)."""
    out = nb if in_place else copy.deepcopy(nb)
    for cell in out.cells:
        if "outputs" in cell:
            cell["outputs"] = [o for o in (clean_output(o) for o in cell["outputs"]) if o is not None]
        if grade_id(cell) in trusted_ids:
            continue
        cell.pop("attachments", None)
        keep = {"nbgrader": cell["metadata"]["nbgrader"]} if "nbgrader" in cell.get("metadata", {}) else {}
        cell["metadata"] = NotebookNode(keep)
        if cell.get("cell_type") in ("markdown", "raw"):
            cell["source"] = clean_html(_text(cell.get("source", "")))
    return out
