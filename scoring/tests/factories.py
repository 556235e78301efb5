from __future__ import annotations

from scoring.models import BehaviorRule, FitRule, ScoringModel


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
