"""The dashboard's lead lists: the filters of the rep's queue and of marketing's lead list, the queue's sort menu."""

from __future__ import annotations

from typing import Any

import django_filters
from django import forms
from django.db.models import QuerySet
from django_countries import countries

from .formatting import format_code
from .lifecycle import OPEN_STAGES
from .models import Grade, Lead, Stage

CHOICE_FIELDS = ("country", "product_interest", "source")  # filters whose choices come from the rep's leads

# The sort menu of the queue (the same `sort` values as its column headers, leads.listing).
SORT_CHOICES = [
    ("-handover", "Newest handover"),
    ("sla", "SLA due first"),
    ("-score", "Highest score"),
    ("created", "Oldest lead first"),
    ("handover", "Oldest handover"),
    ("-sla", "SLA due last"),
    ("score", "Lowest score"),
    ("-created", "Newest lead first"),
    ("lead", "Company A–Z"),
    ("-lead", "Company Z–A"),
    ("stage", "Stage"),
    ("country", "Country A–Z"),
    ("product", "Product A–Z"),
]
# A sort value of before the column headers (bookmarks), read as its new spelling.
LEGACY_SORTS = {"age": "created"}


def _select(**attrs) -> forms.Select:
    return forms.Select(attrs={"class": "select", **attrs})


class QueueFilter(django_filters.FilterSet):
    """Open leads by default; any stage, grade, country, product or source on request."""

    stage = django_filters.ChoiceFilter(
        choices=[("all", "All stages"), *Stage.choices],
        empty_label="Open (MQL, SAL, SQL)",
        method="filter_stage",
        widget=_select(),
    )
    grade = django_filters.ChoiceFilter(choices=Grade.choices, empty_label="Any grade", widget=_select())
    country = django_filters.ChoiceFilter(empty_label="Any country", widget=_select())
    product_interest = django_filters.ChoiceFilter(label="Product", empty_label="Any product", widget=_select())
    source = django_filters.ChoiceFilter(empty_label="Any source", widget=_select())

    class Meta:
        model = Lead
        fields = ["stage", "grade", "country", "product_interest", "source"]

    def __init__(self, data: Any = None, *, queryset: QuerySet[Lead], **kwargs: Any) -> None:
        super().__init__(data, queryset=queryset, **kwargs)
        # The choices are what this person's leads actually have. One query for the three lists:
        # each list alone reads every one of the rep's leads (thousands of scattered rows), so
        # three queries read them three times. Sorted here as the database's C collation would.
        found: dict[str, set[str]] = {name: set() for name in CHOICE_FIELDS}
        for row in queryset.order_by().values_list(*CHOICE_FIELDS).distinct():
            for name, value in zip(CHOICE_FIELDS, row, strict=True):
                if value:
                    found[name].add(value)
        for name in CHOICE_FIELDS:
            label = countries.name if name == "country" else format_code if name == "source" else str
            self.filters[name].extra["choices"] = [(v, label(v) or v) for v in sorted(found[name])]

    @property
    def qs(self) -> QuerySet[Lead]:
        queryset = super().qs
        if not self.form.cleaned_data.get("stage"):
            queryset = queryset.filter(stage__in=OPEN_STAGES)
        return queryset

    def filter_stage(self, queryset: QuerySet[Lead], name: str, value: str) -> QuerySet[Lead]:
        return queryset if value == "all" else queryset.filter(stage=value)


class LeadListFilter(QueueFilter):
    """Marketing's list: the queue's filters over every lead, every stage unless one is chosen."""

    stage = django_filters.ChoiceFilter(
        choices=Stage.choices, empty_label="All stages", widget=_select(**{"aria-label": "Stage"})
    )

    @property
    def qs(self) -> QuerySet[Lead]:
        return super(QueueFilter, self).qs
