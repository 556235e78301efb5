"""Find and act in a real browser (Playwright on Debian's Chromium, the live test server): a rep
searches and sorts the queue, a manager bulk-reassigns from the team page, the notification badge
counts and clears; screenshots of the queue, team page, pool, marketing's list and the
notifications at 1366×850 and 390×844 in test-artifacts/screenshots/."""

from __future__ import annotations

import os
import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from leads.models import Stage
from leads.tests.factories import LeadFactory, UserFactory
from routing.models import Assignment
from routing.tests.factories import make_rule, make_team, mql
from tests.browser import PHONE, shot, sign_in

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
LAPTOP = {"width": 1366, "height": 850}


@pytest.fixture
def sales(db):
    manager = UserFactory(username="sam", role="sales_manager", first_name="Sam", last_name="Stone")
    team, reps = make_team(size=2, manager=manager)
    return manager, team, reps


def queue_companies(page: Page) -> list[str]:
    return page.locator("#queue tbody .lead-name").all_inner_texts()


def test_a_rep_searches_and_sorts_the_queue_and_sees_the_badge(browser, live_server, sales):
    _, team, (rita, _) = sales
    make_rule("Everyone", team=team, strategy="round_robin")
    now = timezone.now()
    for i, (company, score) in enumerate([("Meridian Foods", 30), ("Initech", 80), ("Meridian Labs", 60)]):
        LeadFactory(
            owner=rita,
            stage=Stage.SAL,
            company=company,
            first_name=f"P{i}",
            score=score,
            handed_over_at=now - timedelta(hours=i),
        )
    page = browser.new_context(viewport=LAPTOP).new_page()
    sign_in(page, live_server.url, rita.username)
    expect(page.get_by_role("heading", name="My queue")).to_be_visible()
    expect(page.locator("#queue-count")).to_have_text("3 leads")

    page.locator("#id_q").fill("meridian")  # htmx: the list and the count follow as one types
    expect(page.locator("#queue-count")).to_have_text("2 leads matching “meridian”")
    expect(page).to_have_url(re.compile(r"q=meridian"))
    assert queue_companies(page) == ["Meridian Foods", "Meridian Labs"]

    page.locator("th a.sort", has_text="Score").click()  # highest first, then the other way
    expect(page).to_have_url(re.compile(r"sort=-score"))
    expect(page.locator("th[aria-sort=descending]")).to_contain_text("Score")
    assert queue_companies(page) == ["Meridian Labs", "Meridian Foods"]
    page.locator("th a.sort", has_text="Score").click()
    expect(page.locator("th[aria-sort=ascending]")).to_contain_text("Score")
    assert queue_companies(page) == ["Meridian Foods", "Meridian Labs"]
    expect(page.locator("#id_q")).to_have_value("meridian")  # the search is kept
    page.reload()  # in the URL: the same list after a reload
    assert queue_companies(page) == ["Meridian Foods", "Meridian Labs"]
    expect(page.locator("#badge .count")).to_have_count(0)

    lead = mql(company="Badge GmbH", first_name="Bea")  # round robin: one of the two reps
    if lead.owner_id != rita.pk:
        lead = mql(company="Badge GmbH", first_name="Bea")
    assert lead.owner_id == rita.pk
    page.goto(f"{live_server.url}/app/?q=meridian&sort=score")
    expect(page.locator("#badge .count")).to_have_text("1")
    shot(page, "find-queue-laptop")
    page.locator("a.bell").click()
    expect(page.get_by_role("heading", name="Notifications")).to_be_visible()
    expect(page.locator(".notes-list li.unread")).to_contain_text("New lead for you: Bea")
    shot(page, "find-notifications-laptop")
    page.reload()
    expect(page.locator("#badge .count")).to_have_count(0)
    expect(page.locator(".notes-list li.unread")).to_have_count(0)


def test_a_manager_bulk_reassigns_from_the_team_page(browser, live_server, sales):
    manager, team, (rita, rob) = sales
    make_rule("Everyone", team=team, strategy="round_robin")
    leads = [mql(company=f"Bulk {n}", first_name=f"B{n}") for n in range(3)]
    closed = LeadFactory(owner=rita, stage=Stage.WON, company="Bulk closed")
    page = browser.new_context(viewport=LAPTOP).new_page()
    sign_in(page, live_server.url, manager.username)
    expect(page.get_by_role("heading", name="Team", exact=True)).to_be_visible()  # the manager's home
    page.locator("#id_q").fill("bulk")
    expect(page.locator("#team-count")).to_have_text("3 open leads matching “bulk”")
    for lead in leads[:2]:
        page.locator(f"input[type=checkbox][value='{lead.pk}']").check()
    page.locator("#bulk-to").select_option(label="Rep1")
    page.locator("#bulk button[value=reassign]").click()
    expect(page.locator("#main")).to_contain_text("Reassigned 2 leads to Rep1")
    shot(page, "find-team-laptop")
    for lead in leads[:2]:
        assert Assignment.objects.get(lead=lead, status="active").user_id == rob.pk
    closed.refresh_from_db()
    assert closed.owner_id == rita.pk


def test_screens_of_find_and_act_on_laptop_and_phone(browser, live_server, sales):
    manager, team, (rita, _) = sales
    marketing = UserFactory(username="maria", role="marketing", first_name="Maria")
    make_rule("Everyone", team=team)
    for i in range(4):
        LeadFactory(
            owner=rita,
            stage=Stage.SAL,
            company=f"Queue Co {i}",
            first_name="Lena",
            last_name=f"L{i}",
            job_title="CTO",
            score=20 + 15 * i,
            grade="B",
            handed_over_at=timezone.now(),
        )
    mql(company="Notice AG", first_name="Nora")
    pool_team, pool_reps = make_team(name="Pool team", size=1)
    make_rule(
        "Pool",
        team=pool_team,
        target="pool",
        strategy="pool",
        pool_mode="cherry_pick",
        priority=1,
        conditions=[("company", "eq", "Meridian Foods")],
    )
    for first, last in (("Anna", "Berg"), ("Ben", "Kurz")):
        mql(company="Meridian Foods", first_name=first, last_name=last, job_title="Student")
    for viewport, size in (("laptop", LAPTOP), ("phone", PHONE)):
        extra = {"is_mobile": True, "has_touch": True} if viewport == "phone" else {}
        for user, path, name in (
            (rita, "/app/", "queue"),
            (rita, "/app/notifications/", "notifications"),
            (manager, "/app/team/", "team"),
            (pool_reps[0], "/app/pool/", "pool"),
            (marketing, "/app/leads/", "marketing-leads"),
        ):
            context = browser.new_context(viewport=size, **extra)
            page = context.new_page()
            sign_in(page, live_server.url, user.username)
            page.goto(live_server.url + path)
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= size["width"], f"{path} scrolls sideways on a {viewport} ({width}px)"
            if viewport == "phone" and user == manager:
                for entry in ("Availability", "Team", "Funnel", "My queue", "Notifications"):
                    expect(page.locator("nav.nav a", has_text=entry)).to_be_in_viewport()
            if name == "pool":
                expect(page.locator("#pool")).to_contain_text("Anna Berg")
                expect(page.locator("#pool")).to_contain_text("Ben Kurz")
            shot(page, f"find-{name}-{viewport}")
            context.close()
