"""The funnel and the error pages in a real browser (Playwright on Debian's Chromium), on the demo's
data, laptop (1366×850) and phone (390×844); screenshots in test-artifacts/screenshots/.

The manager reads the funnel for each period (the figures change with it, no share above 100 %),
marketing and the integration user meet the styled 404 (DEBUG on, as `make run` has it), and the
queue's count follows its filter."""

from __future__ import annotations

import io
import os
import re

import pytest
from django.core.management import call_command
from playwright.sync_api import Browser, expect

from tests.browser import PHONE, shot, sign_in

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
LAPTOP = {"width": 1366, "height": 850}
SIZES = {"laptop": {"viewport": LAPTOP}, "phone": {"viewport": PHONE, "is_mobile": True, "has_touch": True}}


@pytest.fixture
def demo(db):
    call_command("seed_demo", stdout=io.StringIO())


def test_the_funnel_and_the_404_on_laptop_and_phone(browser: Browser, live_server, demo, settings):
    settings.DEBUG = True  # as `make run` serves it: still the styled 404 for everyone but superusers
    for size, options in SIZES.items():
        context = browser.new_context(**options)
        page = context.new_page()
        sign_in(page, live_server.url, "salesmanager", "leadportal")
        figures = {}
        for days in ("7", "30", "90", "365"):
            page.goto(f"{live_server.url}/app/team/funnel/?days={days}")
            rows = page.locator(".funnel-row:not(.funnel-head)")
            expect(rows.first).to_contain_text("Handed over")
            figures[days] = rows.locator(".funnel-bar").all_inner_texts()
            shares = [int(n) for n in re.findall(r"(\d+)\s%", " ".join(rows.locator(".conv").all_inner_texts()))]
            assert all(0 <= share <= 100 for share in shares), shares
        assert len(set(map(tuple, figures.values()))) > 1, figures  # the periods really filter
        page.goto(f"{live_server.url}/app/team/funnel/?days=30")
        page.get_by_label("Period").select_option("365")  # app.js submits the form
        expect(page).to_have_url(re.compile(r"days=365"))
        shot(page, f"figures-funnel-{size}")

        page.goto(f"{live_server.url}/app/leads/999999/")
        expect(page.get_by_role("heading", name="Nothing here")).to_be_visible()
        expect(page.get_by_role("link", name="Back to the team")).to_be_visible()
        shot(page, f"figures-404-{size}")
        context.close()

    # /app/ and / now take both home (marketing: its lead list; integration: the API docs); a wrong
    # address still gets the styled 404, never Django's technical one, with the way home.
    for username, url, home in [
        ("marketing", "/app/no-such-page/", "Back to the leads"),
        ("integration", "/no-such-page/", "Open the API documentation"),
    ]:
        context = browser.new_context(viewport=LAPTOP)
        page = context.new_page()
        sign_in(page, live_server.url, username, "leadportal")
        page.goto(f"{live_server.url}{url}")
        expect(page.get_by_role("heading", name="Nothing here")).to_be_visible()
        expect(page.get_by_text("Django tried these URL patterns")).to_have_count(0)
        page.get_by_role("link", name=home).click()
        page.wait_for_load_state()
        assert page.url.rstrip("/").endswith(("/app/leads", "/api/docs"))
        context.close()


def test_the_queue_count_follows_the_filter(browser: Browser, live_server, demo):
    context = browser.new_context(viewport=LAPTOP)
    page = context.new_page()
    sign_in(page, live_server.url, "rep1", "leadportal")
    count = page.locator("#queue-count")
    before = count.inner_text()
    page.locator("select[name=stage]").select_option("all")  # htmx swaps the list, and the count with it
    expect(count).not_to_have_text(before)
    shown = int(count.inner_text().split()[0])
    rows = page.locator("#queue tbody tr").count()
    assert shown >= rows > 0
    context.close()
