"""The rep dashboard in a real browser: Playwright driving Chromium against the live test server.

Screenshots of the main pages (laptop and phone) go to test-artifacts/screenshots/ (git-ignored).
"""

from __future__ import annotations

import io
import os
import re
from decimal import Decimal

import pytest
from playwright.sync_api import Page, expect

from leads.models import Lead, Stage
from leads.tests.factories import UserFactory
from routing.models import Assignment, RepProfile
from routing.tests.factories import make_rule, make_team, mql
from tests.browser import LAPTOP, PHONE, shot, sign_in

# Playwright's sync API keeps an event loop running in this thread (for the whole session); the ORM
# calls of these tests are still plain synchronous calls.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def sales(db):
    manager = UserFactory(username="sam", role="sales_manager", first_name="Sam", last_name="Stone")
    team, reps = make_team(size=2, manager=manager)
    return manager, team, reps


def test_a_rep_accepts_qualifies_and_wins_and_the_other_rep_cannot_open_it(page: Page, live_server, sales, browser):
    _, team, (rita, rob) = sales
    make_rule("Everyone", team=team, sla_minutes=45)
    lead = mql(company="Initech", first_name="Ina", last_name="Tech", job_title="CFO")
    assert lead.owner == rita

    sign_in(page, live_server.url, rita.username)
    expect(page.get_by_role("heading", name="My queue")).to_be_visible()
    row = page.locator("tr", has_text="Initech")
    expect(row.locator(".badge.new")).to_have_text("New")
    expect(row.locator(".sla")).to_have_text(re.compile(r"^4[45] min \d\d s left$"))
    shot(page, "queue-laptop")

    row.get_by_role("link", name="Initech").click()
    expect(page.get_by_text("New lead for you")).to_be_visible()
    shot(page, "lead-new-laptop")
    page.get_by_role("button", name="Accept lead").click()
    expect(page.get_by_text("Accepted: the lead is yours (SAL).")).to_be_visible()
    expect(page.locator("#stage")).to_have_text("Sales accepted")

    for criterion, note in [
        ("budget", "80k approved"),
        ("authority", "CFO signs"),
        ("need", "Manual scoring"),
        ("timing", "Q1"),
    ]:
        page.locator(f"input[name={criterion}]").check()
        page.locator(f"input[name={criterion}_note]").fill(note)
    page.get_by_role("button", name="Save BANT").click()
    expect(page.get_by_text("BANT complete: the lead is sales-qualified.")).to_be_visible()
    expect(page.locator("#stage")).to_have_text("Sales qualified")

    page.get_by_text("Close won", exact=True).first.click()  # opens the form
    page.get_by_label("Deal value").fill("48000")
    page.get_by_role("button", name="Close won").click()
    expect(page.locator("#stage")).to_have_text("Won")
    expect(page.get_by_text("Closed won: €48,000.00.")).to_be_visible()
    shot(page, "lead-won-laptop")

    lead.refresh_from_db()
    assert (lead.stage, lead.deal_value, lead.deal_currency) == (Stage.WON, Decimal("48000.00"), "EUR")
    assert list(lead.stage_changes.order_by("at", "pk").values_list("to_stage", flat=True)) == [
        "mql",
        "sal",
        "sql",
        "won",
    ]

    other = browser.new_context(viewport=LAPTOP).new_page()
    sign_in(other, live_server.url, rob.username)
    response = other.goto(f"{live_server.url}/app/leads/{lead.pk}/")
    assert response.status == 404
    expect(other.locator("body")).not_to_contain_text("Initech")
    other.context.close()


def test_a_rep_notes_logs_a_call_and_rejects_with_a_reason(page: Page, live_server, sales):
    _, team, (rita, _) = sales
    make_rule("Everyone", team=team, on_reject="to_marketing")
    keep = mql(company="Keepers Ltd")
    RepProfile.objects.filter(user=sales[2][1]).update(active=False)  # so rita gets both
    drop = mql(company="Dropco")
    assert keep.owner == drop.owner == rita

    sign_in(page, live_server.url, rita.username)
    page.get_by_role("link", name="Keepers Ltd").click()
    page.get_by_text("Add a note", exact=True).click()
    page.get_by_label("Note").fill("Spoke to their CTO, keen on a pilot")
    page.get_by_role("button", name="Add note").click()
    expect(page.locator("#timeline")).to_contain_text("Spoke to their CTO, keen on a pilot")
    page.get_by_text("Log a call or meeting", exact=True).click()
    page.get_by_label("Kind").select_option("meeting")
    page.get_by_label("Summary").fill("Demo booked for Tuesday")
    page.get_by_role("button", name="Log it").click()
    expect(page.get_by_text("Meeting logged.")).to_be_visible()
    expect(page.locator("#timeline")).to_contain_text("Demo booked for Tuesday")

    page.goto(f"{live_server.url}/app/leads/{drop.pk}/")
    page.get_by_placeholder(re.compile("Why?")).fill("Student project, no budget")
    page.get_by_role("button", name="Reject").click()
    expect(page).to_have_url(f"{live_server.url}/app/")
    expect(page.get_by_text("is no longer in your queue")).to_be_visible()
    expect(page.locator("#queue")).not_to_contain_text("Dropco")

    drop.refresh_from_db()
    assert (drop.stage, drop.owner) == (Stage.MAL, None)
    assert drop.stage_changes.get(to_stage=Stage.MAL).reason == "Student project, no budget"


