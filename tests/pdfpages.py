"""PDFs for the tests: real ones (PDFium and matplotlib write them) with a number of pages."""
from __future__ import annotations

import io


def blank_pdf(pages: int, width: float = 595, height: float = 842) -> bytes:
    """A valid PDF of ``pages`` blank pages (A4 by default), written by PDFium."""
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument.new()
    for _ in range(pages):
        doc.new_page(width, height)
    buf = io.BytesIO()
    doc.save(buf)
    doc.close()
    return buf.getvalue()


def written_pdf(lines: list[str]) -> bytes:
    """A PDF with one A4 page per entry of ``lines``, the text large on the page (a scanned answer, say)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_pdf import PdfPages

    buf = io.BytesIO()
    with PdfPages(buf) as pdf:
        for text in lines:
            fig = plt.figure(figsize=(8.27, 11.69))
            fig.text(0.1, 0.85, text, fontsize=26, va="top", family="serif", wrap=True)
            pdf.savefig(fig)
            plt.close(fig)
    return buf.getvalue()
