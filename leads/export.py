"""A lead list as a file (CSV or Excel) that a spreadsheet opens without running anything in it.

A cell whose text starts with `=`, `+`, `-`, `@`, a tab or a carriage return is read by Excel,
LibreOffice and Google Sheets as a formula (or, after a tab or CR, may become one): a lead's
company "=HYPERLINK(…)" would be a live link in the marketing team's sheet (CSV/formula
injection, OWASP). Every such text gets a single quote in front (`safe_text`), in CSV and in XLSX;
the spreadsheet shows the text, not a formula. Numbers and dates stay numbers and dates. The XLSX
writer also marks every text cell as a string explicitly: openpyxl treats any text that starts
with `=` as a formula otherwise.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from .api.serializers import LeadSerializer
from .models import Lead

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
XLSX_MAX_ROWS = 1_048_575  # an Excel sheet's rows, less the header
XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

# The lead list's fields, in its order: the API's LeadSerializer's, so the two cannot drift apart.
COLUMNS: tuple[str, ...] = tuple(LeadSerializer.Meta.fields)


def safe_text(value: str) -> str:
    """The text as a spreadsheet shows it and never evaluates: a quote before a formula's start."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def headers() -> list[str]:
    """Human column headers: the fields' verbose names, capitalised ("First name", "Owner" …)."""
    names = []
    for column in COLUMNS:
        field = Lead._meta.get_field(column)
        label = str(getattr(field, "verbose_name", column)).replace("utm ", "UTM ")
        names.append(label[:1].upper() + label[1:])
    return names


def _plain(lead: Lead, column: str) -> Any:
    """The value of one cell before formula safety: text, a number, a date time (UTC) or None."""
    if column in ("owner", "partner"):
        related = getattr(lead, column)
        return str(related) if related is not None else ""
    value = getattr(lead, column)
    if column == "attributes":
        return json.dumps(value, ensure_ascii=False, sort_keys=True) if value else ""
    if column == "country":
        return value.code if value else ""
    if isinstance(value, datetime):
        return value.astimezone(UTC) if timezone.is_aware(value) else value
    if value is None or isinstance(value, bool | int | float | Decimal | date):
        return value
    return str(value)


def cells(lead: Lead) -> list[Any]:
    """One lead's row: text made safe, numbers and times as they are."""
    row = []
    for column in COLUMNS:
        value = _plain(lead, column)
        row.append(safe_text(value) if isinstance(value, str) else value)
    return row


def lead_rows(leads: QuerySet[Lead]) -> Iterator[list[Any]]:
    for lead in leads.select_related("owner", "partner").iterator(chunk_size=2000):
        yield cells(lead)


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def csv_lines(rows: Iterable[Sequence[Any]], header: Sequence[str]) -> Iterator[str]:
    """CSV text, line by line (for a streaming answer): the header, then each row. UTF-8 with a BOM
    first, so Excel reads the umlauts; the header is made safe too."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def line(values: Sequence[Any]) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(values)
        return buffer.getvalue()

    yield "\ufeff" + line([safe_text(name) for name in header])
    for row in rows:
        yield line([_csv_cell(value) for value in row])


def xlsx_bytes(rows: Iterable[Sequence[Any]], header: Sequence[str], *, title: str = "Leads") -> bytes:
    """An Excel workbook of one sheet: the header, then each row. Text cells are strings, always."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title)

    def cell(value: Any) -> Any:
        if isinstance(value, datetime) and value.tzinfo is not None:
            value = value.replace(tzinfo=None)  # Excel has no time zones: UTC, as the header says
        made = WriteOnlyCell(sheet, value=value)
        if isinstance(value, str):
            made.data_type = "s"  # never "f": openpyxl would store a text starting with = as a formula
        return made

    sheet.append([cell(safe_text(name)) for name in header])
    for row in rows:
        sheet.append([cell(value) for value in row])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()
