"""Template context of every page: the dashboard navigation of the signed-in person."""

from __future__ import annotations

from django.http import HttpRequest

from . import dashboard


def dashboard_nav(request: HttpRequest) -> dict:
    """The navigation, and the person's home link (the error pages' way out)."""
    user = getattr(request, "user", None)
    home_url, home_label = dashboard.home_for(user)
    if user is None or not user.is_authenticated:
        return {"home_url": home_url, "home_label": home_label}
    return {"nav": dashboard.nav_for(user), "home_url": home_url, "home_label": home_label}
