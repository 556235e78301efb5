"""Hostile JSON gets a clear 400 (or 413) in JSON and changes nothing (issue #12's reproductions:
JSON nested ≥ 925 levels was a 500 on capture and events, a 924-deep or 9.9 MB attribute was stored,
a 10 MB body got an HTML error)."""

import json

import pytest

from leads.limits import MAX_JSON_BYTES, MAX_JSON_DEPTH
from leads.models import Activity, Lead


def nested(levels: int) -> str:
    return '{"x":' * levels + "1" + "}" * levels


def body(prefix: str, value: str) -> str:
    """A JSON body whose last field is `value`, raw (json.dumps itself cannot nest that deep)."""
    return "{" + prefix + value + "}"


@pytest.mark.parametrize("levels", [1000, 5000])
def test_json_nested_past_the_decoder_is_a_400_on_capture_and_events(integration, api, levels):
    client = api(integration)
    capture = client.post(
        "/api/v1/leads/",
        body('"email": "d@x.example", "attributes": ', nested(levels)),
        content_type="application/json",
    )
    events = client.post(
        "/api/v1/events/",
        body('"email": "d@x.example", "type": "page_view", "properties": ', nested(levels)),
        content_type="application/json",
    )
    for answer in (capture, events):
        assert answer.status_code == 400
        assert answer.json() == {"detail": "JSON parse error - the body is nested too deeply."}
    assert not Lead.objects.exists() and not Activity.objects.exists()


def test_attributes_and_properties_deeper_than_the_limit_are_refused(integration, api):
    client = api(integration)
    fine, deep = nested(MAX_JSON_DEPTH), nested(MAX_JSON_DEPTH + 1)  # the attributes object is level 1
    ok = client.post(
        "/api/v1/leads/", body('"email": "a@x.example", "attributes": ', fine), content_type="application/json"
    )
    assert ok.status_code == 201
    refused = client.post(
        "/api/v1/leads/", body('"email": "b@x.example", "attributes": ', deep), content_type="application/json"
    )
    assert refused.status_code == 400
    assert refused.json() == {
        "attributes": [f"Nested too deeply: at most {MAX_JSON_DEPTH} levels of objects and lists."]
    }
    event = client.post(
        "/api/v1/events/",
        '{"email": "a@x.example", "type": "page_view", "properties": {"list": [[[[[[[[1]]]]]]]]}}',
        content_type="application/json",
    )
    assert event.status_code == 400
    assert "Nested too deeply" in json.dumps(event.json())
    assert list(Lead.objects.values_list("email", flat=True)) == ["a@x.example"]
    assert Activity.objects.filter(type="page_view").count() == 0


def test_a_huge_attribute_is_refused_and_a_huge_body_is_a_json_413(integration, api):
    client = api(integration)
    big_value = {"email": "c@x.example", "attributes": {"notes": "y" * (MAX_JSON_BYTES + 1)}}
    refused = client.post("/api/v1/leads/", big_value, format="json")
    assert refused.status_code == 400
    assert refused.json() == {"attributes": ["Too large: at most 64 KB as JSON."]}

    body = {"email": "c@x.example", "attributes": {"notes": "z" * (11 * 1024 * 1024)}}
    too_big = client.post("/api/v1/leads/", body, format="json")
    assert too_big.status_code == 413
    assert too_big["Content-Type"] == "application/json"
    assert too_big.json() == {"detail": "The request body is too large: at most 10 MB.", "code": "too_large"}
    assert not Lead.objects.exists()


def deep_value(levels: int) -> dict:
    value: dict = {"leaf": 1}
    for level in range(levels - 1):
        value = {"x": value} if level % 2 else {"list": [value]}
    return value


def test_values_stored_before_the_limits_are_cut_back_and_the_admin_shows_the_lead(admin_client):
    """Issue #12: a 924-deep attribute (stored before the limits) broke the admin's lead page (500).
    The repair (migration 0013) replaces the offending keys only; the lead page then renders."""
    import importlib

    from django.apps import apps
    from django.db import connection

    from leads.tests.factories import LeadFactory

    repair = importlib.import_module("leads.migrations.0013_json_within_limits")
    hostile = LeadFactory(attributes={"huge": "y" * (MAX_JSON_BYTES + 10), "plan": "gold"})
    with connection.cursor() as cursor:  # raw: json.dumps cannot nest that deep inside a test's stack
        raw = '{"deep": ' + nested(924) + ', "huge": "' + "y" * (MAX_JSON_BYTES + 10) + '", "plan": "gold"}'
        if connection.vendor == "postgresql":
            cursor.execute("UPDATE leads_lead SET attributes = %s::jsonb WHERE id = %s", [raw, hostile.pk])
        else:
            cursor.execute("UPDATE leads_lead SET attributes = %s WHERE id = %s", [raw, hostile.pk])
    control = LeadFactory(attributes={"plan": "silver", "tags": [{"a": [1, 2]}]})
    event = Activity.objects.create(
        lead=control, type="page_view", occurred_at=control.created_at, properties={"p": deep_value(40), "url": "/x"}
    )

    class Editor:  # RunPython passes a schema editor; the repair only asks it for its connection
        pass

    editor = Editor()
    editor.connection = connection
    repair.trim(apps, editor)

    hostile.refresh_from_db()
    assert hostile.attributes == {
        "deep": f"(removed: nested deeper than {MAX_JSON_DEPTH} levels)",
        "huge": f"(removed: larger than {MAX_JSON_BYTES // 1024} KB)",
        "plan": "gold",
    }
    control.refresh_from_db()
    assert control.attributes == {"plan": "silver", "tags": [{"a": [1, 2]}]}
    event.refresh_from_db()
    assert event.properties == {"p": f"(removed: nested deeper than {MAX_JSON_DEPTH} levels)", "url": "/x"}
    page = admin_client.get(f"/admin/leads/lead/{hostile.pk}/change/")
    assert page.status_code == 200
    assert "removed: nested deeper than 8 levels" in page.content.decode()


def test_the_admin_refuses_attributes_over_the_limits_and_keeps_the_lead_as_it_was(admin_client):
    from leads.tests.factories import LeadFactory

    lead = LeadFactory(attributes={"plan": "gold"})
    page = admin_client.get(f"/admin/leads/lead/{lead.pk}/change/")
    form = page.context["adminform"].form
    data = {name: form[name].value() if form[name].value() is not None else "" for name in form.fields}
    data["attributes"] = json.dumps(deep_value(MAX_JSON_DEPTH + 1))

    answer = admin_client.post(f"/admin/leads/lead/{lead.pk}/change/", data)

    assert answer.status_code == 200  # the form again, with the error
    assert answer.context["adminform"].form.errors["attributes"] == [
        f"Nested too deeply: at most {MAX_JSON_DEPTH} levels of objects and lists."
    ]
    lead.refresh_from_db()
    assert lead.attributes == {"plan": "gold"}
