"""How scoring reacts to what `leads` announces (connected in ScoringConfig.ready)."""

from . import services


def rescore_changed_leads(sender, lead_ids: list[int], **kwargs) -> None:
    services.rescore_request(lead_ids=lead_ids)
