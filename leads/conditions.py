"""The condition vocabulary shared by scoring rules and routing rules.

A condition is (field, operator, value). It has two implementations that must agree:
`evaluate` over plain data (the engines) and `to_q` as an ORM filter (bulk rescoring, queues).
String comparisons ignore case on both sides; a missing value (None or "") matches nothing but
`exists: false`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db.models import Q

TEXT, NUMBER = "text", "number"

# The lead fields a condition may look at, with their kind.
LEAD_FIELDS: dict[str, str] = {
    "email": TEXT,
    "company": TEXT,
    "company_domain": TEXT,
    "job_title": TEXT,
    "industry": TEXT,
    "company_size": NUMBER,
    "annual_revenue": NUMBER,
    "country": TEXT,
    "language": TEXT,
    "product_interest": TEXT,
    "source": TEXT,
    "campaign": TEXT,
    "utm_source": TEXT,
    "utm_medium": TEXT,
    "utm_campaign": TEXT,
    "consent_status": TEXT,
    "score": NUMBER,
    "fit_score": NUMBER,
    "engagement_score": NUMBER,
    "grade": TEXT,
}

OPERATORS: dict[str, str] = {
    "eq": "equals",
    "in": "is one of",
    "contains": "contains",
    "startswith": "starts with",
    "gte": "is at least",
    "lte": "is at most",
    "between": "is between",
    "domain_in": "has a domain in",
    "exists": "is filled in",
}
# What a person calls each field: the forms' dropdown and the sentences of `describe`.
FIELD_LABELS: dict[str, str] = {
    "email": "E-mail",
    "company": "Company",
    "company_domain": "Company domain",
    "job_title": "Job title",
    "industry": "Industry",
    "company_size": "Company size",
    "annual_revenue": "Annual revenue",
    "country": "Country",
    "language": "Language",
    "product_interest": "Product interest",
    "source": "Source",
    "campaign": "Campaign",
    "utm_source": "UTM source",
    "utm_medium": "UTM medium",
    "utm_campaign": "UTM campaign",
    "consent_status": "Consent",
    "score": "Score",
    "fit_score": "Fit score",
    "engagement_score": "Engagement score",
    "grade": "Grade",
}
# The models' choices (kept as they were: every app's migrations hold them), and the dropdown the
# admin's forms show, by label (`labelled_field_choices`).
FIELD_CHOICES = [(name, name.replace("_", " ")) for name in LEAD_FIELDS]
FIELD_LABEL_CHOICES = [(name, FIELD_LABELS[name]) for name in LEAD_FIELDS]
OPERATOR_CHOICES = list(OPERATORS.items())

TEXT_OPERATORS = {"eq", "in", "contains", "startswith", "domain_in", "exists"}
NUMBER_OPERATORS = {"eq", "in", "gte", "lte", "between", "exists"}


class ConditionError(ValueError):
    """A condition that cannot be evaluated; the message says why, in words."""


@dataclass(frozen=True)
class Condition:
    field: str
    op: str
    value: Any


def parse_value(op: str, kind: str, raw: Any) -> Any:
    """Turn what a person typed (text) or sent (JSON) into the value the operator needs."""
    if op == "exists":
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in {"", "yes", "true", "1"}:
            return True
        if text in {"no", "false", "0"}:
            return False
        raise ConditionError("'is filled in' takes yes or no.")
    if op in {"in", "domain_in", "between"}:
        items = raw if isinstance(raw, list | tuple) else str(raw).split(",")
        items = [str(i).strip() if not isinstance(i, int | float) else i for i in items]
        items = [i for i in items if i != ""]
        if not items:
            raise ConditionError(f"'{OPERATORS[op]}' needs at least one value, separated by commas.")
        if op == "between":
            if len(items) != 2:
                raise ConditionError("'is between' takes two numbers: low, high.")
            low, high = (_number(i) for i in items)
            if low > high:
                raise ConditionError(f"'is between' needs low ≤ high, got {low} and {high}.")
            return [low, high]
        if op == "domain_in":
            return [str(i).lower().lstrip("@.") for i in items]
        return [_number(i) for i in items] if kind == NUMBER else [str(i).lower() for i in items]
    if isinstance(raw, list | dict):
        raise ConditionError(f"'{OPERATORS[op]}' takes a single value.")
    if kind == NUMBER or op in {"gte", "lte"}:
        return _number(raw)
    text = str(raw).strip().lower()
    if not text:
        raise ConditionError(f"'{OPERATORS[op]}' needs a value.")
    return text


def _number(raw: Any) -> float:
    if isinstance(raw, bool):
        raise ConditionError(f"{raw!r} is not a number.")
    try:
        value = float(str(raw).replace("_", "").strip())
    except ValueError:
        raise ConditionError(f"{raw!r} is not a number.") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ConditionError(f"{raw!r} is not a number.")
    return value


def lead_condition(field: str, op: str, raw: Any) -> Condition:
    """A validated condition on a lead field; ConditionError says what is wrong, in words."""
    if field not in LEAD_FIELDS:
        raise ConditionError(f"{field!r} is not a field of a lead.")
    kind = LEAD_FIELDS[field]
    return _checked(field, op, raw, kind)


def property_condition(key: str, op: str, raw: Any) -> Condition:
    """A validated condition on a key of an activity's properties (url, asset, campaign …)."""
    if not key or not key.replace("_", "").isalnum() or not key.isascii():
        raise ConditionError(f"{key!r} is not a property name (letters, digits and _ only).")
    if op in {"gte", "lte", "between"}:
        raise ConditionError(f"'{OPERATORS[op]}' is not available on activity properties.")
    return _checked(key, op, raw, TEXT)


