"""The routing decision: plain data in (lead facts, ordered rules, candidates and their state),
the assignee and a readable trace out. No ORM, no I/O; `routing.services` loads and locks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from leads.conditions import Condition, evaluate

# A candidate is ("rep", user id) or ("partner", organisation id).
Key = tuple[str, int]

DIRECT, ROUND_ROBIN, WEIGHTED, LEAST_LOADED, ACCOUNT_OWNER, POOL = (
    "direct",
    "round_robin",
    "weighted_round_robin",
    "least_loaded",
    "account_owner",
    "pool",
)


@dataclass(frozen=True)
class Candidate:
    key: Key
    name: str
    active: bool = True
    away: bool = False
    open_leads: int = 0
    capacity: int = 25
    weight: int = 1
    seniority: int = 2
    territories: frozenset[str] = frozenset()  # empty: anywhere
    languages: frozenset[str] = frozenset()
    products: frozenset[str] = frozenset()
    industries: frozenset[str] = frozenset()
    min_company_size: int | None = None
    max_company_size: int | None = None


@dataclass(frozen=True)
class Rule:
    id: int
    name: str
    strategy: str
    conditions: tuple[Condition, ...] = ()
    candidates: tuple[Key, ...] = ()  # in a stable order
    match_profile: bool = False
    min_seniority: int | None = None


@dataclass
class Decision:
    rule_id: int | None
    strategy: str = ""
    assignee: Key | None = None
    pooled: bool = False
    trace: list[dict[str, Any]] = field(default_factory=list)

    @property
    def placed(self) -> bool:
        return self.assignee is not None or self.pooled


def skip_reason(candidate: Candidate, lead: Mapping[str, Any], rule: Rule, excluded: frozenset[Key]) -> str | None:
    """Why this candidate cannot take this lead now (None: it can)."""
    if candidate.key in excluded:
        return "had this lead before"
    if not candidate.active:
        return "inactive"
    if candidate.away:
        return "away"
    if candidate.open_leads >= candidate.capacity:
        return f"at capacity ({candidate.open_leads}/{candidate.capacity})"
    if rule.min_seniority is not None and candidate.seniority < rule.min_seniority:
        return "not senior enough"
    if rule.match_profile:
        checks = (
            ("territory", candidate.territories, (lead.get("country") or "").upper()),
            ("language", candidate.languages, (lead.get("language") or "").lower()),
            ("product", candidate.products, (lead.get("product_interest") or "").lower()),
            ("industry", candidate.industries, (lead.get("industry") or "").lower()),
        )
        for label, covered, value in checks:
            if covered and value not in covered:
                return f"no {label} match"
        size = lead.get("company_size")
        if size is not None and (
            (candidate.min_company_size is not None and size < candidate.min_company_size)
            or (candidate.max_company_size is not None and size > candidate.max_company_size)
        ):
            return "company size out of range"
    return None


def decide(
    lead: Mapping[str, Any],
    rules: Sequence[Rule],
    candidates: Mapping[Key, Candidate],
    counters: Mapping[tuple[int, Key], int] | None = None,
    account_owner: Key | None = None,
    excluded: frozenset[Key] = frozenset(),
) -> Decision:
    """The first rule whose conditions hold and that has an eligible candidate decides.

    Strategies: direct (the rule's one candidate), account owner (the owner of the lead's account),
    round robin (fewest leads from this rule so far; ties by order), weighted round robin (fewest
    per unit of weight), least loaded (lowest open/capacity), pool (nobody yet: reps claim it).
    A matching rule without an eligible candidate falls through to the next one.
    """
    counters = counters or {}
    trace: list[dict[str, Any]] = []
    for rule in rules:
        if not all(evaluate(c, lead) for c in rule.conditions):
            trace.append({"rule": rule.name, "matched": False})
            continue
        step: dict[str, Any] = {"rule": rule.name, "matched": True, "strategy": rule.strategy}
        trace.append(step)
        if rule.strategy == POOL:
            step["result"] = "pooled"
            return Decision(rule.id, rule.strategy, pooled=True, trace=trace)
        keys = [account_owner] if rule.strategy == ACCOUNT_OWNER and account_owner else list(rule.candidates)
        if rule.strategy == ACCOUNT_OWNER and not account_owner:
            step["result"] = "no account owner for this domain"
            continue
        eligible, skipped = [], []
        for key in keys:
            candidate = candidates.get(key)
            reason = "unknown" if candidate is None else skip_reason(candidate, lead, rule, excluded)
            if reason:
                skipped.append({"candidate": candidate.name if candidate else str(key), "why": reason})
            else:
                eligible.append(candidate)
        if skipped:
            step["skipped"] = skipped
        if not eligible:
            step["result"] = "no eligible candidate"
            continue
        chosen = _pick(rule, eligible, counters)
        step["result"] = f"assigned to {chosen.name}"
        return Decision(rule.id, rule.strategy, assignee=chosen.key, trace=trace)
    trace.append({"result": "unassigned: no rule could place this lead"})
    return Decision(None, trace=trace)


def _pick(rule: Rule, eligible: list[Candidate], counters: Mapping[tuple[int, Key], int]) -> Candidate:
    order = {key: i for i, key in enumerate(rule.candidates)}

    def position(c: Candidate) -> int:
        return order.get(c.key, len(order))

    if rule.strategy == ROUND_ROBIN:
        return min(eligible, key=lambda c: (counters.get((rule.id, c.key), 0), position(c)))
    if rule.strategy == WEIGHTED:
        return min(eligible, key=lambda c: (counters.get((rule.id, c.key), 0) / c.weight, position(c)))
    if rule.strategy == LEAST_LOADED:
        return min(eligible, key=lambda c: (c.open_leads / max(c.capacity, 1), position(c)))
    return eligible[0]  # direct, account owner
