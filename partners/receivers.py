"""How partners react to what `leads` announces (connected in PartnersConfig.ready)."""

from __future__ import annotations

from typing import Any

from .models import PartnerFeedback


def on_lead_erased(sender, lead_id: int, **kwargs) -> None:
    """In the erasure's transaction (leads.erasure): a partner's feedback note is free text about the person."""
    PartnerFeedback.objects.filter(lead_id=lead_id).exclude(note="").update(note="")


def personal_data(sender, lead, **kwargs) -> dict[str, Any]:
    """For a data subject's export (leads.erasure.lead_export): what partners reported on the lead."""
    return {
        "partner_feedback": [
            {
                "partner": f.organization.name,
                "status": f.status,
                "reason": f.reason,
                "note": f.note,
                "deal_value": str(f.deal_value) if f.deal_value is not None else None,
                "currency": f.currency,
                "at": f.at.isoformat(),
            }
            for f in PartnerFeedback.objects.filter(lead=lead).select_related("organization").order_by("at", "pk")
        ]
    }
