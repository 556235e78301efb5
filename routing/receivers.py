"""How routing reacts to what `leads` announces (connected in RoutingConfig.ready)."""

import time

from leadportal.celery import send
from leads.models import Stage

from . import services, tasks


def on_stage_changed(sender, lead_id: int, from_stage: str, to_stage: str, **kwargs) -> None:
    if to_stage == Stage.MQL:
        # After the commit. If the broker is away, the MQL waits without an assignment, and the
        # reconciler routes it (loop.reconciler: "MQLs with no open assignment").
        send(tasks.route_lead, lead_id, time.time())
    else:
        services.sync_with_stage(lead_id=lead_id, from_stage=from_stage, to_stage=to_stage)
