"""The routing suite: decisions per second with 200 reps and 500 rules (committed by one worker,
and the engine alone), and speed to lead with a real Celery worker on Redis and PostgreSQL.

* Throughput (`leadportal_bench_routing`): 200 reps in 10 teams (territories, languages, products,
  weights, seniority), 500 ordered rules with 1–3 conditions each — most never match a generated
  lead, the others are narrow (region × industry × company size) so a lead typically matches around
  rule 300–500 — and a round-robin fallback at the end; strategies round robin, weighted round
  robin, least loaded and direct, some with profile matching. 2,000 MQL leads.
  Committed: `routing.services.lead_route(lead_id=…)` for one lead after the other in one process
  (what one worker does per task). Engine only: rules, candidates and counters loaded once, then
  `routing.engine.decide` over the same leads' facts again and again.
* Speed to lead (`leadportal_bench_stl`): the demo scoring model active (MQL at 60), one round-robin
  team, 1,000 high-fit leads in MAL. A real worker (`celery -A leadportal worker --pool=prefork
  --concurrency=2` on a private queue, Redis DB 3) and, in a separate process, one demo_request per
  lead at a steady 50/s through `leads.services.events_ingest` (no HTTP). The event's commit → the
  worker rescores (MAL → MQL) → queues routing → assigns. Latency = Assignment.assigned_at − commit.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import database, environment, suite
from bench.processes import Service

DBNAME = "leadportal_bench_routing"
STL_DBNAME = "leadportal_bench_stl"
REDIS_URL = "redis://127.0.0.1:6379/3"
COMMITTED_TARGET = 500.0  # decisions/s by one worker
ENGINE_TARGET = 20_000.0  # decisions/s, engine only
STL_TARGET_P95_MS = 1000.0
REPS, TEAMS, RULES, LEADS = 200, 10, 500, 2_000
QUICK_COMMITTED = 500
STL_LEADS, STL_RATE, STL_WAIT = 1_000, 50.0, 60.0
QUICK_STL_LEADS = 300


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("routing suite")
    group.add_argument("--routing-leads", type=int, default=0, help=f"leads routed (committed) [{LEADS:,}]")
    group.add_argument("--routing-max-seconds", type=float, default=60.0, help="time cap, committed [%(default)s]")
    group.add_argument("--engine-seconds", type=float, default=5.0, help="engine-only duration [%(default)s]")
    group.add_argument("--stl-leads", type=int, default=0, help=f"speed-to-lead leads [{STL_LEADS:,}]")
    group.add_argument("--stl-rate", type=float, default=STL_RATE, help="events/s [%(default)s]")


@contextlib.contextmanager
def celery_worker(env: dict[str, str], log_path: Path, concurrency: int = 2, redis_url: str = REDIS_URL):
    """A prefork worker on the env's private queue (bench.processes.Service: ready when its log says
    so, always stopped), and what is left of that queue in Redis removed at the end."""
    queue = env["CELERY_QUEUE"]
    argv = [str(Path(sys.executable).with_name("celery")), "-A", "leadportal", "worker", "--pool=prefork"]
    # The private default queue and the routing and scoring queues named after it
    # (leadportal/celery.py): routing first, served in turn with the others.
    argv += [f"--concurrency={concurrency}", "-Q", f"{queue}.routing,{queue},{queue}.scoring"]
    argv += ["--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel=INFO"]
    argv += ["--hostname", f"{queue}@%h"]
    # INFO: the worker's "<name> ready." line is what tells it is ready (settings.LOGGING since the
    # structured logs; the bench's other processes log warnings only).
    env = {**env, "LOG_LEVEL": "INFO"}
    worker = Service("the Celery worker", argv, env, log_path, ready=lambda w: " ready." in w.log_text())
    try:
        with worker:
            yield worker
    finally:
        _purge(queue, redis_url)


def _purge(queue: str, redis_url: str) -> None:
    """Remove what is left of our queue in Redis (messages, bindings, unacked bookkeeping)."""
    try:
        import redis

        client = redis.Redis.from_url(redis_url)
        keys = list(client.scan_iter(match=f"*{queue}*"))  # the queue, its bindings (kombu names vary)
        if keys:
            client.delete(*keys)
    except Exception as exc:  # noqa: BLE001 - best effort: a stale key in DB 3 harms nobody
        print(f"    (could not purge queue {queue}: {exc})")


def _throughput(args: argparse.Namespace, quiet: environment.QuietGate, db_label: str) -> list[dict[str, Any]]:
    env = suite.django_env(DBNAME)
    leads = args.routing_leads or (QUICK_COMMITTED if args.quick else LEADS)
    t = suite.step(f"recreating database {DBNAME}; {REPS} reps in {TEAMS} teams, {RULES} rules, {LEADS:,} MQL leads")
    suite.prepare_database(DBNAME)
    setup = suite.run_job(
        "routing-setup",
        env,
        *("--reps", str(REPS), "--teams", str(TEAMS), "--rules", str(RULES), "--leads", str(LEADS)),
    )
    print(
        f"    {time.perf_counter() - t:.1f} s; {setup['rules']} rules with {setup['conditions']} conditions "
        f"({setup['never_matching_rules']} never match)"
    )
    rows = database.row_counts(DBNAME)
    records = []

    suite.step(
        f"engine only: routing.engine.decide over {LEADS:,} leads' facts, pytest-benchmark "
        f"(bench/test_engines.py) for {args.engine_seconds:.0f} s"
    )
    busy = quiet.wait()
    engine = suite.run_benchmark("test_routing_engine_decide", args.engine_seconds)
    records.append(
        suite.record(
            f"routing engine.decide ({engine['rules']} rules)",
            db_label,
            None,
            engine["items"],
            elapsed_s=engine["elapsed_s"],
            rate=engine["per_s"],
            unit="decisions/s",
            target={"rate_min": ENGINE_TARGET},
            target_text=f">= {ENGINE_TARGET:,.0f}/s",
            passed=engine["per_s"] >= ENGINE_TARGET,
            cpu=engine.pop("cpu"),
            busy_before=busy,
            details=engine,
        )
    )

    # Two ways over disjoint leads: the worker's task (which places waiting MQLs together when it
    # is behind, as it is here with every lead waiting), and one lead per transaction.
    single = max(1, leads * 2 // 5)
    for mode, n, label, what in (
        ("task", leads - single, "routing task route_lead (committed, one worker)", "routing.tasks.route_lead_task"),
        ("single", single, "routing route_lead, one lead per transaction", "routing.services.lead_route"),
    ):
        suite.step(f"committed: {what} for {n:,} leads, one after the other")
        busy = quiet.wait()
        committed = suite.run_job(
            "route-committed",
            env,
            *("--leads", str(n), "--max-seconds", str(args.routing_max_seconds), "--mode", mode),
        )
        records.append(
            suite.record(
                label,
                db_label,
                rows,
                committed["decisions"],
                elapsed_s=committed["elapsed_s"],
                rate=committed["decisions_per_s"],
                unit="decisions/s",
                latency_ms=committed["latency_ms"],
                target={"rate_min": COMMITTED_TARGET},
                target_text=f">= {COMMITTED_TARGET:,.0f}/s" + ("" if mode == "task" else " (the task's figure counts)"),
                passed=committed["decisions_per_s"] >= COMMITTED_TARGET,
                cpu=committed.pop("cpu"),
                busy_before=busy,
                details=committed,
            )
        )
    return records


def _speed_to_lead(
    args: argparse.Namespace,
    quiet: environment.QuietGate,
    db_label: str,
    *,
    redis_url: str = REDIS_URL,
    target_p95_ms: float = STL_TARGET_P95_MS,
) -> dict[str, Any]:
    """Also called by the loop suite (its own Redis DB, its own target)."""
    leads = args.stl_leads or (QUICK_STL_LEADS if args.quick else STL_LEADS)
    queue = suite.private_name("bench-stl")
    env = suite.django_env(STL_DBNAME, redis_url=redis_url, queue=queue)
    t = suite.step(f"recreating database {STL_DBNAME}; demo scoring model, one round-robin team, {leads:,} MAL leads")
    suite.prepare_database(STL_DBNAME)
    setup = suite.run_job("stl-setup", suite.django_env(STL_DBNAME), "--leads", str(leads), "--reps", "10")
    print(f"    {time.perf_counter() - t:.1f} s")
    rows = database.row_counts(STL_DBNAME)
    with tempfile.TemporaryDirectory(prefix="leadportal-bench-celery-") as tmp:
        log = Path(tmp) / "worker.log"
        suite.step(f"starting a Celery worker (prefork ×2) on queue {queue}, {redis_url}")
        with celery_worker(env, log, redis_url=redis_url) as worker:
            suite.step(
                f"speed to lead: 20 warm-up leads, then one demo_request per lead for {leads:,} leads at "
                f"{args.stl_rate:g}/s (events_ingest), waiting ≤ {STL_WAIT:.0f} s after the last one"
            )
            busy = quiet.wait()
            result = suite.run_job(
                "stl-drive",
                env,
                *("--rate", str(args.stl_rate), "--wait", str(STL_WAIT), "--warmup", "20"),
                *("--worker-pid", str(worker.pid)),
            )
            errors = [line for line in log.read_text(errors="replace").splitlines() if "ERROR" in line][:5]
    latency = result["latency_ms"] or {}
    complete = result["assigned"] == result["leads"]
    return suite.record(
        f"speed to lead @ {args.stl_rate:g} events/s",
        db_label,
        rows,
        result["leads"],
        elapsed_s=result["sent_s"] + result["drain_after_last_event_s"],
        rate=result["rate_sent"],
        unit="events/s",
        latency_ms=latency,
        target={"p95_ms_max": target_p95_ms},
        target_text=f"p95 <= {target_p95_ms:,.0f} ms, all assigned",
        passed=bool(latency) and latency["p95"] <= target_p95_ms and complete,
        cpu=result.pop("cpu"),
        busy_before=busy,
        details={**setup, **result, "queue": queue, "worker_errors": errors},
    )


def run(args: argparse.Namespace, pg_version: str, quiet: environment.QuietGate) -> list[dict[str, Any]]:
    db_label = f"PG {pg_version.split()[0]}"
    records = _throughput(args, quiet, db_label)
    records.append(_speed_to_lead(args, quiet, db_label))
    return records


def notes(records: list[dict[str, Any]]) -> list[str]:
    lines = []
    for r in records:
        d = r["details"]
        if d.get("unit") == "decisions":
            m = d["matched_rule_position"]
            lines.append(
                f"engine.decide: {d['us_each']:,.0f} µs per decision (mean of {d['rounds']} rounds of "
                f"{d['per_round']:,}) over {d['rules']} rules / "
                f"{d['conditions']} conditions, {d['candidates']} candidates; matched rule position median {m['p50']} "
                f"(min {m['min']}, {m['share_at_fallback']:.0%} at the fallback)."
            )
        if d.get("matched_rule_priority"):
            m = d["matched_rule_priority"]
            lines.append(
                f"route_lead ({d.get('mode', 'single')}, batch {d.get('batch', 1)}): {r['n']:,} decisions, "
                f"matched rule priority median {m['p50']} "
                f"(min {m['min']}, {m['share_at_fallback']:.0%} at the fallback); statuses {d['statuses']}."
            )
        if "latency_ms" in d and "event_to_mql_ms" in d:
            lat, mql, route = d["latency_ms"] or {}, d["event_to_mql_ms"] or {}, d["mql_to_assigned_ms"] or {}
            lines.append(
                f"Speed to lead: {d['assigned']:,}/{d['leads']:,} assigned; p50/p95/p99/max "
                f"{lat.get('p50', 0):.0f}/{lat.get('p95', 0):.0f}/{lat.get('p99', 0):.0f}/{lat.get('max', 0):.0f} ms "
                f"(event → MQL p50 {mql.get('p50', 0):.0f} ms, MQL → assigned p50 {route.get('p50', 0):.0f} ms); "
                f"sent at {d['rate_sent']}/s; the worker sustained {d['worker_leads_per_s']} leads/s."
            )
            if d.get("worker_errors"):
                lines.append("Worker log errors: " + " | ".join(d["worker_errors"]))
    return lines


def document_extra(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "database": {"names": [DBNAME, STL_DBNAME], "recreated": True},
        "configuration": {
            "reps": REPS,
            "teams": TEAMS,
            "rules": RULES,
            "leads": LEADS,
            "committed": "routing.tasks.route_lead (the worker's task: batches of waiting MQLs) and "
            "routing.services.lead_route (one lead per transaction), each in a loop in one process over "
            "disjoint leads (settings production, eager)",
            "engine": "routing.engine.decide with rules/candidates/counters loaded once, rules compiled once "
            "(pytest-benchmark, bench/test_engines.py, on the test settings' database)",
            "speed_to_lead": {
                "worker": "celery -A leadportal worker --pool=prefork --concurrency=2 -Q <q>.routing,<q>,<q>.scoring "
                "(settings local, DEBUG off)",
                "broker": REDIS_URL,
                "driver": "leads.services.events_ingest in a separate process, one event per call",
                "rate": args.stl_rate,
                "wait_after_last_event_s": STL_WAIT,
                "latency": "Assignment.assigned_at − commit of the event's transaction (same host clock)",
            },
        },
    }
