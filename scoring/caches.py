"""The scoring app's per-process caches (the kind and the registry: `leads.caches`)."""

from __future__ import annotations

from leads.caches import ProcessCache, clear_on_change

from .models import BehaviorRule, ExclusionRule, FitRule, ScoringModel

# Engine models by (pk, updated_at): a model is read-only once active (edits go to a clone), and
# (pk, updated_at) changes with any save, so another process's edit gives a new key. The active
# one and a full run's (the same, nearly always). `scoring.selectors.active_engine_model`.
engine_models = ProcessCache("scoring.engine_models", max_entries=8)

# The compiled SQL of one engine model's batch queries (PostgreSQL), by the model's version, with
# the engine model it was compiled from: an entry serves only that very object, so a model rebuilt
# after `engine_models` changed is compiled again. `scoring.sql.scores_compute_for`.
compiled_sql = ProcessCache("scoring.compiled_sql", max_entries=8)

for _cache in (engine_models, compiled_sql):
    clear_on_change(_cache, ScoringModel, FitRule, BehaviorRule, ExclusionRule)


def clear() -> None:
    """Empty the scoring app's caches."""
    engine_models.clear()
    compiled_sql.clear()
