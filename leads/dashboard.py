"""Extension points of the rep dashboard.

The dashboard's pages live in `leads` (queue, lead page), but what other apps know — the score's
"why" (scoring), assignments, accept/reject, the pool and the team (routing) — is theirs to show.
They register it here in their AppConfig.ready(), the same way they connect to `leads.signals`,
so `leads` never imports them:

- `register_nav(label, url_name, roles)` — an entry in the top navigation;
- `register_banner(banner)` — a line above every page for the signed-in person: `banner(user)`
  returns (text, link text, url), or None (routing: "You are away until …");
- `register_lead_panel(slot, template, context, order)` — a block on the lead page;
- `register_score_reasons(reasons)` — `reasons(lead, limit)` gives the score's top reasons in words
  ("Job title is CTO +20"), for the hand-over e-mail (scoring's; routing reads them through here). `context(request,
  lead)` returns the template's context, or None to leave the block out. Slots: "actions" (above the
  lead's own actions), "side" (the side column).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.shortcuts import resolve_url
from django.urls import reverse
from django.utils.translation import gettext

from .models import Lead, Role, User

SALES_ROLES = frozenset({Role.SALES_REP, Role.SALES_MANAGER})

PanelContext = Callable[[HttpRequest, Lead], dict[str, Any] | None]


@dataclass(frozen=True)
class NavItem:
    label: str
    url_name: str
    roles: frozenset[str]
    order: int


@dataclass(frozen=True)
class LeadPanel:
    slot: str
    template: str
    context: PanelContext
    order: int


_nav: list[NavItem] = []
_panels: list[LeadPanel] = []
Banner = Callable[[User], tuple[str, str, str] | None]
_banners: list[Banner] = []


def register_banner(banner: Banner) -> None:
    if banner not in _banners:
        _banners.append(banner)


ScoreReasons = Callable[[Lead, int], list[str]]
_score_reasons: list[ScoreReasons] = []


def register_score_reasons(reasons: ScoreReasons) -> None:
    if reasons not in _score_reasons:
        _score_reasons.append(reasons)


def score_reasons(lead: Lead, limit: int = 3) -> list[str]:
    """The top reasons of the lead's score, biggest first (none without a scoring app or model)."""
    for reasons in _score_reasons:
        return reasons(lead, limit)
    return []


def banners_for(user: User) -> list[tuple[str, str, str]]:
    """The banners to show this person now: (text, link text, url) each."""
    if not is_sales(user):
        return []
    return [shown for banner in _banners if (shown := banner(user)) is not None]


def register_nav(label: str, url_name: str, roles: Iterable[str] = SALES_ROLES, order: int = 50) -> None:
    if any(item.url_name == url_name for item in _nav):
        return  # ready() may run twice in tests
    _nav.append(NavItem(label, url_name, frozenset(roles), order))
    _nav.sort(key=lambda item: item.order)


def register_lead_panel(slot: str, template: str, context: PanelContext, order: int = 50) -> None:
    if any(panel.template == template for panel in _panels):
        return
    _panels.append(LeadPanel(slot, template, context, order))
    _panels.sort(key=lambda panel: panel.order)


def nav_for(user: User) -> list[NavItem]:
    return [item for item in _nav if user.role in item.roles]


def panels_for(request: HttpRequest, lead: Lead, slot: str) -> list[tuple[str, dict[str, Any]]]:
    """(template, context) of every panel of `slot` that has something to show for this lead."""
    shown = []
    for panel in _panels:
        if panel.slot != slot:
            continue
        context = panel.context(request, lead)
        if context is not None:
            shown.append((panel.template, context))
    return shown


def is_sales(user: User) -> bool:
    return user.is_authenticated and user.is_active and user.role in SALES_ROLES


# Where a partner user lands (the partner portal, served by the partners app).
PARTNER_HOME = "/partner/"


def home_for(user) -> tuple[str, str]:
    """Where a person's "home" link goes, and what it says: the page "/", /app/ and sign-in take
    them to — a rep's queue, a sales manager's team page (routing's, reached by URL name: leads
    imports nothing of routing), marketing's lead list, the partner portal, the admin — or, for an
    integration client, the API's documentation; a stranger signs in."""
    if user is None or not user.is_authenticated:
        return resolve_url(settings.LOGIN_URL), gettext("Sign in")
    if is_sales(user) and user.role == Role.SALES_MANAGER:
        return reverse("routing:team"), gettext("Back to the team")
    if is_sales(user):
        return reverse("leads:queue"), gettext("Back to my queue")
    if user.is_active and user.role == Role.MARKETING:
        return reverse("leads:list"), gettext("Back to the leads")
    if user.role == Role.PARTNER:
        return PARTNER_HOME, gettext("Back to our leads")
    if user.is_staff:
        return reverse("admin:index"), gettext("Back to the administration")
    return reverse("api-docs"), gettext("Open the API documentation")