def _checked(field: str, op: str, raw: Any, kind: str) -> Condition:
    if op not in OPERATORS:
        raise ConditionError(f"{op} is not an operator (use one of {', '.join(OPERATORS)}).")
    allowed = TEXT_OPERATORS if kind == TEXT else NUMBER_OPERATORS
    if op not in allowed:
        raise ConditionError(f"'{OPERATORS[op]}' does not apply to {field_label(field)}, which is a {kind}.")
    if op == "domain_in" and field not in {"email", "company_domain"}:
        raise ConditionError("'has a domain in' applies to E-mail and Company domain only.")
    return Condition(field, op, parse_value(op, kind, raw))


# --- plain data ----------------------------------------------------------------


def evaluate(condition: Condition, facts: Mapping[str, Any]) -> bool:
    """Does `facts` (a lead's fields, or an activity's properties) satisfy the condition?"""
    field, op, value = condition.field, condition.op, condition.value
    actual = facts.get(field)
    if isinstance(actual, Decimal):
        actual = float(actual)
    present = actual is not None and actual != ""
    if op == "exists":
        return present is value
    if not present:
        return False
    if isinstance(actual, int | float) and not isinstance(actual, bool):
        if op == "eq":
            return actual == value
        if op == "in":
            return actual in value
        if op == "gte":
            return actual >= value
        if op == "lte":
            return actual <= value
        if op == "between":
            return value[0] <= actual <= value[1]
        return False
    text = str(actual).lower()
    if op == "eq":
        return text == value
    if op == "in":
        return text in value
    if op == "contains":
        return value in text
    if op == "startswith":
        return text.startswith(value)
    if op == "domain_in":
        domain = text.rpartition("@")[2]
        return any(domain == d or domain.endswith("." + d) for d in value)
    return False


# --- ORM -----------------------------------------------------------------------


def to_q(condition: Condition, prefix: str = "") -> Q:
    """The same condition as an ORM filter on the model whose fields are `prefix + field`
    (`prefix="properties__"` for activity properties, read as text)."""
    path = prefix + condition.field
    op, value = condition.op, condition.value
    is_text = prefix != "" or LEAD_FIELDS.get(condition.field) == TEXT
    empty = Q(**{f"{path}__isnull": True})
    if is_text:
        empty |= Q(**{path: ""})
    if prefix:
        empty |= Q(**{path: None})  # a key that is present with a JSON null
    if op == "exists":
        return ~empty if value else empty
    if is_text:
        if op == "eq":
            return Q(**{f"{path}__iexact": value})
        if op == "in":
            return _any(Q(**{f"{path}__iexact": v}) for v in value)
        if op == "contains":
            return Q(**{f"{path}__icontains": value})
        if op == "startswith":
            return Q(**{f"{path}__istartswith": value})
        if op == "domain_in":
            at = "@" if condition.field == "email" else ""
            exact = (Q(**{f"{path}__iendswith": at + d}) if at else Q(**{f"{path}__iexact": d}) for d in value)
            return _any(exact) | _any(Q(**{f"{path}__iendswith": "." + d}) for d in value)
    else:
        if op == "eq":
            return Q(**{path: value})
        if op == "in":
            return Q(**{f"{path}__in": value})
        if op == "gte":
            return Q(**{f"{path}__gte": value})
        if op == "lte":
            return Q(**{f"{path}__lte": value})
        if op == "between":
            return Q(**{f"{path}__gte": value[0], f"{path}__lte": value[1]})
    return NEVER


