"""Set-based rescoring: the engine's rules compiled into SQL, for a range or a list of leads.

Per batch: one query computes every lead's fit (a CASE per rule), one aggregates the decayed
behaviour points per lead and rule (SUM … FILTER … GROUP BY lead), one more per rule that counts
only the latest N activities; Python then clamps, adds up and grades, and one statement writes the
batch back (PostgreSQL: UPDATE … FROM unnest(arrays) — Django's bulk_update builds a CASE per row,
which is quadratic at these batch sizes). Leads whose values did not change are not written.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import connection, transaction
from django.db.models import Case, F, FloatField, Func, Q, Sum, Value, When
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce, Greatest, Power

from leads.conditions import to_q
from leads.models import Activity, Lead

from . import engine


class AgeSeconds(Func):
    """Seconds from `occurred_at` to a given instant, on PostgreSQL and SQLite."""

    output_field = FloatField()

    def __init__(self, expression, now: datetime):
        super().__init__(expression)
        self.now = now

    def as_postgresql(self, compiler, connection):
        sql, params = compiler.compile(self.source_expressions[0])
        return f"EXTRACT(EPOCH FROM (%s::timestamptz - {sql}))::float8", [self.now, *params]

    def as_sqlite(self, compiler, connection):
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
    total = Value(0.0, output_field=FloatField())
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
    REPEATABLE READ transaction, which never waits and never fails on a conflict; SQLite's
    transactions are serialisable anyway. Inside an outer transaction (tests) it is that one's."""
    outermost = not transaction.get_connection().in_atomic_block
    with transaction.atomic():
        if outermost and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        yield


def compute(
    model: engine.Model,
    now: datetime,
    *,
    lead_ids: Sequence[int] | None = None,
    id_range: tuple[int, int] | None = None,
) -> list[LeadScore]:
    """Scores of the leads with these ids, or with ids in [low, high], computed in SQL."""
    if lead_ids is not None and connection.vendor == "postgresql":
        return _compute_compiled(model, now, list(lead_ids))
    if lead_ids is not None:
        leads, activities = Lead.objects.filter(pk__in=lead_ids), Activity.objects.filter(lead_id__in=lead_ids)
    elif id_range is not None:
        low, high = id_range
        leads = Lead.objects.filter(pk__gte=low, pk__lte=high)
        activities = Activity.objects.filter(lead_id__gte=low, lead_id__lte=high)
    else:
        raise ValueError("Give lead_ids or id_range.")
    fit, summed, latest = _queries(model, leads, activities, now)
    return _combine(
        model,
        list(fit),
        summed,
        list(summed[1]) if summed else [],
        [(rule, query.iterator(chunk_size=10_000)) for rule, query in latest],
    )


def _queries(model: engine.Model, leads, activities, now: datetime):
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


# Building these queries through the ORM costs far more than running them for a handful of leads
# (≈ 70 ms against a few ms), and workers rescore a handful at a time. On PostgreSQL the SQL is
# compiled once per model, with markers where the lead ids and the instant go.
_IDS_MARK: list[int] = []
_NOW_MARK = datetime(2000, 1, 1, tzinfo=UTC)
_compiled: tuple[engine.Model | None, dict] = (None, {})


def _compile(model: engine.Model) -> dict:
    global _compiled
    if _compiled[0] is model:
        return _compiled[1]
    ids = RawSQL("SELECT unnest(%s::bigint[])", (_IDS_MARK,))
    fit, summed, latest = _queries(
        model, Lead.objects.filter(pk__in=ids), Activity.objects.filter(lead_id__in=ids), _NOW_MARK
    )
    plan = {
        "fit": fit.query.sql_with_params(),
        "summed": (summed[0], summed[1].query.sql_with_params()) if summed else None,
        "latest": [(rule, query.query.sql_with_params()) for rule, query in latest],
    }
    _compiled = (model, plan)
    return plan


def _run(statement: tuple[str, tuple], lead_ids: list[int], now: datetime) -> list[tuple]:
    sql, params = statement
    bound = [lead_ids if p is _IDS_MARK else now if p is _NOW_MARK else p for p in params]
    with connection.cursor() as cursor:
        cursor.execute(sql, bound)
        return cursor.fetchall()


