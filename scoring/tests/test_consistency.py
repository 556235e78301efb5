"""The engine (per lead, plain data) and the set-based SQL rescoring must give the same scores."""

import math
import random
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings

from leads import selectors as lead_selectors
from leads.models import Activity, Lead
from scoring import bulk, engine, selectors, sql
from scoring.tests.strategies import ASSETS, COUNTRIES, DOMAINS, INDUSTRIES, NOW, TITLES, TYPES, URLS, models

LEADS = 120


@pytest.fixture
def data_set(db):
    """120 leads with 0–25 activities each, drawn from a fixed seed."""
    rnd = random.Random(7)
    leads = Lead.objects.bulk_create(
        Lead(
            email=f"lead{i}@{rnd.choice(DOMAINS)}",
            job_title=rnd.choice(TITLES),
            industry=rnd.choice(INDUSTRIES),
            country=rnd.choice(COUNTRIES),
            company_size=rnd.choice([None, rnd.randint(1, 20_000)]),
            annual_revenue=rnd.choice([None, rnd.randint(0, 10**9)]),
            company_domain=rnd.choice(DOMAINS),
        )
        for i in range(LEADS)
    )
    leads = list(Lead.objects.order_by("pk"))
    Activity.objects.bulk_create(
        Activity(
            lead=lead,
            type=rnd.choice(TYPES),
            occurred_at=NOW - timedelta(seconds=rnd.randint(-3600, 200 * 86_400)),
            properties=rnd.choice([{"url": rnd.choice(URLS)}, {"asset": rnd.choice(ASSETS)}, {}]),
        )
        for lead in leads
        for _ in range(rnd.randint(0, 25))
    )
    return {lead.pk: (lead_selectors.lead_facts(lead), selectors.activity_facts(lead)) for lead in leads}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(model=models())
def test_bulk_rescoring_gives_the_engines_score_for_every_lead(data_set, model):
    ids = sorted(data_set)
    by_sql = {s.lead_id: s for s in bulk.compute(model, NOW, id_range=(ids[0], ids[-1]))}

    assert set(by_sql) == set(ids)
    for lead_id, (facts, activities) in data_set.items():
        expected = engine.score_lead(model, facts, activities, NOW)
        got = by_sql[lead_id]
        assert math.isclose(got.fit, expected.fit, abs_tol=1e-6), lead_id
        assert math.isclose(got.engagement, expected.engagement, rel_tol=1e-9, abs_tol=1e-6), lead_id
        assert got.grade == expected.grade, lead_id
        assert got.disqualified == expected.disqualified, lead_id


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(model=models())
def test_rescoring_twice_changes_nothing(data_set, model):
    ids = sorted(data_set)
    first = bulk.compute(model, NOW, id_range=(ids[0], ids[-1]))
    sql.scores_write(first, 1, NOW)
    stored = list(Lead.objects.order_by("pk").values_list("fit_score", "engagement_score", "score", "grade"))

    again = bulk.compute(model, NOW, id_range=(ids[0], ids[-1]))
    written = sql.scores_write(again, 1, NOW)

    assert again == first
    assert written == 0
    assert list(Lead.objects.order_by("pk").values_list("fit_score", "engagement_score", "score", "grade")) == stored


def test_the_same_lead_ids_by_list_or_range_give_the_same_scores(data_set):
    model = engine.Model(
        1,
        30.0,
        50.0,
        "C",
        (30.0, 20.0, 10.0),
        behavior_rules=(engine.BehaviorRule(1, "webinar", 10, max_occurrences=2),),
    )
    ids = sorted(data_set)
    assert bulk.compute(model, NOW, lead_ids=ids) == bulk.compute(model, NOW, id_range=(ids[0], ids[-1]))
