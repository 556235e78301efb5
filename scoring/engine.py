"""The scoring engine: plain data in, a score and its breakdown out. No ORM, no I/O.

score = fit + engagement
- fit: the points of every fit rule whose condition the lead meets, plus exclusion penalties;
  the grade (A–D) comes from the fit score and the model's bands.
- engagement: for every behaviour rule, the activities of its type (and property condition) each
  give `points × 0.5^(age / half-life)`; a rule counts at most its latest `max_occurrences`
  activities, and its total is clamped to ±`max_points`. An activity dated in the future counts as
  age 0.
`scoring.bulk` compiles the same rules into SQL for set-based rescoring; a test keeps both equal.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from leads.conditions import Condition, evaluate

SECONDS_PER_DAY = 86_400.0
GRADES = ("A", "B", "C", "D")


@dataclass(frozen=True)
class FitRule:
    id: int
    condition: Condition
    points: float
    label: str = ""


@dataclass(frozen=True)
class ExclusionRule:
    id: int
    condition: Condition
    disqualify: bool
    points: float = 0.0
    label: str = ""


@dataclass(frozen=True)
class BehaviorRule:
    id: int
    activity_type: str
    points: float
    condition: Condition | None = None
    max_points: float | None = None
    max_occurrences: int | None = None
    label: str = ""


@dataclass(frozen=True)
class Model:
    version: int
    half_life_days: float
    mql_threshold: float
    min_grade: str
    grade_bands: tuple[float, float, float]  # minimum fit for A, B, C
    fit_rules: tuple[FitRule, ...] = ()
    behavior_rules: tuple[BehaviorRule, ...] = ()
    exclusion_rules: tuple[ExclusionRule, ...] = ()


@dataclass(frozen=True)
class ActivityFact:
    type: str
    occurred_at: datetime
    properties: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Contribution:
    kind: str  # "fit", "exclusion" or "behavior"
    rule_id: int
    label: str
    raw: float  # points before decay and caps
    points: float  # what it adds to the score
    occurrences: int = 1


@dataclass(frozen=True)
class Score:
    fit: float
    engagement: float
    grade: str
    disqualified: bool
    breakdown: tuple[Contribution, ...]

    @property
    def total(self) -> float:
        return self.fit + self.engagement


def decay(age_seconds: float, half_life_days: float) -> float:
    """The share of its points an activity keeps after `age_seconds` (1.0 when new or future-dated)."""
    return 0.5 ** (max(age_seconds, 0.0) / (half_life_days * SECONDS_PER_DAY))


def grade_for(fit: float, bands: tuple[float, float, float]) -> str:
    for grade, minimum in zip(GRADES, bands, strict=False):
        if fit >= minimum:
            return grade
    return "D"


def qualifies_for_mql(model: Model, total: float, grade: str, disqualified: bool = False) -> bool:
    """Score at or above the threshold and a grade at least as good as the minimum (A is best)."""
    return not disqualified and total >= model.mql_threshold and grade <= model.min_grade


def score_lead(model: Model, lead: Mapping[str, Any], activities: Iterable[ActivityFact], now: datetime) -> Score:
    """Score one lead at the instant `now`. The breakdown lists every rule that contributed."""
    breakdown: list[Contribution] = []
    fit = 0.0
    disqualified = False
    for fit_rule in model.fit_rules:
        if evaluate(fit_rule.condition, lead):
            fit += fit_rule.points
            breakdown.append(Contribution("fit", fit_rule.id, fit_rule.label, fit_rule.points, fit_rule.points))
    for exclusion in model.exclusion_rules:
        if evaluate(exclusion.condition, lead):
            if exclusion.disqualify:
                disqualified = True
                breakdown.append(Contribution("exclusion", exclusion.id, exclusion.label, 0.0, 0.0))
            else:
                fit += exclusion.points
                breakdown.append(
                    Contribution("exclusion", exclusion.id, exclusion.label, exclusion.points, exclusion.points)
                )

    activities = list(activities)
    engagement = 0.0
    for rule in model.behavior_rules:
        matching = [
            a
            for a in activities
            if a.type == rule.activity_type and (rule.condition is None or evaluate(rule.condition, a.properties))
        ]
        if not matching:
            continue
        if rule.max_occurrences is not None:
            # The latest N count; activities at the same instant are interchangeable.
            matching = sorted(matching, key=lambda a: a.occurred_at, reverse=True)[: rule.max_occurrences]
        points = sum(rule.points * decay((now - a.occurred_at).total_seconds(), model.half_life_days) for a in matching)
        if rule.max_points is not None:
            points = max(-rule.max_points, min(rule.max_points, points))
        engagement += points
        breakdown.append(
            Contribution("behavior", rule.id, rule.label, rule.points * len(matching), points, len(matching))
        )
    return Score(fit, engagement, grade_for(fit, model.grade_bands), disqualified, tuple(breakdown))
