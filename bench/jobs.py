"""The Django side of the scoring and routing suites: `python -m bench.jobs <job> --out result.json`.

Each job runs in a process of its own, started by the suite with the environment of the database
it works on (DATABASE_URL, settings module, REDIS_URL or not): Django can be set up only once per
process, and the suites use several databases. The jobs call the app's services exactly as its
Celery tasks do (no HTTP), time them, and write a JSON document the suite reads back. Nothing here
changes the app; a few service-module attributes are wrapped with timers (never altered).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import django

from bench.report import percentiles

JOBS: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {}


def job(fn: Callable[[argparse.Namespace], dict[str, Any]]) -> Callable[[argparse.Namespace], dict[str, Any]]:
    JOBS[fn.__name__.replace("_", "-")] = fn
    return fn


def _dbname() -> str:
    from django.db import connection

    return connection.settings_dict["NAME"]


class Timers:
    """Wall time spent inside some functions, wrapped in place for the duration of a job."""

    def __init__(self) -> None:
        self.seconds: Counter = Counter()
        self.calls: Counter = Counter()
        self.values: dict[str, list] = defaultdict(list)

    @contextmanager
    def wrap(self, owner: Any, name: str, label: str, keep_result: bool = False):
        original = getattr(owner, name)

        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                result = original(*args, **kwargs)
            finally:
                self.seconds[label] += time.perf_counter() - start
                self.calls[label] += 1
            if keep_result:
                self.values[label].append(result)
            return result

        setattr(owner, name, timed)
        try:
            yield
        finally:
            setattr(owner, name, original)

    def as_dict(self) -> dict[str, dict[str, float]]:
        return {k: {"s": round(v, 3), "calls": self.calls[k]} for k, v in self.seconds.items()}


@contextmanager
def replaced(owner: Any, name: str, value: Any):
    """Set an attribute for the duration of a block (here: a task's .delay collects instead of sending)."""
    original = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, original)


class QueryClock:
    """Time of every SQL statement Django executes, by kind (connection.execute_wrapper). Rows that a
    server-side cursor fetches later (QuerySet.iterator) are not in it: they count as Python."""

    def __init__(self, classify: Callable[[str], str]) -> None:
        self.classify = classify
        self.seconds: Counter = Counter()
        self.calls: Counter = Counter()

    def __call__(self, execute, sql, params, many, context):
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            kind = self.classify(sql)
            self.seconds[kind] += time.perf_counter() - start
            self.calls[kind] += 1

    def as_dict(self) -> dict[str, dict[str, float]]:
        return {k: {"s": round(v, 3), "calls": self.calls[k]} for k, v in self.seconds.most_common()}


def _scoring_sql_kind(sql: str) -> str:
    head = sql.lstrip()[:200].upper()
    if head.startswith("UPDATE") and "LEADS_LEAD" in head:
        return "write scores (UPDATE … FROM unnest)"
    if "SUM(" in sql.upper() and "GROUP BY" in sql.upper():
        return "behaviour sums (SUM … FILTER … GROUP BY lead)"
    if "ORDER BY" in sql.upper() and '"OCCURRED_AT" DESC' in sql.upper():
        return "latest-N rules (ordered activities)"
    if "CASE WHEN" in sql.upper() and '"LEADS_LEAD"' in sql.upper():
        return "fit (CASE per rule)"
    if "SCORING_RESCORERUN" in head or "SCORING_" in head:
        return "run / model bookkeeping"
    if "LEADS_LEAD" in head and "LIMIT" in sql.upper():
        return "batch bounds (OFFSET … LIMIT)"
    return "other"


# --- scoring ---------------------------------------------------------------------------------

# (type, properties) of the incremental run's events: what the demo BEHAVIOR rules score.
EVENT_KINDS = [
    ("page_view", {"url": "/pricing"}),
    ("page_view", {"url": "/blog/post-7"}),
    ("email_open", {"campaign": "nl-9"}),
    ("email_click", {"campaign": "nl-9"}),
    ("download", {"asset": "whitepaper-3"}),
    ("webinar", {"webinar": "w-4"}),
    ("form_submit", {"form": "contact"}),
]


