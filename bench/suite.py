"""What the suites share: their databases, Django jobs and engine benchmarks in subprocesses, the
result records, the printed summary and the results document."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import database, datagen, environment, report, server
from bench.processes import Service

JOB_TIMEOUT = 900.0  # s; a job that takes longer is stopped (the 1M rescoring takes a few minutes at most)


def step(message: str) -> float:
    print(f"... {message}", flush=True)
    return time.perf_counter()


def django_env(dbname: str, *, redis_url: str | None = None, queue: str | None = None) -> dict[str, str]:
    """The environment of a Django process on `dbname`. Without `redis_url`: production settings,
    REDIS_URL removed (Celery eager, nothing leaves the process). With it: what tests/worker.py
    gives a real worker — local settings with debug off, Redis, a private queue, no e-mail."""
    env = server.server_environment(dbname)
    env["DJANGO_EMAIL_BACKEND"] = "django.core.mail.backends.dummy.EmailBackend"
    env["PYTHONPATH"] = str(server.PROJECT_DIR)
    if redis_url:
        env.update(
            DJANGO_SETTINGS_MODULE="leadportal.settings.local",
            REDIS_URL=redis_url,
            CELERY_QUEUE=queue or "",
        )
    return env


def prepare_database(dbname: str) -> float:
    """Drop and create `dbname`, migrate it; return the seconds it took."""
    start = time.perf_counter()
    database.recreate_database(dbname)
    server.migrate(django_env(dbname))
    return time.perf_counter() - start


def _run(
    label: str, argv: list[str], env: dict[str, str], out: Path, log: Path, timeout: float, cpu: dict | None = None
) -> dict[str, Any]:
    """Run `argv` (which writes JSON to `out`) as a bench.processes.Service and return that JSON; the
    tail of its log is shown when it fails. With `cpu` (a dict), the CPU split of the run is put in it
    (the process as "job", and "other": whatever else ran on the machine meanwhile)."""
    process = Service(f"bench {label}", argv, env, log)
    meter = environment.Meter(database.BENCH_DB, extra={"job": process.pids})
    with meter if cpu is not None else contextlib.nullcontext(), process:
        returncode = process.wait(timeout)
    if returncode != 0 or not out.exists():
        raise RuntimeError(f"bench {label} failed with exit status {returncode}:\n{process.log_tail()}")
    if cpu is not None:
        cpu.update(meter.result)
    return json.loads(out.read_text())


def run_job(
    name: str, env: dict[str, str], *args: str, timeout: float = JOB_TIMEOUT, module: str = "bench.jobs"
) -> dict[str, Any]:
    """`python -m <module> <name> --out … <args>` (a Django job, bench/jobs.py and its siblings): its JSON."""
    with tempfile.TemporaryDirectory(prefix="leadportal-bench-job-") as tmp:
        out = Path(tmp) / "result.json"
        argv = [sys.executable, "-m", module, name, "--out", str(out), *args]
        return _run(f"job {name}", argv, env, out, Path(tmp) / "job.log", timeout)


def run_benchmark(test: str, seconds: float = 5.0, timeout: float = JOB_TIMEOUT) -> dict[str, Any]:
    """One pytest-benchmark test of bench/test_engines.py, on the test settings' own database (the
    engines read plain data; DATABASE_URL is removed): its entry of pytest-benchmark's JSON, with
    `per_s` = the items one round works on ÷ the mean round time."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE")}
    cpu: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="leadportal-bench-pytest-") as tmp:
        out = Path(tmp) / "benchmark.json"
        argv = [sys.executable, "-m", "pytest", f"bench/test_engines.py::{test}", "-q", "-p", "no:cacheprovider"]
        argv += ["--benchmark-json", str(out), "--benchmark-max-time", str(seconds)]
        (entry,) = _run(f"benchmark {test}", argv, env, out, Path(tmp) / "pytest.log", timeout, cpu)["benchmarks"]
    stats = entry["stats"]
    return {
        **entry["extra_info"],
        "rounds": stats["rounds"],
        "elapsed_s": round(stats["total"], 3),
        "round_ms": {k: round(stats[k] * 1000, 2) for k in ("min", "median", "mean", "max", "stddev")},
        "per_s": round(entry["extra_info"]["per_round"] / stats["mean"], 1),
        "us_each": round(stats["mean"] / entry["extra_info"]["per_round"] * 1e6, 1),
        "items": entry["extra_info"]["per_round"] * stats["rounds"],
        "cpu": cpu,
    }


