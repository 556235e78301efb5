"""How scoring reacts to what `leads` announces (connected in ScoringConfig.ready)."""

from . import services


def rescore_changed_leads(sender, lead_ids: list[int], **kwargs) -> None:
    """In the transaction of the change: a pending row per lead, and a task after the commit."""
    services.rescore_request(lead_ids=lead_ids)
