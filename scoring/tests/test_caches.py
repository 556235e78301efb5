"""scoring/caches.py: the engine models and their compiled SQL follow saves and deletes of the rules."""

from datetime import UTC, datetime

import pytest

from leads.tests.factories import LeadFactory
from scoring import caches, selectors, sql
from scoring.models import BehaviorRule, FitRule
from scoring.tests.factories import make_model

pytestmark = pytest.mark.django_db


def test_the_active_engine_model_is_rebuilt_after_a_rule_is_saved_or_deleted():
    model = make_model(activate=True, threshold=50)
    before = selectors.active_engine_model()
    assert selectors.active_engine_model() is before  # kept
    assert [r.points for r in before.fit_rules] == [20]

    rule = FitRule.objects.get(model=model)
    rule.points = 35  # the model row itself is not saved: its (pk, updated_at) stays the same
    rule.save()
    assert len(caches.engine_models) == 0
    assert [r.points for r in selectors.active_engine_model().fit_rules] == [35]

    BehaviorRule.objects.filter(model=model, label="Unsubscribed").get().delete()
    assert [r.label for r in selectors.active_engine_model().behavior_rules] == ["Pricing page", "Demo request"]


def test_a_model_save_rebuilds_it_and_empties_the_compiled_sql():
    model = make_model(activate=True, threshold=50)
    engine_model = selectors.active_engine_model()
    caches.compiled_sql.set(engine_model.version, (engine_model, {"fit": ("SELECT 1", ())}))

    model.mql_threshold = 65
    model.save()

    assert (len(caches.engine_models), len(caches.compiled_sql)) == (0, 0)
    assert selectors.active_engine_model().mql_threshold == 65


def test_clear_empties_both_caches():
    make_model(activate=True)
    model = selectors.active_engine_model()
    lead = LeadFactory(job_title="cto")
    (score,) = sql.scores_compute_for(model, datetime(2026, 3, 2, tzinfo=UTC), [lead.pk])
    assert score.fit == 20
    assert len(caches.engine_models) == 1
    caches.compiled_sql.set(model.version, (model, {}))
    caches.clear()
    assert (len(caches.engine_models), len(caches.compiled_sql)) == (0, 0)
