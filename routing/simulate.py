"""Dry runs for sales managers: where would this lead go, and how would the last N MQLs have been
distributed under the draft rules? Reads only; nothing is assigned."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from typing import Any

from leads.models import Lead, Stage, StageChange
from leads.selectors import lead_facts
from leads.services import email_domain

from . import engine, selectors
from .models import RoutingRule

ACTIVE = (RoutingRule.Status.ACTIVE,)
WITH_DRAFTS = (RoutingRule.Status.ACTIVE, RoutingRule.Status.DRAFT)


def _setup(statuses):
    rules = selectors.engine_rules(selectors.rules(statuses))
    keys = {k for r in rules for k in r.candidates}
    return rules, keys


def account_owner_of(facts: dict[str, Any]) -> engine.Key | None:
    """`selectors.account_owner` for typed facts: the owner of the Account whose domain is the
    company domain, or (none given) the e-mail's domain, which is what lead capture stores as the
    company domain."""
    domain = (facts.get("company_domain") or "").strip().lower() or email_domain(facts.get("email") or "")
    return selectors.domain_owner(domain)


def simulate(facts: dict[str, Any], *, include_drafts: bool = False, lead: Lead | None = None) -> engine.Decision:
    rules, keys = _setup(WITH_DRAFTS if include_drafts else ACTIVE)
    owner = selectors.account_owner(lead) if lead else account_owner_of(facts)
    if owner:
        keys.add(owner)
    candidates = selectors.candidates(keys)
    return engine.decide(facts, rules, candidates, selectors.counters(r.id for r in rules), account_owner=owner)


@dataclass
class Replay:
    leads: int
    rows: list[dict[str, Any]]  # assignee, current count, draft count, change


def replay(n: int = 100) -> Replay:
    """Route the last `n` MQLs again, oldest first, under the active rules and under active + draft
    rules, from today's candidate state and round-robin counters. Each lead placed counts for the
    leads after it, as it would for real: it adds to its assignee's open leads (so a rep with two
    free slots takes two) and to the rule's round-robin counter."""
    recent = StageChange.objects.filter(to_stage=Stage.MQL).order_by("-at", "-pk").values_list("lead_id", flat=True)
    lead_ids = list(dict.fromkeys(reversed(list(recent[:n]))))  # oldest first, each lead once
    by_id = Lead.objects.in_bulk(lead_ids)
    leads = [(by_id[pk], lead_facts(by_id[pk])) for pk in lead_ids if pk in by_id]
    names: dict[Any, str] = {}
    tallies = [_distribute(leads, statuses, names) for statuses in (ACTIVE, WITH_DRAFTS)]
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


def forecast(leads: list[tuple[Lead, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Who would get these leads if they became MQL now, in this order, under the active rules:
    [{"assignee": "Rita Meyer", "leads": 3}, {"assignee": "pool", …}, {"assignee": "nobody", …}],
    most leads first. `leads` pairs each lead with the facts to route it by (a scoring preview
    passes the draft's score and grade). Registered with scoring's preview (routing.apps)."""
    names: dict[Any, str] = {}
    tally = _distribute(leads, ACTIVE, names)
    words = {"pool": "a pool (reps claim)", "unassigned": "nobody (no rule places it)"}
    rows = [{"assignee": words.get(k) or names.get(k, str(k)), "leads": count} for k, count in tally.items()]
    return sorted(rows, key=lambda row: (-row["leads"], row["assignee"]))


def _distribute(leads: list[tuple[Lead, dict[str, Any]]], statuses, names: dict[Any, str]) -> Counter:
    """Route `leads` one after the other under the rules of `statuses`, each placed lead counting
    against its assignee's capacity and the round robin for the next; a tally per assignee key
    ("pool", "unassigned"). Fills `names` with the candidates' names."""
    owners = selectors.account_owners([lead for lead, _ in leads])
    rules, keys = _setup(statuses)
    ruleset = engine.compile_rules(rules)
    candidates = dict(selectors.candidates(keys | set(owners.values())))
    names.update({k: c.name for k, c in candidates.items()})
    counters: Counter = Counter(selectors.counters(r.id for r in rules))
    tally: Counter = Counter()
    for lead, facts in leads:
        decision = engine.decide(facts, ruleset, candidates, counters, account_owner=owners.get(lead.pk))
        if decision.assignee:
            counters[(decision.rule_id, decision.assignee)] += 1
            placed = candidates[decision.assignee]
            candidates[decision.assignee] = replace(placed, open_leads=placed.open_leads + 1)
            tally[decision.assignee] += 1
        else:
            tally["pool" if decision.pooled else "unassigned"] += 1
    return tally