@job
def scoring_model(args: argparse.Namespace) -> dict[str, Any]:
    """Without an active model: the demo model (scoring.demo's rule lists), made active directly
    (no rescoring run is started). With one: a weight change — clone it, add `--bump` points to the
    "Viewed pricing" rule, archive the old version and make the clone active, directly."""
    from django.db import transaction
    from django.utils import timezone

    from scoring import services
    from scoring.demo import create_demo_model
    from scoring.models import ScoringModel

    active = ScoringModel.objects.filter(status=ScoringModel.Status.ACTIVE).first()
    with transaction.atomic():
        if active is None:
            model = create_demo_model(name="B2B default (bench)")
            change = "demo model created"
        else:
            model = services.scoring_model_clone(source=active, name=f"{active.name} +{args.bump:g}")
            rule = model.behavior_rules.filter(activity_type="page_view", property="url").first()
            rule = rule or model.behavior_rules.first()
            rule.points += args.bump
            rule.save(update_fields=["points"])
            ScoringModel.objects.filter(pk=active.pk).update(status=ScoringModel.Status.ARCHIVED)
            change = f"v{active.pk} → v{model.pk}: rule '{rule.label}' {rule.points - args.bump:g} → {rule.points:g}"
        ScoringModel.objects.filter(pk=model.pk).update(status=ScoringModel.Status.ACTIVE, activated_at=timezone.now())
    return {"model": model.pk, "change": change}


@job
def rescore(args: argparse.Namespace) -> dict[str, Any]:
    """A full rescoring as the worker runs it: a RescoreRun row, then rescore_run_step (handed the cursor
    it returned) until it returns None."""
    from django.conf import settings
    from django.db import connection
    from django.utils import timezone

    from bench.environment import Meter
    from leads.models import Lead
    from scoring import bulk, services, sql
    from scoring.models import RescoreRun, ScoringModel

    model = ScoringModel.objects.get(status=ScoringModel.Status.ACTIVE)
    batch_size = args.batch_size or settings.SCORING_RESCORE_BATCH
    run = RescoreRun.objects.create(
        model=model,
        kind=RescoreRun.Kind.ACTIVATION,
        as_of=timezone.now(),
        total=Lead.objects.count(),
        batch_size=batch_size,
    )
    timers, clock = Timers(), QueryClock(_scoring_sql_kind)
    steps: list[float] = []
    with (
        timers.wrap(bulk, "compute", "bulk.compute"),
        timers.wrap(sql, "scores_write", "bulk.write", keep_result=True),
        timers.wrap(services, "scores_apply", "scores_apply", keep_result=True),
        connection.execute_wrapper(clock),
        Meter(_dbname()) as meter,
    ):
        # rescore_run_step returns the run's new cursor while more remain, None when done (or
        # superseded); the cursor is handed back, as the task chain does.
        cursor, began = run.cursor, time.perf_counter()
        while cursor is not None:
            start = time.perf_counter()
            cursor = services.rescore_run_step(run_id=run.pk, cursor=cursor)
            steps.append(time.perf_counter() - start)
            if cursor is not None and args.max_seconds and start - began + steps[-1] >= args.max_seconds:
                break  # capped: the rate so far gives the projection; the run stays "running"
    run.refresh_from_db()
    elapsed = meter.elapsed
    capped = run.status == RescoreRun.Status.RUNNING
    batch_steps = steps if capped else steps[:-1]  # the last step of a finished run only marks it done
    return {
        "run": run.pk,
        "model": model.pk,
        "status": run.status,
        "capped": capped,
        "total_leads": run.total,
        "projected_s": round(run.total / run.done * elapsed, 1) if run.done else None,
        "leads": run.done,
        "batch_size": batch_size,
        "batches": len(batch_steps),
        "elapsed_s": round(elapsed, 3),
        "leads_per_s": round(run.done / elapsed, 1) if elapsed else None,
        "rows_written": sum(timers.values["bulk.write"]),
        "became_mql": sum(a.became_mql for a in timers.values["scores_apply"]),
        "batch_ms": percentiles(batch_steps),
        "phases": timers.as_dict(),
        "sql": clock.as_dict(),
        "cpu": meter.result,
    }


