"""The foundation suite: the lead API's throughput and latency over HTTP (capture at 1 and 8 clients,
bulk events at 1 and 2), and the raw psycopg insert floor the events API is compared with.

Database `leadportal_bench` (dropped, recreated, migrated with production settings), an integration
user with a new API token, gunicorn on a free local port (bench.server), the load from wrk
(bench.http_load). REDIS_URL is removed from the server's environment: Celery runs tasks eagerly in
the web process after commit, so whatever they cost is inside the measured requests.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench import database, environment, http_load, report, server, suite

CAPTURE_TARGET_RATE = 300.0  # requests/s at 8 clients
CAPTURE_TARGET_P95_MS = 50.0
CAPTURE_TARGET_CLIENTS = 8
EVENTS_TARGET_RATE = 10_000.0  # events/s
EVENT_POOL = 3000  # events are spread over up to this many leads created by the capture runs
REPEAT_SHARE = 0.2
SEED = 2026
# Defaults, and --quick's (options given still win).
DEFAULTS = {"requests": 3000, "warmup": 200, "batches": 20, "duration": 15.0}
QUICK = {"requests": 1000, "warmup": 100, "batches": 8, "duration": 8.0}
COLUMNS = report.HTTP_COLUMNS

EAGER_NOTE = (
    "REDIS_URL is unset for the server: Celery runs tasks eagerly in the web process after commit, "
    "so no worker or broker is involved (and their cost, if any, is inside the measured requests)."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("foundation suite")
    group.add_argument("--name", default="foundation", help="results file prefix [%(default)s]")
    group.add_argument("--worker-class", default="sync", choices=["sync", "gthread"], help="[%(default)s]")
    group.add_argument("--workers", type=int, default=4, help="gunicorn worker processes [%(default)s]")
    group.add_argument("--threads", type=int, default=4, help="threads per gthread worker [%(default)s]")
    group.add_argument("--capture-clients", default="1,8", help="comma-separated client counts [%(default)s]")
    group.add_argument("--requests", type=int, help=f"measured captures per run [{DEFAULTS['requests']}]")
    group.add_argument("--warmup", type=int, help=f"unmeasured captures per run [{DEFAULTS['warmup']}]")
    group.add_argument("--duration", type=float, help=f"time cap of a measured run, s [{DEFAULTS['duration']:g}]")
    group.add_argument("--event-clients", default="1,2", help="comma-separated client counts [%(default)s]")
    group.add_argument("--batches", type=int, help=f"measured event batches per run [{DEFAULTS['batches']}]")
    group.add_argument("--batch-size", type=int, default=1000, help="events per batch [%(default)s]")


def _clients(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def _measure(phase: http_load.Phase, benchmark: str, unit: str, gunicorn, quiet, db_label: str, work: Path) -> dict:
    """Wait for a quiet machine, run the phase against gunicorn, and make its record."""
    busy = quiet.wait()
    result, rows = http_load.run_phase(phase, work, gunicorn.pids, database.row_counts)
    per = max(result.requests, 1)
    cpu = dict(result.cpu)
    for group in ("gunicorn", "postgres", "wrk"):
        cpu[f"{group}_ms_per_request"] = round(cpu.get(f"{group}_s", 0.0) / per * 1000, 3)
    record = suite.record(
        benchmark,
        db_label,
        rows,
        result.requests,
        elapsed_s=result.elapsed,
        rate=result.items / result.elapsed if result.elapsed else 0.0,
        unit=unit,
        latency_ms=result.latency_ms,
        cpu=cpu,
        busy_before=busy,
        details={
            "items": result.items,
            "requests_per_s": round(result.requests / result.elapsed, 1) if result.elapsed else 0.0,
            "response_totals": result.totals,
            "socket_errors": result.socket_errors,
            "warmup_statuses": result.warmup_statuses,
            "errors": result.errors[:5],
        },
    )
    record.update(clients=result.clients, statuses=result.statuses, non_2xx=result.non_2xx)
    return record


def _capture_runs(args, gunicorn, token, quiet, db_label, work) -> list[dict]:
    records = []
    for clients in _clients(args.capture_clients):
        per_client_warmup = max(1, args.warmup // clients)
        per_client = per_client_warmup + -(-args.requests // clients)
        suite.step(
            f"capture, {clients} client(s): {per_client_warmup * clients} warm-up, then "
            f"{args.requests} requests or {args.duration:.0f} s"
        )
        phase = http_load.Phase(
            name=f"capture-{clients}",
            url=gunicorn.url("/api/v1/leads/"),
            token=token,
            bodies=http_load.capture_bodies(f"p{clients}", clients, per_client, REPEAT_SHARE, SEED),
            warmup=per_client_warmup,
            duration=args.duration,
        )
        record = _measure(phase, "capture (POST /leads/)", "req/s", gunicorn, quiet, db_label, work)
        record["details"].update(
            created_201=record["statuses"].get("201", 0), upserted_200=record["statuses"].get("200", 0)
        )
        if clients == CAPTURE_TARGET_CLIENTS:
            record["target"] = {"rate_min": CAPTURE_TARGET_RATE, "p95_ms_max": CAPTURE_TARGET_P95_MS}
            record["target_text"] = f">= {CAPTURE_TARGET_RATE:.0f} req/s, p95 <= {CAPTURE_TARGET_P95_MS:.0f} ms"
            record["passed"] = (
                record["rate"] >= CAPTURE_TARGET_RATE
                and record["latency_ms"]["p95"] <= CAPTURE_TARGET_P95_MS
                and record["non_2xx"] == 0
            )
        records.append(record)
    return records


def _event_runs(args, gunicorn, token, quiet, db_label, work, emails: list[str]) -> list[dict]:
    records = []
    for clients in _clients(args.event_clients):
        batches = -(-args.batches // clients)
        suite.step(
            f"events, {clients} client(s): 1 warm-up batch each, then {batches * clients} batches "
            f"of {args.batch_size:,} (cap {4 * args.duration:.0f} s)"
        )
        phase = http_load.Phase(
            name=f"events-{clients}",
            url=gunicorn.url("/api/v1/events/"),
            token=token,
            bodies=http_load.event_bodies(f"e{clients}", emails, clients, batches + 1, args.batch_size, SEED),
            warmup=1,
            duration=4 * args.duration,
            items_per_request=args.batch_size,
            totals=True,
        )
        record = _measure(phase, f"bulk events ({args.batch_size:,}/req)", "events/s", gunicorn, quiet, db_label, work)
        record["target"] = {"rate_min": EVENTS_TARGET_RATE}
        record["target_text"] = f">= {EVENTS_TARGET_RATE:,.0f} events/s"
        record["passed"] = record["rate"] >= EVENTS_TARGET_RATE and record["non_2xx"] == 0
        records.append(record)
    return records


def _raw_runs(count: int, batch_size: int, lead_ids: list[int], created_by: int, quiet, db_label: str) -> list[dict]:
    """The same rows as the events runs stored, straight into leads_activity: no Django, no HTTP."""
    records = []
    now = datetime.now(UTC)
    rng = random.Random(SEED)
    occurred = [now - timedelta(seconds=rng.randrange(30 * 86400)) for _ in range(count)]
    for method, insert in (("executemany", database.insert_executemany), ("COPY", database.insert_copy)):
        suite.step(f"raw floor: {count:,} rows with psycopg {method}, {batch_size:,} per transaction")
        rows = database.activity_rows(
            count=count,
            lead_ids=lead_ids,
            occurred=occurred,
            source=f"bench-raw-{method.lower()}",
            id_prefix=f"raw-{method.lower()}",
            created_by=created_by,
            now=now,
        )
        busy = quiet.wait()
        rows_before = database.row_counts()
        elapsed = insert(rows, batch_size)
        record = suite.record(
            f"raw psycopg {method}",
            db_label,
            rows_before,
            count,
            elapsed_s=elapsed,
            rate=count / elapsed,
            unit="rows/s",
            target_text="- (floor)",
            busy_before=busy,
        )
        record.update(clients=1, non_2xx=0)
        records.append(record)
    return records


def _ratios(records: list[dict]) -> dict[str, dict[str, float]]:
    """API events/s ÷ raw rows/s, per events run and raw method."""
    raw = {r["benchmark"].rpartition(" ")[2]: r["rate"] for r in records if r["unit"] == "rows/s"}
    return {
        f"events_{r['clients']}_clients": {f"vs_{m.lower()}": round(r["rate"] / rate, 3) for m, rate in raw.items()}
        for r in records
        if r["unit"] == "events/s"
    }


def run(args: argparse.Namespace, pg_version: str, quiet: environment.QuietGate) -> list[dict[str, Any]]:
    for key, value in (QUICK if args.quick else DEFAULTS).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    db_label = f"PG {pg_version.split()[0]}"
    print(EAGER_NOTE)
    t = suite.step(f"recreating database {database.BENCH_DB} and migrating (settings: leadportal.settings.production)")
    database.recreate_database()
    env = server.server_environment()
    server.migrate(env)
    token = server.integration_token(env)
    integration_id = database.user_id(server.BENCH_USERNAME)
    setup_s = time.perf_counter() - t
    http_load.ensure_wrk()

    config = server.GunicornConfig(worker_class=args.worker_class, workers=args.workers, threads=args.threads)
    with tempfile.TemporaryDirectory(prefix="leadportal-bench-") as tmp:
        suite.step(f"starting gunicorn: {config.describe()}")
        with server.Gunicorn(config, env, Path(tmp) / "gunicorn.log") as gunicorn:
            records = _capture_runs(args, gunicorn, token, quiet, db_label, Path(tmp))
            pool = database.lead_emails("bench-", EVENT_POOL)
            if not pool:
                raise RuntimeError("the capture runs created no leads to send events for")
            random.Random(SEED).shuffle(pool)
            emails = [email for _, email in pool]
            records += _event_runs(args, gunicorn, token, quiet, db_label, Path(tmp), emails)
            log_tail = gunicorn.log_tail(5).splitlines()

    api_events = next((r for r in records if r["unit"] == "events/s"), None)
    raw_count = api_events["details"]["items"] if api_events else args.batches * args.batch_size
    records += _raw_runs(raw_count, args.batch_size, [i for i, _ in pool], integration_id, quiet, db_label)
    args.foundation_document = {
        "database": {
            "name": database.BENCH_DB,
            "recreated": True,
            "setup_s": round(setup_s, 1),
            "active_scoring_models": database.active_scoring_models(),
        },
        "server": {
            "gunicorn": config.as_dict(),
            "description": config.describe(),
            "settings": "leadportal.settings.production",
            "celery": "eager (REDIS_URL unset; no worker)",
            "database_conn_max_age": int(env.get("DATABASE_CONN_MAX_AGE", 60)),
            "log_tail": log_tail,
        },
        "load": {
            "generator": "wrk (bench/wrk_post.lua): one thread and connection per client, closed loop, "
            "bodies written before the clock starts",
            "keep_alive": config.keeps_alive,
            "capture_requests": args.requests,
            "capture_warmup": args.warmup,
            "capture_repeat_share": REPEAT_SHARE,
            "time_cap_s": args.duration,
        },
        "events": {
            "leads_in_pool": len(emails),
            "lead_origin": "existing leads created by the capture runs (events name them by e-mail)",
            "batch_size": args.batch_size,
        },
        "ratios": _ratios(records),
    }
    records[0]["details"]["gunicorn"] = (
        f"gunicorn: {config.describe()} ({' '.join(config.args())}); setup {setup_s:.1f} s."
    )
    return records


def notes(records: list[dict[str, Any]]) -> list[str]:
    lines = [r["details"]["gunicorn"] for r in records if "gunicorn" in r["details"]]
    for key, values in _ratios(records).items():
        text = ", ".join(f"{v:.1%} of raw {k.removeprefix('vs_')}" for k, v in values.items())
        lines.append(f"API bulk events with {key.split('_')[1]} client(s) reach {text}.")
    errors = [r for r in records if r.get("non_2xx")]
    for r in errors:
        lines.append(f"NON-2xx in {r['benchmark']} x{r['clients']}: {r['non_2xx']} — {r['statuses']}")
        lines += [f"    {line}" for line in r["details"]["errors"]]
    if not errors:
        lines.append("Non-2xx responses: 0.")
    return lines


def document_extra(args: argparse.Namespace) -> dict[str, Any]:
    return getattr(args, "foundation_document", {})
