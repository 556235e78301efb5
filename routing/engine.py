"""The routing decision: plain data in (lead facts, ordered rules, candidates and their state),
the assignee and a readable trace out. No ORM, no I/O; `routing.services` loads and locks.

Speed: a rule set is compiled once (`compile_rules`) into a `RuleSet` — every condition becomes a
small check over the lead's facts, normalised once per lead the way `leads.conditions.evaluate`
normalises them, and rules are indexed by the countries they can match, so that a lead only looks
at the rules of its own country and those that do not care about the country. Conditions whose
shape has no fast check are evaluated by `leads.conditions.evaluate` itself: the vocabulary keeps
one meaning. A property test holds the compiled decisions equal to a rule-by-rule evaluation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from leads.conditions import Condition, evaluate

# A candidate is ("rep", user id) or ("partner", organisation id).
Key = tuple[str, int]

DIRECT, ROUND_ROBIN, WEIGHTED, LEAST_LOADED, ACCOUNT_OWNER, POOL, PERFORMANCE = (
    "direct",
    "round_robin",
    "weighted_round_robin",
    "least_loaded",
    "account_owner",
    "pool",
    "performance_weighted",
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
    performance: float = 1.0  # partners: how well they convert (partners.selectors.performance_score)
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
    pool_size: int = 0  # a hybrid pool: offered to this many of the candidates (0: the whole team)


@dataclass
class Decision:
    rule_id: int | None
    strategy: str = ""
    assignee: Key | None = None
    pooled: bool = False
    offered: tuple[Key, ...] = ()  # a hybrid pool's few reps (empty: anyone of the pool's team)
    assignee_name: str = ""
    trace: list[dict[str, Any]] = field(default_factory=list)

    @property
    def placed(self) -> bool:
        return self.assignee is not None or self.pooled


# --- compiling conditions ------------------------------------------------------------------

_MISSING = object()
Facts = dict[str, Any]  # field → a number, or lower-case text; a missing value is left out
Check = Callable[[Mapping[str, Any]], bool]  # over normalised facts, or (slow ones) the raw facts


def normalise(facts: Mapping[str, Any], fields: Sequence[str]) -> Facts:
    """The facts as `evaluate` compares them: Decimals as floats, numbers as numbers (bools are
    text, as there), everything else as lower-case text; None and "" are left out (not present)."""
    result: Facts = {}
    for name in fields:
        actual = facts.get(name)
        if isinstance(actual, Decimal):
            actual = float(actual)
        if actual is None or actual == "":
            continue
        if isinstance(actual, int | float) and not isinstance(actual, bool):
            result[name] = actual
        else:
            result[name] = str(actual).lower()
    return result


def _is_number(value: Any) -> bool:
    return value.__class__ is not str and value is not _MISSING


def compile_condition(condition: Condition) -> tuple[Check, bool]:
    """A check over normalised facts that answers as `evaluate(condition, facts)` does, and whether
    it is one (False: the check needs the raw facts and calls `evaluate` itself)."""
    name, op, value = condition.field, condition.op, condition.value
    texts = isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)
    numbers = isinstance(value, list | tuple) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in value
    )
    if op == "exists" and isinstance(value, bool):
        return ((lambda f: name in f) if value else (lambda f: name not in f)), True
    if op == "eq" and isinstance(value, str):
        return (lambda f: f.get(name) == value), True  # a number or a missing value never equals text
    if op == "eq" and isinstance(value, int | float) and not isinstance(value, bool):
        return (lambda f: _is_number(v := f.get(name, _MISSING)) and v == value), True
    if op == "in" and (texts or numbers):
        allowed = frozenset(value)
        if texts:
            return (lambda f: f.get(name) in allowed), True
        return (lambda f: _is_number(v := f.get(name, _MISSING)) and v in allowed), True
    if op == "contains" and isinstance(value, str):
        return (lambda f: (v := f.get(name)).__class__ is str and value in v), True
    if op == "startswith" and isinstance(value, str):
        return (lambda f: (v := f.get(name)).__class__ is str and v.startswith(value)), True
    if op in ("gte", "lte") and isinstance(value, int | float) and not isinstance(value, bool):
        if op == "gte":
            return (lambda f: _is_number(v := f.get(name, _MISSING)) and v >= value), True
        return (lambda f: _is_number(v := f.get(name, _MISSING)) and v <= value), True
    if op == "between" and numbers and len(value) == 2:
        low, high = value
        return (lambda f: _is_number(v := f.get(name, _MISSING)) and low <= v <= high), True
    # Anything else (domain_in, hand-made values): the reference implementation, on the raw facts.
    return (lambda raw: evaluate(condition, raw)), False


@dataclass(frozen=True)
class CompiledRule:
    position: int  # 0-based place in the ordered rule set
    rule: Rule
    fast: tuple[Check, ...]  # over normalised facts
    slow: tuple[Check, ...]  # over the raw facts (evaluate)
    order: Mapping[Key, int]  # candidate → its place in the rule's list (round robin ties)

    def matches(self, norm: Facts, raw: Mapping[str, Any]) -> bool:
        for check in self.fast:
            if not check(norm):
                return False
        return all(check(raw) for check in self.slow)


def _countries(rule: Rule) -> frozenset[str] | None:
    """The (lower-case) countries a lead must be in for the rule to match, or None: any."""
    allowed: frozenset[str] | None = None
    for c in rule.conditions:
        if c.field != "country":
            continue
        if c.op == "eq" and isinstance(c.value, str):
            these = frozenset({c.value})
        elif c.op == "in" and isinstance(c.value, list | tuple) and all(isinstance(v, str) for v in c.value):
            these = frozenset(c.value)
        else:
            continue
        allowed = these if allowed is None else allowed & these
    return allowed


@dataclass(frozen=True)
class RuleSet:
    """An ordered rule set compiled for fast decisions. Build it with `compile_rules`."""

    rules: tuple[Rule, ...]
    fields: tuple[str, ...]  # the lead fields any fast check reads
    by_country: Mapping[str, tuple[CompiledRule, ...]]
    anywhere: tuple[CompiledRule, ...]  # rules that do not restrict the country

    def candidates_for(self, norm: Facts) -> tuple[CompiledRule, ...]:
        """The rules that may match this lead, in order (a superset of those that do)."""
        country = norm.get("country")
        if country.__class__ is str:
            return self.by_country.get(country, self.anywhere)
        return self.anywhere  # missing, or a number: no country condition holds

    def matching(self, facts: Mapping[str, Any]) -> list[Rule]:
        """The rules whose conditions hold for these facts, in order."""
        norm = normalise(facts, self.fields)
        return [c.rule for c in self.candidates_for(norm) if c.matches(norm, facts)]


def compile_rules(rules: Sequence[Rule]) -> RuleSet:
    """Compile an ordered rule set once; `decide` then takes the result instead of the list."""
    compiled, fields = [], set()
    for position, rule in enumerate(rules):
        fast: list[Check] = []
        slow: list[Check] = []
        for condition in rule.conditions:
            check, is_fast = compile_condition(condition)
            (fast if is_fast else slow).append(check)
            if is_fast:
                fields.add(condition.field)
        order = {key: i for i, key in enumerate(rule.candidates)}
        compiled.append(CompiledRule(position, rule, tuple(fast), tuple(slow), order))
    fields.add("country")
    anywhere: list[CompiledRule] = []
    per_country: dict[str, list[CompiledRule]] = {}
    restricted: list[tuple[CompiledRule, frozenset[str]]] = []
    for c in compiled:
        countries = _countries(c.rule)
        if countries is None:
            anywhere.append(c)
        else:
            restricted.append((c, countries))
            for country in countries:
                per_country.setdefault(country, [])
    for country, bucket in per_country.items():
        bucket.extend(c for c, countries in restricted if country in countries)
        bucket.extend(anywhere)
        bucket.sort(key=lambda c: c.position)
    return RuleSet(
        rules=tuple(rules),
        fields=tuple(sorted(fields)),
        by_country={country: tuple(bucket) for country, bucket in per_country.items()},
        anywhere=tuple(anywhere),
    )


# --- deciding ------------------------------------------------------------------------------------


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


def not_matched(rules: Sequence[Rule], start: int, end: int) -> list[dict[str, Any]]:
    """The trace of rules[start:end], whose conditions did not hold: one entry for one rule, one
    summary entry for a run of them (a trace stays short with 500 rules)."""
    count = end - start
    if count <= 0:
        return []
    if count == 1:
        return [{"rule": rules[start].name, "matched": False}]
    return [{"skipped_rules": count, "first": rules[start].name, "last": rules[end - 1].name}]


def decide(
    lead: Mapping[str, Any],
    rules: Sequence[Rule] | RuleSet,
    candidates: Mapping[Key, Candidate],
    counters: Mapping[tuple[int, Key], int] | None = None,
    account_owner: Key | None = None,
    excluded: frozenset[Key] = frozenset(),
) -> Decision:
    """The first rule whose conditions hold and that has an eligible candidate decides.

    Strategies: direct (the rule's one candidate), account owner (the owner of the lead's account),
    round robin (fewest leads from this rule so far; ties by order), weighted round robin (fewest
    per unit of weight), performance-weighted (the same, with each partner's outcome score as its
    weight), least loaded (lowest open/capacity), pool (nobody yet: reps claim it).
    A matching rule without an eligible candidate falls through to the next one.

    `rules` is the ordered list or, faster, the `RuleSet` that `compile_rules` made of it. The
    trace has an entry per rule whose conditions held, and runs of rules whose conditions did not
    hold summarised (`not_matched`).
    """
    ruleset = rules if isinstance(rules, RuleSet) else compile_rules(rules)
    ordered = ruleset.rules
    counters = counters or {}
    norm = normalise(lead, ruleset.fields)
    trace: list[dict[str, Any]] = []
    done = 0  # rules before this position are in the trace
    for compiled in ruleset.candidates_for(norm):
        if not compiled.matches(norm, lead):
            continue
        rule = compiled.rule
        trace += not_matched(ordered, done, compiled.position)
        done = compiled.position + 1
        step: dict[str, Any] = {"rule": rule.name, "matched": True, "strategy": rule.strategy}
        trace.append(step)
        if rule.strategy == POOL:
            offered = _offer(rule, compiled.order, lead, candidates, excluded, step) if rule.pool_size else ()
            if not rule.pool_size:
                step["result"] = "pooled"
            return Decision(rule.id, rule.strategy, pooled=True, offered=offered, trace=trace)
        if rule.strategy == ACCOUNT_OWNER:
            if not account_owner:
                step["result"] = "no account owner for this domain"
                continue
            keys: Sequence[Key] = (account_owner,)
        else:
            keys = rule.candidates
        eligible: list[Candidate] = []
        skipped = []
        for key in keys:
            candidate = candidates.get(key)
            if candidate is None:
                skipped.append({"candidate": str(key), "why": "unknown"})
                continue
            reason = skip_reason(candidate, lead, rule, excluded)
            if reason:
                skipped.append({"candidate": candidate.name, "why": reason})
            else:
                eligible.append(candidate)
        if skipped:
            step["skipped"] = skipped
        if not eligible:
            step["result"] = "no eligible candidate"
            continue
        chosen = _pick(rule, compiled.order, eligible, counters)
        step["result"] = f"assigned to {chosen.name}"
        return Decision(rule.id, rule.strategy, assignee=chosen.key, assignee_name=chosen.name, trace=trace)
    trace += not_matched(ordered, done, len(ordered))
    trace.append({"result": "unassigned: no rule could place this lead"})
    return Decision(None, trace=trace)


def _offer(
    rule: Rule,
    order: Mapping[Key, int],
    lead: Mapping[str, Any],
    candidates: Mapping[Key, Candidate],
    excluded: frozenset[Key],
    step: dict[str, Any],
) -> tuple[Key, ...]:
    """Hybrid: the `pool_size` eligible candidates with the most headroom (ties by order). Nobody
    eligible: the whole team's pool."""
    eligible = [
        c
        for key in rule.candidates
        if (c := candidates.get(key)) is not None and skip_reason(c, lead, rule, excluded) is None
    ]
    if not eligible:
        step["result"] = "pooled for the whole team: nobody is free for a small pool"
        return ()
    last = len(order)
    chosen = sorted(eligible, key=lambda c: (c.open_leads / max(c.capacity, 1), order.get(c.key, last)))
    chosen = chosen[: rule.pool_size]
    step["result"] = "offered to " + ", ".join(c.name for c in chosen)
    return tuple(c.key for c in chosen)


def _pick(
    rule: Rule, order: Mapping[Key, int], eligible: list[Candidate], counters: Mapping[tuple[int, Key], int]
) -> Candidate:
    if len(eligible) == 1 or rule.strategy not in (ROUND_ROBIN, WEIGHTED, PERFORMANCE, LEAST_LOADED):
        return eligible[0]  # direct, account owner
    last = len(order)
    rule_id = rule.id
    if rule.strategy == ROUND_ROBIN:
        return min(eligible, key=lambda c: (counters.get((rule_id, c.key), 0), order.get(c.key, last)))
    if rule.strategy == WEIGHTED:
        return min(eligible, key=lambda c: (counters.get((rule_id, c.key), 0) / c.weight, order.get(c.key, last)))
    if rule.strategy == PERFORMANCE:
        return min(
            eligible,
            key=lambda c: ((counters.get((rule_id, c.key), 0) + 1) / max(c.performance, 0.01), order.get(c.key, last)),
        )
    return min(eligible, key=lambda c: (c.open_leads / max(c.capacity, 1), order.get(c.key, last)))
