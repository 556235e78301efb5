"""Conditions as sentences (leads.conditions.describe): every operator, a choices field, a country
list, and rows that do not parse. The admin's lists, the simulator and the scoring preview show these."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from leads.conditions import (
    LEAD_FIELDS,
    NUMBER,
    NUMBER_OPERATORS,
    OPERATORS,
    TEXT,
    TEXT_OPERATORS,
    describe,
    describe_property,
    lead_condition,
)


def row(field: str, operator: str, value: str) -> SimpleNamespace:
    return SimpleNamespace(field=field, operator=operator, value=value)


@pytest.mark.parametrize(
    ("field", "operator", "value", "sentence"),
    [
        ("grade", "eq", "A", "Grade is A"),
        ("grade", "eq", "b", "Grade is B"),
        ("grade", "in", "A, B", "Grade is one of A, B"),
        ("company_size", "lte", "3000", "Company size is at most 3,000"),
        ("company_size", "gte", "250", "Company size is at least 250"),
        ("company_size", "eq", "50", "Company size is 50"),
        ("company_size", "in", "10, 20000", "Company size is one of 10, 20,000"),
        ("country", "in", "DE, AT, CH", "Country is one of Germany, Austria, Switzerland"),
        ("country", "in", "se,no,dk", "Country is one of Sweden, Norway, Denmark"),
        ("country", "eq", "fr", "Country is France"),
        ("email", "domain_in", "gmail.com, @web.de", "E-mail domain is one of gmail.com, web.de"),
        ("company_domain", "domain_in", "acme.com", "Company domain is one of acme.com"),
        ("job_title", "contains", "CTO", "Job title contains 'CTO'"),
        ("job_title", "startswith", "Head of", "Job title starts with 'Head of'"),
        ("industry", "eq", "Software", "Industry is 'Software'"),
        ("industry", "in", "Software, Retail", "Industry is one of Software, Retail"),
        ("annual_revenue", "between", "1000000, 5000000", "Annual revenue is between 1,000,000 and 5,000,000"),
        ("score", "gte", "12.5", "Score is at least 12.5"),
        ("industry", "exists", "yes", "Industry is known"),
        ("industry", "exists", "no", "Industry is unknown"),
        ("company_size", "exists", "", "Company size is known"),
        ("language", "eq", "de", "Language is German"),
        ("language", "in", "de, en", "Language is one of German, English"),
        ("consent_status", "eq", "confirmed", "Consent is Opt-in confirmed"),
        ("utm_source", "eq", "linkedin", "UTM source is 'linkedin'"),
    ],
)
def test_a_condition_reads_as_a_sentence(field, operator, value, sentence):
    lead_condition(field, operator, value)  # every example is a valid condition
    assert describe(row(field, operator, value)) == sentence


def test_every_operator_on_every_field_it_applies_to_reads_without_codes():
    """No field code (company_size), no operator code (lte) in any sentence."""
    values = {"in": "1, 2", "domain_in": "acme.com", "between": "1, 2", "exists": "yes"}
    for field, kind in LEAD_FIELDS.items():
        for op in TEXT_OPERATORS if kind == TEXT else NUMBER_OPERATORS:
            if op == "domain_in" and field not in {"email", "company_domain"}:
                continue
            sentence = describe(row(field, op, values.get(op, "1")))
            assert "_" not in sentence, sentence
            assert not {"eq", "gte", "lte", "startswith", "domain_in", "exists"} & set(sentence.split()), sentence
            assert sentence[0].isupper(), sentence
    assert set(OPERATORS) == TEXT_OPERATORS | NUMBER_OPERATORS | {"gte", "lte", "between"}
    assert NUMBER in LEAD_FIELDS.values()


def test_a_parsed_condition_reads_too_and_a_broken_row_still_reads():
    assert describe(lead_condition("country", "in", "DE, AT")) == "Country is one of Germany, Austria"
    assert describe(row("company_size", "between", "500")) == "Company size is between 500"
    assert describe(row("country", "in", "DE, XX")) == "Country is one of Germany, XX"


def test_a_condition_on_an_activity_property_keeps_the_property_name():
    assert describe_property("url", "contains", "/pricing") == "url contains '/pricing'"
    assert describe_property("asset", "in", "whitepaper, ebook") == "asset is one of whitepaper, ebook"