@job
def incremental(args: argparse.Namespace) -> dict[str, Any]:
    """One worker's incremental rescoring: events for K leads through events_ingest (in batches, as
    the API stores them), then the rescore_leads tasks that ingestion queued, run one after the
    other in this process exactly as a single worker would (services.rescore_pending, ≤ 500 leads)."""
    from django.db import connection
    from django.utils import timezone

    from bench.environment import Meter
    from leadportal.celery import app as celery_app
    from leads.models import Lead
    from leads.services import events_ingest
    from scoring import bulk, services, sql, tasks

    # Queue, do not run: the tasks that ingestion queues are collected and run below, one by one.
    celery_app.conf.task_always_eager = False
    queued: list[list[int]] = []
    rng = random.Random(args.seed)
    high = Lead.objects.order_by("-pk").values_list("pk", flat=True).first()
    low = Lead.objects.order_by("pk").values_list("pk", flat=True).first()
    lead_ids = rng.sample(range(low, high + 1), args.leads)
    now = timezone.now()
    events = []
    for lead_id in lead_ids:
        for k in range(args.events_per_lead):
            kind, props = rng.choice(EVENT_KINDS)
            events.append(
                {
                    "lead_id": lead_id,
                    "type": kind,
                    "occurred_at": now - timedelta(seconds=rng.randrange(3600)),
                    "properties": props,
                    "source": "bench-incremental",
                    "external_id": f"inc-{lead_id}-{k}",
                }
            )
    rng.shuffle(events)  # events of many leads interleave, as they arrive
    timers, clock = Timers(), QueryClock(_scoring_sql_kind)
    ingest_s = rescore_s = 0.0
    rescored = 0
    with (
        replaced(tasks.rescore_leads_task, "delay", lambda ids: queued.append(list(ids))),
        timers.wrap(bulk, "compute", "bulk.compute"),
        timers.wrap(sql, "scores_write", "bulk.write", keep_result=True),
        timers.wrap(services, "scores_apply", "scores_apply", keep_result=True),
        Meter(_dbname()) as meter,
    ):
        start = time.perf_counter()
        stored = 0
        for offset in range(0, len(events), args.ingest_batch):
            stored += events_ingest(events=events[offset : offset + args.ingest_batch])["stored"]
        ingest_s = time.perf_counter() - start
        task_ms = []
        with connection.execute_wrapper(clock):
            start = time.perf_counter()
            for chunk in queued:
                t = time.perf_counter()
                # The task's body (scoring.tasks.rescore_leads): lease these leads' pending rows
                # and up to 500 others waiting, rescore them, store what is current.
                rescored += len(services.rescore_pending(lead_ids=chunk))
                task_ms.append(time.perf_counter() - t)
            rescore_s = time.perf_counter() - start
    total_s = ingest_s + rescore_s
    return {
        "leads": args.leads,
        "events": len(events),
        "stored": stored,
        "ingest_batch": args.ingest_batch,
        "tasks": len(queued),
        "leads_per_task": round(statistics.fmean(len(c) for c in queued), 1) if queued else 0,
        "rescored": rescored,
        "rows_written": sum(timers.values["bulk.write"]),
        "became_mql": sum(a.became_mql for a in timers.values["scores_apply"]),
        "ingest_s": round(ingest_s, 3),
        "rescore_s": round(rescore_s, 3),
        "total_s": round(total_s, 3),
        "ingest_events_per_s": round(len(events) / ingest_s, 1),
        "rescore_events_per_s": round(len(events) / rescore_s, 1),
        "rescore_leads_per_s": round(rescored / rescore_s, 1),
        "end_to_end_events_per_s": round(len(events) / total_s, 1),
        "task_ms": percentiles(task_ms),
        "phases": timers.as_dict(),
        "sql": clock.as_dict(),
        "cpu": meter.result,
    }


# --- routing ---------------------------------------------------------------------------------

TEAM_TERRITORIES = [
    ["DACH"],
    ["NORDICS"],
    ["BENELUX"],
    ["UKI"],
    ["NA"],
    ["SOUTH"],
    ["DACH", "BENELUX"],
    ["NA", "UKI"],
    [],
    [],
]
REGION_COUNTRIES = [
    ["DE", "AT", "CH"],
    ["SE", "NO", "DK", "FI"],
    ["NL", "BE", "LU"],
    ["GB", "IE"],
    ["US", "CA"],
    ["FR", "IT", "ES", "PT"],
]
ROUTING_INDUSTRIES = ["Software", "Financial Services", "Manufacturing", "Healthcare", "Retail", "Education", "Media"]
SIZE_BUCKETS = [(1, 49), (50, 499), (500, 4999), (5000, 100000)]
LEAD_COUNTRIES = [*(c for region in REGION_COUNTRIES for c in region), "PL", "BR", "JP", ""]
LEAD_INDUSTRIES = [*ROUTING_INDUSTRIES, "Government", "Logistics", ""]
STRATEGIES = ["round_robin", "weighted_round_robin", "least_loaded", "direct"]


