from __future__ import annotations

import pytest

from leads.models import Lead, Stage, StageChange
from leads.tests.factories import LeadFactory
from scoring.models import BehaviorRule, FitRule, ScoringModel

# Through the API, these two events take `a_cto_in_mal()` from 20 (fit) to 60: over its model's 50.
EVENTS_TO_MQL = [
    {"email": "cto@acme.example", "type": "demo_request", "external_id": "d1", "source": "web"},
    {"email": "cto@acme.example", "type": "page_view", "properties": {"url": "/pricing"}},
]


def make_model(*, activate: bool = False, threshold: float = 50, min_grade: str = "C", **kwargs) -> ScoringModel:
    """A small model: CTO +20 fit; pricing page views +10 (latest 3); demo request +30; unsubscribe −40."""
    model = ScoringModel.objects.create(
        name=kwargs.pop("name", "Test model"),
        mql_threshold=threshold,
        min_grade=min_grade,
        half_life_days=kwargs.pop("half_life_days", 30),
        grade_a_min=30,
        grade_b_min=20,
        grade_c_min=10,
        **kwargs,
    )
    FitRule.objects.create(model=model, field="job_title", operator="eq", value="cto", points=20, label="CTO")
    BehaviorRule.objects.create(
        model=model,
        activity_type="page_view",
        property="url",
        operator="contains",
        value="/pricing",
        points=10,
        max_occurrences=3,
        label="Pricing page",
    )
    BehaviorRule.objects.create(model=model, activity_type="demo_request", points=30, label="Demo request")
    BehaviorRule.objects.create(model=model, activity_type="unsubscribe", points=-40, label="Unsubscribed")
    if activate:
        model.status = ScoringModel.Status.ACTIVE
        model.save(update_fields=["status"])
    return model


def inline_post(model, **fit_row):
    """The change form's POST with one new fit rule row."""
    data = {
        "name": model.name,
        "notes": "",
        "mql_threshold": model.mql_threshold,
        "min_grade": model.min_grade,
        "half_life_days": model.half_life_days,
        "grade_a_min": model.grade_a_min,
        "grade_b_min": model.grade_b_min,
        "grade_c_min": model.grade_c_min,
    }
    for prefix, count in (("fit_rules", 1), ("behavior_rules", 0), ("exclusion_rules", 0), ("changes", 0)):
        data |= {
            f"{prefix}-TOTAL_FORMS": count,
            f"{prefix}-INITIAL_FORMS": 0,
            f"{prefix}-MIN_NUM_FORMS": 0,
            f"{prefix}-MAX_NUM_FORMS": 1000,
        }
    data |= {f"fit_rules-0-{k}": v for k, v in {"label": "", "points": 5, **fit_row}.items()}
    return data


def a_cto_in_mal() -> Lead:
    """A CTO's lead in MAL under an active `make_model` that makes an MQL at 50 (see EVENTS_TO_MQL)."""
    make_model(activate=True, threshold=50)
    return LeadFactory(email="cto@acme.example", job_title="CTO", stage=Stage.MAL)


def is_mql(lead: Lead) -> bool:
    return Lead.objects.filter(pk=lead.pk, stage=Stage.MQL).exists()


def assert_made_mql_by_the_events(lead: Lead) -> None:
    """The lead scored as EVENTS_TO_MQL score it, and scoring (no person) moved it to MQL once."""
    lead.refresh_from_db()
    assert lead.score == pytest.approx(60, abs=1e-3)
    assert (lead.fit_score, lead.grade) == (20, "B")
    assert StageChange.objects.filter(lead=lead, to_stage=Stage.MQL, actor=None).count() == 1
