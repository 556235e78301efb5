"""The filters of `leads.formatting`, for every template (pages, e-mails, the admin):

{{ lead.deal_value|money:lead.deal_currency }}  €18,500.00 / 18.500,00 €
{{ lead.score|points }}                         49
{{ figures.median_first_response|duration }}    1 h 05 min
{{ activity.occurred_at|when }}                 01.12.2026 19:05 CET
{{ lead.created_at|day }}                       Dec. 1, 2026
"""

from __future__ import annotations

from django import template

from leads import formatting

register = template.Library()


@register.filter
def money(amount, currency: str = "EUR") -> str:
    return formatting.format_money(amount, currency)


@register.filter
def money_totals(totals: dict) -> str:
    return formatting.format_money_totals(totals or {})


@register.filter
def words(code: str) -> str:
    return formatting.format_code(code)


@register.filter
def points(score) -> str:
    return formatting.format_points(score)


@register.filter
def percent(share) -> str:
    return formatting.format_percent(share)


@register.filter
def duration(value) -> str:
    return formatting.format_duration(value)


@register.filter
def when(moment) -> str:
    return formatting.format_datetime(moment)


@register.filter
def day(moment) -> str:
    return formatting.format_date(moment)
