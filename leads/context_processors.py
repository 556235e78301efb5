"""Template context of every page: the dashboard navigation of the signed-in person."""

from __future__ import annotations

from django.http import HttpRequest

from . import dashboard


def dashboard_nav(request: HttpRequest) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"nav": dashboard.nav_for(user)}
