import threading

import pytest
from django.db import connection

from leads.models import Activity, ActivityType, Lead
from leads.services import lead_capture
from leads.tests.factories import LeadFactory


def test_capture_creates_a_normalised_lead_with_derived_domain_and_a_capture_activity(api, integration):
    response = api(integration).post(
        "/api/v1/leads/",
        {"email": "  Jane.Doe@Example.COM ", "first_name": "Jane", "country": "de", "utm_campaign": "spring"},
    )

    assert response.status_code == 201
    lead = Lead.objects.get()
    assert (lead.email, lead.company_domain, lead.country.code, lead.campaign, lead.stage, lead.source) == (
        "jane.doe@example.com",
        "example.com",
        "DE",
        "spring",
        "new",
        "api",
    )
    assert response.json()["id"] == lead.pk
    activity = Activity.objects.get(lead=lead)
    assert activity.type == ActivityType.CAPTURED
    assert activity.properties["created"] is True
    assert activity.created_by == integration


def test_capturing_the_same_email_again_updates_instead_of_duplicating(api, integration):
    client = api(integration)
    client.post("/api/v1/leads/", {"email": "jane@example.com", "first_name": "Jane", "job_title": "CTO"})

    response = client.post(
        "/api/v1/leads/",
        {"email": "JANE@example.com", "first_name": "", "job_title": "CEO", "attributes": {"plan": "pro"}},
    )

    assert response.status_code == 200
    lead = Lead.objects.get()
    # New non-empty values update; empty values never erase what is known.
    assert (lead.first_name, lead.job_title, lead.attributes) == ("Jane", "CEO", {"plan": "pro"})
    assert Activity.objects.filter(lead=lead, type=ActivityType.CAPTURED).count() == 2
    assert Activity.objects.filter(lead=lead).latest("pk").properties == {
        "created": False,
        "fields": ["attributes", "job_title"],
    }


def test_given_company_domain_wins_over_the_email_domain(db):
    lead, _ = lead_capture(data={"email": "x@gmail.com", "company_domain": "acme.example"})
    assert lead.company_domain == "acme.example"


def test_custom_attributes_are_merged_key_by_key(db):
    lead_capture(data={"email": "a@b.example", "attributes": {"plan": "pro", "seats": 5}})
    lead, _ = lead_capture(data={"email": "a@b.example", "attributes": {"seats": 9}})
    assert lead.attributes == {"plan": "pro", "seats": 9}


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "email"),
        ({"email": "not-an-email"}, "email"),
        ({"email": "a@b.example", "country": "XX"}, "country"),
        ({"email": "a@b.example", "language": "klingon"}, "language"),
        ({"email": "a@b.example", "company_size": -3}, "company_size"),
        ({"email": "a@b.example", "company_size": 10**12}, "company_size"),
        ({"email": "a@b.example", "annual_revenue": "lots"}, "annual_revenue"),
        ({"email": "a@b.example", "consent_status": "maybe"}, "consent_status"),
        ({"email": "a@b.example", "attributes": ["not", "an", "object"]}, "attributes"),
        ({"email": "a@b.example", "attributes": {"k": "nul\x00byte"}}, "attributes"),
        ({"email": "a@b.example", "first_name": "nul\x00byte"}, "first_name"),
    ],
)
def test_bad_capture_input_is_a_400_with_field_errors_and_creates_nothing(api, integration, payload, field):
    response = api(integration).post("/api/v1/leads/", payload, format="json")

    assert response.status_code == 400
    assert field in response.json()
    assert Lead.objects.count() == 0
    assert Activity.objects.count() == 0


def test_capture_needs_an_integration_or_marketing_role(api, rep_a, partner_a):
    # A rep may not (403); for a partner user the internal API does not exist (404).
    for user, refused in ((rep_a, 403), (partner_a, 404)):
        response = api(user).post("/api/v1/leads/", {"email": "x@y.example"})
        assert response.status_code == refused
    assert Lead.objects.count() == 0


def test_capture_without_credentials_is_401(api, db):
    response = api(None).post("/api/v1/leads/", {"email": "x@y.example"})
    assert response.status_code == 401
    assert Lead.objects.count() == 0


def test_the_database_refuses_an_unnormalised_email(db):
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        LeadFactory(email="Upper@Case.example")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_simultaneous_captures_of_one_email_make_one_lead():
    """Eight connections capture the same e-mail at the same instant: one lead, eight captures."""
    workers = 8
    barrier = threading.Barrier(workers)
    results, errors = [], []

    def capture(n: int) -> None:
        try:
            barrier.wait(timeout=10)
            lead, created = lead_capture(data={"email": "Race@Example.com", "job_title": f"title {n}"})
            results.append((lead.pk, created))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=capture, args=(n,)) for n in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert Lead.objects.count() == 1
    lead = Lead.objects.get()
    assert {pk for pk, _ in results} == {lead.pk}
    assert sum(created for _, created in results) == 1
    assert Activity.objects.filter(lead=lead, type=ActivityType.CAPTURED).count() == workers


