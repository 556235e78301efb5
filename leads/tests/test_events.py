from datetime import timedelta

from django.utils import timezone

from leads.models import Activity, ActivityType, Lead
from leads.tests.factories import LeadFactory


def event(**overrides):
    return {"email": "ev@acme.example", "type": "page_view", "properties": {"url": "/pricing"}, **overrides}


def test_one_event_for_an_unknown_email_captures_the_lead(api, integration):
    response = api(integration).post("/api/v1/events/", event(external_id="e1", source="hubspot"), format="json")

    assert response.status_code == 201
    assert response.json() == {"stored": 1, "duplicates": 0, "leads_created": 1}
    lead = Lead.objects.get()
    assert (lead.email, lead.company_domain, lead.source) == ("ev@acme.example", "acme.example", "hubspot")
    stored = Activity.objects.get(lead=lead)
    assert (stored.type, stored.properties, stored.external_id, stored.created_by) == (
        "page_view",
        {"url": "/pricing"},
        "e1",
        integration,
    )


def test_a_replayed_batch_is_stored_once_and_reported_as_duplicates(api, integration):
    lead = LeadFactory()
    batch = [event(lead=lead.pk, email=None, external_id=f"x{i}", source="mautic") for i in range(3)]
    for item in batch:
        del item["email"]
    client = api(integration)
    assert client.post("/api/v1/events/", batch, format="json").json() == {
        "stored": 3,
        "duplicates": 0,
        "leads_created": 0,
    }

    response = client.post("/api/v1/events/", batch, format="json")

    assert response.status_code == 200
    assert response.json() == {"stored": 0, "duplicates": 3, "leads_created": 0}
    assert Activity.objects.filter(lead=lead).count() == 3


def test_duplicates_inside_one_batch_count_once(api, integration):
    batch = [
        event(external_id="same", source="s"),
        event(external_id="same", source="s"),
        event(external_id="other", source="s"),
    ]

    response = api(integration).post("/api/v1/events/", batch, format="json")

    assert response.json() == {"stored": 2, "duplicates": 1, "leads_created": 1}
    assert Activity.objects.count() == 2


def test_the_same_external_id_from_two_sources_is_two_events(api, integration):
    batch = [event(external_id="1", source="a"), event(external_id="1", source="b")]
    assert api(integration).post("/api/v1/events/", batch, format="json").json()["stored"] == 2


def test_events_without_external_id_are_always_stored(api, integration):
    batch = [event(), event()]
    assert api(integration).post("/api/v1/events/", batch, format="json").json()["stored"] == 2
    assert Activity.objects.filter(external_id__isnull=True).count() == 2


def test_a_bad_item_is_reported_by_index_and_nothing_of_the_batch_is_stored(api, integration):
    batch = [event(external_id="ok1"), event(type="stage_change"), event(external_id="ok2"), event(email="nope")]

    response = api(integration).post("/api/v1/events/", batch, format="json")

    assert response.status_code == 400
    body = response.json()
    assert set(body["items"]) == {"1", "3"}
    assert "type" in body["items"]["1"]
    assert "email" in body["items"]["3"]
    assert "nothing was stored" in body["detail"]
    assert Activity.objects.count() == 0
    assert Lead.objects.count() == 0


def test_an_unknown_lead_id_is_reported_by_index(api, integration):
    lead = LeadFactory()
    batch = [{"lead": lead.pk, "type": "download"}, {"lead": lead.pk + 1000, "type": "download"}]

    response = api(integration).post("/api/v1/events/", batch, format="json")

    assert response.status_code == 400
    assert response.json()["items"] == {"1": {"lead": [f"Lead {lead.pk + 1000} does not exist."]}}
    assert Activity.objects.count() == 0


def test_an_event_needs_exactly_one_of_email_and_lead(api, integration):
    lead = LeadFactory()
    for bad in ({"type": "download"}, {"type": "download", "lead": lead.pk, "email": "a@b.example"}):
        response = api(integration).post("/api/v1/events/", bad, format="json")
        assert response.status_code == 400
        assert response.json()["items"]["0"]["email"] == ["Give exactly one of email and lead."]
    assert Activity.objects.count() == 0


def test_more_than_1000_events_are_refused(api, integration):
    response = api(integration).post("/api/v1/events/", [event()] * 1001, format="json")
    assert response.status_code == 400
    assert Activity.objects.count() == 0


def test_an_empty_batch_is_refused(api, integration):
    assert api(integration).post("/api/v1/events/", [], format="json").status_code == 400


def test_events_from_the_future_are_refused(api, integration):
    later = (timezone.now() + timedelta(days=2)).isoformat()
    response = api(integration).post("/api/v1/events/", event(occurred_at=later), format="json")
    assert response.status_code == 400
    assert response.json()["items"]["0"]["occurred_at"] == ["occurred_at lies in the future."]


def test_occurred_at_is_kept_and_defaults_to_now(api, integration):
    then = timezone.now() - timedelta(days=3)
    api(integration).post("/api/v1/events/", [event(occurred_at=then.isoformat()), event()], format="json")
    times = sorted(Activity.objects.values_list("occurred_at", flat=True))
    assert times[0] == then
    assert timezone.now() - times[1] < timedelta(minutes=1)


def test_reps_and_partners_may_not_send_events(api, rep_a, partner_a):
    # A rep may not (403); for a partner user the internal API does not exist (404).
    for user, refused in ((rep_a, 403), (partner_a, 404)):
        assert api(user).post("/api/v1/events/", event(), format="json").status_code == refused
    assert Activity.objects.count() == 0


def test_a_thousand_events_take_a_few_queries_not_one_per_event(api, integration, django_assert_max_num_queries):
    LeadFactory(email="known@acme.example")
    batch = [event(email=f"u{i % 50}@acme.example", external_id=f"k{i}", source="bulk") for i in range(999)]
    batch += [event(email="known@acme.example")]
    client = api(integration)
    # PostgreSQL: one INSERT per table; SQLite splits a bulk insert into chunks of its variable limit.
    # Plus the leads' lock and their score revision, the pending rows and the erased-address check, each once;
    # and, in a process that has not read them yet, the webhook subscriptions (webhooks.caches).
    with django_assert_max_num_queries(24):
        response = client.post("/api/v1/events/", batch, format="json")
    assert response.json() == {"stored": 1000, "duplicates": 0, "leads_created": 50}
    assert Activity.objects.filter(type=ActivityType.PAGE_VIEW).count() == 1000
