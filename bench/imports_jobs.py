"""The Django side of the imports suite: `python -m bench.imports_jobs import-csv --out result.json`.

Makes the leads that the file will update (`--existing`), writes a CSV of `--rows` rows (that share
of them existing e-mails, the rest new, shuffled) and imports it end to end through the job as the
API starts it: `imports.services.import_job_create` (read, check, store), whose queued task runs
in this process after the commit (Celery eager: REDIS_URL is unset), batch by batch. Then the
floor: the same number of new rows straight into leads_lead with psycopg COPY and executemany.
"""

from __future__ import annotations

import argparse
import io
import random
import sys
import time
from typing import Any

from bench.jobs import run_job

JOBS: dict = {}


def job(fn):
    JOBS[fn.__name__.replace("_", "-")] = fn
    return fn


COUNTRIES = ["DE", "AT", "CH", "FR", "NL", "US", "GB"]
TITLES = ["CTO", "Head of IT", "Marketing Manager", "CEO", "Developer", "Einkauf"]


def _csv(rows: int, existing: list[str], seed: int) -> bytes:
    rng = random.Random(seed)
    emails = existing + [f"import-{n}@firma-{n % 997}.example" for n in range(rows - len(existing))]
    rng.shuffle(emails)
    out = io.StringIO()
    out.write("E-Mail;Vorname;Nachname;Firma;Land;Position;Segment\r\n")
    for n, email in enumerate(emails):
        country = COUNTRIES[n % len(COUNTRIES)]
        title = TITLES[n % len(TITLES)]
        out.write(f"{email};Vorname {n};Müller-{n % 313};Firma {n % 997} GmbH;{country};{title};s{n % 5}\r\n")
    return out.getvalue().encode("cp1252")


def _lead_columns() -> list[Any]:
    from leads.models import Lead

    return [f for f in Lead._meta.concrete_fields if not f.primary_key]


def _floor_rows(count: int, prefix: str) -> tuple[list[str], list[tuple]]:
    """Rows for leads_lead with every column (Django's defaults where the model has them)."""
    from django.utils import timezone

    now = timezone.now()
    fields = _lead_columns()
    names = [f.column for f in fields]
    rows = []
    for n in range(count):
        given = {
            "email": f"{prefix}-{n}@firma-{n % 997}.example",
            "first_name": f"Vorname {n}",
            "last_name": f"Müller-{n % 313}",
            "company": f"Firma {n % 997} GmbH",
            "company_domain": f"firma-{n % 997}.example",
            "country": COUNTRIES[n % len(COUNTRIES)],
            "job_title": TITLES[n % len(TITLES)],
            "source": "import",
            "created_at": now,
            "updated_at": now,
        }
        row = []
        for f in fields:
            value = given[f.name] if f.name in given else f.get_default()
            if f.get_internal_type() == "JSONField":
                from psycopg.types.json import Jsonb

                value = Jsonb(value if value is not None else {})
            row.append(value)
        rows.append(tuple(row))
    return names, rows


def _floor(count: int, batch: int) -> dict[str, float]:
    from django.db import connection

    results = {}
    for method in ("COPY", "executemany"):
        names, rows = _floor_rows(count, f"floor-{method.lower()}")
        columns = ", ".join(f'"{n}"' for n in names)
        connection.ensure_connection()
        raw = connection.connection
        start = time.perf_counter()
        for offset in range(0, len(rows), batch):
            with raw.transaction(), raw.cursor() as cur:
                if method == "COPY":
                    with cur.copy(f"COPY leads_lead ({columns}) FROM STDIN") as copy:
                        for row in rows[offset : offset + batch]:
                            copy.write_row(row)
                else:
                    placeholders = ", ".join(["%s"] * len(names))
                    statement = f"INSERT INTO leads_lead ({columns}) VALUES ({placeholders})"
                    cur.executemany(statement, rows[offset : offset + batch])
        results[method] = time.perf_counter() - start
    return results


@job
def import_csv(args: argparse.Namespace) -> dict[str, Any]:
    from django.conf import settings
    from django.db import connection

    from imports import services
    from imports.models import ImportJob
    from leads.models import Activity, Lead, User

    actor, _ = User.objects.get_or_create(username="bench-marketing", defaults={"role": "marketing", "is_staff": True})
    existing_count = int(args.rows * args.existing_share)
    existing = [f"known-{n}@bestand-{n % 101}.example" for n in range(existing_count)]
    t = time.perf_counter()
    Lead.objects.bulk_create(
        [Lead(email=e, company_domain=e.rpartition("@")[2], source="webinar", first_name="Alt") for e in existing],
        batch_size=5000,
    )
    setup_existing_s = time.perf_counter() - t
    raw = _csv(args.rows, existing, args.seed)
    from scoring.models import ScoringModel

    active_models = ScoringModel.objects.filter(status="active").count()

    activities_before = Activity.objects.count()
    start, cpu_start = time.perf_counter(), time.process_time()
    job = services.import_job_create(
        raw=raw,
        filename="bench.csv",
        mapping={
            "E-Mail": "email",
            "Vorname": "first_name",
            "Nachname": "last_name",
            "Firma": "company",
            "Land": "country",
            "Position": "job_title",
            "Segment": "attributes.segment",
        },
        defaults={"source": "bench-import", "campaign": "bench"},
        actor=actor,
    )
    total_s = time.perf_counter() - start
    cpu_s = time.process_time() - cpu_start  # this process's CPU: the rest of the time is PostgreSQL or waiting
    job = ImportJob.objects.get(pk=job.pk)
    run_s = (job.finished_at - job.started_at).total_seconds() if job.finished_at and job.started_at else None
    floor = _floor(args.rows, settings.IMPORT_BATCH)
    return {
        "rows": args.rows,
        "bytes": len(raw),
        "existing": existing_count,
        "setup_existing_s": round(setup_existing_s, 2),
        "status": job.status,
        "error": job.error,
        "done_rows": job.done_rows,
        "created": job.created_count,
        "updated": job.updated_count,
        "rejected": job.rejected_count,
        "total_s": round(total_s, 3),
        "job_cpu_s": round(cpu_s, 3),
        "run_s": round(run_s, 3) if run_s is not None else None,
        "activities_added": Activity.objects.count() - activities_before,
        "batch": settings.IMPORT_BATCH,
        "active_scoring_models": active_models,
        "floor_s": {k: round(v, 3) for k, v in floor.items()},
        "database": connection.settings_dict["NAME"],
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--existing-share", type=float, default=0.2)


def main(argv: list[str] | None = None) -> int:
    return run_job(JOBS, argv, add_arguments)


if __name__ == "__main__":
    sys.exit(main())
