"""Forms of the partner portal: decline a lead, report feedback."""

from __future__ import annotations

from django import forms

from leads.forms import CURRENCIES, CountryListField, ListField
from leads.models import PartnerOrganization
from routing.models import REGIONS

from .models import REASONS_FOR, FeedbackReason, FeedbackStatus

# What a partner reports once it works the lead (accepting and declining have their own buttons).
REPORTS = [
    (s.value, s.label)
    for s in (
        FeedbackStatus.CONTACTED,
        FeedbackStatus.MEETING,
        FeedbackStatus.PROPOSAL,
        FeedbackStatus.WON,
        FeedbackStatus.LOST,
        FeedbackStatus.UNREACHABLE,
    )
]


def _reasons(status: str) -> list[tuple[str, str]]:
    return [("", "Choose a reason…")] + [(r, FeedbackReason(r).label) for r in REASONS_FOR[status]]


class DeclineForm(forms.Form):
    reason = forms.ChoiceField(choices=_reasons(FeedbackStatus.DECLINED))
    note = forms.CharField(
        required=False, max_length=2000, widget=forms.TextInput(attrs={"placeholder": "Anything to add"})
    )


class FeedbackForm(forms.Form):
    status = forms.ChoiceField(choices=[("", "What happened?"), *REPORTS], label="Outcome")
    reason = forms.ChoiceField(
        choices=_reasons(FeedbackStatus.LOST), required=False, label="Reason", help_text="For a lost deal"
    )
    deal_value = forms.DecimalField(
        required=False, max_digits=14, decimal_places=2, min_value=0.01, label="Deal value", help_text="For a won deal"
    )
    currency = forms.ChoiceField(choices=CURRENCIES, initial="EUR")
    note = forms.CharField(required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))


# --- the admin's partner organisation form ---------------------------------------------------


class PartnerOrganizationForm(forms.ModelForm):
    """Territories and products as comma-separated text ("SE, NO, DK"), stored as the same JSON
    lists routing reads; the feedback policy's days with labels that say what they count."""

    territories = CountryListField(
        regions=REGIONS, help_text="ISO country codes or regions, comma-separated: SE, NO, DK"
    )
    products = ListField(help_text="Comma-separated: Cloud, Analytics")

    class Meta:
        model = PartnerOrganization
        fields = [
            "name",
            "active",
            "territories",
            "products",
            "capacity",
            "feedback_deadline_days",
            "remind_after_days",
            "remind_every_days",
            "escalate_after_days",
            "channel_manager",
        ]
        labels = {
            "capacity": "Capacity (open leads)",
            "feedback_deadline_days": "Feedback deadline (days)",
            "remind_after_days": "First reminder after (days)",
            "remind_every_days": "Then remind every (days)",
            "escalate_after_days": "Take back after (days)",
        }