def _make_reps(prefix: str, teams: int, per_team: int, capacity: int, rng: random.Random):
    from django.contrib.auth.hashers import make_password

    from leads.models import Role, User
    from routing.models import RepProfile, Team

    team_rows, reps = [], {}
    for t in range(teams):
        team = Team.objects.create(name=f"{prefix} team {t}")
        team_rows.append(team)
        users = User.objects.bulk_create(
            User(
                username=f"{prefix}-rep-{t}-{i}",
                role=Role.SALES_REP,
                first_name=f"Rep{t}-{i}",
                email=f"rep{t}-{i}@{prefix}.example",
                password=make_password(None),  # unusable: nobody logs in as a bench rep
            )
            for i in range(per_team)
        )
        RepProfile.objects.bulk_create(
            RepProfile(
                user=u,
                team=team,
                capacity=capacity,
                weight=rng.choice([1, 1, 2, 3]),
                seniority=rng.choice([1, 2, 2, 3]),
                territories=TEAM_TERRITORIES[t % len(TEAM_TERRITORIES)],
                languages=rng.choice([["de", "en"], ["en"], ["fr", "en"], []]),
                products=rng.choice([["crm"], ["analytics", "platform"], []]),
            )
            for u in users
        )
        reps[team.pk] = [u.pk for u in users]
    return team_rows, reps


