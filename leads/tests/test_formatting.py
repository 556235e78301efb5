"""One formatter per kind of value (leads.formatting): the same figure reads the same everywhere,
in the active language and the current time zone."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.template import Context, Template
from django.utils import timezone, translation

from leads.formatting import (
    format_date,
    format_datetime,
    format_duration,
    format_money,
    format_money_totals,
    format_points,
    format_reason,
)


@pytest.mark.parametrize(
    ("language", "amount", "currency", "shown"),
    [
        ("en", Decimal("18500"), "EUR", "€18,500.00"),
        ("de", Decimal("18500"), "EUR", "18.500,00\N{NO-BREAK SPACE}€"),
        ("en", "18500.5", "CHF", "CHF\N{NO-BREAK SPACE}18,500.50"),
        ("de", 1234567.891, "USD", "1.234.567,89\N{NO-BREAK SPACE}$"),
        ("en", Decimal("-5"), "GBP", "-£5.00"),
        ("en", None, "EUR", "–"),
    ],
)
def test_money_follows_the_language(language, amount, currency, shown):
    with translation.override(language):
        assert format_money(amount, currency) == shown


def test_money_totals_and_the_won_reason_as_written_by_lead_close():
    with translation.override("en"):
        assert format_money_totals({"EUR": Decimal("2500"), "CHF": Decimal("10")}) == "€2,500.00, CHF\xa010.00"
        assert format_money_totals({}) == "–"
        assert format_reason("won 18500.00 EUR") == "won €18,500.00"
        assert format_reason("no budget this year") == "no budget this year"


@pytest.mark.parametrize(
    ("score", "shown"), [(49.25193615976268, "49"), (49.5, "50"), (Decimal("0.4"), "0"), (-3.6, "-4"), (None, "–")]
)
def test_scores_are_whole_points(score, shown):
    assert format_points(score) == shown


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (timedelta(seconds=2), "2 s"),
        (45, "45 s"),
        (timedelta(minutes=3, seconds=20), "3 min 20 s"),
        (timedelta(hours=1, minutes=5), "1 h 05 min"),
        (timedelta(days=2, hours=3, minutes=59), "2 days 3 h"),
        (timedelta(days=1), "1 day"),
        (None, "–"),
    ],
)
def test_durations(value, shown):
    assert format_duration(value) == shown


def test_times_are_shown_in_the_current_zone_with_its_abbreviation():
    winter, summer = datetime(2026, 12, 1, 18, 5, tzinfo=UTC), datetime(2026, 7, 1, 18, 5, tzinfo=UTC)
    with timezone.override(ZoneInfo("Europe/Berlin")):
        with translation.override("de"):
            assert format_datetime(winter) == "01.12.2026 19:05 CET"
            assert format_datetime(summer) == "01.07.2026 20:05 CEST"
            assert format_date(datetime(2026, 12, 31, 23, 30, tzinfo=UTC)) == "1. Januar 2027"
        with translation.override("en"):
            assert format_datetime(winter) == "12/01/2026 7:05 p.m. CET"
    assert format_datetime(winter) == "12/01/2026 6:05 p.m. UTC"  # the default zone (TIME_ZONE)
    assert format_datetime(None) == "–"


def test_the_template_filters_are_the_same_functions():
    template = Template(
        "{% load formatting %}{{ v|money:'EUR' }}|{{ s|points }}|{{ d|duration }}|{{ t|when }}|{{ t|day }}"
    )
    context = Context(
        {
            "v": Decimal("18500"),
            "s": 49.25,
            "d": timedelta(hours=1, minutes=5),
            "t": datetime(2026, 12, 1, 18, 5, tzinfo=UTC),
        }
    )
    with translation.override("en"):
        assert template.render(context) == "€18,500.00|49|1 h 05 min|12/01/2026 6:05 p.m. UTC|Dec. 1, 2026"
