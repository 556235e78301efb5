"""Set-based rescoring: the engine's rules compiled into SQL, for a range or a list of leads.

Per batch: one query computes every lead's fit (a CASE per rule), one aggregates the decayed
behaviour points per lead and rule (SUM … FILTER … GROUP BY lead), one more per rule that counts
only the latest N activities; Python then clamps, adds up and grades. How those queries reach the
database (compiled once per model on PostgreSQL) and the statements that lock and write the batch
back are in `scoring/sql.py`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import transaction
from django.db.models import Case, F, FloatField, Func, Q, Sum, Value, When
from django.db.models.expressions import CombinedExpression
from django.db.models.functions import Coalesce, Greatest, Power

from leads.conditions import to_q
from leads.models import Activity, Lead

from . import engine, sql


class AgeSeconds(Func):
    """Seconds from `occurred_at` to a given instant, on PostgreSQL and SQLite."""

    output_field = FloatField()

    def __init__(self, expression, now: datetime):
        super().__init__(expression)
        self.now = now

    def as_postgresql(self, compiler, connection):
        sql, params = compiler.compile(self.source_expressions[0])
        return f"EXTRACT(EPOCH FROM (%s::timestamptz - {sql}))::float8", [self.now, *params]

    def as_sqlite(self, compiler, connection, **extra_context):
        sql, params = compiler.compile(self.source_expressions[0])
        stamp = self.now.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")  # as Django stores it
        return f"((julianday(%s) - julianday({sql})) * 86400.0)", [stamp, *params]


def decayed(points: float, model: engine.Model, now: datetime):
    half_life = model.half_life_days * engine.SECONDS_PER_DAY
    age = Greatest(AgeSeconds(F("occurred_at"), now), Value(0.0))
    return Value(float(points)) * Power(Value(0.5), age / Value(half_life))


def fit_expression(model: engine.Model):
    terms = [Case(When(to_q(r.condition), then=Value(float(r.points))), default=Value(0.0)) for r in model.fit_rules]
    terms += [
        Case(When(to_q(r.condition), then=Value(float(r.points))), default=Value(0.0))
        for r in model.exclusion_rules
        if not r.disqualify
    ]
    total: Value | CombinedExpression = Value(0.0, output_field=FloatField())
    for term in terms:
        total = total + term
    return total


def disqualify_expression(model: engine.Model):
    rules = [r for r in model.exclusion_rules if r.disqualify]
    if not rules:
        return Value(False)
    q = Q()
    for rule in rules:
        q |= to_q(rule.condition)
    return Case(When(q, then=Value(True)), default=Value(False))


def behavior_q(rule: engine.BehaviorRule) -> Q:
    q = Q(type=rule.activity_type)
    if rule.condition is not None:
        q &= to_q(rule.condition, prefix="properties__")
    return q


@dataclass(frozen=True)
class LeadScore:
    lead_id: int
    stage: str
    fit: float
    engagement: float
    grade: str
    disqualified: bool
    rev: int = 0  # the lead's score_rev the computation read (its inputs as of that revision)

    @property
    def total(self) -> float:
        return self.fit + self.engagement


@contextmanager
def snapshot() -> Iterator[None]:
    """Run the queries of one computation in one snapshot: the fit query and the behaviour queries
    must see the same committed activities (under READ COMMITTED each statement sees its own, and an
    event batch committed between two of them would be half counted). On PostgreSQL a read-only
    REPEATABLE READ transaction (`sql.snapshot_begin`); SQLite's transactions are serialisable
    anyway. Inside an outer transaction (tests) it is that one's."""
    outermost = not transaction.get_connection().in_atomic_block
    with transaction.atomic():
        if outermost:
            sql.snapshot_begin()
        yield


def compute(
    model: engine.Model,
    now: datetime,
    *,
    lead_ids: Sequence[int] | None = None,
    id_range: tuple[int, int] | None = None,
) -> list[LeadScore]:
    """Scores of the leads with these ids (`sql.scores_compute_for`), or with ids in [low, high],
    computed in SQL."""
    if lead_ids is not None:
        return sql.scores_compute_for(model, now, list(lead_ids))
    if id_range is None:
        raise ValueError("Give lead_ids or id_range.")
    low, high = id_range
    return compute_queries(
        model,
        now,
        Lead.objects.filter(pk__gte=low, pk__lte=high),
        Activity.objects.filter(lead_id__gte=low, lead_id__lte=high),
    )


def compute_queries(model: engine.Model, now: datetime, leads, activities) -> list[LeadScore]:
    """Scores of `leads` (a queryset) from `activities` (those of the same leads), through the ORM."""
    fit, summed, latest = queries(model, leads, activities, now)
    return combine(
        model,
        list(fit),
        summed,
        list(summed[1]) if summed else [],
        [(rule, query.iterator(chunk_size=10_000)) for rule, query in latest],
    )


def queries(model: engine.Model, leads, activities, now: datetime):
    """The queries of one batch: fit (with disqualification), the summed behaviour rules, and one
    per rule that counts only the latest N activities."""
    fit = (
        leads.annotate(_fit=fit_expression(model), _dq=disqualify_expression(model))
        .order_by("pk")
        .values_list("pk", "stage", "_fit", "_dq", "score_rev")
    )
    summed_rules = [r for r in model.behavior_rules if r.max_occurrences is None]
    summed = None
    if summed_rules:
        aggregates = {
            f"r{i}": Coalesce(Sum(decayed(r.points, model, now), filter=behavior_q(r)), Value(0.0))
            for i, r in enumerate(summed_rules)
        }
        types = {r.activity_type for r in summed_rules}
        summed = (
            summed_rules,
            activities.filter(type__in=types)
            .values("lead_id")
            .annotate(**aggregates)
            .values_list("lead_id", *aggregates),
        )
    latest = [
        (
            rule,
            activities.filter(behavior_q(rule))
            .annotate(_points=decayed(rule.points, model, now))
            .order_by("lead_id", "-occurred_at")
            .values_list("lead_id", "_points"),
        )
        for rule in model.behavior_rules
        if rule.max_occurrences is not None
    ]
    return fit, summed, latest


def combine(model: engine.Model, fit_rows, summed, summed_rows, latest) -> list[LeadScore]:
    """Clamp, add up and grade what the queries returned."""
    per_rule: dict[int, dict[int, float]] = defaultdict(dict)  # rule id → lead id → points
    if summed:
        for row in summed_rows:
            for rule, points in zip(summed[0], row[1:], strict=True):
                if points:
                    per_rule[rule.id][row[0]] = points
    for rule, rows in latest:
        counted: dict[int, int] = defaultdict(int)
        for lead_id, points in rows:
            if counted[lead_id] < rule.max_occurrences:
                counted[lead_id] += 1
                per_rule[rule.id][lead_id] = per_rule[rule.id].get(lead_id, 0.0) + points

    caps = {r.id: r.max_points for r in model.behavior_rules}
    scores = []
    for lead_id, stage, fit, dq, rev in fit_rows:
        engagement = 0.0
        for rule_id, by_lead in per_rule.items():
            points = by_lead.get(lead_id)
            if points is None:
                continue
            cap = caps[rule_id]
            engagement += points if cap is None else max(-cap, min(cap, points))
        fit = float(fit)
        grade = engine.grade_for(fit, model.grade_bands)
        scores.append(LeadScore(lead_id, stage, fit, engagement, grade, bool(dq), rev))
    return scores
