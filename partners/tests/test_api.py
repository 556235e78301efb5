"""The partner API: scoped to the partner user's organisation, feedback with 201/200/400/404/409."""

from datetime import timedelta

import pytest
from django.utils import timezone

from leads.models import Activity, ActivityType, Lead, Stage
from partners.models import PartnerFeedback

LIST = "/api/v1/partner/leads/"


def detail(lead):
    return f"/api/v1/partner/leads/{lead.pk}/"


def feedback_url(lead):
    return f"/api/v1/partner/leads/{lead.pk}/feedback/"


def test_a_partner_lists_only_its_organisations_leads_with_what_it_may_see(api, routed, partner_a, partner_b):
    mine = routed(company="Initech", attributes={"internal": "do not show"})
    routed(email="someone@else.example", country="SE")  # → partner B

    response = api(partner_a).get(LIST)

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 1
    [row] = body["results"]
    assert row["id"] == mine.pk and row["company"] == "Initech" and row["stage"] == "mql"
    assert row["feedback_due_at"] == (mine.handed_over_at + timedelta(days=5)).isoformat().replace("+00:00", "Z")
    assert row["feedback"] == []
    for internal in ("attributes", "owner", "campaign", "utm_source", "marketing_suppressed", "fit_score"):
        assert internal not in row


def test_updated_since_returns_only_leads_changed_since(api, routed, partner_a):
    old = routed()
    new = routed(email="new@initech.example")
    Lead.objects.filter(pk=old.pk).update(updated_at=timezone.now() - timedelta(days=2))
    since = (timezone.now() - timedelta(days=1)).isoformat()

    response = api(partner_a).get(LIST, {"updated_since": since})

    assert [r["id"] for r in response.json()["results"]] == [new.pk]


def test_feedback_due_filter(api, routed, partner_a):
    waiting = routed()
    reported = routed(email="reported@initech.example")
    api(partner_a).post(feedback_url(reported), {"status": "contacted"})

    due = api(partner_a).get(LIST, {"feedback_due": "true"}).json()["results"]
    done = api(partner_a).get(LIST, {"feedback_due": "false"}).json()["results"]

    assert [r["id"] for r in due] == [waiting.pk]
    assert [(r["id"], r["feedback_due_at"]) for r in done] == [(reported.pk, None)]


def test_feedback_created_then_replayed_with_the_same_external_id(api, routed, partner_a):
    lead = routed()
    payload = {"status": "won", "deal_value": "4200.50", "currency": "eur", "external_id": "crm-1"}

    first = api(partner_a).post(feedback_url(lead), payload)
    again = api(partner_a).post(feedback_url(lead), payload)

    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json() == again.json()
    assert first.json()["status"] == "won" and first.json()["deal_value"] == "4200.50"
    assert first.json()["currency"] == "EUR" and first.json()["user"] == "pia"
    assert PartnerFeedback.objects.count() == 1
    assert Activity.objects.filter(lead=lead, type=ActivityType.PARTNER_FEEDBACK).count() == 1
    lead.refresh_from_db()
    assert lead.stage == Stage.WON
    shown = api(partner_a).get(detail(lead)).json()
    assert [f["id"] for f in shown["feedback"]] == [first.json()["id"]]
    assert shown["feedback_due_at"] is None


def test_a_replayed_decline_is_200_although_the_lead_has_moved_on(api, routed, partner_a):
    lead = routed()
    payload = {"status": "declined", "reason": "no_capacity", "external_id": "d-1"}

    first = api(partner_a).post(feedback_url(lead), payload)
    again = api(partner_a).post(feedback_url(lead), payload)

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert api(partner_a).get(detail(lead)).status_code == 404  # rerouted to partner B
    assert api(partner_a).post(feedback_url(lead), {**payload, "external_id": "d-2"}).status_code == 404


@pytest.mark.parametrize(
    ("payload", "errors"),
    [
        ({"status": "won"}, {"deal_value": ["A won deal needs its value (greater than 0)."]}),
        ({"status": "won", "deal_value": "-3"}, {"deal_value": ["A won deal needs its value (greater than 0)."]}),
        ({"status": "contacted", "deal_value": "10"}, {"deal_value": ["Only a won deal has a value."]}),
        ({"status": "maybe"}, {"status": ['"maybe" is not a valid choice.']}),
        ({"status": "lost", "reason": "whatever"}, {"reason": ['"whatever" is not a valid choice.']}),
        (
            {"status": "declined"},
            {
                "reason": [
                    "A declined lead needs a reason, one of: no_capacity, outside_territory, not_our_product, "
                    "existing_relationship, no_need, other."
                ]
            },
        ),
    ],
)
def test_bad_combinations_are_400_with_field_errors_and_change_nothing(api, routed, partner_a, payload, errors):
    lead = routed()

    response = api(partner_a).post(feedback_url(lead), payload)

    assert (response.status_code, response.json()) == (400, errors)
    lead.refresh_from_db()
    assert lead.stage == Stage.MQL
    assert PartnerFeedback.objects.count() == 0
    assert not Activity.objects.filter(lead=lead, type=ActivityType.PARTNER_FEEDBACK).exists()


def test_a_refused_move_is_409(api, routed, partner_a):
    lead = routed()
    api(partner_a).post(feedback_url(lead), {"status": "accepted"})

    response = api(partner_a).post(feedback_url(lead), {"status": "declined", "reason": "no_capacity"})

    assert response.status_code == 409
    assert response.json()["code"] == "already_accepted"
    assert PartnerFeedback.objects.filter(lead=lead).count() == 1


def test_another_organisations_lead_is_404_on_every_endpoint_and_unchanged(api, routed, partner_b):
    lead = routed()  # partner A's
    client = api(partner_b)

    assert client.get(detail(lead)).status_code == 404
    assert client.post(feedback_url(lead), {"status": "accepted"}).status_code == 404
    assert client.post(feedback_url(lead), {"status": "accepted", "external_id": "x"}).status_code == 404
    assert client.get(LIST).json()["count"] == 0
    lead.refresh_from_db()
    assert (lead.stage, PartnerFeedback.objects.count()) == (Stage.MQL, 0)


@pytest.mark.parametrize("persona", ["marketing", "sales_manager", "rep_a", "integration"])
def test_users_who_are_not_partners_get_403(api, routed, persona, request):
    lead = routed()
    client = api(request.getfixturevalue(persona))

    assert client.get(LIST).status_code == 403
    assert client.get(detail(lead)).status_code == 403
    assert client.post(feedback_url(lead), {"status": "accepted"}).status_code == 403
    assert PartnerFeedback.objects.count() == 0


def test_anonymous_gets_401(api, routed):
    lead = routed()
    assert api(None).get(LIST).status_code == 401
    assert api(None).post(feedback_url(lead), {"status": "accepted"}).status_code == 401
