"""Template context of every page: the dashboard navigation of the signed-in person."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from . import dashboard, notifications


def dashboard_nav(request: HttpRequest) -> dict:
    """The navigation, and the person's home link (the error pages' way out)."""
    user = getattr(request, "user", None)
    home_url, home_label = dashboard.home_for(user)
    if user is None or not user.is_authenticated:
        return {"home_url": home_url, "home_label": home_label}
    context: dict[str, Any] = {"nav": dashboard.nav_for(user), "home_url": home_url, "home_label": home_label}
    if notifications.has_notifications(user):
        # Counted only when a page shows the bell (lazily): a fragment or a redirect costs no query.
        context["unread"] = SimpleLazyObject(lambda: notifications.unread_count(user))
        context["bell"] = True
        context["banners"] = SimpleLazyObject(lambda: dashboard.banners_for(user))
    return context
