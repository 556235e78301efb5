"""What the scoring and routing suites share: their databases, Django jobs in subprocesses, the
result records, the printed summary and the results document."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import database, environment, report, server

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


def run_job(
    name: str, env: dict[str, str], *args: str, timeout: float = JOB_TIMEOUT, module: str = "bench.jobs"
) -> dict[str, Any]:
    """Run `python -m <module> <name> …` and return the JSON it wrote. Output goes to a file (a
    pipe nobody reads could block the job); its tail is shown when the job fails."""
    with tempfile.TemporaryDirectory(prefix="leadportal-bench-job-") as tmp:
        out, log = Path(tmp) / "result.json", Path(tmp) / "job.log"
        with log.open("w") as log_file:
            process = subprocess.Popen(
                [sys.executable, "-m", module, name, "--out", str(out), *args],
                cwd=server.PROJECT_DIR,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
            try:
                returncode = process.wait(timeout=timeout)
            except BaseException:
                process.kill()
                process.wait(timeout=10)
                raise
        if returncode != 0 or not out.exists():
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
            raise RuntimeError(f"bench job {name} failed with exit status {returncode}:\n{tail}")
        return json.loads(out.read_text())


def record(
    benchmark: str,
    db_label: str,
    rows: dict[str, int] | None,
    n: int | None,
    *,
    elapsed_s: float | None,
    rate: float | None,
    unit: str,
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


def print_summary(records: list[dict[str, Any]], notes: list[str]) -> None:
    print()
    print(report.suite_table(records))
    print()
    for note in notes:
        print(note)
    for r in records:
        share = (r.get("cpu") or {}).get("other_share_of_machine") or 0
        if share > environment.OTHER_CPU_WARNING:
            print(
                f"WARNING: during {r['benchmark']}, processes outside the bench used {share:.0%} of the machine; "
                "those figures are pessimistic."
            )


def header(pg_version: str) -> tuple[dict[str, str], dict[str, Any]]:
    versions = environment.versions(pg_version)
    machine = environment.machine()
    print(
        f"LeadPortal bench — Python {versions['python']}, Django {versions['django']}, psycopg {versions['psycopg']}, "
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
