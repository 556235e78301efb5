"""The admin as marketing and sales managers use it, in Chromium at 1366×850 and 390×844: the list
pages and the scoring-rule editor fit a laptop's width, the routing rule form shows only the chosen
target's fields, and a rescoring run's page refreshes itself until the run is done.

Screenshots go to test-artifacts/screenshots/admin-*-{1366,390}-en.png (git-ignored).
"""

from __future__ import annotations

import os
import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Browser, Page, expect

from leads.models import PartnerOrganization, Role, Stage
from leads.tests.factories import LeadFactory, UserFactory
from routing.models import RepProfile, RoutingRule
from routing.tests.factories import make_rule, make_team
from scoring.demo import create_demo_model
from scoring.models import RescoreRun, ScoringModel
from scoring.services import scoring_model_clone
from tests.browser import shot, sign_in

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # see tests/test_browser_dashboard.py

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LAPTOP = {"width": 1366, "height": 850}
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def world(db):
    """What a demo admin holds: a team, a named rep, two partners, a rule of each target, leads in
    a few countries with owners and fractional scores, an active scoring model and a draft of it."""
    UserFactory(username="ada", role=Role.MARKETING, is_staff=True, is_superuser=True)
    team, reps = make_team("Inside sales", size=2)
    rita = UserFactory(username="rita.meyer", role=Role.SALES_REP, first_name="Rita", last_name="Meyer")
    RepProfile.objects.create(user=rita, team=team, territories=["DACH"], languages=["de", "en"])
    alpine = PartnerOrganization.objects.create(name="Alpine Resellers", territories=["AT", "CH"], products=["Cloud"])
    nordic = PartnerOrganization.objects.create(name="Nordic Channel", territories=["SE", "NO", "DK"])
    make_rule(
        "CTOs to Rita",
        priority=10,
        target="rep",
        rep=rita,
        strategy="direct",
        conditions=[("job_title", "contains", "CTO")],
    )
    make_rule(
        "Nordics to partners",
        priority=20,
        target="partners",
        partners=[alpine, nordic],
        strategy="direct",
        conditions=[("country", "in", "SE, NO, DK"), ("company_size", "lte", "3000")],
    )
    make_rule(
        "Big accounts pool",
        priority=30,
        target="pool",
        team=team,
        strategy="pool",
        pool_mode="shark_tank",
        conditions=[("annual_revenue", "between", "1000000, 5000000")],
    )
    make_rule(
        "DACH team",
        priority=40,
        team=team,
        strategy="weighted_round_robin",
        conditions=[("country", "in", "DE, AT, CH"), ("grade", "eq", "A")],
    )
    for i, country in enumerate(["DE", "AT", "CH", "SE", "FR", "DE", "NO", "DK", "GB", "US"] * 2):
        LeadFactory(
            country=country,
            company=f"Company {i} International Holding",
            first_name="Konstantin",
            last_name=f"Wolkenstein-Trostberg {i}",
            stage=[Stage.MQL, Stage.SAL, Stage.MAL][i % 3],
            score=49.25193615976268 + i,
            grade="ABCD"[i % 4],
            owner=[rita, reps[0], None][i % 3],
        )
    active = create_demo_model()
    active.status = ScoringModel.Status.ACTIVE
    active.save(update_fields=["status"])
    draft = scoring_model_clone(source=active, name="B2B default, tuned for DACH")
    return {"draft": draft, "team": team, "rita": rita}


PAGES = {
    "leads": "/admin/leads/lead/",
    "partners": "/admin/leads/partnerorganization/",
    "rules": "/admin/routing/routingrule/",
    "scoring-models": "/admin/scoring/scoringmodel/",
}


def _width(page: Page) -> int:
    """How wide the page is, or the list's table if it is wider than its box (the admin lets the
    table scroll inside its box, hiding the last columns while the page itself looks narrow)."""
    return page.evaluate(
        """() => {
        const results = document.querySelector("#changelist .results");
        const hidden = results ? results.scrollWidth - results.clientWidth : 0;
        return document.documentElement.scrollWidth + Math.max(hidden, 0);
    }"""
    )


def _open(browser: Browser, viewport: dict, base: str) -> Page:
    page = browser.new_context(viewport=viewport).new_page()
    sign_in(page, base, "ada")
    return page


