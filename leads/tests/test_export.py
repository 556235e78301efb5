"""The lead list as CSV and Excel: the list's filters and visibility, human headers, and no cell a
spreadsheet would run as a formula (read back with csv and openpyxl, cell by cell)."""

from __future__ import annotations

import csv
import io
import zipfile

import pytest
from openpyxl import load_workbook

from leads import export
from leads.tests.factories import LeadFactory

pytestmark = pytest.mark.django_db

CANARIES = {
    "company": '=HYPERLINK("http://x","y")',
    "phone": "+1 234",
    "job_title": "-2",
    "industry": "@SUM(A1)",
    "first_name": "\tTab",
    "last_name": "\rReturn",
}


def read_csv(response) -> list[list[str]]:
    text = b"".join(response.streaming_content).decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:], newline="")))


def read_xlsx(response):
    sheet = load_workbook(io.BytesIO(response.content)).active
    return sheet, [[cell.value for cell in row] for row in sheet.iter_rows()]


def test_csv_cells_that_would_be_formulas_are_quoted(api, marketing):
    lead = LeadFactory(email="canary@acme.example", **CANARIES, attributes={"note": "=1+1"})
    response = api(marketing).get("/api/v1/leads/export/?format=csv")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="leads-')
    header, row = read_csv(response)
    assert header == export.headers()
    assert header[:6] == ["ID", "Email", "First name", "Last name", "Phone", "Company"]
    cell = dict(zip(header, row, strict=True))
    assert cell["ID"] == str(lead.pk)
    assert cell["Company"] == '\'=HYPERLINK("http://x","y")'
    assert cell["Phone"] == "'+1 234"
    assert cell["Job title"] == "'-2"
    assert cell["Industry"] == "'@SUM(A1)"
    assert cell["First name"] == "'\tTab"
    assert cell["Last name"] == "'\rReturn"
    assert cell["Attributes"] == '{"note": "=1+1"}'  # starts with {: not a formula
    assert cell["Email"] == "canary@acme.example"
    assert cell["Score"] == "0.0"


def test_xlsx_cells_are_strings_not_formulas(api, marketing):
    LeadFactory(email="canary@acme.example", **CANARIES, score=42)
    response = api(marketing).get("/api/v1/leads/export/?format=xlsx")
    assert response.status_code == 200
    assert response["Content-Type"] == export.XLSX_CONTENT_TYPE
    sheet, rows = read_xlsx(response)
    header, row = rows
    assert header == export.headers()
    cell = dict(zip(header, row, strict=True))
    assert cell["Company"] == '\'=HYPERLINK("http://x","y")'
    assert cell["Phone"] == "'+1 234"
    assert cell["Job title"] == "'-2"
    assert cell["Industry"] == "'@SUM(A1)"
    assert cell["First name"] == "'\tTab"
    assert cell["Score"] == 42  # numbers stay numbers
    assert "f" not in {c.data_type for c in sheet[2]}
    assert all(c.data_type in ("s", "inlineStr") for c in sheet[2] if isinstance(c.value, str))
    with zipfile.ZipFile(io.BytesIO(response.content)) as book:
        xml = book.read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in xml and "<f " not in xml  # no formula element in the file itself


def test_a_rep_exports_only_their_leads(api, rep_a, rep_b):
    mine = LeadFactory(email="mine@acme.example", owner=rep_a)
    LeadFactory(email="canary-other@acme.example", owner=rep_b, company="CANARY-NOT-YOURS")
    LeadFactory(email="canary-nobody@acme.example", company="CANARY-NOBODY")
    for kind in ("csv", "xlsx"):
        response = api(rep_a).get(f"/api/v1/leads/export/?format={kind}")
        assert response.status_code == 200
        rows = read_csv(response)[1:] if kind == "csv" else read_xlsx(response)[1][1:]
        assert [str(row[0]) for row in rows] == [str(mine.pk)]
        body = b"".join(response.streaming_content) if kind == "csv" else response.content
        assert b"canary" not in body.lower()


def test_the_list_filters_apply(api, marketing):
    LeadFactory(email="de@acme.example", country="DE", source="fair")
    LeadFactory(email="at@acme.example", country="AT", source="fair")
    LeadFactory(email="web@acme.example", country="DE", source="web")
    response = api(marketing).get("/api/v1/leads/export/?format=csv&country=de&source=fair&search=acme")
    assert [row[1] for row in read_csv(response)[1:]] == ["de@acme.example"]


def test_bad_format_or_filter_is_a_400_and_who_may_not(api, marketing, integration, partner_a):
    assert api(marketing).get("/api/v1/leads/export/?format=pdf").json() == {"format": ['One of "csv", "xlsx".']}
    assert api(marketing).get("/api/v1/leads/export/").status_code == 400
    assert api(marketing).get("/api/v1/leads/export/?format=csv&min_score=x").status_code == 400
    assert api(integration).get("/api/v1/leads/export/?format=csv").status_code == 403
    assert api(partner_a).get("/api/v1/leads/export/?format=csv").status_code == 404
    assert api(None).get("/api/v1/leads/export/?format=csv").status_code == 401