def _compute_compiled(model: engine.Model, now: datetime, lead_ids: list[int]) -> list[LeadScore]:
    plan = _compile(model)
    summed = plan["summed"]
    return _combine(
        model,
        _run(plan["fit"], lead_ids, now),
        (summed[0], None) if summed else None,
        _run(summed[1], lead_ids, now) if summed else [],
        [(rule, _run(statement, lead_ids, now)) for rule, statement in plan["latest"]],
    )


def _combine(model: engine.Model, fit_rows, summed, summed_rows, latest) -> list[LeadScore]:
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


def lock_state(lead_ids: Sequence[int]) -> dict[int, tuple]:
    """Lock these leads (id order, FOR NO KEY UPDATE, as `leads.services.lock_leads`) and read what
    storing a score depends on: {id: (score_rev, scored_rev, scoring_version, scored_at, stage)}.
    On PostgreSQL one statement with one array parameter (a batch is 20,000 leads: a list of that
    many placeholders costs more to build and send than the lock and the read)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT id, score_rev, scored_rev, scoring_version, scored_at, stage FROM leads_lead "
                "WHERE id = ANY(%s) ORDER BY id FOR NO KEY UPDATE",
                [list(lead_ids)],
            )
            return {row[0]: row[1:] for row in cursor.fetchall()}
    from leads.services import lock_leads

    lock_leads(lead_ids)
    rows = Lead.objects.filter(pk__in=list(lead_ids)).values_list(
        "pk", "score_rev", "scored_rev", "scoring_version", "scored_at", "stage"
    )
    return {row[0]: row[1:] for row in rows}


def delete_pending(lead_ids: Sequence[int]) -> None:
    """Delete these leads' pending rescoring rows (one array parameter on PostgreSQL)."""
    if not lead_ids:
        return
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM scoring_pendingrescore WHERE lead_id = ANY(%s)", [list(lead_ids)])
        return
    from .models import PendingRescore

    PendingRescore.objects.filter(lead_id__in=list(lead_ids)).delete()


def model_still_active(version: int) -> bool:
    """In a write transaction: whether this model is still the active one. On PostgreSQL the row is
    share-locked until the commit, so an activation (which locks it for update) waits for our write
    and then supersedes it with its full run, or our write sees it archived."""
    sql = "SELECT status FROM scoring_scoringmodel WHERE id = %s"
    if connection.vendor == "postgresql":
        sql += " FOR SHARE"
    with connection.cursor() as cursor:
        cursor.execute(sql, [version])
        row = cursor.fetchone()
    return row is not None and row[0] == "active"


def write(scores: Sequence[LeadScore], version: int, now: datetime) -> int:
    """Store the scores; rows whose values did not change are left alone. Returns rows written.
    The caller decides which scores may be written (scoring.services.scores_apply)."""
    if not scores:
        return 0
    ids = [s.lead_id for s in scores]
    fits = [s.fit for s in scores]
    engagements = [s.engagement for s in scores]
    totals = [s.total for s in scores]
    grades = [s.grade for s in scores]
    revs = [s.rev for s in scores]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                """
                UPDATE leads_lead AS l
                SET fit_score = v.fit, engagement_score = v.eng, score = v.total, grade = v.grade,
                    scored_at = %s, scoring_version = %s, scored_rev = v.rev
                FROM unnest(%s::bigint[], %s::float8[], %s::float8[], %s::float8[], %s::varchar[], %s::bigint[])
                     AS v(id, fit, eng, total, grade, rev)
                WHERE l.id = v.id
                  AND (l.fit_score, l.engagement_score, l.grade, l.scoring_version, l.scored_rev)
                      IS DISTINCT FROM (v.fit, v.eng, v.grade, %s, v.rev)
                """,
                [now, version, ids, fits, engagements, totals, grades, revs, version],
            )
            return cursor.rowcount
        cursor.executemany(
            """
            UPDATE leads_lead SET fit_score = %s, engagement_score = %s, score = %s, grade = %s,
                scored_at = %s, scoring_version = %s, scored_rev = %s
            WHERE id = %s AND NOT (fit_score = %s AND engagement_score = %s AND grade = %s
                                   AND scoring_version IS NOT NULL AND scoring_version = %s AND scored_rev = %s)
            """,
            [
                (
                    *(s.fit, s.engagement, s.total, s.grade, now, version, s.rev, s.lead_id),
                    *(s.fit, s.engagement, s.grade, version, s.rev),
                )
                for s in scores
            ],
        )
        return cursor.rowcount
