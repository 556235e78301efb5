"""Reads for scoring: the active model as engine data, and a lead as engine facts."""

from __future__ import annotations

from django.db.models import Prefetch

from leads.models import Activity, Lead

from . import caches, engine
from .models import ExclusionRule, ScoringModel


def active_model() -> ScoringModel | None:
    return ScoringModel.objects.filter(status=ScoringModel.Status.ACTIVE).first()


def active_model_id() -> int | None:
    return ScoringModel.objects.filter(status=ScoringModel.Status.ACTIVE).values_list("pk", flat=True).first()


def active_engine_model() -> engine.Model | None:
    """The active model as engine data, built once per process and model. One small query a call."""
    key = ScoringModel.objects.filter(status=ScoringModel.Status.ACTIVE).values_list("pk", "updated_at").first()
    return None if key is None else _cached(key)


def engine_model_of(pk: int) -> engine.Model:
    """Model `pk` as engine data (a full run's model, active or not), cached like the active one."""
    key = ScoringModel.objects.filter(pk=pk).values_list("pk", "updated_at").first()
    if key is None:
        raise ScoringModel.DoesNotExist(pk)
    return _cached(key)


def _cached(key: tuple) -> engine.Model:
    # By (pk, updated_at): see scoring.caches.engine_models.
    return caches.engine_models.get(key, lambda key: engine_model(model_with_rules(key[0])))


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
