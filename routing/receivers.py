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
