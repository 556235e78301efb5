"""The routing app's per-process caches (the kind and the registry: `leads.caches`)."""

from __future__ import annotations

from leads.caches import ProcessCache, clear_on_change
from leads.models import PartnerOrganization

from .models import RepProfile, RoutingRule, RuleCondition

# The rule set as the engine needs it, by (statuses, `routing.sql.rules_fingerprint()`): the
# fingerprint changes with any rule, condition, rule partner or team membership, also when another
# process made the change. `routing.selectors.plan`.
plans = ProcessCache("routing.plans", max_entries=8)
clear_on_change(plans, RoutingRule, RuleCondition, RoutingRule.partners.through, RepProfile)

# Every partner organisation's routing weight (its outcomes), read at most once a minute: outcomes
# change by the day, not by the lead. `routing.selectors.partner_scores`.
PERFORMANCE_TTL = 60.0
partner_scores = ProcessCache("routing.partner_scores", max_entries=1, ttl=PERFORMANCE_TTL)
clear_on_change(partner_scores, PartnerOrganization)

# The candidates' state read for an earlier batch, reused for the next batch's predictions for two
# seconds at most: a stale prediction only sends a lead through lead_route, the decisions use state
# read under the locks. `routing.services.batch`.
SNAPSHOT_MAX_AGE = 2.0
candidate_snapshots = ProcessCache("routing.candidate_snapshots", max_entries=1, ttl=SNAPSHOT_MAX_AGE)
clear_on_change(candidate_snapshots, RepProfile, PartnerOrganization)


def clear() -> None:
    """Empty the routing app's caches."""
    plans.clear()
    partner_scores.clear()
    candidate_snapshots.clear()
