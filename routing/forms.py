"""Forms of routing's dashboard pages (reject, availability, reassign, funnel period)."""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.utils import timezone

from leads.models import Role, User

from .models import TARGET_NEEDS, RoutingRule, Strategy


class RejectForm(forms.Form):
    reason = forms.CharField(
        max_length=1000,
        widget=forms.TextInput(attrs={"placeholder": "Why? e.g. not our segment, student, duplicate"}),
    )


class AvailabilityForm(forms.Form):
    away_until = forms.DateTimeField(
        required=False,
        label="Away until",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )

    def clean_away_until(self):
        value = self.cleaned_data["away_until"]
        if value is not None and value <= timezone.now():
            raise forms.ValidationError("Pick a time in the future.")
        return value


def people_who_take_leads():
    """Active sales reps and managers whose routing profile (if any) is not switched off."""
    return (
        User.objects.filter(role__in=[Role.SALES_REP, Role.SALES_MANAGER], is_active=True)
        .exclude(rep_profile__active=False)
        .order_by("first_name", "last_name", "username")
    )


class RepChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: User) -> str:
        return obj.get_full_name() or obj.get_username()


class ReassignForm(forms.Form):
    to_user = RepChoiceField(queryset=User.objects.none(), label="Reassign to", empty_label="Choose a rep…")
    note = forms.CharField(required=False, max_length=500)
    # Set by the "hand over anyway" button after the page said the rep is at capacity.
    over_capacity = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Asked afresh for each form (who takes leads changes); the declared queryset is none.
        to_user = cast(RepChoiceField, self.fields["to_user"])  # the field declared above
        to_user.queryset = people_who_take_leads()


class FunnelForm(forms.Form):
    PERIODS = [("7", "Last 7 days"), ("30", "Last 30 days"), ("90", "Last 90 days"), ("365", "Last 12 months")]

    days = forms.TypedChoiceField(choices=PERIODS, coerce=int, initial=30, required=False)


# --- the admin's routing rule form -------------------------------------------------------------


class RoutingRuleForm(forms.ModelForm):
    """A rule's target decides which fields count (static/js/admin_rule_form.js shows only those).
    A pool takes the pool strategy by itself; what a target lacks is said in words, at its field."""

    class Meta:
        model = RoutingRule
        exclude: list[str] = []  # every field; the admin's fieldsets arrange them

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        target = data.get("target")
        if target == RoutingRule.Target.POOL:
            data["strategy"] = Strategy.POOL  # the only strategy of a pool; its field is hidden
            self.instance.strategy = Strategy.POOL
        if target == RoutingRule.Target.PARTNERS and "partners" in self.fields and not data.get("partners"):
            self.add_error("partners", TARGET_NEEDS[target][1])  # the model's clean checks rep and team
        return data


class BulkForm(forms.Form):
    """The team page's bulk action: the ticked leads, accept or reassign (to whom)."""

    ACCEPT, REASSIGN = "accept", "reassign"
    MAX_LEADS = 100

    action = forms.ChoiceField(choices=[(ACCEPT, "Accept"), (REASSIGN, "Reassign")])
    lead = forms.TypedMultipleChoiceField(coerce=int, required=True)
    to_user = RepChoiceField(queryset=User.objects.none(), required=False, empty_label="Choose a rep…")
    note = forms.CharField(required=False, max_length=500)
    back = forms.CharField(required=False, max_length=2000)  # the team page's query (search, sort, page)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        to_user = cast(RepChoiceField, self.fields["to_user"])
        to_user.queryset = people_who_take_leads()
        # Any id is a choice: the view keeps those the manager may see.
        self.fields["lead"].valid_value = lambda value: str(value).isdigit()  # type: ignore[attr-defined]
        self.fields["lead"].error_messages["required"] = "Tick at least one lead."

    def clean_lead(self) -> list[int]:
        leads = self.cleaned_data["lead"]
        if len(leads) > self.MAX_LEADS:
            raise forms.ValidationError(f"Tick at most {self.MAX_LEADS} leads at a time.")
        return list(dict.fromkeys(leads))

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("action") == self.REASSIGN and not data.get("to_user"):
            self.add_error("to_user", "Choose the rep to hand the leads to.")
        return data
