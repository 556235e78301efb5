import django_filters

from leads.api.filters import UtcIsoDateTimeFilter
from leads.models import Lead, Stage


class PartnerLeadFilter(django_filters.FilterSet):
    stage = django_filters.MultipleChoiceFilter(choices=Stage.choices)
    updated_since = UtcIsoDateTimeFilter(
        field_name="updated_at", lookup_expr="gte", help_text="Delta sync: leads changed at or after this time"
    )
    feedback_due = django_filters.BooleanFilter(
        method="filter_feedback_due", help_text="true: leads still waiting for your report; false: reported"
    )

    class Meta:
        model = Lead
        fields = ["stage"]

    def filter_feedback_due(self, queryset, name, value):
        return queryset.filter(feedback_due_at__isnull=not value)
