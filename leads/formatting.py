"""One way to show each kind of value to people: money, scores, durations, dates and times.

Every page, e-mail and admin screen formats these through here (templates through the filters of
`leads/templatetags/formatting.py`), so one figure reads the same wherever it appears: a won deal
is "€18,500.00" (English) or "18.500,00 €" (German) everywhere, never "18500.00 EUR" on one line
and "18,500.00 EUR" on the next. Numbers follow the active language (Django's `formats`), times
the current time zone, with its abbreviation ("01.12.2026 19:05 CET"). The API keeps the raw
values (ISO 8601, decimals as strings, codes): this module is for people only.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django.utils import formats, timezone, translation
from django.utils.translation import ngettext

EMPTY = "–"

# Currencies people recognise by a sign; any other code is written out ("CHF 1,200.00").
SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£"}


def _decimal(value) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def _sign_after() -> bool:
    """German (and most of continental Europe) writes the currency after the amount, with a space."""
    return (translation.get_language() or "en").split("-")[0] in {"de", "fr", "es", "it", "nl", "sv", "da", "nb", "fi"}


def format_money(amount, currency: str = "EUR") -> str:
    """`18500` EUR → "€18,500.00" in English, "18.500,00 €" in German; two decimals, grouped."""
    value = _decimal(amount)
    if value is None:
        return EMPTY
    code = (currency or "EUR").upper()
    number = formats.number_format(abs(value), decimal_pos=2, use_l10n=True, force_grouping=True)
    sign = "-" if value < 0 else ""
    symbol = SYMBOLS.get(code, code)
    if _sign_after():
        return f"{sign}{number}\N{NO-BREAK SPACE}{symbol}"
    return f"{sign}{symbol}{number}" if code in SYMBOLS else f"{sign}{symbol}\N{NO-BREAK SPACE}{number}"


# How leads.services.lead_close words a won deal's move ("won 18500.00 EUR"): stored and given to
# the API as written, shown to people with the amount formatted.
_WON_REASON = re.compile(r"won (-?\d+(?:\.\d+)?) ([A-Z]{3})")


def format_reason(reason: str) -> str:
    """A stage change's reason for people: "won 18500.00 EUR" → "won €18,500.00"; others as written."""
    match = _WON_REASON.fullmatch(reason or "")
    return f"won {format_money(match[1], match[2])}" if match else reason


def format_code(code: str) -> str:
    """A code stored as free text (a lead's source, a field's name) in words: "web_form" → "Web form"."""
    return (code or "").replace("_", " ").strip().capitalize() or EMPTY


def format_money_totals(totals: dict[str, Decimal]) -> str:
    """Sums by currency, e.g. a partner's won value: "€18,500.00, CHF 2,000.00"."""
    return ", ".join(format_money(total, currency) for currency, total in totals.items()) or EMPTY


def format_points(score) -> str:
    """A score in whole points: 49.25193615976268 → "49" (half up: 49.5 → "50")."""
    value = _decimal(score)
    if value is None:
        return EMPTY
    return formats.number_format(value.quantize(Decimal(1), rounding=ROUND_HALF_UP), decimal_pos=0, use_l10n=True)


def format_percent(share) -> str:
    """A share in [0, 1] as whole percent: 0.4567 → "46 %"."""
    value = _decimal(share)
    if value is None:
        return EMPTY
    return f"{formats.number_format((100 * value).quantize(Decimal(1), rounding=ROUND_HALF_UP), 0)}\N{NO-BREAK SPACE}%"


def format_duration(value: timedelta | float | int | None) -> str:
    """A span of time, as precise as it matters: "45 s", "3 min 20 s", "1 h 05 min", "2 days 3 h"."""
    if value is None:
        return EMPTY
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    s = abs(round(seconds))
    days, hours, minutes, rest = s // 86400, s % 86400 // 3600, s % 3600 // 60, s % 60
    if days:
        text = ngettext("%(n)d day", "%(n)d days", days) % {"n": days}
        return f"{text} {hours} h" if hours else text
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {rest:02d} s"
    return f"{rest} s"


def format_datetime(moment: datetime | None) -> str:
    """A moment in the current time zone with its abbreviation: "12/01/2026 7:05 p.m. CET" (English),
    "01.12.2026 19:05 CET" (German)."""
    if moment is None:
        return EMPTY
    local = timezone.localtime(moment) if timezone.is_aware(moment) else moment
    text = formats.date_format(local, "SHORT_DATETIME_FORMAT", use_l10n=True)
    zone = local.tzname() or ""
    return f"{text} {zone}".strip()


def format_date(day: date | datetime | None) -> str:
    """A day, in the current time zone if it is a moment: "Dec. 1, 2026" / "1. Dezember 2026"."""
    if day is None:
        return EMPTY
    if isinstance(day, datetime):
        day = timezone.localdate(day) if timezone.is_aware(day) else day.date()
    return formats.date_format(day, "DATE_FORMAT", use_l10n=True)
