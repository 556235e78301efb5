"""How webhooks react to what `leads` announces inside its transactions (connected in
WebhooksConfig.ready): each writes the outbox in the transaction of the change. Nobody wanting
the types costs no query (`outbox.wants` reads the per-process cache)."""

from __future__ import annotations

from typing import Any

from leads.models import Lead, Stage

from . import outbox
from .models import EventType

CLOSED = (Stage.WON, Stage.LOST)


def on_lead_saved(sender, lead_ids: list[int], created: bool, fields: list[str], leads: list[Lead], **kwargs) -> None:
    """lead.created for a new lead; lead.updated for a profile that changed."""
    type_ = EventType.LEAD_CREATED if created else EventType.LEAD_UPDATED
    if not outbox.wants(type_):
        return
    by_id: dict[int, Lead | int] = {lead_id: lead_id for lead_id in lead_ids}
    by_id.update({lead.pk: lead for lead in leads})
    outbox.record_many(type_, [(lead, {"changed": list(fields)}) for lead in by_id.values()])


def on_stage_changing(
    sender, lead_id: int, from_stage: str, to_stage: str, actor_id: int | None = None, reason: str = "", **kwargs
) -> None:
    """lead.stage_changed for every move; lead.mql with it when the lead became an MQL; lead.closed
    when it was won or lost."""
    types = [EventType.LEAD_STAGE_CHANGED]
    if to_stage == Stage.MQL:
        types.append(EventType.LEAD_MQL)
    elif to_stage in CLOSED:
        types.append(EventType.LEAD_CLOSED)
    if not outbox.wants(*types):
        return
    lead = Lead.objects.filter(pk=lead_id).first()
    if lead is None:
        return
    data: dict[str, Any] = {"from_stage": from_stage, "to_stage": to_stage, "reason": reason, "actor_id": actor_id}
    for type_ in types:
        outbox.record(type_, lead, data)


def on_lead_erased(sender, lead_id: int, actor_id: int | None = None, **kwargs) -> None:
    """lead.erased, and this app's copies of the lead's personal data scrubbed (outbox.record_erased)."""
    outbox.record_erased(lead_id=lead_id)


def personal_data(sender, lead: Lead, **kwargs) -> dict:
    """For a data subject's export (leads.erasure.lead_export): the events about the person that
    webhooks sent, and to which receivers."""
    from .models import WebhookEvent

    events = WebhookEvent.objects.filter(lead_id=lead.pk).prefetch_related("deliveries__subscription")
    return {
        "webhook_events": [
            {
                "id": str(event.pk),
                "type": event.type,
                "created_at": event.created_at.isoformat(),
                "payload": event.payload,
                "sent_to": [
                    {"subscription": d.subscription.name, "url": d.subscription.url, "status": d.status}
                    for d in event.deliveries.all()
                ],
            }
            for event in events.order_by("created_at")
        ]
    }
