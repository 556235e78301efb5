"""Dry runs for sales managers: where would this lead go, and how would the last N MQLs have been
distributed under the draft rules? Reads only; nothing is assigned."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from leads.models import Lead, Stage, StageChange
from leads.selectors import lead_facts

from . import engine, selectors
from .models import RoutingRule

ACTIVE = (RoutingRule.Status.ACTIVE,)
WITH_DRAFTS = (RoutingRule.Status.ACTIVE, RoutingRule.Status.DRAFT)


def _setup(statuses):
    rules = selectors.engine_rules(selectors.rules(statuses))
    keys = {k for r in rules for k in r.candidates}
    return rules, keys


def simulate(facts: dict[str, Any], *, include_drafts: bool = False, lead: Lead | None = None) -> engine.Decision:
    rules, keys = _setup(WITH_DRAFTS if include_drafts else ACTIVE)
    owner = selectors.account_owner(lead) if lead else None
    if owner:
        keys.add(owner)
    candidates = selectors.candidates(keys)
    return engine.decide(facts, rules, candidates, selectors.counters(r.id for r in rules), account_owner=owner)


@dataclass
class Replay:
    leads: int
    rows: list[dict[str, Any]]  # assignee, current count, draft count, change


def replay(n: int = 100) -> Replay:
    """Route the last `n` MQLs again under the active rules and under active + draft rules, from
    today's candidate state, with round robin advancing as it would."""
    lead_ids = list(
        StageChange.objects.filter(to_stage=Stage.MQL).order_by("-at", "-pk").values_list("lead_id", flat=True)[:n]
    )
    leads = list(Lead.objects.filter(pk__in=lead_ids))
    tallies = []
    names: dict[Any, str] = {}
    for statuses in (ACTIVE, WITH_DRAFTS):
        rules, keys = _setup(statuses)
        owners = {lead.pk: selectors.account_owner(lead) for lead in leads}
        keys |= {o for o in owners.values() if o}
        candidates = selectors.candidates(keys)
        names.update({k: c.name for k, c in candidates.items()})
        counters: Counter = Counter()
        tally: Counter = Counter()
        for lead in leads:
            decision = engine.decide(lead_facts(lead), rules, candidates, counters, account_owner=owners[lead.pk])
            if decision.assignee:
                counters[(decision.rule_id, decision.assignee)] += 1
                tally[decision.assignee] += 1
            else:
                tally["pool" if decision.pooled else "unassigned"] += 1
        tallies.append(tally)
    keys = sorted(set(tallies[0]) | set(tallies[1]), key=lambda k: names.get(k, str(k)))
    rows = [
        {
            "assignee": names.get(k, k if isinstance(k, str) else str(k)),
            "active": tallies[0][k],
            "draft": tallies[1][k],
            "change": tallies[1][k] - tallies[0][k],
        }
        for k in keys
    ]
    return Replay(len(leads), rows)
