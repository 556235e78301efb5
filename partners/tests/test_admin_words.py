"""The partner organisations' admin without JSON: territories typed "SE, NO, DK" and shown by name,
products as a list, policy days with labels that say what they count; and the lead list's columns
and country filter."""

from __future__ import annotations

import pytest

from leads.models import PartnerOrganization
from leads.tests.factories import LeadFactory, client_for


@pytest.fixture
def admin_client(marketing):
    return client_for(marketing, apps=["leads", "partners"])


def _post(**changes) -> dict:
    data = {
        "name": "Nordic Channel",
        "active": "on",
        "territories": "",
        "products": "",
        "capacity": 50,
        "feedback_deadline_days": 5,
        "remind_after_days": 3,
        "remind_every_days": 2,
        "escalate_after_days": 14,
        "channel_manager": "",
    }
    return {**data, **changes}


def test_territories_typed_as_codes_are_saved_as_the_json_list(admin_client):
    response = admin_client.post(
        "/admin/leads/partnerorganization/add/", _post(territories="SE, NO, DK", products="Cloud, Analytics")
    )

    assert response.status_code == 302
    org = PartnerOrganization.objects.get(name="Nordic Channel")
    assert org.territories == ["SE", "NO", "DK"]
    assert org.products == ["Cloud", "Analytics"]
    page = admin_client.get(f"/admin/leads/partnerorganization/{org.pk}/change/").content.decode()
    assert 'value="SE, NO, DK"' in page
    assert "Sweden, Norway, Denmark" in page
    assert "Enter a valid JSON" not in page
    assert '<textarea name="territories"' not in page and '<textarea name="products"' not in page
    assert "Feedback deadline (days)" in page and "Take back after (days)" in page


def test_a_bad_country_code_is_refused_in_words_and_nothing_is_saved(admin_client):
    response = admin_client.post("/admin/leads/partnerorganization/add/", _post(territories="SE, XX"))

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["territories"] == [
        "“XX” is not a country code or a region (DACH, NORDICS, BENELUX, UKI, NA, SOUTH)."
        " Use two-letter codes such as DE for Germany, SE for Sweden."
    ]
    assert not PartnerOrganization.objects.filter(name="Nordic Channel").exists()


def test_the_policy_constraint_speaks_words(admin_client):
    response = admin_client.post("/admin/leads/partnerorganization/add/", _post(escalate_after_days=3))
    page = response.content.decode()
    assert "Policy days must be in order" in page and "partner_policy_in_order" not in page
    assert not PartnerOrganization.objects.exists()


def test_the_partner_list_shows_territories_by_name_and_the_performance_columns(admin_client):
    PartnerOrganization.objects.create(name="Nordic Channel", territories=["SE", "NO", "DK", "FI"])
    page = admin_client.get("/admin/leads/partnerorganization/").content.decode()
    assert '<td class="field-territory_list">Sweden, Norway, Denmark +1</td>' in page
    for column in ("Acceptance", "First reply (median)", "Feedback on time", "Won (rate, value)"):
        assert column in page
    assert "column-feedback_deadline_days" not in page  # a detail: on the change page


def test_the_lead_list_shows_score_and_owner_and_filters_by_the_countries_that_occur(admin_client, rep_a):
    LeadFactory(country="DE", score=49.25193615976268, owner=rep_a)
    LeadFactory(country="SE")
    page = admin_client.get("/admin/leads/lead/").content.decode()

    assert '<td class="field-points">49</td>' in page
    assert "49.25" not in page
    assert "column-owner" in page and ">rita<" in page
    assert "?country=DE" in page and ">Germany</a>" in page and ">Sweden</a>" in page
    assert "Afghanistan" not in page and "?country=FR" not in page
    filtered = admin_client.get("/admin/leads/lead/", {"country": "SE"}).content.decode()
    assert "1 lead" in filtered or "field-points" in filtered
    assert filtered.count('class="field-points"') == 1
