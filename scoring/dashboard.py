"""What scoring adds to the rep dashboard: the "why this score" panel on the lead page."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from leads import dashboard
from leads.formatting import format_points
from leads.models import Lead

from . import services


def register() -> None:
    dashboard.register_lead_panel("side", "scoring/_why.html", why_panel, order=10)
    dashboard.register_score_reasons(top_reasons)


def why_panel(request: HttpRequest, lead: Lead) -> dict[str, Any]:
    spec, score = services.lead_score_explain(lead=lead)
    if spec is None or score is None:
        return {"score": None}
    contributions = sorted(score.breakdown, key=lambda c: abs(c.points), reverse=True)
    return {"spec": spec, "score": score, "contributions": contributions}


def top_reasons(lead: Lead, limit: int) -> list[str]:
    """The `limit` rules that weigh most in the lead's score, in words with their points (the
    hand-over e-mail's "why this score")."""
    spec, score = services.lead_score_explain(lead=lead)
    if spec is None or score is None:
        return []
    contributions = sorted(score.breakdown, key=lambda c: abs(c.points), reverse=True)
    reasons = []
    for c in [c for c in contributions if c.points][:limit]:
        times = f" ×{c.occurrences}" if c.occurrences > 1 else ""
        sign = "+" if c.points >= 0 else "−"
        reasons.append(f"{c.label}{times} {sign}{format_points(abs(c.points))}")
    return reasons