def generate(
    dbname: str, leads: int, db_label: str, label: str = "generate (INSERT … SELECT)"
) -> tuple[datagen.Generated, dict[str, int], dict[str, Any]]:
    """`leads` more leads with 10 activities each (bench/datagen.py) in `dbname`: what it made, the
    rows now, and the record of it (a setup row: rows/s, no target)."""
    gen = datagen.generate(dbname, leads, progress=lambda m: print(f"    {m}", flush=True))
    rows = database.row_counts(dbname)
    rate = (gen.leads + gen.activities) / gen.total_s
    row = record(label, db_label, rows, leads, elapsed_s=gen.total_s, rate=rate, unit="rows/s", target_text="- (setup)")
    row["details"] = gen.as_dict()
    return gen, rows, row


def record(
    benchmark: str,
    db_label: str,
    rows: dict[str, int] | None,
    n: int | None,
    *,
    elapsed_s: float | None,
    rate: float | None = None,
    unit: str = "",
    latency_ms: dict[str, float] | None = None,
    target: dict[str, float] | None = None,
    target_text: str = "-",
    passed: bool | None = None,
    cpu: dict[str, Any] | None = None,
    busy_before: float | None = None,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    cpu = dict(cpu or {})
    if busy_before is not None:
        cpu["machine_busy_share_before"] = round(busy_before, 3)
    return {
        "benchmark": benchmark,
        "db": db_label,
        "rows_at_start": rows,
        "n": n,
        "elapsed_s": None if elapsed_s is None else round(elapsed_s, 3),
        "rate": None if rate is None else round(rate, 1),
        "unit": unit,
        "latency_ms": latency_ms,
        "target": target,
        "target_text": target_text,
        "passed": passed,
        "cpu": cpu,
        "details": details or {},
    }


def print_summary(records: list[dict[str, Any]], notes: list[str], columns=report.SUITE_COLUMNS) -> None:
    print()
    print(report.table(records, columns))
    print()
    for note in notes:
        print(note)
    for r in records:
        share = (r.get("cpu") or {}).get("other_share_of_machine") or 0
        if share > environment.OTHER_CPU_WARNING:
            clients = f" x{r['clients']}" if "clients" in r else ""
            print(
                f"WARNING: during {r['benchmark']}{clients}, processes outside the bench used {share:.0%} of the "
                "machine; those figures are pessimistic."
            )


def header(pg_version: str) -> tuple[dict[str, str], dict[str, Any]]:
    versions = environment.versions(pg_version)
    machine = environment.machine()
    print(
        f"LeadPortal bench — Python {versions['python']}, Django {versions['django']}, "
        f"DRF {versions['djangorestframework']}, gunicorn {versions['gunicorn']}, psycopg {versions['psycopg']}, "
        f"PostgreSQL {pg_version}; {machine['cores']} cores ({machine['cpu_model'] or 'unknown CPU'}), "
        f"load average {machine['load_average_at_start']}"
    )
    return versions, machine


def postgres_settings(dbname: str) -> dict[str, str]:
    import psycopg

    names = (
        "shared_buffers",
        "work_mem",
        "maintenance_work_mem",
        "effective_cache_size",
        "max_parallel_workers_per_gather",
        "synchronous_commit",
        "jit",
        "max_wal_size",
    )
    with psycopg.connect(database.conninfo(dbname)) as conn:
        rows = conn.execute("SELECT name, setting, unit FROM pg_settings WHERE name = ANY(%s)", (list(names),))
        return {name: f"{setting}{' × ' + unit if unit else ''}" for name, setting, unit in rows}


def write_document(
    name: str,
    started: datetime,
    wall: float,
    versions: dict[str, str],
    machine: dict[str, Any],
    records: list[dict[str, Any]],
    extra: dict[str, Any],
    no_write: bool,
) -> None:
    document = {
        "name": name,
        "started_at": started.isoformat(timespec="seconds"),
        "duration_s": round(time.perf_counter() - wall, 1),
        "versions": versions,
        "machine": machine,
        "git_head": environment.git_head(),
        "source": environment.source_digest(),
        **extra,
        "results": [{k: v for k, v in r.items() if k != "target_text"} for r in records],
    }
    if no_write:
        return
    for path in report.write_results(document, name, started.strftime("%Y%m%dT%H%M%SZ")):
        print(f"wrote {path.relative_to(server.PROJECT_DIR)}")


def now() -> datetime:
    return datetime.now(UTC)


def private_name(prefix: str) -> str:
    return f"{prefix}-{os.getpid()}-{secrets.token_hex(3)}"
