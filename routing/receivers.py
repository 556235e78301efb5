"""How routing reacts to what `leads` announces (connected in RoutingConfig.ready)."""

import time

from leads.models import Stage

from . import services, tasks


def on_stage_changed(sender, lead_id: int, from_stage: str, to_stage: str, **kwargs) -> None:
    if to_stage == Stage.MQL:
        tasks.route_lead.delay(lead_id, time.time())
    else:
        services.sync_with_stage(lead_id=lead_id, from_stage=from_stage, to_stage=to_stage)
