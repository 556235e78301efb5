"""The imports suite: a 100,000-row CSV (80% new leads, 20% existing) imported end to end through
the import job, in rows/s and seconds against the target (< 60 s), beside the floor: the same
number of rows into leads_lead with raw psycopg COPY and executemany.

Database `LEADPORTAL_BENCH_DB` (default leadportal_bench; dropped, recreated, migrated with
production settings). REDIS_URL is removed: the job's task runs in the job's process after the
upload commits (Celery eager), so everything it costs — scoring's pending rows included — is inside
the measured time; no worker is involved.
"""

from __future__ import annotations

import argparse
from typing import Any

from bench import database, environment, suite

TARGET_S = 60.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("imports suite")
    group.add_argument("--import-rows", type=int, default=100_000, help="rows in the CSV [%(default)s]")


def run(args: argparse.Namespace, pg_version: str, quiet: environment.QuietGate) -> list[dict[str, Any]]:
    rows = 10_000 if args.quick else args.import_rows
    db_label = f"PG {pg_version.split()[0]}"
    dbname = database.BENCH_DB
    t = suite.step(f"recreating database {dbname} and migrating (settings: leadportal.settings.production)")
    setup_s = suite.prepare_database(dbname)
    env = suite.django_env(dbname)
    busy = quiet.wait()
    suite.step(f"importing a CSV of {rows:,} rows (80% new, 20% existing leads) through the import job")
    result = suite.run_job("import-csv", env, "--rows", str(rows), module="bench.imports_jobs")
    counts = database.row_counts(dbname)
    total = result["total_s"]
    scaled = total * 100_000 / rows  # the target is for 100,000 rows
    passed = result["status"] == "done" and result["rejected"] == 0 and scaled < TARGET_S
    records = [
        suite.record(
            f"CSV import ({rows:,} rows, job end to end)",
            db_label,
            counts,
            rows,
            elapsed_s=total,
            rate=rows / total,
            unit="rows/s",
            target={"seconds_per_100k_max": TARGET_S},
            target_text=f"100,000 rows < {TARGET_S:.0f} s" + ("" if rows == 100_000 else f" ({scaled:.0f} s per 100k)"),
            passed=passed,
            busy_before=busy,
            details=result,
        )
    ]
    for method, seconds in result["floor_s"].items():
        record = suite.record(
            f"raw psycopg {method} into leads_lead",
            db_label,
            counts,
            rows,
            elapsed_s=seconds,
            rate=rows / seconds,
            unit="rows/s",
            target_text="- (floor)",
        )
        record["details"] = {"import_vs_floor": round((rows / total) / (rows / seconds), 3)}
        records.append(record)
    args.imports_document = {"database": {"name": dbname, "recreated": True, "setup_s": round(setup_s, 1)}}
    del t
    return records


def notes(records: list[dict[str, Any]]) -> list[str]:
    main = records[0]
    d = main["details"]
    lines = [
        f"import: {d['created']:,} created, {d['updated']:,} updated, {d['rejected']:,} rejected, "
        f"status {d['status']}; batches of {d['batch']:,}; active scoring models: {d['active_scoring_models']}",
        f"import: {d['total_s']:.1f} s wall, of which {d['job_cpu_s']:.1f} s CPU in the importing process "
        f"({d['rows'] / max(d['job_cpu_s'], 0.001):,.0f} rows per CPU second); the rest is PostgreSQL and waiting "
        f"for a CPU (machine busy {main['cpu'].get('machine_busy_share_before', 0):.0%} before the run)",
    ]
    for r in records[1:]:
        share = r["details"]["import_vs_floor"]
        lines.append(f"{r['benchmark']}: {r['rate']:,.0f} rows/s; the import runs at {share:.1%} of it")
    return lines


def document_extra(args: argparse.Namespace) -> dict[str, Any]:
    return getattr(args, "imports_document", {})
