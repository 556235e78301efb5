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
