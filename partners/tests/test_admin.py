"""The partner admin: policy fields, performance figures, feedback read-only."""

from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission

from leads.tests.factories import client_for
from partners.services import feedback_record


@pytest.fixture
def manager_client(sales_manager):
    # The organisations are leads.PartnerOrganization (shown in the partners' admin with their figures).
    sales_manager.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="partners"),
        *Permission.objects.filter(content_type__app_label="leads", content_type__model="partnerorganization"),
    )
    return client_for(sales_manager)


def test_organisations_show_their_figures_and_policy(manager_client, routed, partner_a, partner_org_a):
    won = routed()
    feedback_record(lead=won, user=partner_a, status="won", deal_value=Decimal("2500"), currency="EUR")
    declined = routed(email="declined@initech.example")
    feedback_record(lead=declined, user=partner_a, status="declined", reason="no_capacity")

    listing = manager_client.get("/admin/leads/partnerorganization/")
    page = manager_client.get(f"/admin/leads/partnerorganization/{partner_org_a.pk}/change/")

    assert listing.status_code == 200
    row = listing.content.decode().split("Alpine Resellers", 1)[1].split("</tr>", 1)[0]
    assert "50%" in row and "100%" in row and "€2,500.00" in row  # acceptance, win rate, value
    assert page.status_code == 200
    html = page.content.decode()
    assert "<strong>Accepted / declined</strong>: 1 / 1 — acceptance 50%" in html
    assert "<strong>Won value</strong>: €2,500.00" in html
    for field in ("feedback_deadline_days", "remind_after_days", "remind_every_days", "escalate_after_days"):
        assert f'name="{field}"' in html


def test_the_policy_must_be_in_order(manager_client, partner_org_a):
    response = manager_client.post(
        f"/admin/leads/partnerorganization/{partner_org_a.pk}/change/",
        {
            "name": partner_org_a.name,
            "active": "on",
            "territories": "[]",
            "products": "[]",
            "capacity": "50",
            "feedback_deadline_days": "5",
            "remind_after_days": "7",
            "remind_every_days": "2",
            "escalate_after_days": "14",
        },
    )
    assert response.status_code == 200
    assert "Policy days must be in order" in response.content.decode()
    partner_org_a.refresh_from_db()
    assert partner_org_a.remind_after_days == 3


def test_feedback_is_listed_read_only(manager_client, routed, partner_a):
    feedback, _ = feedback_record(lead=routed(), user=partner_a, status="contacted")

    assert manager_client.get("/admin/partners/partnerfeedback/").status_code == 200
    assert manager_client.get("/admin/partners/partnerfeedback/add/").status_code == 403
    assert (
        manager_client.post(f"/admin/partners/partnerfeedback/{feedback.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )
    assert manager_client.get("/admin/partners/feedbackreminder/").status_code == 200


def test_a_partner_user_cannot_reach_the_admin(partner_a):
    client = client_for(partner_a)
    assert client.get("/admin/leads/partnerorganization/").status_code == 302
