"""The Content-Security-Policy in a real browser: every persona's main pages, the admin and the API
docs load under `script-src 'self'; style-src 'self'` (no inline script, no inline style, no eval)
without a single violation, and they still work (htmx actions, the funnel's period picker, bars sized
from data, Swagger UI).

Chromium reports each blocked thing twice: as a `securitypolicyviolation` event in the page (caught
by an init script and handed to Python through a binding, so none is lost when the page navigates
on) and as a console error ("… violates the following Content Security Policy directive …"). Both
are collected; a control test shows that the watcher does see a violation when one happens.
"""

from __future__ import annotations

import os
import re

import pytest
from playwright.sync_api import BrowserContext, Page, Response, expect

from leads.models import Role, Stage
from leads.tests.factories import UserFactory
from routing.tests.factories import make_rule, make_team, mql, partner_rule
from scoring.demo import create_demo_model
from tests.browser import LAPTOP, directives, shot, sign_in

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # see tests/test_browser_dashboard.py

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WATCH = """
document.addEventListener("securitypolicyviolation", (e) => {
  const where = e.target instanceof Element ? e.target.outerHTML.slice(0, 160) : "";
  const blocked = e.blockedURI || "inline";
  window.cspViolation(`${e.effectiveDirective} blocked ${blocked} (${e.sourceFile}:${e.lineNumber}) ${where}`);
});
"""


class Watch:
    """What the browser refused on one context's pages; `visit` also checks each page came with the
    policy (else "no violation" would prove nothing)."""

    def __init__(self, context: BrowserContext):
        self.violations: list[str] = []
        context.expose_binding(
            "cspViolation", lambda source, text: self.violations.append(f"{source['frame'].url}: {text}")
        )
        context.add_init_script(WATCH)
        context.on("console", self._console)

    def _console(self, message) -> None:
        if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
            self.violations.append(f"console: {message.text}")

    def assert_clean(self) -> None:
        assert self.violations == [], "\n".join(self.violations)

    def visit(self, page: Page, url: str, status: int = 200) -> Response:
        response = page.goto(url)
        assert response is not None
        assert response.status == status, f"{url}: {response.status}"
        policy = directives(response.headers.get("content-security-policy", ""))
        assert policy.get("script-src") == policy.get("style-src") == "'self'", f"{url} came without the policy"
        page.wait_for_load_state("networkidle")
        return response


@pytest.fixture
def watch(context: BrowserContext) -> Watch:
    return Watch(context)


def watched_page(browser) -> tuple[Page, Watch]:
    context = browser.new_context(viewport=LAPTOP)
    return context.new_page(), Watch(context)


@pytest.fixture
def sales(db):
    manager = UserFactory(username="sam", role=Role.SALES_MANAGER, first_name="Sam", last_name="Stone")
    team, reps = make_team(size=2, manager=manager)
    make_rule("Everyone", team=team, sla_minutes=45)
    return manager, team, reps


def test_the_watcher_sees_what_the_policy_blocks(page: Page, live_server, watch):
    """Control: an inline script and an inline style put into a page are refused and reported."""
    watch.visit(page, f"{live_server.url}/accounts/login/")
    page.evaluate("""() => {
        const s = document.createElement("script"); s.textContent = "window.ran = 1"; document.head.append(s);
        document.body.setAttribute("style", "background: red");
    }""")
    page.wait_for_timeout(300)
    assert page.evaluate("window.ran") is None
    assert any("script-src-elem blocked inline" in v for v in watch.violations), watch.violations
    assert any("style-src-attr blocked inline" in v for v in watch.violations), watch.violations


def test_sign_in_and_password_reset_pages(page: Page, live_server, watch, sales):
    watch.visit(page, f"{live_server.url}/accounts/login/")
    expect(page.get_by_role("link", name="Forgot your password?")).to_be_visible()
    watch.visit(page, f"{live_server.url}/accounts/password_reset/")
    sign_in(page, live_server.url, sales[2][0].username)  # the form posts to 'self'
    expect(page.get_by_role("heading", name="My queue")).to_be_visible()
    watch.assert_clean()


def test_a_rep_works_the_queue_and_accepts_a_lead_with_htmx(page: Page, live_server, watch, sales):
    _, _, (rita, _) = sales
    lead = mql(company="Initech", job_title="CFO")
    assert lead.owner == rita

    sign_in(page, live_server.url, rita.username)
    watch.visit(page, f"{live_server.url}/app/")
    expect(page.locator("tr", has_text="Initech").locator(".sla")).to_contain_text("left")  # app.js ticks
    page.locator("#id_sort").select_option(index=1)  # htmx GET on change
    expect(page).to_have_url(re.compile(r"sort="))
    expect(page.locator("#queue")).to_contain_text("Initech")
    shot(page, "csp-queue-laptop")

    watch.visit(page, f"{live_server.url}/app/leads/{lead.pk}/")
    page.get_by_role("button", name="Accept lead").click()  # htmx POST, swaps #lead
    expect(page.locator("#stage")).to_have_text("Sales accepted")
    page.get_by_text("Add a note", exact=True).click()
    page.locator("textarea[name=text]").fill("Keen on a pilot")
    page.get_by_role("button", name="Add note").click()
    expect(page.locator("#timeline")).to_contain_text("Keen on a pilot")
    shot(page, "csp-lead-laptop")

    watch.visit(page, f"{live_server.url}/app/pool/")
    watch.visit(page, f"{live_server.url}/app/availability/")
    watch.visit(page, f"{live_server.url}/app/leads/999999/", status=404)
    expect(page.get_by_role("heading", name="Nothing here")).to_be_visible()
    watch.assert_clean()
    lead.refresh_from_db()
    assert lead.stage == Stage.SAL


