"""The two pure engines alone, with pytest-benchmark: routing `engine.decide` over the routing suite's
500 rules, and scoring `engine.score_lead` with the demo model.

Run by `python -m bench routing` and `python -m bench scoring` (bench/suite.py `run_benchmark`: one
test each, its figures printed in the suite's table), or by hand:

    .venv/bin/pytest bench/test_engines.py                     # both, pytest-benchmark's table

Not collected by `make test`: pyproject's testpaths leave bench/ out. The engines read plain data,
so the test database (SQLite by default) only builds it: the routing suite's reps, rules and leads
(bench.jobs `routing_setup`), the demo scoring model (scoring.demo).
"""

from __future__ import annotations

import argparse
import random
from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from bench import datagen
from bench.jobs import EVENT_KINDS

ROUTING = {"reps": 200, "teams": 10, "rules": 500, "leads": 2_000}
SCORING_LEADS, ACTIVITIES_PER_LEAD = 2_000, 10
SEED = 2026
pytestmark = pytest.mark.django_db
# The incremental run's event kinds, a demo request, and a type no rule scores.
ACTIVITIES = [*EVENT_KINDS, ("demo_request", {"form": "demo"}), ("note", {})]


@pytest.fixture(scope="module")
def routing_inputs(django_db_setup, django_db_blocker):
    """Rules, candidates and counters loaded once and the rules compiled once (as the workers' cached
    plan holds them), each lead's facts prepared once."""
    from bench.jobs import routing_setup
    from leads.models import Lead
    from leads.selectors import lead_facts
    from routing import engine, selectors

    with django_db_blocker.unblock():
        routing_setup(argparse.Namespace(seed=SEED, **ROUTING))
        rules = selectors.engine_rules(selectors.rules())
        candidates = selectors.candidates({k for r in rules for k in r.candidates})
        counters = selectors.counters(r.id for r in rules)
        facts = [lead_facts(lead) for lead in Lead.objects.filter(source="bench-routing").order_by("pk")]
    timer = timezone.now()
    compiled = engine.compile_rules(rules)
    compile_ms = (timezone.now() - timer).total_seconds() * 1000
    return rules, compiled, candidates, counters, facts, compile_ms


def test_routing_engine_decide(benchmark, routing_inputs):
    from routing import engine

    rules, compiled, candidates, counters, facts, compile_ms = routing_inputs
    position = {r.id: i + 1 for i, r in enumerate(rules)}

    def decide_all():
        return [engine.decide(f, compiled, candidates, counters) for f in facts]

    decisions = benchmark(decide_all)

    # Every lead is placed (the last rule is a round-robin fallback), at a rule past the ~330 that
    # never match a generated lead, with a short trace (the compiled set skips what cannot match).
    assert len(decisions) == ROUTING["leads"]
    assert all(d.rule_id in position for d in decisions)
    positions = sorted(position[d.rule_id] for d in decisions)
    assert positions[0] > ROUTING["rules"] * 3 // 5 - 10
    traces = [len(d.trace) for d in decisions]
    assert max(traces) <= 4
    benchmark.extra_info.update(
        per_round=len(facts),
        unit="decisions",
        compile_ms=round(compile_ms, 1),
        rules=len(rules),
        conditions=sum(len(r.conditions) for r in rules),
        candidates=len(candidates),
        trace_entries={"mean": round(sum(traces) / len(traces), 1), "max": max(traces)},
        matched_rule_position={
            "min": positions[0],
            "p50": positions[len(positions) // 2],
            "max": positions[-1],
            "share_at_fallback": round(positions.count(len(rules)) / len(positions), 3),
        },
    )


def _pick(shares, u: float):
    """The first value whose cumulative share is above `u` (bench.datagen's tables)."""
    return next(value for value, share in shares if u < share)


@pytest.fixture(scope="module")
def scoring_inputs(django_db_setup, django_db_blocker):
    """The demo model as the engine gets it, and leads shaped as bench/datagen.py makes them (titles,
    industries, sizes, countries, some free-mail and competitor domains), 10 activities each over
    the last 180 days."""
    from leads.models import Lead
    from leads.selectors import lead_facts
    from scoring import engine, selectors
    from scoring.demo import create_demo_model

    with django_db_blocker.unblock():
        model = selectors.engine_model(create_demo_model(name="B2B default (bench)"))
    rng = random.Random(SEED)
    now = timezone.now()
    leads = []
    for i in range(SCORING_LEADS):
        u = rng.random()
        domain = (
            rng.choice(datagen.FREE_MAIL)
            if u < 0.08
            else rng.choice(datagen.COMPETITORS)
            if u < 0.09
            else f"company{i % 20_000}.example"
        )
        lead = Lead(
            email=f"lead{i}@{domain}",
            company_domain=domain,
            job_title=_pick(datagen.JOB_TITLES, rng.random()),
            industry=rng.choice(datagen.INDUSTRIES),
            company_size=None if rng.random() < 0.1 else rng.randrange(1, 100_000),
            country=rng.choice(datagen.COUNTRIES),
        )
        activities = [
            engine.ActivityFact(kind, now - timedelta(seconds=rng.randrange(180 * 86400)), props)
            for kind, props in (rng.choice(ACTIVITIES) for _ in range(ACTIVITIES_PER_LEAD))
        ]
        leads.append((lead_facts(lead), activities))
    return model, leads, now


def test_scoring_engine_score_lead(benchmark, scoring_inputs):
    from scoring import engine

    model, leads, now = scoring_inputs

    def score_all():
        return [engine.score_lead(model, facts, activities, now) for facts, activities in leads]

    scores = benchmark(score_all)

    assert len(scores) == SCORING_LEADS
    # C-level titles earn the demo model's 20 fit points; a competitor's domain disqualifies.
    by_title = Counter(facts["job_title"] for facts, _ in leads)
    c_level = sum(1 for s in scores if any(c.label == "C-level" for c in s.breakdown))
    assert c_level == sum(by_title[t] for t in ("CEO", "CTO", "CIO", "CFO"))
    competitors = sum(1 for facts, _ in leads if facts["company_domain"] in datagen.COMPETITORS)
    assert competitors > 0
    assert sum(1 for s in scores if s.disqualified) >= competitors
    benchmark.extra_info.update(
        per_round=len(leads),
        unit="leads",
        activities_per_lead=ACTIVITIES_PER_LEAD,
        fit_rules=len(model.fit_rules),
        behavior_rules=len(model.behavior_rules),
        exclusion_rules=len(model.exclusion_rules),
    )
