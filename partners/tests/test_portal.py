"""The partner portal's pages: only my organisation's leads, accept / decline / feedback through the
same service as the API, errors in words, nothing internal shown, constant query counts."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from leads.models import ActivityType, Stage
from leads.services import activity_record
from leads.tests.factories import client_for
from partners.models import PartnerFeedback

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


def test_the_list_shows_my_organisations_leads_only(routed, partner_a, partner_b):
    mine = routed(company="Alpine Lead GmbH")
    page = client_for(partner_a).get("/partner/")
    assert [lead.pk for lead in page.context["page"].object_list] == [mine.pk]
    assert b"Alpine Lead GmbH" in page.content and b'<span class="badge new">New</span>' in page.content
    assert b"Alpine Lead GmbH" not in client_for(partner_b).get("/partner/").content
    assert client_for(partner_b).get(f"/partner/leads/{mine.pk}/").status_code == 404


def test_accepting_in_the_portal_makes_it_sal(routed, partner_a):
    lead = routed()
    response = client_for(partner_a).post(f"/partner/leads/{lead.pk}/accept/", **HTMX)
    assert b"Accepted: the lead is yours to work." in response.content and b"Report back" in response.content
    lead.refresh_from_db()
    assert lead.stage == Stage.SAL
    assert list(PartnerFeedback.objects.values_list("status", "user")) == [("accepted", partner_a.pk)]


def test_a_decline_needs_a_reason_then_the_lead_goes_elsewhere(routed, partner_a, partner_org_a, partner_org_b):
    lead = routed()
    client = client_for(partner_a)
    refused = client.post(f"/partner/leads/{lead.pk}/decline/", {"reason": ""}, **HTMX)
    assert refused.status_code == 422 and b"This field is required." in refused.content
    assert not PartnerFeedback.objects.exists()

    response = client.post(f"/partner/leads/{lead.pk}/decline/", {"reason": "no_capacity"}, **HTMX)
    assert (response.status_code, response["HX-Redirect"]) == (204, "/partner/")
    lead.refresh_from_db()
    assert lead.partner == partner_org_b  # the next rule; never back to A
    assert client.get(f"/partner/leads/{lead.pk}/").status_code == 404


def test_won_needs_its_value_and_then_closes_the_deal(routed, partner_a):
    lead = routed()
    client = client_for(partner_a)
    client.post(f"/partner/leads/{lead.pk}/accept/")
    refused = client.post(f"/partner/leads/{lead.pk}/feedback/", {"status": "won", "currency": "EUR"}, **HTMX)
    assert refused.status_code == 422 and b"A won deal needs its value (greater than 0)." in refused.content
    assert PartnerFeedback.objects.filter(status="won").count() == 0

    client.post(f"/partner/leads/{lead.pk}/feedback/", {"status": "won", "deal_value": "18500", "currency": "EUR"})
    lead.refresh_from_db()
    assert (lead.stage, lead.deal_value, lead.deal_currency) == (Stage.WON, Decimal("18500.00"), "EUR")


def test_lost_needs_a_reason_from_the_list(routed, partner_a):
    lead = routed()
    client = client_for(partner_a)
    client.post(f"/partner/leads/{lead.pk}/accept/")
    refused = client.post(f"/partner/leads/{lead.pk}/feedback/", {"status": "lost", "currency": "EUR"}, **HTMX)
    assert refused.status_code == 422 and b"A lost lead needs a reason" in refused.content
    client.post(f"/partner/leads/{lead.pk}/feedback/", {"status": "lost", "reason": "price", "currency": "EUR"})
    lead.refresh_from_db()
    assert (lead.stage, lead.lost_reason) == (Stage.LOST, "price")


def test_internal_history_stays_internal(routed, partner_a, rep_a):
    lead = routed()
    activity_record(lead=lead, type=ActivityType.NOTE, properties={"text": "Our margin is thin here"}, actor=rep_a)
    activity_record(lead=lead, type=ActivityType.CALL, properties={"summary": "Internal call"}, actor=rep_a)
    activity_record(lead=lead, type=ActivityType.PAGE_VIEW, properties={"url": "/pricing"})
    html = client_for(partner_a).get(f"/partner/leads/{lead.pk}/").content.decode()
    assert "url: /pricing" in html
    assert "Our margin is thin here" not in html and "Internal call" not in html
    assert "Assigned to" not in html  # routing decisions are the company's


def test_history_page_lists_feedback_with_the_figures(routed, partner_a, partner_org_a):
    lead = routed(company="Figures AG")
    client = client_for(partner_a)
    client.post(f"/partner/leads/{lead.pk}/accept/")
    client.post(f"/partner/leads/{lead.pk}/feedback/", {"status": "meeting", "note": "On site", "currency": "EUR"})
    page = client.get("/partner/feedback/")
    assert [f.status for f in page.context["page"].object_list] == ["meeting", "accepted"]
    figures = page.context["figures"]
    assert (figures.handovers, figures.accepted, figures.acceptance_rate) == (1, 1, 1.0)
    assert b"Figures AG" in page.content and b"100%" in page.content


def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def test_portal_queries_do_not_grow_with_leads_or_history(routed, partner_a):
    client = client_for(partner_a)
    first = routed()
    few_list, few_lead = _queries(client, "/partner/"), _queries(client, f"/partner/leads/{first.pk}/")
    for _ in range(5):
        routed()
    for n in range(10):
        activity_record(lead=first, type=ActivityType.PAGE_VIEW, properties={"url": f"/p{n}"})
    assert _queries(client, "/partner/") == few_list <= 15
    assert _queries(client, f"/partner/leads/{first.pk}/") == few_lead <= 15
