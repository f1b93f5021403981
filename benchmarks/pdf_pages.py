"""Benchmark: a paper hand-in's pages rendered to PNG images (once per hand-in) against the physical limit.

Writes an N-page (default 12) A4 PDF of handwriting-like text, then measures in the same run:
- ``mlph``: the bounded child process of :mod:`gradebook.points.page_images` (start-up, PDFium, PNG files,
  ``index.json``), as a hand-in's first view pays it;
- the limit: PDFium's rendering of the same pages in this process, bitmaps only (no process, no PNG);
- the cached read afterwards (what every later view pays).

    .venv/bin/python benchmarks/pdf_pages.py [-n 12] [--repeat 3]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:1] = [str(REPO)]  # the packages, not benchmarks/gradebook.py
sys.path.append(str(REPO / "tests"))  # pdfpages


def _pdf(pages: int) -> bytes:
    from pdfpages import written_pdf

    text = "Task {n}: let f(x) = x^2 e^(-x).\nThen f'(x) = (2x - x^2) e^(-x) = 0\nat x = 0 and x = 2; f''(2) < 0: a maximum."
    return written_pdf([text.format(n=n) for n in range(1, pages + 1)])


def _limit(pdf: Path) -> float:
    import pypdfium2 as pdfium

    from gradebook.points.page_images import MAX_HEIGHT, MAX_WIDTH
    from gradebook.points.page_render import scale_for

    started = time.perf_counter()
    doc = pdfium.PdfDocument(str(pdf))
    for page in doc:
        width, height = page.get_size()
        page.render(scale=scale_for(width, height, MAX_WIDTH, MAX_HEIGHT), may_draw_forms=False)
        page.close()
    doc.close()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=12, help="pages of the PDF")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    from gradebook.points.page_images import _read_index, _run_renderer

    with tempfile.TemporaryDirectory() as tmp:
        pdf = Path(tmp) / "scan.pdf"
        pdf.write_bytes(_pdf(args.n))
        ours, limit, cached = [], [], []
        for i in range(args.repeat):
            out = Path(tmp) / f"out{i}"
            out.mkdir()
            started = time.perf_counter()
            assert _run_renderer(pdf, out) == ""
            ours.append(time.perf_counter() - started)
            limit.append(_limit(pdf))

            class Row:  # what _read_index needs of a hand-in
                id = 1

            started = time.perf_counter()
            images = _read_index(out, Row())  # type: ignore[arg-type]
            cached.append(time.perf_counter() - started)
        size = sum(i.path.stat().st_size for i in images.images)
    m_ours, m_limit, m_cached = (statistics.median(x) for x in (ours, limit, cached))
    print(f"PDF of {args.n} A4 pages, median of {args.repeat} runs")
    print(f"mlph (child process, PNG files): {m_ours * 1000:8.1f} ms  = {m_ours / args.n * 1000:6.1f} ms a page")
    print(f"limit (PDFium bitmaps in-process): {m_limit * 1000:6.1f} ms  = {m_limit / args.n * 1000:6.1f} ms a page")
    print(f"ratio mlph / limit: {m_ours / m_limit:.2f}")
    print(f"cached read afterwards: {m_cached * 1000:.2f} ms; images {size / 1e6:.2f} MB "
          f"({size / args.n / 1e3:.0f} kB a page, {images.images[0].width} x {images.images[0].height} px)")


if __name__ == "__main__":
    main()
