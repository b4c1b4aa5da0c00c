"""The one CSV writer of every export, from the CLI and the dashboard.

Spreadsheets run a cell that starts with `=`, `+`, `-` or `@` (and some also after a leading tab or
carriage return) as a formula; titles, senders and subjects all come from outside, so every text
cell that could start one is quoted with a leading apostrophe (OWASP's advice for CSV injection).
Numbers stay numbers.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> object:
    """The value as a spreadsheet may show it without running it."""
    if value is None:
        return ""
    if isinstance(value, (bool, int, float)):
        return value
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_chunks(columns: list[str], rows: Iterable[Iterable[object]], *, rows_per_chunk: int = 500) -> Iterator[str]:
    """The header, then the rows, as CSV text in chunks (a streaming download writes each as it comes)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    for count, row in enumerate(rows, 1):
        writer.writerow([safe_cell(value) for value in row])
        if count % rows_per_chunk == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def csv_text(records: list[dict], columns: list[str]) -> str:
    """Records (dicts with `columns` as keys, in that order) as one CSV text."""
    return "".join(csv_chunks(columns, ([record.get(column) for column in columns] for record in records)))