def test_the_manager_reads_team_and_funnel_with_bars_drawn(page: Page, live_server, watch, sales):
    manager, _, _ = sales
    mql(company="Handover Inc")

    sign_in(page, live_server.url, manager.username)
    watch.visit(page, f"{live_server.url}/app/team/")
    bar = page.locator(".bar > span[data-width]").first
    expect(bar).to_be_attached()
    assert bar.evaluate("el => el.style.width") == f"{float(bar.get_attribute('data-width')):g}%"
    shot(page, "csp-team-laptop")

    watch.visit(page, f"{live_server.url}/app/team/funnel/")
    days = page.get_by_label("Period")
    other = days.locator("option:not([selected])").first.get_attribute("value")
    days.select_option(other)  # data-autosubmit (was onchange="…")
    expect(page).to_have_url(re.compile(rf"days={other}\b"))
    first = page.locator(".funnel-bar span").first
    assert first.evaluate("el => el.style.width").endswith("%")
    assert first.evaluate("el => el.getBoundingClientRect().width") > 0
    shot(page, "csp-funnel-laptop")
    watch.assert_clean()


def test_a_partner_works_the_portal(page: Page, live_server, watch, partner_a):
    partner_rule("Austria", [partner_a.partner_organization], "AT", sla_minutes=60 * 24)
    lead = mql(country="AT", company="Wiener Werkstatt")
    assert lead.partner == partner_a.partner_organization

    sign_in(page, live_server.url, partner_a.username)
    watch.visit(page, f"{live_server.url}/partner/")
    expect(page.locator("#leads")).to_contain_text("Wiener Werkstatt")
    watch.visit(page, f"{live_server.url}/partner/leads/{lead.pk}/")
    page.get_by_role("button", name="Accept lead").click()  # htmx
    expect(page.locator("#stage")).to_have_text("Sales accepted")
    shot(page, "csp-partner-lead-laptop")
    watch.visit(page, f"{live_server.url}/partner/feedback/")
    watch.assert_clean()


def test_the_admin_every_list_and_add_page_and_our_own_screens(page: Page, live_server, watch, sales):
    from django.contrib import admin
    from django.test import RequestFactory
    from django.urls import reverse

    ada = UserFactory(username="ada", role=Role.MARKETING, is_staff=True, is_superuser=True)
    lead = mql(company="Adminco", attributes={"plan": "pro"})  # routed: assignments and a trace
    model = create_demo_model()
    request = RequestFactory().get("/admin/")
    request.user = ada

    sign_in(page, live_server.url, "ada")
    watch.visit(page, f"{live_server.url}/admin/")
    expect(page.locator("#site-name")).to_contain_text("LeadPortal administration")
    for registered, model_admin in admin.site._registry.items():
        info = registered._meta.app_label, registered._meta.model_name
        watch.visit(page, live_server.url + reverse("admin:{}_{}_changelist".format(*info)))
        if model_admin.has_add_permission(request):
            watch.visit(page, live_server.url + reverse("admin:{}_{}_add".format(*info)))

    watch.visit(page, f"{live_server.url}/admin/leads/lead/{lead.pk}/change/")
    expect(page.locator("input[name=company]")).to_have_value("Adminco")
    expect(page.locator(".trace-steps").first).to_contain_text("Everyone")
    shot(page, "csp-admin-lead-laptop")
    assignment = lead.assignments.first()
    watch.visit(page, f"{live_server.url}/admin/routing/assignment/{assignment.pk}/change/")
    watch.visit(page, f"{live_server.url}/admin/scoring/scoringmodel/{model.pk}/change/")
    expect(page.get_by_role("button", name="Clone into a new draft")).to_have_class("button lp-pill")
    watch.visit(page, f"{live_server.url}/admin/scoring/scoringmodel/{model.pk}/preview/")
    expect(page.get_by_role("heading", name="Score distribution")).to_be_visible()
    bar = page.locator(".lp-bar.lp-draft[data-height]").first
    assert bar.evaluate("el => el.style.height") == f"{float(bar.get_attribute('data-height')):g}%"
    watch.visit(page, f"{live_server.url}/admin/routing/routingrule/simulate/")
    watch.visit(page, f"{live_server.url}/admin/routing/routingrule/replay/")
    expect(page.locator("input[name=n]")).to_have_class("lp-narrow")
    watch.visit(page, f"{live_server.url}/admin/loop/looprun/")
    expect(page.locator("#loop-health")).to_be_visible()
    watch.assert_clean()


def test_the_api_docs_run_swagger_ui_from_files(page: Page, live_server, watch):
    UserFactory(username="ada", role=Role.MARKETING, is_staff=True, is_superuser=True)
    sign_in(page, live_server.url, "ada")
    response = watch.visit(page, f"{live_server.url}/api/docs/")
    assert "<script>" not in response.text() and "<style>" not in response.text()
    expect(page.locator(".swagger-ui .opblock").first).to_be_visible()  # the UI ran and read the schema
    page.locator(".opblock-summary", has_text="/api/v1/leads/").first.click()
    expect(page.locator(".opblock-body").first).to_be_visible()
    shot(page, "csp-api-docs-laptop")
    watch.assert_clean()
