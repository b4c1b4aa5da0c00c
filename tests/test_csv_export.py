"""Every CSV export, CLI and dashboard, goes through one writer that defuses spreadsheet formulas."""

import csv
import io

import pytest

from processor.desk.csv_export import FORMULA_STARTS, csv_chunks, csv_text, safe_cell
from processor.desk.listings import format_outlets
from processor.desk.outlets import OutletRow
from processor.desk.pickup_log import PICKUP_COLUMNS, format_pickups


@pytest.mark.parametrize("start", FORMULA_STARTS)
def test_a_cell_that_a_spreadsheet_would_run_is_quoted(start):
    assert safe_cell(start + "2+5") == "'" + start + "2+5"


@pytest.mark.parametrize("value, shown", [("plain title", "plain title"), (7, 7), (-3, -3), (None, ""),
                                          ("a=b", "a=b"), ("", "")])
def test_other_cells_are_left_as_they_are(value, shown):
    assert safe_cell(value) == shown


def _parsed(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_every_column_of_the_pickup_export_is_defused():
    hostile = "=HYPERLINK(\"https://attacker.example\",\"x\")"
    record = {column: hostile for column in PICKUP_COLUMNS}
    record["replies"] = [hostile]
    header, row = _parsed(format_pickups([record], "csv"))
    assert header == PICKUP_COLUMNS
    assert all(cell.startswith("'=") for cell in row), row


def test_every_column_of_a_listing_export_is_defused():
    row = OutletRow(key="@evil.example", display_name="+1 555", pickups=1, requests=2, blocked=True,
                    blocked_reason="-x", merged_into="=cmd")
    header, values = _parsed(format_outlets([row], "csv"))
    cells = dict(zip(header, values))
    assert cells["outlet"] == "'@evil.example" and cells["display_name"] == "'+1 555"
    assert cells["alias_of"] == "'=cmd" and cells["pickups"] == "1"


def test_streamed_chunks_make_the_same_text_as_one_piece():
    rows = [[f"row {n}", n] for n in range(1203)]
    assert "".join(csv_chunks(["name", "n"], rows, rows_per_chunk=100)) == csv_text(
        [{"name": name, "n": n} for name, n in rows], ["name", "n"])
