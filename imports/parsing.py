"""Reading an uploaded CSV: its encoding and delimiter, its header, its rows as lead data.

Pure functions over text and dicts: no ORM, no I/O. The rules of a row (what the capture API
accepts) are applied by services.row_errors, with the capture serializer itself.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext as _

from leads.export import FORMULA_STARTS
from leads.services import CONTACT_FIELDS, TOUCH_FIELDS

ATTRIBUTE_PREFIX = "attributes."
# What a column may be mapped to: the e-mail, the profile, the touch, a custom attribute, or "" (skip).
TARGET_FIELDS: tuple[str, ...] = ("email", *CONTACT_FIELDS, *TOUCH_FIELDS)
DEFAULT_FIELDS: tuple[str, ...] = TOUCH_FIELDS  # what a job's defaults may set for every row
DELIMITERS = (",", ";", "\t")
ATTRIBUTE_KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,63}$")

# Column names (lower-case, without spaces, dashes, underscores or dots) suggested for each field,
# English and German, as CRMs, Excel lists and newsletter tools name them.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "email": ("email", "e-mail", "emailaddress", "mail", "emailadresse", "mailadresse"),
    "first_name": ("firstname", "givenname", "forename", "vorname"),
    "last_name": ("lastname", "surname", "familyname", "nachname", "familienname"),
    "phone": ("phone", "telephone", "phonenumber", "tel", "telefon", "telefonnummer", "mobile", "mobil", "handy"),
    "company": ("company", "companyname", "organisation", "organization", "account", "firma", "unternehmen"),
    "company_domain": ("domain", "companydomain", "website", "webseite"),
    "job_title": ("jobtitle", "title", "position", "role", "funktion", "berufsbezeichnung"),
    "industry": ("industry", "sector", "branche"),
    "company_size": ("companysize", "employees", "size", "mitarbeiter", "firmengroesse", "firmengröße"),
    "annual_revenue": ("annualrevenue", "revenue", "umsatz", "jahresumsatz"),
    "country": ("country", "countrycode", "land", "laenderkennung", "länderkennung"),
    "language": ("language", "lang", "sprache"),
    "product_interest": ("productinterest", "product", "interest", "produktinteresse", "produkt", "interesse"),
    "source": ("source", "leadsource", "quelle"),
    "campaign": ("campaign", "kampagne"),
    "utm_source": ("utmsource",),
    "utm_medium": ("utmmedium",),
    "utm_campaign": ("utmcampaign",),
    "utm_term": ("utmterm",),
    "utm_content": ("utmcontent",),
}
_BY_NAME = {name: field for field, names in SYNONYMS.items() for name in names}


class ParseError(ValueError):
    """The file cannot be read as a CSV with a header: the message says why (a 400)."""


@dataclass(frozen=True)
class Parsed:
    """A decoded CSV: its text (UTF-8 from here on), how it was read, its header."""

    text: str
    encoding: str
    delimiter: str
    header: list[str]


def decode(raw: bytes) -> tuple[str, str]:
    """The text and its encoding: UTF-8 (with or without BOM), else Windows-1252 (what Excel writes
    on a German or English Windows), else Latin-1 (which decodes any byte)."""
    for encoding in ("utf-8-sig", "cp1252", "latin-1"):
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError:
            continue
        return text, ("utf-8" if encoding == "utf-8-sig" else encoding)
    raise AssertionError("latin-1 decodes every byte")


def detect_delimiter(text: str) -> str:
    """`,`, `;` or tab, whichever splits the header line into the most columns (German Excel
    writes `;`, a tab-separated export tabs); ties go in that order."""
    first = next(iter(text.splitlines()), "")
    counts = {d: len(next(csv.reader([first], delimiter=d), [])) for d in DELIMITERS}
    return max(DELIMITERS, key=lambda d: counts[d])


def parse(raw: bytes) -> Parsed:
    """Decode and read the header; ParseError for an empty file, a missing or repeated header."""
    text, encoding = decode(raw)
    if "\x00" in text:
        raise ParseError(_("This is not a CSV file (it contains NUL bytes)."))
    if not text.strip():
        raise ParseError(_("The file is empty."))
    delimiter = detect_delimiter(text)
    try:
        header = [name.strip() for name in next(csv.reader(io.StringIO(text), delimiter=delimiter))]
    except (csv.Error, StopIteration) as exc:
        raise ParseError(_("The first line of the file must be its header row.")) from exc
    if not any(header):
        raise ParseError(_("The first line of the file must be its header row."))
    seen: set[str] = set()
    for name in header:
        if name and name in seen:
            raise ParseError(_('The column "%(name)s" appears twice in the header.') % {"name": name})
        seen.add(name)
    return Parsed(text=text, encoding=encoding, delimiter=delimiter, header=header)


def rows(parsed: Parsed, *, skip: int = 0) -> Iterator[tuple[int, list[str]]]:
    """(line number, values) of every data row after the first `skip`, where the line number is the
    file's line the row starts on (the header is line 1). Blank lines are no rows."""
    reader = csv.reader(io.StringIO(parsed.text, newline=""), delimiter=parsed.delimiter)
    next(reader, None)
    line = reader.line_num + 1
    index = 0
    for values in reader:
        start, line = line, reader.line_num + 1
        if not any(value.strip() for value in values):
            continue
        if index >= skip:
            yield start, values
        index += 1