def test_a_capture_cannot_confirm_consent(api, integration):
    client = api(integration)
    client.post("/api/v1/leads/", {"email": "optin@acme.example", "consent_status": "pending"})
    lead = Lead.objects.get()
    assert (lead.stage, lead.consent_status) == ("new", "pending")
    assert lead.consent_at is not None

    response = client.post("/api/v1/leads/", {"email": "optin@acme.example", "consent_status": "confirmed"})

    assert response.status_code == 400 and list(response.json()) == ["consent_status"]
    lead.refresh_from_db()
    assert (lead.stage, lead.consent_status) == ("new", "pending")
    assert not lead.stage_changes.exists()


# --- attribution: first touch and latest touch -------------------------------------------------------

BLANK_LATEST = {
    "latest_source": "",
    "latest_campaign": "",
    "latest_utm_source": "",
    "latest_utm_medium": "",
    "latest_utm_campaign": "",
    "latest_utm_term": "",
    "latest_utm_content": "",
    "latest_touch_at": None,
}


def attribution(lead: Lead) -> dict:
    lead.refresh_from_db()
    fields = ["source", "campaign", "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content"]
    return {name: getattr(lead, name) for name in [*fields, *BLANK_LATEST]}


def test_recapturing_with_only_the_email_keeps_the_source(api, integration):
    client = api(integration)
    client.post("/api/v1/leads/", {"email": "jane@example.com", "source": "paid_search", "utm_source": "google"})
    lead = Lead.objects.get()
    first = {
        "source": "paid_search",
        "campaign": "",
        "utm_source": "google",
        "utm_medium": "",
        "utm_campaign": "",
        "utm_term": "",
        "utm_content": "",
    }
    assert attribution(lead) == {**first, **BLANK_LATEST}
    assert lead.activities.get().properties == {
        "created": True,
        "fields": ["source", "utm_source"],
        "touch": first,
    }

    response = client.post("/api/v1/leads/", {"email": "jane@example.com"})

    assert response.status_code == 200
    assert attribution(lead) == {**first, **BLANK_LATEST}  # no "api" over paid_search, no touch recorded
    assert response.json() == {"id": lead.pk, "created": False, "stage": "new"}  # the answer reads nothing back
    assert lead.activities.latest("pk").properties == {"created": False, "fields": []}


def test_a_later_touch_is_kept_whole_and_never_mixed_with_the_first(api, integration):
    client = api(integration)
    client.post(
        "/api/v1/leads/",
        {"email": "ann@example.com", "utm_source": "linkedin", "utm_medium": "cpc", "utm_campaign": "webinar-q4"},
    )
    lead = Lead.objects.get()
    first = {
        "source": "api",  # the API's default, for a first capture that names no source
        "campaign": "webinar-q4",
        "utm_source": "linkedin",
        "utm_medium": "cpc",
        "utm_campaign": "webinar-q4",
        "utm_term": "",
        "utm_content": "",
    }
    assert attribution(lead) == {**first, **BLANK_LATEST}

    response = client.post(
        "/api/v1/leads/", {"email": "ann@example.com", "utm_source": "newsletter", "utm_content": "footer"}
    )

    lead.refresh_from_db()
    second = {
        "source": "",
        "campaign": "",
        "utm_source": "newsletter",
        "utm_medium": "",
        "utm_campaign": "",
        "utm_term": "",
        "utm_content": "footer",
    }
    assert attribution(lead) == {
        **first,
        **{f"latest_{name}": value for name, value in second.items()},
        "latest_touch_at": lead.latest_touch_at,
    }
    assert lead.latest_touch_at is not None
    captured = lead.activities.latest("pk")
    assert captured.properties["touch"] == second
    assert captured.occurred_at == lead.latest_touch_at
    assert response.json() == {"id": lead.pk, "created": False, "stage": "new"}

    # A third touch replaces the second as a whole: nothing of "newsletter/footer" stays.
    client.post("/api/v1/leads/", {"email": "ann@example.com", "source": "webinar", "campaign": "q1-launch"})
    lead.refresh_from_db()
    assert attribution(lead) == {
        **first,
        "latest_source": "webinar",
        "latest_campaign": "q1-launch",
        "latest_utm_source": "",
        "latest_utm_medium": "",
        "latest_utm_campaign": "",
        "latest_utm_term": "",
        "latest_utm_content": "",
        "latest_touch_at": lead.latest_touch_at,
    }


def test_a_service_capture_without_a_source_leaves_the_source_blank(db):
    lead, _ = lead_capture(data={"email": "quiet@example.com", "job_title": "CFO"})
    assert (lead.source, lead.latest_source) == ("", "")
    assert "touch" not in lead.activities.get().properties
    # Its first real touch is then its first touch, not a latest one.
    lead, _ = lead_capture(data={"email": "quiet@example.com", "source": "webinar"}, source="import")
    assert (lead.source, lead.latest_source, lead.latest_touch_at) == ("webinar", "", None)
