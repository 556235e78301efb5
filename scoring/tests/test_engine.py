"""Properties of the pure scoring engine (hypothesis), plus a few worked examples."""

import math
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from leads.conditions import lead_condition, property_condition
from scoring import engine
from scoring.tests.strategies import NOW, activity, lead_facts, models

PROPERTY_SETTINGS = settings(max_examples=200, deadline=None)


@PROPERTY_SETTINGS
@given(models(), lead_facts, st.lists(activity, max_size=30))
def test_the_breakdown_adds_up_to_the_total(model, lead, activities):
    score = engine.score_lead(model, lead, activities, NOW)
    fit = sum(c.points for c in score.breakdown if c.kind in ("fit", "exclusion"))
    engagement = sum(c.points for c in score.breakdown if c.kind == "behavior")
    assert math.isclose(score.fit, fit, abs_tol=1e-9)
    assert math.isclose(score.engagement, engagement, abs_tol=1e-9)
    assert math.isclose(score.total, fit + engagement, abs_tol=1e-9)


@PROPERTY_SETTINGS
@given(models(), lead_facts, st.lists(activity, max_size=30))
def test_caps_hold(model, lead, activities):
    score = engine.score_lead(model, lead, activities, NOW)
    rules = {r.id: r for r in model.behavior_rules}
    for contribution in (c for c in score.breakdown if c.kind == "behavior"):
        rule = rules[contribution.rule_id]
        if rule.max_points is not None:
            assert abs(contribution.points) <= rule.max_points + 1e-9
        if rule.max_occurrences is not None:
            assert contribution.occurrences <= rule.max_occurrences


@PROPERTY_SETTINGS
@given(models(), lead_facts, st.lists(activity, max_size=30), st.randoms())
def test_the_order_of_activities_does_not_matter(model, lead, activities, rnd):
    shuffled = list(activities)
    rnd.shuffle(shuffled)
    a, b = engine.score_lead(model, lead, activities, NOW), engine.score_lead(model, lead, shuffled, NOW)
    assert math.isclose(a.total, b.total, abs_tol=1e-9)
    assert a.grade == b.grade


@PROPERTY_SETTINGS
@given(models(), lead_facts, st.lists(activity, max_size=30), st.integers(0, 400 * 86_400))
def test_decay_never_makes_a_contribution_larger(model, lead, activities, later_seconds):
    now, later = NOW, NOW + timedelta(seconds=later_seconds)
    before = {c.rule_id: c.points for c in engine.score_lead(model, lead, activities, now).breakdown}
    after = {c.rule_id: c.points for c in engine.score_lead(model, lead, activities, later).breakdown}
    for rule_id, points in after.items():
        assert abs(points) <= abs(before[rule_id]) + 1e-9


@PROPERTY_SETTINGS
@given(models(positive_behavior=True), lead_facts, st.lists(activity, max_size=30), st.integers(0, 400 * 86_400))
def test_with_positive_behaviour_points_time_never_raises_the_score(model, lead, activities, later_seconds):
    later = NOW + timedelta(seconds=later_seconds)
    assert (
        engine.score_lead(model, lead, activities, later).total
        <= engine.score_lead(model, lead, activities, NOW).total + 1e-9
    )


@PROPERTY_SETTINGS
@given(models(), lead_facts, st.lists(activity, max_size=30))
def test_scoring_is_deterministic(model, lead, activities):
    assert engine.score_lead(model, lead, activities, NOW) == engine.score_lead(model, lead, activities, NOW)


def model_with(**kwargs):
    defaults = {
        "version": 1,
        "half_life_days": 10.0,
        "mql_threshold": 50.0,
        "min_grade": "C",
        "grade_bands": (30.0, 20.0, 10.0),
    }
    return engine.Model(**{**defaults, **kwargs})


def test_a_worked_example():
    model = model_with(
        fit_rules=(engine.FitRule(1, lead_condition("job_title", "in", "cto, ceo"), 20, "C-level"),),
        behavior_rules=(
            engine.BehaviorRule(
                2, "page_view", 10, condition=property_condition("url", "contains", "/pricing"), max_occurrences=2
            ),
            engine.BehaviorRule(3, "email_open", 4, max_points=6),
        ),
    )
    activities = [
        engine.ActivityFact("page_view", NOW, {"url": "/pricing"}),
        engine.ActivityFact("page_view", NOW - timedelta(days=10), {"url": "/Pricing/enterprise"}),
        engine.ActivityFact("page_view", NOW - timedelta(days=20), {"url": "/pricing"}),  # third: not counted
        engine.ActivityFact("page_view", NOW, {"url": "/blog"}),  # wrong url
        engine.ActivityFact("email_open", NOW, {}),
        engine.ActivityFact("email_open", NOW, {}),  # 8 points, capped at 6
    ]

    score = engine.score_lead(model, {"job_title": "CTO"}, activities, NOW)

    assert (score.fit, score.engagement, score.total, score.grade) == (20.0, 10 + 5 + 6, 41.0, "B")
    assert [(c.rule_id, c.raw, c.points, c.occurrences) for c in score.breakdown] == [
        (1, 20, 20, 1),
        (2, 20, 15.0, 2),
        (3, 8, 6, 2),
    ]
    assert not engine.qualifies_for_mql(model, score.total, score.grade)
    assert engine.qualifies_for_mql(model, 50.0, "C") and not engine.qualifies_for_mql(model, 50.0, "D")


def test_an_activity_loses_half_its_points_per_half_life():
    model = model_with(behavior_rules=(engine.BehaviorRule(1, "webinar", 16),))
    old = [engine.ActivityFact("webinar", NOW - timedelta(days=20), {})]
    assert engine.score_lead(model, {}, old, NOW).engagement == 4.0
    future = [engine.ActivityFact("webinar", NOW + timedelta(minutes=5), {})]
    assert engine.score_lead(model, {}, future, NOW).engagement == 16.0


def test_exclusions_disqualify_or_penalise():
    model = model_with(
        exclusion_rules=(
            engine.ExclusionRule(1, lead_condition("email", "domain_in", "gmail.com"), disqualify=False, points=-40),
            engine.ExclusionRule(2, lead_condition("job_title", "contains", "journalist"), disqualify=True),
        ),
    )
    assert engine.score_lead(model, {"email": "x@gmail.com"}, [], NOW).fit == -40
    assert engine.score_lead(model, {"email": "x@gmail.com"}, [], NOW).grade == "D"
    press = engine.score_lead(model, {"job_title": "Senior Journalist"}, [], NOW)
    assert press.disqualified and not engine.qualifies_for_mql(model, 999, "A", press.disqualified)
