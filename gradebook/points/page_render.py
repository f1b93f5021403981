"""The child process that renders one PDF's pages to PNG images (``python -m gradebook.points.page_render PDF
OUT MAX_PAGES MAX_WIDTH MAX_HEIGHT``), run by :mod:`.page_images` under limits of memory and time, so that a
hostile or broken PDF costs at most this process.

PDFium (``pypdfium2``) reads the file; its form environment is never initialised (``init_forms`` is not
called, pages are rendered with ``may_draw_forms=False``), so no JavaScript in a PDF ever runs. Each page is
scaled to at most ``MAX_WIDTH`` × ``MAX_HEIGHT`` pixels (150 dpi for an A4 page), at most ``MAX_PAGES`` pages
are rendered, and no more once 50 MB of images are written; ``index.json`` in ``OUT`` says how many pages the PDF has and how large each image is. On a PDF
that cannot be read the process prints the reason on stderr and exits with 2.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

DPI = 150


def scale_for(width_pt: float, height_pt: float, max_width: int, max_height: int) -> float:
    """The scale (pixels per PDF point) that renders a page at 150 dpi, smaller if that exceeds the bounds."""
    if not (width_pt > 0 and height_pt > 0):
        raise ValueError(f"a page has no size ({width_pt} × {height_pt} points)")
    return min(DPI / 72, max_width / width_pt, max_height / height_pt)


def render(pdf: Path, out: Path, max_pages: int, max_width: int, max_height: int,
           max_bytes: int = 50_000_000) -> dict[str, object]:
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(str(pdf))  # no init_forms(): no form environment, no JavaScript
    try:
        total = len(doc)
        sizes: list[tuple[int, int]] = []
        written = 0
        for index in range(min(total, max_pages)):
            if written > max_bytes:  # images of noise compress badly: the cache per hand-in stays bounded
                break
            page = doc[index]
            try:
                width, height = page.get_size()
                bitmap = page.render(scale=scale_for(width, height, max_width, max_height), may_draw_forms=False)
                image = bitmap.to_pil()
                target = out / f"{index + 1:03d}.png"
                image.save(target, format="PNG", compress_level=3)  # 1/3 faster than the default 6
                sizes.append(image.size)
                written += target.stat().st_size
            finally:
                page.close()
    finally:
        doc.close()
    index_data: dict[str, object] = {"pages": total, "rendered": len(sizes), "sizes": sizes}
    (out / "index.json").write_text(json.dumps(index_data), encoding="utf-8")
    return index_data


def main(argv: list[str]) -> int:
    pdf, out, max_pages, max_width, max_height = argv
    try:
        render(Path(pdf), Path(out), int(max_pages), int(max_width), int(max_height))
    except Exception as exc:  # pdfium's own errors name what is wrong ("Data format error", "Incorrect password")
        print((str(exc) or type(exc).__name__)[:500], file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