def count_rows(parsed: Parsed) -> int:
    return sum(1 for _ in rows(parsed))


def _key(name: str) -> str:
    name = unicodedata.normalize("NFC", name).lower()
    return re.sub(r"[\s_\-.]+", "", name)


def suggest_mapping(header: list[str]) -> dict[str, str]:
    """A column → field guess by the column's name (English and German); unknown columns are
    skipped (""). A field is suggested for the first column that names it only."""
    mapping: dict[str, str] = {}
    taken: set[str] = set()
    for name in header:
        key = _key(name)
        field = name if name in TARGET_FIELDS else _BY_NAME.get(key, "")
        if not field and key.startswith("attributes") and len(name) > len(ATTRIBUTE_PREFIX):
            field = name
        if field in taken:
            field = ""
        if field:
            taken.add(field)
        mapping[name] = field
    return mapping


def mapping_errors(mapping: Any, header: list[str] | None = None) -> list[str]:
    """What is wrong with a column → field mapping (empty: fine)."""
    if not isinstance(mapping, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()):
        return [_('The mapping is an object of column names to fields, e.g. {"E-Mail": "email"}.')]
    errors = []
    if header is not None:
        unknown_columns = [column for column in mapping if column not in header]
        if unknown_columns:
            errors.append(_("Columns not in the file: %(columns)s.") % {"columns": ", ".join(unknown_columns)})
    targets = [target for target in mapping.values() if target]
    for target in targets:
        if target.startswith(ATTRIBUTE_PREFIX):
            if not ATTRIBUTE_KEY.match(target[len(ATTRIBUTE_PREFIX) :]):
                errors.append(
                    _('"%(target)s": an attribute key is 1–64 letters, digits, _ . or -.') % {"target": target}
                )
        elif target not in TARGET_FIELDS:
            errors.append(
                _('"%(target)s" is not a lead field: one of %(fields)s, "attributes.<key>" or "" (skip).')
                % {"target": target, "fields": ", ".join(TARGET_FIELDS)}
            )
    repeated = sorted({target for target in targets if targets.count(target) > 1})
    if repeated:
        errors.append(_("Each field takes one column; more than one: %(fields)s.") % {"fields": ", ".join(repeated)})
    if "email" not in targets:
        errors.append(_("Map one column to email: the e-mail address is how a lead is found."))
    return errors


def defaults_errors(defaults: Any) -> list[str]:
    if not isinstance(defaults, dict):
        return [_('The defaults are an object, e.g. {"source": "fair", "campaign": "expo-2026"}.')]
    errors = []
    for key, value in defaults.items():
        if key not in DEFAULT_FIELDS:
            errors.append(
                _('"%(key)s" cannot be a default: one of %(fields)s.')
                % {"key": key, "fields": ", ".join(DEFAULT_FIELDS)}
            )
        elif not isinstance(value, str):
            errors.append(_('The default for "%(key)s" is a text.') % {"key": key})
    return errors


def row_data(
    header: list[str], values: list[str], mapping: Mapping[str, str], defaults: Mapping[str, str]
) -> dict[str, Any]:
    """One row as capture data: mapped columns (trimmed; empty ones left out, so they erase
    nothing), `attributes.<key>` columns gathered into `attributes`, defaults where the row has no
    value of its own."""
    data: dict[str, Any] = {}
    attributes: dict[str, str] = {}
    for index, name in enumerate(header):
        target = mapping.get(name, "")
        if not target:
            continue
        value = values[index].strip() if index < len(values) else ""
        if value[:1] == "'" and value[1:2] and value[1] in FORMULA_STARTS:
            value = value[1:]  # a cell our exports quoted (leads.export.safe_text) reads as its text
        if not value:
            continue
        if target.startswith(ATTRIBUTE_PREFIX):
            attributes[target[len(ATTRIBUTE_PREFIX) :]] = value
        else:
            data[target] = value
    for key, value in defaults.items():
        if value and not data.get(key):
            data[key] = value
    if attributes:
        data["attributes"] = attributes
    return data
