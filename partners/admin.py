from __future__ import annotations

from django.contrib import admin
from django.utils.html import format_html_join

from leads.admin import RecordAdmin
from leads.formatting import format_duration, format_money_totals
from leads.forms import country_names
from leads.models import PartnerOrganization
from routing.models import REGIONS

from .forms import PartnerOrganizationForm
from .models import FeedbackReminder, PartnerFeedback
from .selectors import PartnerPerformance, partner_performance


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


# The portal shows the same figures with the same formatters (leads.formatting).
_duration = format_duration
_money = format_money_totals


@admin.register(PartnerOrganization)
class PartnerOrganizationAdmin(admin.ModelAdmin):
    # Fits 1366 px: who, where, and how they perform; the policy's days are on the change page.
    list_display = [
        "name",
        "active",
        "territory_list",
        "acceptance",
        "first_response",
        "compliance",
        "won",
    ]
    list_filter = ["active"]
    search_fields = ["name"]
    autocomplete_fields = ["channel_manager"]
    form = PartnerOrganizationForm
    readonly_fields = ["created_at", "performance", "territory_names"]
    fieldsets = [
        (None, {"fields": ["name", "active", "territories", "territory_names", "products", "capacity"]}),
        (
            "Feedback policy",
            {
                "description": "Days count from the handover. A report (anything but a bare acceptance) stops "
                "the chase; past the escalation limit the lead is taken back and rerouted.",
                "fields": [
                    "feedback_deadline_days",
                    "remind_after_days",
                    "remind_every_days",
                    "escalate_after_days",
                    "channel_manager",
                ],
            },
        ),
        ("Performance", {"fields": ["performance", "created_at"]}),
    ]

    def changelist_view(self, request, extra_context=None):
        # One set of aggregate queries for the whole page, not one per row.
        self._figures = partner_performance()
        return super().changelist_view(request, extra_context)

    def _of(self, obj: PartnerOrganization) -> PartnerPerformance:
        figures = getattr(self, "_figures", None)
        if figures is None or obj.pk not in figures:
            return partner_performance(obj)[obj.pk]
        return figures[obj.pk]

    @admin.display(description="Territories")
    def territory_list(self, obj: PartnerOrganization) -> str:
        names = [code if code in REGIONS else country_names([code]) for code in obj.territories] or ["anywhere"]
        return ", ".join(names[:3]) + (f" +{len(names) - 3}" if len(names) > 3 else "")

    @admin.display(description="Countries covered")
    def territory_names(self, obj: PartnerOrganization) -> str:
        return country_names(obj.territories, REGIONS) if obj.pk else "—"

    @admin.display(description="Acceptance")
    def acceptance(self, obj) -> str:
        return _percent(self._of(obj).acceptance_rate)

    @admin.display(description="First reply (median)")
    def first_response(self, obj) -> str:
        return _duration(self._of(obj).median_first_response)

    @admin.display(description="Feedback on time")
    def compliance(self, obj) -> str:
        return _percent(self._of(obj).feedback_compliance)

    @admin.display(description="Win rate")
    def win_rate(self, obj) -> str:
        return _percent(self._of(obj).win_rate)

    @admin.display(description="Won value")
    def won_value(self, obj) -> str:
        return _money(self._of(obj).won_value)

    @admin.display(description="Won (rate, value)")
    def won(self, obj) -> str:
        figures = self._of(obj)
        if figures.win_rate is None:
            return "–"
        return f"{_percent(figures.win_rate)}, {_money(figures.won_value)}"

    @admin.display(description="Outcomes")
    def performance(self, obj) -> str:
        if obj.pk is None:
            return "–"
        p = partner_performance(obj)[obj.pk]
        rows = [
            ("Handovers", f"{p.handovers} ({p.waiting} waiting for an answer)"),
            ("Accepted / declined", f"{p.accepted} / {p.declined} — acceptance {_percent(p.acceptance_rate)}"),
            ("Median time to first response", _duration(p.median_first_response)),
            ("Feedback within the deadline", _percent(p.feedback_compliance)),
            ("Won / lost", f"{p.won} / {p.lost} — win rate {_percent(p.win_rate)}"),
            ("Won value", _money(p.won_value)),
        ]
        return format_html_join("", "<div><strong>{}</strong>: {}</div>", rows)


class ReadOnlyAdmin(RecordAdmin):
    """Written by services only (feedback through the portal and API, reminders by the beat job),
    and kept: not even deleted here."""

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(PartnerFeedback)
class PartnerFeedbackAdmin(ReadOnlyAdmin):
    list_display = ["at", "organization", "lead", "status", "reason", "deal_value", "currency", "user"]
    list_filter = ["status", "reason", "organization"]
    search_fields = ["lead__email", "lead__company", "external_id", "note"]
    list_select_related = ["organization", "lead", "user"]
    date_hierarchy = "at"


@admin.register(FeedbackReminder)
class FeedbackReminderAdmin(ReadOnlyAdmin):
    list_display = ["sent_at", "organization", "lead", "step", "number", "handed_over_at"]
    list_filter = ["step", "organization"]
    search_fields = ["lead__email", "lead__company"]
    list_select_related = ["organization", "lead"]
