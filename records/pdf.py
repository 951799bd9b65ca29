"""HTML to PDF for every document telemon prints (the patient report, the end-of-monitoring letter, the team's
activity report): WeasyPrint, on at most ``RENDERS_AT_ONCE`` worker threads per process, so that the event loop
keeps serving while a document is drawn. A document is self-contained (inline styles and SVG): it fetches nothing,
neither a file of the server nor an address a text in it might name."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from fastapi.responses import Response

RENDERS_AT_ONCE = 2  # documents drawn at once by one process (each holds a thread and the GIL in turns)
_drawing = ThreadPoolExecutor(max_workers=RENDERS_AT_ONCE, thread_name_prefix="pdf")


def html_to_pdf(html: str) -> bytes:
    """The PDF of one HTML document. CPU work: call :func:`render` from the event loop."""
    import weasyprint  # imported on first use: Pango loads once, and only in processes that print
    from weasyprint.urls import URLFetcher

    nothing = URLFetcher(allowed_protocols=())
    pdf: bytes = weasyprint.HTML(string=html, url_fetcher=nothing).write_pdf()
    return pdf


async def render(make_html: Callable[[], str]) -> bytes:
    """The PDF of the document ``make_html`` writes (templates and charts are CPU work too), on a worker thread,
    off the event loop."""
    return await asyncio.get_running_loop().run_in_executor(_drawing, lambda: html_to_pdf(make_html()))


def pdf_response(pdf: bytes, filename: str) -> Response:
    """A PDF as an answer, shown in the browser under ``filename``; never cached (it holds patient data)."""
    headers = {"Content-Disposition": f'inline; filename="{filename}"', "Cache-Control": "no-store"}
    return Response(pdf, media_type="application/pdf", headers=headers)
