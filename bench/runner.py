"""Orchestration: database, server, the four API measurements, the raw floor, the report."""

from __future__ import annotations

import argparse
import random
import signal
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench import database, environment, loadgen, report, server

CAPTURE_TARGET_RATE = 300.0  # requests/s at 8 clients
CAPTURE_TARGET_P95_MS = 50.0
CAPTURE_TARGET_CLIENTS = 8
EVENTS_TARGET_RATE = 10_000.0  # events/s
EVENT_POOL = 3000  # events are spread over up to this many leads created by the capture runs
REPEAT_SHARE = 0.2
SEED = 2026

EAGER_NOTE = (
    "REDIS_URL is unset for the server: Celery runs tasks eagerly in the web process after commit, "
    "so no worker or broker is involved (and their cost, if any, is inside the measured requests)."
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--name", default="foundation", help="results file prefix [%(default)s]")
    parser.add_argument("--worker-class", default="sync", choices=["sync", "gthread"], help="[%(default)s]")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn worker processes [%(default)s]")
    parser.add_argument("--threads", type=int, default=4, help="threads per gthread worker [%(default)s]")
    parser.add_argument("--capture-clients", default="1,8", help="comma-separated client counts [%(default)s]")
    parser.add_argument("--requests", type=int, default=3000, help="measured captures per run [%(default)s]")
    parser.add_argument("--warmup", type=int, default=200, help="unmeasured captures per run [%(default)s]")
    parser.add_argument("--duration", type=float, default=15.0, help="time cap of a measured run, s [%(default)s]")
    parser.add_argument("--event-clients", default="1,2", help="comma-separated client counts [%(default)s]")
    parser.add_argument("--batches", type=int, default=20, help="measured event batches per run [%(default)s]")
    parser.add_argument("--batch-size", type=int, default=1000, help="events per batch [%(default)s]")
    parser.add_argument("--no-write", action="store_true", help="print only, write no results file")
    parser.add_argument("--strict", action="store_true", help="exit 3 when a target is missed")
    return parser.parse_args(argv)


def _sampler(gunicorn: server.Gunicorn):
    def sample() -> dict[str, Any]:
        busy, total = environment.cpu_jiffies()
        return {
            "t": time.perf_counter(),
            "busy": busy,
            "total": total,
            "server_cpu": environment.cpu_by_pid([gunicorn.process.pid, *gunicorn.worker_pids()]),
            "postgres_cpu": environment.cpu_by_pid(environment.postgres_pids()),
            "rows": database.row_counts(),
        }

    return sample


def _phase_record(
    benchmark: str, result: loadgen.PhaseResult, before: dict, after: dict, db: str, unit: str
) -> dict[str, Any]:
    busy = after["busy"] - before["busy"]
    total = after["total"] - before["total"]
    server_cpu = environment.cpu_delta(before["server_cpu"], after["server_cpu"])
    postgres_cpu = environment.cpu_delta(before["postgres_cpu"], after["postgres_cpu"])
    # Whatever else ran on the machine meanwhile (other users' jobs, the bench's own parent …).
    other_cpu = busy / environment.CLOCK_TICKS - server_cpu - postgres_cpu - result.client_cpu
    window = after["t"] - before["t"]
    per = max(result.requests, 1)
    return {
        "benchmark": benchmark,
        "db": db,
        "clients": result.clients,
        "rows_at_start": before["rows"],
        "rows_at_end": after["rows"],
        "requests": result.requests,
        "items": result.items,
        "elapsed_s": round(result.elapsed, 3),
        "rate": round(result.rate, 1),
        "unit": unit,
        "requests_per_s": round(result.request_rate, 1),
        "latency_ms": {
            "p50": round(result.percentile_ms(50), 2),
            "p95": round(result.percentile_ms(95), 2),
            "p99": round(result.percentile_ms(99), 2),
            "max": round(max(result.latencies, default=0) * 1000, 2),
            "mean": round(sum(result.latencies) / per * 1000, 2),
        },
        "statuses": {str(k): v for k, v in sorted(result.statuses.items())},
        "non_2xx": result.non_2xx,
        "errors": result.errors[:5],
        "response_totals": dict(result.totals),
        "reconnects": result.reconnects,
        "clients_stopped_by_time_cap": result.stopped_by_deadline,
        "cpu": {
            "window_s": round(window, 2),
            "machine_busy_share": round(busy / total, 3) if total else None,
            "gunicorn_s": round(server_cpu, 2),
            "gunicorn_ms_per_request": round(server_cpu / per * 1000, 2),
            "postgres_s": round(postgres_cpu, 2),
            "postgres_ms_per_request": round(postgres_cpu / per * 1000, 2),
            "load_generator_s": round(result.client_cpu, 2),
            "load_generator_ms_per_request": round(result.client_cpu / per * 1000, 3),
            "other_s": round(max(other_cpu, 0.0), 2),
            "other_share_of_machine": round(max(other_cpu, 0.0) / (window * environment.CORES), 3) if window else None,
        },
    }


def _judge_capture(record: dict[str, Any]) -> None:
    if record["clients"] != CAPTURE_TARGET_CLIENTS:
        record.update(target=None, target_text="-", passed=None)
        return
    record["target"] = {"rate_min": CAPTURE_TARGET_RATE, "p95_ms_max": CAPTURE_TARGET_P95_MS}
    record["target_text"] = f">= {CAPTURE_TARGET_RATE:.0f} req/s, p95 <= {CAPTURE_TARGET_P95_MS:.0f} ms"
    record["passed"] = (
        record["rate"] >= CAPTURE_TARGET_RATE
        and record["latency_ms"]["p95"] <= CAPTURE_TARGET_P95_MS
        and record["non_2xx"] == 0
    )


def _judge_events(record: dict[str, Any]) -> None:
    record["target"] = {"rate_min": EVENTS_TARGET_RATE}
    record["target_text"] = f">= {EVENTS_TARGET_RATE:,.0f} events/s"
    record["passed"] = record["rate"] >= EVENTS_TARGET_RATE and record["non_2xx"] == 0


def _clients(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def _step(message: str) -> float:
    print(f"... {message}", flush=True)
    return time.perf_counter()


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwind, so that gunicorn and the clients are stopped


def _capture_runs(
    args: argparse.Namespace, gunicorn: server.Gunicorn, token: str, quiet: environment.QuietGate, db_label: str
) -> list[dict]:
    records = []
    sample = _sampler(gunicorn)
    for clients in _clients(args.capture_clients):
        per_client_warmup = max(1, args.warmup // clients)
        per_client = per_client_warmup + -(-args.requests // clients)
        _step(
            f"capture, {clients} client(s): {per_client_warmup * clients} warm-up, then "
            f"{args.requests} requests or {args.duration:.0f} s"
        )
        phase = loadgen.Phase(
            name=f"capture-{clients}",
            host=gunicorn.host,
            port=gunicorn.port,
            path="/api/v1/leads/",
            token=token,
            bodies=loadgen.capture_bodies(f"p{clients}", clients, per_client, REPEAT_SHARE, SEED),
            warmup=per_client_warmup,
            duration=args.duration,
        )
        busy_before = quiet.wait()
        result, before, after = loadgen.run_phase(phase, sample)
        record = _phase_record("capture (POST /leads/)", result, before, after, db_label, "req/s")
        record["created_201"] = result.statuses.get(201, 0)
        record["upserted_200"] = result.statuses.get(200, 0)
        record["cpu"]["machine_busy_share_before"] = round(busy_before, 3)
        _judge_capture(record)
        records.append(record)
    return records


def _event_runs(
    args: argparse.Namespace,
    gunicorn: server.Gunicorn,
    token: str,
    quiet: environment.QuietGate,
    db_label: str,
    emails: list[str],
) -> list[dict]:
    records = []
    sample = _sampler(gunicorn)
    for clients in _clients(args.event_clients):
        batches = -(-args.batches // clients)
        _step(
            f"events, {clients} client(s): 1 warm-up batch each, then {batches * clients} batches "
            f"of {args.batch_size:,} (cap {4 * args.duration:.0f} s)"
        )
        phase = loadgen.Phase(
            name=f"events-{clients}",
            host=gunicorn.host,
            port=gunicorn.port,
            path="/api/v1/events/",
            token=token,
            bodies=loadgen.event_bodies(f"e{clients}", emails, clients, batches + 1, args.batch_size, SEED),
            warmup=1,
            duration=4 * args.duration,
            items_per_request=args.batch_size,
            parse_json=True,
        )
        busy_before = quiet.wait()
        result, before, after = loadgen.run_phase(phase, sample)
        record = _phase_record(f"bulk events ({args.batch_size:,}/req)", result, before, after, db_label, "events/s")
        record["cpu"]["machine_busy_share_before"] = round(busy_before, 3)
        _judge_events(record)
        records.append(record)
    return records


def _raw_runs(
    count: int, batch_size: int, lead_ids: list[int], created_by: int, quiet: environment.QuietGate, db_label: str
) -> list[dict]:
    """The same rows as the events runs stored, straight into leads_activity: no Django, no HTTP."""
    records = []
    now = datetime.now(UTC)
    rng = random.Random(SEED)
    occurred = [now - timedelta(seconds=rng.randrange(30 * 86400)) for _ in range(count)]
    for method, insert in (("executemany", database.insert_executemany), ("COPY", database.insert_copy)):
        _step(f"raw floor: {count:,} rows with psycopg {method}, {batch_size:,} per transaction")
        rows = database.activity_rows(
            count=count,
            lead_ids=lead_ids,
            occurred=occurred,
            source=f"bench-raw-{method.lower()}",
            id_prefix=f"raw-{method.lower()}",
            created_by=created_by,
            now=now,
        )
        busy_before = quiet.wait()
        rows_before = database.row_counts()
        elapsed = insert(rows, batch_size)
        records.append(
            {
                "benchmark": f"raw psycopg {method}",
                "db": db_label,
                "clients": 1,
                "rows_at_start": rows_before,
                "rows_at_end": database.row_counts(),
                "requests": count,
                "items": count,
                "elapsed_s": round(elapsed, 3),
                "rate": round(count / elapsed, 1),
                "unit": "rows/s",
                "latency_ms": None,
                "non_2xx": 0,
                "target": None,
                "target_text": "- (floor)",
                "passed": None,
                "cpu": {"machine_busy_share_before": round(busy_before, 3)},
            }
        )
    return records


def _ratios(records: list[dict]) -> dict[str, dict[str, float]]:
    """API events/s ÷ raw rows/s, per events run and raw method."""
    raw = {r["benchmark"].rpartition(" ")[2]: r["rate"] for r in records if r["unit"] == "rows/s"}
    return {
        f"events_{r['clients']}_clients": {
            f"vs_{m.lower()}": round(r["rate"] / rate, 3) for m, rate in raw.items() if rate
        }
        for r in records
        if r["unit"] == "events/s"
    }


def _print_summary(records: list[dict], ratios: dict) -> list[dict]:
    """Print the table, the ratios, warnings and errors; return the records with non-2xx answers."""
    print()
    print(report.table(records))
    print()
    for key, values in ratios.items():
        text = ", ".join(f"{v:.1%} of raw {k.removeprefix('vs_')}" for k, v in values.items())
        print(f"API bulk events with {key.split('_')[1]} client(s) reach {text}.")
    for r in records:
        cpu = r.get("cpu") or {}
        if (cpu.get("other_share_of_machine") or 0) > environment.OTHER_CPU_WARNING:
            print(
                f"WARNING: during {r['benchmark']} x{r['clients']}, processes outside the bench used "
                f"{cpu['other_share_of_machine']:.0%} of the machine; those figures are pessimistic."
            )
    errors = [r for r in records if r["non_2xx"]]
    for r in errors:
        print(f"NON-2xx in {r['benchmark']} x{r['clients']}: {r['non_2xx']} — {r['statuses']}")
        for line in r["errors"]:
            print(f"    {line}")
    if not errors:
        print("Non-2xx responses: 0.")
    return errors


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    started = datetime.now(UTC)
    wall = time.perf_counter()

    pg_version = database.server_version_or_explain()
    if pg_version is None:
        return 2
    db_label = f"PG {pg_version.split()[0]}"
    versions = environment.versions(pg_version)
    machine = environment.machine()
    print(
        f"LeadPortal bench — Python {versions['python']}, Django {versions['django']}, "
        f"DRF {versions['djangorestframework']}, gunicorn {versions['gunicorn']}, psycopg {versions['psycopg']}, "
        f"PostgreSQL {pg_version}; {machine['cores']} cores ({machine['cpu_model'] or 'unknown CPU'}), "
        f"load average {machine['load_average_at_start']}"
    )
    print(EAGER_NOTE)

    t = _step(f"recreating database {database.BENCH_DB} and migrating (settings: leadportal.settings.production)")
    database.recreate_database()
    env = server.server_environment()
    server.migrate(env)
    token = server.integration_token(env)
    integration_id = database.user_id(server.BENCH_USERNAME)
    scoring_models = database.active_scoring_models()
    setup_s = time.perf_counter() - t

    quiet = environment.QuietGate()
    config = server.GunicornConfig(worker_class=args.worker_class, workers=args.workers, threads=args.threads)
    with tempfile.TemporaryDirectory(prefix="leadportal-bench-") as tmp:
        _step(f"starting gunicorn: {config.describe()}")
        with server.Gunicorn(config, env, Path(tmp) / "gunicorn.log") as gunicorn:
            records = _capture_runs(args, gunicorn, token, quiet, db_label)
            pool = database.lead_emails("bench-", EVENT_POOL)
            if not pool:
                raise RuntimeError("the capture runs created no leads to send events for")
            random.Random(SEED).shuffle(pool)
            emails = [email for _, email in pool]
            records += _event_runs(args, gunicorn, token, quiet, db_label, emails)
            server_log = gunicorn.log_tail(20)

    api_events = next((r for r in records if r["unit"] == "events/s"), None)
    raw_count = api_events["items"] if api_events else args.batches * args.batch_size
    records += _raw_runs(raw_count, args.batch_size, [i for i, _ in pool], integration_id, quiet, db_label)

    ratios = _ratios(records)
    errors = _print_summary(records, ratios)
    total_s = time.perf_counter() - wall
    print(f"gunicorn: {config.describe()} ({' '.join(config.args())}); setup {setup_s:.1f} s, total {total_s:.0f} s.")

    document = {
        "name": args.name,
        "started_at": started.isoformat(timespec="seconds"),
        "duration_s": round(total_s, 1),
        "versions": versions,
        "machine": machine,
        "git_head": environment.git_head(),
        "source": environment.source_digest(),
        "database": {
            "name": database.BENCH_DB,
            "recreated": True,
            "setup_s": round(setup_s, 1),
            "active_scoring_models": scoring_models,
        },
        "server": {
            "gunicorn": config.as_dict(),
            "description": config.describe(),
            "settings": "leadportal.settings.production",
            "celery": "eager (REDIS_URL unset; no worker)",
            "database_conn_max_age": int(env.get("DATABASE_CONN_MAX_AGE", 60)),
            "log_tail": server_log.splitlines()[-5:],
        },
        "load": {
            "generator": "one process per client, http.client, closed loop, bodies pre-encoded",
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
            "event_shape": {
                "type": "page_view",
                "source": "bench",
                "properties": {"url": "/pricing"},
                "occurred_at": "random within the last 30 days",
                "external_id": "unique",
            },
        },
        "results": [{k: v for k, v in r.items() if k != "target_text"} for r in records],
        "ratios": ratios,
    }
    if not args.no_write:
        for path in report.write_results(document, args.name, started.strftime("%Y%m%dT%H%M%SZ")):
            print(f"wrote {path.relative_to(server.PROJECT_DIR)}")
    if errors:
        return 1
    if args.strict and any(r["passed"] is False for r in records):
        return 3
    return 0