def test_a_rep_claims_from_the_pool_and_goes_away(page: Page, live_server, sales):
    _, team, (rita, _) = sales
    make_rule("Pool", team=team, target="pool", strategy="pool", pool_mode="cherry_pick")
    lead = mql(company="Poolside AG", job_title="Head of Sales")

    sign_in(page, live_server.url, rita.username)
    page.get_by_role("link", name="Pool").click()
    expect(page.locator("#pool")).to_contain_text("Poolside AG")
    shot(page, "pool-laptop")
    page.locator("tr", has_text="Poolside AG").get_by_role("button", name="Claim").click()
    expect(page.locator(".messages")).to_contain_text("Claimed")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Lena")
    lead.refresh_from_db()
    assert lead.owner == rita

    page.get_by_role("link", name="Availability").click()
    page.get_by_label("Away until").fill("2031-05-04T09:30")
    page.get_by_role("button", name="Set away").click()
    expect(page.locator(".messages")).to_have_text("You are away until 05/04/2031 9:30 a.m. UTC: routing skips you.")
    shot(page, "availability-laptop")
    assert RepProfile.objects.get(user=rita).away_until.year == 2031
    page.get_by_role("button", name=re.compile("I'm back")).click()
    expect(page.locator(".messages")).to_have_text("You are available: new leads will reach you.")
    assert RepProfile.objects.get(user=rita).away_until is None


def test_the_manager_sees_the_team_reassigns_and_reads_the_funnel(page: Page, live_server, sales):
    manager, team, (rita, rob) = sales
    make_rule("Everyone", team=team)
    lead = mql(company="Handover Inc")
    assert lead.owner == rita

    sign_in(page, live_server.url, manager.username)
    page.get_by_role("link", name="Team").click()
    expect(page.get_by_role("heading", name="Load vs capacity")).to_be_visible()
    row = page.locator("#main section", has_text="Open leads of the team").locator("tr", has_text="Handover Inc")
    row.get_by_label("Reassign to").select_option(label=rob.get_full_name())
    row.get_by_role("button", name="Go").click()
    expect(page.get_by_text(f"reassigned to {rob.get_full_name()}")).to_be_visible()
    shot(page, "team-laptop")
    lead.refresh_from_db()
    assert lead.owner == rob
    assert Assignment.objects.filter(lead=lead, status="reassigned").count() == 1

    page.get_by_role("link", name="Funnel", exact=True).click()
    expect(page.locator(".funnel-row:not(.funnel-head)").first).to_contain_text("Handed over")
    shot(page, "funnel-laptop")


@pytest.mark.parametrize(("persona", "home"), [("partner_a", "/partner/"), ("integration", "/api/docs/")])
def test_partners_and_integrations_are_refused(page: Page, live_server, request, persona, home):
    """/app/ takes them to their own home; the rep's pages are 404 for them."""
    user = request.getfixturevalue(persona)
    sign_in(page, live_server.url, user.username)
    page.goto(f"{live_server.url}/app/")
    assert page.url == live_server.url + home
    assert page.goto(f"{live_server.url}/app/queue/").status == 404
    assert page.goto(f"{live_server.url}/app/pool/").status == 404


def test_pages_on_a_phone(browser, live_server, sales):
    manager, team, (rita, _) = sales
    make_rule("Everyone", team=team)
    lead = mql(company="Pocket GmbH", job_title="COO")
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    sign_in(page, live_server.url, rita.username)
    expect(page.locator("tr", has_text="Pocket GmbH")).to_be_visible()
    shot(page, "queue-phone")
    page.goto(f"{live_server.url}/app/leads/{lead.pk}/")
    expect(page.get_by_role("button", name="Accept lead")).to_be_visible()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the lead page scrolls sideways on a phone ({width}px)"
    shot(page, "lead-phone")
    context.close()
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    sign_in(page, live_server.url, manager.username)
    page.goto(f"{live_server.url}/app/team/")
    shot(page, "team-phone")
    page.goto(f"{live_server.url}/accounts/login/")
    context.close()


def test_the_demo_personas_work_their_pages(page: Page, live_server, browser):
    """`seed_demo` as `make run` loads it: rep1 accepts a new MQL, the sales manager reads the team
    and the funnel, partner-a reports on a lead in the portal (password `leadportal`)."""
    from django.core.management import call_command

    call_command("seed_demo", stdout=io.StringIO())
    rep = Lead.objects.filter(owner__username="rep1", stage=Stage.MQL, respond_by__isnull=False).first()
    assert rep is not None

    sign_in(page, live_server.url, "rep1", "leadportal")
    page.goto(f"{live_server.url}/app/leads/{rep.pk}/")
    page.get_by_role("button", name="Accept lead").click()
    expect(page.locator("#stage")).to_have_text("Sales accepted")
    page.get_by_role("link", name="Pool").click()
    expect(page.get_by_role("heading", name="Pool")).to_be_visible()

    manager = browser.new_context(viewport=LAPTOP).new_page()
    sign_in(manager, live_server.url, "salesmanager", "leadportal")
    manager.get_by_role("link", name="Team").click()
    expect(manager.locator(".stat", has_text="open leads")).not_to_contain_text(re.compile(r"^\s*0\s"))
    manager.get_by_role("link", name="Funnel", exact=True).click()
    expect(manager.locator(".funnel-row:not(.funnel-head)").first).to_contain_text("Handed over")
    manager.context.close()

    partner = browser.new_context(viewport=LAPTOP).new_page()
    sign_in(partner, live_server.url, "partner-a", "leadportal")
    expect(partner.get_by_role("heading", name="Our leads")).to_be_visible()
    expect(partner.locator("#leads tbody tr").first).to_be_visible()
    partner.get_by_role("link", name="Feedback & figures").click()
    expect(partner.locator(".stat", has_text="leads received")).to_be_visible()
    partner.context.close()
    rep.refresh_from_db()
    assert rep.stage == Stage.SAL
