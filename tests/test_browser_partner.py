"""The closed loop in a real browser: partner A accepts a lead in the portal, reports a meeting and
then the deal won; the lead's stage, history and score follow; partner B cannot open it."""

from __future__ import annotations

import os
from decimal import Decimal

import pytest
from playwright.sync_api import Page, expect

from leads.models import Lead, Stage
from routing.tests.factories import mql, partner_rule
from scoring.demo import create_demo_model
from scoring.services import scoring_model_activate
from tests.browser import LAPTOP, PHONE, shot, sign_in

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # see tests/test_browser_dashboard.py

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_partner_accepts_reports_and_wins_and_the_loop_closes(page: Page, live_server, browser, partner_a, partner_b):
    scoring_model_activate(model=create_demo_model())
    partner_rule("Austria → Alpine", [partner_a.partner_organization], "AT", sla_minutes=60 * 24)
    lead = mql(country="AT", company="Wiener Werkstatt", job_title="Owner")  # routed to partner A on commit
    assert lead.partner == partner_a.partner_organization

    sign_in(page, live_server.url, partner_a.username)
    expect(page.get_by_role("heading", name="Our leads")).to_be_visible()
    page.locator("tr", has_text="Wiener Werkstatt").get_by_role("link").click()
    page.get_by_role("button", name="Accept lead").click()
    expect(page.locator(".messages")).to_contain_text("Accepted: the lead is yours to work.")
    expect(page.locator("#stage")).to_have_text("Sales accepted")
    score_before = Lead.objects.get(pk=lead.pk).score

    page.get_by_label("Outcome").select_option("meeting")
    page.get_by_label("Note").fill("Workshop on site, they want a quote")
    page.get_by_role("button", name="Send feedback").click()
    expect(page.locator("#timeline")).to_contain_text("Partner feedback: Meeting")
    lead.refresh_from_db()
    assert round(lead.score - score_before) == 15  # the demo model's "Partner: meeting held"

    page.get_by_label("Outcome").select_option("won")
    page.get_by_label("Deal value").fill("18500")
    page.get_by_role("button", name="Send feedback").click()
    expect(page.locator("#stage")).to_have_text("Won")
    expect(page.locator("#timeline")).to_contain_text("Partner feedback: Won")
    shot(page, "partner-lead-won-laptop")

    lead.refresh_from_db()
    assert (lead.stage, lead.deal_value) == (Stage.WON, Decimal("18500.00"))
    assert list(lead.stage_changes.order_by("at", "pk").values_list("to_stage", flat=True)) == [
        "mql",
        "sal",
        "sql",
        "won",
    ]
    page.get_by_role("link", name="Feedback & figures").click()
    expect(page.locator(".stat", has_text="won value")).to_contain_text("€18,500.00")
    shot(page, "partner-figures-laptop")

    other = browser.new_context(viewport=LAPTOP).new_page()
    sign_in(other, live_server.url, partner_b.username)
    assert other.goto(f"{live_server.url}/partner/leads/{lead.pk}/").status == 404
    expect(other.locator("#main")).not_to_contain_text("Wiener Werkstatt")
    other.goto(f"{live_server.url}/partner/")
    expect(other.locator("#main")).not_to_contain_text("Wiener Werkstatt")
    other.context.close()

    phone = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True).new_page()
    sign_in(phone, live_server.url, partner_a.username)
    shot(phone, "partner-leads-phone")
    phone.goto(f"{live_server.url}/partner/leads/{lead.pk}/")
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(phone, "partner-lead-phone")
    phone.context.close()
