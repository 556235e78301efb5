"""The Django side of the loop suite: `python -m bench.loop_jobs <job> --out result.json`.

Run by `bench/loop_suite.py` in a process of its own with the environment of the loop database (as
`bench/jobs.py` is for the scoring and routing suites). Jobs:

* `setup` — the demo scoring model (active, directly: no run), one team of sales reps with a
  round-robin rule (the MQLs' assignees, and what routes the leads of the outage runs), and an
  integration user with an API token (the API calls of the outage runs).
* `reconcile` — the reconciler's cost per run (`loop.reconciler.reconcile()`, a minute's run), with
  no drift and with a bounded amount planted before each run; each kind's count query timed, and
  its plan (`EXPLAIN (ANALYZE, BUFFERS)` of the exact SQL the reconciler sent); the floor (a plain
  `count(*)` of the MAL leads) in the same process; the sampled score check alone.
* `outage` — time to zero drift after "Redis back" and after "worker restarted", with a private
  redis-server as broker and cache, real `celery worker` and `celery beat` processes
  (tests/worker.py's helpers), and the API called in process with `django.test.Client`.

Nothing here changes the app; it is called as its tasks and API clients call it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import django

from bench.jobs import run_job
from bench.report import percentiles

# The fields that make a captured lead worth 45 fit points (grade A) under the demo model, so that
# one demo request (+30) takes it over the MQL threshold (60): the speed-to-lead suite's leads.
HIGH_FIT = {"job_title": "CTO", "industry": "Software", "company_size": 500, "country": "DE"}


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 4) if values else None


# --- setup -----------------------------------------------------------------------------------


def setup(args: argparse.Namespace) -> dict[str, Any]:
    from django.db import transaction

    from bench.jobs import _make_reps, scoring_model
    from leads.models import Role, User
    from leads.tokens import token_create
    from routing.models import RoutingRule

    model = scoring_model(argparse.Namespace(bump=0))
    with transaction.atomic():
        teams, reps = _make_reps("loop", 1, args.sales_reps, capacity=1_000_000, rng=random.Random(args.seed))
        rule = RoutingRule.objects.create(
            name="Inside sales (round robin)", priority=1, target=RoutingRule.Target.TEAM, team=teams[0]
        )
        user = User.objects.create(username="bench-loop-integration", role=Role.INTEGRATION)
        _token, key = token_create(user=user, name="bench loop")
    return {
        "scoring_model": model["model"],
        "reps": reps[teams[0].pk],
        "team": teams[0].pk,
        "rule": rule.pk,
        "token": key,
    }


# --- the reconciler's cost per run -------------------------------------------------------------


def _count_queries(kind, now) -> tuple[float, list[str]]:
    """Run one kind's count, return (seconds, the SQL statements it sent)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        start = time.perf_counter()
        kind.count(now)
        elapsed = time.perf_counter() - start
    return elapsed, [q["sql"] for q in captured.captured_queries]


def _explain(sql: str) -> dict[str, Any]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql)
        (plan,) = cursor.fetchone()
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
        text = [row[0] for row in cursor.fetchall()]
    plan = plan[0] if isinstance(plan, list) else json.loads(plan)[0]
    top = plan["Plan"]
    return {
        "execution_ms": round(plan["Execution Time"], 2),
        "planning_ms": round(plan["Planning Time"], 2),
        "top_node": top["Node Type"],
        "shared_hit_blocks": top.get("Shared Hit Blocks"),
        "shared_read_blocks": top.get("Shared Read Blocks"),
        "plan": [line.rstrip() for line in text if "Time:" not in line][:14],
    }


def _timed(fn, reps: int) -> tuple[list[float], Any]:
    times, result = [], None
    for _ in range(reps):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return times, result


