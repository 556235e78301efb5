"""What scoring adds to the rep dashboard: the "why this score" panel on the lead page."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from leads import dashboard
from leads.models import Lead

from . import services


def register() -> None:
    dashboard.register_lead_panel("side", "scoring/_why.html", why_panel, order=10)


def why_panel(request: HttpRequest, lead: Lead) -> dict[str, Any]:
    spec, score = services.lead_score_explain(lead=lead)
    if spec is None or score is None:
        return {"score": None}
    contributions = sorted(score.breakdown, key=lambda c: abs(c.points), reverse=True)
    return {"spec": spec, "score": score, "contributions": contributions}
