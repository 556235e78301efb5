"""Form fields shared by the admin screens of several apps, and the rep dashboard's action forms."""

from __future__ import annotations

from typing import Any

from django import forms

from .models import LostReason
from .services import (
    BANT_NOTE_MAX_LENGTH,
    CLOSE_NOTE_MAX_LENGTH,
    CONTACT_SUMMARY_MAX_LENGTH,
    NOTE_MAX_LENGTH,
)


class ListField(forms.Field):
    """A JSON list of strings edited as comma-separated text ("DE, AT, CH"), so nobody edits JSON.
    (A Field, not a CharField: its clean value is a list, not the text.)"""

    def __init__(self, *args: Any, upper: bool = False, **kwargs: Any) -> None:
        self.upper = upper
        kwargs.setdefault("required", False)
        kwargs.setdefault("help_text", "Comma-separated")
        super().__init__(*args, **kwargs)

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return ", ".join(str(v) for v in value)
        return value

    def to_python(self, value: Any) -> list[str]:
        if isinstance(value, list | tuple):
            items = [str(v) for v in value]
        else:
            items = ("" if value in self.empty_values else str(value)).split(",")
        items = [i.strip() for i in items if i.strip()]
        return [i.upper() for i in items] if self.upper else items


# --- rep dashboard: one small form per action ------------------------------------------------------
# The forms read and type the input; the rules (a confirmed criterion has a note, a won deal a value,
# a call is not in the future …) are the services' (leads.services raises LeadInvalid), shared with
# the API. `service_fields` maps a service's field to the form field that shows its message.

CURRENCIES = [("EUR", "EUR"), ("USD", "USD"), ("GBP", "GBP"), ("CHF", "CHF")]


class NoteForm(forms.Form):
    text = forms.CharField(label="Note", max_length=NOTE_MAX_LENGTH, widget=forms.Textarea(attrs={"rows": 3}))


class ContactLogForm(forms.Form):
    KINDS = [("call", "Call"), ("meeting", "Meeting")]

    kind = forms.ChoiceField(choices=KINDS, initial="call")
    summary = forms.CharField(max_length=CONTACT_SUMMARY_MAX_LENGTH, widget=forms.Textarea(attrs={"rows": 2}))
    occurred_at = forms.DateTimeField(
        required=False,
        label="When",
        help_text="Empty: now",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )


class QualifyForm(forms.Form):
    """BANT: each criterion confirmed or not, with a note (a confirmed one needs it: lead_qualify)."""

    budget = forms.BooleanField(required=False)
    budget_note = forms.CharField(required=False, max_length=BANT_NOTE_MAX_LENGTH, label="Budget")
    authority = forms.BooleanField(required=False)
    authority_note = forms.CharField(required=False, max_length=BANT_NOTE_MAX_LENGTH, label="Authority")
    need = forms.BooleanField(required=False)
    need_note = forms.CharField(required=False, max_length=BANT_NOTE_MAX_LENGTH, label="Need")
    timing = forms.BooleanField(required=False)
    timing_note = forms.CharField(required=False, max_length=BANT_NOTE_MAX_LENGTH, label="Timing")

    CRITERIA = ("budget", "authority", "need", "timing")
    service_fields = {name: f"{name}_note" for name in CRITERIA}

    def criteria(self) -> dict[str, tuple[bool, str]]:
        return {name: (self.cleaned_data[name], self.cleaned_data[f"{name}_note"]) for name in self.CRITERIA}

    def rows(self):
        """(checkbox, note) bound fields per criterion, for the template."""
        return [(self[name], self[f"{name}_note"]) for name in self.CRITERIA]


class CloseWonForm(forms.Form):
    amount = forms.DecimalField(max_digits=14, decimal_places=2, label="Deal value")
    currency = forms.ChoiceField(choices=CURRENCIES, initial="EUR")


class CloseLostForm(forms.Form):
    reason = forms.ChoiceField(choices=[("", "Choose a reason…"), *LostReason.choices])
    note = forms.CharField(required=False, max_length=CLOSE_NOTE_MAX_LENGTH)