def _catch_up(now) -> dict[str, int]:
    """What the routing and default workers do after a repair (not timed): route the MQLs the repair
    made (their route_lead tasks went to a queue nobody serves here) and send the e-mails queued."""
    from django.db.models import Exists, OuterRef

    from leads.models import Lead, Stage
    from routing import services as routing_services
    from routing.models import Assignment

    open_assignment = Assignment.objects.filter(lead=OuterRef("pk"), status__in=Assignment.OPEN)
    routed = 0
    for lead_id in Lead.objects.filter(stage=Stage.MQL).exclude(Exists(open_assignment)).values_list("pk", flat=True):
        routing_services.lead_route(lead_id=lead_id)
        routed += 1
    unsent = list(
        Assignment.objects.filter(status__in=(Assignment.Status.ACTIVE, Assignment.Status.POOLED), notified_at=None)
        .filter(assigned_at__gte=now - timedelta(days=1))
        .values_list("pk", flat=True)
    )
    if unsent:
        routing_services.assignments_notify(assignment_ids=unsent)
    return {"routed": routed, "notified": len(unsent)}


def _plant(rng: random.Random, pending: int, mal: int, unrouted: int, used: set[int]) -> dict[str, list[int]]:
    """Drift of three kinds, on leads never planted before: `pending` pending rescoring rows an hour
    old and unclaimed (a lost task), `mal` MAL leads whose stored score qualifies (the move to MQL
    was lost: qualifying leads of later stages put back to MAL), `unrouted` MQLs whose open
    assignment is gone (rejected, the rerouting lost)."""
    from django.db import connection

    from scoring import selectors

    model = selectors.active_engine_model()
    grades = [g for g in ("A", "B", "C", "D") if g <= model.min_grade]
    with connection.cursor() as cursor:

        def pick(n: int, sql: str, params: list) -> list[int]:
            cursor.execute(sql, params)
            pool = [i for (i,) in cursor.fetchall() if i not in used]
            return rng.sample(pool, min(n, len(pool)))

        pending_ids = pick(
            pending,
            "SELECT id FROM leads_lead WHERE stage IN ('new', 'mal') AND id %% 97 = %s "
            "AND NOT EXISTS (SELECT 1 FROM scoring_pendingrescore p WHERE p.lead_id = leads_lead.id) LIMIT 2000",
            [rng.randrange(97)],
        )
        mal_ids = pick(
            mal,
            "SELECT id FROM leads_lead WHERE stage IN ('sal', 'sql', 'lost', 'won') AND score >= %s "
            "AND grade = ANY(%s) LIMIT 5000",
            [model.mql_threshold, grades],
        )
        unrouted_ids = pick(
            unrouted,
            "SELECT a.lead_id FROM routing_assignment a JOIN leads_lead l ON l.id = a.lead_id "
            "WHERE l.stage = 'mql' AND a.status = 'active' AND a.lead_id %% 13 = %s LIMIT 2000",
            [rng.randrange(13)],
        )
        cursor.execute(
            "INSERT INTO scoring_pendingrescore (lead_id, requested_at, claimed_until) "
            "SELECT unnest(%s::bigint[]), now() - interval '1 hour', NULL",
            [pending_ids],
        )
        cursor.execute("UPDATE leads_lead SET stage = 'mal' WHERE id = ANY(%s)", [mal_ids])
        cursor.execute(
            "UPDATE routing_assignment SET status = 'rejected', ended_at = now() "
            "WHERE lead_id = ANY(%s) AND status = 'active'",
            [unrouted_ids],
        )
    used.update(pending_ids, mal_ids, unrouted_ids)
    return {"pending_stale": pending_ids, "mal_qualifying": mal_ids, "unrouted_mqls": unrouted_ids}