def test_the_admin_lists_and_the_rule_editor_fit_a_laptop_and_show_words(browser: Browser, live_server, world):
    draft = world["draft"]
    pages = {**PAGES, "scoring-editor": f"/admin/scoring/scoringmodel/{draft.pk}/change/"}
    page = _open(browser, LAPTOP, live_server.url)
    widths = {}
    for name, path in pages.items():
        page.goto(live_server.url + path)
        page.wait_for_load_state()
        widths[name] = _width(page)
        shot(page, f"admin-{name}-1366-en")
    assert {name: w for name, w in widths.items() if w > 1366} == {}, widths

    page.goto(live_server.url + PAGES["rules"])
    rows = page.locator("#result_list tbody tr")
    expect(rows.filter(has_text="CTOs to Rita")).to_contain_text("Rep Rita Meyer")
    expect(rows.filter(has_text="CTOs to Rita")).to_contain_text("Job title contains 'CTO'")
    expect(rows.filter(has_text="Nordics")).to_contain_text("Partners Alpine Resellers, Nordic Channel")
    expect(rows.filter(has_text="Nordics")).to_contain_text(
        "Country is one of Sweden, Norway, Denmark and Company size is at most 3,000"
    )
    expect(rows.filter(has_text="Big accounts")).to_contain_text("Pool of Inside sales (shark tank)")
    expect(rows.filter(has_text="DACH team")).to_contain_text("Team Inside sales, weighted round robin")

    page.goto(live_server.url + PAGES["leads"])
    header = page.locator("#result_list thead")
    expect(header).to_contain_text("Score")
    expect(header).to_contain_text("Owner")
    assert page.locator("#result_list th.column-points").bounding_box()["x"] < 1366
    assert page.locator("#result_list th.column-owner").bounding_box()["x"] < 1366
    countries = page.locator("#changelist-filter").get_by_role("link").all_inner_texts()
    assert "Germany" in countries and "Afghanistan" not in countries

    page.goto(live_server.url + pages["scoring-editor"])
    delete = page.locator("#fit_rules-group th", has_text="Delete")
    assert delete.bounding_box()["x"] + delete.bounding_box()["width"] <= 1366
    points = page.locator("#behavior_rules-group td.field-max_occurrences input").first
    assert points.bounding_box()["x"] + points.bounding_box()["width"] <= 1366
    expect(page.locator("#fit_rules-group h2")).to_have_text(re.compile("Fit rules \\(profile → points\\)", re.I))
    page.context.close()

    phone = _open(browser, PHONE, live_server.url)
    for name, path in pages.items():
        phone.goto(live_server.url + path)
        phone.wait_for_load_state()
        shot(phone, f"admin-{name}-390-en")
    phone.context.close()


def test_the_rule_form_shows_only_the_fields_of_the_chosen_target(browser: Browser, live_server, world):
    rule = RoutingRule.objects.get(name="DACH team")
    page = _open(browser, LAPTOP, live_server.url)
    page.goto(f"{live_server.url}/admin/routing/routingrule/{rule.pk}/change/")
    fieldset = {
        name: page.locator("fieldset", has=page.locator("h2", has_text=name))
        for name in ("A rep", "The team", "Partners", "The pool", "How")
    }
    expect(fieldset["The team"]).to_be_visible()
    expect(fieldset["How"]).to_be_visible()
    for hidden in ("A rep", "Partners", "The pool"):
        expect(fieldset[hidden]).to_be_hidden()
    shot(page, "admin-rule-team-1366-en")

    page.get_by_label("Target").select_option("partners")
    expect(fieldset["Partners"]).to_be_visible()
    for hidden in ("A rep", "The team", "The pool"):
        expect(fieldset[hidden]).to_be_hidden()
    page.get_by_label("Target").select_option("pool")
    expect(fieldset["The pool"]).to_be_visible()
    expect(fieldset["How"]).to_be_hidden()
    shot(page, "admin-rule-pool-1366-en")
    assert _width(page) <= 1366

    # Without a partner the form says which field the target needs, in words.
    page.get_by_label("Target").select_option("partners")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".errorlist")).to_contain_text("needs at least one partner")
    shot(page, "admin-rule-partners-error-1366-en")
    rule.refresh_from_db()
    assert rule.target == "team"
    page.context.close()


def test_a_running_rescoring_page_refreshes_itself_until_done(browser: Browser, live_server, world):
    model = ScoringModel.objects.get(status="active")
    run = RescoreRun.objects.create(model=model, kind="activation", as_of=timezone.now(), total=20, done=5)
    page = _open(browser, LAPTOP, live_server.url)
    page.goto(f"{live_server.url}/admin/scoring/rescorerun/{run.pk}/change/")
    status = page.locator("#run-status")
    expect(status).to_contain_text(f"Rescoring with v{model.pk}: 5 of 20 leads (25 %)")
    shot(page, "admin-run-running-1366-en")

    RescoreRun.objects.filter(pk=run.pk).update(
        done=20, status="done", became_mql=3, finished_at=run.started_at + timedelta(seconds=2)
    )

    expect(status).to_contain_text(f"Done: 20 leads rescored with v{model.pk} in 2 s.", timeout=6000)
    expect(status).to_contain_text("3 leads became MQL and went to routing")
    assert status.get_attribute("hx-trigger") is None  # the finished fragment stops the polling
    expect(page.locator("#content")).not_to_contain_text("Running")  # no stale copy of the progress
    shot(page, "admin-run-done-1366-en")
    page.context.close()