@job
def routing_setup(args: argparse.Namespace) -> dict[str, Any]:
    """Reps in teams, ordered rules with conditions (most never match; a lead typically matches
    around rule 300–500), a round-robin fallback at the end, and MQL leads to route."""
    from django.db import transaction

    from leads.models import Lead, Stage, StageChange
    from routing.models import RoutingRule, RuleCondition

    rng = random.Random(args.seed)
    start = time.perf_counter()
    with transaction.atomic():
        teams, reps = _make_reps("bench", args.teams, args.reps // args.teams, capacity=10_000, rng=rng)
        rules, conditions = [], []
        combos = [(r, i, s) for r in range(len(REGION_COUNTRIES)) for i in ROUTING_INDUSTRIES for s in SIZE_BUCKETS]
        rng.shuffle(combos)
        matching = min(len(combos), max(args.rules * 2 // 5, 1))  # the last 40 % can match
        never = args.rules - 1 - matching
        for n in range(args.rules):
            strategy = STRATEGIES[n % len(STRATEGIES)]
            team = teams[n % len(teams)]
            if n < never:
                # Never matches a generated lead; often the first condition holds and a later one fails.
                region = ", ".join(REGION_COUNTRIES[n % len(REGION_COUNTRIES)])
                nowhere = rng.choice(["Aerospace", "Mining", "Agriculture"])
                conds = [
                    [("country", "in", region), ("industry", "eq", nowhere), ("company_size", "between", "100, 1000")],
                    [("country", "in", "KR, CN, IN, AU")],
                    [("industry", "eq", nowhere), ("country", "in", region)],
                ][n % 3]
            elif n < args.rules - 1:
                region, industry, (low, hi) = combos[n - never]
                conds = [
                    ("country", "in", ", ".join(REGION_COUNTRIES[region])),
                    ("industry", "eq", industry),
                    ("company_size", "between", f"{low}, {hi}"),
                ][: 1 + (n % 3 != 0) + 1]
                team = teams[region]
            else:
                conds, strategy, team = [], "round_robin", teams[-1]
            direct = strategy == "direct"
            rule = RoutingRule(
                name=f"rule {n + 1}",
                priority=n + 1,
                target=RoutingRule.Target.REP if direct else RoutingRule.Target.TEAM,
                strategy=strategy,
                rep_id=rng.choice(reps[team.pk]) if direct else None,
                team=None if direct else team,
                match_profile=(n % 5 == 0 and n < args.rules - 1),
            )
            rules.append((rule, conds))
        RoutingRule.objects.bulk_create([r for r, _ in rules])
        for rule, conds in rules:
            conditions += [RuleCondition(rule=rule, field=f, operator=o, value=v) for f, o, v in conds]
        RuleCondition.objects.bulk_create(conditions)
        leads = [
            Lead(
                email=f"route-{i}@corp{rng.randrange(5000)}.example",
                company=f"Corp {i}",
                company_domain=f"corp{i % 5000}.example",
                job_title=rng.choice(["CTO", "Head of IT", "Developer", "CFO", "VP Sales"]),
                industry=rng.choice(ROUTING_INDUSTRIES if rng.random() < 0.85 else LEAD_INDUSTRIES),
                company_size=None
                if rng.random() < 0.1
                else rng.choice([rng.randrange(1, 100_000), rng.randrange(1, 1000)]),
                country=rng.choice(
                    REGION_COUNTRIES[rng.randrange(len(REGION_COUNTRIES))] if rng.random() < 0.9 else LEAD_COUNTRIES
                ),
                language=rng.choice(["de", "en", "fr", ""]),
                product_interest=rng.choice(["crm", "analytics", "platform", ""]),
                stage=Stage.MQL,
                score=70,
                grade="A",
                source="bench-routing",
            )
            for i in range(args.leads)
        ]
        Lead.objects.bulk_create(leads, batch_size=1000)
        # As scoring makes them: each MQL arrived there by a recorded move (routing batches only
        # MQLs whose move queued a routing task).
        StageChange.objects.bulk_create(
            (
                StageChange(lead=lead, from_stage=Stage.MAL, to_stage=Stage.MQL, reason="bench", at=lead.created_at)
                for lead in leads
            ),
            batch_size=1000,
        )
    return {
        "reps": sum(len(v) for v in reps.values()),
        "teams": len(teams),
        "rules": len(rules),
        "conditions": len(conditions),
        "never_matching_rules": never,
        "leads": len(leads),
        "setup_s": round(time.perf_counter() - start, 2),
    }


@job
def route_committed(args: argparse.Namespace) -> dict[str, Any]:
    """Routing committed by one process, lead after lead, as one worker runs its tasks.

    `--mode task`: `routing.tasks.route_lead_task(lead_id)`, the worker's task body — it places the lead
    and, in the same transaction, up to `ROUTE_BATCH` other MQLs still waiting for their tasks;
    those tasks then find their lead placed (each is still called, as the worker would).
    `--mode single`: `routing.services.lead_route(lead_id=…)`, one lead per transaction."""
    from bench.environment import Meter
    from leads.models import Lead, Stage
    from routing import services, tasks
    from routing.models import Assignment

    ids = list(
        Lead.objects.filter(stage=Stage.MQL, source="bench-routing")
        .exclude(assignments__isnull=False)
        .order_by("pk")
        .values_list("pk", flat=True)[: args.leads]
    )
    if args.mode == "task":
        route = tasks.route_lead_task
    else:

        def route(lead_id: int) -> None:
            services.lead_route(lead_id=lead_id)

    latencies = []
    deadline = time.perf_counter() + args.max_seconds
    with Meter(_dbname()) as meter:
        for lead_id in ids:
            start = time.perf_counter()
            route(lead_id)
            latencies.append(time.perf_counter() - start)
            if start > deadline:
                break
    done_ids = ids[: len(latencies)]
    placed = Assignment.objects.filter(lead_id__in=ids).values("lead_id").distinct().count()
    # With batching, leads beyond the last task called may be placed too; count only those called.
    done = Assignment.objects.filter(lead_id__in=done_ids).values("lead_id").distinct().count()
    statuses = Counter(Assignment.objects.filter(lead_id__in=done_ids).values_list("status", flat=True))
    positions = Counter(
        Assignment.objects.filter(lead_id__in=done_ids).values_list("rule__priority", flat=True).iterator()
    )
    per_lead = Counter(Assignment.objects.filter(lead_id__in=ids).values_list("lead_id", flat=True))
    return {
        "mode": args.mode,
        "batch": getattr(services, "ROUTE_BATCH", 1) if args.mode == "task" else 1,
        "leads_available": len(ids),
        "calls": len(latencies),
        "decisions": done,
        "placed_including_beyond_last_call": placed,
        "leads_with_more_than_one_assignment": sum(1 for n in per_lead.values() if n > 1),
        "stopped_by_time_cap": len(latencies) < len(ids),
        "elapsed_s": round(meter.elapsed, 3),
        "decisions_per_s": round(done / meter.elapsed, 1),
        "latency_ms": percentiles(latencies),
        "statuses": dict(statuses),
        "matched_rule_priority": _position_summary(positions),
        "cpu": meter.result,
    }


def _position_summary(positions: Counter) -> dict[str, Any]:
    values = sorted(p or 0 for p, n in positions.items() for _ in range(n))
    if not values:
        return {}
    return {
        "min": values[0],
        "p50": values[len(values) // 2],
        "max": values[-1],
        "share_at_fallback": round(sum(1 for v in values if v == values[-1]) / len(values), 3),
    }


# --- speed to lead ---------------------------------------------------------------------------


@job
def stl_setup(args: argparse.Namespace) -> dict[str, Any]:
    """The demo scoring model (active), one round-robin team, and high-fit leads in stage MAL that
    one demo_request pushes over the threshold (fit 45, grade A; +30 → 75 ≥ 60)."""
    from django.db import transaction

    from leads.models import Lead, Stage
    from routing.models import RoutingRule

    scoring = scoring_model(argparse.Namespace(bump=0))
    rng = random.Random(args.seed)
    with transaction.atomic():
        teams, _ = _make_reps("stl", 1, args.reps, capacity=100_000, rng=rng)
        RoutingRule.objects.create(
            name="Inside sales (round robin)", priority=1, target=RoutingRule.Target.TEAM, team=teams[0]
        )
        Lead.objects.bulk_create(
            Lead(
                email=f"stl-{i}@acme{i}.example",
                company=f"Acme {i}",
                company_domain=f"acme{i}.example",
                job_title="CTO",
                industry="Software",
                company_size=500,
                country="DE",
                stage=Stage.MAL,
                source="bench-stl",
            )
            for i in range(args.leads + args.warmup)
        )
    return {"scoring_model": scoring["model"], "reps": args.reps, "leads": args.leads, "warmup": args.warmup}


def _send_and_wait(lead_ids: list[int], rate: float, wait: float, tag: str) -> dict[str, Any]:
    """One demo_request per lead at a steady `rate`; then poll until each has an assignment or
    `wait` s passed after the last event. Returns commit times and what the worker did."""
    from django.db import transaction
    from django.utils import timezone

    from leads.models import StageChange
    from leads.services import events_ingest
    from routing.models import Assignment

    committed: dict[int, float] = {}
    send_ms = []
    start = time.perf_counter()
    for i, lead_id in enumerate(lead_ids):
        pause = start + i / rate - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        t = time.perf_counter()
        with transaction.atomic():
            # Registered first, so it runs first after the commit: before the receivers queue tasks.
            transaction.on_commit(lambda lead_id=lead_id: committed.__setitem__(lead_id, time.time()))
            events_ingest(
                events=[
                    {
                        "lead_id": lead_id,
                        "type": "demo_request",
                        "occurred_at": timezone.now(),
                        "properties": {"form": "demo"},
                        "source": "bench-stl",
                        "external_id": f"{tag}-{lead_id}",
                    }
                ]
            )
        send_ms.append(time.perf_counter() - t)
    sent_s = time.perf_counter() - start
    deadline = time.perf_counter() + wait
    assigned = 0
    while time.perf_counter() < deadline:
        assigned = Assignment.objects.filter(lead_id__in=lead_ids).values("lead_id").distinct().count()
        if assigned >= len(lead_ids):
            break
        time.sleep(0.25)
    drained_s = time.perf_counter() - start - sent_s
    first_assignment: dict[int, float] = {}
    for lead_id, at in Assignment.objects.filter(lead_id__in=lead_ids).values_list("lead_id", "assigned_at"):
        stamp = at.timestamp()
        first_assignment[lead_id] = min(stamp, first_assignment.get(lead_id, stamp))
    became_mql: dict[int, float] = {}
    for lead_id, at in StageChange.objects.filter(lead_id__in=lead_ids, to_stage="mql").values_list("lead_id", "at"):
        became_mql[lead_id] = at.timestamp()
    statuses = Counter(Assignment.objects.filter(lead_id__in=lead_ids).values_list("status", flat=True))
    return {
        "committed": committed,
        "assigned": first_assignment,
        "mql": became_mql,
        "send_ms": send_ms,
        "sent_s": sent_s,
        "drained_s": drained_s,
        "statuses": dict(statuses),
    }


@job
def stl_drive(args: argparse.Namespace) -> dict[str, Any]:
    """Speed to lead with a real worker: events at a steady rate, latency = assigned_at − commit."""
    from bench.environment import Meter, named_pids, tree_pids
    from leadportal.celery import app as celery_app
    from leads.models import Lead

    conf = celery_app.conf
    if conf.task_always_eager or conf.task_default_queue != os.environ.get("CELERY_QUEUE"):
        raise SystemExit(f"refusing: eager={conf.task_always_eager}, queue={conf.task_default_queue}")
    ids = list(Lead.objects.filter(source="bench-stl").order_by("pk").values_list("pk", flat=True))
    warm_ids, ids = ids[: args.warmup], ids[args.warmup :]
    warm = _send_and_wait(warm_ids, rate=min(args.rate, 10.0), wait=args.wait, tag="warm")
    extra = {"worker": lambda: tree_pids(args.worker_pid), "redis": lambda: named_pids("redis-server")}
    with Meter(_dbname(), extra=extra) as meter:
        run = _send_and_wait(ids, rate=args.rate, wait=args.wait, tag="stl")

    def gaps(later: dict[int, float], earlier: dict[int, float]) -> list[float]:
        return [later[i] - earlier[i] for i in ids if i in later and i in earlier]

    latencies = gaps(run["assigned"], run["committed"])
    to_mql = gaps(run["mql"], run["committed"])
    mql_to_assigned = gaps(run["assigned"], run["mql"])
    done = [run["assigned"][i] for i in ids if i in run["assigned"]]
    started = [run["committed"][i] for i in ids if i in run["committed"]]
    return {
        "warmup": {"leads": len(warm_ids), "assigned": len(warm["assigned"]), "s": round(warm["sent_s"], 1)},
        "leads": len(ids),
        "rate_target": args.rate,
        "rate_sent": round(len(ids) / run["sent_s"], 2) if run["sent_s"] else None,
        "assigned": len(latencies),
        "became_mql": len(run["mql"]),
        # What the worker sustained: leads assigned per second from the first commit to the last assignment.
        "worker_leads_per_s": round(len(done) / (max(done) - min(started)), 1) if done and started else None,
        "statuses": run["statuses"],
        "sent_s": round(run["sent_s"], 2),
        "drain_after_last_event_s": round(run["drained_s"], 2),
        "latency_ms": percentiles(latencies),
        "event_to_mql_ms": percentiles(to_mql),
        "mql_to_assigned_ms": percentiles(mql_to_assigned),
        "ingest_call_ms": percentiles(run["send_ms"]),
        "cpu": meter.result,
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bump", type=float, default=5.0, help="scoring-model: points added to one rule")
    parser.add_argument("--batch-size", type=int, default=0, help="rescore: leads per batch [settings]")
    parser.add_argument("--leads", type=int, default=5000)
    parser.add_argument("--events-per-lead", type=int, default=5)
    parser.add_argument("--ingest-batch", type=int, default=1000)
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--teams", type=int, default=10)
    parser.add_argument("--rules", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--max-seconds", type=float, default=60.0)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--wait", type=float, default=60.0)
    parser.add_argument("--worker-pid", type=int, default=0)
    parser.add_argument("--mode", choices=["task", "single"], default="task", help="route-committed: what is called")


def run_job(jobs: dict, argv: list[str] | None, add_arguments: Callable[[argparse.ArgumentParser], None]) -> int:
    """Every jobs module's main (bench/jobs.py, bench/dashboard_jobs.py, bench/loop_jobs.py): parse
    `<job> --out file [--seed n]` and the module's own options, set Django up, run the job and write
    its result to `--out`."""
    parser = argparse.ArgumentParser()
    parser.add_argument("job", choices=sorted(jobs))
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--seed", type=int, default=2026)
    add_arguments(parser)
    args = parser.parse_args(argv)
    django.setup()
    result = jobs[args.job](args)
    args.out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_job(JOBS, argv, add_arguments)


if __name__ == "__main__":
    sys.exit(main())
