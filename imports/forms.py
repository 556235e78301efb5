"""The admin's import forms: the upload, and the mapping (a select per column)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.text import slugify
from django.utils.translation import gettext_lazy as _

from leads.services import TOUCH_FIELDS

from . import parsing
from .models import SavedMapping

FIELD_LABELS = {
    "email": _("E-mail"),
    "first_name": _("First name"),
    "last_name": _("Last name"),
    "phone": _("Phone"),
    "company": _("Company"),
    "company_domain": _("Company domain"),
    "job_title": _("Job title"),
    "industry": _("Industry"),
    "company_size": _("Company size"),
    "annual_revenue": _("Annual revenue"),
    "country": _("Country (ISO code, e.g. DE)"),
    "language": _("Language (e.g. de, en)"),
    "product_interest": _("Product interest"),
    "source": _("Source"),
    "campaign": _("Campaign"),
    "utm_source": "UTM source",
    "utm_medium": "UTM medium",
    "utm_campaign": "UTM campaign",
    "utm_term": "UTM term",
    "utm_content": "UTM content",
}


class UploadForm(forms.Form):
    file = forms.FileField(label=_("CSV file"), help_text=_("A header row, then one lead per row; , ; or tab."))
    saved_mapping = forms.ModelChoiceField(
        SavedMapping.objects.all(),
        required=False,
        label=_("Saved mapping"),
        empty_label=_("— suggest from the header —"),
    )


def attribute_target(column: str) -> str:
    return parsing.ATTRIBUTE_PREFIX + (slugify(column).replace("-", "_") or "column")[:64]


class MappingForm(forms.Form):
    """A select per column of the file (named col_<n>: column names may be anything), the
    defaults, the consent statement and, optionally, a name to save the mapping under."""

    source = forms.CharField(label=_("Source for rows without one"), required=False, max_length=100)
    campaign = forms.CharField(label=_("Campaign for rows without one"), required=False, max_length=100)
    has_consent = forms.BooleanField(
        label=_("The people on this list opted in to marketing elsewhere"),
        required=False,
        help_text=_(
            "A list cannot confirm consent. Ticked: new leads without consent are sent the double opt-in "
            "e-mail and are marketable once they click its link. Not ticked: they are imported without "
            "consent and are not marketed to."
        ),
    )
    save_as = forms.CharField(label=_("Save this mapping as"), required=False, max_length=100)

    def __init__(self, *args, header: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.header = header
        for index, column in enumerate(header):
            choices: list[tuple[str, Any]] = [("", _("— skip —"))]
            choices += [(field, FIELD_LABELS.get(field, field)) for field in parsing.TARGET_FIELDS]
            choices += [
                (attribute_target(column), _("Custom attribute “%(key)s”") % {"key": attribute_target(column)[11:]})
            ]
            self.fields[f"col_{index}"] = forms.ChoiceField(label=column, choices=choices, required=False)

    def column_fields(self):
        return [(column, self[f"col_{index}"]) for index, column in enumerate(self.header)]

    @staticmethod
    def initial_for(header: list[str], mapping: dict, defaults: dict, has_consent: bool) -> dict:
        initial = {f"col_{index}": mapping.get(column, "") for index, column in enumerate(header)}
        initial.update({key: defaults.get(key, "") for key in ("source", "campaign")}, has_consent=has_consent)
        return initial

    def mapping(self) -> dict[str, str]:
        return {column: self.cleaned_data.get(f"col_{index}", "") for index, column in enumerate(self.header)}

    def defaults(self) -> dict[str, str]:
        return {
            key: self.cleaned_data[key]
            for key in ("source", "campaign")
            if key in TOUCH_FIELDS and self.cleaned_data.get(key)
        }
