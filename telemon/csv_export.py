"""CSV as telemon writes it for spreadsheets: a header row, ISO 8601 times, and no cell a spreadsheet would run as
a formula. Every export (the audit trail, a patient's readings, a team's patients, the activity report) writes
through :func:`csv_text` and answers with :func:`csv_response`."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

from fastapi.responses import Response


def csv_cell(value: object) -> str:
    """A cell a spreadsheet shows as text: a value starting with a formula character gets a leading quote, so
    that a name typed as ``=HYPERLINK(…)`` is never run when the export is opened."""
    cell = "" if value is None else str(value)
    return "'" + cell if cell[:1] in ("=", "+", "-", "@", "\t", "\r") else cell


def csv_text(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows([csv_cell(v) for v in row] for row in rows)
    return out.getvalue()


def csv_response(text: str, filename: str) -> Response:
    """The CSV as a download named ``filename`` (letters, digits, ``-``, ``_`` and ``.`` only), never cached: it
    holds patient data (the other security headers are every answer's: :mod:`telemon.headers`)."""
    headers = {"Cache-Control": "no-store", "Content-Disposition": f'attachment; filename="{filename}"'}
    return Response(text, media_type="text/csv; charset=utf-8", headers=headers)