@contextmanager
def _instrumented(seconds: Counter):
    """For the duration of a block: the time of each kind's count and repair, and of the sampled
    score check's parts, inside reconciler runs — the Kind entries of `loop.reconciler.KINDS` are
    replaced by timed copies, the score-check functions of scoring.drift wrapped (never altered)."""
    from loop import reconciler
    from scoring import drift as scoring_drift

    def timed(fn, label):
        def inner(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                seconds[label] += time.perf_counter() - start

        return inner

    kinds = reconciler.KINDS
    saved = {name: getattr(scoring_drift, name) for name in ("sample", "mismatched", "scores_repair")}
    reconciler.KINDS = tuple(
        dataclasses.replace(k, count=timed(k.count, f"count {k.name}"), repair=timed(k.repair, f"repair {k.name}"))
        for k in kinds
    )
    for name, label in (
        ("sample", "score sample: ids"),
        ("mismatched", "score sample: check"),
        ("scores_repair", "repair score_mismatch"),
    ):
        setattr(scoring_drift, name, timed(saved[name], label))
    try:
        yield
    finally:
        reconciler.KINDS = kinds
        for name, fn in saved.items():
            setattr(scoring_drift, name, fn)


def _run_timed(reconciler) -> tuple[Any, float, dict[str, float]]:
    seconds: Counter = Counter()
    with _instrumented(seconds):
        start = time.perf_counter()
        run = reconciler.reconcile()
        wall = time.perf_counter() - start
    split = {label: round(s, 4) for label, s in seconds.most_common()}
    split["rest (lock, LoopRun row, bookkeeping)"] = round(wall - sum(seconds.values()), 4)
    return run, wall, split


def reconcile_cost(args: argparse.Namespace) -> dict[str, Any]:
    from django.conf import settings
    from django.db import connection
    from django.db.models import Count
    from django.utils import timezone

    from bench.environment import Meter
    from leadportal.celery import app as celery_app
    from leads.models import Lead
    from loop import reconciler
    from scoring import drift as scoring_drift

    # Tasks a repair queues (routing of the leads it made MQL, e-mails) are sent to the in-memory
    # broker, not run inline: in production they are a worker's work, not the reconciler's.
    celery_app.conf.task_always_eager = False
    dbname = connection.settings_dict["NAME"]
    leads = Lead.objects.count()
    stages = dict(Lead.objects.order_by().values_list("stage").annotate(n=Count("pk")))
    reconciler.check(repair=False)  # warm: the active model, the plan cache, the buffers
    now = timezone.now()

    floor_sql = "SELECT count(*) FROM leads_lead WHERE stage = 'mal'"
    with connection.cursor() as cursor:

        def floor():
            cursor.execute(floor_sql)
            return cursor.fetchone()[0]

        floor_times, mal_leads = _timed(floor, args.reps)
    floor_plan = _explain(floor_sql)

    kinds = {}
    for kind in reconciler.KINDS:
        times, statements = [], []
        for _ in range(args.reps):
            elapsed, statements = _count_queries(kind, now)
            times.append(elapsed)
        counting = [s for s in statements if "COUNT(" in s.upper()]
        kinds[kind.name] = {
            "count_s_p50": _median(times),
            "count_s_all": [round(t, 4) for t in times],
            "found": kind.count(now),
            "sql": counting[-1] if counting else None,
            "statements_per_count": len(statements),
            "explain": _explain(counting[-1]) if counting else None,
        }

    # The floor of the sampled score check: one plain read of the sampled leads' rows and of all
    # their activities (what the engine needs), without computing anything.
    batch, _ = scoring_drift.sample(0, settings.LOOP_SAMPLE)
    read_sql = "SELECT count(*), sum(length(a.properties::text)) FROM leads_activity a WHERE a.lead_id = ANY(%s)"
    with connection.cursor() as cursor:

        def read_floor():
            cursor.execute("SELECT count(*) FROM leads_lead WHERE id = ANY(%s)", [batch])
            cursor.execute(read_sql, [batch])
            return cursor.fetchone()[0]

        read_times, sample_activities = _timed(read_floor, args.reps)

    cursor_at = [0]

    def sample_check():
        batch, cursor_at[0] = scoring_drift.sample(cursor_at[0], settings.LOOP_SAMPLE)
        return len(scoring_drift.mismatched(batch))

    sample_times, _ = _timed(sample_check, args.reps)
    check_times, report = _timed(lambda: reconciler.check(repair=False), args.reps)

    runs: dict[str, list[dict[str, Any]]] = {"no_drift": [], "drift": []}
    rng = random.Random(args.seed)
    used: set[int] = set()
    with Meter(dbname) as meter:
        for _ in range(args.reps):
            run, wall, split = _run_timed(reconciler)
            runs["no_drift"].append({**_run_row(run, wall), "split_s": split})
    no_drift_cpu = meter.result
    catch_up = []
    with Meter(dbname) as meter:
        for _ in range(args.reps):
            planted = _plant(rng, args.plant_pending, args.plant_mal, args.plant_unrouted, used)
            run, wall, split = _run_timed(reconciler)
            runs["drift"].append(
                {**_run_row(run, wall), "split_s": split, "planted": {k: len(v) for k, v in planted.items()}}
            )
            catch_up.append(_catch_up(timezone.now()))
    drift_cpu = meter.result
    left = reconciler.check(repair=False)
    return {
        "leads": leads,
        "stages": stages,
        "settings": {
            "LOOP_STALE_AFTER": settings.LOOP_STALE_AFTER,
            "LOOP_SAMPLE": settings.LOOP_SAMPLE,
            "scoring_repair_limit": scoring_drift.REPAIR_LIMIT,
        },
        "floor": {
            "sql": floor_sql,
            "s_p50": _median(floor_times),
            "s_all": [round(t, 4) for t in floor_times],
            "mal_leads": mal_leads,
            "explain": floor_plan,
        },
        "kinds": kinds,
        "sample_check_s_p50": _median(sample_times),
        "sample_read_floor": {
            "sql": read_sql,
            "s_p50": _median(read_times),
            "leads": len(batch),
            "activities": sample_activities,
        },
        "check_no_repair_s_p50": _median(check_times),
        "check_found": report.found,
        "runs": runs,
        "catch_up_after_drift_runs": catch_up,
        "left_after": {"found": left.found, "drift": left.drift},
        "cpu": {"no_drift": no_drift_cpu, "drift": drift_cpu},
    }


def _run_row(run, wall: float) -> dict[str, Any]:
    return {
        "wall_s": round(wall, 4),
        "duration_ms": run.duration_ms,
        "found": run.found,
        "repaired": run.repaired,
        "checked_scores": run.checked_scores,
        "touched": run.checked_scores + sum(run.repaired.values()),
    }


# --- time to zero drift after outages -------------------------------------------------------------


class Loop:
    """The processes of the outage runs: a private Redis (broker and cache), a worker on the default
    and scoring queues, one on the routing queue, and beat (the reconciler every LOOP_RECONCILE_EVERY s)."""

    def __init__(self, port: int, queue: str, concurrency: int) -> None:
        from tests import worker as helpers

        self.helpers = helpers
        self.queue = queue
        self.redis = helpers.RedisServer(port)
        env = helpers.django_env(queue, broker_url=None)
        self.env = env
        names = helpers.queue_names(queue)  # default, routing, scoring (leadportal.celery.queues)
        routing = [n for n in names if n.endswith(".routing")]
        others = [n for n in names if n not in routing]

        def worker(name: str, queues: list[str], pool: str, concurrency: int):
            argv = helpers.worker_argv(queues, f"{name}-{queue}", pool=pool, concurrency=concurrency)
            return helpers.Process(argv, env, f"bench-loop-{name}")

        self.scoring = worker("scoring", others, "prefork", concurrency)
        self.routing = worker("routing", routing, "solo", 1)
        self.schedule_dir = Path(tempfile.mkdtemp(prefix=f"bench-loop-beat-{queue}-"))
        self.beat = helpers.Process(helpers.beat_argv(self.schedule_dir), env, "bench-loop-beat")

    def start(self) -> None:
        self.redis.start()
        for process in (self.scoring, self.routing, self.beat):
            process.start()

    def stop(self) -> None:
        for process in (self.beat, self.scoring, self.routing):
            process.stop(timeout=20)
        self.redis.stop()
        for path in self.schedule_dir.glob("*"):
            path.unlink(missing_ok=True)
        self.schedule_dir.rmdir()

    def logs(self) -> dict[str, list[str]]:
        out = {}
        for name, process in (("scoring", self.scoring), ("routing", self.routing), ("beat", self.beat)):
            lines = process.tail(200_000).splitlines()
            out[name] = [line for line in lines if "ERROR" in line or "CRITICAL" in line][-8:]
        return out


def _state(lead_ids: list[int], model_version: int) -> dict[str, int]:
    """How far these leads are: scored with the active model, MQL (or later), with an open
    assignment whose assignee was told, and none still waiting for its rescoring."""
    from django.db.models import Exists, OuterRef

    from leads.models import Lead, Stage
    from routing.models import Assignment
    from scoring.models import PendingRescore

    leads = Lead.objects.filter(pk__in=lead_ids)
    told = Assignment.objects.filter(lead=OuterRef("pk"), status__in=Assignment.OPEN, notified_at__isnull=False)
    return {
        "leads": len(lead_ids),
        "scored": leads.filter(scoring_version=model_version).count(),
        "mql_or_later": leads.exclude(stage__in=(Stage.NEW, Stage.MAL)).count(),
        "assigned_and_told": leads.filter(Exists(told)).count(),
        "pending": PendingRescore.objects.filter(lead_id__in=lead_ids).count(),
    }


def _converge(lead_ids: list[int], model_version: int, since: float, timeout: float) -> dict[str, Any]:
    """Poll (twice a second) until every lead is done and then the reconciler's check
    (repair=False, what `manage.py check_loop` runs) finds no drift; return the seconds from `since`
    (time.monotonic) and the trail. The check (≈ a reconciler run's counting) runs only once the
    leads are done, so the poll does not load the machine the workers need."""
    from loop import reconciler

    trail = []
    deadline = since + timeout
    first_all_done = None
    while True:
        at = time.monotonic() - since
        state = _state(lead_ids, model_version)
        done = (
            state["scored"] == state["mql_or_later"] == state["assigned_and_told"] == len(lead_ids)
            and state["pending"] == 0
        )
        row = {"t": round(at, 2), **state}
        if done:
            first_all_done = at if first_all_done is None else first_all_done
            report = reconciler.check(repair=False)
            row.update(drift=report.drift, found={k: v for k, v in report.found.items() if v})
            if report.drift == 0:
                trail.append(row)
                return {
                    "converged": True,
                    "seconds": round(at, 2),
                    "all_leads_done_s": round(first_all_done, 2),
                    "trail": trail,
                }
        trail.append(row)
        if time.monotonic() > deadline:
            return {"converged": False, "seconds": None, "all_leads_done_s": first_all_done, "trail": trail}
        time.sleep(max(0.05, 0.5 - (time.monotonic() - since - at)))


def _start_and_converge(process, lead_ids: list[int], model_version: int, timeout: float) -> tuple[float, dict]:
    """Start `process` (the private Redis, a worker) again and wait until the leads converge: when it
    was started (time.monotonic), and what `_converge` found, its trail thinned to about 40 rows,
    with the reconciler's runs from then on."""
    from django.utils import timezone

    started = timezone.now()
    at = time.monotonic()
    process.start()
    converged = _converge(lead_ids, model_version, at, timeout)
    trail = converged.pop("trail")
    return at, {
        **converged,
        "trail": trail[:: max(1, len(trail) // 40)],
        "reconciler_runs": _loop_runs_since(started),
    }


def _loop_runs_since(started) -> dict[str, Any]:
    from loop.models import LoopRun

    runs = list(LoopRun.objects.filter(started_at__gte=started).order_by("started_at"))
    repaired: Counter = Counter()
    for run in runs:
        repaired.update(run.repaired)
    return {
        "runs": len(runs),
        "duration_ms": percentiles([r.duration_ms / 1000 for r in runs]),
        "repaired": {k: v for k, v in repaired.items() if v},
    }


def _client(token: str):
    from django.test import Client

    return Client(HTTP_AUTHORIZATION=f"Token {token}", HTTP_HOST="127.0.0.1")


def _wait_ready(loop: Loop, timeout: float = 60.0) -> float:
    """Until a task sent now is done by the workers: a lead's rescoring (pending row gone)."""
    from django.utils import timezone

    from loop.models import LoopRun

    start = time.monotonic()
    since = timezone.now()
    while time.monotonic() - start < timeout:
        if LoopRun.objects.filter(started_at__gte=since).exists():
            return time.monotonic() - start
        for process in (loop.scoring, loop.routing, loop.beat):
            if not process.alive:
                raise RuntimeError(f"{process.name} exited:\n{process.tail()}")
        time.sleep(0.5)
    raise RuntimeError(f"no reconciler run within {timeout:.0f} s:\n{loop.scoring.tail()}\n{loop.beat.tail()}")


def outage(args: argparse.Namespace) -> dict[str, Any]:
    from django.conf import settings
    from django.utils import timezone

    from leads import consent
    from leads.models import Lead, Stage
    from scoring import selectors, services

    conf = django.conf.settings
    if conf.CELERY_TASK_ALWAYS_EAGER or not conf.CELERY_BROKER_URL.startswith("redis://127.0.0.1:"):
        raise SystemExit(f"refusing: eager={conf.CELERY_TASK_ALWAYS_EAGER}, broker={conf.CELERY_BROKER_URL}")
    version = selectors.active_model_id()
    loop = Loop(args.redis_port, os.environ["CELERY_QUEUE"], args.concurrency)
    result: dict[str, Any] = {
        "settings": {
            "LOOP_STALE_AFTER": settings.LOOP_STALE_AFTER,
            "LOOP_RECONCILE_EVERY": float(os.environ.get("LOOP_RECONCILE_EVERY", "60")),
            "LOOP_SAMPLE": settings.LOOP_SAMPLE,
            "CELERY_VISIBILITY_TIMEOUT": settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout"),
            "broker": "private redis-server (no persistence: a restart loses every queued message)",
            "workers": f"scoring+default: prefork x{args.concurrency}; routing: solo; beat",
        }
    }
    client = _client(args.token)
    try:
        loop.start()
        result["ready_s"] = round(_wait_ready(loop), 1)

        # (i) Redis stops; leads are captured and send their MQL-making event through the API; Redis back.
        loop.redis.stop()
        tag = f"rb{os.getpid()}"
        statuses: Counter = Counter()
        request_s = []
        t0 = time.monotonic()
        for i in range(args.leads):
            start = time.perf_counter()
            email = f"{tag}-{i}@outage{i}.example"
            response = client.post("/api/v1/leads/", {"email": email, **HIGH_FIT}, content_type="application/json")
            statuses[f"capture {response.status_code}"] += 1
            # The person clicks the confirmation link (new → mal): a capture cannot confirm consent.
            consent.consent_confirm(token=consent.token_for(Lead.objects.get(email=email), consent.CONFIRM))
            request_s.append(time.perf_counter() - start)
        for offset in range(0, args.leads, 50):
            events = [
                {
                    "email": f"{tag}-{i}@outage{i}.example",
                    "type": "demo_request",
                    "source": "bench-loop",
                    "external_id": f"{tag}-{i}",
                }
                for i in range(offset, min(offset + 50, args.leads))
            ]
            start = time.perf_counter()
            response = client.post("/api/v1/events/", events, content_type="application/json")
            statuses[f"events {response.status_code}"] += 1
            request_s.append(time.perf_counter() - start)
        down_s = time.monotonic() - t0
        ids = list(Lead.objects.filter(email__startswith=f"{tag}-").values_list("pk", flat=True))
        before = _state(ids, version)
        _, converged = _start_and_converge(loop.redis, ids, version, args.timeout)
        result["redis_back"] = {
            "leads": len(ids),
            "redis_down_s": round(down_s, 1),
            "api": dict(statuses),
            "api_request_ms": percentiles(request_s),
            "state_when_redis_came_back": before,
            **converged,
        }

        # (ii) a burst of MQL-making events; the scoring worker is killed (SIGKILL, its pool too)
        # while it works on them, and started again after a pause.
        tag = f"wk{os.getpid()}"
        made = Lead.objects.bulk_create(
            Lead(
                email=f"{tag}-{i}@burst{i}.example",
                company_domain=f"burst{i}.example",
                stage=Stage.MAL,
                source="bench-loop",
                **HIGH_FIT,
            )
            for i in range(args.burst)
        )
        ids = [lead.pk for lead in made]
        services.rescore_leads(lead_ids=ids)  # scored (fit 45, grade A: still MAL), as capture leaves them
        killed_at = None
        claimed_when_killed = 0
        sent_events = 0
        t0 = time.monotonic()
        from scoring.models import PendingRescore

        for offset in range(0, args.burst, args.burst_batch):
            events = [
                {"lead": ids[i], "type": "demo_request", "source": "bench-loop", "external_id": f"{tag}-{i}"}
                for i in range(offset, min(offset + args.burst_batch, args.burst))
            ]
            response = client.post("/api/v1/events/", events, content_type="application/json")
            statuses[f"burst events {response.status_code}"] += 1
            sent_events += len(events)
            if killed_at is None and sent_events >= args.burst // 3:
                # Kill once the worker holds claims (it is computing or storing a batch).
                wait_until = time.monotonic() + 5
                while time.monotonic() < wait_until:
                    claimed_when_killed = PendingRescore.objects.filter(
                        lead_id__in=ids, claimed_until__gt=timezone.now()
                    ).count()
                    if claimed_when_killed:
                        break
                    time.sleep(0.01)
                loop.scoring.kill()
                killed_at = time.monotonic()
        sent_s = time.monotonic() - t0
        at_kill_state = _state(ids, version)
        time.sleep(max(0.0, args.restart_after - (time.monotonic() - killed_at)))
        restarted, converged = _start_and_converge(loop.scoring, ids, version, args.timeout)
        result["worker_restarted"] = {
            "leads": len(ids),
            "events_per_call": args.burst_batch,
            "burst_s": round(sent_s, 2),
            "killed_after_s": round(killed_at - t0, 2),
            "claimed_rows_when_killed": claimed_when_killed,
            "state_after_burst": at_kill_state,
            "restart_after_kill_s": round(restarted - killed_at, 2),
            "seconds_from_kill": round(converged["seconds"] + restarted - killed_at, 2)
            if converged["seconds"] is not None
            else None,
            **converged,
        }
    finally:
        result["process_errors"] = loop.logs()
        loop.stop()

    return result


JOBS = {"setup": setup, "reconcile": reconcile_cost, "outage": outage}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sales-reps", type=int, default=10, help="setup: sales reps in the team")
    parser.add_argument("--reps", type=int, default=5, help="reconcile: runs per figure")
    parser.add_argument("--plant-pending", type=int, default=50)
    parser.add_argument("--plant-mal", type=int, default=50)
    parser.add_argument("--plant-unrouted", type=int, default=20)
    parser.add_argument("--redis-port", type=int, default=0)
    parser.add_argument("--token", default="")
    parser.add_argument("--leads", type=int, default=200, help="outage: leads captured while Redis is down")
    parser.add_argument("--burst", type=int, default=600, help="outage: leads in the burst the worker dies in")
    parser.add_argument("--burst-batch", type=int, default=10)
    parser.add_argument("--restart-after", type=float, default=2.0)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=180.0)


def main(argv: list[str] | None = None) -> int:
    return run_job(JOBS, argv, add_arguments)


if __name__ == "__main__":
    sys.exit(main())
