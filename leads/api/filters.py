import django_filters

from leads.models import Grade, Lead, Stage


class LeadFilter(django_filters.FilterSet):
    stage = django_filters.MultipleChoiceFilter(choices=Stage.choices)
    grade = django_filters.MultipleChoiceFilter(choices=Grade.choices)
    owner = django_filters.NumberFilter(field_name="owner_id")
    partner = django_filters.NumberFilter(field_name="partner_id")
    country = django_filters.CharFilter(field_name="country", lookup_expr="iexact")
    source = django_filters.CharFilter()
    campaign = django_filters.CharFilter()
    min_score = django_filters.NumberFilter(field_name="score", lookup_expr="gte")
    max_score = django_filters.NumberFilter(field_name="score", lookup_expr="lte")
    created = django_filters.IsoDateTimeFromToRangeFilter(field_name="created_at")
    updated = django_filters.IsoDateTimeFromToRangeFilter(field_name="updated_at")
    updated_since = django_filters.IsoDateTimeFilter(
        field_name="updated_at", lookup_expr="gte", help_text="Delta sync: leads changed at or after this time"
    )

    class Meta:
        model = Lead
        fields = ["stage", "grade", "owner", "partner", "country", "source", "campaign"]
