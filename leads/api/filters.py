from datetime import UTC

import django_filters
from django import forms
from django_filters.fields import IsoDateTimeField, RangeField
from django_filters.widgets import DateRangeWidget

from leads.models import Grade, Lead, Stage


class IdFilter(django_filters.NumberFilter):
    """An id: a whole number in the range of the database's bigint (a larger one is a 400, not a 500)."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", 2**63 - 1)
        super().__init__(*args, **kwargs)


class UtcIsoDateTimeField(IsoDateTimeField):
    """ISO 8601, converted to UTC: PostgreSQL refuses offsets beyond ±15:59 that ISO 8601 allows."""

    def to_python(self, value):
        parsed = super().to_python(value)
        if parsed is None:
            return None
        try:
            return parsed.astimezone(UTC)
        except OverflowError as exc:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid") from exc


class UtcIsoDateTimeRangeField(RangeField):
    widget = DateRangeWidget

    def __init__(self, *args, **kwargs):
        super().__init__((UtcIsoDateTimeField(), UtcIsoDateTimeField()), *args, **kwargs)


class UtcIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcIsoDateTimeField


class UtcIsoDateTimeFromToRangeFilter(django_filters.IsoDateTimeFromToRangeFilter):
    field_class = UtcIsoDateTimeRangeField


class LeadFilter(django_filters.FilterSet):
    stage = django_filters.MultipleChoiceFilter(choices=Stage.choices)
    grade = django_filters.MultipleChoiceFilter(choices=Grade.choices)
    owner = IdFilter(field_name="owner_id")
    partner = IdFilter(field_name="partner_id")
    country = django_filters.CharFilter(field_name="country", lookup_expr="iexact")
    source = django_filters.CharFilter()
    campaign = django_filters.CharFilter()
    min_score = django_filters.NumberFilter(field_name="score", lookup_expr="gte")
    max_score = django_filters.NumberFilter(field_name="score", lookup_expr="lte")
    created = UtcIsoDateTimeFromToRangeFilter(field_name="created_at")
    updated = UtcIsoDateTimeFromToRangeFilter(field_name="updated_at")
    updated_since = UtcIsoDateTimeFilter(
        field_name="updated_at", lookup_expr="gte", help_text="Delta sync: leads changed at or after this time"
    )

    class Meta:
        model = Lead
        fields = ["stage", "grade", "owner", "partner", "country", "source", "campaign"]
