"""Helpers for the browser tests (Playwright driving Chromium against the live test server):
viewports, screenshots and signing in; and the Content-Security-Policy parsed into its directives."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import Page

# Screenshots of the main pages (laptop and phone) go here (git-ignored).
SHOTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "screenshots"
PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1366, "height": 860}


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def sign_in(page: Page, base: str, username: str, password: str = "pw") -> None:  # noqa: S107 - factory password
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


def directives(policy: str) -> dict[str, str]:
    """`"a x; b y z"` → `{"a": "x", "b": "y z"}` (django-csp does not keep the directives' order)."""
    return dict(part.strip().partition(" ")[::2] for part in policy.split(";") if part.strip())
