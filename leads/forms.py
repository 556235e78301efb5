"""Form fields shared by the admin screens of several apps, and the rep dashboard's action forms."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import global_settings
from django_countries import countries

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


class CountryListField(ListField):
    """Countries as ISO codes, typed "SE, NO, DK" and stored as ["SE", "NO", "DK"]; also the region
    names given (DACH, NORDICS …). A code that is no country is refused in words, and the help text
    under the field names the countries saved."""

    def __init__(self, *args: Any, regions: dict[str, list[str]] | None = None, **kwargs: Any) -> None:
        self.regions = regions or {}
        kwargs.setdefault("help_text", "ISO country codes, comma-separated: SE, NO, DK")
        super().__init__(*args, upper=True, **kwargs)

    def validate(self, value: list[str]) -> None:
        super().validate(value)
        wrong = [item for item in value if item not in self.regions and item not in countries]
        if wrong:
            regions = f" or a region ({', '.join(self.regions)})" if self.regions else ""
            listed = ", ".join(f"“{w}”" for w in wrong)
            raise forms.ValidationError(
                f"{listed} {'is' if len(wrong) == 1 else 'are'} not a country code{regions}."
                " Use two-letter codes such as DE for Germany, SE for Sweden."
            )


def country_names(codes: list[str], regions: dict[str, list[str]] | None = None) -> str:
    """["SE", "DACH"] → "Sweden, DACH (Germany, Austria, Switzerland)": a territory list for people."""
    regions = regions or {}

    def name(code: str) -> str:
        return str(countries.name(code)) or code

    parts = [
        f"{code} ({', '.join(name(c) for c in regions[code])})" if code in regions else name(code)
        for code in (str(c).upper() for c in codes)
    ]
    return ", ".join(parts) or "—"


LANGUAGE_NAMES = dict(global_settings.LANGUAGES)


class LanguageListField(ListField):
    """Languages as codes ("de, en"), stored lower case; a code Django does not know is refused."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("help_text", "Language codes, comma-separated: de, en")
        super().__init__(*args, **kwargs)

    def to_python(self, value: Any) -> list[str]:
        return [item.lower() for item in super().to_python(value)]

    def validate(self, value: list[str]) -> None:
        super().validate(value)
        wrong = [item for item in value if item not in LANGUAGE_NAMES]
        if wrong:
            listed = ", ".join(f"“{w}”" for w in wrong)
            raise forms.ValidationError(
                f"{listed} {'is' if len(wrong) == 1 else 'are'} not a language code. Use codes such as de"
                " for German, en for English."
            )


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
