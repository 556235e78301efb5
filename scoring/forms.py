"""The scoring model's admin form: the threshold and the grade bands are checked against the rules
submitted with them, in words."""

from __future__ import annotations

from typing import Any

from django import forms
from django.forms.models import BaseInlineFormSet

from .models import BOUNDED_FIELDS, BehaviorRule, ExclusionRule, FitRule, ScoringModel, ceiling_errors, score_ceiling

RULE_MODELS = (FitRule, BehaviorRule, ExclusionRule)


class RuleFormSet(BaseInlineFormSet):
    """The rows of one kind of rule on the model's page. The admin builds the formsets around the
    model form's instance before it validates that form, so each one leaves itself on the instance
    for `ScoringModelForm.clean`: the threshold is checked against the rules as typed, not as
    saved (a new draft has none saved)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.instance.__dict__.setdefault("_rule_formsets", {})[self.model] = self

    def submitted_rules(self) -> list:
        """The rules as they will be once saved: the rows on the page (less those marked for
        deletion) and any saved row the page did not send."""
        untouched = {rule.pk: rule for rule in self.get_queryset()}
        for form in self.initial_forms:
            untouched.pop(form.instance.pk, None)
        kept = [
            form.instance
            for form in self.forms
            if form.cleaned_data and not (self.can_delete and form.cleaned_data.get("DELETE"))
        ]
        return [*untouched.values(), *kept]


class ScoringModelForm(forms.ModelForm):
    class Meta:
        model = ScoringModel
        fields = ["name", "notes", "mql_threshold", "min_grade", "half_life_days", *BOUNDED_FIELDS[1:]]
        help_texts = {
            "mql_threshold": "A lead with at least this score becomes an MQL: 0 or more, and no more than"
            " the highest score the rules allow (shown below)",
        }

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        rules = self._rules()
        if rules is None:
            return data  # a rule row is wrong: its own message says why, and this is checked again
        values = {name: data.get(name) for name in BOUNDED_FIELDS}
        for name, messages in ceiling_errors(values, score_ceiling(*rules)).items():
            for message in messages:
                self.add_error(name, message)
        return data

    def _rules(self) -> tuple[list, ...] | None:
        """The fit, behaviour and exclusion rules as submitted (the saved ones for a kind the page
        did not send); None while a submitted row is invalid."""
        formsets = self.instance.__dict__.get("_rule_formsets", {})
        result = []
        for model in RULE_MODELS:
            formset = formsets.get(model)
            if formset is None:
                saved = model.objects.filter(model=self.instance) if self.instance.pk else model.objects.none()
                result.append(list(saved))
            elif not formset.is_valid():
                return None
            else:
                result.append(formset.submitted_rules())
        return tuple(result)
