"""How routing reacts to what `leads` announces (connected in RoutingConfig.ready)."""

import time

from leadportal.celery import send
from leads.models import Stage

from . import services, tasks


def on_stage_changed(sender, lead_id: int, from_stage: str, to_stage: str, **kwargs) -> None:
    """After the commit: route a new MQL. If the broker is away, the MQL waits without an
    assignment, and the reconciler routes it (loop.reconciler: "MQLs without an assignment")."""
    if to_stage == Stage.MQL:
        send(tasks.route_lead_task, lead_id, time.time())


def on_stage_changing(sender, lead_id: int, from_stage: str, to_stage: str, **kwargs) -> None:
    """In the move's transaction: the handover follows the stage (routing.handover.follow_stage)."""
    if to_stage != Stage.MQL:
        services.follow_stage(lead_id=lead_id, from_stage=from_stage, to_stage=to_stage)


def on_lead_erased(sender, lead_id: int, **kwargs) -> None:
    """In the erasure's transaction (leads.erasure): assignment notes are free text about the person."""
    from .models import Assignment

    Assignment.objects.filter(lead_id=lead_id).exclude(note="").update(note="")


def personal_data(sender, lead, **kwargs) -> dict:
    """For a data subject's export (leads.erasure.lead_export): who the lead was handed to, when and why."""
    from .models import Assignment

    assignments = Assignment.objects.filter(lead=lead).select_related("user", "partner").order_by("assigned_at", "pk")
    return {
        "assignments": [
            {
                "assigned_to": a.user.get_username() if a.user else (a.partner.name if a.partner else None),
                "status": a.status,
                "assigned_at": a.assigned_at.isoformat(),
                "accepted_at": a.accepted_at.isoformat() if a.accepted_at else None,
                "ended_at": a.ended_at.isoformat() if a.ended_at else None,
                "note": a.note,
            }
            for a in assignments
        ]
    }


def handover_forecast(sender, leads, **kwargs):
    """Scoring's preview asks who would get these leads if they became MQL now (leads.signals)."""
    from .simulate import forecast

    return forecast(leads)
