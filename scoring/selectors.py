"""Reads for scoring: the active model as engine data, and a lead as engine facts."""

from __future__ import annotations

from django.db.models import Prefetch

from leads.models import Activity, Lead

from . import engine
from .models import ExclusionRule, ScoringModel


def active_model() -> ScoringModel | None:
    return ScoringModel.objects.filter(status=ScoringModel.Status.ACTIVE).first()


def active_model_id() -> int | None:
    return ScoringModel.objects.filter(status=ScoringModel.Status.ACTIVE).values_list("pk", flat=True).first()


_engine_models: dict[tuple, engine.Model] = {}


def active_engine_model() -> engine.Model | None:
    """The active model as engine data, built once per process and model: a model is read-only once
    active (edits go to a clone), and (pk, updated_at) changes with any save. One small query a call."""
    key = ScoringModel.objects.filter(status=ScoringModel.Status.ACTIVE).values_list("pk", "updated_at").first()
    if key is None:
        return None
    if key not in _engine_models:
        _engine_models.clear()  # only the active one is worth keeping
        _engine_models[key] = engine_model(model_with_rules(key[0]))
    return _engine_models[key]


_models_by_id: dict[tuple, engine.Model] = {}


def engine_model_of(pk: int) -> engine.Model:
    """Model `pk` as engine data (a full run's model, active or not), cached like the active one."""
    key = ScoringModel.objects.filter(pk=pk).values_list("pk", "updated_at").first()
    if key is None:
        raise ScoringModel.DoesNotExist(pk)
    if key not in _models_by_id:
        if len(_models_by_id) > 8:
            _models_by_id.clear()
        _models_by_id[key] = engine_model(model_with_rules(pk))
    return _models_by_id[key]


def model_with_rules(pk: int) -> ScoringModel:
    return ScoringModel.objects.prefetch_related(
        Prefetch("fit_rules"), Prefetch("behavior_rules"), Prefetch("exclusion_rules")
    ).get(pk=pk)


def engine_model(model: ScoringModel) -> engine.Model:
    """The rules of `model` as plain engine data (conditions parsed and validated)."""
    return engine.Model(
        version=model.pk,
        half_life_days=model.half_life_days,
        mql_threshold=model.mql_threshold,
        min_grade=model.min_grade,
        grade_bands=(model.grade_a_min, model.grade_b_min, model.grade_c_min),
        fit_rules=tuple(
            engine.FitRule(r.pk, r.condition(), r.points, r.label or str(r)) for r in model.fit_rules.all()
        ),
        behavior_rules=tuple(
            engine.BehaviorRule(
                r.pk,
                r.activity_type,
                r.points,
                condition=r.condition(),
                max_points=r.max_points,
                max_occurrences=r.max_occurrences,
                label=r.label or str(r),
            )
            for r in model.behavior_rules.all()
        ),
        exclusion_rules=tuple(
            engine.ExclusionRule(
                r.pk,
                r.condition(),
                disqualify=r.action == ExclusionRule.Action.DISQUALIFY,
                points=r.points,
                label=r.label or str(r),
            )
            for r in model.exclusion_rules.all()
        ),
    )


def activity_facts(lead: Lead) -> list[engine.ActivityFact]:
    rows = Activity.objects.filter(lead=lead).values_list("type", "occurred_at", "properties")
    return [engine.ActivityFact(kind, at, props or {}) for kind, at, props in rows]