# Always false, and unlike `pk__in=[]` it compiles inside CASE WHEN and aggregate filters.
NEVER = Q(pk__isnull=True)


def _any(qs) -> Q:
    combined = NEVER
    for q in qs:
        combined |= q
    return combined


# --- in words ------------------------------------------------------------------
# The admin's lists, the routing simulator and the scoring preview show a condition as a sentence
# ("Country is one of Germany, Austria", "Company size is at most 3,000"): the field's label, the
# operator in words, and the value as typed, with a choice field's values by their labels.


def field_label(field: str) -> str:
    return FIELD_LABELS.get(field, field.replace("_", " ").capitalize())


def _value_labels(field: str) -> dict[str, str]:
    """Labels of the values of a lead field with choices (country names, languages, consent)."""
    if field == "country":
        from django_countries import countries

        return {code: str(name) for code, name in countries}
    if field == "language":
        from django.conf import global_settings, settings

        return {code: str(name) for code, name in (getattr(settings, "LANGUAGES", None) or global_settings.LANGUAGES)}
    if field == "consent_status":
        from .models import ConsentStatus  # leads.models imports this module: import when asked

        return {code: str(label) for code, label in ConsentStatus.choices}
    return {}


def _number_text(raw: Any) -> str:
    try:
        value = _number(raw)
    except ConditionError:
        return str(raw).strip()
    return f"{value:,.0f}" if value == int(value) else f"{value:,.2f}".rstrip("0")


def _items(raw: Any) -> list[str]:
    items = raw if isinstance(raw, list | tuple) else str(raw).split(",")
    return [str(i).strip() for i in items if str(i).strip()]


def describe(condition: Any, raw: Any = None) -> str:
    """A condition as a sentence, for people. `condition` is a Condition, or a row with `field`,
    `operator` and `value` (the value as typed, e.g. a ConditionRow); a value that does not parse
    is shown as typed, so that a broken row still reads."""
    field = getattr(condition, "field", "")
    op = str(getattr(condition, "op", None) or getattr(condition, "operator", ""))
    value = getattr(condition, "value", "") if raw is None else raw
    return _sentence(field_label(field), field, op, value, LEAD_FIELDS.get(field, TEXT))


def describe_property(key: str, op: str, value: Any) -> str:
    """A condition on an activity's property ("url contains '/pricing'"): the key as it is named."""
    return _sentence(key, "", op, value, TEXT)


def _sentence(label: str, field: str, op: str, value: Any, kind: str) -> str:
    labels = _value_labels(field)

    def shown(item: Any) -> str:
        if kind == NUMBER:
            return _number_text(item)
        text = str(item).strip()
        if labels:
            return labels.get(text.upper() if field == "country" else text.lower(), text)
        return text

    if op == "exists":
        try:
            known = parse_value("exists", kind, value)
        except ConditionError:
            known = True
        return f"{label} is {'known' if known else 'unknown'}"
    if op == "domain_in":
        base = "E-mail domain" if field == "email" else label
        return f"{base} is one of {', '.join(i.lstrip('@.') for i in _items(value))}"
    if op == "in":
        return f"{label} is one of {', '.join(shown(i) for i in _items(value))}"
    if op == "between":
        parts = _items(value)
        if len(parts) == 2:
            return f"{label} is between {_number_text(parts[0])} and {_number_text(parts[1])}"
        return f"{label} is between {', '.join(parts)}"
    if op in {"gte", "lte"}:
        return f"{label} {OPERATORS[op]} {_number_text(value)}"
    if op == "eq":
        if kind == NUMBER or labels or field == "grade":
            return f"{label} is {shown(value).upper() if field == 'grade' else shown(value)}"
        return f"{label} is '{str(value).strip()}'"
    if op in {"contains", "startswith"}:
        return f"{label} {OPERATORS[op]} '{str(value).strip()}'"
    return f"{label} {OPERATORS.get(op, op)} {value}".strip()
